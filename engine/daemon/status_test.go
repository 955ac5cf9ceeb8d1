package daemon

import (
	"testing"
	"time"

	"ezio/engine"
)

func TestSlowStartLimitRampsLikeEZIO(t *testing.T) {
	p := 10 * time.Second
	for _, c := range []struct {
		at   time.Duration
		want int64
	}{
		{0, 10 << 20},
		{9 * time.Second, 10 << 20},
		{10 * time.Second, 20 << 20},
		{85 * time.Second, 90 << 20},
		{90 * time.Second, 0}, // 100 MiB/s would be next: unlimited
		{time.Hour, 0},
	} {
		if got := SlowStartLimit(c.at, p); got != c.want {
			t.Errorf("SlowStartLimit(%s) = %d, want %d", c.at, got, c.want)
		}
	}
}

func TestStateNumbersAreLibtorrents(t *testing.T) {
	for p, want := range map[engine.Phase]int64{
		engine.PhaseStarting: 1, engine.PhaseChecking: 1, engine.PhaseConnecting: 3,
		engine.PhaseDownloading: 3, engine.PhaseFlushing: 3, engine.PhaseSeeding: 5,
		engine.PhaseDone: 4, engine.PhaseFailed: 0,
	} {
		if got := stateOf(p); got != want {
			t.Errorf("stateOf(%s) = %d, want %d", p, got, want)
		}
	}
}

// The time fields: seconds since, -1 for never; finished only once every
// piece is verified and the job is serving or done.
func TestObserveTracksLastTransferAndFinish(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	e := &entry{added: t0}
	e.observe(engine.Snapshot{Phase: engine.PhaseDownloading, PiecesTotal: 4, PiecesDone: 1, BytesDownloaded: 100}, t0.Add(2*time.Second))
	e.observe(engine.Snapshot{Phase: engine.PhaseDownloading, PiecesTotal: 4, PiecesDone: 2, BytesDownloaded: 100}, t0.Add(5*time.Second))
	if !e.lastDown.Equal(t0.Add(2*time.Second)) || !e.lastUp.IsZero() || !e.finishedAt.IsZero() {
		t.Fatalf("after two samples: last down %v, last up %v, finished %v", e.lastDown, e.lastUp, e.finishedAt)
	}
	e.observe(engine.Snapshot{Phase: engine.PhaseSeeding, PiecesTotal: 4, PiecesDone: 4, BytesDownloaded: 400, BytesUploaded: 50}, t0.Add(9*time.Second))
	if !e.finishedAt.Equal(t0.Add(9*time.Second)) || !e.lastUp.Equal(t0.Add(9*time.Second)) {
		t.Fatalf("after completion: finished %v, last up %v", e.finishedAt, e.lastUp)
	}
	e.observe(engine.Snapshot{Phase: engine.PhaseFailed, PiecesTotal: 4, PiecesDone: 4}, t0.Add(10*time.Second))
	if !e.failed {
		t.Fatal("a failure the daemon did not cause is not recorded")
	}
}
