package engine

import (
	"context"
	"ezio/engine/torrentfile"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/types"
)

// The picker owns piece priorities: the torrent's files are left at
// priority none (no DownloadAll), and each piece is wanted only while some
// connected peer can send it.
//
// The library orders pieces by priority, then partial, then availability,
// then piece index. Fresh clients therefore all chase the same pieces in
// the same order and have nothing to trade with each other, while the
// seeder sends the same piece several times. The picker steers each client
// by raising the priority of a small, changing set of pieces:
//
//   - pieces that other clients already hold (rarest among them first),
//     so that most bytes come from peers, not the seeder;
//   - a few pieces nobody but a full seeder has, in an order random to each
//     client, so that what the seeder sends is different for every client
//     and is new to the swarm.
//
// Ties are broken by a per-client random rank, never by index.
type picker struct {
	j      *Job
	rarest bool
	rank   []int // random rank of each piece
	prio   []types.PiecePriority
	set    bool // priorities have been applied once
	sw     starveWatch
	kPeer  int
	kSeed  int
}

func newPicker(j *Job, tu Tuning) *picker {
	n := j.layout.NumPieces
	p := &picker{j: j, rank: rand.Perm(n), prio: make([]types.PiecePriority, n), rarest: !tu.Strategy.PickerNoRarest}
	p.kPeer, p.kSeed = pickerSizes(j.layout, tu)
	return p
}

// pickerSizes is how many pieces the picker keeps wanted from peers and
// from the seeder.
func pickerSizes(l *torrentfile.Layout, tu Tuning) (kPeer, kSeed int) {
	tu = tu.withDefaults()
	budget := int((int64(tu.CacheSizeMiB) << 20) / l.PieceLength)
	return clamp(budget/tu.Strategy.PickerPeerDiv, 2, 64), clamp(int((int64(tu.Strategy.PickerSeedMiB)<<20)/l.PieceLength), 1, 8)
}

// unverifiedBudget caps the bytes in flight so that only the picked pieces
// are requested.
func unverifiedBudget(l *torrentfile.Layout, tu Tuning) int64 {
	tu = tu.withDefaults()
	if tu.Strategy.PickerOff {
		return int64(tu.CacheSizeMiB) << 20
	}
	kp, ks := pickerSizes(l, tu)
	return min(int64(tu.CacheSizeMiB)<<20, int64(kp+ks+2)*l.PieceLength)
}

func clamp(v, lo, hi int) int { return max(lo, min(v, hi)) }

