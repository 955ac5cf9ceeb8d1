package engine

import (
	"ezio/engine/server"
	"sync"

	"github.com/anacrolix/torrent"
	pp "github.com/anacrolix/torrent/peer_protocol"
)

// haveWatch is a seeder's own count of what each connected client says it
// holds, from its bitfield and have messages as they are read. When a
// client completes, the library drops the connection at once (both sides
// are complete), often before a periodic look at the connections could
// see the last piece; this count is handed to the tracker's witness as
// the connection closes, so a finished client is always vouched for.
type haveWatch struct {
	n  int
	w  *server.ConnWitness
	mu sync.Mutex
	// per connection: which pieces it said it has, and how many
	have  map[*torrent.PeerConn][]bool
	count map[*torrent.PeerConn]int
}

func newHaveWatch(n int) *haveWatch {
	return &haveWatch{n: n, have: map[*torrent.PeerConn][]bool{}, count: map[*torrent.PeerConn]int{}}
}

// setWitness says where closed connections are recorded (none: nowhere).
func (h *haveWatch) setWitness(w *server.ConnWitness) {
	h.mu.Lock()
	h.w = w
	h.mu.Unlock()
}

func (h *haveWatch) hooks() peerHooks { return peerHooks{read: h.read, closed: h.closed} }

func (h *haveWatch) set(pc *torrent.PeerConn, i int) {
	if i < 0 || i >= h.n {
		return
	}
	b := h.have[pc]
	if b == nil {
		b = make([]bool, h.n)
		h.have[pc] = b
	}
	if !b[i] {
		b[i] = true
		h.count[pc]++
	}
}

// read runs on the connection's reader (the client lock held): it only
// touches its own maps.
func (h *haveWatch) read(pc *torrent.PeerConn, msg *pp.Message) {
	if msg.Keepalive {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch msg.Type {
	case pp.Have:
		h.set(pc, int(msg.Index))
	case pp.Bitfield:
		for i, b := range msg.Bitfield {
			if b {
				h.set(pc, i)
			}
		}
	case pp.HaveAll:
		h.count[pc] = h.n
	}
}

// closed records the connection's last count with the witness, under the
// client's address with either port (its own, and the one it listens on).
func (h *haveWatch) closed(pc *torrent.PeerConn) {
	h.mu.Lock()
	n, w := h.count[pc], h.w
	delete(h.have, pc)
	delete(h.count, pc)
	h.mu.Unlock()
	if n == 0 || w == nil {
		return
	}
	if keys := server.PeerKeys(pc, peerListenPort(pc)); keys != nil {
		w.Record(keys, server.Evidence{Pieces: n})
	}
}

// chain runs a's hooks, then b's.
func chain(a, b peerHooks) peerHooks {
	return peerHooks{
		added: func(pc *torrent.PeerConn) {
			if a.added != nil {
				a.added(pc)
			}
			if b.added != nil {
				b.added(pc)
			}
		},
		closed: func(pc *torrent.PeerConn) {
			if a.closed != nil {
				a.closed(pc)
			}
			if b.closed != nil {
				b.closed(pc)
			}
		},
		read: func(pc *torrent.PeerConn, m *pp.Message) {
			if a.read != nil {
				a.read(pc, m)
			}
			if b.read != nil {
				b.read(pc, m)
			}
		},
		handshake: func(pc *torrent.PeerConn, d *pp.ExtendedHandshakeMessage) {
			if a.handshake != nil {
				a.handshake(pc, d)
			}
			if b.handshake != nil {
				b.handshake(pc, d)
			}
		},
	}
}

// listenPorts holds, per live connection, the listen port its peer sent in
// its extended handshake. The library writes PeerConn.PeerListenPort on the
// connection's reader without a lock readers outside it can take, so the
// engine keeps its own copy, written by the handshake callback and dropped
// when the connection closes (session.go installHooks).
var listenPorts sync.Map // *torrent.PeerConn -> int

// peerListenPort is the listen port pc's peer announced, or 0.
func peerListenPort(pc *torrent.PeerConn) int {
	if v, ok := listenPorts.Load(pc); ok {
		return v.(int)
	}
	return 0
}
