// Package torrentfiletest makes torrents for tests of the packages that
// serve or read them.
package torrentfiletest

import (
	"crypto/sha1"
	"ezio/engine/torrentfile"
	"fmt"
	"testing"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
)

// Fake is a torrent of pieces*pieceLen bytes in one extent, with
// made-up hashes: enough for the server, which never reads the data.
func Fake(t testing.TB, name string, pieces int, pieceLen int64) *metainfo.MetaInfo {
	t.Helper()
	hashes := make([][20]byte, pieces)
	for i := range hashes {
		hashes[i] = sha1.Sum([]byte(fmt.Sprintf("%s %d", name, i)))
	}
	info := metainfo.Info{Name: name, PieceLength: pieceLen,
		Files: []metainfo.FileInfo{{Path: []string{torrentfile.FormatOffset(1 << 20)}, Length: int64(pieces) * pieceLen}}}
	for _, h := range hashes {
		info.Pieces = append(info.Pieces, h[:]...)
	}
	b, err := bencode.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	return &metainfo.MetaInfo{InfoBytes: b}
}
