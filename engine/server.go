package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
)

// AnnounceInterval is short because clients on a LAN must find each other
// within seconds, not the minutes public trackers ask for.
const AnnounceInterval = 5 * time.Second

// Server is the seeder's HTTP side: a BitTorrent tracker with an in-memory
// peer store, and the torrents it seeds (/torrents/<name>.torrent and the
// /images.json index).
type Server struct {
	ln  net.Listener
	srv *http.Server
	log *slog.Logger

	mu     sync.Mutex
	images map[string]*servedImage // by name
	swarms map[metainfo.Hash]*swarm
}

type servedImage struct {
	mi       *metainfo.MetaInfo
	sum      *TorrentSummary
	peerPort int // the seeder's BitTorrent port
}

type swarm struct {
	peers map[string]*trackedPeer // by peer id
}

type trackedPeer struct {
	id        string
	addr      netip.AddrPort
	left      int64
	uploaded  int64
	completed bool
	stopped   bool
	first     time.Time
	last      time.Time
	rate      float64 // bytes/s between the last two announces
}

// ImageEntry is one line of /images.json.
type ImageEntry struct {
	Name        string `json:"name"`
	Size        int64  `json:"size"`           // bytes of data in the image
	HighestEnd  int64  `json:"highest_offset"` // smallest target that fits
	InfoHash    string `json:"infohash"`
	Pieces      int    `json:"pieces"`
	PieceLength int64  `json:"piece_length"`
	Torrent     string `json:"torrent"` // path of the .torrent on this server
	PeerPort    int    `json:"peer_port"`
	Clients     int    `json:"clients"`
	Done        int    `json:"done"`
}

