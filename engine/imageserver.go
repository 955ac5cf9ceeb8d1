package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/anacrolix/torrent/metainfo"
)

// Server is the seeder's HTTP side: a BitTorrent tracker with an in-memory
// peer store (tracker.go), the images it serves (/images.json,
// /images/NAME, /torrents/...) and a status page (status.go).
type Server struct {
	ln    net.Listener
	srv   *http.Server
	log   *slog.Logger
	allow AllowList
	now   func() time.Time

	mu        sync.Mutex
	closed    bool
	images    map[string]*servedImage   // by image name
	torrents  map[string]*servedTorrent // by path under /torrents/ without ".torrent"
	swarms    map[metainfo.Hash]*swarm
	peerPorts map[metainfo.Hash]int // the seeder's BitTorrent port per torrent
	expect    int
	netboot   http.Handler     // /netboot/ (machines.go)
	machines  func() []Machine // the network-booted room
	numbers   roomNumbers      // POST /images/NAME/number

	// ready is closed once the server answers requests: a seeder holds
	// it (WithHold) until its images are registered, so that a client
	// asking at that moment waits instead of being told "not found".
	ready     chan struct{}
	readyOnce sync.Once
}

// holdLimit is how long a request waits for a held server before it is
// answered 503 (try again).
const holdLimit = 60 * time.Second

// Image kinds.
const (
	KindPartition = "partition"
	KindDisk      = "disk"
)

type servedImage struct {
	name     string
	kind     string
	manifest json.RawMessage
	parts    []servedPart
	files    map[string][]byte // disk images: /images/NAME/FILE
}

type servedPart struct {
	DiskPart
	t *servedTorrent // nil for a partition that is not transferred
}

type servedTorrent struct {
	key      string
	mi       *metainfo.MetaInfo
	sum      *TorrentSummary
	peerPort int
}

// DiskPart is one partition of a whole-disk image, as the image server
// describes it. The disk image's own manifest stays opaque to the server.
type DiskPart struct {
	Name   string // e.g. "sda1": the torrent's path under the image
	Number int
	Start  int64  // bytes from the start of the disk
	Size   int64  // bytes
	FS     string // filesystem, "" when unknown
	// MI is the partition's torrent; nil when its data is not transferred
	// (swap, recreated from the manifest).
	MI *metainfo.MetaInfo
}

// DiskImage is a whole-disk image to serve.
type DiskImage struct {
	Name     string
	Manifest json.RawMessage // the image's manifest, served as is
	Parts    []DiskPart
	PeerPort int // the seeder's BitTorrent port
	// Files are the image directory's small files a client needs before
	// any data (the manifest, the partition table and boot areas, the
	// torrents), served at /images/NAME/FILE; never the extents.
	Files map[string][]byte
}

// ServerOption configures NewServer.
type ServerOption func(*Server)

// WithAllow limits every route (tracker, images, status) to clients in the
// list; others get 403 and are not tracked.
func WithAllow(l AllowList) ServerOption { return func(s *Server) { s.allow = l } }

// WithHold makes the server accept connections but answer nothing until
// Open: a seeder registers its images first.
func WithHold() ServerOption { return func(s *Server) { s.ready = make(chan struct{}) } }

// Open lets a held server answer; requests that waited are answered now.
// It is safe to call more than once, and on a server never held.
func (s *Server) Open() { s.readyOnce.Do(func() { close(s.ready) }) }

// ServerListenError is a server that could not listen on its address.
type ServerListenError struct {
	Addr string
	Err  error
}

func (e *ServerListenError) Error() string {
	return fmt.Sprintf("the image server cannot listen on %s: %v", e.Addr, e.Err)
}
func (e *ServerListenError) Unwrap() error { return e.Err }

