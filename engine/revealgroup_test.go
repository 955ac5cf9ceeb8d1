package engine

import (
	"testing"

	"github.com/anacrolix/torrent"
)

// A seeder with three torrents (a disk's partitions) and clients connected
// for all three: each client's window covers the three together, its first
// pieces come from one torrent (one after another on one connection), and
// no piece goes out twice while another has not gone out at all.
func TestRevealGroupOneWindowOverEveryTorrent(t *testing.T) {
	const plen = 16 << 20
	g := newRevealGroup(false)
	sizes := []int{8, 5, 8} // pieces per torrent, as the bench's disk
	var seeders []*revealSeeder
	var total int64
	for _, n := range sizes {
		rs := newRevealSeeder(g, n, plen, int64(n)*plen, 8)
		seeders = append(seeders, rs)
		total += int64(n) * plen
	}
	initial := int64(seeders[0].window) * plen // 2 pieces of 16 MiB
	if seeders[0].window != 2 {
		t.Fatalf("initial window %d pieces, want 2 for 16 MiB pieces", seeders[0].window)
	}
	maxWin := int64(seeders[0].maxWindow) * plen

	type client struct{ id torrent.PeerID }
	var clients []*client
	for k := range 4 {
		c := &client{}
		c.id[0] = byte(k + 1)
		for _, rs := range seeders {
			rs.clients[&torrent.PeerConn{PeerID: c.id}] = &revealState{revealed: make([]bool, len(rs.counts))}
		}
		clients = append(clients, c)
	}
	// holders per torrent, shared by the clients' views of that torrent
	holders := make([][]int32, len(seeders))
	for i, rs := range seeders {
		holders[i] = make([]int32, len(rs.counts))
	}
	step := func(haveBy map[torrent.PeerID][][]bool) []reveal {
		by := map[torrent.PeerID][]*revealConn{}
		for ti, rs := range seeders {
			for i := range holders[ti] {
				holders[ti][i] = 0
			}
			for _, c := range clients {
				for i, h := range haveBy[c.id][ti] {
					if h {
						holders[ti][i]++
					}
				}
			}
			have := map[*torrent.PeerConn][]bool{}
			for pc := range rs.clients {
				have[pc] = haveBy[pc.PeerID][ti]
			}
			for _, rc := range torrentConns(rs, rs.clients, have, holders[ti], nil) {
				by[rc.pc.PeerID] = append(by[rc.pc.PeerID], rc)
			}
		}
		return g.plan(by, initial, maxWin, total, false)
	}
	have := map[torrent.PeerID][][]bool{}
	for _, c := range clients {
		for _, rs := range seeders {
			have[c.id] = append(have[c.id], make([]bool, len(rs.counts)))
		}
	}

	out := step(have)
	perClient := map[torrent.PeerID]int{}
	torrentsOf := map[torrent.PeerID]map[*revealSeeder]bool{}
	for _, r := range out {
		perClient[r.pc.PeerID]++
		if torrentsOf[r.pc.PeerID] == nil {
			torrentsOf[r.pc.PeerID] = map[*revealSeeder]bool{}
		}
		for _, rs := range seeders {
			if _, ok := rs.clients[r.pc]; ok {
				torrentsOf[r.pc.PeerID][rs] = true
			}
		}
	}
	for _, c := range clients {
		if got := perClient[c.id]; got != 2 {
			t.Errorf("client %d: %d pieces revealed at first over three torrents, want 2 (one window, not one per torrent)", c.id[0], got)
		}
		if got := len(torrentsOf[c.id]); got != 1 {
			t.Errorf("client %d: first pieces from %d torrents, want 1 (fetched one after another)", c.id[0], got)
		}
	}
	seen := 0
	for _, rs := range seeders {
		for i, n := range rs.counts {
			if n > 1 {
				t.Errorf("piece %d revealed %d times while others were not revealed at all", i, n)
			}
			seen += int(n)
		}
	}
	if seen != 8 {
		t.Errorf("%d reveals in all, want 8 (4 clients x 2)", seen)
	}

	// A window full of pending pieces gets nothing more; once a client
	// holds its pieces, it gets new ones, still never a duplicate while
	// 21 - 8 pieces have not gone out.
	if again := step(have); len(again) != 0 {
		t.Errorf("%d more reveals with every window full", len(again))
	}
	c0 := clients[0]
	for ti, rs := range seeders {
		for pc, st := range rs.clients {
			if pc.PeerID != c0.id {
				continue
			}
			for i, r := range st.revealed {
				if r {
					have[c0.id][ti][i] = true
				}
			}
		}
	}
	more := step(have)
	if len(more) == 0 {
		t.Fatal("a client that holds its revealed pieces got nothing new")
	}
	for _, rs := range seeders {
		for i, n := range rs.counts {
			if n > 1 {
				t.Errorf("piece %d revealed %d times with unrevealed pieces left", i, n)
			}
		}
	}
}

