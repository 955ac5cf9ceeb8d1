package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	pp "github.com/anacrolix/torrent/peer_protocol"
	"golang.org/x/time/rate"
)

// Version is reported to peers and in logs.
const Version = "0.1.0"

// Job is one running seeder or deploy. All its methods are safe to call
// from any goroutine.
type Job struct {
	role   Role
	name   string
	ih     metainfo.Hash
	layout *Layout
	log    *slog.Logger

	cl      *torrent.Client
	t       *torrent.Torrent
	st      *extentStorage
	tracker *Server
	resume  *resumeState

	b       broker
	start   time.Time
	phase   atomic.Value // Phase
	paused  atomic.Bool
	stopped chan struct{}
	stopOne sync.Once
	done    chan struct{}
	err     error
	failErr atomic.Pointer[error]

	// sampler state, owned by the snapshot loop
	lastSample   time.Time
	lastDown     int64
	lastUp       int64
	downRate     ewma
	upRate       ewma
	peerLast     map[string]peerSample
	lastPeers    []PeerSnapshot // peers at the last sample, for the final snapshot
	closing      bool
	lastDone     int64
	lastProgress time.Time // when BytesDone last grew (snapshot loop's copy)
	progressAt   time.Time // the same, for other goroutines, under b.mu

	revealC      *revealClient // piece reveal, client side (reveal.go)
	revealS      *revealSeeder // piece reveal, seeder side
	pieceLast    []PieceState
	hashFailures int
	startDone    int64 // bytes already complete when the job began
}

type peerSample struct {
	down, up   int64
	at         time.Time
	downR, upR ewma
}

// ewma smooths rates over a few seconds.
type ewma struct {
	v   float64
	set bool
}

func (e *ewma) add(x float64) {
	if !e.set {
		e.v, e.set = x, true
		return
	}
	e.v = 0.6*e.v + 0.4*x
}

// Subscribe returns the latest-snapshot mailbox and the event stream. The
// event channel is closed when the job ends.
func (j *Job) Subscribe() (*Latest[Snapshot], <-chan Event) { return j.b.subscribe() }

// Snapshot is the most recent published snapshot.
func (j *Job) Snapshot() Snapshot {
	j.b.mu.Lock()
	defer j.b.mu.Unlock()
	return j.b.last
}

// Done is closed when the job has ended.
func (j *Job) Done() <-chan struct{} { return j.done }

// Err is the job's result once Done is closed.
func (j *Job) Err() error { <-j.done; return j.err }

// Wait blocks until the job ends and returns its result.
func (j *Job) Wait() error { <-j.done; return j.err }

// Stop ends the job: a deploy stops where it is (its progress is kept for
// a resume), a seeder stops serving.
func (j *Job) Stop() { j.stopOne.Do(func() { close(j.stopped) }) }

// SetPaused stops or restarts data transfer without dropping peers.
func (j *Job) SetPaused(p bool) {
	if j.paused.Swap(p) == p {
		return
	}
	if p {
		j.t.DisallowDataDownload()
		j.t.DisallowDataUpload()
		j.logf(slog.LevelInfo, "paused")
	} else {
		j.t.AllowDataDownload()
		j.t.AllowDataUpload()
		j.logf(slog.LevelInfo, "resumed")
	}
}

// Paused tells whether transfers are paused.
func (j *Job) Paused() bool { return j.paused.Load() }

// PeerAddr is the address peers connect to (host:port).
func (j *Job) PeerAddr() string {
	for _, a := range j.cl.ListenAddrs() {
		if ta, ok := a.(*net.TCPAddr); ok {
			return ta.String()
		}
	}
	return ""
}

// TrackerURL is the embedded tracker's announce URL, or "".
func (j *Job) TrackerURL() string {
	if j.tracker == nil {
		return ""
	}
	return j.tracker.AnnounceURL()
}

// ServerURL is the base URL of the embedded HTTP server, or "".
func (j *Job) ServerURL() string {
	if j.tracker == nil {
		return ""
	}
	return j.tracker.BaseURL()
}

// progressTime is when the bytes done last grew (or the job started).
func (j *Job) progressTime() time.Time {
	j.b.mu.Lock()
	defer j.b.mu.Unlock()
	return j.progressAt
}

