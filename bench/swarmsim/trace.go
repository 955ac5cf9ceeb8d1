package main

import (
	"fmt"
	"os"
)

// traceLine prints, for the first 8 clients, the pieces held, in flight,
// available from connected peers and wanted at high priority, and the
// share of the link rate received over the last second.
func (s *sim) traceLine(t float64) {
	line := fmt.Sprintf("%5.1fs seeder %.2fx %3.0f%% busy %v", t, s.seederSent/(s.plen*float64(s.P)), 100*(s.seederSent-s.lastSeeder)/s.B, s.busy)
	s.lastSeeder = s.seederSent
	for i := range min(s.n, 8) {
		avail := 0
		for p := range s.P {
			if !s.have[i][p] && s.peerHave[i][p] > 0 {
				avail++
			}
		}
		high := 0
		for _, x := range s.prio[i] {
			if x >= 2 {
				high++
			}
		}
		reqs := 0
		for _, l := range s.in[i] {
			reqs += l.maxReq
		}
		line += fmt.Sprintf(" | %3d have %2d fly %3d avail %2d high %4d maxreq %3.0f%%", s.P-s.left[i], len(s.fly[i]), avail, high,
			reqs, 100*(s.recv[i]-s.lastRecv[i])/s.B)
		s.lastRecv[i] = s.recv[i]
	}
	fmt.Fprintln(os.Stderr, line)
}
