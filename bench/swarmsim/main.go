// Command swarmsim is a swarm simulator for ezio's deploys: one seeder and
// N clients on links of one rate, running ezio's own piece choice (the
// client's picker and the seeder's reveal, through engine.PiecePicker and
// engine.RevealPlanner) against a fluid model of the network:
//
//   - every node has an uplink and a downlink of -rate Mbit/s (goodput);
//     one TCP connection per pair of connected nodes; the connections
//     active at a moment share every link max-min fairly (progressive
//     filling), which is how TCP flows through FIFO ports share on average;
//   - the seeder is connected to every client; each client to about
//     -conns other clients (a random graph);
//   - a client requests, in the library's order (priority, then fewest
//     holders, then index), the wanted pieces that a connected peer holds,
//     as long as its bytes requested and not verified stay within the
//     deploy's budget (engine.UnverifiedBudget); a piece in flight comes
//     from every connected holder at once (its chunks are spread), each
//     connection's rate split evenly over the pieces it carries;
//   - a piece is shareable after its last byte plus its hash time
//     (-hash MB/s); peers know at once (a LAN's Have takes far less than
//     a step); the picker runs every -picker, the reveal every -reveal
//     and at the next step after a client completes a piece.
//
// It prints T/(F/B): the time until every client holds every piece over
// one copy at the link rate, the seeder's bytes sent over the image, and
// the mean fraction of time the clients' downlinks and uplinks are busy.
//
//	go run ./bench/swarmsim -n 8 -pieces 180 -rate 100
//	go run ./bench/swarmsim -n 1000 -pieces 3000 -rate 100 -conns 16 -picker 1s
//
// Not modelled: CPU (the LAN lab's two cores), TCP's slow start and loss,
// the library's request pipelining per connection and its endgame.
package main

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"time"

	"ezio/engine"
)

// strategy: the benchmark's knobs (EZIO_PICKER_RAREST=0,
// EZIO_REVEAL_WINDOW_MIB, ...), read as ezio's command line reads them.
var strategy = engine.StrategyFromEnv()

type config struct {
	n, pieces, conns, cacheMiB   int
	pieceMiB, rateMbit, hashMB   float64
	dt, pickerEvery, revealEvery time.Duration
	revealMin                    time.Duration
	seed                         uint64
	noReveal                     bool
	once                         int // -once W: the seeder policy under test
	trace                        bool
}

func main() {
	var c config
	var ns string
	flag.StringVar(&ns, "n", "8", "clients (comma separated for several runs)")
	flag.IntVar(&c.pieces, "pieces", 180, "pieces in the image")
	flag.Float64Var(&c.pieceMiB, "piece-mib", 1, "piece length in MiB")
	flag.Float64Var(&c.rateMbit, "rate", 100, "every link's goodput, Mbit/s, each way")
	flag.IntVar(&c.conns, "conns", 16, "connections per client to other clients (about)")
	flag.IntVar(&c.cacheMiB, "cache", 0, "--cache-size of the clients (0: the default)")
	flag.Float64Var(&c.hashMB, "hash", 300, "piece verification rate, MB/s")
	flag.DurationVar(&c.dt, "dt", 20*time.Millisecond, "time step")
	flag.DurationVar(&c.pickerEvery, "picker", 200*time.Millisecond, "picker interval (ezio: 200ms)")
	flag.DurationVar(&c.revealEvery, "reveal", 100*time.Millisecond, "reveal interval (ezio: 100ms, and on a client's new piece)")
	flag.DurationVar(&c.revealMin, "reveal-min", 0, "least time between reveal steps, also when a client completed a piece (0: a step each dt; for N in the hundreds, where a step costs N x pieces)")
	flag.Uint64Var(&c.seed, "seed", 1, "random seed")
	flag.BoolVar(&c.noReveal, "no-reveal", false, "the seeder shows every piece to every client (no reveal)")
	flag.IntVar(&c.once, "once", 0, "instead of ezio's reveal, a seeder that sends every piece once: each client has up to W pieces revealed and not yet held, each piece revealed to one client only, in random order (a design under test, not ezio's code)")
	flag.BoolVar(&c.trace, "trace", false, "print the swarm's state every second (to stderr)")
	flag.Parse()
	fmt.Printf("| N | pieces | piece MiB | Mbit/s | conns | T s | F/B s | T/(F/B) | seeder sent × image | clients' downlink busy | clients' uplink busy | first shareable s | wall s |\n")
	fmt.Printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, f := range strings.Split(ns, ",") {
		var n int
		if _, err := fmt.Sscan(f, &n); err != nil || n < 1 {
			fmt.Fprintln(os.Stderr, "swarmsim: bad -n", f)
			os.Exit(2)
		}
		c.n = n
		start := time.Now()
		r := run(c)
		fmt.Printf("| %d | %d | %g | %g | %d | %.1f | %.1f | %.3f | %.3f | %.2f | %.2f | %.2f | %.0f |\n",
			n, c.pieces, c.pieceMiB, c.rateMbit, c.conns, r.T, r.FB, r.T/r.FB, r.seederSent, r.downBusy, r.upBusy,
			r.firstShare, time.Since(start).Seconds())
	}
}

