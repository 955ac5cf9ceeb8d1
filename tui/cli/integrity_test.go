package cli

// Integrity tests with real ezio processes on real loop devices: a
// deploy killed mid-way and rerun over a changed target, two deploys at
// once, a seeder with a corrupted extent. The test binary runs itself as
// ezio (TestIntegrityHelperProcess), so signals and exit codes are real.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"ezio/disks/disktest"
	"ezio/engine"
	"ezio/engine/torrentfile"
)

// TestIntegrityHelperProcess is not a test: it is ezio, when the test
// binary is run by intProc.
func TestIntegrityHelperProcess(t *testing.T) {
	if os.Getenv("EZIO_INTEGRITY_CHILD") != "1" {
		t.Skip("helper process for the integrity tests")
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	os.Args = append([]string{"ezio"}, args...)
	os.Exit(Main())
}

// intProc is an ezio process; stdout and stderr are kept.
type intProc struct {
	cmd            *exec.Cmd
	stdout, stderr capBuffer
	done           chan struct{}
	code           int
}

func intStart(t *testing.T, env []string, args ...string) *intProc {
	t.Helper()
	p := &intProc{done: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], append([]string{"-test.run=^TestIntegrityHelperProcess$", "--"}, args...)...)
	p.cmd.Env = append(append(os.Environ(), "EZIO_INTEGRITY_CHILD=1"), env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(10 * time.Second) })
	return p
}

// stop interrupts the process and waits for it (killing it after d).
func (p *intProc) stop(d time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(d):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// wait waits for the process to end by itself within d.
func (p *intProc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(d):
		p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("%v did not end within %v\nstdout: %s\nstderr: %s", p.cmd.Args[2:], d, capTail(p.stdout.String()), capTail(p.stderr.String()))
		return -1
	}
}

func intRun(t *testing.T, env []string, d time.Duration, args ...string) (int, string, string) {
	t.Helper()
	p := intStart(t, env, args...)
	code := p.wait(t, d)
	return code, p.stdout.String(), p.stderr.String()
}

// intImage is a synthetic partition image: extents of random bytes at odd
// offsets, as a partclone extent directory, with its torrent.
type intImage struct {
	dir, torrent string
	extents      []torrentfile.Extent
	devSize      int64
	total        int64
	pieceLength  int64
}

func intMakeImage(t *testing.T, total int64, n int, pieceLength int64, seed uint64) *intImage {
	t.Helper()
	im := &intImage{dir: filepath.Join(t.TempDir(), "sda1"), pieceLength: pieceLength}
	os.Mkdir(im.dir, 0o755)
	r := rand.New(rand.NewPCG(seed, 3))
	off := int64(1<<20 + 777)
	for range n {
		b := make([]byte, total/int64(n))
		for k := range b {
			b[k] = byte(r.Uint32())
		}
		if err := os.WriteFile(filepath.Join(im.dir, torrentfile.FormatOffset(off)), b, 0o644); err != nil {
			t.Fatal(err)
		}
		im.extents = append(im.extents, torrentfile.Extent{Offset: off, Length: int64(len(b))})
		im.total += int64(len(b))
		off += int64(len(b)) + 40999
	}
	im.devSize = (off + 1<<20) &^ 4095
	im.torrent = filepath.Join(t.TempDir(), "sda1.torrent")
	if code, _, errs := intRun(t, nil, 2*time.Minute, "torrent", "create", im.dir, "-o", im.torrent, "--name", "sda1", "--piece-length", fmt.Sprint(pieceLength)); code != 0 {
		t.Fatalf("torrent create: %d %s", code, errs)
	}
	return im
}

// intSame asserts every extent of the image is on target, byte for byte.
func intSame(t *testing.T, im *intImage, target string) {
	t.Helper()
	f, err := os.Open(target)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, e := range im.extents {
		want, _ := os.ReadFile(filepath.Join(im.dir, torrentfile.FormatOffset(e.Offset)))
		got := make([]byte, e.Length)
		if _, err := f.ReadAt(got, e.Offset); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("extent at %d differs on %s (%v)", e.Offset, target, err)
		}
	}
}

