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
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	pp "github.com/anacrolix/torrent/peer_protocol"
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

// TestRequestSizeInAnEzioRoom: a deploy in an ezio room (its torrent came
// from an ezio server with the seeder's address) asks for RoomChunkSize at
// a time; any other deploy asks for 16 KiB, the most Transmission and
// libtorrent accept, as TestWeDownloadFromAria2 needs.
func TestRequestSizeInAnEzioRoom(t *testing.T) {
	for _, room := range []bool{true, false} {
		im := makeImage(t, 4<<20, 2, 1<<20, 7)
		seed := startSeed(t, im, im.dir)
		var mu sync.Mutex
		lengths := map[int]int{}
		seed.sess.mu.Lock() // the session's callbacks read the hooks under it
		prev := seed.hooks.read
		seed.hooks.read = func(pc *torrent.PeerConn, m *pp.Message) {
			if m.Type == pp.Request {
				mu.Lock()
				lengths[int(m.Length)]++
				mu.Unlock()
			}
			if prev != nil {
				prev(pc, m)
			}
		}
		seed.sess.mu.Unlock()
		target := makeTargetFile(t, im.size)
		j, err := Deploy(context.Background(), DeployOptions{
			Torrent: im.mi, Target: target, SkipSafetyChecks: true, EzioRoom: room,
			Seeders: []string{seed.PeerAddr()}, Tuning: Tuning{ListenAddr: "127.0.0.1:0"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := waitJob(t, j, 2*time.Minute); err != nil {
			t.Fatal(err)
		}
		checkTarget(t, im, target)
		want := 16 << 10
		if room {
			want = RoomChunkSize
		}
		mu.Lock()
		for n, c := range lengths {
			// A piece's last request may be shorter; none is longer.
			if n > want {
				t.Errorf("ezio room %v: %d requests of %d bytes, over %d", room, c, n, want)
			}
		}
		if lengths[want] == 0 {
			t.Errorf("ezio room %v: no request of %d bytes (lengths seen: %v)", room, want, lengths)
		}
		mu.Unlock()
	}
}
