package engine

import (
	"bytes"
	"context"
	"ezio/engine/extent"
	"ezio/engine/torrentfile"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStoppedDeployResumesIntoNewFileAndDirectory: a deploy into an image
// file that did not exist, or into an empty extent directory, stopped
// half-way, is accepted again and fetches only what it lacked, after
// re-verifying what its record claims.
func TestStoppedDeployResumesIntoNewFileAndDirectory(t *testing.T) {
	im := makeImage(t, 12<<20, 4, 512<<10, 31)
	seed := startSeed(t, im, im.dir)
	for _, kind := range []string{"new file", "directory"} {
		t.Run(strings.ReplaceAll(kind, " ", "_"), func(t *testing.T) {
			target := filepath.Join(t.TempDir(), "t.img")
			if kind == "directory" {
				target = t.TempDir()
			}
			opts := DeployOptions{
				Torrent: im.mi, Target: target, SkipSafetyChecks: true,
				Seeders: []string{seed.PeerAddr()},
				// 512 KiB/s: the stop comes at half-way plus a flush
				// (about 14.5 s of the 24 s the image takes), a margin a
				// loaded CI machine's late timers do not eat (at 1 MiB/s
				// one run finished before the stop).
				Tuning: Tuning{ListenAddr: "127.0.0.1:0", MaxDownloadRate: 512 << 10},
			}
			j, err := Deploy(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			snaps, _ := j.Subscribe(context.Background())
			deadline := time.After(time.Minute)
			for s := (Snapshot{}); s.BytesTotal == 0 || s.BytesDone < s.BytesTotal/2; {
				select {
				case s = <-snaps.C():
				case <-deadline:
					t.Fatal("no progress within a minute")
				}
			}
			time.Sleep(extent.FlushInterval + 500*time.Millisecond)
			j.Stop()
			j.Wait()
			first := j.Snapshot()
			if first.PiecesDone == first.PiecesTotal {
				t.Fatal("finished before the stop")
			}
			opts.Tuning.MaxDownloadRate = 0
			j2, err := Deploy(context.Background(), opts)
			if err != nil {
				t.Fatalf("the rerun was refused: %v", err)
			}
			if err := waitJob(t, j2, time.Minute); err != nil {
				t.Fatal(err)
			}
			rv, rf := j2.ResumeCounts()
			second := j2.Snapshot()
			t.Logf("%s: first verified %d pieces; rerun re-verified %d, re-fetched %d, downloaded %d of %d bytes", kind, first.PiecesDone, rv, rf, second.BytesDownloaded, second.BytesTotal)
			if rv == 0 || rf != 0 {
				t.Errorf("rerun re-verified %d and re-fetched %d recorded pieces; want some and none", rv, rf)
			}
			if limit := first.BytesTotal - first.BytesDone + 4*(512<<10); second.BytesDownloaded > limit {
				t.Errorf("rerun downloaded %d bytes, more than the %d missing: it did not resume", second.BytesDownloaded, limit)
			}
			if kind == "directory" {
				_, l, _ := torrentfile.Summarize(im.mi)
				for i := range im.extents {
					got, err := os.ReadFile(filepath.Join(target, l.FileNames[i]))
					if err != nil || !bytes.Equal(got, im.data[i]) {
						t.Fatalf("extent %d differs in the directory (%v)", i, err)
					}
				}
			} else {
				got, _ := os.ReadFile(target)
				for i, e := range im.extents {
					if !bytes.Equal(got[e.Offset:e.End()], im.data[i]) {
						t.Fatalf("extent %d differs", i)
					}
				}
			}
		})
	}
}