// intSeed runs `ezio seed` until the test ends; it returns the peer address.
func intSeed(t *testing.T, im *intImage, source string) (*intProc, string) {
	t.Helper()
	bt, tr := disktest.FreePort(t), disktest.FreePort(t)
	peer := fmt.Sprintf("127.0.0.1:%d", bt)
	p := intStart(t, nil, "seed", im.torrent, source, "--listen", peer, "--tracker-listen", fmt.Sprintf("127.0.0.1:%d", tr))
	intSeederUp(t, p, func() bool {
		c, err := net.DialTimeout("tcp4", peer, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return p, peer
}

// intSeederUp waits (30 s at most) until up says the seeder p answers;
// the test fails if it exits first.
func intSeederUp(t *testing.T, p *intProc, up func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !up() {
		select {
		case <-p.done:
			t.Fatalf("seeder exited %d: %s", p.code, p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("seeder did not come up: %s", p.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func intNeedRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		capSkipOrFail(t, "needs root for loop devices")
	}
	for _, tool := range []string{"losetup:mount", "mount:mount"} {
		prog, pkg, _ := strings.Cut(tool, ":")
		if _, err := exec.LookPath(prog); err != nil {
			capSkipOrFail(t, "needs %s: apt-get install %s", prog, pkg)
		}
	}
}

// intKilledDeploy starts a slowed deploy, SIGKILLs it once it has passed
// 40 % and the flusher had time to record, and returns how many pieces
// the resume record claims.
func intKilledDeploy(t *testing.T, im *intImage, env []string, peer, target, recPath string) int {
	t.Helper()
	logf := filepath.Join(t.TempDir(), "killed.log")
	p := intStart(t, env, "deploy", im.torrent, target, "--peer", peer, "--yes", "--json", "--listen", "127.0.0.1:0", "--download-limit", "1MiB", "--log-file", logf)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var done, total float64
		lines := strings.Split(strings.TrimSpace(p.stdout.String()), "\n")
		if last := lines[len(lines)-1]; last != "" {
			var m map[string]any
			if json.Unmarshal([]byte(last), &m) == nil {
				if m["type"] == "result" {
					t.Fatalf("the first run finished before it could be killed: %s", last)
				}
				done, _ = m["bytes_done"].(float64)
				total, _ = m["bytes_total"].(float64)
			}
		}
		if total > 0 && done > 0.4*total {
			break
		}
		select {
		case <-p.done:
			t.Fatalf("deploy ended early (%d): %s", p.code, capTail(p.stderr.String()))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("deploy never reached 40%%: %s", capTail(p.stdout.String()))
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2500 * time.Millisecond) // the flusher records every 2 s
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	n, err := engine.ResumeRecordPieces(recPath)
	if err != nil || n == 0 {
		out, _ := exec.Command("find", filepath.Dir(filepath.Dir(recPath))).CombinedOutput()
		lg, _ := os.ReadFile(logf)
		t.Logf("state dir: %s\nlog: %s", out, capTail(string(lg)))
		t.Fatalf("the killed deploy left no usable resume record at %s: %d, %v", recPath, n, err)
	}
	return n
}

// intRerun deploys again at full speed; it must end 0 and byte-identical.
func intRerun(t *testing.T, im *intImage, env []string, peer, target string) (result map[string]any, stderr string) {
	t.Helper()
	logf := filepath.Join(t.TempDir(), "rerun.log")
	code, out, errs := intRun(t, env, 2*time.Minute, "deploy", im.torrent, target, "--peer", peer, "--yes", "--json", "--listen", "127.0.0.1:0", "--log-file", logf)
	lg, _ := os.ReadFile(logf)
	errs += string(lg)
	lines := capJSONLines(t, out)
	if len(lines) > 0 {
		result = lines[len(lines)-1]
	}
	if code != 0 || result["result"] != "ok" {
		t.Fatalf("rerun: exit %d, %v\nstderr: %s", code, result, capTail(errs))
	}
	intSame(t, im, target) // exit 0 is only ever over the right bytes
	return result, errs
}

func intRecorded(t *testing.T, im *intImage, recPath string) []int {
	t.Helper()
	// Which pieces: decode through the engine's own counter per piece is
	// not exposed; read the bitmap from the record's tail.
	data, err := os.ReadFile(recPath)
	if err != nil {
		t.Fatal(err)
	}
	n := int((im.total + im.pieceLength - 1) / im.pieceLength)
	bm := data[len(data)-4-(n+7)/8 : len(data)-4]
	var out []int
	for i := range n {
		if bm[i/8]&(0x80>>(i%8)) != 0 {
			out = append(out, i)
		}
	}
	return out
}

// intPieceDisk is the disk offset of a byte inside piece i.
func intPieceDisk(im *intImage, i int, within int64) int64 {
	off := int64(i)*im.pieceLength + within
	for _, e := range im.extents {
		if off < e.Length {
			return e.Offset + off
		}
		off -= e.Length
	}
	return -1
}

func TestInterruptedDeployOverAChangedTarget(t *testing.T) {
	intNeedRoot(t)
	im := intMakeImage(t, 16<<20, 3, 1<<20, 21)
	_, peer := intSeed(t, im, im.dir)
	state := t.TempDir()
	t.Setenv("EZIO_STATE_DIR", state) // for ResumePath here and for the children
	env := []string{"EZIO_STATE_DIR=" + state}

	for _, c := range []struct {
		name   string
		change func(t *testing.T, dev string, recorded []int) string
		want   string // in the rerun's log
	}{
		{"zeroed", func(t *testing.T, dev string, _ []int) string {
			f, err := os.OpenFile(dev, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, io.LimitReader(zeroReader{}, im.devSize)); err != nil {
				t.Fatal(err)
			}
			f.Sync()
			f.Close()
			return dev
		}, "did not match"},
		{"three pieces overwritten", func(t *testing.T, dev string, recorded []int) string {
			f, err := os.OpenFile(dev, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			garbage := bytes.Repeat([]byte{0x5a}, 1000)
			for _, i := range recorded[:3] {
				f.WriteAt(garbage, intPieceDisk(im, i, 100))
			}
			f.Sync()
			f.Close()
			return dev
		}, "3 did not match"},
		{"re-attached to another file", func(t *testing.T, dev string, _ []int) string {
			other := filepath.Join(t.TempDir(), "other.img")
			os.WriteFile(other, nil, 0o644)
			os.Truncate(other, im.devSize)
			disktest.Run(t, "losetup", "-d", dev)
			var err error
			for range 20 {
				var out []byte
				if out, err = exec.Command("losetup", dev, other).CombinedOutput(); err == nil {
					return dev
				}
				err = fmt.Errorf("%v: %s", err, out)
				time.Sleep(100 * time.Millisecond)
			}
			t.Fatalf("could not re-attach %s to another file: %v", dev, err)
			return ""
		}, "another disk"},
	} {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			dev := disktest.NewLoop(t, im.devSize, nil)
			rec := engine.ResumePath(dev, engine.TargetDevice, intInfoHash(t, im))
			n := intKilledDeploy(t, im, env, peer, dev, rec)
			recorded := intRecorded(t, im, rec)
			if len(recorded) != n || n < 3 {
				t.Fatalf("record claims %d pieces (%v)", n, recorded)
			}
			target := c.change(t, dev, recorded)
			res, log := intRerun(t, im, env, peer, target)
			if !strings.Contains(log, c.want) {
				t.Errorf("the rerun's log does not say %q:\n%s", c.want, capTail(log))
			}
			got := int64(res["bytes_downloaded"].(float64))
			t.Logf("%s: %d pieces recorded; rerun downloaded %d of %d bytes", c.name, n, got, im.total)
			switch c.name {
			case "three pieces overwritten":
				// Only what was never recorded, plus the 3 wrong pieces
				// (give or take pieces in flight at the kill).
				if max := im.total - int64(n-3)*im.pieceLength + 2*im.pieceLength; got > max {
					t.Errorf("rerun downloaded %d bytes, more than the %d missing: the good recorded pieces were not kept", got, max)
				}
				if min := im.total - int64(n)*im.pieceLength + 3*im.pieceLength - 2*im.pieceLength; got < min {
					t.Errorf("rerun downloaded %d bytes, fewer than the missing + 3 bad pieces (%d)", got, min)
				}
			default:
				if got < im.total-im.pieceLength {
					t.Errorf("rerun downloaded %d of %d bytes: it trusted pieces that were not on the target", got, im.total)
				}
			}
			if _, err := os.Stat(rec); err == nil {
				t.Error("the resume record outlived a completed deploy")
			}
		})
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func intInfoHash(t *testing.T, im *intImage) [20]byte {
	t.Helper()
	mi, err := engine.LoadTorrent(context.Background(), im.torrent)
	if err != nil {
		t.Fatal(err)
	}
	return mi.HashInfoBytes()
}

func TestTwoDeploysToOneDevice(t *testing.T) {
	intNeedRoot(t)
	im := intMakeImage(t, 12<<20, 2, 256<<10, 22)
	_, peer := intSeed(t, im, im.dir)
	dev := disktest.NewLoop(t, im.devSize, nil)
	env := []string{"EZIO_STATE_DIR=" + t.TempDir()}
	first := intStart(t, env, "deploy", im.torrent, dev, "--peer", peer, "--yes", "--json", "--listen", "127.0.0.1:0", "--download-limit", "2MiB")
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(first.stdout.String(), `"phase":"downloading"`) {
		if time.Now().After(deadline) {
			t.Fatalf("first deploy never started downloading: %s", capTail(first.stderr.String()))
		}
		time.Sleep(100 * time.Millisecond)
	}
	code, _, errs := intRun(t, env, time.Minute, "deploy", im.torrent, dev, "--peer", peer, "--yes", "--json", "--listen", "127.0.0.1:0")
	if code != ExitRefused {
		t.Fatalf("second deploy to %s exited %d, want %d (refused)\n%s", dev, code, ExitRefused, errs)
	}
	if !strings.Contains(errs, "in use") || !strings.Contains(errs, "pid") {
		t.Errorf("the refusal does not say the device is in use and by whom:\n%s", errs)
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", dev, mnt).CombinedOutput(); err == nil {
		exec.Command("umount", mnt).Run()
		t.Fatalf("mounting %s during the deploy succeeded: %s", dev, out)
	}
	if c := first.wait(t, 2*time.Minute); c != 0 {
		t.Fatalf("first deploy exited %d: %s", c, capTail(first.stderr.String()))
	}
	intSame(t, im, dev)

	// The same for an image file: the second writer is refused.
	file := filepath.Join(t.TempDir(), "t.img")
	first = intStart(t, nil, "deploy", im.torrent, file, "--peer", peer, "--yes", "--json", "--listen", "127.0.0.1:0", "--download-limit", "2MiB")
	deadline = time.Now().Add(time.Minute)
	for !strings.Contains(first.stdout.String(), `"phase":"downloading"`) {
		if time.Now().After(deadline) {
			t.Fatalf("file deploy never started downloading: %s", capTail(first.stderr.String()))
		}
		time.Sleep(100 * time.Millisecond)
	}
	code, _, errs = intRun(t, nil, time.Minute, "deploy", im.torrent, file, "--peer", peer, "--yes", "--listen", "127.0.0.1:0")
	if code != ExitRefused || !strings.Contains(errs, "another writer") {
		t.Fatalf("second deploy to a file exited %d, want %d with a reason:\n%s", code, ExitRefused, errs)
	}
	if c := first.wait(t, 2*time.Minute); c != 0 {
		t.Fatalf("first file deploy exited %d: %s", c, capTail(first.stderr.String()))
	}
	intSame(t, im, file)
}

func TestCorruptExtentOnTheSeeder(t *testing.T) {
	im := intMakeImage(t, 8<<20, 2, 256<<10, 23)
	// Flip 4 bytes inside the second extent.
	victim := filepath.Join(im.dir, torrentfile.FormatOffset(im.extents[1].Offset))
	f, err := os.OpenFile(victim, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	const at = 300000
	b := make([]byte, 4)
	f.ReadAt(b, at)
	for i := range b {
		b[i] ^= 0xff
	}
	f.WriteAt(b, at)
	f.Close()
	badIndex := int((im.extents[0].Length + at) / im.pieceLength)

	// torrent verify finds it, with its disk offset and file.
	code, out, errs := intRun(t, nil, time.Minute, "torrent", "verify", im.torrent, im.dir)
	if code != ExitFailed {
		t.Fatalf("verify of a corrupted source exited %d, want 1\n%s%s", code, out, errs)
	}
	wantOff := im.extents[1].Offset + int64(badIndex)*im.pieceLength - im.extents[0].Length
	if !strings.Contains(out, fmt.Sprintf("piece %d at disk offset %d", badIndex, wantOff)) || !strings.Contains(out, torrentfile.FormatOffset(im.extents[1].Offset)) {
		t.Errorf("verify output does not name piece %d at %d in %s:\n%s", badIndex, wantOff, torrentfile.FormatOffset(im.extents[1].Offset), out)
	}
	if !strings.Contains(errs, "verifying 100.0%") {
		t.Errorf("no final progress line on stderr:\n%s", errs)
	}
	code, out, _ = intRun(t, nil, time.Minute, "torrent", "verify", im.torrent, im.dir, "--json")
	var vr struct {
		Result string `json:"result"`
		Bad    []struct {
			Index  int    `json:"index"`
			Offset int64  `json:"offset"`
			File   string `json:"file"`
		} `json:"bad_pieces"`
	}
	if err := json.Unmarshal([]byte(out), &vr); err != nil || code != 1 || vr.Result != "bad" || len(vr.Bad) != 1 || vr.Bad[0].Index != badIndex || vr.Bad[0].Offset != wantOff {
		t.Errorf("verify --json: exit %d, %+v (%v)\n%s", code, vr, err, out)
	}
	if code, _, errs := intRun(t, nil, time.Minute, "torrent", "verify", im.torrent, filepath.Join(t.TempDir(), "nothing")); code != ExitRefused {
		t.Errorf("verify of a missing source exited %d, want 2: %s", code, errs)
	}

	// The seeder never sends it: a client gets every other piece, never
	// that one, and sees no hash failure.
	seeder, peer := intSeed(t, im, im.dir)
	n := int((im.total + im.pieceLength - 1) / im.pieceLength)
	var last map[string]any
	// The seeder's rejects must never leave the client's connection
	// without requests (engine/refuse.go): a stall here is a bug.
	target := filepath.Join(t.TempDir(), "t.img")
	client := intStart(t, nil, "deploy", im.torrent, target, "--peer", peer, "--yes", "--json", "--listen", "127.0.0.1:0")
	deadline := time.Now().Add(time.Minute)
	for {
		lines := strings.Split(strings.TrimSpace(client.stdout.String()), "\n")
		json.Unmarshal([]byte(lines[len(lines)-1]), &last)
		if pd, _ := last["pieces_done"].(float64); int(pd) == n-1 {
			break
		}
		select {
		case <-client.done:
			t.Fatalf("client ended (%d) with the bad piece unserved: %s", client.code, capTail(client.stdout.String()))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("client did not get the %d good pieces: %v\nseeder: %s\nclient: %s", n-1, last, capTail(seeder.stderr.String()), capTail(client.stderr.String()))
		}
		time.Sleep(200 * time.Millisecond)
	}
	cpu0 := intCPU(t, seeder.cmd.Process.Pid)
	time.Sleep(3 * time.Second) // time for the bad piece to be sent, if it were
	// The client keeps asking for the piece and the seeder keeps
	// rejecting: that must stay cheap, not a busy loop.
	if busy := intCPU(t, seeder.cmd.Process.Pid) - cpu0; busy > 1500*time.Millisecond {
		t.Errorf("the seeder used %v of CPU in 3 s refusing the bad piece", busy)
	} else {
		t.Logf("seeder CPU while refusing the bad piece: %v in 3 s", busy)
	}
	lines := strings.Split(strings.TrimSpace(client.stdout.String()), "\n")
	json.Unmarshal([]byte(lines[len(lines)-1]), &last)
	client.stop(10 * time.Second)
	if hf, _ := last["hash_failures"].(float64); hf != 0 {
		t.Errorf("the client saw %v hash failures: the seeder sent bad data", hf)
	}
	if got, _ := last["bytes_downloaded"].(float64); int64(got) > im.total-im.pieceLength+64<<10 {
		t.Errorf("the client received %v bytes, more than the %d of the good pieces", got, im.total-im.pieceLength)
	}
	seeder.stop(10 * time.Second)
	if s := seeder.stderr.String(); !strings.Contains(s, "does not match the torrent") || !strings.Contains(s, fmt.Sprintf("piece=%d", badIndex)) {
		t.Errorf("the seeder's log does not report bad piece %d:\n%s", badIndex, capTail(s))
	}
}

// intWaitDownloading waits until a --json deploy reports data arriving.
func intWaitDownloading(t *testing.T, p *intProc) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(p.stdout.String(), `"phase":"downloading"`) {
		select {
		case <-p.done:
			t.Fatalf("deploy ended (%d) before downloading: %s", p.code, capTail(p.stderr.String()))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("deploy never started downloading: %s", capTail(p.stderr.String()))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestWriteErrorsEndTheDeploy(t *testing.T) {
	intNeedRoot(t)
	if _, err := exec.LookPath("blockdev"); err != nil {
		capSkipOrFail(t, "needs blockdev: apt-get install util-linux")
	}
	im := intMakeImage(t, 12<<20, 2, 256<<10, 24)
	_, peer := intSeed(t, im, im.dir)
	env := []string{"EZIO_STATE_DIR=" + t.TempDir()}

	t.Run("device_made_read_only", func(t *testing.T) {
		dev := disktest.NewLoop(t, im.devSize, nil)
		p := intStart(t, env, "deploy", im.torrent, dev, "--peer", peer, "--yes", "--json", "--listen", "127.0.0.1:0", "--download-limit", "2MiB")
		intWaitDownloading(t, p)
		disktest.Run(t, "blockdev", "--setro", dev)
		defer exec.Command("blockdev", "--setrw", dev).Run()
		start := time.Now()
		code := p.wait(t, 30*time.Second)
		took := time.Since(start)
		out := p.stdout.String() + p.stderr.String()
		if code != ExitFailed {
			t.Fatalf("deploy onto a device made read-only exited %d, want 1:\n%s", code, capTail(out))
		}
		if !strings.Contains(out, "at disk offset") {
			t.Errorf("the failure does not give the disk offset:\n%s", capTail(out))
		}
		if took > 10*time.Second {
			t.Errorf("the deploy took %v to fail after the device went read-only", took)
		}
		t.Logf("failed %v after --setro: %s", took.Round(time.Millisecond), strings.TrimSpace(capTail(p.stderr.String())))
	})

	t.Run("file_on_a_full_tmpfs", func(t *testing.T) {
		mnt := t.TempDir()
		disktest.Run(t, "mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt)
		t.Cleanup(func() { exec.Command("umount", mnt).Run() })
		target := filepath.Join(mnt, "t.img")
		start := time.Now()
		code, out, errs := intRun(t, env, time.Minute, "deploy", im.torrent, target, "--peer", peer, "--yes", "--json", "--listen", "127.0.0.1:0")
		if code != ExitFailed {
			t.Fatalf("deploy into a full tmpfs exited %d, want 1:\n%s\n%s", code, capTail(out), errs)
		}
		if !strings.Contains(out+errs, "at disk offset") || !strings.Contains(out+errs, "no space left") {
			t.Errorf("the failure does not give the offset and the cause:\n%s\n%s", capTail(out), errs)
		}
		if _, err := os.Stat(target + ".ezio-resume.tmp"); err == nil {
			t.Error("a temporary resume record was left behind")
		}
		t.Logf("failed in %v: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(errs))
	})
}

// intCorrupt flips 4 bytes at `at` in the image's second extent file and
// returns the index of the piece that holds them.
func intCorrupt(t *testing.T, im *intImage, dir string, at int64) int {
	t.Helper()
	victim := filepath.Join(dir, torrentfile.FormatOffset(im.extents[1].Offset))
	f, err := os.OpenFile(victim, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 4)
	f.ReadAt(b, at)
	for i := range b {
		b[i] ^= 0xff
	}
	f.WriteAt(b, at)
	return int((im.extents[0].Length + at) / im.pieceLength)
}

// TestClientGivesUpOnABadSeeder: the only source is a trusted seeder that
// does not check what it serves (aria2c seeding a corrupted extent
// directory unverified). The client fails within 60 s naming the piece,
// its disk offset and the source, having received at most 1.25 x the image.
func TestClientGivesUpOnABadSeeder(t *testing.T) {
	aria, err := exec.LookPath("aria2c")
	if err != nil {
		capSkipOrFail(t, "needs aria2c: apt-get install aria2")
	}
	im := intMakeImage(t, 8<<20, 2, 256<<10, 25)
	badIndex := intCorrupt(t, im, im.dir, 300000)
	port := disktest.FreePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, aria, "--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false",
		"--enable-peer-exchange=false", "--listen-port="+fmt.Sprint(port), "--file-allocation=none",
		"--console-log-level=warn", "--summary-interval=0", "--disable-ipv6=true",
		"--bt-seed-unverified=true", "--seed-ratio=0.0", "--seed-time=5",
		"--dir="+filepath.Dir(im.dir), im.torrent)
	var alog capBuffer
	cmd.Stdout, cmd.Stderr = &alog, &alog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	// aria2c listens once it has hashed the files.
	disktest.WaitTCP(t, fmt.Sprintf("127.0.0.1:%d", port), time.Minute, &alog)
	target := filepath.Join(t.TempDir(), "t.img")
	start := time.Now()
	code, out, errs := intRun(t, nil, 90*time.Second, "deploy", im.torrent, target, "--seeder", fmt.Sprintf("127.0.0.1:%d", port), "--yes", "--json", "--listen", "127.0.0.1:0")
	took := time.Since(start)
	lines := capJSONLines(t, out)
	if code != ExitFailed || len(lines) == 0 {
		t.Fatalf("deploy from a bad trusted seeder exited %d, want 1\n%s\n%s", code, capTail(out), errs)
	}
	res := lines[len(lines)-1]
	msg := errs + fmt.Sprint(res["error"])
	off := intPieceDisk(im, badIndex, 0)
	for _, want := range []string{fmt.Sprintf("piece %d at disk offset %d", badIndex, off), fmt.Sprintf("127.0.0.1:%d", port), "3 times"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the failure does not say %q:\n%s", want, msg)
		}
	}
	got, _ := res["bytes_downloaded"].(float64)
	if got > 1.25*float64(im.total) {
		t.Errorf("received %v bytes for a %d-byte image (over 1.25x)", got, im.total)
	}
	if took > 60*time.Second {
		t.Errorf("took %v to give up", took)
	}
	t.Logf("gave up after %v, %v of %d bytes received: %s", took.Round(time.Millisecond), got, im.total, strings.TrimSpace(errs))
}

// intCPU is the user+system CPU time a process used so far.
func intCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	var ut, st int64
	fmt.Sscan(f[11], &ut)
	fmt.Sscan(f[12], &st)
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}
