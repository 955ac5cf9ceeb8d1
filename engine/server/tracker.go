package server

import (
	"bytes"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
)

// AnnounceInterval is short because clients on a LAN must find each other
// within seconds, not the minutes public trackers ask for.
const AnnounceInterval = 5 * time.Second

const (
	// PeerTTL is how long a client stays in the tracker without announcing.
	// Three intervals forgive one lost announce and a slow second one.
	PeerTTL = 3 * AnnounceInterval
	// MaxPeersPerTorrent caps the entries of one torrent. Beyond it an
	// announce is still answered (the seeder and a sample of peers) but
	// not recorded, until entries expire: the fleet shows at most this many.
	MaxPeersPerTorrent = 1000
	// lostAfter is when a client that stopped announcing shows as lost.
	lostAfter = 2 * AnnounceInterval
	// witnessEvery bounds how often one entry's completion is checked.
	witnessEvery = time.Second
)

type swarm struct {
	peers     map[string]*trackedPeer   // by peer id
	byAddr    map[netip.AddrPort]string // announced address -> peer id
	list      []*trackedPeer            // the same entries, for sampling
	lastSweep time.Time
	warnedCap bool
	// counts of live entries as of the last sweep, for announce answers
	nComplete, nIncomplete int

	total   int64 // bytes of data, for completion evidence
	pieces  int
	witness Witness
	health  func() []BadPieceInfo
	// the seeder's own view of its clients (statusclients.go)
	conns func(time.Time) []FleetMember
	stuck func() []StuckClient
}

type trackedPeer struct {
	id        string
	src       netip.Addr     // where its announces come from; the entry is bound to it
	addr      netip.AddrPort // src and the announced port
	left      int64
	uploaded  int64
	claimed   bool // it says it has everything
	verified  bool // and the seeder saw it take the image
	stopped   bool
	first     time.Time
	last      time.Time
	rate      float64 // bytes/s between the last two announces
	lastCheck time.Time
	pending   bool // a delayed completion check is scheduled
	idx       int  // position in swarm.list
}

func newSwarm() *swarm {
	return &swarm{peers: map[string]*trackedPeer{}, byAddr: map[netip.AddrPort]string{}}
}

// SetWitness gives the tracker a way to check a completion claim for one
// torrent (see ConnWitness). Without one, a client that says it is
// complete is shown as "reported", never as done.
func (s *Server) SetWitness(ih metainfo.Hash, w Witness) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.swarmLocked(ih).witness = w
}

func (s *Server) swarmLocked(ih metainfo.Hash) *swarm {
	sw := s.swarms[ih]
	if sw == nil {
		sw = newSwarm()
		s.swarms[ih] = sw
	}
	return sw
}

// sweepLocked drops entries that stopped announcing, at most once a second.
// Entries the seeder saw complete stay: the room's "k of N done" must not
// shrink when finished machines leave.
func (sw *swarm) sweepLocked(now time.Time, force bool) {
	if !force && now.Sub(sw.lastSweep) < time.Second {
		return
	}
	sw.lastSweep = now
	sw.nComplete, sw.nIncomplete = 0, 0
	for id, p := range sw.peers {
		switch {
		case !p.verified && now.Sub(p.last) > PeerTTL:
			sw.dropLocked(id, p)
		case p.stopped || now.Sub(p.last) > PeerTTL:
		case p.verified:
			sw.nComplete++
		default:
			sw.nIncomplete++
		}
	}
}

func (sw *swarm) addLocked(p *trackedPeer) {
	sw.peers[p.id] = p
	sw.byAddr[p.addr] = p.id
	p.idx = len(sw.list)
	sw.list = append(sw.list, p)
}

func (sw *swarm) dropLocked(id string, p *trackedPeer) {
	delete(sw.peers, id)
	if sw.byAddr[p.addr] == id {
		delete(sw.byAddr, p.addr)
	}
	last := sw.list[len(sw.list)-1]
	sw.list[p.idx], last.idx = last, p.idx
	sw.list[len(sw.list)-1] = nil
	sw.list = sw.list[:len(sw.list)-1]
}