// NewServer listens on addr (host:port; empty host = all addresses).
func NewServer(addr string, log *slog.Logger, opts ...ServerOption) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if addr == "" {
		addr = fmt.Sprintf(":%d", DefaultTrackerPort)
	}
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		return nil, &ServerListenError{Addr: addr, Err: err}
	}
	s := newServer(log)
	for _, o := range opts {
		o(s)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

func newServer(log *slog.Logger) *Server {
	ready := make(chan struct{})
	close(ready)
	return &Server{
		ready: ready,
		log:   log.With("component", "tracker"), now: time.Now,
		images: map[string]*servedImage{}, torrents: map[string]*servedTorrent{},
		swarms: map[metainfo.Hash]*swarm{}, peerPorts: map[metainfo.Hash]int{},
	}
}

// Handler is the server's routes behind its allow list.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/announce", s.announce)
	mux.HandleFunc("GET /images.json", s.imagesJSON)
	mux.HandleFunc("GET /images/{name}", s.imageJSON)
	mux.HandleFunc("GET /images/{name}/{file...}", s.imageFile)
	mux.HandleFunc("POST /images/{name}/"+RoomNumberPath, s.roomNumber)
	mux.HandleFunc("GET /torrents/{file}", s.torrentFile)
	mux.HandleFunc("GET /torrents/{image}/{file}", s.torrentFile)
	mux.HandleFunc("GET /status.json", s.statusJSON)
	mux.HandleFunc("GET /status.js", s.statusScript)
	mux.HandleFunc("GET /{$}", s.statusPage)
	mux.HandleFunc("/netboot/", s.serveNetboot)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if src := remoteIP(r); !s.allow.Contains(src) {
			s.log.Debug("refused a request from outside the allowed networks", "from", src.String(), "path", r.URL.Path)
			http.Error(w, "this server does not serve your network", http.StatusForbidden)
			return
		}
		select {
		case <-s.ready:
		case <-r.Context().Done():
			return
		case <-time.After(holdLimit):
			w.Header().Set("Retry-After", "5")
			http.Error(w, "this server is still starting", http.StatusServiceUnavailable)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// Allow is the server's allow list (empty: everyone), for the BitTorrent
// side to apply the same rule (AllowList.Blocklist).
func (s *Server) Allow() AllowList { return s.allow }

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
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	if s.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}

// SetExpect is the number of clients the room expects (`--expect N`), for
// the status page's "k of N clients done"; 0 counts the clients seen.
func (s *Server) SetExpect(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expect = n
}

// AddImage serves a partition image's torrent and tracks its swarm;
// peerPort is the local seeder's BitTorrent port, handed to every client
// that announces. The image is named by the torrent's name.
func (s *Server) AddImage(mi *metainfo.MetaInfo, peerPort int) error {
	sum, _, err := Summarize(mi)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.images[sum.Name]; old != nil && old.kind != KindPartition {
		return fmt.Errorf("a disk image named %q is already served", sum.Name)
	}
	t := &servedTorrent{key: sum.Name, mi: mi, sum: sum, peerPort: peerPort}
	s.images[sum.Name] = &servedImage{name: sum.Name, kind: KindPartition, parts: []servedPart{{DiskPart: DiskPart{Name: sum.Name, MI: mi, Size: sum.HighestEnd}, t: t}}}
	s.addTorrentLocked(t, sum)
	return nil
}

// AddDiskImage serves a whole-disk image: one torrent per transferred
// partition under /torrents/NAME/PART.torrent, the manifest in /images/NAME.
func (s *Server) AddDiskImage(d DiskImage) error {
	if d.Name == "" || strings.Contains(d.Name, "/") {
		return fmt.Errorf("disk image name %q: must be non-empty and without '/'", d.Name)
	}
	if len(d.Manifest) > 0 && !json.Valid(d.Manifest) {
		return fmt.Errorf("disk image %q: the manifest is not JSON", d.Name)
	}
	im := &servedImage{name: d.Name, kind: KindDisk, manifest: append(json.RawMessage(nil), d.Manifest...), files: d.Files}
	var sums []*TorrentSummary
	seen := map[string]bool{}
	for _, p := range d.Parts {
		if p.Name == "" || strings.Contains(p.Name, "/") || seen[p.Name] {
			return fmt.Errorf("disk image %q: partition name %q is empty, has a '/' or is repeated", d.Name, p.Name)
		}
		seen[p.Name] = true
		sp := servedPart{DiskPart: p}
		if p.MI != nil {
			sum, _, err := Summarize(p.MI)
			if err != nil {
				return fmt.Errorf("disk image %q, partition %s: %w", d.Name, p.Name, err)
			}
			sp.t = &servedTorrent{key: d.Name + "/" + p.Name, mi: p.MI, sum: sum, peerPort: d.PeerPort}
			sums = append(sums, sum)
		} else {
			sums = append(sums, nil)
		}
		im.parts = append(im.parts, sp)
	}
	sort.SliceStable(im.parts, func(a, b int) bool { return im.parts[a].Start < im.parts[b].Start })
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.images[d.Name]; old != nil {
		return fmt.Errorf("an image named %q is already served", d.Name)
	}
	s.images[d.Name] = im
	for _, p := range im.parts {
		if p.t != nil {
			s.addTorrentLocked(p.t, p.t.sum)
		}
	}
	return nil
}

func (s *Server) addTorrentLocked(t *servedTorrent, sum *TorrentSummary) {
	s.torrents[t.key] = t
	ih := t.mi.HashInfoBytes()
	sw := s.swarmLocked(ih)
	sw.total, sw.pieces = sum.TotalBytes, sum.Pieces
	s.peerPorts[ih] = t.peerPort
}

// ImageEntry is one line of /images.json.
type ImageEntry struct {
	Name        string `json:"name"`
	Kind        string `json:"kind"`           // KindPartition or KindDisk
	URL         string `json:"url"`            // /images/NAME on this server
	Size        int64  `json:"size"`           // bytes of data in the image
	HighestEnd  int64  `json:"highest_offset"` // smallest target that fits
	InfoHash    string `json:"infohash"`       // partition images only
	Pieces      int    `json:"pieces"`
	PieceLength int64  `json:"piece_length"` // partition images only
	Torrent     string `json:"torrent"`      // partition images: path of the .torrent on this server
	PeerPort    int    `json:"peer_port"`
	Clients     int    `json:"clients"`
	Done        int    `json:"done"`
	// Partitions of a disk image, in disk order.
	Partitions []ImagePart `json:"partitions,omitempty"`
}

// ImagePart is one partition of a disk image in /images.json and
// /images/NAME.
type ImagePart struct {
	Name        string `json:"name"`
	Number      int    `json:"number"`
	Start       int64  `json:"start"`
	Size        int64  `json:"size"`
	FS          string `json:"fs"`
	Torrent     string `json:"torrent,omitempty"` // empty: not transferred (e.g. swap)
	InfoHash    string `json:"infohash,omitempty"`
	Bytes       int64  `json:"bytes"` // data bytes in its torrent
	Pieces      int    `json:"pieces"`
	PieceLength int64  `json:"piece_length,omitempty"`
}

// ImageInfo is the answer of /images/NAME: the entry with absolute URLs,
// every torrent to fetch and, for a disk image, its manifest.
type ImageInfo struct {
	ImageEntry
	Torrents []string        `json:"torrents"`
	Manifest json.RawMessage `json:"manifest,omitempty"`
}

func torrentPath(key string) string {
	parts := strings.Split(key, "/")
	for i := range parts {
		parts[i] = url.PathEscape(parts[i])
	}
	return "/torrents/" + strings.Join(parts, "/") + ".torrent"
}

func imagePath(name string) string { return "/images/" + url.PathEscape(name) }

// entryLocked describes an image; prefix is put before every path.
func (s *Server) entryLocked(im *servedImage, prefix string) ImageEntry {
	e := ImageEntry{Name: im.name, Kind: im.kind, URL: prefix + imagePath(im.name)}
	for _, p := range im.parts {
		if p.t != nil {
			e.Size += p.t.sum.TotalBytes
			e.Pieces += p.t.sum.Pieces
			e.PeerPort = p.t.peerPort
		}
	}
	if im.kind == KindPartition {
		t := im.parts[0].t
		e.HighestEnd, e.InfoHash, e.PieceLength = t.sum.HighestEnd, t.sum.InfoHash, t.sum.PieceLength
		e.Torrent = prefix + torrentPath(t.key)
	} else {
		e.Partitions = []ImagePart{}
		for _, p := range im.parts {
			ip := ImagePart{Name: p.Name, Number: p.Number, Start: p.Start, Size: p.Size, FS: p.FS}
			if p.t != nil {
				ip.Torrent = prefix + torrentPath(p.t.key)
				ip.InfoHash, ip.Bytes, ip.Pieces, ip.PieceLength = p.t.sum.InfoHash, p.t.sum.TotalBytes, p.t.sum.Pieces, p.t.sum.PieceLength
			}
			e.HighestEnd = max(e.HighestEnd, p.Start+p.Size)
			e.Partitions = append(e.Partitions, ip)
		}
	}
	fleet := s.imageFleetLocked(im)
	e.Clients, e.Done = len(fleet), DoneCount(fleet)
	return e
}

func (s *Server) entries() []ImageEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []ImageEntry{}
	for _, im := range s.images {
		out = append(out, s.entryLocked(im, ""))
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func (s *Server) imagesJSON(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, s.entries())
}

func (s *Server) imageJSON(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	s.mu.Lock()
	im := s.images[name]
	var info ImageInfo
	if im != nil {
		info.ImageEntry = s.entryLocked(im, "http://"+r.Host)
		info.Manifest = im.manifest
	}
	s.mu.Unlock()
	if im == nil {
		http.Error(w, fmt.Sprintf("no image named %q here; see /images.json", name), http.StatusNotFound)
		return
	}
	info.Torrents = []string{}
	if info.Torrent != "" {
		info.Torrents = append(info.Torrents, info.Torrent)
	}
	for _, p := range info.Partitions {
		if p.Torrent != "" {
			info.Torrents = append(info.Torrents, p.Torrent)
		}
	}
	writeJSON(w, info)
}

// imageFile serves one of a disk image's small files.
func (s *Server) imageFile(w http.ResponseWriter, r *http.Request) {
	name, file := r.PathValue("name"), r.PathValue("file")
	s.mu.Lock()
	var b []byte
	ok := false
	if im := s.images[name]; im != nil && im.files != nil {
		b, ok = im.files[file]
	}
	s.mu.Unlock()
	if !ok {
		http.Error(w, fmt.Sprintf("image %q has no file %q here", name, file), http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
}

// SeederHeader carries the seeder's peer address with a served torrent, so
// a client can trust it.
const SeederHeader = "X-Ezio-Seeder"

func (s *Server) torrentFile(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutSuffix(r.PathValue("file"), ".torrent")
	if !ok {
		http.NotFound(w, r)
		return
	}
	if img := r.PathValue("image"); img != "" {
		name = img + "/" + name
	}
	s.mu.Lock()
	t := s.torrents[name]
	s.mu.Unlock()
	if t == nil {
		http.Error(w, fmt.Sprintf("no torrent named %q here; see /images.json", name), http.StatusNotFound)
		return
	}
	// Point the torrent at this tracker, as the client reached it. The
	// info dictionary (and so the infohash) is untouched.
	mi := *t.mi
	mi.Announce = "http://" + r.Host + "/announce"
	mi.AnnounceList = nil
	var buf bytes.Buffer
	if err := mi.Write(&buf); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if lip := localIP(r); lip.Is4() && t.peerPort > 0 {
		w.Header().Set(SeederHeader, netip.AddrPortFrom(lip, uint16(t.peerPort)).String())
	}
	w.Header().Set("Content-Type", "application/x-bittorrent")
	w.Write(buf.Bytes())
}

// imageFleetLocked lists an image's clients; for a disk image one member
// per client address, summed over its partitions.
func (s *Server) imageFleetLocked(im *servedImage) []FleetMember {
	now := s.now()
	type agg struct {
		m          FleetMember
		done, tot  int64
		parts      int
		allDone    bool
		anyActive  bool
		states     map[string]bool
		rate, seen float64
	}
	var total int64
	var nparts int
	by := map[string]*agg{}
	for _, p := range im.parts {
		if p.t == nil {
			continue
		}
		nparts++
		total += p.t.sum.TotalBytes
		sw := s.swarms[p.t.mi.HashInfoBytes()]
		if sw == nil {
			continue
		}
		sw.sweepLocked(now, false)
		for _, m := range sw.membersLocked(now, sw.total) {
			a := by[m.Addr]
			if a == nil {
				a = &agg{allDone: true, states: map[string]bool{}, seen: m.LastSeen}
				a.m.Addr = m.Addr
				by[m.Addr] = a
			}
			a.parts++
			a.done += int64(m.Done * float64(sw.total))
			a.allDone = a.allDone && m.Completed
			a.anyActive = a.anyActive || m.Active
			a.states[m.State] = true
			a.rate += m.Rate
			a.seen = min(a.seen, m.LastSeen)
		}
	}
	out := make([]FleetMember, 0, len(by))
	for _, a := range by {
		m := a.m
		m.Active, m.Rate, m.LastSeen = a.anyActive, a.rate, a.seen
		if total > 0 {
			m.Done = float64(a.done) / float64(total)
		}
		switch {
		case a.allDone && a.parts == nparts:
			m.State, m.Completed, m.Done = FleetDone, true, 1
		case a.states[FleetDownloading] || (a.anyActive && a.parts < nparts):
			m.State = FleetDownloading
		case a.states[FleetLeft]:
			m.State = FleetLeft
		case a.states[FleetLost]:
			m.State = FleetLost
		default:
			m.State, m.Reported = FleetReported, true
		}
		out = append(out, m)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Addr < out[b].Addr })
	return out
}

// ImageFleet lists the clients of the image called name (for a disk
// image one member per client, summed over its partitions), or nil when
// no such image is served.
func (s *Server) ImageFleet(name string) []FleetMember {
	s.mu.Lock()
	defer s.mu.Unlock()
	im := s.images[name]
	if im == nil {
		return nil
	}
	return s.imageFleetLocked(im)
}
