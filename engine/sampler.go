package engine

import (
	"context"
	"ezio/engine/server"
	"log/slog"
	"sort"
	"time"

	"github.com/anacrolix/torrent"
)

// sampler turns the library's counters and piece states into the job's
// Snapshots, about four times a second. Its fields belong to the goroutine
// running run; finish calls publish only after run has returned.
type sampler struct {
	j *Job

	lastSample time.Time
	lastDown   int64
	lastUp     int64
	downRate   ewma
	upRate     ewma
	peerLast   map[string]peerSample
	lastPeers  []PeerSnapshot // peers at the last sample, for the final snapshot
	closing    bool
	lastGot    int64

	pieceLast    []PieceState
	hashFailures int

	conns int                 // connections at the last sample
	idle  []*torrent.PeerConn // of those, the ones idle for idleDrop
}

type peerSample struct {
	down, up   int64
	at         time.Time
	downR, upR ewma
	active     time.Time // last time data moved either way
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
	if e.v < 1 {
		e.v = 0 // a rate that has decayed to nothing is nothing
	}
}

func newSampler(j *Job) *sampler {
	return &sampler{j: j, peerLast: map[string]peerSample{}}
}

// A seeder with at least slotsShort connections drops those idle for
// idleDrop (the library allows 200 per torrent, config.go).
const (
	slotsShort = 150
	idleDrop   = 4 * time.Second
)

// run publishes snapshots until ctx ends.
func (s *sampler) run(ctx context.Context) error {
	sub := s.j.t.SubscribePieceStateChanges()
	defer sub.Close()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	s.publish()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ch, ok := <-sub.Values:
			if !ok {
				return nil
			}
			s.onPieceChange(ch)
		case <-tick.C:
			s.publish()
			s.dropIdleWhenShort()
		}
	}
}

func (s *sampler) onPieceChange(ch torrent.PieceStateChange) {
	j := s.j
	if s.pieceLast == nil || ch.Index >= len(s.pieceLast) {
		return
	}
	prev := s.pieceLast[ch.Index]
	switch {
	case ch.Complete && prev != PieceVerified:
		s.pieceLast[ch.Index] = PieceVerified
		j.b.publishEvent(Event{Kind: EventPieceVerified, Piece: ch.Index})
	case !ch.Complete && !ch.Hashing && !ch.QueuedForHash && !ch.Marking && prev == PieceHashing && j.phase.Load() != PhaseChecking &&
		!j.st.DiskCheckFailed(ch.Index): // a recorded piece found wrong on the target is no peer's failure
		s.pieceLast[ch.Index] = PieceFailed
		s.hashFailures++
		j.b.publishEvent(Event{Kind: EventPieceFailed, Piece: ch.Index})
		j.log.Warn("piece failed its hash check; fetching it again", "piece", ch.Index)
		j.pieceFailedHash(ch.Index) // gives up on a piece only bad sources have (badpiece.go)
	case ch.Hashing || ch.QueuedForHash:
		s.pieceLast[ch.Index] = PieceHashing
	}
}

func (s *sampler) publish() {
	j := s.j
	now := time.Now()
	st := j.t.Stats()
	snap := Snapshot{
		Time: now, Role: j.role, Name: j.name, InfoHash: j.ih.HexString(),
		Paused: j.paused.Load(), BytesTotal: j.layout.Total, PiecesTotal: j.layout.NumPieces,
	}
	snap.Phase, _ = j.phase.Load().(Phase)
	s.pieceMap(&snap)
	snap.HashFailures = s.hashFailures
	// Rates from byte counters, smoothed; zero while paused.
	down := st.ConnStats.BytesReadUsefulData.Int64()
	up := st.ConnStats.BytesWrittenData.Int64()
	if !s.lastSample.IsZero() {
		if dt := now.Sub(s.lastSample).Seconds(); dt > 0 {
			s.downRate.add(float64(down-s.lastDown) / dt)
			s.upRate.add(float64(up-s.lastUp) / dt)
		}
	}
	s.lastSample, s.lastDown, s.lastUp = now, down, up
	snap.DownloadRate, snap.UploadRate = s.downRate.v, s.upRate.v
	snap.BytesDownloaded, snap.BytesUploaded = down, up
	snap.BytesWritten = j.st.bytesWritten.Load()
	if j.role == RoleDeploy {
		snap.PiecesReverified, snap.PiecesRefetched = j.st.ResumeCounts()
	} else {
		snap.BadPieces = j.st.BadPieces()
		snap.Stuck = j.StuckClients()
	}
	// Progress means piece data arriving, not only pieces completing: a
	// 16 MiB piece from a busy seeder can take minutes.
	if got := snap.BytesDone + snap.BytesDownloaded; got != s.lastGot {
		s.lastGot = got
		j.progressAt.Store(now.UnixNano())
	}
	conns, idle := s.peers(&snap, now)
	s.conns, s.idle = len(conns), idle
	snap.NumPeers = len(snap.Peers)
	if snap.Paused || s.closing {
		snap.DownloadRate, snap.UploadRate = 0, 0
	}
	if srv := j.server(); srv != nil && j.role == RoleSeed {
		snap.Fleet = srv.Fleet(j.ih, j.layout.Total)
		snap.FleetDone = server.DoneCount(snap.Fleet)
	}
	snap.Expected = j.expect
	if ls := j.lostAt.Load(); ls != 0 && snap.Phase == PhaseWaiting {
		snap.LostSeconds = float64(int64(now.Sub(time.Unix(0, ls)).Seconds()*10)) / 10
	}
	snap.Elapsed = now.Sub(j.start)
	snap.ElapsedSeconds = snap.Elapsed.Seconds()
	snap.ETA, snap.ETASeconds = -1, -1
	if j.role == RoleDeploy {
		s.eta(&snap)
	}
	j.b.publishSnapshot(snap)
}