// sampleLocked picks up to n live peers other than the asker, from a random
// point of the list on: the cost follows n, not the size of the swarm.
func (sw *swarm) sampleLocked(now time.Time, n int, askerID string, asker netip.AddrPort) []netip.AddrPort {
	out := make([]netip.AddrPort, 0, min(n, len(sw.list)))
	start := 0
	if len(sw.list) > 0 {
		start = rand.IntN(len(sw.list))
	}
	for k := 0; k < len(sw.list) && len(out) < n; k++ {
		o := sw.list[(start+k)%len(sw.list)]
		if o.stopped || now.Sub(o.last) > PeerTTL || o.id == askerID || o.addr == asker {
			continue
		}
		out = append(out, o.addr)
	}
	rand.Shuffle(len(out), func(a, b int) { out[a], out[b] = out[b], out[a] })
	return out
}

// believes says whether the evidence shows the client took the whole image.
func (sw *swarm) believes(ev Evidence) bool {
	return (sw.pieces > 0 && ev.Pieces >= sw.pieces) || (sw.total > 0 && ev.Uploaded >= sw.total)
}

// announceRequest is one announce, parsed and checked: what the swarm
// bookkeeping needs, free of HTTP.
type announceRequest struct {
	ih       metainfo.Hash
	peerID   string
	src      netip.Addr     // where the announce came from
	addr     netip.AddrPort // src and the announced port
	left     int64
	uploaded int64
	numWant  int
	event    string
	// ignoredIP: an ip= naming another address than src, not believed
	ignoredIP netip.Addr
}

// announceAnswer is what the tracker tells the asker.
type announceAnswer struct {
	peers                []netip.AddrPort
	complete, incomplete int
}

