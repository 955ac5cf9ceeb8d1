package cli

import (
	"crypto/sha1"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ezio/disks/disktest"
	"ezio/partclone"

	"github.com/anacrolix/torrent/metainfo"
)

// TestCapturePieceSize: `ezio capture --piece-size 1` hashes the extent
// files again in 1 MiB pieces (showing a hashing phase), the torrent's
// hashes are the SHA-1s of those bytes, and the image deploys; sizes that
// are no power of two, and a torrent-only capture (partclone's hashes are
// all it has), are refused with nothing written.
func TestCapturePieceSize(t *testing.T) {
	fsys := capFilesystems[0] // ext4
	capNeed(t, true, append([]string{fsys.prog + ":partclone"}, fsys.tools...)...)
	files, want := capSampleFiles(t, false, fsys.sizes...)
	src := disktest.NewLoop(t, fsys.size, nil)
	fsys.mkfs(t, src, files)

	out := filepath.Join(t.TempDir(), "images")
	code, stdout, stderr, err := capCLI(t, "capture", src, out, "--json", "--name", "small", "--piece-size", "1")
	if code != 0 {
		t.Fatalf("capture --piece-size 1: status %d, %v\n%s\n%s", code, err, stdout, stderr)
	}
	lines := capJSONLines(t, stdout)
	phases := map[string]float64{}
	for _, l := range lines[:len(lines)-1] {
		if p, ok := l["phase"].(string); ok {
			phases[p] = max(phases[p], l["percent"].(float64))
		}
	}
	if phases["capturing"] != 100 || phases["hashing"] != 100 {
		t.Errorf("progress phases reached %v, want capturing and hashing at 100 %%", phases)
	}
	res := lines[len(lines)-1]
	mi, err := metainfo.LoadFromFile(filepath.Join(out, "small.torrent"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := mi.UnmarshalInfo()
	if err != nil {
		t.Fatal(err)
	}
	if info.PieceLength != 1<<20 {
		t.Fatalf("piece length %d, want 1 MiB", info.PieceLength)
	}
	pinfo := capParseInfo(t, filepath.Join(out, "small.torrent.info"))
	total := pinfo.TotalLength()
	if n := (total + 1<<20 - 1) >> 20; int64(info.NumPieces()) != n || res["pieces"] != float64(n) {
		t.Errorf("%d pieces in the torrent, %v in the result; %d bytes make %d", info.NumPieces(), res["pieces"], total, n)
	}
	// The hashes, computed here over the extent files in offset order.
	var rs []io.Reader
	for _, e := range pinfo.Extents {
		f, err := os.Open(filepath.Join(out, "small", partclone.ExtentFileName(e.Offset)))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		rs = append(rs, f)
	}
	all := io.MultiReader(rs...)
	buf := make([]byte, 1<<20)
	for i := 0; ; i++ {
		n, err := io.ReadFull(all, buf)
		if n == 0 {
			if i != info.NumPieces() {
				t.Errorf("the extent files make %d pieces, the torrent has %d", i, info.NumPieces())
			}
			break
		}
		if sum := sha1.Sum(buf[:n]); string(sum[:]) != string(info.Piece(i).V1Hash().Value.Bytes()) {
			t.Fatalf("piece %d: the torrent's hash is not the SHA-1 of its bytes", i)
		}
		if err != nil {
			if i+1 != info.NumPieces() {
				t.Errorf("the extent files end at piece %d of %d", i, info.NumPieces())
			}
			break
		}
	}

	target := disktest.NewLoop(t, fsys.size, nil)
	capDeploy(t, capSeed(t, filepath.Join(out, "small.torrent"), filepath.Join(out, "small")), target)
	capCompareExtents(t, pinfo, src, target)
	disktest.Run(t, "fsck.ext4", "-fn", target)
	if got := fsys.files(t, target); !maps.Equal(got, want) {
		t.Errorf("the target holds %v, want %v", got, want)
	}

	for _, bad := range [][]string{{"--piece-size", "3"}, {"--piece-size", "4", "--torrent-only"}} {
		before := capTreeSums(t, out)
		args := append([]string{"capture", src, out, "--name", "refused"}, bad...)
		code, _, _, err := capCLI(t, args...)
		if code != ExitRefused || !strings.Contains(fmt.Sprint(err), "piece") {
			t.Errorf("ezio %s: status %d, %v; want refused naming the piece size", strings.Join(args, " "), code, err)
		}
		if after := capTreeSums(t, out); !maps.Equal(before, after) {
			t.Errorf("ezio %s changed OUTDIR", strings.Join(args, " "))
		}
	}
}

func capParseInfo(t *testing.T, path string) *partclone.Info {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, err := partclone.ParseInfo(f)
	if err != nil {
		t.Fatal(err)
	}
	return info
}
