package engine

import (
	"net/netip"
	"sync"
	"time"

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
	w  *connWitness
	mu sync.Mutex
	// per connection: which pieces it said it has, and how many
	have  map[*torrent.PeerConn][]bool
	count map[*torrent.PeerConn]int
}

func newHaveWatch(n int) *haveWatch {
	return &haveWatch{n: n, have: map[*torrent.PeerConn][]bool{}, count: map[*torrent.PeerConn]int{}}
}

// setWitness says where closed connections are recorded (none: nowhere).
func (h *haveWatch) setWitness(w *connWitness) {
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
	if n == 0 || w == nil || pc.RemoteAddr == nil {
		return
	}
	ra, err := netip.ParseAddrPort(pc.RemoteAddr.String())
	if err != nil {
		return
	}
	ra = netip.AddrPortFrom(ra.Addr().Unmap(), ra.Port())
	keys := []netip.AddrPort{ra}
	if lp := peerListenPort(pc); lp > 0 {
		keys = append(keys, netip.AddrPortFrom(ra.Addr(), uint16(lp)))
	}
	w.record(keys, Evidence{Pieces: n})
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

// Evidence is what the seeder itself saw of a client over BitTorrent.
type Evidence struct {
	// Uploaded is the piece data the seeder sent to that client.
	Uploaded int64
	// Pieces is how many pieces a live BitTorrent connection from that
	// client says it holds (its bitfield and have messages).
	Pieces int
}

// Witness tells the tracker what the seeder saw of the client that
// announces from peer (the client's address and its announced listen port).
// It is called without the tracker's lock held.
type Witness func(peer netip.AddrPort) Evidence

// TorrentWitness is the Witness of a seeder's torrent. It watches the
// torrent's BitTorrent connections (every 50 ms, and at each question,
// until the torrent closes) and remembers, per client, the most pieces a
// connection from it claimed and the most data the seeder sent it, so a
// client that leaves right after its last piece is still vouched for. A
// connection is matched by address and by either end of its port: the
// client's listen port when the seeder dialled it, or the listen port it
// sent in its extended handshake. A client that leaves within 50 ms of its
// last have message can be missed: it then shows as "reported".
func TorrentWitness(t *torrent.Torrent) Witness { return newTorrentWitness(t).ask }

func newTorrentWitness(t *torrent.Torrent) *connWitness {
	w := &connWitness{seen: map[netip.AddrPort]*Evidence{}, t: t}
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-t.Closed():
				return
			case <-tick.C:
				w.sample(t)
			}
		}
	}()
	return w
}

func (w *connWitness) ask(peer netip.AddrPort) Evidence {
	w.sample(w.t)
	w.mu.Lock()
	defer w.mu.Unlock()
	if ev := w.seen[netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())]; ev != nil {
		return *ev
	}
	return Evidence{}
}

// connWitness is TorrentWitness's memory: at most maxWitnessed clients,
// the oldest forgotten first.
type connWitness struct {
	t     *torrent.Torrent
	mu    sync.Mutex
	seen  map[netip.AddrPort]*Evidence
	order []netip.AddrPort
}

const maxWitnessed = 4096

func (w *connWitness) sample(t *torrent.Torrent) {
	type obs struct {
		keys [2]netip.AddrPort
		ev   Evidence
	}
	var got []obs
	for _, pc := range t.PeerConns() {
		if pc.RemoteAddr == nil {
			continue
		}
		ra, err := netip.ParseAddrPort(pc.RemoteAddr.String())
		if err != nil {
			continue
		}
		ra = netip.AddrPortFrom(ra.Addr().Unmap(), ra.Port())
		o := obs{keys: [2]netip.AddrPort{ra, ra}}
		if lp := peerListenPort(pc); lp > 0 {
			o.keys[1] = netip.AddrPortFrom(ra.Addr(), uint16(lp))
		}
		st := pc.Stats()
		o.ev = Evidence{Uploaded: st.BytesWrittenData.Int64(), Pieces: st.RemotePieceCount}
		got = append(got, o)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, o := range got {
		w.recordLocked(o.keys[:], o.ev)
	}
}

// record adds what was seen of one client (under any of its keys).
func (w *connWitness) record(keys []netip.AddrPort, ev Evidence) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.recordLocked(keys, ev)
}

func (w *connWitness) recordLocked(keys []netip.AddrPort, o Evidence) {
	{
		for _, k := range keys {
			ev := w.seen[k]
			if ev == nil {
				if len(w.order) >= maxWitnessed {
					delete(w.seen, w.order[0])
					w.order = w.order[1:]
				}
				ev = &Evidence{}
				w.seen[k] = ev
				w.order = append(w.order, k)
			}
			ev.Uploaded = max(ev.Uploaded, o.Uploaded)
			ev.Pieces = max(ev.Pieces, o.Pieces)
		}
	}
}
