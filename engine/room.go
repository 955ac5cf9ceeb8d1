package engine

import (
	"context"
	"ezio/engine/server"
	"time"
)

// roomPoll is how often RunImage looks at the fleet.
const roomPoll = time.Second

// RoomWatch is the rule a seeder of a room follows to stop by itself: once
// Expect clients have completed and no connected client still needs data,
// or Linger after the room was done even if one still does. The CLI's
// --expect/--exit-when-done/--linger and the wizard's Serve step use it.
type RoomWatch struct {
	Expect int
	Linger time.Duration // 0: wait for every needy client to leave
	// Reached is called once, when Expect clients have completed;
	// Stopping when the seeder is stopped, with how many clients still
	// needed data (non-zero only after Linger). Either may be nil.
	Reached  func(done int)
	Stopping func(needy int)
}

// Run watches j until ctx ends, j ends, or the room is done; it reports
// whether it stopped j because the room was done.
func (r RoomWatch) Run(ctx context.Context, j *Job) bool {
	if r.Expect <= 0 {
		return false
	}
	snaps, _ := j.Subscribe(ctx)
	var reached time.Time
	for {
		select {
		case <-ctx.Done():
			return false
		case <-j.Done():
			return false
		case s := <-snaps.C():
			needy := 0
			for _, p := range s.Peers {
				if !p.Seeder {
					needy++
				}
			}
			if r.done(&reached, s.FleetDone, needy) {
				j.Stop()
				return true
			}
		}
	}
}

// RunImage is Run for an image of several torrents (a disk image): it
// watches the fleet of the image called name on srv, one member per
// client summed over the partitions, and calls stop once the room is
// done. done ends the watch early (the seeder stopped for another
// reason). A client counts as needing data while the tracker has it
// downloading.
func (r RoomWatch) RunImage(ctx context.Context, srv *server.Server, name string, done <-chan struct{}, stop func()) bool {
	if r.Expect <= 0 || srv == nil {
		return false
	}
	tick := time.NewTicker(roomPoll)
	defer tick.Stop()
	var reached time.Time
	for {
		select {
		case <-ctx.Done():
			return false
		case <-done:
			return false
		case <-tick.C:
		}
		fleet := srv.ImageFleet(name)
		completed, needy := 0, 0
		for _, m := range fleet {
			switch {
			case m.Completed:
				completed++
			case m.State == server.FleetDownloading:
				needy++
			}
		}
		if r.done(&reached, completed, needy) {
			stop()
			return true
		}
	}
}

// done applies the rule to one look at the room: completed clients, and
// those still needing data; reached is when Expect were first complete
// (zero until then).
func (r RoomWatch) done(reached *time.Time, completed, needy int) bool {
	if completed < r.Expect {
		return false
	}
	now := time.Now()
	if reached.IsZero() {
		*reached = now
		if r.Reached != nil {
			r.Reached(completed)
		}
	}
	if needy == 0 || (r.Linger > 0 && now.Sub(*reached) >= r.Linger) {
		if r.Stopping != nil {
			r.Stopping(needy)
		}
		return true
	}
	return false
}