// Fleet lists the clients the seeder's tracker knows, or nil.
func (j *Job) Fleet() []FleetMember {
	if j.tracker == nil {
		return nil
	}
	return j.tracker.Fleet(j.ih, j.layout.Total)
}

// Name is the image name; InfoHash its hex infohash.
func (j *Job) Name() string     { return j.name }
func (j *Job) InfoHash() string { return j.ih.HexString() }
func (j *Job) Role() Role       { return j.role }

func (j *Job) setPhase(p Phase) {
	old, _ := j.phase.Load().(Phase)
	if old == p {
		return
	}
	j.phase.Store(p)
	j.b.publishEvent(Event{Kind: EventPhase, Phase: p})
	j.log.Debug("phase", "phase", p)
}

func (j *Job) logf(level slog.Level, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	j.log.Log(context.Background(), level, msg)
}

// clientConfig is the LAN-tuned configuration (see docs/engine.md).
func clientConfig(tu Tuning, log *slog.Logger) (*torrent.ClientConfig, error) {
	cfg := torrent.NewDefaultClientConfig()
	cfg.NoDHT = true
	cfg.DisableUTP = true
	cfg.DisableIPv6 = true
	cfg.DisableWebtorrent = true
	cfg.DisableWebseeds = true
	cfg.NoDefaultPortForwarding = true
	cfg.DisablePEX = false
	cfg.HeaderObfuscationPolicy = torrent.HeaderObfuscationPolicy{}
	cfg.Seed = true
	cfg.DropDuplicatePeerIds = true
	cfg.DropMutuallyCompletePeers = true
	cfg.DialRateLimiter = rate.NewLimiter(rate.Limit(500), 100)
	cfg.EstablishedConnsPerTorrent = 200
	cfg.HalfOpenConnsPerTorrent = 100
	cfg.TotalHalfOpenConns = 400
	cfg.TorrentPeersHighWater = 2000
	cfg.TorrentPeersLowWater = 200
	cfg.NominalDialTimeout = 5 * time.Second
	cfg.MinDialTimeout = time.Second
	cfg.HandshakesTimeout = 10 * time.Second
	cfg.MaxUnverifiedBytes = int64(tu.CacheSizeMiB) << 20
	cfg.PieceHashersPerTorrent = tu.HashingThreads
	// Each connection may have this much requested data being read for it;
	// enough for a full pipeline of 16 KiB chunks.
	cfg.MaxAllocPeerRequestDataPerConn = 16 << 20
	if tu.MaxDownloadRate > 0 {
		cfg.DownloadRateLimiter = rate.NewLimiter(rate.Limit(tu.MaxDownloadRate), int(min(tu.MaxDownloadRate, 1<<20)))
	}
	if tu.MaxUploadRate > 0 {
		cfg.UploadRateLimiter = rate.NewLimiter(rate.Limit(tu.MaxUploadRate), int(max(min(tu.MaxUploadRate, 1<<20), 64<<10)))
	}
	cfg.ExtendedHandshakeClientVersion = "ezio " + Version
	cfg.Bep20 = "-EZ0100-"
	cfg.HTTPUserAgent = "ezio/" + Version
	cfg.Slogger = log.With("component", "torrent")
	host, port := "0.0.0.0", DefaultPeerPort
	if tu.ListenAddr != "" {
		h, p, err := net.SplitHostPort(tu.ListenAddr)
		if err != nil {
			return nil, fmt.Errorf("listen address %q: %w", tu.ListenAddr, err)
		}
		if h != "" {
			host = h
		}
		port, err = strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("listen address %q: bad port", tu.ListenAddr)
		}
	}
	cfg.ListenHost = func(network string) string { return host }
	cfg.ListenPort = port
	return cfg, nil
}

