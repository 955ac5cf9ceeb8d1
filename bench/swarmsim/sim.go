package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"time"

	"ezio/engine"
)

type result struct {
	T, FB, seederSent, downBusy, upBusy, firstShare, below, endgame float64
}

// node ids: clients 0..n-1, the seeder n.
type sim struct {
	c                config
	n, P             int
	plen, B          float64
	have             [][]bool // clients' verified pieces
	holders          []int32  // clients holding each piece
	peerHave         [][]int  // per client: connected peers holding each piece (seeder: revealed)
	nbr              [][]int  // client-client neighbours
	in               [][]*link
	inFrom           []map[int]*link // client's incoming connection by sender
	prio             [][]int         // picker's priorities
	order            [][]int         // library request order of the wanted pieces
	rank             [][]int         // each piece's place in order
	pick             []*engine.PiecePicker
	got              [][]float64 // bytes received of pieces in flight
	unreq            [][]float64 // bytes of pieces in flight not requested of any peer
	inflight         [][]bool
	fly              [][]int // pieces in flight, in the client's order
	dirty            []bool  // request may find new pieces
	checkN           []int   // pieces being checked, per client
	isChecking       [][]bool
	verifying        []verifyEv
	budget           float64
	reveal           *engine.RevealPlanner
	meter            engine.SeederMeter
	shown            [][]bool // pieces the seeder revealed to each client
	seedShown        [][]bool // ... that the client knows of
	msgs             []msgEv  // messages on their way
	doneAt           []float64
	left             []int // pieces not yet verified, per client
	seederSent       float64
	downUsed, upUsed float64
	belowT, activeT  []float64 // per client: time below 90 % of the link rate, time not done
	binRecv, binMark []float64
	binT             float64
	firstShare       float64
	recv, lastRecv   []float64 // bytes received per client (trace)
	onceOrder        []int     // -once: pieces not revealed yet, next first
	upLeft, downLeft []float64 // share's scratch
	nUp, nDown       []int
	upQ, downQ       []float64 // each node's port queues, seconds
	t                float64   // the step's time
	busy             bool      // the seeder's meter, last reveal step
	lastSeeder       float64   // seeder's bytes at the last trace line
}

type verifyEv struct {
	at     float64
	client int
	piece  int
}

func newSim(c config) *sim {
	rng := rand.New(rand.NewPCG(c.seed, uint64(c.n)))
	s := &sim{c: c, n: c.n, P: c.pieces, plen: c.pieceMiB * (1 << 20), B: c.rateMbit * 1e6 / 8, firstShare: -1}
	s.recv, s.lastRecv = make([]float64, c.n), make([]float64, c.n)
	s.belowT, s.activeT = make([]float64, c.n), make([]float64, c.n)
	s.binRecv, s.binMark = make([]float64, c.n), make([]float64, c.n)
	s.budget = float64(engine.UnverifiedBudget(s.P, int64(s.plen), c.cacheMiB))
	s.holders = make([]int32, s.P)
	s.nbr = make([][]int, s.n)
	s.upLeft, s.downLeft = make([]float64, s.n+1), make([]float64, s.n+1)
	s.nUp, s.nDown = make([]int, s.n+1), make([]int, s.n+1)
	s.upQ, s.downQ = make([]float64, s.n+1), make([]float64, s.n+1)
	for range s.n {
		s.have = append(s.have, make([]bool, s.P))
		s.peerHave = append(s.peerHave, make([]int, s.P))
		s.prio = append(s.prio, make([]int, s.P))
		s.order = append(s.order, nil)
		s.rank = append(s.rank, make([]int, s.P))
		s.pick = append(s.pick, engine.NewPiecePicker(s.P, int64(s.plen), c.cacheMiB, strategy))
		s.got = append(s.got, make([]float64, s.P))
		s.unreq = append(s.unreq, make([]float64, s.P))
		s.inflight = append(s.inflight, make([]bool, s.P))
		s.fly = append(s.fly, nil)
		s.dirty = append(s.dirty, true)
		s.isChecking = append(s.isChecking, make([]bool, s.P))
		s.checkN = append(s.checkN, 0)
		s.seedShown = append(s.seedShown, make([]bool, s.P))
		s.shown = append(s.shown, make([]bool, s.P))
		s.doneAt = append(s.doneAt, -1)
		s.left = append(s.left, s.P)
		s.in = append(s.in, nil)
		s.inFrom = append(s.inFrom, map[int]*link{})
	}
	s.connect(rng)
	if c.noReveal {
		for i := range s.n {
			for p := range s.P {
				s.show(0, i, p)
			}
		}
	} else if c.once > 0 {
		s.onceOrder = rng.Perm(s.P)
	} else {
		s.reveal = engine.NewRevealPlanner(s.P, int64(s.plen), int64(s.plen)*int64(s.P), s.n, strategy)
	}
	return s
}

// connect: the seeder is connected to every client; each client dials
// conns/2 others at random (the others dial it back), so the degree is
// about conns. Every connection carries data both ways: one link each way.
func (s *sim) connect(rng *rand.Rand) {
	isNbr := make([]map[int]bool, s.n)
	for i := range s.n {
		isNbr[i] = map[int]bool{}
	}
	for i := range s.n {
		for k := 0; k < (s.c.conns+1)/2 && len(s.nbr[i]) < s.n-1; k++ {
			for try := 0; try < 20; try++ {
				j := rng.IntN(s.n)
				if j != i && !isNbr[i][j] {
					isNbr[i][j], isNbr[j][i] = true, true
					s.nbr[i] = append(s.nbr[i], j)
					s.nbr[j] = append(s.nbr[j], i)
					break
				}
			}
		}
	}
	for i := range s.n {
		s.addLink(s.n, i)
		for _, j := range s.nbr[i] {
			s.addLink(j, i)
		}
	}
}

