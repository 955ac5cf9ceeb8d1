package engine

import (
	"ezio/engine/server"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/anacrolix/torrent"
	pp "github.com/anacrolix/torrent/peer_protocol"
)

// A client that needs a piece no connected source can give ends, with
// the reason, instead of waiting forever (badnotice.go has the seeder's
// side):
//   - an ezio seeder says a piece is bad on its source ("ezio_bad"): when
//     no other connected peer holds the piece for noticeGrace after that,
//     the deploy fails;
//   - any other seeder only refuses the requests: when every connected
//     peer holding the piece last answered its requests with a reject,
//     for refusedGrace, the deploy fails.
// A peer holding a good copy (a client that got the piece before the
// damage) is a source: while one is connected the deploy goes on.

const (
	// noticeGrace is how long a client waits, after its server said a
	// piece it lacks is bad, for some other peer to offer the piece (a
	// room's clients find each other within seconds).
	noticeGrace = 15 * time.Second
	// unservableCheck is how often the client looks.
	unservableCheck = time.Second
)

// refusedGrace is the same after every holder of the piece refused it,
// when no server said why (the picker re-asks in the meantime). A
// variable for tests.
var refusedGrace = 45 * time.Second

// UnservableError ends a deploy that needs a piece no connected source
// can give.
type UnservableError struct {
	BadPiece
	Servers []string // the sources that have the piece and refuse it
	Told    bool     // a server said the piece is bad (else it only refused)
}

func (e *UnservableError) Error() string {
	where := fmt.Sprintf("piece %d at disk offset %d", e.Index, e.Offset)
	if e.File != "" {
		where += " (extent file " + e.File + ")"
	}
	from := strings.Join(e.Servers, ", ")
	if from == "" {
		from = "the server"
	}
	var why string
	if e.Told {
		why = fmt.Sprintf("the server %s says its copy does not match the torrent", from)
		if e.Reason != "" {
			why += " (" + e.Reason + ")"
		}
		why += fmt.Sprintf(", and no other connected peer has the piece after %s", noticeGrace)
	} else {
		why = fmt.Sprintf("every peer that has it (%s) refused it for %s, and no other connected peer has it", from, refusedGrace)
	}
	return "cannot get " + where + ": " + why + ": " + server.StuckAdvice
}

// badHeard is a deploy's record of what its sources said and refused.
type badHeard struct {
	mu sync.Mutex
	// told: pieces a server said are bad, per server address (its
	// reason); kept when the connection closes (it is redialled).
	told map[string]map[int]string
	// refused: per connection, pieces whose requests it rejected (while
	// not choking) and has sent no block of since, and since when.
	refused map[*torrent.PeerConn]map[int]time.Time
	// blocked: when each piece was first seen with no source.
	blocked map[int]time.Time
	toldAt  map[int]time.Time
	// choked: connections that choke us (their rejects are not refusals).
	choked map[*torrent.PeerConn]bool
	last   time.Time
}

func newBadHeard() *badHeard {
	return &badHeard{
		told: map[string]map[int]string{}, refused: map[*torrent.PeerConn]map[int]time.Time{},
		blocked: map[int]time.Time{}, toldAt: map[int]time.Time{}, choked: map[*torrent.PeerConn]bool{},
	}
}

func (h *badHeard) hooks() peerHooks {
	return peerHooks{
		added: func(pc *torrent.PeerConn) {
			pc.LocalLtepProtocolMap = withProtocol(pc.LocalLtepProtocolMap, extBad)
		},
		closed: func(pc *torrent.PeerConn) {
			h.mu.Lock()
			delete(h.refused, pc)
			delete(h.choked, pc)
			h.mu.Unlock()
		},
		read: h.read,
	}
}

func badLocalID(pc *torrent.PeerConn) pp.ExtensionNumber {
	if m := pc.LocalLtepProtocolMap; m != nil {
		for i, n := range m.Index {
			if n == extBad {
				return pp.ExtensionNumber(i + 1)
			}
		}
	}
	return 0
}