// newJob starts the client and adds the torrent with our storage.
func newJob(role Role, mi *metainfo.MetaInfo, l *Layout, st *extentStorage, tu Tuning, log *slog.Logger) (*Job, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tu = tu.withDefaults()
	j := &Job{
		role: role, name: l.Name, ih: mi.HashInfoBytes(), layout: l,
		start: time.Now(), stopped: make(chan struct{}), done: make(chan struct{}),
		peerLast: map[string]peerSample{},
	}
	j.log = slog.New(&eventHandler{next: log.Handler(), b: &j.b}).With("component", "engine", "image", l.Name, "role", string(role))
	j.phase.Store(PhaseStarting)
	cfg, err := clientConfig(tu, j.log)
	if err != nil {
		return nil, err
	}
	if role == RoleDeploy {
		cfg.MaxUnverifiedBytes = unverifiedBudget(l, tu)
	}
	cfg.DefaultStorage = st
	if !revealDisabled && !pickerDisabled {
		switch role {
		case RoleDeploy:
			j.revealC = newRevealClient()
			j.revealC.install(cfg)
		case RoleSeed:
			j.revealS = newRevealSeeder(l.NumPieces, l.PieceLength)
			j.revealS.install(cfg, l.NumPieces)
		}
	}
	cl, err := torrent.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("starting BitTorrent client on %s: %w (is another ezio using the port? try --listen with another port)", tu.ListenAddr, err)
	}
	t, _ := cl.AddTorrentOpt(torrent.AddTorrentOpts{
		InfoHash:  j.ih,
		Storage:   st,
		InfoBytes: mi.InfoBytes,
		ChunkSize: pp.Integer(tu.ChunkSize),
	})
	j.cl, j.t, j.st = cl, t, st
	st.attach(j.log, j.fail) // integrity: storage logs here; a failed flush or write fails the job
	t.SetOnWriteChunkError(func(err error) {
		// A write error on the target is fatal: the disk is failing or gone.
		j.logf(slog.LevelError, "writing to the target failed: %v", err)
		j.fail(fmt.Errorf("writing to the target: %w", err))
	})
	return j, nil
}

// fail records the first fatal error and stops the job.
func (j *Job) fail(err error) {
	if j.failErr.CompareAndSwap(nil, &err) {
		j.Stop()
	}
}

func (j *Job) failure() error {
	if p := j.failErr.Load(); p != nil {
		return *p
	}
	return nil
}

// addPeers adds host:port peers, trusted or not.
func (j *Job) addPeers(addrs []string, trusted bool) error {
	var infos []torrent.PeerInfo
	for _, a := range addrs {
		ap, err := resolveAddrPort(a)
		if err != nil {
			return fmt.Errorf("peer %q: %w", a, err)
		}
		infos = append(infos, torrent.PeerInfo{Addr: ipPortAddr(ap), Trusted: trusted, Source: torrent.PeerSourceDirect})
	}
	j.t.AddPeers(infos)
	return nil
}

func resolveAddrPort(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad port %q", port)
	}
	ips, err := net.LookupIP(host)
	if err != nil || len(ips) == 0 {
		return netip.AddrPort{}, fmt.Errorf("cannot resolve %q", host)
	}
	for _, ip := range ips {
		if v4 := ip.To4(); v4 != nil {
			a, _ := netip.AddrFromSlice(v4)
			return netip.AddrPortFrom(a, uint16(p)), nil
		}
	}
	return netip.AddrPort{}, fmt.Errorf("%q has no IPv4 address", host)
}

type ipPortAddr netip.AddrPort

func (a ipPortAddr) String() string  { return netip.AddrPort(a).String() }
func (a ipPortAddr) Network() string { return "tcp" }

// snapshotLoop publishes snapshots at ~4 Hz until the job is done.
func (j *Job) snapshotLoop(stop <-chan struct{}) {
	sub := j.t.SubscribePieceStateChanges()
	defer sub.Close()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	j.publish()
	for {
		select {
		case <-stop:
			j.publish()
			return
		case ch, ok := <-sub.Values:
			if !ok {
				return
			}
			j.onPieceChange(ch)
		case <-tick.C:
			j.publish()
		}
	}
}

