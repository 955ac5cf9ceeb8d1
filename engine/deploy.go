package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"ezio/disks"
	"ezio/engine/extent"
	"ezio/engine/torrentfile"
)

// PrepareDeploy validates the torrent against the target and runs every
// safety check, without writing anything. Deploy calls it too; the wizard
// and the CLI call it first to show a refusal before asking to confirm.
func PrepareDeploy(mi *metainfo.MetaInfo, target string, skipSafety bool) (*torrentfile.Layout, TargetKind, error) {
	return PrepareDeployAt(mi, target, 0, skipSafety)
}

// PrepareDeployAt is PrepareDeploy for a torrent written base bytes into
// the target (a partition inside a whole disk).
func PrepareDeployAt(mi *metainfo.MetaInfo, target string, base int64, skipSafety bool) (*torrentfile.Layout, TargetKind, error) {
	if mi == nil {
		return nil, "", errors.New("no torrent given")
	}
	if base < 0 {
		return nil, "", fmt.Errorf("negative base offset %d", base)
	}
	_, l, err := torrentfile.Summarize(mi)
	if err != nil {
		return nil, "", err
	}
	l = l.WithBase(base)
	kind, err := KindOf(target)
	if err != nil {
		return nil, "", err
	}
	switch kind {
	case TargetDevice:
		// Block devices are always checked, whatever the caller asked,
		// and the refusal (mounted, in use, system disk...) comes first.
		if err := disks.CheckWritable(target, l.End); err != nil {
			return nil, "", extent.NameHolder(target, err)
		}
		size, err := SizeOf(target)
		if err != nil {
			return nil, "", fmt.Errorf("reading the size of %s: %w", target, err)
		}
		if err := l.CheckFits(size); err != nil {
			return nil, "", err
		}
	case TargetFile, TargetDir:
		if !skipSafety {
			if err := disks.CheckWritable(target, l.End); err != nil {
				return nil, "", err
			}
		}
		// An existing, non-empty image file stands for a disk of its size;
		// a new or empty one is sized by the image.
		if kind == TargetFile {
			if size, err := SizeOf(target); err == nil && size > 0 {
				if err := l.CheckFits(size); err != nil {
					return nil, "", err
				}
			}
		}
	}
	return l, kind, nil
}

// Deploy starts receiving an image onto a target in a session of its own.
// The returned job ends when every piece is verified and flushed to the
// target (and, with SeedAfter, after serving others), or on ctx/Stop.
func Deploy(ctx context.Context, o DeployOptions) (*Job, error) {
	l, kind, err := PrepareDeployAt(o.Torrent, o.Target, o.Base, o.SkipSafetyChecks)
	if err != nil {
		return nil, err
	}
	s, err := NewSession(SessionOptions{Tuning: o.Tuning, Logger: o.Logger, MaxUnverifiedBytes: unverifiedBudget(l, o.Tuning)})
	if err != nil {
		return nil, err
	}
	s.single = true
	j, err := s.deploy(ctx, o, l, kind)
	if err != nil {
		s.shutdown()
		return nil, err
	}
	return j, nil
}

// Deploy adds a torrent to the session and writes it onto o.Target.
func (s *Session) Deploy(ctx context.Context, o DeployOptions) (*Job, error) {
	l, kind, err := PrepareDeployAt(o.Torrent, o.Target, o.Base, o.SkipSafetyChecks)
	if err != nil {
		return nil, err
	}
	return s.deploy(ctx, o, l, kind)
}

