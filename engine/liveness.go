package engine

import (
	"context"
	"net/netip"
	"time"

	"github.com/anacrolix/torrent"
)

// A deploy must keep going when the server restarts or a link flaps, and
// must end (with a reason) when the server is gone for good. Three parts:
//   - redial: every source given directly (the server's address from the
//     torrent URL, --peer, --seeder) is dialled again whenever it is not
//     connected, with a back-off capped at redialMax;
//   - liveness: with no connected source for waitingAfter, the phase
//     becomes "waiting" and a warning is logged; after the timeout the
//     deploy fails with an UnreachableError (its progress is kept);
//   - the tracker keeps announcing on its own; the server's address in a
//     torrent URL is one of the redialled sources, so a client never
//     depends on the tracker's interval to find the server again.

const (
	redialMin    = 250 * time.Millisecond
	redialMax    = 2 * time.Second
	waitingAfter = 2 * time.Second
)

// addPeers hands host:port peers to the library (already validated).
func (j *Job) addPeers(addrs []string, trusted bool) {
	var infos []torrent.PeerInfo
	for _, a := range addrs {
		ap, err := resolveAddrPort(a)
		if err != nil {
			continue
		}
		infos = append(infos, torrent.PeerInfo{Addr: ipPortAddr(ap), Trusted: trusted, Source: torrent.PeerSourceDirect})
	}
	if len(infos) > 0 {
		j.t.AddPeers(infos)
	}
}

// isSeederAddr tells whether addr is one of the trusted sources.
func (j *Job) isSeederAddr(addr string) bool {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return false
	}
	for _, s := range j.seeders {
		if sp, err := resolveAddrPort(s); err == nil && sp == ap {
			return true
		}
	}
	return false
}

// redial dials every direct source that is not connected, until ctx ends.
func (j *Job) redial(ctx context.Context) error {
	type src struct {
		addr    string
		trusted bool
		wait    time.Duration
		next    time.Time
	}
	var srcs []*src
	for _, a := range j.seeders {
		srcs = append(srcs, &src{addr: a, trusted: true, wait: redialMin})
	}
	for _, a := range j.peers {
		srcs = append(srcs, &src{addr: a, wait: redialMin})
	}
	if len(srcs) == 0 {
		return nil
	}
	tick := time.NewTicker(redialMin)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if j.t.Complete().Bool() && j.Snapshot().Phase != PhaseSeeding {
			continue
		}
		connected := map[netip.AddrPort]bool{}
		for _, pc := range j.t.PeerConns() {
			if ap, err := netip.ParseAddrPort(pc.RemoteAddr.String()); err == nil {
				connected[ap] = true
			}
		}
		now := time.Now()
		for _, s := range srcs {
			ap, err := resolveAddrPort(s.addr)
			if err != nil {
				continue
			}
			if connected[ap] {
				s.wait, s.next = redialMin, time.Time{}
				continue
			}
			if now.Before(s.next) {
				continue
			}
			j.t.AddPeers([]torrent.PeerInfo{{Addr: ipPortAddr(ap), Trusted: s.trusted, Source: torrent.PeerSourceDirect}})
			s.next = now.Add(s.wait)
			s.wait = min(2*s.wait, redialMax)
		}
	}
}

// liveness watches a deploy's sources.
type liveness struct {
	j        *Job
	timeout  time.Duration // negative: never give up
	had      bool          // a source was ever connected
	lostAt   time.Time     // when the last source went away (or the start)
	warned   bool
	lastWarn time.Time
}

// hasSource tells whether some connected peer can send a piece we lack:
// a revealing seeder, or a peer holding such a piece.
func (j *Job) hasSource() bool {
	conns := j.t.PeerConns()
	if len(conns) == 0 {
		return false
	}
	var gated map[*torrent.PeerConn]bool
	if j.revealC != nil {
		gated = map[*torrent.PeerConn]bool{}
		for _, pc := range j.revealC.gatedConns() {
			gated[pc] = true
		}
	}
	mine := j.t.PieceStateRuns()
	for _, pc := range conns {
		if gated[pc] {
			return true
		}
		bm := pc.PeerPieces()
		if bm.IsEmpty() {
			continue
		}
		idx := 0
		for _, r := range mine {
			if !r.Complete {
				for k := range r.Length {
					if bm.Contains(uint32(idx + k)) {
						return true
					}
				}
			}
			idx += r.Length
		}
	}
	return false
}