type result struct {
	T, FB, seederSent, downBusy, upBusy, firstShare float64
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
	isNbr            []map[int]bool
	prio             [][]int // picker's priorities
	order            [][]int // library request order of the wanted pieces
	rank             [][]int // each piece's place in order
	pick             []*engine.PiecePicker
	got              [][]float64 // bytes received of pieces in flight
	inflight         []map[int]bool
	checkN           []int    // pieces being checked, per client
	isChecking       [][]bool // piece being checked, per client
	stamp            []int    // scratch: transfer's connection of a source
	verifying        []verifyEv
	budget           float64
	reveal           *engine.RevealPlanner
	seedShown        [][]bool // pieces the seeder shows each client
	doneAt           []float64
	left             []int // pieces not yet verified, per client
	seederSent       float64
	seederRate       float64 // bytes/s, averaged over about a second
	downUsed, upUsed float64
	firstShare       float64
	recv, lastRecv   []float64 // bytes received per client (trace)
	onceOrder        []int     // -once: pieces not revealed yet, next first
}

type verifyEv struct {
	at     float64
	client int
	piece  int
}

// run is one simulated room from start to the last verified client. It
// is over 100 lines on purpose: the event loop (link rates, request
// pipelines, reveal steps, verification) reads as one timeline, and its
// state is shared by every step of it.
func run(c config) result {
	rng := rand.New(rand.NewPCG(c.seed, uint64(c.n)))
	s := &sim{c: c, n: c.n, P: c.pieces, plen: c.pieceMiB * (1 << 20), B: c.rateMbit * 1e6 / 8, firstShare: -1}
	total := int64(s.plen) * int64(s.P)
	s.recv, s.lastRecv = make([]float64, c.n), make([]float64, c.n)
	s.budget = float64(engine.UnverifiedBudget(s.P, int64(s.plen), c.cacheMiB))
	s.holders = make([]int32, s.P)
	s.isNbr = make([]map[int]bool, s.n)
	s.nbr = make([][]int, s.n)
	for i := range s.n {
		s.have = append(s.have, make([]bool, s.P))
		s.peerHave = append(s.peerHave, make([]int, s.P))
		s.prio = append(s.prio, make([]int, s.P))
		s.order = append(s.order, nil)
		s.rank = append(s.rank, make([]int, s.P))
		s.pick = append(s.pick, engine.NewPiecePicker(s.P, int64(s.plen), c.cacheMiB, strategy))
		s.got = append(s.got, make([]float64, s.P))
		s.inflight = append(s.inflight, map[int]bool{})
		s.isChecking = append(s.isChecking, make([]bool, s.P))
		s.checkN = append(s.checkN, 0)
		s.seedShown = append(s.seedShown, make([]bool, s.P))
		s.doneAt = append(s.doneAt, -1)
		s.left = append(s.left, s.P)
		s.isNbr[i] = map[int]bool{}
	}
	// A random graph: each client dials conns/2 others (the others dial
	// it back), so the degree is about conns.
	for i := range s.n {
		for k := 0; k < (c.conns+1)/2 && len(s.nbr[i]) < s.n-1; k++ {
			for try := 0; try < 20; try++ {
				j := rng.IntN(s.n)
				if j != i && !s.isNbr[i][j] {
					s.isNbr[i][j], s.isNbr[j][i] = true, true
					s.nbr[i] = append(s.nbr[i], j)
					s.nbr[j] = append(s.nbr[j], i)
					break
				}
			}
		}
	}
	if c.noReveal {
		for i := range s.n {
			for p := range s.P {
				s.seedShown[i][p] = true
				s.peerHave[i][p]++
			}
		}
	} else if c.once > 0 {
		s.onceOrder = rng.Perm(s.P)
	} else {
		s.reveal = engine.NewRevealPlanner(s.P, int64(s.plen), total, s.n, strategy)
	}
	dt := c.dt.Seconds()
	nextPick, nextReveal, lastReveal := 0.0, 0.0, -1.0
	kicked := false
	t := 0.0
	for doneCount := 0; doneCount < s.n; t += dt {
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
			s.gain(v.client, v.piece)
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
		if c.once > 0 {
			s.stepOnce()
		}
		if s.reveal != nil && (t >= nextReveal || kicked && t-lastReveal >= c.revealMin.Seconds()) {
			s.stepReveal(t >= 1 && s.seederRate >= 0.8*s.B && !strategy.RevealOnceOff)
			nextReveal, kicked, lastReveal = t+c.revealEvery.Seconds(), false, t
		}
		if t >= nextPick {
			for i := range s.n {
				s.updatePicker(i)
			}
			nextPick = t + c.pickerEvery.Seconds()
		}
		for i := range s.n {
			s.request(i)
		}
		before := s.seederSent
		s.transfer(t, dt)
		s.seederRate += ((s.seederSent-before)/dt - s.seederRate) * math.Min(1, dt)
		if c.trace && int((t+dt)/1) != int(t/1) {
			s.traceLine(t)
		}
	}
	T := 0.0
	for _, d := range s.doneAt {
		T = math.Max(T, d)
	}
	fb := float64(total) / s.B
	return result{T: T, FB: fb, seederSent: s.seederSent / float64(total),
		downBusy: s.downUsed / (s.B * T * float64(s.n)), upBusy: s.upUsed / (s.B * T * float64(s.n)), firstShare: s.firstShare}
}

