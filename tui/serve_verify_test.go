package tui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ezio/disks/diskimage"
	"ezio/engine"
	"ezio/engine/torrentfile"
)

// testDiskImageWithData is the sample disk image with data: each
// partition that has a torrent gets two extent files of random bytes and
// a torrent of 64 KiB pieces made from them. It returns the directory and
// sdb2's second extent file.
func testDiskImageWithData(t *testing.T) (dir, ext2 string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "pc1")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	m := sampleDiskManifest()
	r := rand.New(rand.NewPCG(5, 7))
	for i, p := range m.Partitions {
		if !p.HasData() {
			continue
		}
		p.ImageDir = p.Name
		ed := filepath.Join(dir, p.ImageDir)
		if err := os.Mkdir(ed, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, x := range []struct{ off, n int64 }{{1 << 20, 3*64<<10 + 100}, {8 << 20, 200 << 10}} {
			b := make([]byte, x.n)
			for k := range b {
				b[k] = byte(r.Uint32())
			}
			f := filepath.Join(ed, torrentfile.FormatOffset(x.off))
			if err := os.WriteFile(f, b, 0o644); err != nil {
				t.Fatal(err)
			}
			if p.Name == "sdb2" && x.off == 8<<20 {
				ext2 = f
			}
		}
		mi, err := engine.CreateTorrent(context.Background(), ed, engine.CreateOptions{PieceLength: 64 << 10})
		if err != nil {
			t.Fatal(err)
		}
		if err := engine.WriteTorrent(mi, filepath.Join(dir, p.Torrent)); err != nil {
			t.Fatal(err)
		}
		m.Partitions[i] = p
	}
	b, _ := json.Marshal(m)
	if err := os.WriteFile(filepath.Join(dir, diskimage.ManifestFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, ext2
}

// TestServeChecksADiskImage: the Serve form asks whether to check a disk
// image's data first; with yes, an image with one flipped byte in sdb2 is
// not served and the error names the partition, the piece, its offsets
// and the extent file; once the byte is back the check passes and the
// image is served.
func TestServeChecksADiskImage(t *testing.T) {
	dir, ext2 := testDiskImageWithData(t)
	flip := func() {
		b, err := os.ReadFile(ext2)
		if err != nil {
			t.Fatal(err)
		}
		b[70000] ^= 0x20
		if err := os.WriteFile(ext2, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	flip()
	// sdb2's extents are 196708 and 204800 bytes: byte 70000 of the second
	// is byte 266708 of the partition's data, in piece 4, which begins
	// 262144-196708 = 65436 bytes into the second extent.
	var start int64
	for _, p := range sampleDiskManifest().Partitions {
		if p.Name == "sdb2" {
			start = p.Start
		}
	}
	off := int64(8<<20 + 65436)
	want := fmt.Sprintf("partition sdb2: piece 4 at partition offset %d, disk offset %d (extent file %s)", off, start+off, filepath.Base(ext2))

	for _, damaged := range []bool{true, false} {
		seeded := false
		m := newApp(t, &fakeWorld{})
		m.deps.SeedDisk = func(ctx context.Context, d string, o DiskSeedOptions) (*DiskSeeding, error) {
			seeded = true
			return nil, errors.New("test: not serving")
		}
		drive(t, m, key1("s"))
		drive(t, m, keys(dir)...)
		drive(t, m, enter) // the image data is skipped
		drive(t, m, enter) // every interface
		drive(t, m, enter) // the port
		drive(t, m, enter) // clients expected: not said
		drive(t, m, enter) // no upload limit
		if v := m.View(); !strings.Contains(v, "Check the whole source first?") {
			t.Fatalf("no check question for a disk image:\n%s", v)
		}
		drive(t, m, key1("y"))
		if v := m.View(); !strings.Contains(v, "Announce this server on the LAN?") {
			t.Fatalf("after the check question:\n%s", v)
		}
		drive(t, m, key1("n"))
		if !m.serve.Verify {
			t.Fatalf("the check was not kept: %+v", m.serve)
		}
		settle(t, m, 30*time.Second, "the error", func() bool { _, ok := m.Current().(*ErrorScreen); return ok })
		e := m.Current().(*ErrorScreen)
		if damaged {
			if seeded || !strings.Contains(e.what, want) || !strings.Contains(e.what, "1 of ") || !strings.Contains(e.what, "(sdb2: 1)") {
				t.Errorf("damaged image: served %v, error %q, want it to name %q", seeded, e.what, want)
			}
			if v := m.View(); !strings.Contains(v, "Could not check the disk image") {
				t.Errorf("the error screen does not say the check failed:\n%s", v)
			}
			flip()
			continue
		}
		if !seeded || !strings.Contains(e.what, "test: not serving") {
			t.Errorf("good image: served %v, error %q", seeded, e.what)
		}
	}
}
