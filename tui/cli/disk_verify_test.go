package cli

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"ezio/disks/diskdeploy"
	"ezio/disks/diskimage"
	"ezio/disks/disktest"
)

// TestDiskSeedVerify: `ezio seed IMAGE-DIR --verify` on a captured
// two-partition disk image with one byte flipped in an extent file of the
// second partition (its second piece) refuses to serve (exit 1) naming the partition, the
// piece, its offsets in the partition and on the disk and the extent file;
// with the byte put back it says every piece matches, serves, and a
// client deploys the disk from it.
func TestDiskSeedVerify(t *testing.T) {
	dkNeed(t, "debugfs:e2fsprogs")
	parts := []dkPart{
		{typ: "83", size: "20MiB", fs: "ext4", files: map[string][]byte{"f": dkRandom(31, 1<<20)}},
		{typ: "83", fs: "ext4", files: map[string][]byte{"g": dkRandom(32, 20<<20)}},
	}
	_, dir, m := dkImage(t, 48<<20, "dos", parts, "vfy")
	var p diskimage.Partition
	for _, x := range m.Partitions {
		if x.HasData() {
			p = x // the last one with data: the second
		}
	}
	mi, err := diskdeploy.LoadPartitionTorrent(os.DirFS(dir), p)
	if err != nil {
		t.Fatal(err)
	}
	info, err := mi.UnmarshalInfo()
	if err != nil {
		t.Fatal(err)
	}

	// The partition's extents in disk order.
	type extent struct {
		name string
		off  int64
		n    int64
	}
	var exts []extent
	ents, err := os.ReadDir(filepath.Join(dir, p.ImageDir))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		off, err := strconv.ParseInt(e.Name(), 16, 64)
		if err != nil || len(e.Name()) != 32 {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		exts = append(exts, extent{e.Name(), off, fi.Size()})
	}
	slices.SortFunc(exts, func(a, b extent) int { return int(a.off - b.off) })
	// The byte flipped is 12345 bytes into the second piece: which extent
	// file holds it, and where that piece begins, follow from the
	// extents' lengths alone.
	var total int64
	for _, e := range exts {
		total += e.n
	}
	if total <= info.PieceLength+12345 {
		t.Fatalf("partition %s holds %d bytes: not two pieces of %d", p.Name, total, info.PieceLength)
	}
	flipPos := info.PieceLength + 12345
	big, k := -1, int64(0)
	var before int64
	for i, e := range exts {
		if flipPos < before+e.n {
			big, k = i, flipPos-before
			break
		}
		before += e.n
	}
	piece := flipPos / info.PieceLength
	startPos := piece * info.PieceLength // in the extents' concatenation
	var pieceOff int64 = -1
	var pieceFile string
	var pos int64
	for _, e := range exts {
		if startPos < pos+e.n {
			pieceOff, pieceFile = e.off+startPos-pos, e.name
			break
		}
		pos += e.n
	}
	file := filepath.Join(dir, p.ImageDir, exts[big].name)
	flip := func() {
		f, err := os.OpenFile(file, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		b := make([]byte, 1)
		if _, err := f.ReadAt(b, k); err != nil {
			t.Fatal(err)
		}
		b[0] ^= 0x5a
		if _, err := f.WriteAt(b, k); err != nil {
			t.Fatal(err)
		}
	}

	flip()
	code, out, errs := intRun(t, nil, 2*time.Minute, "seed", dir, "--verify", "--no-announce",
		"--listen", fmt.Sprintf("127.0.0.1:%d", disktest.FreePort(t)), "--tracker-listen", fmt.Sprintf("127.0.0.1:%d", disktest.FreePort(t)))
	if code != ExitFailed {
		t.Fatalf("seed --verify of a damaged disk image exited %d, want 1\n%s\n%s", code, capTail(out), capTail(errs))
	}
	t.Logf("the refusal:\n%s", capTail(errs))
	want := fmt.Sprintf("bad: partition %s: piece %d at partition offset %d, disk offset %d (extent file %s", p.Name, piece, pieceOff, p.Start+pieceOff, pieceFile)
	for _, w := range []string{want, "verifying 100.0%", fmt.Sprintf("do not match their torrents (%s: 1)", p.Name)} {
		if !strings.Contains(errs, w) {
			t.Errorf("seed --verify does not say %q:\n%s", w, capTail(errs))
		}
	}
	if n := strings.Count(errs, "bad: "); n != 1 {
		t.Errorf("seed --verify listed %d bad pieces for one flipped byte:\n%s", n, capTail(errs))
	}
	if strings.Contains(errs, "seeding disk image") {
		t.Errorf("seed --verify of a damaged image started serving:\n%s", capTail(errs))
	}

	flip() // back to the captured byte
	tr := disktest.FreePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", tr)
	seeder := intStart(t, nil, "seed", dir, "--verify", "--no-announce",
		"--listen", fmt.Sprintf("127.0.0.1:%d", disktest.FreePort(t)), "--tracker-listen", fmt.Sprintf("127.0.0.1:%d", tr))
	deadline := time.Now().Add(time.Minute)
	for {
		if r, err := http.Get(base + "/status.json"); err == nil {
			r.Body.Close()
			break
		}
		select {
		case <-seeder.done:
			t.Fatalf("seed --verify of the good image exited %d:\n%s", seeder.code, capTail(seeder.stderr.String()))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("seed --verify of the good image did not come up:\n%s", capTail(seeder.stderr.String()))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if s := seeder.stderr.String(); !strings.Contains(s, "pieces of 2 partitions match their torrents") {
		t.Errorf("seed --verify of the good image does not say so:\n%s", capTail(s))
	}
	target := dkBlank(t, 48<<20)
	if code, out, errs := intRun(t, nil, 3*time.Minute, "deploy", base+"/images/vfy", target, "--yes", "--json", "--listen", "127.0.0.1:0"); code != 0 {
		t.Fatalf("deploy from the verified seeder exited %d\n%s\n%s", code, capTail(out), capTail(errs))
	}
	dkCheckFiles(t, target, parts)
}