// gain: client i verified piece p; its neighbours see it.
func (s *sim) gain(i, p int) {
	s.have[i][p] = true
	s.holders[p]++
	s.left[i]--
	for _, j := range s.nbr[i] {
		s.peerHave[j][p]++
	}
}

// stepReveal is one step of the seeder's reveal; busy: its uplink runs
// near its rate (as the engine's meter would say).
func (s *sim) stepReveal(busy bool) {
	have := make([][]bool, s.n)
	for i := range s.n {
		if s.left[i] > 0 {
			have[i] = s.have[i]
		}
	}
	for i, ps := range s.reveal.Step(have, s.holders, busy) {
		for _, p := range ps {
			if !s.seedShown[i][p] {
				s.seedShown[i][p] = true
				s.peerHave[i][p]++
			}
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
	for p := range s.inflight[i] {
		partial[p] = s.got[i][p] > 0
	}
	for p, x := range s.isChecking[i] {
		partial[p] = partial[p] || x
	}
	pr := s.pick[i].Choose(s.have[i], partial, s.peerHave[i], 0)
	s.prio[i] = pr
	var want []int
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
}

// request tops up client i's pieces in flight within the budget.
func (s *sim) request(i int) {
	if s.left[i] == 0 {
		return
	}
	pending := 0.0
	for p := range s.inflight[i] {
		pending += s.plen
		_ = p
	}
	pending += float64(s.checkN[i]) * s.plen
	for _, p := range s.order[i] {
		if pending+s.plen > s.budget && pending > 0 {
			break
		}
		if s.have[i][p] || s.inflight[i][p] || s.prio[i][p] == 0 || s.peerHave[i][p] == 0 || s.isChecking[i][p] {
			continue
		}
		s.inflight[i][p] = true
		pending += s.plen
	}
}

type conn struct {
	from, to int // node ids (seeder: s.n)
	pieces   []int
	rate     float64
}

// transfer moves dt seconds of data: connections carrying pieces share
// the links max-min fairly.
func (s *sim) transfer(t, dt float64) {
	var conns []*conn
	if s.stamp == nil {
		s.stamp = make([]int, s.n+1)
	}
	var fly []int
	for i := range s.n {
		// this client's pieces in its own order: each connection's
		// list comes out in that order
		fly = fly[:0]
		for p := range s.inflight[i] {
			fly = append(fly, p)
		}
		r := s.rank[i]
		sort.Slice(fly, func(a, b int) bool { return r[fly[a]] < r[fly[b]] || r[fly[a]] == r[fly[b]] && fly[a] < fly[b] })
		first := len(conns)
		add := func(from, p int) {
			k := s.stamp[from]
			if k < first || k >= len(conns) || conns[k].from != from {
				k = len(conns)
				s.stamp[from] = k
				conns = append(conns, &conn{from: from, to: i})
			}
			conns[k].pieces = append(conns[k].pieces, p)
		}
		for _, p := range fly {
			if s.seedShown[i][p] {
				add(s.n, p)
			}
			for _, j := range s.nbr[i] {
				if s.have[j][p] {
					add(j, p)
				}
			}
		}
	}
	s.share(conns)
	// A connection's requests are answered in the order they were made,
	// which is the client's order of pieces; a chunk is asked of one peer
	// only. So each connection fills its pieces one after another, and
	// several connections fill one piece together.
	for _, k := range rand.Perm(len(conns)) {
		cn := conns[k]
		left := cn.rate * dt
		sent := 0.0
		for _, p := range cn.pieces {
			take := math.Min(left, s.plen-s.got[cn.to][p])
			if take <= 0 {
				continue
			}
			s.got[cn.to][p] += take
			left -= take
			sent += take
		}
		if cn.from == s.n {
			s.seederSent += sent
		} else {
			s.upUsed += sent
		}
		s.downUsed += sent
		s.recv[cn.to] += sent
	}
	hashT := s.plen / (s.c.hashMB * 1e6)
	for i := range s.n {
		for p := range s.inflight[i] {
			if s.got[i][p] >= s.plen {
				delete(s.inflight[i], p)
				s.isChecking[i][p] = true
				s.checkN[i]++
				s.verifying = append(s.verifying, verifyEv{at: t + dt + hashT, client: i, piece: p})
			}
		}
	}
}

// share sets each connection's rate: progressive filling over the links
// (every node's uplink and downlink of rate B).
func (s *sim) share(conns []*conn) {
	upLeft := make([]float64, s.n+1)
	downLeft := make([]float64, s.n+1)
	for k := range upLeft {
		upLeft[k], downLeft[k] = s.B, s.B
	}
	active := append([]*conn(nil), conns...) // filtered below: not conns itself
	for round := 0; len(active) > 0 && round < 30; round++ {
		nUp := make([]int, s.n+1)
		nDown := make([]int, s.n+1)
		for _, cn := range active {
			nUp[cn.from]++
			nDown[cn.to]++
		}
		// the tightest link's fair share is what every active
		// connection gets more this round
		inc := math.Inf(1)
		for _, cn := range active {
			inc = math.Min(inc, math.Min(upLeft[cn.from]/float64(nUp[cn.from]), downLeft[cn.to]/float64(nDown[cn.to])))
		}
		for _, cn := range active {
			cn.rate += inc
			upLeft[cn.from] -= inc
			downLeft[cn.to] -= inc
		}
		next := active[:0]
		for _, cn := range active {
			if upLeft[cn.from] > 1e-6*s.B && downLeft[cn.to] > 1e-6*s.B {
				next = append(next, cn)
			}
		}
		active = next
	}
}

func (s *sim) traceLine(t float64) {
	line := fmt.Sprintf("%5.1fs seeder %.2fx", t, s.seederSent/(s.plen*float64(s.P)))
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
		line += fmt.Sprintf(" | %3d have %2d fly %3d avail %2d high %3.0f%%", s.P-s.left[i], len(s.inflight[i]), avail, high,
			100*(s.recv[i]-s.lastRecv[i])/s.B)
		s.lastRecv[i] = s.recv[i]
	}
	fmt.Fprintln(os.Stderr, line)
}

// stepOnce is the -once seeder: every client with fewer than W pieces
// revealed and not yet held gets the next piece nobody was shown, the
// emptiest client first; a piece is never shown twice.
func (s *sim) stepOnce() {
	pend := make([]int, s.n)
	var open []int
	for i := range s.n {
		if s.left[i] == 0 {
			continue
		}
		for p := range s.P {
			if s.seedShown[i][p] && !s.have[i][p] {
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
			s.seedShown[i][p] = true
			s.peerHave[i][p]++
			if pend[i]++; pend[i] < s.c.once {
				next = append(next, i)
			}
		}
		open = next
	}
}
