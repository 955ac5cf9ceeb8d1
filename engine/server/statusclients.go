package server

import (
	"fmt"
	"sort"
	"time"

	"github.com/anacrolix/torrent/metainfo"
)

// SetClients gives the server a seed job's own view of its clients:
// members lists every client connected to the seeder (and those that
// left), whether or not it announced to the tracker, so that a client
// given only --peer is counted; stuck lists the clients that lack a piece
// found bad on the source. Both are called with the server's lock held
// and must not call back into the server.
func (s *Server) SetClients(ih metainfo.Hash, members func(time.Time) []FleetMember, stuck func() []StuckClient) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sw := s.swarmLocked(ih)
	sw.conns, sw.stuck = members, stuck
}

// membersLocked lists a swarm's clients: those that announced, then those
// the seeder saw connected that did not (matched by address and the port
// they listen on).
func (sw *swarm) membersLocked(now time.Time, total int64) []FleetMember {
	out := make([]FleetMember, 0, len(sw.peers))
	known := map[string]bool{}
	for _, p := range sw.peers {
		m := p.member(now, total)
		known[m.Addr] = true
		out = append(out, m)
	}
	if sw.conns != nil {
		for _, m := range sw.conns(now) {
			if !known[m.Addr] {
				known[m.Addr] = true
				out = append(out, m)
			}
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Addr < out[b].Addr })
	return out
}

// stuckSummary is the status page's line about clients stuck on a bad
// piece ("" when none).
func stuckSummary(n int) string {
	switch n {
	case 0:
		return ""
	case 1:
		return "1 client stuck on a damaged piece"
	}
	return fmt.Sprintf("%d clients stuck on a damaged piece", n)
}

// mergeStuck adds a partition's stuck clients to an image's list, one
// entry per client address (a disk's partitions are one torrent each).
func mergeStuck(list, more []StuckClient) []StuckClient {
	for _, c := range more {
		found := false
		for k := range list {
			if list[k].Addr == c.Addr {
				list[k].Pieces = append(list[k].Pieces, c.Pieces...)
				list[k].Connected = list[k].Connected || c.Connected
				list[k].Told = list[k].Told || c.Told
				found = true
				break
			}
		}
		if !found {
			list = append(list, c)
		}
	}
	return list
}
