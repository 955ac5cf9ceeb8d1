package diskdeploy

// What a disk deploy shows: the state of each partition and the totals.

import (
	"time"

	"ezio/engine"
)

// State is where a partition of a disk deploy is, as the dashboard and
// the progress line name it.
type State string

const (
	StateWaiting  State = "waiting"  // no piece written yet
	StateWriting  State = "writing"  // pieces arriving
	StateVerified State = "verified" // every piece verified and flushed
	StateFailed   State = "failed"
	StateNoData   State = "no data" // swap or extended: recreated, not copied
)

// PartProgress is one partition's row.
type PartProgress struct {
	Number      int
	Name        string
	FS          string
	State       State
	Phase       engine.Phase
	BytesDone   int64
	BytesTotal  int64
	PiecesDone  int
	PiecesTotal int
	// BytesGot counts bytes received but not yet verified too (a 16 MiB
	// piece takes a while to complete), so a bar moves as data flows:
	// never below BytesDone, never above BytesTotal, never backwards.
	BytesGot int64
	Rate     float64
	UpRate   float64
	Peers    int
	Uploaded int64
}

// Progress is the whole disk: totals and one row per partition.
type Progress struct {
	BytesDone, BytesTotal int64
	BytesGot              int64 // as PartProgress.BytesGot, summed
	Rate, UpRate          float64
	Uploaded              int64
	Peers                 int // the most any partition is connected to
	ETA                   time.Duration
	// Lost is how long ago the last source of a partition still waiting
	// for one was lost (the longest such wait), 0 while none waits.
	Lost    time.Duration
	Parts   []PartProgress
	Seeding bool // every partition verified, some serving others
}

// Progress is the disk's totals and one row per partition, data or not.
func (r *Run) Progress() Progress {
	var pr Progress
	for i, p := range r.Parts {
		row := PartProgress{Number: p.Partition.Number, Name: p.Partition.Name, FS: p.Partition.Filesystem, State: StateNoData}
		if p.Job != nil {
			s := p.Job.Snapshot()
			row.Phase, row.BytesDone, row.BytesTotal = s.Phase, s.BytesDone, s.BytesTotal
			row.BytesGot = r.received(i, s)
			pr.BytesGot += row.BytesGot
			row.PiecesDone, row.PiecesTotal = s.PiecesDone, s.PiecesTotal
			row.Rate, row.UpRate, row.Peers, row.Uploaded = s.DownloadRate, s.UploadRate, s.NumPeers, s.BytesUploaded
			row.State = partState(s, r.failedAt(i))
			pr.BytesDone += s.BytesDone
			pr.BytesTotal += s.BytesTotal
			pr.Rate += s.DownloadRate
			pr.UpRate += s.UploadRate
			pr.Uploaded += s.BytesUploaded
			pr.Peers = max(pr.Peers, s.NumPeers)
			if s.Phase == engine.PhaseWaiting {
				pr.Lost = max(pr.Lost, time.Duration(s.LostSeconds*float64(time.Second)))
			}
		}
		pr.Parts = append(pr.Parts, row)
	}
	pr.ETA = -1
	if left := pr.BytesTotal - pr.BytesGot; left <= 0 {
		pr.ETA = 0
	} else if pr.Rate >= 1024 {
		pr.ETA = time.Duration(float64(left) / pr.Rate * float64(time.Second))
	}
	select {
	case <-r.verified:
		if r.failedCount() == 0 {
			for _, p := range pr.Parts {
				pr.Seeding = pr.Seeding || p.Phase == engine.PhaseSeeding
			}
		}
	default:
	}
	return pr
}

func (r *Run) failedAt(i int) bool {
	select {
	case <-r.verified:
		return r.failed[i] != nil
	default:
		return false
	}
}

func (r *Run) failedCount() int {
	n := 0
	for _, e := range r.failed {
		if e != nil {
			n++
		}
	}
	return n
}

func partState(s engine.Snapshot, failed bool) State {
	switch {
	case failed || s.Phase == engine.PhaseFailed:
		return StateFailed
	case s.Phase == engine.PhaseSeeding || s.Phase == engine.PhaseDone:
		return StateVerified
	case s.PiecesTotal > 0 && s.PiecesDone == s.PiecesTotal && s.Phase != engine.PhaseFlushing:
		return StateVerified
	case s.BytesDone > 0 || s.BytesWritten > 0 || s.Phase == engine.PhaseDownloading || s.Phase == engine.PhaseFlushing:
		return StateWriting
	}
	return StateWaiting
}
