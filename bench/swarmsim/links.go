package main

import "math"

// The library's requests, per connection (anacrolix/torrent v1.61,
// requesting.go), as the model keeps them:
//
//   - a connection has requests outstanding, answered in the order made;
//     at most maxReq chunks of 16 KiB. An update adds requests up to
//     maxReq and sets maxReq to twice what it added (at least one, at most
//     963): an update that adds nothing leaves room for one request, and
//     the pipeline grows back by doubling after the queue drains;
//   - updates come when the connection's last request is answered, when
//     its peer announces a piece the client wants (Have; the seeder's
//     reveal is one), and when a piece the peer holds becomes wanted while
//     the connection has nothing outstanding;
//   - an update asks first for chunks nobody was asked for, of the
//     client's pieces in flight in its order, then steals chunks from a
//     connection that has at least two requests more than this one;
//   - a connection carries at most its outstanding bytes per round trip
//     (-rtt), besides its fair share of the links;
//   - and at most TCP's congestion window per round trip: it starts at
//     ten segments, doubles each round trip while it limits the
//     connection (slow start) and falls back to ten segments after the
//     connection sent nothing for a retransmission timeout (Linux's
//     slow start after idle; 200 ms plus the round trip). Losses are
//     not modelled: a window that no longer limits stops growing.
type link struct {
	from, to int // node ids (the seeder: n)
	q        []chunkReq
	out      float64 // bytes outstanding
	maxReq   int
	update   bool
	rate     float64
	limit    float64 // outstanding bytes (or the congestion window) per round trip
	cwnd     float64 // TCP's congestion window, bytes
	lastSent float64 // time of its last data (slow start after idle)
	done     bool    // progressive filling: no more rate this step
}

type chunkReq struct {
	piece int
	bytes float64
}

// chunk is the request size in bytes (-chunk-kib): 16 KiB as calibrated
// (round four's lab); ezio asks for engine.RoomChunkSize in its own rooms.
var chunk float64 = 16 << 10

const (
	initCwnd   = 10 * 1448 // Linux's initial window, ten segments
	minRTO     = 0.2       // Linux's least retransmission timeout, s
	maxReqsCap = 963       // (32 KiB - 16 KiB - 5) / 17: the library's write buffer
)

// holds tells whether link l's sender can send piece p to its client.
func (s *sim) holds(l *link, p int) bool {
	if l.from == s.n {
		return s.seedShown[l.to][p]
	}
	return s.have[l.from][p]
}

func (l *link) push(p int, b float64) {
	if k := len(l.q); k > 0 && l.q[k-1].piece == p {
		l.q[k-1].bytes += b
	} else {
		l.q = append(l.q, chunkReq{p, b})
	}
	l.out += b
}

// updateLink is the library's request update of one connection.
func (s *sim) updateLink(l *link) {
	l.update = false
	i := l.to
	if s.left[i] == 0 {
		return
	}
	maxB := float64(l.maxReq) * chunk
	before := l.out
	for _, p := range s.fly[i] {
		if l.out >= maxB-1 {
			break
		}
		if s.unreq[i][p] <= 0 || !s.holds(l, p) {
			continue
		}
		take := math.Min(s.unreq[i][p], maxB-l.out)
		s.unreq[i][p] -= take
		l.push(p, take)
	}
	for _, p := range s.fly[i] {
		if l.out >= maxB-1 {
			break
		}
		if !s.holds(l, p) {
			continue
		}
		for _, o := range s.in[i] {
			if o != l && o.out >= l.out+2*chunk {
				s.steal(l, o, p, math.Min(maxB-l.out, (o.out-l.out)/2))
			}
		}
	}
	added := int(math.Round((l.out - before) / chunk))
	l.maxReq = max(1, min(maxReqsCap, 2*added))
}

// steal moves up to b bytes of piece p's latest requests from o to l.
func (s *sim) steal(l, o *link, p int, b float64) {
	for k := len(o.q) - 1; k >= 0 && b > 0; k-- {
		r := &o.q[k]
		if r.piece != p {
			continue
		}
		take := math.Min(r.bytes, b)
		if r.bytes-take < 1 {
			take = r.bytes // no crumbs: a byte lost would hold its piece forever
		}
		r.bytes -= take
		o.out -= take
		b -= take
		l.push(p, take)
	}
	o.q = compact(o.q)
	if o.out < 1 {
		o.out = 0
		o.update = true
	}
}

