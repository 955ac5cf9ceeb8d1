package tui

import (
	"fmt"
	"time"

	"ezio/engine"
)

// phaseWaiting is the phase of a deploy that lost its seeder and waits
// for it to come back.
const phaseWaiting = engine.PhaseWaiting

// lostSince is when the seeder was lost (zero while it is there).
func lostSince(s engine.Snapshot) time.Time {
	if s.Phase != engine.PhaseWaiting || s.LostSeconds <= 0 {
		return time.Time{}
	}
	return s.Time.Add(-time.Duration(s.LostSeconds * float64(time.Second)))
}

// lostFor says how long ago, in whole seconds or minutes.
func lostFor(d time.Duration) string {
	d = max(0, d).Round(time.Second)
	if d < time.Minute {
		return fmt.Sprintf("%d s", int(d.Seconds()))
	}
	return fmt.Sprintf("%d min", int(d.Minutes()))
}