// check updates the phase and returns an error when the deploy must end.
func (lv *liveness) check(now time.Time) error {
	j := lv.j
	if lv.lostAt.IsZero() {
		lv.lostAt = now
	}
	if j.hasSource() {
		if lv.warned {
			j.log.Info("a source is back; downloading again", "after", now.Sub(lv.lostAt).Round(100*time.Millisecond).String())
		}
		lv.had, lv.warned = true, false
		lv.lostAt = time.Time{}
		j.lostAt.Store(0)
		j.setPhase(PhaseDownloading)
		return nil
	}
	gone := now.Sub(lv.lostAt)
	switch {
	case !lv.had:
		j.setPhase(PhaseConnecting)
	case gone >= waitingAfter:
		j.lostAt.Store(lv.lostAt.UnixNano())
		j.setPhase(PhaseWaiting)
		if !lv.warned || now.Sub(lv.lastWarn) > time.Minute {
			j.log.Warn("waiting for the server: lost " + gone.Round(time.Second).String() + " ago; redialling")
			lv.warned, lv.lastWarn = true, now
		}
	}
	if lv.timeout > 0 && gone > lv.timeout {
		since := lv.lostAt
		if !lv.had {
			since = j.start
		}
		return &UnreachableError{Since: since}
	}
	return nil
}

// seedAfter keeps a finished client serving others, as asked.
func (j *Job) seedAfter(ctx context.Context, d time.Duration) {
	if d == 0 {
		return
	}
	j.setPhase(PhaseSeeding)
	if d > 0 {
		j.log.Info("serving others", "for", d.String())
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		return
	}
	j.log.Info("serving others while they need pieces (until idle for " + seedIdle.String() + " or 3x the image sent)")
	startUp := j.uploaded()
	lastUp, lastMove := startUp, time.Now()
	noNeed := time.Time{}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := time.Now()
		up := j.uploaded()
		if up != lastUp {
			lastUp, lastMove = up, now
		}
		needy := j.peersNeedPieces()
		if needy {
			noNeed = time.Time{}
		} else if noNeed.IsZero() {
			noNeed = now
		}
		switch {
		case !noNeed.IsZero() && now.Sub(noNeed) >= seedNoNeed:
			j.log.Info("no connected client needs pieces; leaving")
			return
		case now.Sub(lastMove) >= seedIdle:
			j.log.Info("uploaded nothing for " + seedIdle.String() + "; leaving")
			return
		case up-startUp >= 3*j.layout.Total:
			j.log.Info("uploaded three times the image; leaving")
			return
		}
	}
}

const (
	seedIdle   = 60 * time.Second
	seedNoNeed = 2 * time.Second
)

// uploaded is the piece data sent so far.
func (j *Job) uploaded() int64 {
	st := j.t.Stats()
	return st.ConnStats.BytesWrittenData.Int64()
}

// peersNeedPieces tells whether a connected peer other than a server lacks
// pieces. A revealing seeder's connection shows only what it revealed, so
// servers are known by the reveal and by the trusted addresses instead.
func (j *Job) peersNeedPieces() bool {
	gated := map[*torrent.PeerConn]bool{}
	if j.revealC != nil {
		for _, pc := range j.revealC.gatedConns() {
			gated[pc] = true
		}
	}
	for _, pc := range j.t.PeerConns() {
		if gated[pc] || j.isSeederAddr(pc.RemoteAddr.String()) {
			continue
		}
		if int(pc.PeerPieces().GetCardinality()) < j.layout.NumPieces {
			return true
		}
	}
	return false
}