// A lone client's window keeps growing, to the whole of every torrent:
// there is no one to duplicate.
func TestRevealGroupLoneClientGetsEverything(t *testing.T) {
	const plen = 1 << 20
	g := newRevealGroup(false)
	a := newRevealSeeder(g, 40, plen, 40*plen, 8)
	b := newRevealSeeder(g, 30, plen, 30*plen, 8)
	var id torrent.PeerID
	id[0] = 9
	for _, rs := range []*revealSeeder{a, b} {
		rs.clients[&torrent.PeerConn{PeerID: id}] = &revealState{revealed: make([]bool, len(rs.counts))}
	}
	total := int64(70 * plen)
	got := 0
	for range 10 {
		var conns []*revealConn
		for _, rs := range []*revealSeeder{a, b} {
			have := map[*torrent.PeerConn][]bool{}
			for pc := range rs.clients {
				have[pc] = make([]bool, len(rs.counts))
			}
			conns = append(conns, torrentConns(rs, rs.clients, have, make([]int32, len(rs.counts)), nil)...)
		}
		got += len(g.plan(map[torrent.PeerID][]*revealConn{id: conns}, 8*plen, 256*plen, total, true))
	}
	if got != 70 {
		t.Errorf("lone client got %d of 70 pieces revealed after 10 steps", got)
	}
}

// A client that holds nothing gets one piece at a time (two would be
// fetched at once and neither held for twice as long); once it holds a
// piece its window is the usual one.
func TestRevealGroupFirstPieceAlone(t *testing.T) {
	const plen = 16 << 20
	g := newRevealGroup(true)
	rs := newRevealSeeder(g, 20, plen, 20*plen, 8)
	type cl struct {
		pc *torrent.PeerConn
		st *revealState
		h  []bool
	}
	var cls []*cl
	for k := range 4 {
		var id torrent.PeerID
		id[0] = byte(k + 1)
		c := &cl{pc: &torrent.PeerConn{PeerID: id}, st: &revealState{revealed: make([]bool, 20)}, h: make([]bool, 20)}
		rs.clients[c.pc] = c.st
		cls = append(cls, c)
	}
	plan := func() map[torrent.PeerID]int {
		hold := make([]int32, 20)
		for _, c := range cls {
			for i, h := range c.h {
				if h {
					hold[i]++
				}
			}
		}
		have := map[*torrent.PeerConn][]bool{}
		for _, c := range cls {
			have[c.pc] = c.h
		}
		by := map[torrent.PeerID][]*revealConn{}
		for _, rc := range torrentConns(rs, rs.clients, have, hold, nil) {
			by[rc.pc.PeerID] = []*revealConn{rc}
		}
		got := map[torrent.PeerID]int{}
		for _, r := range g.plan(by, 2*plen, 16*plen, 20*plen, false) {
			got[r.pc.PeerID]++
		}
		return got
	}
	first := plan()
	for _, c := range cls {
		if first[c.pc.PeerID] != 1 {
			t.Errorf("fresh client %d got %d pieces at first, want 1", c.pc.PeerID[0], first[c.pc.PeerID])
		}
	}
	if again := plan(); len(again) != 0 {
		t.Errorf("fresh clients with a piece on its way got more: %v", again)
	}
	// Client 1 holds its piece: its window is 2 pieces again (it was
	// found drained, so it doubles to 4).
	a := cls[0]
	for i, r := range a.st.revealed {
		if r {
			a.h[i] = true
		}
	}
	next := plan()
	if next[a.pc.PeerID] < 2 {
		t.Errorf("a client holding its first piece got %d new pieces, want its full window (>= 2)", next[a.pc.PeerID])
	}
	if len(next) != 1 {
		t.Errorf("clients still on their first piece got more: %v", next)
	}
}
