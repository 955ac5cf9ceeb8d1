package room

import (
	"context"
	"fmt"
	"strings"
	"time"

	"ezio/engine/netboot"
	"ezio/engine/server"
)

// States are the machine states in the order a machine goes through them.
var States = []string{netboot.StateBooting, netboot.StateDeploying, netboot.StateVerified, netboot.StateRebooted, netboot.StateFailed}

// Done counts the machines that reached "verified" (or came back after
// it) and how many of those have not yet come back to their disk.
func Done(ms []server.Machine) (verified, waiting int) {
	for _, m := range ms {
		switch m.State {
		case netboot.StateVerified:
			verified++
			waiting++
		case netboot.StateRebooted:
			verified++
		}
	}
	return verified, waiting
}

// Counts says how many machines are in each state, in the order of
// States, the empty ones left out: "2 verified, 1 deploying".
func Counts(ms []server.Machine) string {
	n := map[string]int{}
	for _, m := range ms {
		n[m.State]++
	}
	var parts []string
	for _, st := range States {
		if n[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[st], st))
		}
	}
	return strings.Join(parts, ", ")
}

// Watch ends the seeder (stop) once expect machines are verified and,
// when they reboot, are back in their own system (or linger passed; 0:
// wait for them). reached is told once, when expect are verified.
type Watch struct {
	Expect  int
	Then    string
	Linger  time.Duration
	Reached func(verified int)
	Stop    func()
}

// Run samples srv's machines every second until ctx ends or it stops.
func (w Watch) Run(ctx context.Context, srv *server.Server) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var reached time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		verified, waiting := Done(srv.Machines())
		if verified < w.Expect {
			continue
		}
		if reached.IsZero() {
			reached = time.Now()
			if w.Reached != nil {
				w.Reached(verified)
			}
		}
		if w.Then == ThenPoweroff || waiting == 0 || (w.Linger > 0 && time.Since(reached) >= w.Linger) {
			w.Stop()
			return
		}
	}
}
