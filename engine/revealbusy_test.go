package engine

import (
	"slices"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
)

// While the seeder is busy, a piece on its way to one client is not
// revealed to another; a piece whose client left is; with room on its
// uplink, the seeder sends second copies, a window's worth at a time.
func TestRevealOnceWhileBusy(t *testing.T) {
	const plen, n = 1 << 20, 8
	g := newRevealGroup(false)
	rs := newRevealSeeder(g, n, plen, n*plen, 2) // 2 pieces per window
	type cl struct {
		pc *torrent.PeerConn
		h  []bool
	}
	var cls []*cl
	for k := range 4 {
		var id torrent.PeerID
		id[0] = byte(k + 1)
		c := &cl{pc: &torrent.PeerConn{PeerID: id}, h: make([]bool, n)}
		rs.clients[c.pc] = &revealState{revealed: make([]bool, n)}
		cls = append(cls, c)
	}
	step := func(busy bool) map[int][]int {
		hold := make([]int32, n)
		have := map[*torrent.PeerConn][]bool{}
		for _, c := range cls {
			if _, ok := rs.clients[c.pc]; !ok {
				continue
			}
			have[c.pc] = c.h
			for i, h := range c.h {
				if h {
					hold[i]++
				}
			}
		}
		by := map[torrent.PeerID][]*revealConn{}
		for _, rc := range torrentConns(rs, rs.clients, have, hold, nil) {
			by[rc.pc.PeerID] = []*revealConn{rc}
		}
		got := map[int][]int{}
		for _, r := range g.plan(by, 2*plen, 16*plen, n*plen, busy) {
			got[int(r.pc.PeerID[0])-1] = append(got[int(r.pc.PeerID[0])-1], r.piece)
		}
		return got
	}
	first := step(true)
	seen := map[int]int{}
	for k := range cls {
		if len(first[k]) != 2 {
			t.Fatalf("client %d got %v at first, want a window of 2 pieces", k, first[k])
		}
		for _, p := range first[k] {
			seen[p]++
		}
	}
	if len(seen) != n {
		t.Fatalf("the first windows revealed %d distinct pieces of %d: %v", len(seen), n, first)
	}
	// Client 0 holds its two; every other piece is on its way elsewhere.
	for _, p := range first[0] {
		cls[0].h[p] = true
	}
	if got := step(true); len(got[0]) != 0 {
		t.Errorf("busy seeder revealed %v to client 0: pieces on their way to others", got[0])
	}
	// Client 1 leaves before holding anything: its pieces are lost.
	for pc := range rs.clients {
		if pc == cls[1].pc {
			delete(rs.clients, pc)
		}
	}
	got := step(true)
	if len(got[0]) != 2 || !(slices.Contains(first[1], got[0][0]) && slices.Contains(first[1], got[0][1])) {
		t.Errorf("after client 1 left, client 0 got %v, want client 1's pieces %v", got[0], first[1])
	}
	for _, p := range got[0] {
		cls[0].h[p] = true
	}
	// Room on the uplink: second copies, the first window's size only.
	idle := step(false)
	if len(idle[0]) != 2 {
		t.Errorf("seeder with room revealed %v to client 0, want 2 second copies", idle[0])
	}
	for _, p := range idle[0] {
		if cls[0].h[p] {
			t.Errorf("revealed piece %d that client 0 holds", p)
		}
	}
}

// The meter: unknown is not busy; at its peak rate the uplink is busy,
// and at 80 % of it; at 40 %, not.
func TestUplinkMeter(t *testing.T) {
	var m uplinkMeter
	at := time.Unix(1000, 0)
	sent := int64(0)
	tick := func(rate int64) bool {
		at = at.Add(100 * time.Millisecond)
		sent += rate / 10
		return m.add(at, sent)
	}
	if tick(10 << 20) {
		t.Error("busy after one sample")
	}
	busy := false
	for range 30 {
		busy = tick(10 << 20)
	}
	if !busy {
		t.Error("not busy at a steady 10 MiB/s (its peak)")
	}
	for range 30 {
		busy = tick(4 << 20)
	}
	if busy {
		t.Error("busy at 40 % of its peak rate")
	}
	for range 30 {
		busy = tick(8 << 20)
	}
	if !busy {
		t.Error("not busy at 80 % of its peak rate")
	}
}
