package daemon_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"ezio/disks/disktest"
	"ezio/engine"
	"ezio/engine/ezioapi"
	"ezio/engine/torrentfile"
)

// TestDaemonRefusesMountedTarget: a save_path that `ezio deploy` refuses
// (here a mounted ext4 loop device) is refused by AddTorrent with the
// same sentence, as FAILED_PRECONDITION, and the device is left alone.
func TestDaemonRefusesMountedTarget(t *testing.T) {
	disktest.Need(t, true)
	for _, tool := range []string{"mkfs.ext4", "mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			disktest.SkipOrFail(t, "%s is missing (e2fsprogs, mount)", tool)
		}
	}
	tr := startTracker(t)
	im := makeImage(t, "sda1", 2<<20, 3, 5, tr.AnnounceURL())
	dev := disktest.NewLoop(t, max(im.devSize, 32<<20), nil)
	// Mounted read-only without the journal: the kernel itself writes
	// nothing, so any change is ezio's.
	disktest.Run(t, "mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", dev)
	mnt := t.TempDir()
	disktest.Run(t, "mount", "-o", "ro,noload", dev, mnt)
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	disktest.Run(t, "sync")
	before := disktest.Sum(t, dev)

	d := startDaemon(t, "client", "unix:"+filepath.Join(t.TempDir(), "d.sock"), []string{"EZIO_STATE_DIR=" + t.TempDir()}, "--listen", "127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := d.cl.AddTorrent(ctx, &ezioapi.AddRequest{Torrent: im.raw, SavePath: dev, MaxUploads: 5, MaxConnections: 6})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("AddTorrent onto mounted %s: %v, want FailedPrecondition", dev, err)
	}
	msg := status.Convert(err).Message()
	if !strings.Contains(msg, "mounted") {
		t.Fatalf("refusal does not say the target is mounted: %q", msg)
	}

	// `ezio deploy` prints the same sentence and exits 2.
	tf := filepath.Join(t.TempDir(), "sda1.torrent")
	if err := os.WriteFile(tf, im.raw, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(disktest.EzioBinary(t), "deploy", tf, dev, "--yes")
	cmd.Env = append(os.Environ(), "EZIO_STATE_DIR="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != 2 {
		t.Fatalf("ezio deploy onto a mounted device exited %d, want 2\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "ezio: "+msg) {
		t.Fatalf("the daemon said %q, ezio deploy said:\n%s", msg, stderr.String())
	}

	if st := d.status(t); len(st.GetTorrents()) != 0 {
		t.Fatalf("a refused torrent is listed: %v", st)
	}
	disktest.Run(t, "sync")
	if disktest.Sum(t, dev) != before {
		t.Fatal("the mounted device changed")
	}
	shutdown(t, d)
}

// TestDaemonAcceptsLargeTorrent: a torrent of 300,000 extents (over
// 15 MB, far beyond gRPC's 4 MiB default) is accepted and reported.
func TestDaemonAcceptsLargeTorrent(t *testing.T) {
	const n = 300_000
	exts := make([]torrentfile.Extent, n)
	for i := range exts {
		exts[i] = torrentfile.Extent{Offset: int64(i) * 8192, Length: 4096}
	}
	const pl = 16 << 20
	pieces := (n*4096 + pl - 1) / pl
	mi, err := engine.BuildFromExtents("big1", pl, exts, make([][20]byte, pieces), nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := mi.Write(&buf); err != nil {
		t.Fatal(err)
	}
	if buf.Len() < 15<<20 {
		t.Fatalf("the test torrent is only %d bytes", buf.Len())
	}
	// Served in raw mode from a sparse image file: nothing to download.
	src := filepath.Join(t.TempDir(), "big1.img")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(int64(n) * 8192)
	f.Close()
	d := startDaemon(t, "big", "unix:"+filepath.Join(t.TempDir(), "d.sock"), nil, "--listen", "127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := d.cl.AddTorrent(ctx, &ezioapi.AddRequest{Torrent: buf.Bytes(), SavePath: src, SeedingMode: true}); err != nil {
		t.Fatalf("AddTorrent of a %d-byte torrent: %v", buf.Len(), err)
	}
	h := mi.HashInfoBytes().HexString()
	tr := d.torrent(t, h)
	if tr.GetName() != "big1" || tr.GetTotal() != n*4096 {
		t.Fatalf("status of the large torrent: %v", tr)
	}
	shutdown(t, d)
}
