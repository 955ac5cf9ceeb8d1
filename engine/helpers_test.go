package engine

import (
	"bytes"
	"context"
	"ezio/disks/disktest"
	"ezio/engine/torrentfile"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"
)

// requireTool is name's path, or skips (fails in CI) without it.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		disktest.SkipOrFail(t, "this test needs %s on PATH (apt-get install the package providing it)", name)
	}
	return p
}

// testImage is a synthetic partition image: extents at odd offsets, held
// as a partclone-style directory of extent files.
type testImage struct {
	dir     string // extent directory
	name    string
	extents []torrentfile.Extent
	data    [][]byte
	size    int64 // device size the image belongs to
	mi      *metainfo.MetaInfo
}

// makeImage writes extents totalling about total bytes, at non-aligned
// offsets with gaps between them, inside a device of size dev.
func makeImage(t *testing.T, total int64, nExtents int, pieceLength int64, seed uint64) *testImage {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, seed*7+1))
	im := &testImage{dir: filepath.Join(t.TempDir(), "sda1"), name: "sda1"}
	if err := os.MkdirAll(im.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	off := int64(4096 + 513) // not aligned to anything
	per := total / int64(nExtents)
	for i := range nExtents {
		n := per + int64(r.IntN(4096)) - 2048
		if i == nExtents-1 {
			n = per + 12345
		}
		b := make([]byte, n)
		for k := range b {
			b[k] = byte(r.Uint32())
		}
		im.extents = append(im.extents, torrentfile.Extent{Offset: off, Length: n})
		im.data = append(im.data, b)
		name := torrentfile.FormatOffset(off)
		if i%2 == 1 {
			name = fmt.Sprintf("%016X", off) // older 16-digit, upper case
		}
		if err := os.WriteFile(filepath.Join(im.dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		off += n + 1000 + int64(r.IntN(100000)) // a gap of untouched bytes
	}
	im.size = (off + 1<<20 + 4095) &^ 4095 // whole sectors, as a device
	mi, err := CreateTorrent(context.Background(), im.dir, CreateOptions{Name: im.name, PieceLength: pieceLength})
	if err != nil {
		t.Fatal(err)
	}
	im.mi = mi
	return im
}

// fillPattern fills a file with a recognisable byte so untouched ranges
// can be checked after a deploy.
const pattern = 0xA5

func makeTargetFile(t *testing.T, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "target.img")
	if err := os.WriteFile(p, bytes.Repeat([]byte{pattern}, int(size)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkTarget asserts every extent is byte-identical and every byte
// outside the extents still holds the pattern.
func checkTarget(t *testing.T, im *testImage, target string) {
	t.Helper()
	got, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(got)) < im.size {
		t.Fatalf("target is %d bytes, want at least %d", len(got), im.size)
	}
	covered := make([]bool, im.size)
	for i, e := range im.extents {
		if !bytes.Equal(got[e.Offset:e.End()], im.data[i]) {
			t.Fatalf("extent %d at %d differs on the target", i, e.Offset)
		}
		for k := e.Offset; k < e.End(); k++ {
			covered[k] = true
		}
	}
	for k := int64(0); k < im.size; k++ {
		if !covered[k] && got[k] != pattern {
			t.Fatalf("byte %d outside every extent was changed to %#x", k, got[k])
		}
	}
}

func startSeed(t *testing.T, im *testImage, source string) *Job {
	t.Helper()
	j, err := Seed(context.Background(), SeedOptions{
		Torrent: im.mi, Source: source, TrackerListen: "127.0.0.1:0",
		Tuning: Tuning{ListenAddr: "127.0.0.1:0"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Stop(); j.Wait() })
	return j
}

// waitJob waits for a job's end, at most d (then it stops the job and
// says so in the error). Safe to call from any goroutine: it never calls
// t.Fatal.
func waitJob(t *testing.T, j *Job, d time.Duration) error {
	t.Helper()
	select {
	case <-j.Done():
		return j.Err()
	case <-time.After(d):
		s := j.Snapshot()
		j.Stop()
		<-j.Done()
		return fmt.Errorf("job did not finish in %v: phase %s, %d/%d pieces, %d peers", d, s.Phase, s.PiecesDone, s.PiecesTotal, s.NumPeers)
	}
}
