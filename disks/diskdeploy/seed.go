package diskdeploy

// Serving a disk image: to the room (`ezio seed DIR`, the wizard's Serve)
// and to this machine's own deploy from a local directory.

import (
	"context"
	"errors"
	"ezio/disks/diskimage"
	"ezio/engine"
	"ezio/engine/server"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ImageError is a disk image that cannot be served as it is: its manifest
// or a partition's torrent is missing or wrong. Nothing was started.
type ImageError struct {
	Dir string
	Err error
}

func (e *ImageError) Error() string { return e.Err.Error() }
func (e *ImageError) Unwrap() error { return e.Err }

// Seeding is a disk image being served: one seed job per partition.
type Seeding struct {
	Manifest *diskimage.Manifest
	Jobs     []*engine.Job
	Server   *server.Server // nil with NoTracker
	Session  *engine.Session
}

// Stop ends every job, the client and the server.
func (s *Seeding) Stop() {
	if s.Session != nil {
		s.Session.Close()
	}
}

// SeedOptions describe the seeding of a disk image directory.
type SeedOptions struct {
	TrackerListen string // "" = :6969
	NoTracker     bool
	// Allow, when not empty, limits peers, the tracker and the image
	// server to these networks (loopback always).
	Allow []netip.Prefix
	// Expect is how many clients make the room (0: not said): the status
	// page and /images.json show "k of N".
	Expect int
	// SkipMissing leaves out partitions whose extent directory is absent
	// (a copy of an image's metadata only) instead of refusing.
	SkipMissing bool
	Tuning      engine.Tuning
	Logger      *slog.Logger
}

// Seed serves every partition of the disk image in dir, with one tracker
// and image server for all of them: `ezio seed DIR`, the wizard's Serve,
// and a local image served to this machine's own deploy. An image that
// cannot be served as it is comes back as an *ImageError.
func Seed(ctx context.Context, dir string, o SeedOptions) (_ *Seeding, err error) {
	m, err := diskimage.LoadDir(dir)
	if err != nil {
		return nil, &ImageError{Dir: dir, Err: err}
	}
	// Held: a client asking for the image while its partitions are being
	// added waits for them instead of hearing "not found".
	sess, err := engine.NewSession(engine.SessionOptions{Tuning: o.Tuning, Logger: o.Logger, Serve: !o.NoTracker, ServerListen: o.TrackerListen, Allow: o.Allow, HoldServer: true})
	if err != nil {
		return nil, err
	}
	s := &Seeding{Manifest: m, Session: sess, Server: sess.Server()}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	fsys := os.DirFS(dir)
	var parts []server.DiskPart
	for _, p := range m.Partitions {
		if !p.HasData() {
			continue
		}
		if o.SkipMissing {
			if _, err := os.Stat(filepath.Join(dir, p.ImageDir)); errors.Is(err, fs.ErrNotExist) {
				continue
			}
		}
		mi, err := LoadPartitionTorrent(fsys, p)
		if err != nil {
			return nil, &ImageError{Dir: dir, Err: err}
		}
		// Listed by the disk image below, not as images of their own.
		j, err := sess.Seed(ctx, engine.SeedOptions{Torrent: mi, Source: filepath.Join(dir, p.ImageDir), Unlisted: true, Logger: o.Logger})
		if err != nil {
			return nil, &ImageError{Dir: dir, Err: fmt.Errorf("partition %s: %w", p.Name, err)}
		}
		s.Jobs = append(s.Jobs, j)
		parts = append(parts, server.DiskPart{Name: p.Name, Number: p.Number, Start: p.Start, Size: p.Size, FS: p.Filesystem, MI: mi})
	}
	if s.Server != nil {
		files, err := diskimage.ClientFiles(dir, m)
		if err != nil {
			return nil, err
		}
		for _, p := range m.Partitions {
			if !p.HasData() {
				parts = append(parts, server.DiskPart{Name: p.Name, Number: p.Number, Start: p.Start, Size: p.Size, FS: p.Filesystem})
			}
		}
		if o.Expect > 0 {
			s.Server.SetExpect(o.Expect)
		}
		if err := s.Server.AddDiskImage(server.DiskImage{Name: m.Name, Manifest: files[diskimage.ManifestFile], Parts: parts, PeerPort: sess.PeerPort(), Files: files}); err != nil {
			return nil, err
		}
	}
	sess.OpenServer()
	return s, nil
}

// ServeLocal serves the local image directory dir to this machine's
// deploy (LocalSeeders), adding it to seeders. When no peer, seeder
// or tracker was named (noOthers and no seeders yet), the deploy is alone
// and a default seeding policy becomes "leave once verified": waiting for
// others to ask would only delay the end.
func ServeLocal(ctx context.Context, dir string, tu engine.Tuning, log *slog.Logger, noOthers bool, seeders *[]string, seedAfter *time.Duration) (stop func(), err error) {
	alone := noOthers && len(*seeders) == 0
	local, stop, err := LocalSeeders(ctx, dir, tu, log)
	if err != nil {
		return nil, err
	}
	*seeders = append(*seeders, local...)
	if alone && *seedAfter == engine.SeedUntilIdle {
		*seedAfter = 0
	}
	return stop, nil
}

// LocalSeeders serves a local disk image directory (a USB stick, an
// image store) to this machine's own deploy, over loopback, with no
// tracker: the deploy reads it as a trusted seeder, every piece still
// hashed before it is sent and again when it arrives, and any other peer
// it was given adds to it. A partition whose extents the directory lacks
// (a copy of the metadata only) comes from those peers alone. stop ends
// the serving.
func LocalSeeders(ctx context.Context, dir string, tu engine.Tuning, log *slog.Logger) (seeders []string, stop func(), err error) {
	tu.ListenAddr = "127.0.0.1:0"
	tu.MaxUploadRate = 0
	s, err := Seed(ctx, dir, SeedOptions{NoTracker: true, SkipMissing: true, Tuning: tu, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	seen := map[string]bool{}
	for _, j := range s.Jobs {
		if a := j.PeerAddr(); !seen[a] {
			seen[a] = true
			seeders = append(seeders, a)
		}
	}
	return seeders, s.Stop, nil
}

// IsImageSource says whether a deploy source is a disk image: a local
// directory with ezio-disk.json, or a server's /images/NAME that serves
// one (a partition image there is not).
func IsImageSource(ctx context.Context, src string) bool {
	if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") {
		if !strings.Contains(src, "/images/") {
			return false
		}
		f, err := SourceFS(ctx, src).Open(diskimage.ManifestFile)
		if err != nil {
			return false
		}
		f.Close()
		return true
	}
	return diskimage.IsDiskImage(src)
}

// DeployLocal is Deploy, with a local image directory (a USB stick)
// served to it over loopback first, as `ezio deploy DIR DISK` does.
func DeployLocal(ctx context.Context, img *Image, plan *diskimage.Plan, o Options) (*Run, error) {
	if IsRemote(img.Source) || img.Source == "" {
		return Deploy(ctx, img, plan, o)
	}
	stop, err := ServeLocal(ctx, img.Source, o.Tuning, o.Logger, len(o.Peers) == 0 && len(o.Trackers) == 0, &o.Seeders, &o.SeedAfter)
	if err != nil {
		return nil, err
	}
	run, err := Deploy(ctx, img, plan, o)
	if err != nil {
		stop()
		return nil, err
	}
	go func() {
		<-run.Done()
		stop()
	}()
	return run, nil
}
