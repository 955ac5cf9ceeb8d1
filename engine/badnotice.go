package engine

import (
	"ezio/engine/server"
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/bencode"
	pp "github.com/anacrolix/torrent/peer_protocol"
)

// Bad-piece notices: a seeder that finds a piece of its source damaged
// tells its ezio clients, so that a room stops in seconds with the reason
// instead of waiting at 99 % for a piece nobody will ever send.
//
// Between ezio nodes only (BEP 10): the client advertises "ezio_bad" in
// its extended handshake; the seeder sends it one "ezio_bad" message per
// bad piece (a bencoded dictionary: piece, offset, file, reason), when it
// finds the piece bad and to every client that connects later. Other
// clients never see it; for them the seeder's refusals are the only sign
// (clientbad.go).
//
// The seeder also keeps a record of every client connected to it, whether
// or not it announced to the tracker (a client given only --peer never
// does): the status page, /status.json and --expect count them, and the
// seeder lists those that lack a bad piece as stuck.

const extBad = pp.ExtensionName("ezio_bad")

// silentSeederForTest makes seeders send no bad-piece notice: tests use it
// to stand for a seeder that only refuses.
var silentSeederForTest atomic.Bool

// badNotice is the payload of an "ezio_bad" message.
type badNotice struct {
	Piece  int    `bencode:"piece"`
	Offset int64  `bencode:"offset"`
	File   string `bencode:"file,omitempty"`
	Reason string `bencode:"reason,omitempty"`
}

func encodeBadNotice(b BadPiece) []byte {
	p, _ := bencode.Marshal(badNotice{Piece: b.Index, Offset: b.Offset, File: b.File, Reason: b.Reason})
	return p
}

func decodeBadNotice(p []byte) (badNotice, bool) {
	var n badNotice
	if err := bencode.Unmarshal(p, &n); err != nil || n.Piece < 0 {
		return n, false
	}
	return n, true
}

// seenClient is one client as the seeder saw it over its connection.
type seenClient struct {
	ip    netip.Addr
	port  uint16 // its listen port from the handshake, else the remote port
	name  string
	have  []bool
	count int
	ezio  bool // it takes "ezio_bad" notices
	// seeder: it held every piece from its first message on (another
	// seeder of the room, or a machine already done): not a client.
	seeder   bool
	sent     map[int]bool      // bad pieces told over its current connection
	told     map[int]bool      // bad pieces it was ever told of
	conn     *torrent.PeerConn // nil once closed
	at       time.Time         // first seen
	left     time.Time         // when its connection closed
	loggedOn map[int]bool      // bad pieces it was logged as stuck on
}

func (c *seenClient) addr() string { return netip.AddrPortFrom(c.ip, c.port).String() }

// clientWatch is a seed job's record of its clients, by peer id.
type clientWatch struct {
	n       int
	mu      sync.Mutex
	byConn  map[*torrent.PeerConn]*seenClient
	clients map[torrent.PeerID]*seenClient
}

// keepGone bounds the clients remembered after their connection closed.
const keepGone = 1024

func newClientWatch(n int) *clientWatch {
	return &clientWatch{n: n, byConn: map[*torrent.PeerConn]*seenClient{}, clients: map[torrent.PeerID]*seenClient{}}
}

func (w *clientWatch) hooks() peerHooks {
	return peerHooks{added: w.added, closed: w.closed, read: w.read, handshake: w.handshake}
}

// The hooks run with the client lock held: they touch only w.

