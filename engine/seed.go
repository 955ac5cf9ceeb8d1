package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// CheckSource makes sure a source holds every extent a torrent declares,
// before anything is served: a device or file long enough, or a directory
// with every extent file at its full length.
func CheckSource(l *Layout, source string) (TargetKind, error) {
	kind, err := KindOf(source)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(source); err != nil {
		return "", fmt.Errorf("source %s: %w", source, err)
	}
	switch kind {
	case TargetDir:
		d := &dirIO{dir: source, l: l}
		for i, e := range l.Extents {
			fi, err := os.Stat(d.path(i))
			if err != nil {
				return kind, fmt.Errorf("source %s lacks extent file %s: %w", source, l.FileNames[i], err)
			}
			if fi.Size() < e.Length {
				return kind, fmt.Errorf("source extent %s is %d bytes, the torrent says %d", filepath.Join(source, l.FileNames[i]), fi.Size(), e.Length)
			}
		}
	default:
		size, err := SizeOf(source)
		if err != nil {
			return kind, err
		}
		if size < l.End {
			return kind, fmt.Errorf("source %s is %d bytes but the image's extents reach byte %d: wrong source for this torrent?", source, size, l.End)
		}
	}
	return kind, nil
}

// Seed serves an image from a block device, an image file or a partclone
// extent directory until ctx ends or Stop is called. Unless NoTracker, it
// runs the embedded tracker and torrent server.
func Seed(ctx context.Context, o SeedOptions) (*Job, error) {
	if o.Torrent == nil {
		return nil, fmt.Errorf("no torrent given")
	}
	_, l, err := Summarize(o.Torrent)
	if err != nil {
		return nil, err
	}
	kind, err := CheckSource(l, o.Source)
	if err != nil {
		return nil, err
	}
	xio, _, err := openExtentIO(o.Source, l, false)
	if err != nil {
		return nil, fmt.Errorf("opening source %s: %w", o.Source, err)
	}
	st := newExtentStorage(l, xio, true, nil, false, o.Tuning.withDefaults().AIOThreads)
	j, err := newJob(RoleSeed, o.Torrent, l, st, o.Tuning, o.Logger)
	if err != nil {
		st.Close()
		return nil, err
	}
	if !o.NoTracker {
		srv, err := NewServer(o.TrackerListen, o.Logger)
		if err != nil {
			j.finish(err)
			return nil, err
		}
		j.tracker = srv
		if err := srv.AddImage(o.Torrent, j.cl.LocalPort()); err != nil {
			j.finish(err)
			return nil, err
		}
	} else if al := o.Torrent.UpvertedAnnounceList(); len(al) > 0 {
		j.t.AddTrackers(al)
	}
	j.log.Info("seeding", "source", o.Source, "kind", string(kind), "bytes", l.Total, "pieces", l.NumPieces, "peer_addr", j.PeerAddr(), "server", j.ServerURL())
	go j.runSeed(ctx)
	return j, nil
}

func (j *Job) runSeed(ctx context.Context) {
	stopSnap := make(chan struct{})
	snapDone := make(chan struct{})
	go func() { j.snapshotLoop(stopSnap); close(snapDone) }()
	if j.revealS != nil {
		go j.revealS.run(j.t, j.layout.NumPieces, stopSnap)
	}
	j.setPhase(PhaseSeeding)
	select {
	case <-ctx.Done():
	case <-j.stopped:
	}
	close(stopSnap)
	<-snapDone
	j.finish(nil)
}

// seederIdle is how long a seeder may see no client before ServeUntilDone
// gives up waiting.
var _ = time.Second
