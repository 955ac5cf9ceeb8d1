package engine

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/anacrolix/torrent"
)

// revealGroup is the piece reveal of a whole session: every seed job of
// the session reveals through it, so that a client fetching several
// torrents from this seeder (the partitions of a disk, each one torrent
// with its own connection) has one window of revealed pieces over all of
// them instead of one per torrent.
//
// Per torrent, a disk of three partitions had each client fetch three
// 16 MiB pieces at once from the seeder, one on each connection, at a third
// of its share of the seeder's uplink each: no client completed a piece,
// and so none could serve another, for the first 19 s of a 27 s copy
// (docs/benchmarks.md, "whole disk"). The windows of four clients over
// three torrents also revealed 24 pieces of a 21-piece disk at once, so
// the seeder sent some pieces twice from the start.
//
// A client is known across its connections by its peer id (one client, one
// id, whatever the torrent). The group picks, for each client with room in
// its window, the piece fewest connected peers hold, then the least
// revealed, over every torrent the client is connected for, and among
// equals one in the torrent it is already fetching from the seeder: pieces
// of one torrent come one after another on one connection, so the first
// completes soonest.
//
// Ramp-up: a client that holds nothing yet gets one piece at a time.
// Revealed two at a time (the window of 16 MiB pieces), the library fetches
// both at once and holds neither until both are in: no client of a 4-client
// disk could serve another for the first 10 s; one at a time, its first
// piece is in after half of that. (Serving the first pieces to one fresh
// client after another, each at the seeder's full rate, was tried too: it
// started the first client sooner but the swarm no sooner, so it went.)
type revealGroup struct {
	mu      sync.Mutex // members
	members map[*revealSeeder]*torrent.Torrent

	stepMu  sync.Mutex // one step at a time; what follows too
	last    time.Time
	windows map[torrent.PeerID]int64 // bytes revealed and not yet held, per client
	rng     *rand.Rand
	// firstOne: a client holding nothing gets one piece at a time.
	firstOne bool

	kick chan struct{}
	// meter watches the members' uplink: busy, only fresh or lost pieces
	// are revealed (revealbusy.go).
	meter   uplinkMeter
	onceOff bool // EZIO_REVEAL_ONCE=off: never busy, the old rule
}

func newRevealGroup(firstOne bool) *revealGroup {
	return &revealGroup{
		firstOne: firstOne,
		members:  map[*revealSeeder]*torrent.Torrent{},
		windows:  map[torrent.PeerID]int64{},
		rng:      rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		kick:     make(chan struct{}, 1),
	}
}

// revealGroup is the session's reveal, made on first use.
func (s *Session) revealGroup() *revealGroup {
	s.revealOnce.Do(func() {
		s.reveal = newRevealGroup(!s.tu.Strategy.RevealFirstOneOff)
		s.reveal.onceOff = s.tu.Strategy.RevealOnceOff
	})
	return s.reveal
}

// run steps the group for as long as ctx lasts, with rs (on t) a member.
// Every member's job runs it; a step covers all of them, so steps closer
// together than a tick are skipped unless a client reported a piece.
func (g *revealGroup) run(ctx context.Context, rs *revealSeeder, t *torrent.Torrent) error {
	g.mu.Lock()
	g.members[rs] = t
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.members, rs)
		g.mu.Unlock()
	}()
	tick := time.NewTicker(revealTick)
	defer tick.Stop()
	for {
		kicked := false
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-g.kick:
			kicked = true
		}
		g.step(kicked)
	}
}

const revealTick = 100 * time.Millisecond

// revealConn is one connection of a client in one torrent, during a step.
type revealConn struct {
	rs   *revealSeeder
	pc   *torrent.PeerConn
	st   *revealState
	have []bool
	hold []int32 // connected peers holding each piece, in this torrent
	plen int64
	last int64 // length of the torrent's last piece
	n    int
	// bad are the torrent's pieces found bad on the source: never
	// revealed, and no place in a window.
	bad map[int]bool
	// fly counts, per piece of the torrent, the connected clients it was
	// revealed to and that do not hold it yet: on its way from the seeder.
	fly []int32
	// pending is what was revealed to the client and is not held yet.
	pending      int
	pendingBytes int64
}

func (c *revealConn) pieceLen(i int) int64 {
	if i == c.n-1 {
		return c.last
	}
	return c.plen
}

func (g *revealGroup) step(kicked bool) {
	g.stepMu.Lock()
	defer g.stepMu.Unlock()
	if !kicked && time.Since(g.last) < revealTick/2 {
		return
	}
	g.last = time.Now()

	g.mu.Lock()
	members := make(map[*revealSeeder]*torrent.Torrent, len(g.members))
	for rs, t := range g.members {
		members[rs] = t
	}
	g.mu.Unlock()

	// Each client's connections, over every torrent.
	byClient := map[torrent.PeerID][]*revealConn{}
	var initial, maxWin, total, sent int64
	for rs, t := range members {
		st := t.Stats()
		sent += st.BytesWrittenData.Int64()
		rs.mu.Lock()
		conns := make(map[*torrent.PeerConn]*revealState, len(rs.clients))
		for pc, st := range rs.clients {
			conns[pc] = st
		}
		rs.mu.Unlock()
		n, plen := len(rs.counts), rs.pieceLength
		initial = max(initial, int64(rs.window)*plen)
		maxWin = max(maxWin, int64(rs.maxWindow)*plen)
		total += rs.total
		if len(conns) == 0 {
			continue
		}
		bad := map[int]bool{}
		if rs.bad != nil {
			for _, b := range rs.bad() {
				bad[b.Index] = true
			}
		}
		// What every connected peer holds (gated clients report what they
		// really have; others may be full seeders).
		holders := make([]int32, n)
		have := map[*torrent.PeerConn][]bool{}
		for _, pc := range t.PeerConns() {
			bm := pc.PeerPieces()
			h := make([]bool, n)
			it := bm.Iterator()
			for it.HasNext() {
				if i := int(it.Next()); i < n {
					h[i] = true
					holders[i]++
				}
			}
			have[pc] = h
		}
		for _, c := range torrentConns(rs, conns, have, holders, bad) {
			byClient[c.pc.PeerID] = append(byClient[c.pc.PeerID], c)
		}
	}
	for id := range g.windows {
		if _, ok := byClient[id]; !ok {
			delete(g.windows, id)
		}
	}

	busy := g.meter.add(time.Now(), sent) && !g.onceOff
	var b [4]byte
	for _, r := range g.plan(byClient, initial, maxWin, total, busy) {
		binary.BigEndian.PutUint32(b[:], uint32(r.piece))
		r.pc.WriteExtendedMessage(extReveal, b[:])
	}
}

