package server

import (
	"net/netip"
	"sync"
	"time"

	"github.com/anacrolix/torrent"
)

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

// ConnWitness is the Witness of a seeder's torrent. It watches the
// torrent's BitTorrent connections (every 50 ms, and at each question,
// until the torrent closes) and remembers, per client, the most pieces a
// connection from it claimed and the most data the seeder sent it, so a
// client that leaves right after its last piece is still vouched for;
// the seeder also records what it counted on a connection as it closed
// (Record). A connection is matched by address and by either end of its
// port: the client's listen port when the seeder dialled it, or the
// listen port it sent in its extended handshake. At most maxWitnessed
// clients are remembered, the oldest forgotten first.
type ConnWitness struct {
	t          *torrent.Torrent
	listenPort func(*torrent.PeerConn) int
	mu         sync.Mutex
	seen       map[netip.AddrPort]*Evidence
	order      []netip.AddrPort
}

const maxWitnessed = 4096

// NewConnWitness watches t's connections until t closes. listenPort says
// which listen port a connection's peer announced (0: none known).
func NewConnWitness(t *torrent.Torrent, listenPort func(*torrent.PeerConn) int) *ConnWitness {
	w := &ConnWitness{seen: map[netip.AddrPort]*Evidence{}, t: t, listenPort: listenPort}
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-t.Closed():
				return
			case <-tick.C:
				w.sample()
			}
		}
	}()
	return w
}

// Ask is the Witness: what was seen of the client at peer.
func (w *ConnWitness) Ask(peer netip.AddrPort) Evidence {
	w.sample()
	w.mu.Lock()
	defer w.mu.Unlock()
	if ev := w.seen[netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())]; ev != nil {
		return *ev
	}
	return Evidence{}
}

// PeerKeys are the addresses a connection's client may announce from:
// its remote address, and that address with the listen port it
// announced (when known). Nil for a connection with no usable address.
func PeerKeys(pc *torrent.PeerConn, listenPort int) []netip.AddrPort {
	if pc.RemoteAddr == nil {
		return nil
	}
	ra, err := netip.ParseAddrPort(pc.RemoteAddr.String())
	if err != nil {
		return nil
	}
	ra = netip.AddrPortFrom(ra.Addr().Unmap(), ra.Port())
	keys := []netip.AddrPort{ra}
	if listenPort > 0 && listenPort < 65536 {
		keys = append(keys, netip.AddrPortFrom(ra.Addr(), uint16(listenPort)))
	}
	return keys
}

func (w *ConnWitness) sample() {
	type obs struct {
		keys []netip.AddrPort
		ev   Evidence
	}
	var got []obs
	for _, pc := range w.t.PeerConns() {
		keys := PeerKeys(pc, w.listenPort(pc))
		if keys == nil {
			continue
		}
		st := pc.Stats()
		got = append(got, obs{keys, Evidence{Uploaded: st.BytesWrittenData.Int64(), Pieces: st.RemotePieceCount}})
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, o := range got {
		w.recordLocked(o.keys, o.ev)
	}
}

// Record adds what was seen of one client (under any of its keys).
func (w *ConnWitness) Record(keys []netip.AddrPort, ev Evidence) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.recordLocked(keys, ev)
}

func (w *ConnWitness) recordLocked(keys []netip.AddrPort, o Evidence) {
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
