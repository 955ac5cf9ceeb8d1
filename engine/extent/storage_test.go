package extent

// Direct tests of the storage backend: resume record, flush ordering,
// exclusive targets, write errors and the seeder's check before serving.

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"ezio/disks/disktest"
	"ezio/engine/torrentfile"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"
	"golang.org/x/sys/unix"
)

// fakeIO records the order of calls and checks, at each sync, what the
// resume record on disk claims at that moment.
type fakeIO struct {
	mu       sync.Mutex
	calls    []string
	syncErr  error
	recPath  string
	atSync   []int // pieces the record claimed when sync was called
	closed   int
	writeErr error
}

func (f *fakeIO) readExtent(ext int, p []byte, within int64) (int, error) {
	return len(p), nil
}

func (f *fakeIO) writeExtent(ext int, p []byte, within int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "write")
	if f.writeErr != nil {
		return 0, f.writeErr
	}
	return len(p), nil
}

func (f *fakeIO) sync() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "sync")
	n, _ := ResumeRecordPieces(f.recPath)
	f.atSync = append(f.atSync, n)
	return f.syncErr
}

func (f *fakeIO) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed++
	f.calls = append(f.calls, "close")
	return nil
}

func (f *fakeIO) Identity() string { return "fake" }

func testLayout(t *testing.T, pieces int) *torrentfile.Layout {
	t.Helper()
	const pl = 16 << 10
	info := &metainfo.Info{Name: "sda1", PieceLength: pl, Pieces: make([]byte, 20*pieces),
		Files: []metainfo.FileInfo{{Path: []string{torrentfile.FormatOffset(4096)}, Length: int64(pieces) * pl}}}
	l, err := torrentfile.NewLayout(info)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

var testIH = metainfo.Hash{1, 2, 3}

// piece is what the library's PieceWithHash hands out for index i.
func piece(s *Storage, i int) storage.PieceImpl {
	off, n := s.l.PieceSpan(i)
	return &extentPiece{s: s, index: i, off: off, n: n}
}

// onFake is a client storage of pieces on fio, with its resume record
// in a temporary directory (at fio.recPath).
func onFake(t *testing.T, pieces int, fio *fakeIO) (*Storage, *torrentfile.Layout) {
	t.Helper()
	l := testLayout(t, pieces)
	fio.recPath = filepath.Join(t.TempDir(), "t.ezio-resume")
	st, _ := LoadResume(fio.recPath, testIH, l.NumPieces, "fake")
	return New(l, fio, false, st, false, 2), l
}

func TestFlushWritesDataBeforeTheRecordClaimsIt(t *testing.T) {
	fio := &fakeIO{}
	s, _ := onFake(t, 8, fio)
	rec := fio.recPath
	defer s.Close()
	p := piece(s, 3)
	if _, err := p.WriteAt(make([]byte, 100), 0); err != nil {
		t.Fatal(err)
	}
	p.MarkComplete()
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if n, _ := ResumeRecordPieces(rec); n != 1 {
		t.Fatalf("after a flush the record claims %d pieces, want 1", n)
	}
	if len(fio.atSync) != 1 || fio.atSync[0] != 0 {
		t.Fatalf("the record claimed %v pieces when the data was synced: it must claim nothing before", fio.atSync)
	}
	if got := strings.Join(fio.calls, ","); got != "write,sync" {
		t.Fatalf("calls %q, want write,sync", got)
	}

	// A failed sync: the record must not claim the piece, the piece stays
	// pending for the next flush, and no temporary file is left.
	fio.syncErr = unix.EIO
	piece(s, 5).MarkComplete()
	if err := s.Flush(); !errors.Is(err, unix.EIO) {
		t.Fatalf("flush with a failing sync returned %v", err)
	}
	if n, _ := ResumeRecordPieces(rec); n != 1 {
		t.Fatalf("after a failed sync the record claims %d pieces, want still 1", n)
	}
	if _, err := os.Stat(rec + ".tmp"); err == nil {
		t.Fatal("a temporary record was left behind")
	}
	if s.Durable() {
		t.Fatal("Durable with a piece whose sync failed")
	}
	fio.syncErr = nil
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if n, _ := ResumeRecordPieces(rec); n != 2 {
		t.Fatalf("after the retry the record claims %d pieces, want 2", n)
	}
}

func TestFailedBackgroundFlushFailsTheJob(t *testing.T) {
	s, _ := onFake(t, 4, &fakeIO{syncErr: unix.EIO})
	defer s.Close()
	got := make(chan error, 1)
	s.Attach(nil, func(err error) { got <- err })
	piece(s, 0).MarkComplete()
	select {
	case err := <-got:
		if !errors.Is(err, unix.EIO) {
			t.Fatalf("fatal error %v, want EIO", err)
		}
	case <-time.After(3 * FlushInterval):
		t.Fatal("a failing background flush did not fail the job")
	}
	select {
	case err := <-s.Err():
		if !errors.Is(err, unix.EIO) {
			t.Fatalf("Err() gave %v", err)
		}
	default:
		t.Fatal("Err() has nothing after a fatal flush error")
	}
}

func TestWriteErrorIsFatal(t *testing.T) {
	l := testLayout(t, 4)
	fio := &fakeIO{writeErr: &DiskError{Op: "writing", Path: "/dev/x", Offset: 4096, Err: unix.ENOSPC}}
	s := New(l, fio, false, nil, false, 2)
	defer s.Close()
	if _, err := piece(s, 0).WriteAt([]byte("x"), 0); err == nil {
		t.Fatal("write error not returned")
	}
	select {
	case err := <-s.Err():
		var de *DiskError
		if !errors.As(err, &de) || de.Offset != 4096 || !errors.Is(err, unix.ENOSPC) {
			t.Fatalf("fatal error %v does not carry the offset and cause", err)
		}
	default:
		t.Fatal("a write error was not reported as fatal")
	}
}

func TestCloseTwice(t *testing.T) {
	fio := &fakeIO{}
	s, l := onFake(t, 4, fio)
	piece(s, 1).MarkComplete()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if fio.closed != 1 {
		t.Fatalf("target closed %d times", fio.closed)
	}
	if n, _ := ResumeRecordPieces(fio.recPath); n != 1 {
		t.Fatalf("Close did not make the verified piece durable and recorded (%d)", n)
	}
	seed := New(l, &fakeIO{}, true, nil, false, 2)
	seed.Close()
	seed.Close()
}

func TestClaimedPiecesAreHashedNotTrusted(t *testing.T) {
	l := testLayout(t, 6)
	rec := filepath.Join(t.TempDir(), "t.ezio-resume")
	st := &Resume{path: rec, infoHash: testIH, identity: "fake", bits: []bool{true, true, true, false, false, false}}
	if err := st.save(st.bits); err != nil {
		t.Fatal(err)
	}
	st2, warn := LoadResume(rec, testIH, 6, "fake")
	if warn != "" || st2.Count() != 3 {
		t.Fatalf("record not loaded: %q, %d", warn, st2.Count())
	}
	s := New(l, &fakeIO{recPath: rec}, false, st2, false, 2)
	defer s.Close()
	for i := range 6 {
		c := piece(s, i).Completion()
		if i < 3 && c.Ok {
			t.Fatalf("piece %d claimed by the record answered %+v: it must be hashed from the target", i, c)
		}
		if i >= 3 && (!c.Ok || c.Complete) {
			t.Fatalf("unclaimed piece %d answered %+v, want known incomplete", i, c)
		}
	}
	piece(s, 0).MarkComplete()
	piece(s, 1).MarkComplete()
	piece(s, 2).MarkNotComplete()
	if rv, rf := s.ResumeCounts(); rv != 2 || rf != 1 {
		t.Fatalf("counts %d re-verified, %d re-fetched; want 2, 1", rv, rf)
	}
	if !s.DiskCheckFailed(2) || s.DiskCheckFailed(1) {
		t.Fatal("DiskCheckFailed wrong")
	}
	if c := piece(s, 2).Completion(); !c.Ok || c.Complete {
		t.Fatalf("piece that failed its check answered %+v, want known incomplete (fetch it)", c)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if n, _ := ResumeRecordPieces(rec); n != 2 {
		t.Fatalf("record claims %d pieces after one claim failed, want 2", n)
	}
	// A downloaded piece failing is not a disk check.
	piece(s, 4).MarkNotComplete()
	if s.DiskCheckFailed(4) {
		t.Fatal("a downloaded piece's failure counted as a disk check")
	}

	// With recheck, unclaimed pieces are hashed from the target too.
	r := New(l, &fakeIO{}, false, nil, true, 2)
	defer r.Close()
	if c := piece(r, 4).Completion(); c.Ok {
		t.Fatalf("recheck: piece answered %+v, want unknown", c)
	}
}

func TestResumeRecordDroppedWhenDamagedOrForeign(t *testing.T) {
	dir := t.TempDir()
	good := &Resume{path: filepath.Join(dir, "r"), infoHash: testIH, identity: "file dev=1 ino=2 size=3", bits: []bool{true, false, true}}
	if err := good.save(good.bits); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(good.path)
	if st, warn := LoadResume(good.path, testIH, 3, good.identity); warn != "" || st.Count() != 2 {
		t.Fatalf("a good record was not loaded: %q", warn)
	}
	cases := map[string]struct {
		data     []byte
		ih       metainfo.Hash
		identity string
		want     string
	}{
		"bit flipped":   {flip(data, len(data)-5), testIH, good.identity, "damaged"},
		"truncated":     {data[:len(data)-3], testIH, good.identity, "damaged"},
		"empty":         {nil, testIH, good.identity, "not an ezio resume record"},
		"v1 record":     {append([]byte("EZIORSM1"), data[8:]...), testIH, good.identity, "not an ezio resume record"},
		"other torrent": {data, metainfo.Hash{9}, good.identity, "another image"},
		"other disk":    {data, testIH, "file dev=1 ino=99 size=3", "another disk"},
		"no identity":   {data, testIH, "", "another disk"},
	}
	for name, c := range cases {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		os.WriteFile(p, c.data, 0o644)
		st, warn := LoadResume(p, c.ih, 3, c.identity)
		if st.Count() != 0 {
			t.Errorf("%s: record trusted (%d pieces)", name, st.Count())
		}
		if !strings.Contains(warn, c.want) {
			t.Errorf("%s: log line %q does not say %q", name, warn, c.want)
		}
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0x40
	return c
}

func TestSaveFailureLeavesNoTemporaryFile(t *testing.T) {
	dir := t.TempDir()
	// The record's path is a non-empty directory: the rename fails.
	rec := filepath.Join(dir, "r")
	os.MkdirAll(filepath.Join(rec, "x"), 0o755)
	st := &Resume{path: rec, infoHash: testIH, identity: "x", bits: []bool{true}}
	if err := st.save(st.bits); err == nil {
		t.Fatal("save over a directory succeeded")
	}
	if _, err := os.Stat(rec + ".tmp"); err == nil {
		t.Fatal("a temporary record was left behind")
	}
}

func TestNewImageFileIsCreatedAtFullSize(t *testing.T) {
	l := testLayout(t, 4)
	p := filepath.Join(t.TempDir(), "new.img")
	xio, _, err := Open(p, l, true)
	if err != nil {
		t.Fatal(err)
	}
	defer xio.Close()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != l.End {
		t.Fatalf("new image file is %d bytes, want the image's end %d", fi.Size(), l.End)
	}
}

func TestSecondWriterIsRefused(t *testing.T) {
	l := testLayout(t, 4)
	file := filepath.Join(t.TempDir(), "t.img")
	dir := t.TempDir()
	for _, target := range []string{file, dir} {
		a, _, err := Open(target, l, true)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = Open(target, l, true)
		var be *BusyError
		if !errors.As(err, &be) {
			t.Fatalf("%s: second writer got %v, want a BusyError", target, err)
		}
		a.Close()
		b, _, err := Open(target, l, true)
		if err != nil {
			t.Fatalf("%s: not writable after the first writer closed: %v", target, err)
		}
		b.Close()
	}
	// Another process holding it is named.
	if _, err := exec.LookPath("flock"); err != nil {
		return
	}
	cmd := exec.Command("flock", "-n", file, "-c", "echo locked; exec sleep 30")
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	line := make([]byte, 7)
	if _, err := io.ReadFull(out, line); err != nil || string(line) != "locked\n"[:7] {
		t.Fatalf("flock(1) did not take the lock: %q %v", line, err)
	}
	x, _, err := Open(file, l, true)
	var be *BusyError
	if !errors.As(err, &be) {
		if x != nil {
			x.Close()
		}
		t.Fatalf("a file flock(1) holds is not busy: %v", err)
	}
	// The holders are flock(1) and its child, which may not have become
	// sleep yet when the test asks (and a long temporary path pushes
	// "sleep" past the 80 characters of a command line that are shown):
	// either name will do, with its pid.
	if msg := be.Error(); !strings.Contains(msg, "pid") || !strings.Contains(msg, "flock") && !strings.Contains(msg, "sleep") {
		t.Errorf("busy error does not name the holder: %v", be)
	}
}

func TestLoopDeviceExclusiveIdentityAndWriteErrors(t *testing.T) {
	disktest.Need(t, true, "losetup", "blockdev")
	l := testLayout(t, 4)
	dev := disktest.NewLoop(t, 4<<20, nil)
	xio, _, err := Open(dev, l, true)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			xio.Close()
		}
	}()
	// Exclusive: a second writer and a mount are refused.
	_, _, err = Open(dev, l, true)
	var be *BusyError
	if !errors.As(err, &be) {
		t.Fatalf("second writer on %s got %v, want a BusyError", dev, err)
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", dev, mnt).CombinedOutput(); err == nil {
		exec.Command("umount", mnt).Run()
		t.Fatalf("mount of %s succeeded while ezio held it: %s", dev, out)
	}
	// Identity names the backing file and changes with it.
	id1 := xio.Identity()
	if !strings.Contains(id1, "loop=") || !strings.Contains(id1, "ino=") {
		t.Fatalf("loop identity %q lacks the backing file", id1)
	}
	// Writes to a device made read-only fail with the offset.
	disktest.Run(t, "blockdev", "--setro", dev)
	defer exec.Command("blockdev", "--setrw", dev).Run()
	s := New(l, xio, false, nil, false, 2)
	_, werr := piece(s, 1).WriteAt([]byte("x"), 0)
	var de *DiskError
	if !errors.As(werr, &de) || de.Offset != 4096+16<<10 {
		t.Fatalf("write to a read-only device gave %v, want a DiskError at offset %d", werr, 4096+16<<10)
	}
	closed = true
	s.Close()
	disktest.Run(t, "blockdev", "--setrw", dev)

	other := disktest.NewLoop(t, 4<<20, nil)
	oio, _, err := Open(other, l, true)
	if err != nil {
		t.Fatal(err)
	}
	defer oio.Close()
	if id2 := oio.Identity(); id2 == id1 {
		t.Fatalf("two loop devices on different files have the same identity %q", id1)
	}
}

func TestSeederNeverServesABadPiece(t *testing.T) {
	im := makeImage(t, 1<<20, 3, 64<<10, 11)
	_, l, err := torrentfile.Summarize(im.mi)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := im.mi.UnmarshalInfo()
	// Corrupt 4 bytes in the middle of the second extent file.
	es, _ := os.ReadDir(im.dir)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	victim := filepath.Join(im.dir, l.FileNames[1])
	f, err := os.OpenFile(victim, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err, names)
	}
	f.WriteAt([]byte{1, 2, 3, 4}, 1000)
	f.Close()
	// Which piece holds that byte.
	var badPiece int
	l.MapRange(0, l.Total, func(s torrentfile.Segment) bool {
		if s.Ext == 1 {
			badPiece = int((s.Buf + 1000 - s.Within) / l.PieceLength)
			return false
		}
		return true
	})
	xio, _, err := Open(im.dir, l, false)
	if err != nil {
		t.Fatal(err)
	}
	s := New(l, xio, true, nil, false, 2)
	defer s.Close()
	s.OpenTorrent(nil, &info, im.mi.HashInfoBytes())
	buf := make([]byte, 100)
	for i := range l.NumPieces {
		n, err := piece(s, i).ReadAt(buf, 0)
		if i == badPiece {
			var bpe *BadPieceError
			if !errors.As(err, &bpe) || n != 0 {
				t.Fatalf("read of bad piece %d gave %d bytes, %v", i, n, err)
			}
			continue
		}
		if err != nil || n != len(buf) {
			t.Fatalf("good piece %d: %d, %v", i, n, err)
		}
	}
	// Again: the verdict is cached, still refused.
	if _, err := piece(s, badPiece).ReadAt(buf, 10); err == nil {
		t.Fatal("second read of the bad piece succeeded")
	}
	bad := s.BadPieces()
	if len(bad) != 1 || bad[0].Index != badPiece || bad[0].File == "" {
		t.Fatalf("BadPieces = %+v, want piece %d with its file", bad, badPiece)
	}
	wantOff, _ := l.PieceWhere(badPiece)
	if bad[0].Offset != wantOff {
		t.Fatalf("bad piece offset %d, want %d", bad[0].Offset, wantOff)
	}
}

func TestIdentityOfFilesAndDirectories(t *testing.T) {
	l := testLayout(t, 4)
	dir := t.TempDir()
	d, _, err := Open(dir, l, true)
	if err != nil {
		t.Fatal(err)
	}
	before := d.Identity()
	for i := range 50 {
		os.WriteFile(filepath.Join(dir, torrentfile.FormatOffset(int64(i))), []byte("x"), 0o644)
	}
	if after := d.Identity(); after != before || before == "" {
		t.Fatalf("a directory's identity changed as files were added: %q -> %q", before, after)
	}
	d.Close()

	file := filepath.Join(t.TempDir(), "t.img")
	f, _, err := Open(file, l, true)
	if err != nil {
		t.Fatal(err)
	}
	id1 := f.Identity()
	f.Close()
	// The same path, another file (another inode): another identity.
	os.Rename(file, file+".old") // the old inode stays in use, so it cannot be reused
	g, _, err := Open(file, l, true)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if id2 := g.Identity(); id2 == id1 || id1 == "" {
		t.Fatalf("a replaced file kept its identity %q", id1)
	}
}
