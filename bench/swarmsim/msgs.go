package main

// Messages between nodes (Have, the seeder's reveal) arrive after half
// the base round trip plus the queues of the sender's uplink and the
// receiver's downlink: on a saturated port they wait behind 50 ms of data
// (the lab's FIFO). The seeder's reveal sees what clients hold at once.
type msgEv struct {
	at       float64
	from, to int // node ids (the seeder: n)
	piece    int
}

// send queues a Have (or, from the seeder, a reveal) of piece p from
// node from to client to.
func (s *sim) send(t float64, from, to, p int) {
	at := t + s.c.rtt.Seconds()/2 + s.upQ[from] + s.downQ[to]
	s.msgs = append(s.msgs, msgEv{at: at, from: from, to: to, piece: p})
}

// deliver handles the messages due by t.
func (s *sim) deliver(t float64) {
	kept := s.msgs[:0]
	for _, m := range s.msgs {
		if m.at > t {
			kept = append(kept, m)
			continue
		}
		i, p := m.to, m.piece
		if m.from == s.n {
			s.seedShown[i][p] = true
		}
		s.peerHave[i][p]++
		s.dirty[i] = true
		if s.left[i] > 0 && !s.have[i][p] && s.prio[i][p] > 0 {
			s.inFrom[i][m.from].update = true
		}
	}
	s.msgs = kept
}