func (s *sim) addLink(from, to int) {
	l := &link{from: from, to: to, maxReq: 1, cwnd: initCwnd}
	s.in[to] = append(s.in[to], l)
	s.inFrom[to][from] = l
}

// run is one simulated room from start to the last verified client. It
// is over 100 lines on purpose: the event loop (checks, reveal, picker,
// requests, link rates) reads as one timeline, and its state is shared
// by every step of it.
func run(c config) result {
	s := newSim(c)
	total := s.plen * float64(s.P)
	dt := c.dt.Seconds()
	nextPick, nextReveal, lastReveal := 0.0, 0.0, -1.0
	kicked := false
	t := 0.0
	var active []*link
	for doneCount := 0; doneCount < s.n; t += dt {
		s.t = t
		if t > 1e5 {
			fmt.Fprintln(os.Stderr, "swarmsim: no end in sight")
			break
		}
		// pieces whose check ends now become shareable
		kept := s.verifying[:0]
		for _, v := range s.verifying {
			if v.at > t {
				kept = append(kept, v)
				continue
			}
			s.isChecking[v.client][v.piece] = false
			s.checkN[v.client]--
			s.gain(t, v.client, v.piece)
			kicked = true
			if s.firstShare < 0 {
				s.firstShare = t
			}
			if s.left[v.client] == 0 {
				s.doneAt[v.client] = t
				doneCount++
			}
		}
		s.verifying = kept
		s.deliver(t)
		if c.once > 0 {
			s.stepOnce(t)
		}
		if s.reveal != nil && (t >= nextReveal || kicked && t-lastReveal >= c.revealMin.Seconds()) {
			s.busy = s.meter.Busy(time.Duration(t*float64(time.Second)), int64(s.seederSent)) && !strategy.RevealOnceOff
			s.stepReveal(t, s.busy)
			nextReveal, kicked, lastReveal = t+c.revealEvery.Seconds(), false, t
		}
		if t >= nextPick {
			for i := range s.n {
				s.updatePicker(i)
			}
			nextPick = t + c.pickerEvery.Seconds()
		}
		active = active[:0]
		for i := range s.n {
			if s.dirty[i] {
				s.request(i)
			}
			for _, l := range s.in[i] {
				l.rate = 0
				if l.update {
					s.updateLink(l)
				}
				if l.out > 0 {
					active = append(active, l)
				}
			}
		}
		s.share(active)
		for _, l := range active {
			sent := s.drain(l, dt)
			if l.from == s.n {
				s.seederSent += sent
			} else {
				s.upUsed += sent
			}
			s.downUsed += sent
			s.recv[l.to] += sent
		}
		s.finishPieces(t + dt)
		s.meterClients(t+dt, dt)
		if c.trace && int((t+dt)/1) != int(t/1) {
			s.traceLine(t)
		}
	}
	T, first := 0.0, math.Inf(1)
	for _, d := range s.doneAt {
		T, first = math.Max(T, d), math.Min(first, d)
	}
	return result{T: T, FB: total / s.B, seederSent: s.seederSent / total,
		downBusy: s.downUsed / (s.B * T * float64(s.n)), upBusy: s.upUsed / (s.B * T * float64(s.n)),
		firstShare: s.firstShare, below: s.below(), endgame: T - first}
}

// finishPieces moves pieces whose last byte is in to their check.
func (s *sim) finishPieces(now float64) {
	hashT := s.plen / (s.c.hashMB * 1e6)
	for i := range s.n {
		f := s.fly[i][:0]
		for _, p := range s.fly[i] {
			if s.got[i][p] < s.plen-0.5 {
				f = append(f, p)
				continue
			}
			s.inflight[i][p] = false
			s.isChecking[i][p] = true
			s.checkN[i]++
			s.verifying = append(s.verifying, verifyEv{at: now + hashT, client: i, piece: p})
		}
		s.fly[i] = f
	}
}

// meterClients counts, in 100 ms bins (the lab's link samples), the
// time each client not yet done receives below 90 % of the link rate.
func (s *sim) meterClients(t, dt float64) {
	for i := range s.n {
		s.binRecv[i] += s.recv[i] - s.binMark[i]
		s.binMark[i] = s.recv[i]
	}
	s.binT += dt
	if s.binT < 0.1-1e-9 {
		return
	}
	for i := range s.n {
		if s.doneAt[i] < 0 || s.doneAt[i] > t {
			s.activeT[i] += s.binT
			if s.binRecv[i] < 0.9*s.B*s.binT {
				s.belowT[i] += s.binT
			}
		}
		s.binRecv[i] = 0
	}
	s.binT = 0
}

// below is the clients' mean fraction of time below the link rate.
func (s *sim) below() float64 {
	sum := 0.0
	for i := range s.n {
		if s.activeT[i] > 0 {
			sum += s.belowT[i] / s.activeT[i]
		}
	}
	return sum / float64(s.n)
}