// torrentConns are the revealConns of one torrent's clients (conns, with
// what was revealed to each) that are connected (have: what each
// connected peer holds; holders: how many hold each piece); bad may be nil.
func torrentConns(rs *revealSeeder, conns map[*torrent.PeerConn]*revealState, have map[*torrent.PeerConn][]bool, holders []int32, bad map[int]bool) []*revealConn {
	n, plen := len(rs.counts), rs.pieceLength
	last := rs.total - int64(n-1)*plen
	fly := make([]int32, n)
	var out []*revealConn
	for pc, st := range conns {
		h := have[pc]
		if h == nil {
			continue
		}
		c := &revealConn{rs: rs, pc: pc, st: st, have: h, hold: holders, fly: fly, plen: plen, last: last, n: n, bad: bad}
		for i, r := range st.revealed {
			if r && !h[i] {
				fly[i]++
				if !bad[i] {
					c.pending++
					c.pendingBytes += c.pieceLen(i)
				}
			}
		}
		out = append(out, c)
	}
	return out
}

type reveal struct {
	pc    *torrent.PeerConn
	piece int
}

// plan tops up each client's window (bytes, initial at first, up to
// maxWin; up to total for a lone client) and says what to reveal to whom.
// While the seeder is busy, a piece some connected peer holds or is
// fetching is not revealed; when it is not, such second copies fill a
// client's window up to initial only (revealbusy.go).
func (g *revealGroup) plan(byClient map[torrent.PeerID][]*revealConn, initial, maxWin, total int64, busy bool) []reveal {
	var out []reveal
	lone := len(byClient) == 1
	// Clients holding nothing yet.
	empty := map[torrent.PeerID]bool{}
	for id, cs := range byClient {
		e := true
		for _, c := range cs {
			for _, h := range c.have {
				e = e && !h
			}
		}
		empty[id] = e
	}
	for id, cs := range byClient {
		win, ok := g.windows[id]
		if !ok {
			win = initial
		}
		var pending int64
		revealed := false
		for _, c := range cs {
			pending += c.pendingBytes
			revealed = revealed || anyRevealed(c.st)
		}
		// The window grows (doubling) each time the client is found with
		// nothing left to fetch, and at every step while it is the only
		// client: on a fast link a few pieces drain faster than reveals
		// come back, and a lone client can duplicate nothing.
		if pending == 0 && win < maxWin && revealed {
			win = min(2*win, maxWin)
		}
		if lone {
			win = min(2*win, total)
		}
		g.windows[id] = win
		if empty[id] && !lone && g.firstOne {
			// Its first piece alone: revealed two at a time, the
			// library fetches both at once and holds neither until
			// both are in (10 s at the start of a 4-client disk).
			one := int64(0)
			for _, c := range cs {
				one = max(one, c.plen)
			}
			win = min(win, one)
		}
		for pending < win {
			c, i := g.pick(cs, busy)
			if c == nil || (c.hold[i] > 0 || c.fly[i] > 0) && pending >= initial {
				break
			}
			c.rs.mu.Lock()
			c.st.revealed[i] = true
			c.rs.counts[i]++
			c.rs.mu.Unlock()
			c.fly[i]++ // it is on its way to a peer
			c.pending++
			c.pendingBytes += c.pieceLen(i)
			pending += c.pieceLen(i)
			out = append(out, reveal{c.pc, i})
		}
	}
	return out
}

// pick chooses the next piece to reveal to a client over its connections:
// fewest holders and fetchers, then least revealed, then in a torrent it
// already has pieces pending in, then at random. While the seeder is
// busy, only pieces nobody holds or fetches.
func (g *revealGroup) pick(cs []*revealConn, busy bool) (*revealConn, int) {
	var best *revealConn
	bestI, ties := -1, 0
	var bH, bC int32
	bSame := false
	for _, c := range cs {
		same := c.pending > 0
		c.rs.mu.Lock()
		for i := range c.n {
			if c.have[i] || c.st.revealed[i] || c.bad[i] || busy && c.hold[i]+c.fly[i] > 0 {
				continue
			}
			h, n := c.hold[i]+c.fly[i], c.rs.counts[i]
			switch {
			case best == nil || h < bH || h == bH && (n < bC || n == bC && same && !bSame):
				best, bestI, bH, bC, bSame, ties = c, i, h, n, same, 1
			case h == bH && n == bC && same == bSame:
				// an equal: keep one of them at random
				ties++
				if g.rng.IntN(ties) == 0 {
					best, bestI = c, i
				}
			}
		}
		c.rs.mu.Unlock()
	}
	return best, bestI
}
