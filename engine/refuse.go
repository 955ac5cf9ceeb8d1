package engine

import (
	"sync"
	"time"

	"github.com/anacrolix/torrent"
	pp "github.com/anacrolix/torrent/peer_protocol"
)

// Refused pieces and starved connections (client side).
//
// The library (v1.61.0, requesting.go applyRequestState) adds no request
// in the update that follows a reject, refills a connection's requests
// only once the last one is answered, and has its update timer compiled
// out. So when a reject is the last answer on a connection, the
// connection is left with no request and nothing ever asks it again.
// Two ways that happens:
//   - an ezio seeder refuses every request for a piece that is bad on its
//     source while still holding it in the protocol's sense: the deploy
//     stalled for good with the seeder's other pieces still to fetch
//     (TestCorruptExtentOnTheSeeder, at 16 and at 2 of 32 pieces);
//   - with the fast extension a peer answers each of our cancels with a
//     reject, so a connection whose requests were all cancelled (stolen by
//     another connection, say) starves the same way.
// A new connection is no cure: it starts with one request, and if that
// goes to a refused piece, it starves at once.
//
// So the client notes rejects and chokes as they are read, and the picker
// wakes a connection that does not choke us, holds a wanted piece, and
// either answered last with a reject or has sent nothing for a while when
// nothing arrives from anywhere: a
// priority change that adds a piece to the wanted set is the one public
// way to make the library update a connection's requests. The piece
// chosen is one the peer has not refused lately (a reject may also be a
// cancel's acknowledgement, so a refusal only steers that choice).

const (
	// refuseCooldown is how long a piece a peer refused is not used to
	// wake that peer.
	refuseCooldown = 5 * time.Second
	// starveAfter is how long a connection that could send a wanted piece
	// may stay silent, while the deploy gets nothing from anywhere, before
	// it is woken (and at most how often).
	starveAfter = 3 * time.Second
	// rejectSettle is how long after a reject that was a connection's
	// last answer it is woken (and at most how often, while that lasts):
	// a connection still busy with other requests sends a block by then.
	rejectSettle = 300 * time.Millisecond
)

// refusals is what the connections' reader saw: rejects of requests sent
// while the peer did not choke us, whether each peer chokes us, and when
// it last sent a block and a reject.
type refusals struct {
	mu    sync.Mutex
	conns map[*torrent.PeerConn]*refuseState
}

type refuseState struct {
	unchoked     bool
	refused      map[int]time.Time
	block, rejct time.Time // last piece message, last reject
}

func newRefusals() *refusals {
	return &refusals{conns: map[*torrent.PeerConn]*refuseState{}}
}

func (r *refusals) hooks() peerHooks {
	return peerHooks{read: r.read, closed: r.closed}
}

// read runs on the connection's reader with the client lock held: it only
// touches its own maps.
func (r *refusals) read(pc *torrent.PeerConn, msg *pp.Message) {
	if msg.Keepalive {
		return
	}
	switch msg.Type {
	case pp.Choke, pp.Unchoke, pp.Reject, pp.Piece:
	default:
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.conns[pc]
	if st == nil {
		st = &refuseState{refused: map[int]time.Time{}}
		r.conns[pc] = st
	}
	switch msg.Type {
	case pp.Choke:
		// With the fast extension a choking peer rejects what it had
		// queued: those are not refusals of the pieces.
		st.unchoked = false
	case pp.Unchoke:
		st.unchoked = true
	case pp.Reject:
		if st.unchoked {
			st.rejct = time.Now()
			st.refused[int(msg.Index)] = st.rejct
		}
	case pp.Piece:
		// It sends this piece after all (a reject for a full queue).
		st.block = time.Now()
		delete(st.refused, int(msg.Index))
	}
}

func (r *refusals) closed(pc *torrent.PeerConn) {
	r.mu.Lock()
	delete(r.conns, pc)
	r.mu.Unlock()
}

// state tells whether pc lets us request, and whether a reject is the
// last thing it answered, at least rejectSettle ago.
func (r *refusals) state(pc *torrent.PeerConn, now time.Time) (unchoked, rejectedLast bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.conns[pc]
	if st == nil {
		return false, false
	}
	return st.unchoked, st.rejct.After(st.block) && now.Sub(st.rejct) >= rejectSettle
}

// refusedRecently lists, per connection, the pieces it refused within
// refuseCooldown; older refusals are forgotten.
func (r *refusals) refusedRecently(now time.Time) map[*torrent.PeerConn]map[int]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[*torrent.PeerConn]map[int]bool{}
	for pc, st := range r.conns {
		for i, at := range st.refused {
			if now.Sub(at) >= refuseCooldown {
				delete(st.refused, i)
				continue
			}
			if out[pc] == nil {
				out[pc] = map[int]bool{}
			}
			out[pc][i] = true
		}
	}
	return out
}

// starveWatch follows each connection's useful bytes, to see which ones
// have gone silent, and when each was last woken.
type starveWatch struct {
	last map[*torrent.PeerConn]*starveMark
}

type starveMark struct {
	bytes int64
	at    time.Time // when bytes last changed
	woke  time.Time
}

// mark updates pc's mark with its useful bytes.
func (w *starveWatch) mark(pc *torrent.PeerConn, now time.Time) *starveMark {
	if w.last == nil {
		w.last = map[*torrent.PeerConn]*starveMark{}
	}
	st := pc.Stats()
	n := st.BytesReadUsefulData.Int64()
	m := w.last[pc]
	if m == nil {
		m = &starveMark{bytes: n, at: now}
		w.last[pc] = m
	} else if m.bytes != n {
		m.bytes, m.at = n, now
	}
	return m
}

// prune forgets connections that are gone.
func (w *starveWatch) prune(conns []*torrent.PeerConn) {
	live := make(map[*torrent.PeerConn]bool, len(conns))
	for _, pc := range conns {
		live[pc] = true
	}
	for pc := range w.last {
		if !live[pc] {
			delete(w.last, pc)
		}
	}
}
