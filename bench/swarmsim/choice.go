package main

import (
	"math"
	"sort"
)

// gain: client i verified piece p; it tells its neighbours (Have).
func (s *sim) gain(t float64, i, p int) {
	s.have[i][p] = true
	s.holders[p]++
	s.left[i]--
	s.dirty[i] = true
	for _, j := range s.nbr[i] {
		s.send(t, i, j, p)
	}
}

// show: the seeder reveals piece p to client i (a Have on its connection).
func (s *sim) show(t float64, i, p int) {
	if s.shown[i][p] {
		return
	}
	s.shown[i][p] = true
	s.send(t, s.n, i, p)
}

// stepReveal is one step of the seeder's reveal; busy: its uplink runs
// near its best rate (the engine's meter, engine.SeederMeter).
func (s *sim) stepReveal(t float64, busy bool) {
	have := make([][]bool, s.n)
	for i := range s.n {
		if s.left[i] > 0 {
			have[i] = s.have[i]
		}
	}
	s.limitFresh(have)
	for i, ps := range s.reveal.Step(have, s.holders, busy) {
		for _, p := range ps {
			s.show(t, i, p)
		}
	}
}

// updatePicker runs ezio's picker for client i and orders its wanted
// pieces as the library requests them.
func (s *sim) updatePicker(i int) {
	if s.left[i] == 0 {
		return
	}
	partial := make([]bool, s.P)
	for _, p := range s.fly[i] {
		partial[p] = s.got[i][p] > 0 || s.unreq[i][p] < s.plen
	}
	for p, x := range s.isChecking[i] {
		partial[p] = partial[p] || x
	}
	pr := s.pick[i].Choose(s.have[i], partial, s.peerHave[i], 0)
	s.prio[i] = pr
	want := s.order[i][:0]
	for p, x := range pr {
		if x > 0 && !s.have[i][p] {
			want = append(want, p)
		}
	}
	ph := s.peerHave[i]
	sort.Slice(want, func(a, b int) bool {
		x, y := want[a], want[b]
		if pr[x] != pr[y] {
			return pr[x] > pr[y]
		}
		if partial[x] != partial[y] {
			return partial[x]
		}
		if ph[x] != ph[y] {
			return ph[x] < ph[y]
		}
		return x < y
	})
	s.order[i] = want
	r := s.rank[i]
	for p := range r {
		r[p] = math.MaxInt32
	}
	for k, p := range want {
		r[p] = k
	}
	s.sortFly(i)
	s.dirty[i] = true
}

func (s *sim) sortFly(i int) {
	r, f := s.rank[i], s.fly[i]
	sort.Slice(f, func(a, b int) bool { return r[f[a]] < r[f[b]] || r[f[a]] == r[f[b]] && f[a] < f[b] })
}

// request tops up client i's pieces in flight within the unverified
// budget, in its order; a connection with nothing outstanding whose peer
// holds a new piece updates (the library's trigger on a wanted piece).
func (s *sim) request(i int) {
	s.dirty[i] = false
	if s.left[i] == 0 {
		return
	}
	pending := float64(len(s.fly[i])+s.checkN[i]) * s.plen
	added := false
	for _, p := range s.order[i] {
		if pending+s.plen > s.budget && pending > 0 {
			break
		}
		if s.have[i][p] || s.inflight[i][p] || s.prio[i][p] == 0 || s.peerHave[i][p] == 0 || s.isChecking[i][p] {
			continue
		}
		s.inflight[i][p] = true
		s.unreq[i][p] = s.plen
		s.got[i][p] = 0
		s.fly[i] = append(s.fly[i], p)
		pending += s.plen
		added = true
		for _, l := range s.in[i] {
			if l.out == 0 && s.holds(l, p) {
				l.update = true
			}
		}
	}
	if added {
		s.sortFly(i)
	}
}

// stepOnce is the -once seeder: every client with fewer than W pieces
// revealed and not yet held gets the next piece nobody was shown, the
// emptiest client first; a piece is never shown twice.
func (s *sim) stepOnce(t float64) {
	pend := make([]int, s.n)
	var open []int
	for i := range s.n {
		if s.left[i] == 0 {
			continue
		}
		for p := range s.P {
			if s.shown[i][p] && !s.have[i][p] {
				pend[i]++
			}
		}
		if pend[i] < s.c.once {
			open = append(open, i)
		}
	}
	sort.Slice(open, func(a, b int) bool { return pend[open[a]] < pend[open[b]] })
	for len(s.onceOrder) > 0 && len(open) > 0 {
		next := open[:0]
		for _, i := range open {
			if len(s.onceOrder) == 0 {
				break
			}
			p := s.onceOrder[0]
			s.onceOrder = s.onceOrder[1:]
			if s.have[i][p] {
				continue
			}
			s.show(t, i, p)
			if pend[i]++; pend[i] < s.c.once {
				next = append(next, i)
			}
		}
		open = next
	}
}

// limitFresh is -fresh K (a design under test, not ezio's code): at most
// K clients that hold nothing have pieces from the seeder on their way;
// the seeder's reveal does not see the other empty clients (as if not yet
// connected), which fetch their first pieces from peers.
func (s *sim) limitFresh(have [][]bool) {
	if s.c.fresh <= 0 {
		return
	}
	served, waiting := 0, []int{}
	for i := range s.n {
		if have[i] == nil || s.left[i] < s.P {
			continue
		}
		pending := false
		for p := range s.P {
			if s.shown[i][p] {
				pending = true
				break
			}
		}
		if pending {
			served++
		} else {
			waiting = append(waiting, i)
		}
	}
	for _, i := range waiting {
		if served < s.c.fresh {
			served++
			continue
		}
		have[i] = nil
	}
}
