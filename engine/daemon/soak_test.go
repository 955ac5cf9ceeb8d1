package daemon_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"ezio/disks/disktest"
	"ezio/engine/daemon"
	"ezio/engine/ezioapi"
)

// TestDaemonSoak: Clonezilla's scripts keep `ezio daemon` up for a whole
// session and hand it torrent after torrent. Two real daemons, a seeder
// (-F, extent directories) and a client (image files), both driven over
// gRPC on unix sockets; each cycle adds one of four small images to the
// seeder (seeding_mode) and to the client, waits until the client has it,
// removes it from both (RemoveTorrent) and checks the client's file byte
// for byte. After a warm-up, each daemon's goroutines (GetDiagnostics),
// open descriptors (/proc/PID/fd) and resident memory (/proc/PID/status)
// are sampled, and again at the end: they must not have grown beyond the
// margins of soakMargins.
//
// EZIO_DAEMON_SOAK_CYCLES sets the number of cycles (default 40, well
// under two minutes here); bench/daemon-soak.sh runs the long version.
func TestDaemonSoak(t *testing.T) {
	cycles := disktest.SoakCycles(t, "EZIO_DAEMON_SOAK_CYCLES", 40)
	tr := startTracker(t)
	var ims []*image
	for k := range 4 {
		im := makeImage(t, fmt.Sprintf("soak%d", k), 1<<20+int64(k)*77777, 3, uint64(70+k), tr.AnnounceURL())
		serve(t, tr, im)
		ims = append(ims, im)
	}
	wants := make([][32]byte, len(ims))
	for k, im := range ims {
		wants[k] = disktest.Sum(t, im.want)
	}
	sock := func(n string) string { return "unix:" + filepath.Join(t.TempDir(), n+".sock") }
	seeder := startDaemon(t, "seeder", sock("seeder"), nil, "-F", "--listen", "127.0.0.1:0")
	client := startDaemon(t, "client", sock("client"), []string{"EZIO_STATE_DIR=" + t.TempDir()}, "--listen", "127.0.0.1:0")
	first := [2]soakSample{sampleDaemon(t, seeder), sampleDaemon(t, client)}

	dir := t.TempDir()
	warm := 5
	var base [2]soakSample
	start := time.Now()
	for c := range cycles {
		k := c % len(ims)
		im := ims[k]
		target := filepath.Join(dir, fmt.Sprintf("c%d.img", c))
		// A file of the disk's size stands for the disk.
		if err := os.WriteFile(target, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(target, im.devSize); err != nil {
			t.Fatal(err)
		}
		addTorrent(t, seeder, im, im.parent, true)
		addTorrent(t, client, im, target, false)
		done := client.waitQuick(t, im.hash, "finished", time.Minute, func(tr *ezioapi.Torrent) bool { return tr.GetIsFinished() })
		if done.GetProgress() != 1 || done.GetTotalDone() != im.total || done.GetNumPieces() != int64(im.pieces) {
			t.Fatalf("cycle %d: finished status %v", c, done)
		}
		remove(t, client, im.hash)
		remove(t, seeder, im.hash)
		for _, d := range []*runningDaemon{seeder, client} {
			if st := d.status(t); len(st.GetTorrents()) != 0 || len(st.GetHashes()) != 0 {
				t.Fatalf("cycle %d: daemon %s still lists torrents after RemoveTorrent: %v", c, d.name, st)
			}
			if dg := diagnostics(t, d, false); dg.GetTorrents() != 0 || dg.GetSessionTorrents() != 0 {
				t.Fatalf("cycle %d: daemon %s still holds torrents after RemoveTorrent: %v", c, d.name, dg)
			}
		}
		if disktest.Sum(t, target) != wants[k] {
			t.Fatalf("cycle %d: %s differs from image %s", c, target, im.name)
		}
		os.Remove(target)
		if c == warm-1 {
			base = [2]soakSample{sampleDaemon(t, seeder), sampleDaemon(t, client)}
		}
	}
	took := time.Since(start)

	// A second remove of the same hash is NOT_FOUND.
	if _, err := client.cl.RemoveTorrent(context.Background(), &ezioapi.RemoveTorrentRequest{Hash: ims[0].hash}); status.Code(err) != codes.NotFound {
		t.Fatalf("RemoveTorrent of a removed torrent: %v, want NotFound", err)
	}

	// Connections between the two go within their idle time once both
	// have dropped the torrent: give them a moment.
	var end [2]soakSample
	deadline := time.Now().Add(30 * time.Second)
	for {
		end = [2]soakSample{sampleDaemon(t, seeder), sampleDaemon(t, client)}
		if (end[0].within(base[0]) == "" && end[1].within(base[1]) == "") || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	t.Logf("%d cycles in %v (%v each)", cycles, took.Round(time.Millisecond), (took / time.Duration(cycles)).Round(time.Millisecond))
	for i, d := range []*runningDaemon{seeder, client} {
		t.Logf("%s: at start %s; after %d cycles %s; at the end %s", d.name, first[i], warm, base[i], end[i])
		if why := end[i].within(base[i]); why != "" {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			dg, err := d.cl.GetDiagnostics(ctx, &ezioapi.DiagnosticsRequest{GoroutineProfile: true})
			cancel()
			t.Errorf("daemon %s grew over %d cycles:%s\ngoroutines now (%v):\n%s", d.name, cycles-warm, why, err, dg.GetGoroutineProfile())
		}
	}
	shutdown(t, client)
	shutdown(t, seeder)
}

// Margins of the soak, per daemon, between the sample after the warm-up
// and the one at the end: a few goroutines and descriptors for
// connections being torn down at the moment of the sample, and memory
// for the allocator's and the library's caches settling. A leak of one
// goroutine or descriptor per cycle exceeds them within the CI size; the
// long run (500 cycles) catches leaks of a few tens of KiB per cycle.
const (
	soakGoroutines = 25
	soakFDs        = 10
	soakRSS        = 24 << 20
	soakHeap       = 16 << 20
)

type soakSample struct {
	goroutines, fds int64
	rss, heap       int64
}

// sampleDaemon measures one daemon process: descriptors and resident
// memory from /proc as any outside observer sees them, goroutines and
// live heap from the daemon itself (after a collection).
func sampleDaemon(t *testing.T, d *runningDaemon) soakSample {
	t.Helper()
	dg := diagnostics(t, d, true)
	pid := strconv.Itoa(d.cmd.Process.Pid)
	ents, err := os.ReadDir("/proc/" + pid + "/fd")
	if err != nil {
		t.Fatalf("daemon %s: %v", d.name, err)
	}
	rss, err := daemon.ProcRSS(pid)
	if err != nil {
		t.Fatalf("daemon %s: %v", d.name, err)
	}
	return soakSample{goroutines: dg.GetGoroutines(), fds: int64(len(ents)), rss: rss, heap: dg.GetHeapInuseBytes()}
}

func (s soakSample) String() string {
	return fmt.Sprintf("%d goroutines, %d fds, %.1f MiB RSS, %.1f MiB heap", s.goroutines, s.fds, float64(s.rss)/(1<<20), float64(s.heap)/(1<<20))
}

// within says how s exceeds base beyond the margins ("" if it does not).
func (s soakSample) within(base soakSample) string {
	var why string
	if s.goroutines > base.goroutines+soakGoroutines {
		why += fmt.Sprintf(" goroutines %d -> %d (margin %d);", base.goroutines, s.goroutines, soakGoroutines)
	}
	if s.fds > base.fds+soakFDs {
		why += fmt.Sprintf(" fds %d -> %d (margin %d);", base.fds, s.fds, soakFDs)
	}
	if s.rss > base.rss+soakRSS {
		why += fmt.Sprintf(" RSS %.1f -> %.1f MiB (margin %d MiB);", float64(base.rss)/(1<<20), float64(s.rss)/(1<<20), soakRSS>>20)
	}
	if s.heap > base.heap+soakHeap {
		why += fmt.Sprintf(" heap %.1f -> %.1f MiB (margin %d MiB);", float64(base.heap)/(1<<20), float64(s.heap)/(1<<20), soakHeap>>20)
	}
	return why
}

func diagnostics(t *testing.T, d *runningDaemon, gc bool) *ezioapi.DiagnosticsResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dg, err := d.cl.GetDiagnostics(ctx, &ezioapi.DiagnosticsRequest{CollectGarbage: gc})
	if err != nil {
		t.Fatalf("daemon %s: GetDiagnostics: %v", d.name, err)
	}
	if dg.GetGoroutines() <= 0 || dg.GetOpenFiles() <= 0 || dg.GetRssBytes() <= 0 || dg.GetHeapInuseBytes() <= 0 {
		t.Fatalf("daemon %s: GetDiagnostics: %v", d.name, dg)
	}
	return dg
}

func remove(t *testing.T, d *runningDaemon, hash string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := d.cl.RemoveTorrent(ctx, &ezioapi.RemoveTorrentRequest{Hash: hash}); err != nil {
		t.Fatalf("daemon %s: RemoveTorrent %s: %v", d.name, hash, err)
	}
}

// waitQuick is waitFor polling every 50 ms: a soak's cycles are short.
func (d *runningDaemon) waitQuick(t *testing.T, hash, what string, timeout time.Duration, cond func(*ezioapi.Torrent) bool) *ezioapi.Torrent {
	t.Helper()
	return d.waitEvery(t, hash, what, timeout, 50*time.Millisecond, cond)
}
