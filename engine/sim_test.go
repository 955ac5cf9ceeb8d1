package engine

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestSwarmSimulation is a quick in-process model of a LAN swarm: every
// node's up and down rates are capped like a link. It is for tuning the
// engine between runs of the real namespace benchmark in bench/, and runs
// only when EZIO_SIM=1 (timings on a shared 2-core machine are not tests).
//
//	EZIO_SIM=1 EZIO_SIM_N=8 EZIO_SIM_RATE=12.5e6 go test ./engine -run Simulation -v
func TestSwarmSimulation(t *testing.T) {
	if os.Getenv("EZIO_SIM") != "1" {
		t.Skip("set EZIO_SIM=1 to run the swarm simulation")
	}
	n := envInt("EZIO_SIM_N", 4)
	rate := envFloat("EZIO_SIM_RATE", 12.5e6)
	size := int64(envInt("EZIO_SIM_MB", 128)) << 20
	pl := int64(envInt("EZIO_SIM_PIECE_KB", 1024)) << 10
	im := makeImage(t, size, 8, pl, 42)
	seed, err := Seed(context.Background(), SeedOptions{
		Torrent: im.mi, Source: im.dir, TrackerListen: "127.0.0.1:0",
		Tuning: Tuning{ListenAddr: "127.0.0.1:0", MaxUploadRate: int64(rate)},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { seed.Stop(); seed.Wait() }()
	start := time.Now()
	var jobs []*Job
	if os.Getenv("EZIO_SIM_TRACE") == "1" {
		stopTrace := make(chan struct{})
		defer close(stopTrace)
		go func() {
			for {
				select {
				case <-stopTrace:
					return
				case <-time.After(time.Second):
				}
				line := fmt.Sprintf("%5.1fs seeder up %6.1f MB", time.Since(start).Seconds(), float64(seed.Snapshot().BytesUploaded)/1e6)
				for _, j := range jobs {
					s := j.Snapshot()
					line += fmt.Sprintf(" | %3d%% peers %d", s.BytesDone*100/max(s.BytesTotal, 1), s.NumPeers)
				}
				fmt.Println(line)
			}
		}()
	}
	var wg sync.WaitGroup
	times := make([]time.Duration, n)
	snaps := make([]Snapshot, n)
	for i := range n {
		target := makeTargetFile(t, im.size)
		j, err := Deploy(context.Background(), DeployOptions{
			Torrent: im.mi, Target: target, SkipSafetyChecks: true,
			Trackers: []string{seed.TrackerURL()}, Seeders: []string{seed.PeerAddr()},
			Tuning: Tuning{ListenAddr: "127.0.0.1:0", MaxDownloadRate: int64(rate * envFloat("EZIO_SIM_DOWNCAP", 1)), MaxUploadRate: int64(rate)},
		})
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, j)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := waitJob(t, j, 10*time.Minute); err != nil {
				t.Error(err)
			}
			times[i] = time.Since(start)
			snaps[i] = j.Snapshot()
		}()
	}
	wg.Wait()
	total := time.Since(start)
	ideal := time.Duration(float64(sumLen(im)) / rate * float64(time.Second))
	fmt.Printf("N=%d size=%dMiB piece=%dKiB rate=%.1fMB/s: all done in %v, ideal F/B %v, ratio %.2f; seeder sent %.2f x image\n",
		n, size>>20, pl>>10, rate/1e6, total.Round(10*time.Millisecond), ideal.Round(10*time.Millisecond),
		total.Seconds()/ideal.Seconds(), float64(seed.Snapshot().BytesUploaded)/float64(sumLen(im)))
	hist := map[int]int{}
	for i := range seed.layout.NumPieces {
		_, pl := seed.layout.PieceSpan(i)
		hist[int((seed.st.PieceReads(i)+pl/2)/pl)]++
	}
	fmt.Printf("  seeder: pieces by times sent: %v\n", hist)
	var hot []int
	for i := range seed.layout.NumPieces {
		_, pl := seed.layout.PieceSpan(i)
		if seed.st.PieceReads(i) >= 4*pl {
			hot = append(hot, i)
		}
	}
	fmt.Printf("  seeder: pieces sent 4+ times: %v\n", hot)
	for i := range n {
		fmt.Printf("  client %d: %v, uploaded %.2f x\n", i, times[i].Round(10*time.Millisecond), float64(snaps[i].BytesUploaded)/float64(sumLen(im)))
	}
}

func sumLen(im *testImage) (n int64) {
	for _, e := range im.extents {
		n += e.Length
	}
	return
}

func envInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil {
		return v
	}
	return def
}

func envFloat(k string, def float64) float64 {
	if v, err := strconv.ParseFloat(os.Getenv(k), 64); err == nil {
		return v
	}
	return def
}
