package tui

import (
	"fmt"
	"reflect"
	"time"

	"ezio/engine"
)

// phaseWaiting is the phase of a deploy that lost its seeder and waits
// for it to come back (engine.PhaseWaiting once the engine has it).
const phaseWaiting = engine.Phase("waiting")

// lostSince is when the seeder was lost, read from the snapshot's
// LostSince field when the engine has one (zero otherwise): the
// dashboard works with engines from before and after that field.
func lostSince(s engine.Snapshot) time.Time {
	f := reflect.ValueOf(s).FieldByName("LostSince")
	if !f.IsValid() {
		return time.Time{}
	}
	t, _ := f.Interface().(time.Time)
	return t
}

// lostFor says how long ago, in whole seconds or minutes.
func lostFor(d time.Duration) string {
	d = max(0, d).Round(time.Second)
	if d < time.Minute {
		return fmt.Sprintf("%d s", int(d.Seconds()))
	}
	return fmt.Sprintf("%d min", int(d.Minutes()))
}
