package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"ezio/disks"
)

// PrepareDeploy validates the torrent against the target and runs every
// safety check, without writing anything. Deploy calls it too; the wizard
// and the CLI call it first to show a refusal before asking to confirm.
func PrepareDeploy(mi *metainfo.MetaInfo, target string, skipSafety bool) (*Layout, TargetKind, error) {
	if mi == nil {
		return nil, "", errors.New("no torrent given")
	}
	_, l, err := Summarize(mi)
	if err != nil {
		return nil, "", err
	}
	kind, err := KindOf(target)
	if err != nil {
		return nil, "", err
	}
	switch kind {
	case TargetDevice:
		size, err := SizeOf(target)
		if err != nil {
			return nil, "", fmt.Errorf("reading the size of %s: %w", target, err)
		}
		if err := l.CheckFits(size); err != nil {
			return nil, "", err
		}
		// Block devices are always checked, whatever the caller asked.
		if err := disks.CheckWritable(target, l.End); err != nil {
			return nil, "", nameHolder(target, err) // integrity: say who holds a busy device
		}
	case TargetFile, TargetDir:
		// An existing, non-empty image file stands for a disk of its size;
		// a new or empty one is sized by the image.
		if kind == TargetFile {
			if size, err := SizeOf(target); err == nil && size > 0 {
				if err := l.CheckFits(size); err != nil {
					return nil, "", err
				}
			}
		}
		if !skipSafety {
			if err := disks.CheckWritable(target, l.End); err != nil {
				return nil, "", err
			}
		}
	}
	return l, kind, nil
}

// Deploy starts receiving an image onto a target. The returned job ends
// when every piece is verified and flushed to the target (and, with
// SeedAfter, after serving others that long), or on ctx/Stop.
func Deploy(ctx context.Context, o DeployOptions) (*Job, error) {
	l, kind, err := PrepareDeploy(o.Torrent, o.Target, o.SkipSafetyChecks)
	if err != nil {
		return nil, err
	}
	ih := o.Torrent.HashInfoBytes()
	xio, _, err := openExtentIO(o.Target, l, true)
	if err != nil {
		return nil, fmt.Errorf("opening %s for writing: %w", o.Target, err)
	}
	state, warn := loadResume(ResumePath(o.Target, kind, ih), ih, l.NumPieces, xio.identity()) // integrity: record bound to the target's identity
	st := newExtentStorage(l, xio, false, state, o.Recheck, o.Tuning.withDefaults().AIOThreads)
	j, err := newJob(RoleDeploy, o.Torrent, l, st, o.Tuning, o.Logger)
	if err != nil {
		st.Close()
		return nil, err
	}
	j.resume = state
	st.log.Store(j.log)
	if warn != "" {
		j.log.Warn(warn)
	}
	if n := state.count(); n > 0 && !o.Recheck {
		j.log.Info(fmt.Sprintf("resuming: %d of %d pieces recorded on the target; hashing them from it again", n, l.NumPieces))
		for i, b := range state.bits {
			if b {
				_, k := l.PieceSpan(i)
				j.startDone += k
			}
		}
	}
	trackers := o.Torrent.UpvertedAnnounceList()
	if len(o.Trackers) > 0 {
		trackers = metainfo.AnnounceList{o.Trackers}
	}
	if len(trackers) > 0 {
		j.t.AddTrackers(trackers)
	}
	if err := j.addPeers(o.Seeders, true); err != nil {
		j.finish(err)
		return nil, err
	}
	if err := j.addPeers(o.Peers, false); err != nil {
		j.finish(err)
		return nil, err
	}
	if len(trackers) == 0 && len(o.Peers) == 0 && len(o.Seeders) == 0 {
		err := errors.New("no way to find peers: the torrent names no tracker; give --tracker URL or --peer HOST:PORT")
		j.finish(err)
		return nil, err
	}
	j.log.Info("deploying", "target", o.Target, "kind", string(kind), "bytes", l.Total, "pieces", l.NumPieces, "peer_addr", j.PeerAddr())
	if pickerDisabled {
		j.t.DownloadAll()
	}
	go j.runDeploy(ctx, o, kind)
	return j, nil
}

func (j *Job) runDeploy(ctx context.Context, o DeployOptions, kind TargetKind) {
	stopSnap := make(chan struct{})
	snapDone := make(chan struct{})
	pickDone := make(chan struct{})
	go func() { j.snapshotLoop(stopSnap); close(snapDone) }()
	go func() { newPicker(j, o.Tuning.withDefaults()).run(stopSnap); close(pickDone) }()
	endSnap := func() { close(stopSnap); <-snapDone; <-pickDone }

	if o.Recheck {
		j.setPhase(PhaseChecking)
	} else {
		j.setPhase(PhaseConnecting)
	}
	complete := j.t.Complete().On()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case <-complete:
			break wait
		case <-ctx.Done():
			endSnap()
			j.finish(ctx.Err())
			return
		case <-j.stopped:
			endSnap()
			j.finish(context.Canceled)
			return
		case <-tick.C:
			ph, _ := j.phase.Load().(Phase)
			if ph == PhaseChecking {
				if j.checkingDone() {
					j.setPhase(PhaseConnecting)
				}
				continue
			}
			j.checkRevealStall()
			if len(j.t.PeerConns()) > 0 {
				j.setPhase(PhaseDownloading)
			} else if ph != PhaseDownloading {
				j.setPhase(PhaseConnecting)
			}
		}
	}
	j.setPhase(PhaseFlushing)
	if err := j.st.flush(); err != nil {
		endSnap()
		j.finish(fmt.Errorf("flushing the target: %w", err))
		return
	}
	if !j.st.Durable() {
		endSnap()
		j.finish(errors.New("internal error: complete but not every piece is recorded as flushed"))
		return
	}
	el := time.Since(j.start)
	j.log.Info(fmt.Sprintf("all %d pieces verified and flushed in %s", j.layout.NumPieces, el.Round(100*time.Millisecond)))
	if o.SeedAfter > 0 {
		j.setPhase(PhaseSeeding)
		j.log.Info("serving others", "for", o.SeedAfter.String())
		t := time.NewTimer(o.SeedAfter)
		select {
		case <-t.C:
		case <-ctx.Done():
		case <-j.stopped:
		}
		t.Stop()
	}
	// The image is complete: the resume record has done its job, and a
	// stale one must not vouch for a disk that changes later.
	if j.resume != nil {
		if err := j.resume.remove(); err != nil {
			j.log.Warn("could not remove the resume record", "path", j.resume.path, "err", err)
		}
		j.st.dropState()
	}
	endSnap()
	j.finish(nil)
}

// revealStall is how long a client waits on a revealing seeder that
// reveals nothing while nothing else arrives either.
const revealStall = 15 * time.Second

func (j *Job) checkRevealStall() {
	rc := j.revealC
	if rc == nil || rc.disabled.Load() || len(rc.gatedConns()) == 0 {
		return
	}
	if time.Since(time.Unix(0, rc.lastReveal.Load())) > revealStall && time.Since(j.progressTime()) > revealStall {
		j.log.Warn("the seeder revealed no pieces and nothing arrived for a while; fetching from it the ordinary way")
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

var _ = slog.LevelInfo
