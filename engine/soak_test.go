package engine

import (
	"context"
	"ezio/disks/disktest"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// TestSessionSoak: one long-lived session, as `ezio daemon` keeps one for
// a whole Clonezilla run, is handed deploy after deploy. A seeder session
// serves four small images; a client session deploys them in turn into
// image files, each result checked byte for byte, each job ended and
// dropped. Goroutines, open descriptors and heap must end where they were
// after the first cycles (margins below), not grow with the cycle count.
//
// EZIO_SOAK_CYCLES sets the number of cycles (default 60, about 30 s
// here); bench/soak.sh runs the long version (500).
func TestSessionSoak(t *testing.T) {
	cycles := disktest.SoakCycles(t, "EZIO_SOAK_CYCLES", 60)
	t.Setenv("EZIO_STATE_DIR", t.TempDir())
	tu := Tuning{ListenAddr: "127.0.0.1:0"}
	seeder, err := NewSession(SessionOptions{Tuning: tu})
	if err != nil {
		t.Fatal(err)
	}
	defer seeder.Close()
	var ims []*testImage
	for k := range 4 {
		im := makeImage(t, 1<<20+int64(k)*77777, 3, 64<<10, uint64(40+k))
		if _, err := seeder.Seed(context.Background(), SeedOptions{Torrent: im.mi, Source: im.dir}); err != nil {
			t.Fatal(err)
		}
		ims = append(ims, im)
	}
	client, err := NewSession(SessionOptions{Tuning: tu})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	dir := t.TempDir()
	warm := 10
	var base soakSample
	start := time.Now()
	for c := range cycles {
		im := ims[c%len(ims)]
		target := filepath.Join(dir, fmt.Sprintf("c%d.img", c))
		fillPatternFile(t, target, im.size)
		j, err := client.Deploy(context.Background(), DeployOptions{
			Torrent: im.mi, Target: target, Seeders: []string{seeder.PeerAddr()}, SkipSafetyChecks: true,
		})
		if err != nil {
			t.Fatalf("cycle %d: %v", c, err)
		}
		if err := waitJob(t, j, time.Minute); err != nil {
			t.Fatalf("cycle %d: %v", c, err)
		}
		checkTarget(t, im, target)
		if n := len(client.Jobs()); n != 0 {
			t.Fatalf("cycle %d: %d jobs left in the client session after the deploy ended", c, n)
		}
		os.Remove(target)
		if c == warm-1 {
			base = takeSoakSample()
		}
	}
	took := time.Since(start)
	// Connections the seeder drops after a client's job ends go within
	// its idle/keepalive time: give them a moment.
	var end soakSample
	deadline := time.Now().Add(20 * time.Second)
	for {
		end = takeSoakSample()
		if end.within(base) == "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("%d cycles in %v (%v each); after %d cycles: %s; at the end: %s", cycles, took.Round(time.Millisecond), (took / time.Duration(cycles)).Round(time.Millisecond), warm, base, end)
	if why := end.within(base); why != "" {
		t.Errorf("resources grew over %d cycles: %s", cycles-warm, why)
	}
}

// fillPatternFile fills a target with the byte checkTarget expects outside
// the extents.
func fillPatternFile(t *testing.T, path string, size int64) {
	t.Helper()
	b := make([]byte, size)
	for i := range b {
		b[i] = pattern
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

type soakSample struct {
	goroutines int
	fds        int
	heap       uint64 // bytes in use after a GC
}

// Margins: a few goroutines and descriptors for connections being torn
// down at the moment of the sample, and heap for the library's caches.
const (
	soakGoroutines = 25
	soakFDs        = 10
	soakHeap       = 16 << 20
)

func takeSoakSample() soakSample {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	ents, _ := os.ReadDir("/proc/self/fd")
	return soakSample{goroutines: runtime.NumGoroutine(), fds: len(ents), heap: ms.HeapInuse}
}

func (s soakSample) String() string {
	return fmt.Sprintf("%d goroutines, %d fds, %.1f MiB heap", s.goroutines, s.fds, float64(s.heap)/(1<<20))
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
	if s.heap > base.heap+soakHeap {
		why += fmt.Sprintf(" heap %.1f -> %.1f MiB (margin %d MiB);", float64(base.heap)/(1<<20), float64(s.heap)/(1<<20), soakHeap>>20)
	}
	return why
}
