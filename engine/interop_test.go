package engine

import (
	"bytes"
	"context"
	"ezio/disks/disktest"
	"ezio/engine/torrentfile"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// aria2 options for a closed loopback swarm.
func aria2Args(port int) []string {
	return []string{
		"--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false", "--enable-peer-exchange=false",
		"--listen-port=" + strconv.Itoa(port), "--file-allocation=none", "--console-log-level=warn",
		"--summary-interval=0", "--disable-ipv6=true", "--bt-stop-timeout=90",
	}
}

// TestAria2DownloadsFromOurSeeder: a torrent we make is fetched whole by a
// client nobody here wrote, from our seeder through our tracker.
func TestAria2DownloadsFromOurSeeder(t *testing.T) {
	aria := requireTool(t, "aria2c")
	im := makeImage(t, 12<<20, 4, 256<<10, 11)
	seed := startSeed(t, im, im.dir)
	mi := *im.mi
	mi.Announce = seed.TrackerURL()
	tf := filepath.Join(t.TempDir(), "img.torrent")
	if err := WriteTorrent(&mi, tf); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append(aria2Args(disktest.FreePort(t)), "--seed-time=0", "--dir="+out, tf)
	cmd := exec.CommandContext(ctx, aria, args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("aria2c: %v\n%s", err, b)
	}
	_, l, _ := torrentfile.Summarize(im.mi)
	for i := range im.extents {
		got, err := os.ReadFile(filepath.Join(out, im.name, l.FileNames[i]))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, im.data[i]) {
			t.Fatalf("aria2c's copy of extent %s differs", l.FileNames[i])
		}
	}
	if up := seed.Snapshot().BytesUploaded; up < l.Total {
		t.Errorf("seeder reports %d bytes uploaded, less than the image's %d", up, l.Total)
	}
}

// TestWeDownloadFromAria2: aria2c seeds a partclone-layout directory and
// our client writes the image onto a target from it alone.
func TestWeDownloadFromAria2(t *testing.T) {
	aria := requireTool(t, "aria2c")
	im := makeImage(t, 12<<20, 4, 256<<10, 12)
	tf := filepath.Join(t.TempDir(), "img.torrent")
	if err := WriteTorrent(im.mi, tf); err != nil {
		t.Fatal(err)
	}
	// aria2c expects DIR/<name>/<file names as in the torrent>.
	parent := filepath.Dir(im.dir)
	port := disktest.FreePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args := append(aria2Args(port), "--check-integrity=true", "--seed-ratio=0.0", "--seed-time=3", "--dir="+parent, tf)
	cmd := exec.CommandContext(ctx, aria, args...)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	// aria2c listens once it has hashed the files.
	disktest.WaitTCP(t, fmt.Sprintf("127.0.0.1:%d", port), time.Minute, &log)
	target := makeTargetFile(t, im.size)
	j, err := Deploy(context.Background(), DeployOptions{
		Torrent: im.mi, Target: target, SkipSafetyChecks: true,
		Peers:  []string{fmt.Sprintf("127.0.0.1:%d", port)},
		Tuning: Tuning{ListenAddr: "127.0.0.1:0"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := waitJob(t, j, 2*time.Minute); err != nil {
		t.Fatalf("%v\naria2c log:\n%s", err, log.String())
	}
	checkTarget(t, im, target)
}