// eta estimates the time left from the bytes still to come: the slower of
// the current rate and the average since the transfer began, so that a
// burst never gives an optimistic figure.
func (s *sampler) eta(snap *Snapshot) {
	left := snap.BytesTotal - snap.BytesDone
	switch {
	case left == 0:
		snap.ETA, snap.ETASeconds = 0, 0
	case snap.DownloadRate > 1024:
		r := snap.DownloadRate
		if el := snap.Elapsed.Seconds(); el > 5 {
			avg := float64(snap.BytesDone-s.j.startDone) / el
			if avg > 1024 && avg < r {
				r = avg
			}
		}
		secs := float64(left) / r
		snap.ETA = time.Duration(secs * float64(time.Second))
		snap.ETASeconds = float64(int64(secs*10)) / 10
	}
}

// logAt is a shorthand for a formatted log line at a level.
func (j *Job) logAt(level slog.Level, msg string, args ...any) {
	j.log.Log(context.Background(), level, msg, args...)
}

// pieceMap fills the snapshot's piece states and the verified counts; a
// piece whose hash failed shows as failed until it is fetched again.
func (s *sampler) pieceMap(snap *Snapshot) {
	j := s.j
	pieces := make([]PieceState, 0, j.layout.NumPieces)
	for _, r := range j.t.PieceStateRuns() {
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
	if s.pieceLast == nil {
		s.pieceLast = make([]PieceState, len(pieces))
		copy(s.pieceLast, pieces)
	}
	for i, ps := range pieces {
		if ps == PieceMissing && i < len(s.pieceLast) && s.pieceLast[i] == PieceFailed {
			pieces[i] = PieceFailed
		}
		if ps == PieceVerified {
			snap.PiecesDone++
			_, n := j.layout.PieceSpan(i)
			snap.BytesDone += n
		}
	}
	snap.Pieces = pieces
}

// peers fills one entry per connection, with rates from its byte
// counters, publishes joins and leaves, and returns the connections and
// those that have moved no data for idleDrop.
func (s *sampler) peers(snap *Snapshot, now time.Time) (conns []*torrent.PeerConn, idle []*torrent.PeerConn) {
	j := s.j
	seen := map[string]bool{}
	conns = j.t.PeerConns()
	for _, pc := range conns {
		addr := pc.RemoteAddr.String()
		ps := pc.Stats()
		name, _ := pc.PeerClientName.Load().(string)
		if name == "" {
			name = clientFromPeerID(pc.PeerID)
		}
		last, known := s.peerLast[addr]
		pd, pu := ps.BytesReadUsefulData.Int64(), ps.BytesWrittenData.Int64()
		if known {
			if dt := now.Sub(last.at).Seconds(); dt > 0 {
				last.downR.add(float64(pd-last.down) / dt)
				last.upR.add(float64(pu-last.up) / dt)
			}
			if pd != last.down || pu != last.up {
				last.active = now
			}
		} else {
			last.active = now
			j.b.publishEvent(Event{Kind: EventPeerJoined, Peer: addr, Message: name})
			j.log.Debug("peer joined", "peer", addr, "client", name)
		}
		last.down, last.up, last.at = pd, pu, now
		s.peerLast[addr] = last
		if now.Sub(last.active) >= idleDrop {
			idle = append(idle, pc)
		}
		seen[addr] = true
		have := ps.RemotePieceCount
		p := PeerSnapshot{
			Addr: addr, Client: name, DownloadRate: last.downR.v, UploadRate: last.upR.v,
			BytesDownloaded: pd, BytesUploaded: pu, PiecesHave: have,
			IdleSeconds: float64(int64(now.Sub(last.active).Seconds()*10)) / 10,
		}
		if j.layout.NumPieces > 0 {
			p.Share = float64(have) / float64(j.layout.NumPieces)
		}
		p.Seeder = have >= j.layout.NumPieces
		if snap.Paused {
			p.DownloadRate, p.UploadRate = 0, 0
		}
		snap.Peers = append(snap.Peers, p)
	}
	for addr := range s.peerLast {
		if !seen[addr] {
			delete(s.peerLast, addr)
			j.b.publishEvent(Event{Kind: EventPeerLeft, Peer: addr})
			j.log.Debug("peer left", "peer", addr)
		}
	}
	sort.Slice(snap.Peers, func(a, b int) bool {
		ra := snap.Peers[a].DownloadRate + snap.Peers[a].UploadRate
		rb := snap.Peers[b].DownloadRate + snap.Peers[b].UploadRate
		if ra != rb {
			return ra > rb
		}
		return snap.Peers[a].Addr < snap.Peers[b].Addr
	})
	if s.closing {
		snap.Peers = nil
		for _, p := range s.lastPeers {
			p.DownloadRate, p.UploadRate = 0, 0
			snap.Peers = append(snap.Peers, p)
		}
	} else {
		s.lastPeers = snap.Peers
	}
	return conns, idle
}

// dropIdleWhenShort is a seeder's slot policy, run after each sample:
// slots go to peers that move data, so when they run short the
// connections that have moved nothing for a while are dropped.
func (s *sampler) dropIdleWhenShort() {
	j := s.j
	if j.role != RoleSeed || s.conns < slotsShort || len(s.idle) == 0 {
		return
	}
	j.log.Info("connection slots are short; dropping idle peers", "connected", s.conns, "idle", len(s.idle))
	for _, pc := range s.idle {
		pc.Close()
	}
	s.idle = nil
}