// run keeps the priorities up to date until ctx ends.
func (p *picker) run(ctx context.Context) error {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		p.update()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (p *picker) update() {
	n := p.j.layout.NumPieces
	t := p.j.t
	// Who has what: fullHave counts every connected peer, peerHave only
	// those that are not complete seeders.
	peerHave := make([]int, n)
	anyHave := make([]bool, n)
	fullSeeders := 0
	conns := t.PeerConns()
	for _, pc := range conns {
		bm := pc.PeerPieces()
		if int(bm.GetCardinality()) >= n {
			fullSeeders++
			continue
		}
		it := bm.Iterator()
		for it.HasNext() {
			i := int(it.Next())
			if i < n {
				peerHave[i]++
				anyHave[i] = true
			}
		}
	}
	complete, partial := make([]bool, n), make([]bool, n)
	idx := 0
	for _, r := range t.PieceStateRuns() {
		for k := 0; k < r.Length; k++ {
			complete[idx+k], partial[idx+k] = r.Complete, r.Partial
		}
		idx += r.Length
	}
	want := p.choose(complete, partial, peerHave, fullSeeders)
	if p.j.paused.Load() {
		for i := range want {
			want[i] = types.PiecePriorityNone
		}
	}
	for i := range n {
		if want[i] != p.prio[i] || !p.set {
			t.Piece(i).SetPriority(want[i])
			p.prio[i] = want[i]
		}
	}
	p.set = true
	p.wake(conns, want)
}

// choose is the picker's decision, from what it sees of the torrent: the
// pieces held and started here, how many connected peers that are not
// complete seeders hold each piece, and how many complete seeders are
// connected. (bench/swarmsim runs it through PiecePicker.)
func (p *picker) choose(complete, partial []bool, peerHave []int, fullSeeders int) []types.PiecePriority {
	n := len(complete)
	var fromPeers, fromSeed []int
	sentinel := -1
	want := make([]types.PiecePriority, n)
	for i := range n {
		switch {
		case complete[i]:
			want[i] = types.PiecePriorityNone
		case partial[i]:
			want[i] = types.PiecePriorityHigh // finish what was started
		case peerHave[i] > 0:
			want[i] = types.PiecePriorityNormal
			fromPeers = append(fromPeers, i)
		case fullSeeders > 0:
			want[i] = types.PiecePriorityNormal
			fromSeed = append(fromSeed, i)
		default:
			// Nobody connected has it: leaving it wanted would spend
			// the unverified-bytes budget on pieces no one can send
			// (the library orders the rarest, availability 0, first).
			// One stays wanted (below), or the library stops looking
			// for peers at all.
			want[i] = types.PiecePriorityNone
			if sentinel < 0 || p.rank[i] < p.rank[sentinel] {
				sentinel = i
			}
		}
	}
	sort.Slice(fromPeers, func(a, b int) bool {
		x, y := fromPeers[a], fromPeers[b]
		if p.rarest && peerHave[x] != peerHave[y] {
			return peerHave[x] < peerHave[y]
		}
		return p.rank[x] < p.rank[y]
	})
	sort.Slice(fromSeed, func(a, b int) bool { return p.rank[fromSeed[a]] < p.rank[fromSeed[b]] })
	for _, i := range fromPeers[:min(len(fromPeers), p.kPeer)] {
		want[i] = types.PiecePriorityHigh
	}
	for _, i := range fromSeed[:min(len(fromSeed), p.kSeed)] {
		want[i] = types.PiecePriorityHigh
	}
	if sentinel >= 0 {
		want[sentinel] = types.PiecePriorityNormal
	}
	return want
}

// wake makes the library update the requests of connections that hold a
// wanted piece, do not choke us, and either answered their last request
// with a reject or have sent nothing for starveAfter while nothing came
// from anywhere (refuse.go). For
// each, one wanted piece it holds and has not refused leaves the wanted
// set and comes back: that updates the requests of every connection
// holding it that has none outstanding. It comes back above every other
// piece until the next update, so that a woken connection's first
// request (the library starts again from one) goes to it, not to a piece
// the peer refuses.
func (p *picker) wake(conns []*torrent.PeerConn, want []types.PiecePriority) {
	p.sw.prune(conns)
	rf := p.j.refused
	if rf == nil {
		return
	}
	now := time.Now()
	refused := rf.refusedRecently(now)
	stalled := now.Sub(p.j.progressTime()) >= starveAfter
	toggle := map[int]bool{}
	woken := 0
	for _, pc := range conns {
		m := p.sw.mark(pc, now)
		unchoked, rejectedLast := rf.state(pc, now)
		if !unchoked {
			continue
		}
		// A connection silent while others deliver is no concern (the
		// picker may just want its pieces from them); woken only while
		// nothing arrives at all, it cannot upset a healthy swarm.
		since := now.Sub(m.woke)
		silent := now.Sub(m.at) >= starveAfter && stalled && since >= starveAfter
		if !(rejectedLast && since >= rejectSettle) && !silent {
			continue
		}
		bm := pc.PeerPieces()
		best := -1
		for i := range want {
			if want[i] == types.PiecePriorityNone || refused[pc][i] || !bm.Contains(uint32(i)) {
				continue
			}
			if best < 0 || want[i] > want[best] || want[i] == want[best] && p.rank[i] < p.rank[best] {
				best = i
			}
		}
		if best >= 0 {
			toggle[best] = true
			m.woke = now
			woken++
		}
	}
	for i := range toggle {
		p.j.log.Debug("waking idle connections that hold a wanted piece", "piece", i, "connections", woken)
		piece := p.j.t.Piece(i)
		piece.SetPriority(types.PiecePriorityNone)
		piece.SetPriority(types.PiecePriorityNext)
		p.prio[i] = types.PiecePriorityNext // back to want[i] at the next update
	}
}
