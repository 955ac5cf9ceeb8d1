package engine

import (
	"context"
	"errors"
	"ezio/engine/extent"
	"ezio/engine/server"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	pp "github.com/anacrolix/torrent/peer_protocol"
	"github.com/anacrolix/torrent/storage"
	"golang.org/x/time/rate"
)

// SessionOptions configure the one BitTorrent client of a process.
type SessionOptions struct {
	Tuning
	Logger *slog.Logger
	// Serve runs the embedded tracker and image server on ServerListen
	// ("" means ":6969").
	Serve        bool
	ServerListen string
	// HoldServer: the server accepts connections at once but answers
	// only after Session.OpenServer, once the seeder's images are all
	// registered (a one-job Seed session opens it by itself).
	HoldServer bool
	// MaxUnverifiedBytes bounds the piece data requested and not yet
	// verified, per torrent (0: the cache size).
	MaxUnverifiedBytes int64
	// Allow, when not empty, limits peers (both ways) to these networks
	// (loopback always passes).
	Allow []netip.Prefix
}

// Session is one BitTorrent client hosting any number of seed and deploy
// jobs, with one tracker and image server. All its methods are safe to
// call from any goroutine.
type Session struct {
	tu  Tuning
	log *slog.Logger
	cl  *torrent.Client
	srv *server.Server

	upLim, downLim *rate.Limiter  // session-wide caps, paced in the storage
	held           *extent.Budget // memory for clients' pieces in flight (--cache-size)

	// reveal: the piece reveal of every seed job (revealgroup.go).
	revealOnce sync.Once
	reveal     *revealGroup

	// single: the session was made for one job (engine.Seed, engine.Deploy)
	// and ends with it. Set before that job starts, never changed.
	single bool

	mu       sync.RWMutex
	jobs     map[metainfo.Hash]*Job
	closed   bool
	shutOnce sync.Once

	// announced (under mu): infohashes whose trackers the library was
	// given (reannounce.go).
	announced map[metainfo.Hash]bool
}

// peerHooks are a job's share of the client's connection callbacks.
type peerHooks struct {
	added     func(*torrent.PeerConn)
	closed    func(*torrent.PeerConn)
	read      func(*torrent.PeerConn, *pp.Message)
	handshake func(*torrent.PeerConn, *pp.ExtendedHandshakeMessage)
}

// NewSession starts the BitTorrent client (and the server, with Serve).
func NewSession(o SessionOptions) (*Session, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tu := o.Tuning.withDefaults()
	s := &Session{tu: tu, log: log.With("component", "engine"), jobs: map[metainfo.Hash]*Job{},
		upLim: newLimiter(tu.MaxUploadRate), downLim: newLimiter(tu.MaxDownloadRate),
		held: extent.NewBudget(heldLimit(tu))}
	cfg, err := clientConfig(tu, log)
	if err != nil {
		return nil, err
	}
	if o.MaxUnverifiedBytes > 0 {
		cfg.MaxUnverifiedBytes = o.MaxUnverifiedBytes
	}
	// A client that completes a torrent queues a have message to each peer
	// and, when that peer is complete too (the seeder), the library drops
	// the connection in the same step, often before the message leaves: the
	// seeder never learns that the client finished, cannot vouch for it,
	// and a room waiting for it never ends. So only a serving session drops
	// mutually complete peers: it does so after reading the client's have,
	// which is what its witness needs. Idle links between finished clients
	// cost nothing on a LAN and close with their jobs.
	cfg.DropMutuallyCompletePeers = o.Serve
	if len(o.Allow) > 0 {
		cfg.IPBlocklist = server.AllowList(o.Allow).Blocklist()
	}
	cfg.DefaultStorage = noDefaultStorage{}
	s.installHooks(cfg)
	var rt *reqTrace
	if tu.TraceRequests {
		rt = newReqTrace(cfg)
	}
	cl, err := torrent.NewClient(cfg)
	if err != nil {
		addr := tu.ListenAddr
		if addr == "" {
			addr = fmt.Sprintf("0.0.0.0:%d", DefaultPeerPort)
		}
		return nil, &ListenError{Addr: addr, Err: err}
	}
	s.cl = cl
	if rt != nil {
		go rt.run((<-chan struct{})(cl.Closed()))
	}
	if o.Serve {
		opts := []server.ServerOption{server.WithAllow(server.AllowList(o.Allow)), server.WithVersion(Version)}
		if o.HoldServer {
			opts = append(opts, server.WithHold())
		}
		srv, err := server.NewServer(o.ServerListen, log, opts...)
		if err != nil {
			cl.Close()
			return nil, err
		}
		s.srv = srv
	}
	return s, nil
}

