package engine

import (
	"context"
	"ezio/engine/extent"
	"ezio/engine/server"
	"ezio/engine/torrentfile"
	"fmt"
	"os"
	"path/filepath"
)

// CheckSource makes sure a source holds every extent a torrent declares,
// before anything is served: a device or file long enough, or a directory
// with every extent file at its full length.
func CheckSource(l *torrentfile.Layout, source string) (TargetKind, error) {
	kind, err := KindOf(source)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(source); err != nil {
		return "", fmt.Errorf("source %s: %w", source, err)
	}
	switch kind {
	case TargetDir:
		for i, e := range l.Extents {
			fi, err := os.Stat(extent.FilePath(source, l, i))
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

// Seed serves an image in a session of its own until ctx ends or Stop is
// called. Unless NoTracker, the session runs the embedded tracker and
// torrent server.
func Seed(ctx context.Context, o SeedOptions) (*Job, error) {
	s, err := NewSession(SessionOptions{Tuning: o.Tuning, Logger: o.Logger, Serve: !o.NoTracker, ServerListen: o.TrackerListen, Allow: o.Allow, HoldServer: true})
	if err != nil {
		return nil, err
	}
	s.single = true
	j, err := s.Seed(ctx, o)
	if err != nil {
		s.shutdown()
		return nil, err
	}
	// The image is listed now: clients that asked meanwhile get it.
	s.OpenServer()
	return j, nil
}

// Seed adds a torrent to the session and serves it from o.Source; the
// session's server (if any) lists it.
func (s *Session) Seed(ctx context.Context, o SeedOptions) (*Job, error) {
	if o.Torrent == nil {
		return nil, fmt.Errorf("no torrent given")
	}
	_, l, err := torrentfile.Summarize(o.Torrent)
	if err != nil {
		return nil, err
	}
	l = l.WithBase(o.Base)
	kind, err := CheckSource(l, o.Source)
	if err != nil {
		return nil, err
	}
	xio, _, err := extent.Open(o.Source, l, false)
	if err != nil {
		return nil, fmt.Errorf("opening source %s: %w", o.Source, err)
	}
	st := extent.New(l, xio, true, nil, false, s.tu.AIOThreads)
	// A quarter of the cache (read-ahead on a seeder) keeps the last
	// checked pieces for the chunk reads that follow their check.
	st.SetKeep(int64(s.tu.CacheSizeMiB) << 20 / 4)
	j, err := s.newJob(RoleSeed, o.Torrent, l, st, o.Logger, s.tu.chunkSize(false))
	if err != nil {
		st.Close()
		return nil, err
	}
	j.expect = o.Expect
	if j.revealS != nil && st.Checks() {
		j.revealS.bad = st.BadPieces
	}
	if s.srv != nil {
		if !o.Unlisted {
			if err := s.srv.AddImage(o.Torrent, s.PeerPort()); err != nil {
				j.finish(err)
				return nil, err
			}
		}
		// The tracker believes a client's "completed" only when this
		// seeder saw it take the image; the status page shows what the
		// source check found.
		w := server.NewConnWitness(j.t, peerListenPort)
		j.haves.setWitness(w)
		s.srv.SetWitness(j.ih, w.Ask)
		s.srv.SetHealth(j.ih, j.health)
		s.srv.SetClients(j.ih, j.clients.members, j.StuckClients)
		if o.Expect > 0 {
			s.srv.SetExpect(o.Expect)
		}
	} else if al := o.Torrent.UpvertedAnnounceList(); len(al) > 0 {
		j.addTrackers(al)
	}
	j.log.Info("seeding", "source", o.Source, "kind", string(kind), "base", o.Base, "bytes", l.Total, "pieces", l.NumPieces, "peer_addr", j.PeerAddr(), "server", j.ServerURL())
	go j.run(ctx, j.seedMain)
	return j, nil
}

func (j *Job) seedMain(ctx context.Context) error {
	j.setPhase(PhaseSeeding)
	<-ctx.Done()
	return nil
}

// health is the seeder's bad pieces as the status page lists them.
func (j *Job) health() []server.BadPieceInfo {
	var out []server.BadPieceInfo
	for _, b := range j.st.BadPieces() {
		off, n := j.layout.PieceSpan(b.Index)
		out = append(out, server.BadPieceInfo{Piece: b.Index, Offset: off, Length: n, Reason: b.Reason})
	}
	return out
}
