// Package demo runs a whole swarm on loopback: a seeder and clients, each
// its own session (its own "machine"), on a random image in a temporary
// directory. It drives engine jobs headlessly; the wizard and ezio demo
// only render its seeder.
package demo

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"ezio/engine"
	"ezio/engine/torrentfile"
)

// Options shape the demo swarm.
type Options struct {
	Clients int
	Size    int64         // bytes of image data
	Stagger time.Duration // between client starts, so the swarm grows visibly
	Dir     string        // parent of the temporary directory; "" = os.TempDir()
	Tuning  engine.Tuning // cache and threads; listen addresses are forced to loopback
	Logger  *slog.Logger
}

// DefaultSize is enough data to watch a swarm for a while on loopback.
const DefaultSize = 512 << 20

// Demo is a seeder and its clients on loopback, in one temporary directory.
type Demo struct {
	Seeder  *engine.Job
	Clients int
	dir     string
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	clients []*engine.Job
}

// demoExtents places the image's data in a few extents at offsets that
// are not piece-aligned, as a real partclone capture would.
func demoExtents(size int64) []torrentfile.Extent {
	n := int64(4)
	if size < 4<<20 {
		n = 1
	}
	per := size / n
	var out []torrentfile.Extent
	off := int64(0x100000 + 7*512)
	for i := int64(0); i < n; i++ {
		l := per
		if i == n-1 {
			l = size - per*(n-1)
		}
		out = append(out, torrentfile.Extent{Offset: off, Length: l})
		off += l + 3*4096 + int64(i)*65536 // a hole between extents
	}
	return out
}

func writeRandom(path string, n int64, r *rand.ChaCha8) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for n > 0 {
		k := min(int64(len(buf)), n)
		r.Read(buf[:k])
		if _, err := f.Write(buf[:k]); err != nil {
			f.Close()
			return err
		}
		n -= k
	}
	return f.Close()
}

// Start builds a random image, starts the seeder and, one by one, the
// clients. Close stops it all and removes the files.
func Start(ctx context.Context, o Options) (*Demo, error) {
	if o.Clients <= 0 {
		o.Clients = 3
	}
	if o.Size <= 0 {
		o.Size = DefaultSize
	}
	dir, err := os.MkdirTemp(o.Dir, "ezio-demo-")
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Demo, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	img := filepath.Join(dir, "demo")
	if err := os.Mkdir(img, 0o755); err != nil {
		return fail(err)
	}
	var seed [32]byte
	r := rand.NewChaCha8(seed)
	for _, e := range demoExtents(o.Size) {
		if err := writeRandom(filepath.Join(img, torrentfile.FormatOffset(e.Offset)), e.Length, r); err != nil {
			return fail(fmt.Errorf("writing the demo image: %w", err))
		}
	}
	mi, err := engine.CreateTorrent(ctx, img, engine.CreateOptions{Name: "demo", PieceLength: 1 << 20})
	if err != nil {
		return fail(fmt.Errorf("hashing the demo image: %w", err))
	}
	dctx, cancel := context.WithCancel(ctx)
	tu := o.Tuning
	tu.ListenAddr = "127.0.0.1:0"
	seeder, err := engine.Seed(dctx, engine.SeedOptions{Torrent: mi, Source: img, TrackerListen: "127.0.0.1:0", Tuning: tu, Logger: o.Logger})
	if err != nil {
		cancel()
		return fail(fmt.Errorf("starting the demo seeder: %w", err))
	}
	d := &Demo{Seeder: seeder, Clients: o.Clients, dir: dir, cancel: cancel}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer d.cleanup()
		d.run(dctx, mi, o, tu)
	}()
	// However the seeder ends (done, stopped from the dashboard), the
	// clients end with it.
	go func() {
		select {
		case <-seeder.Done():
			cancel()
		case <-dctx.Done():
		}
	}()
	return d, nil
}

// run starts the clients, waits for all of them to hold the whole image,
// lets the seeder's tracker see it, then ends the seeder.
func (d *Demo) run(ctx context.Context, mi *metainfo.MetaInfo, o Options, tu engine.Tuning) {
	if o.Stagger <= 0 {
		o.Stagger = 2 * time.Second
	}
	var complete []<-chan struct{}
	for i := 0; i < o.Clients; i++ {
		if i > 0 {
			select {
			case <-time.After(o.Stagger):
			case <-ctx.Done():
				return
			}
		}
		// Clients keep serving each other after they finish, until the end.
		j, err := engine.Deploy(ctx, engine.DeployOptions{
			Torrent: mi, Target: filepath.Join(d.dir, fmt.Sprintf("client%d.img", i+1)),
			Trackers: []string{d.Seeder.TrackerURL()}, Seeders: []string{d.Seeder.PeerAddr()}, EzioRoom: true,
			SeedAfter: time.Hour, SkipSafetyChecks: true, Tuning: tu, Logger: o.Logger,
		})
		if err != nil {
			if o.Logger != nil {
				o.Logger.Error("demo client did not start", "client", i+1, "err", err)
			}
			continue
		}
		d.mu.Lock()
		d.clients = append(d.clients, j)
		d.mu.Unlock()
		complete = append(complete, seeding(ctx, j))
	}
	for _, c := range complete {
		select {
		case <-c:
		case <-ctx.Done():
			return
		}
	}
	// Let the tracker hear every client's "completed" before the end.
	deadline := time.After(3 * AnnounceWait)
	for {
		s := d.Seeder.Snapshot()
		if len(complete) > 0 && s.FleetDone >= len(complete) {
			break
		}
		select {
		case <-deadline:
		case <-time.After(250 * time.Millisecond):
			continue
		case <-ctx.Done():
			return
		}
		break
	}
	select {
	case <-time.After(2 * time.Second): // a moment to see "3 of 3 done"
	case <-ctx.Done():
		return
	}
	d.Seeder.Stop()
}

// AnnounceWait is how long a client may take to tell the tracker.
const AnnounceWait = 5 * time.Second

// seeding is closed when j holds the whole image (or has ended).
func seeding(ctx context.Context, j *engine.Job) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		snaps, _ := j.Subscribe(ctx)
		for {
			select {
			case s := <-snaps.C():
				if s.Phase == engine.PhaseSeeding || s.Phase == engine.PhaseDone {
					return
				}
			case <-j.Done():
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

// Dir is the temporary directory (for tests).
func (d *Demo) Dir() string { return d.dir }

// cleanup stops every job and removes the temporary files.
func (d *Demo) cleanup() {
	d.Seeder.Stop()
	d.mu.Lock()
	cs := append([]*engine.Job(nil), d.clients...)
	d.mu.Unlock()
	for _, c := range cs {
		c.Stop()
	}
	<-d.Seeder.Done()
	for _, c := range cs {
		<-c.Done()
	}
	os.RemoveAll(d.dir)
}

// Close stops the demo and waits until its files are gone.
func (d *Demo) Close() {
	d.cancel()
	d.wg.Wait()
}

// DefaultRate caps each machine's upload in a demo, like a LAN link: on
// loopback a swarm would otherwise end before the eye can follow it. The
// menu's Demo and "ezio demo" both use it.
const DefaultRate = 20 << 20