// installHooks routes the client's connection callbacks to the job whose
// torrent the connection belongs to.
func (s *Session) installHooks(cfg *torrent.ClientConfig) {
	hooksOf := func(pc *torrent.PeerConn) *peerHooks {
		t := pc.Torrent()
		if t == nil {
			return nil
		}
		s.mu.RLock()
		j := s.jobs[t.InfoHash()]
		s.mu.RUnlock()
		if j == nil {
			return nil
		}
		return &j.hooks
	}
	cfg.Callbacks.PeerConnAdded = append(cfg.Callbacks.PeerConnAdded, func(pc *torrent.PeerConn) {
		if h := hooksOf(pc); h != nil && h.added != nil {
			h.added(pc)
		}
	})
	cfg.Callbacks.PeerConnClosed = func(pc *torrent.PeerConn) {
		if h := hooksOf(pc); h != nil && h.closed != nil {
			h.closed(pc)
		}
		listenPorts.Delete(pc)
	}
	cfg.Callbacks.ReadMessage = func(pc *torrent.PeerConn, m *pp.Message) {
		if h := hooksOf(pc); h != nil && h.read != nil {
			h.read(pc, m)
		}
	}
	cfg.Callbacks.ReadExtendedHandshake = func(pc *torrent.PeerConn, d *pp.ExtendedHandshakeMessage) {
		if d.Port > 0 && d.Port < 65536 {
			listenPorts.Store(pc, d.Port)
		}
		if h := hooksOf(pc); h != nil && h.handshake != nil {
			h.handshake(pc, d)
		}
	}
}

// Jobs lists the jobs running in the session.
func (s *Session) Jobs() []*Job {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Job, 0, len(s.jobs))
	for _, j := range s.jobs {
		out = append(out, j)
	}
	return out
}

// Job finds a running job by its infohash (hex, either case).
func (s *Session) Job(infoHash string) *Job {
	var ih metainfo.Hash
	if err := ih.FromHexString(infoHash); err != nil {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.jobs[ih]
}

// OpenServer lets a held server (SessionOptions.HoldServer) answer.
func (s *Session) OpenServer() {
	if s.srv != nil {
		s.srv.Open()
	}
}

// Server is the embedded tracker and image server, or nil.
func (s *Session) Server() *server.Server { return s.srv }

// PeerAddr is the address peers connect to (host:port).
func (s *Session) PeerAddr() string {
	for _, a := range s.cl.ListenAddrs() {
		if ta, ok := a.(*net.TCPAddr); ok {
			return ta.String()
		}
	}
	return ""
}

// PeerPort is the BitTorrent listen port.
func (s *Session) PeerPort() int { return s.cl.LocalPort() }

// SetUploadLimit changes the session's upload cap (bytes/s, 0: none)
// while it runs.
func (s *Session) SetUploadLimit(bytesPerSec int64) { setLimit(s.upLim, bytesPerSec) }

// SetDownloadLimit changes the session's download cap likewise.
func (s *Session) SetDownloadLimit(bytesPerSec int64) { setLimit(s.downLim, bytesPerSec) }

// Close stops every job (a deploy keeps its resume record), then the
// client and the server.
func (s *Session) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	jobs := make([]*Job, 0, len(s.jobs))
	for _, j := range s.jobs {
		jobs = append(jobs, j)
	}
	s.mu.Unlock()
	for _, j := range jobs {
		j.Stop()
	}
	for _, j := range jobs {
		<-j.Done()
	}
	return s.shutdown()
}

// shutdown closes the client and the server, once.
func (s *Session) shutdown() error {
	var errs []error
	s.shutOnce.Do(func() {
		for _, err := range s.cl.Close() {
			errs = append(errs, err)
		}
		if s.srv != nil {
			if err := s.srv.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	})
	return errors.Join(errs...)
}

// register reserves the infohash for j before its torrent is added, so
// that the first connection already finds the job's hooks.
func (s *Session) register(j *Job) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("the session is shutting down")
	}
	if _, ok := s.jobs[j.ih]; ok {
		return fmt.Errorf("image %s (%s) is already being served or written in this session", j.name, j.ih.HexString())
	}
	s.jobs[j.ih] = j
	return nil
}

func (s *Session) unregister(j *Job) {
	s.mu.Lock()
	if s.jobs[j.ih] == j {
		delete(s.jobs, j.ih)
	}
	s.mu.Unlock()
}

// noDefaultStorage is the client's default storage: every torrent of a
// session brings its own, and the library's default (files and a
// completion database in the working directory) must never be created.
type noDefaultStorage struct{}

func (noDefaultStorage) OpenTorrent(context.Context, *metainfo.Info, metainfo.Hash) (storage.TorrentImpl, error) {
	return storage.TorrentImpl{}, errors.New("a torrent added without its own storage")
}
