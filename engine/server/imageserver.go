package server

import (
	"context"
	"encoding/json"
	"ezio/engine/torrentfile"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
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
	ln      net.Listener
	srv     *http.Server
	log     *slog.Logger
	allow   AllowList
	version string // reported on the status page
	now     func() time.Time

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
	sum      *torrentfile.TorrentSummary
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

// WithVersion is the ezio version the status page reports.
func WithVersion(v string) ServerOption { return func(s *Server) { s.version = v } }

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
	mux.HandleFunc("POST /images/{name}/"+ScriptReportPath, s.scriptReport)
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
	sum, _, err := torrentfile.Summarize(mi)
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
	var sums []*torrentfile.TorrentSummary
	seen := map[string]bool{}
	for _, p := range d.Parts {
		if p.Name == "" || strings.Contains(p.Name, "/") || seen[p.Name] {
			return fmt.Errorf("disk image %q: partition name %q is empty, has a '/' or is repeated", d.Name, p.Name)
		}
		seen[p.Name] = true
		sp := servedPart{DiskPart: p}
		if p.MI != nil {
			sum, _, err := torrentfile.Summarize(p.MI)
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

func (s *Server) addTorrentLocked(t *servedTorrent, sum *torrentfile.TorrentSummary) {
	s.torrents[t.key] = t
	ih := t.mi.HashInfoBytes()
	sw := s.swarmLocked(ih)
	sw.total, sw.pieces = sum.TotalBytes, sum.Pieces
	s.peerPorts[ih] = t.peerPort
}
