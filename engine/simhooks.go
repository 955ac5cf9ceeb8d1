package engine

import (
	"encoding/binary"
	"ezio/engine/torrentfile"
	"slices"
	"time"

	"github.com/anacrolix/torrent"
)

// The engine's own piece choice, for bench/swarmsim: the simulator runs
// exactly the picker's and the seeder's reveal decisions (choose, plan,
// pick) against a model of links instead of the library and the wire.
// Nothing here is used by ezio itself.

// PiecePicker is a client's picker (picker.go) without a torrent.
type PiecePicker struct{ p *picker }

// NewPiecePicker is the picker of a client with the default tuning but
// cacheMiB (0: the default cache size) and the strategy (the benchmark's
// knobs, StrategyFromEnv; zero: the defaults).
func NewPiecePicker(numPieces int, pieceLength int64, cacheMiB int, st Strategy) *PiecePicker {
	l := &torrentfile.Layout{PieceLength: pieceLength, NumPieces: numPieces}
	j := &Job{layout: l}
	return &PiecePicker{p: newPicker(j, Tuning{CacheSizeMiB: cacheMiB, Strategy: st})}
}

// Choose returns each piece's priority (0 none, higher is sooner; the
// library's PiecePriority values): complete and partial are this client's
// pieces, peerHave how many connected peers that are not complete seeders
// hold each piece (a revealing seeder counts as such a peer, holding what
// it revealed), fullSeeders the connected complete seeders.
func (pp *PiecePicker) Choose(complete, partial []bool, peerHave []int, fullSeeders int) []int {
	w := pp.p.choose(complete, partial, peerHave, fullSeeders)
	out := make([]int, len(w))
	for i, x := range w {
		out[i] = int(x)
	}
	return out
}

// UnverifiedBudget is the library's bound on a client's bytes requested
// and not yet verified, as a deploy sets it (picker.go).
func UnverifiedBudget(numPieces int, pieceLength int64, cacheMiB int) int64 {
	return unverifiedBudget(&torrentfile.Layout{PieceLength: pieceLength, NumPieces: numPieces}, Tuning{CacheSizeMiB: cacheMiB})
}

// RevealPlanner is a seeder's reveal (reveal.go, revealgroup.go) for one
// torrent, with clients known by number.
type RevealPlanner struct {
	g     *revealGroup
	rs    *revealSeeder
	conns []*torrent.PeerConn // a distinct stand-in per client, never used as a connection
	id    map[*torrent.PeerConn]int
}

// NewRevealPlanner is the reveal of a seeder with the strategy's window
// and first-piece rule (zero: the defaults), for clients 0..clients-1.
func NewRevealPlanner(numPieces int, pieceLength, total int64, clients int, st Strategy) *RevealPlanner {
	st = Tuning{Strategy: st}.withDefaults().Strategy
	g := newRevealGroup(!st.RevealFirstOneOff)
	rs := newRevealSeeder(g, numPieces, pieceLength, total, st.RevealWindowMiB)
	r := &RevealPlanner{g: g, rs: rs, id: map[*torrent.PeerConn]int{}}
	for c := range clients {
		pc := &torrent.PeerConn{}
		r.conns = append(r.conns, pc)
		r.id[pc] = c
		rs.clients[pc] = &revealState{revealed: make([]bool, numPieces)}
	}
	return r
}

// Revealed tells whether piece i was revealed to client c.
func (r *RevealPlanner) Revealed(c, i int) bool { return r.rs.clients[r.conns[c]].revealed[i] }

// Step is one step of the seeder's group: have[c] is what client c holds
// (nil: not connected), holders how many connected peers hold each piece,
// busy whether the seeder's uplink is near its peak (revealbusy.go). It
// returns the pieces revealed now, per client.
func (r *RevealPlanner) Step(have [][]bool, holders []int32, busy bool) map[int][]int {
	rs := r.rs
	hold := slices.Clone(holders)
	conns := map[*torrent.PeerConn]*revealState{}
	byConn := map[*torrent.PeerConn][]bool{}
	for c, h := range have {
		if h != nil {
			conns[r.conns[c]] = rs.clients[r.conns[c]]
			byConn[r.conns[c]] = h
		}
	}
	byClient := map[torrent.PeerID][]*revealConn{}
	for _, rc := range torrentConns(rs, conns, byConn, hold, nil) {
		var id torrent.PeerID
		binary.BigEndian.PutUint64(id[:8], uint64(r.id[rc.pc])+1)
		byClient[id] = []*revealConn{rc}
	}
	out := map[int][]int{}
	for _, x := range r.g.plan(byClient, int64(rs.window)*rs.pieceLength, int64(rs.maxWindow)*rs.pieceLength, rs.total, busy) {
		c := r.id[x.pc]
		out[c] = append(out[c], x.piece)
	}
	return out
}

// SeederMeter is the seeder's busy test (revealbusy.go) on a simulated
// clock: Busy records the bytes sent by time at and says whether the
// uplink runs near its best rate, as the reveal group's meter says.
type SeederMeter struct{ m uplinkMeter }

// Busy is uplinkMeter.add at the simulated time at.
func (s *SeederMeter) Busy(at time.Duration, sent int64) bool {
	return s.m.add(time.Unix(0, 0).Add(at), sent)
}
