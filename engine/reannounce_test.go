package engine

import (
	"context"
	"ezio/engine/server"
	"testing"
	"time"
)

// TestTorrentAddedAgainFindsPeersThroughTheTracker: the same torrent
// served and deployed three times over in two long-lived sessions (each
// job ended and dropped before the next starts), the client's peers
// coming only from the tracker: every deploy completes, byte-identical.
// With the library announcing a torrent added again (reannounce.go), the
// second deploy never got a peer.
func TestTorrentAddedAgainFindsPeersThroughTheTracker(t *testing.T) {
	t.Setenv("EZIO_STATE_DIR", t.TempDir())
	srv, err := server.NewServer("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	im := makeImage(t, 1<<20, 3, 64<<10, 91)
	im.mi.Announce = srv.AnnounceURL()
	if err := srv.AddImage(im.mi, 0); err != nil {
		t.Fatal(err)
	}
	tu := Tuning{ListenAddr: "127.0.0.1:0"}
	seeder, err := NewSession(SessionOptions{Tuning: tu})
	if err != nil {
		t.Fatal(err)
	}
	defer seeder.Close()
	client, err := NewSession(SessionOptions{Tuning: tu})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	for round := range 3 {
		s, err := seeder.Seed(context.Background(), SeedOptions{Torrent: im.mi, Source: im.dir})
		if err != nil {
			t.Fatal(err)
		}
		target := makeTargetFile(t, im.size)
		start := time.Now()
		j, err := client.Deploy(context.Background(), DeployOptions{Torrent: im.mi, Target: target, Trackers: []string{srv.AnnounceURL()}, SkipSafetyChecks: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := waitJob(t, j, 30*time.Second); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		t.Logf("round %d: deployed in %v", round, time.Since(start).Round(time.Millisecond))
		checkTarget(t, im, target)
		s.Stop()
		if err := s.Wait(); err != nil {
			t.Fatalf("round %d: seeder: %v", round, err)
		}
	}
}
