package engine

import (
	"encoding/binary"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/bencode"
	pp "github.com/anacrolix/torrent/peer_protocol"
)

// Piece reveal: the seeder decides which pieces each ezio client may fetch
// from it, so that it sends a piece new to the swarm to one client, not
// the same piece to many (its uplink is what every client waits on).
//
// The library has no hook for choosing what a seeder serves, but it lets
// us see and rewrite each wire message before it is handled. So, between
// ezio nodes only:
//   - the seeder advertises the extension "ezio_seeder", the client
//     "ezio_have" (BEP 10 extended handshake);
//   - the client rewrites the seeder's HaveAll (or bitfield) into HaveNone:
//     in its library's view, the seeder holds nothing yet;
//   - the seeder sends "ezio_have" messages, one piece index each, and the
//     client rewrites each into an ordinary Have: the library then asks
//     the seeder for exactly the revealed pieces;
//   - the seeder keeps a few pieces revealed and not yet fetched per
//     client, choosing the pieces fewest connected peers hold, then the
//     least revealed, in random order; fresh pieces first, and when every
//     piece is out, the rarest ones, so no client is ever left waiting.
//
// Other clients (aria2, libtorrent, ...) never see any of it. A client
// that sees no reveal and no progress for a while turns the scheme off and
// reconnects to the seeder the ordinary way.

const (
	extReveal = pp.ExtensionName("ezio_have")
	extSeeder = pp.ExtensionName("ezio_seeder")
)

// withProtocol returns a copy of a connection's extension map with name
// added; the library's own map must not be modified.
func withProtocol(m *torrent.LocalLtepProtocolMap, name pp.ExtensionName) *torrent.LocalLtepProtocolMap {
	c := &torrent.LocalLtepProtocolMap{Index: slices.Clone(m.Index), NumBuiltin: m.NumBuiltin}
	c.AddUserProtocol(name)
	return c
}

// revealClient is the client side.
type revealClient struct {
	mu         sync.Mutex
	gated      map[*torrent.PeerConn]bool
	disabled   atomic.Bool
	lastReveal atomic.Int64 // unix nanos
}

func newRevealClient() *revealClient {
	rc := &revealClient{gated: map[*torrent.PeerConn]bool{}}
	rc.lastReveal.Store(time.Now().UnixNano())
	return rc
}

// The session calls these hooks for connections of this client's torrent
// (session.go); onRead runs on the connection's reader with the client
// lock held, before the library handles the message.
func (rc *revealClient) hooks() peerHooks {
	return peerHooks{
		added: func(pc *torrent.PeerConn) {
			if !rc.disabled.Load() {
				pc.LocalLtepProtocolMap = withProtocol(pc.LocalLtepProtocolMap, extReveal)
			}
		},
		closed: func(pc *torrent.PeerConn) {
			rc.mu.Lock()
			delete(rc.gated, pc)
			rc.mu.Unlock()
		},
		read: rc.onRead,
	}
}

func (rc *revealClient) localID(pc *torrent.PeerConn) pp.ExtensionNumber {
	m := pc.LocalLtepProtocolMap
	if m == nil {
		return 0
	}
	for i, n := range m.Index {
		if n == extReveal {
			return pp.ExtensionNumber(i + 1)
		}
	}
	return 0
}

func (rc *revealClient) onRead(pc *torrent.PeerConn, msg *pp.Message) {
	if msg.Keepalive {
		return
	}
	if msg.Type == pp.Extended && msg.ExtendedID == pp.HandshakeExtendedID {
		if rc.disabled.Load() || rc.localID(pc) == 0 {
			return
		}
		var d pp.ExtendedHandshakeMessage
		if bencode.Unmarshal(msg.ExtendedPayload, &d) == nil {
			if _, ok := d.M[extSeeder]; ok {
				rc.mu.Lock()
				rc.gated[pc] = true
				rc.mu.Unlock()
			}
		}
		return
	}
	rc.mu.Lock()
	gated := rc.gated[pc]
	rc.mu.Unlock()
	if !gated {
		return
	}
	switch msg.Type {
	case pp.HaveAll:
		msg.Type = pp.HaveNone
	case pp.Bitfield:
		for i := range msg.Bitfield {
			msg.Bitfield[i] = false
		}
	case pp.Extended:
		if id := rc.localID(pc); id != 0 && msg.ExtendedID == id && len(msg.ExtendedPayload) == 4 {
			idx := binary.BigEndian.Uint32(msg.ExtendedPayload)
			*msg = pp.Message{Type: pp.Have, Index: pp.Integer(idx)}
			rc.lastReveal.Store(time.Now().UnixNano())
		}
	}
}

// gatedConns lists connections to revealing seeders.
func (rc *revealClient) gatedConns() []*torrent.PeerConn {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []*torrent.PeerConn
	for pc := range rc.gated {
		out = append(out, pc)
	}
	return out
}

// giveUp turns the scheme off and drops the gated connections, so that
// they come back as ordinary ones.
func (rc *revealClient) giveUp() {
	if rc.disabled.Swap(true) {
		return
	}
	for _, pc := range rc.gatedConns() {
		pc.Close()
	}
}

// revealSeeder is the seeder side.
type revealSeeder struct {
	mu        sync.Mutex
	clients   map[*torrent.PeerConn]*revealState
	counts    []int32 // times each piece was revealed
	window    int     // initial pieces revealed and not yet held, per client
	maxWindow int
	// pieceLength and total size the windows in bytes (revealgroup.go).
	pieceLength, total int64
	kick               chan struct{} // a client reported a new piece: the session's group steps
	// bad lists the pieces found not to match the torrent on the source
	// (nil: none known): they are never served, so never revealed, and a
	// client's refused piece takes no place in its window.
	bad func() []BadPiece
}

type revealState struct {
	revealed []bool
}

// newRevealSeeder is the reveal of one seed job, stepped by the session's
// group g (revealgroup.go).
func newRevealSeeder(g *revealGroup, numPieces int, pieceLength, total int64, windowMiB int) *revealSeeder {
	rs := &revealSeeder{
		clients:     map[*torrent.PeerConn]*revealState{},
		counts:      make([]int32, numPieces),
		window:      clamp(int((int64(windowMiB)<<20)/pieceLength), 2, 64),
		pieceLength: pieceLength, total: total,
		kick: g.kick,
	}
	rs.maxWindow = max(rs.window, clamp(int((256<<20)/pieceLength), 2, 1024))
	return rs
}

func (rs *revealSeeder) hooks(numPieces int) peerHooks {
	return peerHooks{
		added: func(pc *torrent.PeerConn) {
			pc.LocalLtepProtocolMap = withProtocol(pc.LocalLtepProtocolMap, extSeeder)
		},
		handshake: func(pc *torrent.PeerConn, d *pp.ExtendedHandshakeMessage) {
			if _, ok := d.M[extReveal]; !ok {
				return
			}
			rs.mu.Lock()
			rs.clients[pc] = &revealState{revealed: make([]bool, numPieces)}
			rs.mu.Unlock()
		},
		closed: func(pc *torrent.PeerConn) {
			rs.mu.Lock()
			delete(rs.clients, pc)
			rs.mu.Unlock()
		},
		// A client that completes a piece has room for another: reveal
		// now, not at the next tick (it matters on fast links).
		read: func(pc *torrent.PeerConn, msg *pp.Message) {
			if msg.Type == pp.Have && !msg.Keepalive {
				select {
				case rs.kick <- struct{}{}:
				default:
				}
			}
		},
	}
}

func anyRevealed(st *revealState) bool {
	for _, r := range st.revealed {
		if r {
			return true
		}
	}
	return false
}
