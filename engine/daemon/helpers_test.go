package daemon_test

// Helpers of the end-to-end tests: the real ezio binary run as daemons on
// loopback, images made of extent files, an embedded tracker.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"ezio/disks/disktest"
	"ezio/engine"
	"ezio/engine/daemon"
	"ezio/engine/ezioapi"
	"ezio/engine/server"
	"ezio/engine/torrentfile"
)

// runningDaemon is one `ezio daemon` process this test started.
type runningDaemon struct {
	t      *testing.T
	name   string
	addr   string
	cmd    *exec.Cmd
	log    *disktest.SyncBuffer
	exited chan struct{}
	err    error
	cl     ezioapi.EZIOClient
}

// startDaemon runs `ezio daemon` with args and waits until it answers.
func startDaemon(t *testing.T, name, grpcAddr string, env []string, args ...string) *runningDaemon {
	t.Helper()
	bin := disktest.EzioBinary(t)
	all := append([]string{"daemon", "--grpc-listen", grpcAddr, "--log-level", "info"}, args...)
	cmd := exec.Command(bin, all...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = t.TempDir() // whatever it leaves in its working directory goes too
	d := &runningDaemon{t: t, name: name, addr: grpcAddr, cmd: cmd, log: &disktest.SyncBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = d.log, d.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.err = cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-d.exited:
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				<-d.exited
			}
		}
		if t.Failed() {
			t.Logf("log of daemon %s:\n%s", d.name, d.log.String())
		}
	})
	cl, cc, err := daemon.Dial(grpcAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	d.cl = cl
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		v, err := cl.GetVersion(ctx, &ezioapi.Empty{})
		cancel()
		if err == nil {
			if v.GetVersion() != engine.Version {
				t.Fatalf("daemon %s: version %q", name, v.GetVersion())
			}
			return d
		}
		select {
		case <-d.exited:
			t.Fatalf("daemon %s exited before answering: %v\n%s", name, d.err, d.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon %s does not answer at %s: %v\n%s", name, grpcAddr, err, d.log.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitExit waits for the process to end and returns its exit code.
func (d *runningDaemon) waitExit(timeout time.Duration) int {
	d.t.Helper()
	select {
	case <-d.exited:
	case <-time.After(timeout):
		d.t.Fatalf("daemon %s still running %s after Shutdown\n%s", d.name, timeout, d.log.String())
	}
	return d.cmd.ProcessState.ExitCode()
}

func (d *runningDaemon) status(t *testing.T, hashes ...string) *ezioapi.UpdateStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := d.cl.GetTorrentStatus(ctx, &ezioapi.UpdateRequest{Hashes: hashes})
	if err != nil {
		t.Fatalf("daemon %s: GetTorrentStatus: %v", d.name, err)
	}
	return st
}

func (d *runningDaemon) torrent(t *testing.T, hash string) *ezioapi.Torrent {
	t.Helper()
	st := d.status(t, hash)
	tr := st.GetTorrents()[hash]
	if tr == nil {
		t.Fatalf("daemon %s does not report torrent %s: %v", d.name, hash, st)
	}
	return tr
}

// waitFor polls one torrent until cond holds.
func (d *runningDaemon) waitFor(t *testing.T, hash, what string, timeout time.Duration, cond func(*ezioapi.Torrent) bool) *ezioapi.Torrent {
	t.Helper()
	return d.waitEvery(t, hash, what, timeout, 250*time.Millisecond, cond)
}

// waitEvery polls one torrent every poll until cond holds.
func (d *runningDaemon) waitEvery(t *testing.T, hash, what string, timeout, poll time.Duration, cond func(*ezioapi.Torrent) bool) *ezioapi.Torrent {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		tr := d.torrent(t, hash)
		if cond(tr) {
			return tr
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon %s, torrent %s: not %s within %s; last status %v", d.name, tr.GetName(), what, timeout, tr)
		}
		time.Sleep(poll)
	}
}

// image is a synthetic partition held as partclone extent files.
type image struct {
	parent  string // the -F save_path: holds name/
	name    string
	devSize int64  // device size the extents belong to
	want    string // a file of devSize bytes: what a deployed device must equal
	mi      *metainfo.MetaInfo
	raw     []byte // the .torrent
	hash    string
	total   int64 // bytes of data
	pieces  int
}

// makeImage writes n extents of about total/n bytes at odd offsets with
// gaps between them, and a torrent of 256 KiB pieces announcing to tracker.
func makeImage(t *testing.T, name string, total int64, n int, seed uint64, tracker string) *image {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, seed*3+1))
	im := &image{parent: t.TempDir(), name: name}
	dir := filepath.Join(im.parent, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	want, err := os.Create(filepath.Join(t.TempDir(), name+".want"))
	if err != nil {
		t.Fatal(err)
	}
	off := int64(4096*3 + 517)
	for i := range n {
		b := make([]byte, total/int64(n)+int64(i*1013))
		for k := range b {
			b[k] = byte(r.Uint32())
		}
		if err := os.WriteFile(filepath.Join(dir, torrentfile.FormatOffset(off)), b, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := want.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
		off += int64(len(b)) + 8191
	}
	im.devSize = (off + 1<<20) &^ (1<<20 - 1)
	if err := want.Truncate(im.devSize); err != nil {
		t.Fatal(err)
	}
	want.Close()
	im.want = want.Name()
	mi, err := engine.CreateTorrent(context.Background(), dir, engine.CreateOptions{PieceLength: 256 << 10, Trackers: []string{tracker}})
	if err != nil {
		t.Fatal(err)
	}
	im.mi = mi
	tf := filepath.Join(t.TempDir(), name+".torrent")
	if err := engine.WriteTorrent(mi, tf); err != nil {
		t.Fatal(err)
	}
	if im.raw, err = os.ReadFile(tf); err != nil {
		t.Fatal(err)
	}
	im.hash = mi.HashInfoBytes().HexString()
	info, err := mi.UnmarshalInfo()
	if err != nil {
		t.Fatal(err)
	}
	im.total, im.pieces = info.TotalLength(), info.NumPieces()
	return im
}

// startTracker runs ezio's embedded tracker for the test's swarms (the
// role opentracker plays beside Clonezilla's Lite Server); serve registers
// each image with it.
func startTracker(t *testing.T) *server.Server {
	t.Helper()
	srv, err := server.NewServer(fmt.Sprintf("127.0.0.1:%d", disktest.FreePort(t)), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func addTorrent(t *testing.T, d *runningDaemon, im *image, savePath string, seeding bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := d.cl.AddTorrent(ctx, &ezioapi.AddRequest{Torrent: im.raw, SavePath: savePath, SeedingMode: seeding, MaxUploads: 5, MaxConnections: 6})
	if err != nil {
		t.Fatalf("daemon %s: AddTorrent %s -> %s: %v", d.name, im.name, savePath, err)
	}
	if !res.GetResult() {
		t.Fatalf("daemon %s: AddTorrent answered result=false", d.name)
	}
}

func shutdown(t *testing.T, d *runningDaemon) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := d.cl.Shutdown(ctx, &ezioapi.Empty{}); err != nil {
		t.Fatalf("daemon %s: Shutdown: %v", d.name, err)
	}
	if code := d.waitExit(time.Minute); code != 0 {
		t.Fatalf("daemon %s exited %d after Shutdown\n%s", d.name, code, d.log.String())
	}
}

func serve(t *testing.T, tr *server.Server, im *image) {
	t.Helper()
	if err := tr.AddImage(im.mi, 0); err != nil {
		t.Fatal(err)
	}
}
