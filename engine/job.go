package engine

import (
	"context"
	"errors"
	"ezio/engine/extent"
	"ezio/engine/server"
	"ezio/engine/torrentfile"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	pp "github.com/anacrolix/torrent/peer_protocol"
	"golang.org/x/sync/errgroup"
)

// Job is one torrent in a session: a seeder serving it or a deploy writing
// it. All its methods are safe to call from any goroutine.
type Job struct {
	role   Role
	name   string
	ih     metainfo.Hash
	layout *torrentfile.Layout
	log    *slog.Logger
	tu     Tuning

	sess   *Session
	t      *torrent.Torrent
	st     *jobStorage
	resume *extent.Resume
	hooks  peerHooks
	smp    *sampler

	b          broker
	start      time.Time
	phase      atomic.Value // Phase
	paused     atomic.Bool
	stopped    chan struct{}
	stopOne    sync.Once
	done       chan struct{}
	err        error
	failErr    atomic.Pointer[error]
	progressAt atomic.Int64 // unix nanos when bytes done or received last grew
	lostAt     atomic.Int64 // unix nanos when the last source was lost; 0 while one is there

	revealC   *revealClient // piece reveal, client side (reveal.go)
	revealS   *revealSeeder // piece reveal, seeder side
	startDone int64         // bytes already complete when the job began
	expect    int           // seeder: clients the room expects
	haves     *haveWatch    // seeder: what each client says it holds, for the tracker
	refused   *refusals     // client: pieces peers refused, and who chokes us (refuse.go)
	bad       *badHeard     // client: bad pieces its sources told of or refused (clientbad.go)
	clients   *clientWatch  // seeder: every client connected, announced or not (badnotice.go)
	seeders   []string      // trusted sources (host:port), redialled while missing
	peers     []string      // other sources given directly, likewise
	// ownTrackers: announced to by the job itself (reannounce.go).
	ownTrackers []string
}

// Subscribe returns the latest-snapshot mailbox and the event stream, until
// ctx ends or the job does; the event channel is closed then.
func (j *Job) Subscribe(ctx context.Context) (*Latest[Snapshot], <-chan Event) {
	return j.b.subscribe(ctx)
}

// Snapshot is the most recent published snapshot.
func (j *Job) Snapshot() Snapshot { return j.b.latest() }

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
	// Downloads are paused by the picker wanting no piece (within one
	// tick): the library's DisallowDataDownload leaves pieces pending
	// that it no longer requests, and its own consistency check then
	// panics (seen with the daemon's PauseTorrent). Without the picker
	// there is no other way.
	pickerPauses := j.role == RoleDeploy && !j.tu.Strategy.PickerOff
	if p {
		if !pickerPauses {
			j.t.DisallowDataDownload()
		}
		j.t.DisallowDataUpload()
		j.log.Info("paused")
	} else {
		if !pickerPauses {
			j.t.AllowDataDownload()
		}
		j.t.AllowDataUpload()
		j.log.Info("resumed")
	}
}

// Paused tells whether transfers are paused.
func (j *Job) Paused() bool { return j.paused.Load() }

// PeerAddr is the address peers connect to (host:port).
func (j *Job) PeerAddr() string { return j.sess.PeerAddr() }

// Session is the session hosting the job.
func (j *Job) Session() *Session { return j.sess }

func (j *Job) server() *server.Server { return j.sess.srv }

// TrackerURL is the embedded tracker's announce URL, or "".
func (j *Job) TrackerURL() string {
	if s := j.server(); s != nil {
		return s.AnnounceURL()
	}
	return ""
}

// ServerURL is the base URL of the embedded HTTP server, or "".
func (j *Job) ServerURL() string {
	if s := j.server(); s != nil {
		return s.BaseURL()
	}
	return ""
}

// Fleet lists the clients the seeder's tracker knows, or nil.
func (j *Job) Fleet() []server.FleetMember {
	if s := j.server(); s != nil {
		return s.Fleet(j.ih, j.layout.Total)
	}
	return nil
}

// Name is the image name; InfoHash its hex infohash.
func (j *Job) Name() string     { return j.name }
func (j *Job) InfoHash() string { return j.ih.HexString() }
func (j *Job) Role() Role       { return j.role }

// Layout is the image's extent layout (with the job's base offset).
func (j *Job) Layout() *torrentfile.Layout { return j.layout }

// progressTime is when the bytes done or received last grew (or the job
// started).
func (j *Job) progressTime() time.Time { return time.Unix(0, j.progressAt.Load()) }

func (j *Job) setPhase(p Phase) {
	old, _ := j.phase.Load().(Phase)
	if old == p {
		return
	}
	j.phase.Store(p)
	j.b.publishEvent(Event{Kind: EventPhase, Phase: p})
	j.log.Debug("phase", "phase", p)
}

// jobStorage is a job's extent storage, with its counter of the bytes put
// on the target at hand for the sampler.
type jobStorage struct {
	*extent.Storage
	bytesWritten extent.Counter
}