func (j *Job) onPieceChange(ch torrent.PieceStateChange) {
	if j.pieceLast == nil {
		return
	}
	prev := j.pieceLast[ch.Index]
	switch {
	case ch.Complete && prev != PieceVerified:
		j.pieceLast[ch.Index] = PieceVerified
		j.b.publishEvent(Event{Kind: EventPieceVerified, Piece: ch.Index})
	case !ch.Complete && !ch.Hashing && !ch.QueuedForHash && !ch.Marking && prev == PieceHashing && j.phase.Load() != PhaseChecking &&
		!j.st.DiskCheckFailed(ch.Index): // integrity: a recorded piece found wrong on the target is no peer's failure
		j.pieceLast[ch.Index] = PieceFailed
		j.hashFailures++
		j.b.publishEvent(Event{Kind: EventPieceFailed, Piece: ch.Index})
		j.log.Warn("piece failed its hash check; fetching it again", "piece", ch.Index)
		j.pieceFailedHash(ch.Index) // integrity: give up on a piece only bad sources have
	case ch.Hashing || ch.QueuedForHash:
		j.pieceLast[ch.Index] = PieceHashing
	}
}

func (j *Job) publish() {
	now := time.Now()
	st := j.t.Stats()
	s := Snapshot{
		Time: now, Role: j.role, Name: j.name, InfoHash: j.ih.HexString(),
		Paused: j.paused.Load(), BytesTotal: j.layout.Total, PiecesTotal: j.layout.NumPieces,
	}
	s.Phase, _ = j.phase.Load().(Phase)
	// Piece map.
	runs := j.t.PieceStateRuns()
	pieces := make([]PieceState, 0, j.layout.NumPieces)
	for _, r := range runs {
		var ps PieceState
		switch {
		case r.Complete:
			ps = PieceVerified
		case r.Hashing || r.QueuedForHash || r.Marking:
			ps = PieceHashing
		case r.Partial:
			ps = PieceDownloading
		default:
			ps = PieceMissing
		}
		for range r.Length {
			pieces = append(pieces, ps)
		}
	}
	if j.pieceLast == nil {
		j.pieceLast = make([]PieceState, len(pieces))
		copy(j.pieceLast, pieces)
	}
	for i, ps := range pieces {
		if ps == PieceMissing && i < len(j.pieceLast) && j.pieceLast[i] == PieceFailed {
			pieces[i] = PieceFailed
		}
		if ps == PieceVerified {
			s.PiecesDone++
			_, n := j.layout.PieceSpan(i)
			s.BytesDone += n
		}
	}
	s.Pieces = pieces
	s.HashFailures = j.hashFailures
	// Rates from byte counters, smoothed.
	down := st.ConnStats.BytesReadUsefulData.Int64()
	up := st.ConnStats.BytesWrittenData.Int64()
	if !j.lastSample.IsZero() {
		dt := now.Sub(j.lastSample).Seconds()
		if dt > 0 {
			j.downRate.add(float64(down-j.lastDown) / dt)
			j.upRate.add(float64(up-j.lastUp) / dt)
		}
	}
	j.lastSample, j.lastDown, j.lastUp = now, down, up
	s.DownloadRate, s.UploadRate = j.downRate.v, j.upRate.v
	s.BytesDownloaded, s.BytesUploaded = down, up
	// Progress means piece data arriving, not only pieces completing: a
	// 16 MiB piece from a busy seeder can take minutes.
	if got := s.BytesDone + s.BytesDownloaded; got != j.lastDone || j.lastProgress.IsZero() {
		j.lastDone, j.lastProgress = got, now
		j.b.mu.Lock()
		j.progressAt = now
		j.b.mu.Unlock()
	}
	// Peers.
	seen := map[string]bool{}
	for _, pc := range j.t.PeerConns() {
		addr := pc.RemoteAddr.String()
		ps := pc.Stats()
		name, _ := pc.PeerClientName.Load().(string)
		if name == "" {
			name = clientFromPeerID(pc.PeerID)
		}
		last, known := j.peerLast[addr]
		pd, pu := ps.BytesReadUsefulData.Int64(), ps.BytesWrittenData.Int64()
		if known {
			dt := now.Sub(last.at).Seconds()
			if dt > 0 {
				last.downR.add(float64(pd-last.down) / dt)
				last.upR.add(float64(pu-last.up) / dt)
			}
		} else {
			j.b.publishEvent(Event{Kind: EventPeerJoined, Peer: addr, Message: name})
			j.log.Debug("peer joined", "peer", addr, "client", name)
		}
		last.down, last.up, last.at = pd, pu, now
		j.peerLast[addr] = last
		seen[addr] = true
		have := ps.RemotePieceCount
		p := PeerSnapshot{
			Addr: addr, Client: name, DownloadRate: last.downR.v, UploadRate: last.upR.v,
			BytesDownloaded: pd, BytesUploaded: pu, PiecesHave: have,
		}
		if j.layout.NumPieces > 0 {
			p.Share = float64(have) / float64(j.layout.NumPieces)
		}
		p.Seeder = have >= j.layout.NumPieces
		s.Peers = append(s.Peers, p)
	}
	for addr := range j.peerLast {
		if !seen[addr] {
			delete(j.peerLast, addr)
			j.b.publishEvent(Event{Kind: EventPeerLeft, Peer: addr})
			j.log.Debug("peer left", "peer", addr)
		}
	}
	sort.Slice(s.Peers, func(a, b int) bool {
		ra := s.Peers[a].DownloadRate + s.Peers[a].UploadRate
		rb := s.Peers[b].DownloadRate + s.Peers[b].UploadRate
		if ra != rb {
			return ra > rb
		}
		return s.Peers[a].Addr < s.Peers[b].Addr
	})
	if j.closing {
		s.Peers = nil
		for _, p := range j.lastPeers {
			p.DownloadRate, p.UploadRate = 0, 0
			s.Peers = append(s.Peers, p)
		}
	} else {
		j.lastPeers = s.Peers
	}
	s.NumPeers = len(s.Peers)
	if j.tracker != nil {
		s.Fleet = j.tracker.Fleet(j.ih, j.layout.Total)
		for _, m := range s.Fleet {
			if m.Completed {
				s.FleetDone++
			}
		}
	}
	s.Elapsed = now.Sub(j.start)
	s.ElapsedSeconds = s.Elapsed.Seconds()
	s.ETA, s.ETASeconds = -1, -1
	if j.role == RoleDeploy {
		left := s.BytesTotal - s.BytesDone
		switch {
		case left == 0:
			s.ETA, s.ETASeconds = 0, 0
		case s.DownloadRate > 1024:
			// Average since start of transfer and current rate, whichever
			// is slower, to avoid an optimistic ETA after a burst.
			r := s.DownloadRate
			if el := s.Elapsed.Seconds(); el > 5 {
				avg := float64(s.BytesDone-j.startDone) / el
				if avg > 1024 && avg < r {
					r = avg
				}
			}
			secs := float64(left) / r
			s.ETA = time.Duration(secs * float64(time.Second))
			s.ETASeconds = float64(int64(secs*10)) / 10
		}
	}
	j.b.publishSnapshot(s)
}