// NewServer listens on addr (host:port; empty host = all addresses).
func NewServer(addr string, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if addr == "" {
		addr = fmt.Sprintf(":%d", DefaultTrackerPort)
	}
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		return nil, fmt.Errorf("tracker cannot listen on %s: %w (use --tracker-listen with another port, or --no-tracker)", addr, err)
	}
	s := &Server{ln: ln, log: log.With("component", "tracker"), images: map[string]*servedImage{}, swarms: map[metainfo.Hash]*swarm{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/announce", s.announce)
	mux.HandleFunc("/images.json", s.imagesJSON)
	mux.HandleFunc("/torrents/", s.torrentFile)
	mux.HandleFunc("/", s.index)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

// Addr is the listening address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// BaseURL is a URL that reaches the server from this machine.
func (s *Server) BaseURL() string {
	ap, _ := netip.ParseAddrPort(s.ln.Addr().String())
	host := ap.Addr().String()
	if ap.Addr().IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(int(ap.Port())))
}

// AnnounceURL is the tracker URL on this machine.
func (s *Server) AnnounceURL() string { return s.BaseURL() + "/announce" }

// Close stops the server.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}

// AddImage serves a torrent and tracks its swarm; peerPort is the local
// seeder's BitTorrent port, handed to every client that announces.
func (s *Server) AddImage(mi *metainfo.MetaInfo, peerPort int) error {
	sum, _, err := Summarize(mi)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.images[sum.Name] = &servedImage{mi: mi, sum: sum, peerPort: peerPort}
	ih := mi.HashInfoBytes()
	if s.swarms[ih] == nil {
		s.swarms[ih] = &swarm{peers: map[string]*trackedPeer{}}
	}
	return nil
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

func (s *Server) announce(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ihs := q.Get("info_hash")
	if len(ihs) != 20 {
		trackerFailure(w, "info_hash must be 20 bytes")
		return
	}
	var ih metainfo.Hash
	copy(ih[:], ihs)
	peerID := q.Get("peer_id")
	port, err := strconv.Atoi(q.Get("port"))
	if err != nil || port <= 0 || port > 65535 {
		trackerFailure(w, "bad port")
		return
	}
	ip := remoteIP(r)
	if p, err := netip.ParseAddr(q.Get("ip")); err == nil && p.Is4() {
		ip = p
	}
	left, _ := strconv.ParseInt(q.Get("left"), 10, 64)
	uploaded, _ := strconv.ParseInt(q.Get("uploaded"), 10, 64)
	numWant := 200
	if n, err := strconv.Atoi(q.Get("numwant")); err == nil && n >= 0 && n < numWant {
		numWant = n
	}
	event := q.Get("event")
	now := time.Now()

	s.mu.Lock()
	sw := s.swarms[ih]
	if sw == nil {
		s.mu.Unlock()
		trackerFailure(w, "this tracker does not serve that torrent")
		return
	}
	var seederPort int
	for _, im := range s.images {
		if im.mi.HashInfoBytes() == ih {
			seederPort = im.peerPort
		}
	}
	key := peerID
	if key == "" {
		key = netip.AddrPortFrom(ip, uint16(port)).String()
	}
	p := sw.peers[key]
	if p == nil {
		p = &trackedPeer{id: key, first: now}
		sw.peers[key] = p
		s.log.Debug("client joined", "addr", netip.AddrPortFrom(ip, uint16(port)).String())
	}
	p.addr = netip.AddrPortFrom(ip, uint16(port))
	if !p.last.IsZero() && now.Sub(p.last) > 500*time.Millisecond && left <= p.left {
		p.rate = float64(p.left-left) / now.Sub(p.last).Seconds()
	}
	p.left, p.uploaded, p.last = left, uploaded, now
	p.stopped = event == "stopped"
	if event == "completed" || (left == 0 && event != "stopped") {
		p.completed = true
	}
	// Peers to hand out: every live one but the asker, in random order.
	var others []netip.AddrPort
	for k, o := range sw.peers {
		if k == key || o.stopped || now.Sub(o.last) > 4*AnnounceInterval+time.Minute {
			continue
		}
		others = append(others, o.addr)
	}
	complete, incomplete := 0, 0
	for _, o := range sw.peers {
		if o.stopped {
			continue
		}
		if o.completed {
			complete++
		} else {
			incomplete++
		}
	}
	s.mu.Unlock()

	rand.Shuffle(len(others), func(a, b int) { others[a], others[b] = others[b], others[a] })
	if len(others) > numWant {
		others = others[:numWant]
	}
	if seederPort > 0 {
		if lip := localIP(r); lip.Is4() {
			seeder := netip.AddrPortFrom(lip, uint16(seederPort))
			if seeder != p.addr {
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
		"complete":     complete + 1,
		"incomplete":   incomplete,
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

// FleetMember is one client as the seeder sees it.
type FleetMember struct {
	Addr      string  `json:"addr"`
	Done      float64 `json:"done"` // 0..1
	Completed bool    `json:"completed"`
	Active    bool    `json:"active"`
	Rate      float64 `json:"rate"` // bytes/s, between its last two announces
	LastSeen  float64 `json:"last_seen_seconds"`
}

// Fleet lists the clients that announced for an image.
func (s *Server) Fleet(ih metainfo.Hash, total int64) []FleetMember {
	s.mu.Lock()
	defer s.mu.Unlock()
	sw := s.swarms[ih]
	if sw == nil {
		return nil
	}
	now := time.Now()
	var out []FleetMember
	for _, p := range sw.peers {
		m := FleetMember{Addr: p.addr.String(), Completed: p.completed, LastSeen: now.Sub(p.last).Seconds()}
		m.Active = !p.stopped && now.Sub(p.last) < 4*AnnounceInterval
		if m.Active && !p.completed {
			m.Rate = p.rate
		}
		if total > 0 {
			m.Done = float64(total-p.left) / float64(total)
		}
		if p.completed {
			m.Done = 1
		}
		out = append(out, m)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Addr < out[b].Addr })
	return out
}

func (s *Server) entries() []ImageEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ImageEntry
	for _, im := range s.images {
		e := ImageEntry{
			Name: im.sum.Name, Size: im.sum.TotalBytes, HighestEnd: im.sum.HighestEnd, InfoHash: im.sum.InfoHash,
			Pieces: im.sum.Pieces, PieceLength: im.sum.PieceLength,
			Torrent: "/torrents/" + url.PathEscape(im.sum.Name) + ".torrent", PeerPort: im.peerPort,
		}
		if sw := s.swarms[im.mi.HashInfoBytes()]; sw != nil {
			for _, p := range sw.peers {
				e.Clients++
				if p.completed {
					e.Done++
				}
			}
		}
		out = append(out, e)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out
}

func (s *Server) imagesJSON(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	es := s.entries()
	if es == nil {
		es = []ImageEntry{}
	}
	enc.Encode(es)
}

// SeederHeader carries the seeder's peer address with a served torrent, so
// a client can trust it.
const SeederHeader = "X-Ezio-Seeder"

func (s *Server) torrentFile(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/torrents/"), ".torrent")
	if !ok {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	im := s.images[name]
	s.mu.Unlock()
	if im == nil {
		http.Error(w, fmt.Sprintf("no image named %q here; see /images.json", name), http.StatusNotFound)
		return
	}
	// Point the torrent at this tracker, as the client reached it. The
	// info dictionary (and so the infohash) is untouched.
	mi := *im.mi
	mi.Announce = "http://" + r.Host + "/announce"
	mi.AnnounceList = nil
	var buf bytes.Buffer
	if err := mi.Write(&buf); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if lip := localIP(r); lip.Is4() && im.peerPort > 0 {
		w.Header().Set(SeederHeader, netip.AddrPortFrom(lip, uint16(im.peerPort)).String())
	}
	w.Header().Set("Content-Type", "application/x-bittorrent")
	w.Write(buf.Bytes())
}

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "ezio %s image server\n\n", Version)
	for _, e := range s.entries() {
		fmt.Fprintf(w, "%-16s %12d bytes  %s  clients %d, done %d\n  ezio deploy http://%s%s TARGET\n", e.Name, e.Size, e.InfoHash, e.Clients, e.Done, r.Host, e.Torrent)
	}
}

// FetchedTorrent is a torrent loaded from a file or an ezio server.
type FetchedTorrent struct {
	MetaInfo *metainfo.MetaInfo
	Seeders  []string // peer addresses the server vouches for
}

// FetchTorrent loads a torrent from a path or URL and, from an ezio server,
// learns the seeder's peer address.
func FetchTorrent(ctx context.Context, src string) (*FetchedTorrent, error) {
	if !strings.HasPrefix(src, "http://") && !strings.HasPrefix(src, "https://") {
		mi, err := loadTorrentFile(src)
		if err != nil {
			return nil, err
		}
		return &FetchedTorrent{MetaInfo: mi}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching torrent: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, &NotFoundError{URL: src}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching torrent %s: server answered %s", src, resp.Status)
	}
	b, err := ReadTorrentLimited(resp.Body, resp.ContentLength)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	mi, err := ParseTorrent(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	ft := &FetchedTorrent{MetaInfo: mi}
	if h := resp.Header.Get(SeederHeader); h != "" {
		if _, err := netip.ParseAddrPort(h); err == nil {
			ft.Seeders = append(ft.Seeders, h)
		}
	}
	return ft, nil
}

// ListImages reads a server's /images.json. base is any form ParseServer reads.
func ListImages(ctx context.Context, base string) ([]ImageEntry, error) {
	b, err := ParseServer(base)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(b + "/images.json")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("asking %s for its images: %w", u.Host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("asking %s for its images: server answered %s", u.Host, resp.Status)
	}
	var es []ImageEntry
	if err := json.NewDecoder(limitReader(resp.Body)).Decode(&es); err != nil {
		return nil, fmt.Errorf("%s did not answer like an ezio server: %w", u.Host, err)
	}
	return es, nil
}

// TorrentURL is the full URL of an image's torrent on a server.
func TorrentURL(base string, e ImageEntry) string {
	b, err := ParseServer(base)
	if err != nil {
		return ""
	}
	u, err := url.Parse(b)
	if err != nil {
		return ""
	}
	u.Path = e.Torrent
	return u.String()
}