// announce is the tracker's HTTP front: it parses the request, lets
// record do the bookkeeping and bencodes the answer. The seeder's own
// address (the local address the request reached, at the torrent's peer
// port) goes first in every answer.
func (s *Server) announce(w http.ResponseWriter, r *http.Request) {
	req, err := parseAnnounce(r)
	if err != nil {
		trackerFailure(w, err.Error())
		return
	}
	if req.ignoredIP.IsValid() {
		s.log.Debug("ignored ip= in announce", "ip", req.ignoredIP.String(), "from", req.src.String())
	}
	ans, seederPort, err := s.record(req)
	if err != nil {
		trackerFailure(w, err.Error())
		return
	}
	others := ans.peers
	if seederPort > 0 {
		if lip := localIP(r); lip.Is4() {
			if seeder := netip.AddrPortFrom(lip, uint16(seederPort)); seeder != req.addr {
				others = append([]netip.AddrPort{seeder}, others...)
			}
		}
	}
	var compact bytes.Buffer
	for _, a := range others {
		if !a.Addr().Is4() {
			continue
		}
		b4 := a.Addr().As4()
		compact.Write(b4[:])
		compact.WriteByte(byte(a.Port() >> 8))
		compact.WriteByte(byte(a.Port()))
	}
	resp := map[string]any{
		"interval":     int(AnnounceInterval / time.Second),
		"min interval": 1,
		"complete":     ans.complete + 1,
		"incomplete":   ans.incomplete,
		"peers":        compact.String(),
	}
	b, err := bencode.Marshal(resp)
	if err != nil {
		trackerFailure(w, err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Write(b)
}

// announceError is a request the tracker answers with a failure reason.
type announceError string

func (e announceError) Error() string { return string(e) }

// parseAnnounce reads an announce's query. The address is the one the
// request came from: an ip= naming any other machine would make every
// client dial it, so it is ignored.
func parseAnnounce(r *http.Request) (announceRequest, error) {
	q := r.URL.Query()
	var req announceRequest
	ihs := q.Get("info_hash")
	if len(ihs) != 20 {
		return req, announceError("info_hash must be 20 bytes")
	}
	copy(req.ih[:], ihs)
	req.peerID = q.Get("peer_id")
	port, err := strconv.Atoi(q.Get("port"))
	if err != nil || port <= 0 || port > 65535 {
		return req, announceError("bad port")
	}
	req.src = remoteIP(r)
	if !req.src.IsValid() {
		return req, announceError("unknown source address")
	}
	if p, err := netip.ParseAddr(q.Get("ip")); err == nil && p.Unmap() != req.src {
		req.ignoredIP = p
	}
	req.addr = netip.AddrPortFrom(req.src, uint16(port))
	req.left, err = strconv.ParseInt(q.Get("left"), 10, 64)
	if err != nil || req.left < 0 {
		return req, announceError("bad left")
	}
	req.uploaded, _ = strconv.ParseInt(q.Get("uploaded"), 10, 64)
	req.numWant = 200
	if n, err := strconv.Atoi(q.Get("numwant")); err == nil && n >= 0 && n < req.numWant {
		req.numWant = n
	}
	req.event = q.Get("event")
	if req.peerID == "" {
		req.peerID = "addr:" + req.addr.String()
	}
	return req, nil
}

// record books one announce into its torrent's swarm and picks the peers
// to hand out; a completion claim is put to the witness. It returns the
// answer and the seeder's peer port for the torrent (0: none).
func (s *Server) record(req announceRequest) (announceAnswer, int, error) {
	now := s.now()
	s.mu.Lock()
	sw := s.swarms[req.ih]
	if sw == nil {
		s.mu.Unlock()
		return announceAnswer{}, 0, announceError("this tracker does not serve that torrent")
	}
	seederPort := s.peerPorts[req.ih]
	sw.sweepLocked(now, false)
	p := s.trackedLocked(sw, req, now)
	var check *trackedPeer
	if p != nil {
		if !p.last.IsZero() && now.Sub(p.last) > 500*time.Millisecond && req.left <= p.left {
			p.rate = float64(p.left-req.left) / now.Sub(p.last).Seconds()
		}
		p.left, p.uploaded, p.last = req.left, req.uploaded, now
		p.stopped = req.event == "stopped"
		p.claimed = req.left == 0
		if !p.claimed {
			p.verified = false
		}
		if p.claimed && !p.verified && sw.witness != nil && now.Sub(p.lastCheck) >= witnessEvery {
			p.lastCheck = now
			check = p
		}
	}
	// Peers to hand out: live ones but the asker, in random order.
	ans := announceAnswer{
		peers:    sw.sampleLocked(now, req.numWant, req.peerID, req.addr),
		complete: sw.nComplete, incomplete: sw.nIncomplete,
	}
	witness := sw.witness
	s.mu.Unlock()
	if check != nil {
		s.checkCompletion(req.ih, witness, check, req.addr, 0)
	}
	return ans, seederPort, nil
}

// trackedLocked finds or makes the asker's entry in sw; nil when it is not
// to be recorded (another machine's peer id, or the swarm is full).
func (s *Server) trackedLocked(sw *swarm, req announceRequest, now time.Time) *trackedPeer {
	p := sw.peers[req.peerID]
	if p != nil && p.src != req.src {
		// Someone else's peer id: answer, but leave the entry alone.
		return nil
	}
	if p != nil {
		return p
	}
	if oldID, ok := sw.byAddr[req.addr]; ok {
		// The same machine and port under a new id: it restarted.
		sw.dropLocked(oldID, sw.peers[oldID])
	}
	if len(sw.peers) < MaxPeersPerTorrent {
		p = &trackedPeer{id: req.peerID, src: req.src, addr: req.addr, first: now, left: req.left}
		sw.addLocked(p)
		s.log.Debug("client joined", "addr", req.addr.String())
	} else if !sw.warnedCap {
		sw.warnedCap = true
		s.log.Warn("tracker full: further clients are answered but not tracked", "limit", MaxPeersPerTorrent)
	}
	return p
}

// checkCompletion asks the witness about a completion claim. A client's
// last have message can reach the seeder after its announce, so an
// unconfirmed claim is looked at again twice, shortly after.
func (s *Server) checkCompletion(ih metainfo.Hash, witness Witness, p *trackedPeer, addr netip.AddrPort, attempt int) {
	ev := witness(addr)
	s.mu.Lock()
	defer s.mu.Unlock()
	sw := s.swarms[ih]
	if sw == nil || sw.peers[p.id] != p || !p.claimed {
		return
	}
	if sw.believes(ev) {
		if !p.verified {
			s.log.Debug("client completed", "addr", addr.String())
		}
		p.verified = true
		return
	}
	if attempt >= 2 || p.pending || s.closed {
		return
	}
	p.pending = true
	time.AfterFunc(time.Duration(attempt+1)*700*time.Millisecond, func() {
		s.mu.Lock()
		p.pending = false
		closed := s.closed
		s.mu.Unlock()
		if !closed {
			s.checkCompletion(ih, witness, p, addr, attempt+1)
		}
	})
}

func localIP(r *http.Request) netip.Addr {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			return ap.Addr().Unmap()
		}
	}
	return netip.Addr{}
}

func remoteIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func trackerFailure(w http.ResponseWriter, reason string) {
	b, _ := bencode.Marshal(map[string]any{"failure reason": reason})
	w.Header().Set("Content-Type", "text/plain")
	w.Write(b)
}