// clientFromPeerID names well-known clients by their peer id prefix.
func clientFromPeerID(id [20]byte) string {
	s := string(id[:8])
	if len(s) == 8 && s[0] == '-' && s[7] == '-' {
		code := s[1:3]
		names := map[string]string{"EZ": "ezio", "LT": "libtorrent", "lt": "libtorrent (rasterbar)", "TR": "Transmission", "qB": "qBittorrent", "AZ": "Vuze", "UT": "µTorrent", "GT": "anacrolix/torrent"}
		if n, ok := names[code]; ok {
			return n + " " + strings.TrimLeft(s[3:7], "0")
		}
		return strings.Trim(s, "-")
	}
	if strings.HasPrefix(string(id[:]), "A2-") {
		return "aria2"
	}
	return "unknown"
}

// finish closes the client and storage and ends the job with err.
func (j *Job) finish(err error) {
	if f := j.failure(); f != nil {
		err = f
	}
	// One last sample while the peers are still connected: the final
	// snapshot keeps their byte totals for the result screen.
	j.publish()
	j.closing = true
	j.cl.Close()
	if cerr := j.st.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("flushing the target: %w", cerr)
	}
	if j.tracker != nil {
		j.tracker.Close()
	}
	j.err = err
	if err != nil && !errors.Is(err, context.Canceled) {
		j.setPhase(PhaseFailed)
		j.b.publishEvent(Event{Kind: EventFailed, Message: err.Error(), Err: err})
	} else if err != nil {
		j.setPhase(PhaseFailed)
		j.b.publishEvent(Event{Kind: EventFailed, Message: "stopped", Err: err})
	} else {
		j.setPhase(PhaseDone)
		j.b.publishEvent(Event{Kind: EventDone})
	}
	j.publish()
	j.b.close()
	close(j.done)
}