func (w *clientWatch) added(pc *torrent.PeerConn) {
	var ap netip.AddrPort
	if pc.RemoteAddr != nil {
		ap, _ = netip.ParseAddrPort(pc.RemoteAddr.String())
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.clients[pc.PeerID]
	if c == nil {
		c = &seenClient{have: make([]bool, w.n), sent: map[int]bool{}, told: map[int]bool{}, loggedOn: map[int]bool{}, at: time.Now()}
		w.clients[pc.PeerID] = c
		w.pruneLocked()
	}
	c.ip, c.port = ap.Addr().Unmap(), ap.Port()
	c.name = clientFromPeerID(pc.PeerID)
	c.conn, c.left = pc, time.Time{}
	c.sent = map[int]bool{} // a new connection is told again
	w.byConn[pc] = c
}

func (w *clientWatch) handshake(pc *torrent.PeerConn, d *pp.ExtendedHandshakeMessage) {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.byConn[pc]
	if c == nil {
		return
	}
	if _, ok := d.M[extBad]; ok {
		c.ezio = true
	}
	if d.Port > 0 && d.Port < 65536 {
		c.port = uint16(d.Port)
	}
	if d.V != "" {
		c.name = d.V
	}
}

func (w *clientWatch) read(pc *torrent.PeerConn, msg *pp.Message) {
	if msg.Keepalive {
		return
	}
	switch msg.Type {
	case pp.Have, pp.Bitfield, pp.HaveAll:
	default:
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.byConn[pc]
	if c == nil {
		return
	}
	first := c.count == 0 && msg.Type != pp.Have
	set := func(i int) {
		if i >= 0 && i < w.n && !c.have[i] {
			c.have[i] = true
			c.count++
		}
	}
	defer func() {
		if first && c.count >= w.n {
			c.seeder = true
		}
	}()
	switch msg.Type {
	case pp.Have:
		set(int(msg.Index))
	case pp.Bitfield:
		for i, b := range msg.Bitfield {
			if b {
				set(i)
			}
		}
	case pp.HaveAll:
		for i := range w.n {
			set(i)
		}
	}
}

func (w *clientWatch) closed(pc *torrent.PeerConn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if c := w.byConn[pc]; c != nil && c.conn == pc {
		c.conn, c.left = nil, time.Now()
	}
	delete(w.byConn, pc)
}

// pruneLocked forgets the longest-gone clients beyond keepGone.
func (w *clientWatch) pruneLocked() {
	if len(w.clients) <= keepGone {
		return
	}
	var gone []torrent.PeerID
	for id, c := range w.clients {
		if c.conn == nil {
			gone = append(gone, id)
		}
	}
	sort.Slice(gone, func(a, b int) bool { return w.clients[gone[a]].left.Before(w.clients[gone[b]].left) })
	for _, id := range gone[:max(0, len(w.clients)-keepGone)] {
		delete(w.clients, id)
	}
}

// notices returns, per connection of an ezio client, the bad pieces it
// has not been told of yet, and marks them told.
func (w *clientWatch) notices(bad []BadPiece) map[*torrent.PeerConn][]BadPiece {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[*torrent.PeerConn][]BadPiece{}
	for pc, c := range w.byConn {
		if !c.ezio {
			continue
		}
		for _, b := range bad {
			if !c.sent[b.Index] {
				c.sent[b.Index], c.told[b.Index] = true, true
				out[pc] = append(out[pc], b)
			}
		}
	}
	return out
}

// stuck lists the clients that lack a bad piece; with mark, also each
// client newly stuck since the last marked call, with its new pieces.
func (w *clientWatch) stuck(bad []BadPiece, mark bool) (list []server.StuckClient, fresh []server.StuckClient) {
	if len(bad) == 0 {
		return nil, nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.clients {
		var lacks, news []int
		told := false
		for _, b := range bad {
			if b.Index < w.n && !c.have[b.Index] {
				lacks = append(lacks, b.Index)
				told = told || c.told[b.Index]
				if mark && !c.loggedOn[b.Index] {
					c.loggedOn[b.Index] = true
					news = append(news, b.Index)
				}
			}
		}
		// A client that never took a piece from anyone and left is not a
		// client of this image (a probe, a failed handshake).
		if len(lacks) == 0 || c.seeder || c.conn == nil && c.count == 0 {
			continue
		}
		sc := server.StuckClient{Addr: c.addr(), Client: c.name, Pieces: lacks, Connected: c.conn != nil, Told: told}
		list = append(list, sc)
		if len(news) > 0 {
			sc.Pieces = news
			fresh = append(fresh, sc)
		}
	}
	sort.Slice(list, func(a, b int) bool { return list[a].Addr < list[b].Addr })
	return list, fresh
}

// members lists the clients as fleet members: connected ones, and gone
// ones with what they held when they left. A client that holds every
// piece was seen taking the image by this seeder.
func (w *clientWatch) members(now time.Time) []server.FleetMember {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]server.FleetMember, 0, len(w.clients))
	for _, c := range w.clients {
		if c.seeder || c.conn == nil && c.count == 0 {
			continue
		}
		m := server.FleetMember{Addr: c.addr(), Active: c.conn != nil}
		if w.n > 0 {
			m.Done = float64(c.count) / float64(w.n)
		}
		switch {
		case c.count >= w.n:
			m.State, m.Completed, m.Done = server.FleetDone, true, 1
		case c.conn != nil:
			m.State = server.FleetDownloading
		default:
			m.State = server.FleetLeft
			m.LastSeen = now.Sub(c.left).Seconds()
		}
		out = append(out, m)
	}
	return out
}

// tellBad runs on a seed job: it sends the bad-piece notices, records the
// clients stuck on a bad piece and logs each newly stuck one, until done.
func (j *Job) tellBad(stop <-chan struct{}) error {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return nil
		case <-tick.C:
		}
		bad := j.st.BadPieces()
		if len(bad) == 0 {
			continue
		}
		if silentSeederForTest.Load() {
			bad = nil // notices only: the stuck list below still sees the pieces
		}
		for pc, bs := range j.clients.notices(bad) {
			for _, b := range bs {
				if err := pc.WriteExtendedMessage(extBad, encodeBadNotice(b)); err != nil {
					j.log.Debug("bad-piece notice not sent", "peer", pc.RemoteAddr, "err", err)
				}
			}
		}
		_, fresh := j.clients.stuck(j.st.BadPieces(), true)
		for _, c := range fresh {
			j.log.Warn(fmt.Sprintf("client %s needs piece %v, which is damaged on the source: it cannot finish from this seeder; %s", c.Addr, c.Pieces, server.StuckAdvice))
		}
	}
}

// StuckClients lists, on a seeder, the clients that lack a piece found bad
// on its source (nil on a client or when none is bad).
func (j *Job) StuckClients() []server.StuckClient {
	if j.clients == nil {
		return nil
	}
	list, _ := j.clients.stuck(j.st.BadPieces(), false)
	return list
}