// read runs on the connection's reader with the client lock held.
func (h *badHeard) read(pc *torrent.PeerConn, msg *pp.Message) {
	if msg.Keepalive {
		return
	}
	switch msg.Type {
	case pp.Extended:
		if msg.ExtendedID == 0 || msg.ExtendedID != badLocalID(pc) {
			return
		}
		n, ok := decodeBadNotice(msg.ExtendedPayload)
		if !ok {
			return
		}
		addr := pc.RemoteAddr.String()
		h.mu.Lock()
		if h.told[addr] == nil {
			h.told[addr] = map[int]string{}
		}
		h.told[addr][n.Piece] = n.Reason
		if _, seen := h.toldAt[n.Piece]; !seen {
			h.toldAt[n.Piece] = time.Now()
		}
		h.mu.Unlock()
	case pp.Choke, pp.Unchoke:
		h.mu.Lock()
		h.choked[pc] = msg.Type == pp.Choke
		h.mu.Unlock()
	case pp.Reject:
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.choked[pc] {
			return
		}
		if h.refused[pc] == nil {
			h.refused[pc] = map[int]time.Time{}
		}
		if _, ok := h.refused[pc][int(msg.Index)]; !ok {
			h.refused[pc][int(msg.Index)] = time.Now()
		}
	case pp.Piece:
		h.mu.Lock()
		delete(h.refused[pc], int(msg.Index))
		h.mu.Unlock()
	}
}

// checkUnservable fails the deploy when a piece it lacks has had no
// source for too long (see the top of this file).
func (j *Job) checkUnservable(now time.Time) {
	h := j.bad
	if h == nil || now.Sub(h.last) < unservableCheck {
		return
	}
	h.last = now
	if j.Paused() {
		// A paused deploy asks for nothing: the rejects of its cancelled
		// requests are no refusals, and no piece is overdue.
		h.mu.Lock()
		clear(h.blocked)
		clear(h.refused)
		h.mu.Unlock()
		return
	}
	// The pieces with evidence against a source.
	h.mu.Lock()
	suspects := map[int]bool{}
	for _, m := range h.told {
		for i := range m {
			suspects[i] = true
		}
	}
	for _, m := range h.refused {
		for i := range m {
			suspects[i] = true
		}
	}
	h.mu.Unlock()
	if len(suspects) == 0 {
		return
	}
	conns := j.t.PeerConns()
	idx := make([]int, 0, len(suspects))
	for i := range suspects {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	for _, i := range idx {
		if i < 0 || i >= j.layout.NumPieces || j.t.Piece(i).State().Complete {
			h.mu.Lock()
			delete(h.blocked, i)
			h.mu.Unlock()
			continue
		}
		if err := j.unservable(i, conns, now); err != nil {
			j.log.Error(err.Error())
			j.fail(err)
			return
		}
	}
}

// unservable looks at piece i's holders: nil while one can give it, or
// until the grace is over.
func (j *Job) unservable(i int, conns []*torrent.PeerConn, now time.Time) error {
	h := j.bad
	var servers []string
	told, reason, source := false, "", false
	// A revealing ezio seeder shows only what it revealed so far, and it
	// reveals every piece it holds that is not bad on its source.
	gated := map[*torrent.PeerConn]bool{}
	if j.revealC != nil {
		for _, pc := range j.revealC.gatedConns() {
			gated[pc] = true
		}
	}
	// The library's lock before ours: the read hook takes ours with the
	// library's held.
	holds := make(map[*torrent.PeerConn]bool, len(conns))
	for _, pc := range conns {
		holds[pc] = pc.PeerPieces().Contains(uint32(i))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for addr, m := range h.told {
		if r, said := m[i]; said {
			told, reason = true, r
			servers = append(servers, addr)
		}
	}
	for _, pc := range conns {
		if _, said := h.told[pc.RemoteAddr.String()][i]; said {
			continue
		}
		if gated[pc] {
			source = true
			continue
		}
		if !holds[pc] {
			continue
		}
		if _, refused := h.refused[pc][i]; refused {
			servers = append(servers, pc.RemoteAddr.String())
			continue
		}
		source = true
	}
	if source || len(servers) == 0 && !told {
		delete(h.blocked, i)
		return nil
	}
	since, ok := h.blocked[i]
	if !ok {
		since = now
		h.blocked[i] = now
	}
	grace := refusedGrace
	if told {
		grace = noticeGrace
		if at := h.toldAt[i]; at.After(since) {
			since = at
		}
	}
	if now.Sub(since) < grace {
		return nil
	}
	off, file := j.layout.PieceWhere(i)
	sort.Strings(servers)
	return &UnservableError{BadPiece: BadPiece{Index: i, Offset: off, File: file, Reason: reason}, Servers: servers, Told: told}
}