func (s *Session) deploy(ctx context.Context, o DeployOptions, l *torrentfile.Layout, kind TargetKind) (*Job, error) {
	ih := o.Torrent.HashInfoBytes()
	trackers := o.Torrent.UpvertedAnnounceList()
	if len(o.Trackers) > 0 {
		trackers = metainfo.AnnounceList{o.Trackers}
	}
	if len(trackers) == 0 && len(o.Peers) == 0 && len(o.Seeders) == 0 {
		return nil, ErrNoPeerSource
	}
	for _, a := range append(append([]string{}, o.Seeders...), o.Peers...) {
		if _, err := resolveAddrPort(a); err != nil {
			return nil, fmt.Errorf("peer %q: %w", a, err)
		}
	}
	xio, _, err := extent.Open(o.Target, l, true)
	if err != nil {
		return nil, fmt.Errorf("opening %s for writing: %w", o.Target, err)
	}
	state, warn := extent.LoadResume(ResumePath(o.Target, kind, ih), ih, l.NumPieces, xio.Identity())
	st := extent.New(l, xio, false, state, o.Recheck, s.tu.AIOThreads)
	// Pieces in flight are held in memory up to the cache size, shared by
	// the session's deploys (see extent.Budget); the library's
	// unverified-bytes budget bounds them too.
	st.UseBudget(s.held)
	j, err := s.newJob(RoleDeploy, o.Torrent, l, st, o.Logger, s.tu.chunkSize(o.EzioRoom))
	if err != nil {
		st.Close()
		return nil, err
	}
	j.resume = state
	j.seeders, j.peers = o.Seeders, o.Peers
	st.SetLogger(j.log)
	if warn != "" {
		j.log.Warn(warn)
	}
	if n := state.Count(); n > 0 && !o.Recheck {
		j.log.Info(fmt.Sprintf("resuming: %d of %d pieces recorded on the target; hashing them from it again", n, l.NumPieces))
		for i := range l.NumPieces {
			if state.Claims(i) {
				_, k := l.PieceSpan(i)
				j.startDone += k
			}
		}
	}
	if len(trackers) > 0 {
		j.addTrackers(trackers)
	}
	j.addPeers(o.Seeders, true)
	j.addPeers(o.Peers, false)
	j.log.Info("deploying", "target", o.Target, "kind", string(kind), "base", o.Base, "bytes", l.Total, "pieces", l.NumPieces, "peer_addr", j.PeerAddr())
	if s.tu.Strategy.PickerOff {
		j.t.DownloadAll()
	}
	go j.run(ctx, func(ctx context.Context) error { return j.deployMain(ctx, o) })
	return j, nil
}

func (j *Job) deployMain(ctx context.Context, o DeployOptions) error {
	if o.Recheck {
		j.setPhase(PhaseChecking)
	} else {
		j.setPhase(PhaseConnecting)
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	lv := liveness{j: j, timeout: timeout}
	complete := j.t.Complete().On()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case <-complete:
			break wait
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			ph, _ := j.phase.Load().(Phase)
			if ph == PhaseChecking {
				if j.checkingDone() {
					j.setPhase(PhaseConnecting)
				}
				continue
			}
			j.checkRevealStall()
			j.checkUnservable(time.Now())
			if err := lv.check(time.Now()); err != nil {
				return err
			}
		}
	}
	j.lostAt.Store(0)
	j.setPhase(PhaseFlushing)
	if err := j.st.Flush(); err != nil {
		return fmt.Errorf("flushing the target: %w", err)
	}
	if !j.st.Durable() {
		return errors.New("internal error: complete but not every piece is recorded as flushed")
	}
	el := time.Since(j.start)
	j.log.Info(fmt.Sprintf("all %d pieces verified and flushed in %s", j.layout.NumPieces, el.Round(100*time.Millisecond)))
	j.seedAfter(ctx, o.SeedAfter)
	// The image is complete: the resume record has done its job, and a
	// stale one must not vouch for a disk that changes later.
	if j.resume != nil {
		if err := j.resume.Remove(); err != nil {
			j.log.Warn("could not remove the resume record", "path", j.resume.Path(), "err", err)
		}
		j.st.DropState()
	}
	return nil
}

// revealStall is how long a client waits on a revealing seeder that
// reveals nothing while nothing else arrives either.
const revealStall = 15 * time.Second

func (j *Job) checkRevealStall() {
	rc := j.revealC
	if rc == nil || rc.disabled.Load() || len(rc.gatedConns()) == 0 {
		return
	}
	// The seeder's window covers every torrent of this session (a disk's
	// partitions, revealgroup.go): while it feeds one partition another
	// may hear nothing, so the session's latest reveal and progress count.
	lastReveal, progress := rc.lastReveal.Load(), j.progressAt.Load()
	for _, o := range j.sess.Jobs() {
		if o.role == RoleDeploy && o.revealC != nil && !o.revealC.disabled.Load() {
			lastReveal = max(lastReveal, o.revealC.lastReveal.Load())
			progress = max(progress, o.progressAt.Load())
		}
	}
	if time.Since(time.Unix(0, lastReveal)) > revealStall && time.Since(time.Unix(0, progress)) > revealStall {
		j.log.Warn("the seeder revealed no pieces and nothing arrived for a while; fetching from it the ordinary way")
		// The connections close and the redial loop opens new, ordinary ones.
		rc.giveUp()
	}
}

// checkingDone tells whether the startup re-verification has finished.
func (j *Job) checkingDone() bool {
	for _, r := range j.t.PieceStateRuns() {
		if r.Hashing || r.QueuedForHash || r.Marking || !r.Ok {
			return false
		}
	}
	return true
}

// RemoveResume deletes a target's resume record, if any.
func RemoveResume(target string, mi *metainfo.MetaInfo) error {
	kind, err := KindOf(target)
	if err != nil {
		return err
	}
	err = os.Remove(ResumePath(target, kind, mi.HashInfoBytes()))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
