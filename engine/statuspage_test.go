package engine

import (
	"context"
	"ezio/disks/disktest"
	"ezio/engine/server"
	"strings"
	"testing"
	"time"
)

// TestStatusPageInBrowserDuringSwarm loads the page in Chromium while two
// clients deploy from a real seeder over loopback, and once they are done.
func TestStatusPageInBrowserDuringSwarm(t *testing.T) {
	disktest.Need(t, false, "chromium")
	im := makeImage(t, 24<<20, 4, 256<<10, 21)
	seed := startSeed(t, im, im.dir)
	// The seeder wires in the witness itself (Session.Seed); the room
	// size is what `ezio seed --expect 2` would set.
	seed.server().SetExpect(2)
	page := seed.ServerURL() + "/"

	var jobs []*Job
	var targets []string
	for range 2 {
		target := makeTargetFile(t, im.size)
		j, err := Deploy(context.Background(), DeployOptions{
			Torrent: im.mi, Target: target, Trackers: []string{seed.TrackerURL()},
			Seeders: []string{seed.PeerAddr()}, SkipSafetyChecks: true, SeedAfter: 2 * time.Second,
			// Slow enough for the browser to see the swarm at work.
			Tuning: Tuning{ListenAddr: "127.0.0.1:0", MaxDownloadRate: 3 << 20},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { j.Stop(); <-j.Done() })
		jobs = append(jobs, j)
		targets = append(targets, target)
	}
	// Wait for both clients to have announced, then look.
	deadline := time.Now().Add(60 * time.Second)
	for len(seed.Fleet()) < 2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	during := disktest.BrowserDOM(t, page)
	if !strings.Contains(during, `data-live="1"`) || !strings.Contains(during, "of 2 clients done") || strings.Count(during, `<td>127.0.0.1:`) != 2 {
		t.Errorf("during the swarm the page does not show two clients:\n%s", during)
	}
	for i, j := range jobs {
		if err := waitJob(t, j, 2*time.Minute); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		checkTarget(t, im, targets[i])
	}
	// The last announces and the witness's second looks take a moment.
	var st server.Status
	deadline = time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if st = seed.server().Status("x"); st.Done == 2 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	after := disktest.BrowserDOM(t, page)
	// The seeder confirms a completion from what its own connections saw
	// (its periodic look, and each connection's last have count as it
	// closes): both clients are done, and the browser shows it.
	st = seed.server().Status("x")
	if !strings.Contains(after, "2 of 2 clients done") || strings.Count(after, ">100%<") != 2 {
		t.Errorf("after the swarm the page does not show \"2 of 2 clients done\" and both clients at 100%%:\n%s", after)
	}
	if n := strings.Count(after, `<td class="state">done</td>`); n != 2 {
		t.Errorf("after the swarm %d clients show done, want 2:\n%s", n, after)
	}
	if st.Done != 2 {
		t.Errorf("the seeder confirmed %d clients, want 2: %+v", st.Done, st.Images[0].Fleet)
	}
}
