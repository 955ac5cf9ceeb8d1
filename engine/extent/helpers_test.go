package extent

import (
	"crypto/sha1"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"

	"ezio/engine/torrentfile"
)

// testImage is a directory of extent files (partclone -T) and its
// torrent, for the seeder's tests.
type testImage struct {
	dir  string
	data [][]byte // each extent's bytes, in torrent order
	mi   *metainfo.MetaInfo
}

// makeImage writes n extents of random bytes (from seed), with gaps
// between their disk offsets, and their torrent with real piece hashes.
func makeImage(t *testing.T, total int64, n int, pieceLength int64, seed uint64) *testImage {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, seed*7+1))
	im := &testImage{dir: t.TempDir()}
	info := &metainfo.Info{Name: "sda1", PieceLength: pieceLength}
	var all []byte
	off := int64(4096 + 513) // not aligned to anything
	for i := range n {
		b := make([]byte, total/int64(n)+int64(i)*777)
		for k := range b {
			b[k] = byte(r.Uint32())
		}
		name := torrentfile.FormatOffset(off)
		if err := os.WriteFile(filepath.Join(im.dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		info.Files = append(info.Files, metainfo.FileInfo{Path: []string{name}, Length: int64(len(b))})
		im.data = append(im.data, b)
		all = append(all, b...)
		off += int64(len(b)) + 5000
	}
	for p := int64(0); p < int64(len(all)); p += pieceLength {
		sum := sha1.Sum(all[p:min(p+pieceLength, int64(len(all)))])
		info.Pieces = append(info.Pieces, sum[:]...)
	}
	ib, err := bencode.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	im.mi = &metainfo.MetaInfo{InfoBytes: ib}
	return im
}
