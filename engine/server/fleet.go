package server

// A seeder's fleet: each client as the tracker saw it, and the count a
// room is judged by.

import (
	"time"

	"github.com/anacrolix/torrent/metainfo"
)

// FleetMember is one client as the seeder sees it.
type FleetMember struct {
	Addr string  `json:"addr"`
	Done float64 `json:"done"` // 0..1, from what it announced
	// Completed is true only when the client said it is complete and the
	// seeder saw it take the image (see Server.SetWitness).
	Completed bool `json:"completed"`
	// Reported is a completion the client claimed that the seeder could
	// not confirm.
	Reported bool `json:"reported,omitempty"`
	// State is one of "downloading", "done", "reported", "left" (it said
	// it stopped before it was done) and "lost" (silent for two intervals).
	State    string  `json:"state"`
	Active   bool    `json:"active"`
	Rate     float64 `json:"rate"` // bytes/s, between its last two announces
	LastSeen float64 `json:"last_seen_seconds"`
}

// DoneCount is how many of a fleet the seeder saw complete: the one count
// a room is judged by (--expect, the dashboards, the status page).
func DoneCount(fleet []FleetMember) int {
	n := 0
	for _, m := range fleet {
		if m.Completed {
			n++
		}
	}
	return n
}

// Fleet states.
const (
	FleetDownloading = "downloading"
	FleetDone        = "done"
	FleetReported    = "reported"
	FleetLeft        = "left"
	FleetLost        = "lost"
)

// Fleet lists the clients that announced for an image.
func (s *Server) Fleet(ih metainfo.Hash, total int64) []FleetMember {
	s.mu.Lock()
	defer s.mu.Unlock()
	sw := s.swarms[ih]
	if sw == nil {
		return nil
	}
	now := s.now()
	sw.sweepLocked(now, false)
	if total <= 0 {
		total = sw.total
	}
	return sw.membersLocked(now, total)
}

func (p *trackedPeer) member(now time.Time, total int64) FleetMember {
	m := FleetMember{Addr: p.addr.String(), Completed: p.verified, Reported: p.claimed && !p.verified, LastSeen: now.Sub(p.last).Seconds()}
	m.Active = !p.stopped && now.Sub(p.last) < lostAfter
	if total > 0 {
		m.Done = float64(total-p.left) / float64(total)
	}
	switch {
	case p.verified:
		m.State, m.Done = FleetDone, 1
	case p.claimed:
		m.State = FleetReported
	case p.stopped:
		m.State = FleetLeft
	case !m.Active:
		m.State = FleetLost
	default:
		m.State = FleetDownloading
		m.Rate = p.rate
	}
	return m
}