// newJob adds a torrent to the session with the given storage.
func (s *Session) newJob(role Role, mi *metainfo.MetaInfo, l *torrentfile.Layout, st *extent.Storage, log *slog.Logger, chunk int) (*Job, error) {
	if log == nil {
		log = s.log
	}
	j := &Job{
		role: role, name: l.Name, ih: mi.HashInfoBytes(), layout: l, tu: s.tu, sess: s,
		start: time.Now(), stopped: make(chan struct{}), done: make(chan struct{}),
	}
	j.progressAt.Store(j.start.UnixNano())
	j.log = slog.New(&eventHandler{next: log.Handler(), b: &j.b}).With("component", "engine", "image", l.Name, "role", string(role))
	j.phase.Store(PhaseStarting)
	j.smp = newSampler(j)
	strat := s.tu.Strategy
	if !strat.RevealOff && !strat.PickerOff {
		switch role {
		case RoleDeploy:
			j.revealC = newRevealClient()
			j.hooks = j.revealC.hooks()
		case RoleSeed:
			j.revealS = newRevealSeeder(s.revealGroup(), l.NumPieces, l.PieceLength, l.Total, strat.RevealWindowMiB)
			j.hooks = j.revealS.hooks(l.NumPieces)
		}
	}
	if role == RoleDeploy {
		j.refused = newRefusals()
		j.hooks = chain(j.hooks, j.refused.hooks())
		j.bad = newBadHeard()
		j.hooks = chain(j.hooks, j.bad.hooks())
	}
	if role == RoleSeed {
		j.haves = newHaveWatch(l.NumPieces)
		j.hooks = chain(j.hooks, j.haves.hooks())
		j.clients = newClientWatch(l.NumPieces)
		j.hooks = chain(j.hooks, j.clients.hooks())
	}
	st.SetLimits(s.upLim, s.downLim)
	if err := s.register(j); err != nil {
		return nil, err
	}
	t, isNew := s.cl.AddTorrentOpt(torrent.AddTorrentOpts{
		InfoHash:  j.ih,
		Storage:   st,
		InfoBytes: mi.InfoBytes,
		ChunkSize: pp.Integer(chunk),
	})
	if !isNew {
		s.unregister(j)
		return nil, fmt.Errorf("image %s is already in this session", l.Name)
	}
	j.t, j.st = t, &jobStorage{Storage: st, bytesWritten: st.Written()}
	st.Attach(j.log, j.fail) // storage logs here; a failed flush or write fails the job
	t.SetOnWriteChunkError(func(err error) {
		// A write error on the target is fatal: the disk is failing or gone.
		j.log.Error("writing to the target failed", "err", err)
		j.fail(err)
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

var (
	errJobEnded   = errors.New("job ended")
	errJobStopped = errors.New("job stopped")
)

// run is the whole life of a job: its children (sampler, picker, reveal,
// redial) and its main task start together under one group and are all
// joined before the job reports its end.
func (j *Job) run(ctx context.Context, main func(context.Context) error) {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		select {
		case <-j.stopped:
			return errJobStopped
		case <-gctx.Done():
			return nil
		}
	})
	g.Go(func() error { return j.smp.run(gctx) })
	if j.role == RoleDeploy && !j.tu.Strategy.PickerOff {
		g.Go(func() error { return newPicker(j, j.tu).run(gctx) })
	}
	if j.revealS != nil {
		g.Go(func() error { return j.sess.revealGroup().run(gctx, j.revealS, j.t) })
	}
	if j.clients != nil {
		g.Go(func() error { return j.tellBad(gctx.Done()) })
	}
	if j.role == RoleDeploy {
		g.Go(func() error { return j.redial(gctx) })
	}
	if len(j.ownTrackers) > 0 {
		g.Go(func() error { return j.announceOwn(gctx) })
	}
	g.Go(func() error {
		if err := main(gctx); err != nil {
			return err
		}
		return errJobEnded
	})
	err := g.Wait()
	switch {
	case errors.Is(err, errJobEnded):
		err = nil
	case errors.Is(err, errJobStopped) && j.role == RoleSeed:
		err = nil // a seeder that is told to stop has done its job
	case errors.Is(err, errJobStopped):
		err = context.Canceled
	case err == nil:
		err = ctx.Err()
	}
	j.finish(err)
}

// quiesce stops the job's transfers and waits (briefly) for disk reads and
// writes in flight to end: the library must never be left serving a
// request from storage that is being closed.
func (j *Job) quiesce() {
	j.t.DisallowDataUpload()
	if j.role == RoleDeploy && !j.t.Complete().Bool() {
		// Want nothing more (not DisallowDataDownload: see SetPaused).
		j.t.CancelPieces(0, j.layout.NumPieces)
	}
	j.drainIO(2 * time.Second)
}

// drainIO waits until no disk operation has been in flight for a moment,
// or until limit.
func (j *Job) drainIO(limit time.Duration) {
	deadline := time.Now().Add(limit)
	quiet := 0
	for time.Now().Before(deadline) && quiet < 3 {
		if j.st.Idle() {
			quiet++
		} else {
			quiet = 0
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// finish drops the torrent, closes the storage and ends the job with err.
func (j *Job) finish(err error) {
	if f := j.failure(); f != nil {
		err = f
	}
	// One last sample while the peers are still connected: the final
	// snapshot keeps their byte totals for the result screen.
	j.smp.publish()
	j.smp.closing = true
	j.quiesce()
	j.t.Drop()
	j.sess.unregister(j)
	j.drainIO(time.Second)
	if cerr := j.st.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("flushing the target: %w", cerr)
	}
	if j.sess.single {
		if serr := j.sess.shutdown(); serr != nil {
			j.log.Debug("closing the client", "err", serr)
		}
	}
	j.err = err
	switch {
	case err != nil && !errors.Is(err, context.Canceled):
		j.setPhase(PhaseFailed)
		j.b.publishEvent(Event{Kind: EventFailed, Message: err.Error(), Err: err})
	case err != nil:
		j.setPhase(PhaseFailed)
		j.b.publishEvent(Event{Kind: EventFailed, Message: "stopped", Err: err})
	default:
		j.setPhase(PhaseDone)
		j.b.publishEvent(Event{Kind: EventDone})
	}
	j.smp.publish()
	j.b.close()
	close(j.done)
}
