package daemon

import (
	"context"
	"sync"
	"time"

	"ezio/engine"
	"ezio/engine/ezioapi"
)

// entry is one torrent of the daemon and what EZIO's status needs that a
// job's snapshot does not keep: when data last moved, when it finished.
type entry struct {
	job      *engine.Job
	savePath string
	added    time.Time

	mu         sync.Mutex
	upBytes    int64
	downBytes  int64
	lastUp     time.Time
	lastDown   time.Time
	finishedAt time.Time
	failed     bool // the job had failed before the daemon stopped it
	stopping   bool
}

func newEntry(j *engine.Job, savePath string, now time.Time) *entry {
	e := &entry{job: j, savePath: savePath, added: now}
	if j.Role() == engine.RoleSeed {
		e.finishedAt = now
	}
	return e
}

// watch follows the job's snapshots until it ends. Its subscription ends
// with it: a subscription lives until its context ends, and one left to
// the daemon's context kept a goroutine and the whole removed job (its
// layout, buffers and peers' records) for the daemon's life.
func (e *entry) watch(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	snaps, _ := e.job.Subscribe(ctx)
	for {
		select {
		case s := <-snaps.C():
			e.observe(s, time.Now())
		case <-e.job.Done():
			e.observe(e.job.Snapshot(), time.Now())
			return
		case <-ctx.Done():
			return
		}
	}
}

func (e *entry) observe(s engine.Snapshot, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s.BytesUploaded > e.upBytes {
		e.upBytes, e.lastUp = s.BytesUploaded, now
	}
	if s.BytesDownloaded > e.downBytes {
		e.downBytes, e.lastDown = s.BytesDownloaded, now
	}
	if e.finishedAt.IsZero() && finished(s) {
		e.finishedAt = now
	}
	if s.Phase == engine.PhaseFailed && !e.stopping {
		e.failed = true
	}
}

func (e *entry) markStopping() {
	e.mu.Lock()
	e.stopping = true
	e.mu.Unlock()
}

func (e *entry) finishedAtTime() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.finishedAt
}

func (e *entry) failedBefore() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.failed
}

// finished: every piece verified and flushed to the target.
func finished(s engine.Snapshot) bool {
	switch s.Phase {
	case engine.PhaseSeeding, engine.PhaseDone:
		return s.PiecesDone == s.PiecesTotal
	}
	return false
}

// libtorrent's torrent_status::state_t numbers, which EZIO's tools print.
const (
	stateError       = 0 // not a libtorrent state: the job failed (see the log)
	stateChecking    = 1
	stateDownloading = 3
	stateFinished    = 4
	stateSeeding     = 5
)

func stateOf(p engine.Phase) int64 {
	switch p {
	case engine.PhaseStarting, engine.PhaseChecking:
		return stateChecking
	case engine.PhaseConnecting, engine.PhaseDownloading, engine.PhaseFlushing:
		return stateDownloading
	case engine.PhaseSeeding:
		return stateSeeding
	case engine.PhaseDone:
		return stateFinished
	}
	return stateError
}

// status is the EZIO view of the torrent at now.
func (e *entry) status(now time.Time) *ezioapi.Torrent {
	s := e.job.Snapshot()
	e.mu.Lock()
	defer e.mu.Unlock()
	return buildStatus(s, e, now)
}

// buildStatus maps a snapshot onto EZIO's Torrent message; e.mu is held.
func buildStatus(s engine.Snapshot, e *entry, now time.Time) *ezioapi.Torrent {
	since := func(t time.Time) int64 {
		if t.IsZero() {
			return -1
		}
		return int64(now.Sub(t) / time.Second)
	}
	t := &ezioapi.Torrent{
		Hash:                 e.job.InfoHash(),
		Name:                 e.job.Name(),
		DownloadRate:         int64(s.DownloadRate),
		UploadRate:           int64(s.UploadRate),
		ActiveTime:           int64(now.Sub(e.added) / time.Second),
		NumPeers:             int64(s.NumPeers),
		State:                stateOf(s.Phase),
		TotalDone:            s.BytesDone,
		Total:                s.BytesTotal,
		NumPieces:            int64(s.PiecesDone),
		TotalPayloadDownload: max(s.BytesDownloaded, e.downBytes),
		TotalPayloadUpload:   max(s.BytesUploaded, e.upBytes),
		IsPaused:             s.Paused,
		SavePath:             e.savePath,
		LastUpload:           since(e.lastUp),
		LastDownload:         since(e.lastDown),
	}
	if s.Phase == "" {
		t.State = stateChecking
	}
	if s.BytesTotal > 0 {
		t.Progress = float64(s.BytesDone) / float64(s.BytesTotal)
	}
	if !e.finishedAt.IsZero() {
		t.IsFinished = true
		t.FinishedTime = int64(now.Sub(e.finishedAt) / time.Second)
		t.SeedingTime = t.FinishedTime
	}
	if s.Phase == engine.PhaseFailed {
		t.State, t.IsFinished = stateError, false
		if e.stopping && !e.failed {
			// Stopped by Shutdown: no longer running, not broken.
			t.State = stateFinished
			t.IsFinished = !e.finishedAt.IsZero()
		}
	}
	return t
}