func compact(q []chunkReq) []chunkReq {
	out := q[:0]
	for _, r := range q {
		if r.bytes > 0 {
			out = append(out, r)
		}
	}
	return out
}

// drain answers link l's requests for dt seconds at its rate, in order.
func (s *sim) drain(l *link, dt float64) float64 {
	left := l.rate * dt
	sent := 0.0
	i := l.to
	for len(l.q) > 0 && left > 0 {
		r := &l.q[0]
		take := math.Min(left, r.bytes)
		if r.bytes-take < 1 {
			take = r.bytes // no crumbs (see steal)
		}
		r.bytes -= take
		left -= take
		sent += take
		s.got[i][r.piece] += take
		if r.bytes <= 0 {
			l.q = l.q[1:]
		}
	}
	l.out = math.Max(0, l.out-sent)
	if sent > 0 {
		// slow start: the window grows by what was acknowledged, while it
		// is what holds the connection back
		if rtt := s.rttOf(l); l.rate >= l.cwnd/rtt*(1-1e-6) {
			l.cwnd += sent
		}
		l.lastSent = s.t + dt
	}
	if len(l.q) == 0 {
		l.out = 0
		if sent > 0 {
			l.update = true // its last request answered
		}
	}
	return sent
}

// share sets the rate of each link with requests outstanding: progressive
// filling over the nodes' uplinks and downlinks (B each), each link also
// held to its outstanding bytes per round trip (rttOf).
func (s *sim) share(active []*link) {
	upLeft := s.upLeft
	downLeft := s.downLeft
	for k := range upLeft {
		upLeft[k], downLeft[k] = s.B, s.B
	}
	for _, l := range active {
		l.rate, l.done = 0, false
		l.limit = math.Inf(1)
		if rtt := s.rttOf(l); rtt > 0 {
			w := l.window()
			if s.c.slowStart {
				if s.t-l.lastSent >= minRTO+rtt {
					l.cwnd = initCwnd
				}
				w = min(w, l.cwnd)
			}
			l.limit = w / rtt
		}
	}
	nUp, nDown := s.nUp, s.nDown
	for round := 0; round < 40; round++ {
		clear(nUp)
		clear(nDown)
		live := 0
		for _, l := range active {
			if !l.done {
				nUp[l.from]++
				nDown[l.to]++
				live++
			}
		}
		if live == 0 {
			break
		}
		inc := math.Inf(1)
		for _, l := range active {
			if !l.done {
				inc = min(inc, upLeft[l.from]/float64(nUp[l.from]), downLeft[l.to]/float64(nDown[l.to]), l.limit-l.rate)
			}
		}
		for _, l := range active {
			if !l.done {
				l.rate += inc
				upLeft[l.from] -= inc
				downLeft[l.to] -= inc
			}
		}
		for _, l := range active {
			if !l.done && (upLeft[l.from] <= 1e-6*s.B || downLeft[l.to] <= 1e-6*s.B || l.rate >= l.limit*(1-1e-9)) {
				l.done = true
			}
		}
	}
	// the ports' queues for the next step: full where the port is (near)
	// saturated, as TCP fills a FIFO it saturates
	for k := range upLeft {
		s.upQ[k] = s.queueAt(1 - upLeft[k]/s.B)
		s.downQ[k] = s.queueAt(1 - downLeft[k]/s.B)
	}
}

// queueAt is a port's queueing delay at utilisation u: empty below 90 %,
// full (-queue) at 100 %, in between linearly.
func (s *sim) queueAt(u float64) float64 {
	return s.c.queue.Seconds() * max(0, min(1, (u-0.9)/0.1))
}

// rttOf is link l's round trip: the base (-rtt) plus the queues of the
// ports its requests and its data pass (the client's uplink, the
// sender's downlink, the sender's uplink, the client's downlink).
func (s *sim) rttOf(l *link) float64 {
	r := s.c.rtt.Seconds() + s.upQ[l.to] + s.downQ[l.from] + s.upQ[l.from] + s.downQ[l.to]
	if l.from < s.n && s.c.hol > 0 {
		// the client's requests share one TCP stream with what it
		// uploads to that peer: they wait behind its send buffer
		if back := s.inFrom[l.from][l.to]; back != nil && back.out > 0 {
			r += s.c.hol * (s.c.rtt.Seconds() + s.upQ[l.to] + s.downQ[l.from])
		}
	}
	return r
}

// window is the bytes of the requests outstanding, whole chunks: what a
// connection can carry in one round trip.
func (l *link) window() float64 { return math.Ceil(l.out/chunk-1e-6) * chunk }
