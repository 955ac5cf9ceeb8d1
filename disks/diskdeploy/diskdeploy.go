// Package diskdeploy writes a whole-disk image onto a disk through the
// engine: the partition table first, then one deploy job per partition in
// one BitTorrent session, then the finishing touches of diskimage.Finish.
// The headless CLI and the wizard both drive a deploy through it, so the
// order of the steps and the safety checks are the same for both.
package diskdeploy

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"ezio/disks/diskimage"
	"ezio/disks/lvm"
	"ezio/disks/table"
	"ezio/engine"
	"ezio/engine/server"
	"ezio/engine/torrentfile"
)

// Jobs starts the deploy job of one partition: an *engine.Session, one
// BitTorrent client for every partition of the disk.
type Jobs interface {
	Deploy(ctx context.Context, o engine.DeployOptions) (*engine.Job, error)
}

// Image is a disk image opened for deploying: its manifest, the files of
// its metadata (a local directory or the seeder's over HTTP) and each
// data partition's torrent, by partition number.
type Image struct {
	Source   string
	FS       fs.FS
	Manifest *diskimage.Manifest
	Torrents map[int]*metainfo.MetaInfo
	// Trackers are the seeder's own tracker when the image came from its
	// HTTP server: where its seed jobs and the other clients are.
	Trackers []string
	// Seeders are that server's BitTorrent address (ServerSeeders).
	Seeders []string
	// Need is the smallest disk that takes the image: the end of its last
	// partition (and the backup GPT).
	Need int64
}

// IsRemote says whether src is a seeder's URL rather than a directory.
func IsRemote(src string) bool {
	return strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://")
}

// SourceFS is the files of the image at src: a local directory or the
// seeder's http://HOST:PORT/images/NAME.
func SourceFS(ctx context.Context, src string) fs.FS {
	if IsRemote(src) {
		return HTTPFS{Ctx: ctx, Base: strings.TrimRight(src, "/")}
	}
	return os.DirFS(src)
}

// Open reads the manifest and the torrents of the disk image at src.
func Open(ctx context.Context, src string) (*Image, error) {
	img, err := Load(SourceFS(ctx, src))
	if err != nil {
		return nil, err
	}
	img.Source = src
	if IsRemote(src) {
		if u, err := url.Parse(src); err == nil {
			img.Trackers = []string{u.Scheme + "://" + u.Host + "/announce"}
		}
		img.Seeders = ServerSeeders(ctx, src)
	}
	return img, nil
}

// ServerSeeders is the BitTorrent address of the seeder that serves the
// image at src (http://HOST:PORT/images/NAME), as the client reaches it:
// every partition's job keeps it as a trusted source and dials it again
// whenever it is not connected, as a partition deploy does with the
// address its torrent came with. Nil when src says no peer port.
func ServerSeeders(ctx context.Context, src string) []string {
	u, err := url.Parse(src)
	if err != nil || !IsRemote(src) {
		return nil
	}
	b, err := engine.FetchFile(ctx, src, 30*time.Second, 1<<20)
	if err != nil {
		return nil
	}
	var info server.ImageInfo
	if json.Unmarshal(b, &info) != nil || info.PeerPort <= 0 || info.PeerPort > 65535 {
		return nil
	}
	return []string{net.JoinHostPort(u.Hostname(), strconv.Itoa(info.PeerPort))}
}

// Load reads the manifest and the torrents of a disk image from fsys.
func Load(fsys fs.FS) (*Image, error) {
	m, err := diskimage.Load(fsys)
	if err != nil {
		return nil, err
	}
	img := &Image{FS: fsys, Manifest: m, Torrents: map[int]*metainfo.MetaInfo{}, Need: m.End()}
	if b, err := fs.ReadFile(fsys, m.PartitionTable); err == nil {
		if t, err := table.ParseDump(string(b)); err == nil {
			img.Need = max(img.Need, t.Need())
		}
	}
	for _, p := range m.Partitions {
		if !p.HasData() {
			continue
		}
		mi, err := LoadPartitionTorrent(fsys, p)
		if err != nil {
			return nil, err
		}
		img.Torrents[p.Number] = mi
	}
	return img, nil
}

// Prepare runs every check of a disk deploy onto target, writing nothing.
func (img *Image) Prepare(ctx context.Context, target string) (*diskimage.Plan, error) {
	return diskimage.PrepareDeploy(ctx, img.Manifest, img.FS, target)
}

// LoadPartitionTorrent reads a partition's torrent out of an image
// directory.
func LoadPartitionTorrent(fsys fs.FS, p diskimage.Partition) (*metainfo.MetaInfo, error) {
	f, err := fsys.Open(p.Torrent)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := engine.ReadTorrentLimited(f, -1)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.Torrent, err)
	}
	mi, err := torrentfile.ParseTorrent(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.Torrent, err)
	}
	if _, _, err := torrentfile.Summarize(mi); err != nil {
		return nil, fmt.Errorf("%s: %w", p.Torrent, err)
	}
	return mi, nil
}

// Options describe where the partitions' data comes from and what a
// client does once it has it.
type Options struct {
	Peers, Seeders, Trackers []string
	Recheck                  bool
	// SeedAfter is each partition job's engine.DeployOptions.SeedAfter:
	// 0 leaves at once, engine.SeedUntilIdle serves the others while
	// they need pieces.
	SeedAfter time.Duration
	// Timeout is each partition job's engine.DeployOptions.Timeout: how
	// long with no server reachable before it gives up (0: the engine's
	// default, negative: never).
	Timeout time.Duration
	Logger  *slog.Logger
	// Tuning is the session's, for Deploy (Start uses the jobs given).
	Tuning engine.Tuning
	// ezioRoom: the image came from an ezio server with its seeder
	// (engine.DeployOptions.EzioRoom).
	ezioRoom bool
}

// Part is one partition of a running deploy.
type Part struct {
	Partition diskimage.Partition
	Job       *engine.Job // nil for a partition without data (swap, extended)
}

// Run is a disk deploy whose table is written and whose partition jobs
// run.
type Run struct {
	Plan  *diskimage.Plan
	Parts []Part

	verified chan struct{} // every job verified, or one failed
	done     chan struct{} // every job ended
	failed   []error       // by index in Parts, after verified
	closer   func()
	stopOnce sync.Once
	// detachers undo the loop devices LVs are written through, once
	// every job has ended (before Finish tells the kernel the table).
	detachers []func()

	recvMu sync.Mutex
	recv   []engine.Received // each partition's bytes arrived, by index in Parts
}

// received is partition i's BytesGot for snapshot s (see PartProgress).
func (r *Run) received(i int, s engine.Snapshot) int64 {
	r.recvMu.Lock()
	defer r.recvMu.Unlock()
	if r.recv == nil {
		r.recv = make([]engine.Received, len(r.Parts))
	}
	return r.recv[i].Update(s)
}

// Start writes the plan's partition table and boot areas and starts one
// deploy job per data partition in jobs. Nothing is written before it.
func Start(ctx context.Context, jobs Jobs, img *Image, plan *diskimage.Plan, o Options) (*Run, error) {
	return start(ctx, jobs, img, plan, o, nil)
}

// start is Start with closer run once every job has ended.
func start(ctx context.Context, jobs Jobs, img *Image, plan *diskimage.Plan, o Options, closer func()) (*Run, error) {
	if len(o.Seeders) == 0 {
		o.Seeders = img.Seeders
	}
	o.ezioRoom = len(img.Seeders) > 0
	if err := diskimage.WriteTable(ctx, plan); err != nil {
		return nil, err
	}
	r := &Run{Plan: plan, verified: make(chan struct{}), done: make(chan struct{}), closer: closer}
	for _, p := range plan.Manifest.Partitions {
		r.Parts = append(r.Parts, Part{Partition: p})
	}
	// Partitions first, then the LVs: each LV is written through a loop
	// device over its PV's partition (one job, one device), which the
	// PV's own job could not open once made.
	for _, volumes := range []bool{false, true} {
		for i := range r.Parts {
			p := r.Parts[i].Partition
			mi := img.Torrents[p.Number]
			if mi == nil || (p.Volume != nil) != volumes {
				continue
			}
			j, err := r.startPartition(ctx, jobs, plan, p, mi, o)
			if err != nil {
				r.stopJobs()
				r.detach()
				return nil, fmt.Errorf("partition %d (%s): %w", p.Number, p.Name, err)
			}
			r.Parts[i].Job = j
		}
	}
	r.failed = make([]error, len(r.Parts))
	go r.watch(ctx)
	return r, nil
}

// Deploy is Start in a session of its own (a free port unless tu says),
// closed when every job has ended.
func Deploy(ctx context.Context, img *Image, plan *diskimage.Plan, o Options) (*Run, error) {
	sess, err := NewSession(o.Tuning, o.Logger)
	if err != nil {
		return nil, err
	}
	r, err := start(ctx, sess, img, plan, o, func() { sess.Close() })
	if err != nil {
		sess.Close()
		return nil, err
	}
	return r, nil
}

// NewSession is the one client that writes every partition of a disk.
func NewSession(tu engine.Tuning, log *slog.Logger) (*engine.Session, error) {
	if tu.ListenAddr == "" {
		tu.ListenAddr = "0.0.0.0:0" // a free port: a seeder may be on this machine
	}
	return engine.NewSession(engine.SessionOptions{Tuning: tu, Logger: log})
}

// startPartition starts the job that writes one partition's data. It is
// the one place that knows where a partition's extents go: through the
// partition's device node, made by WriteTable.
func (r *Run) startPartition(ctx context.Context, jobs Jobs, plan *diskimage.Plan, p diskimage.Partition, mi *metainfo.MetaInfo, o Options) (*engine.Job, error) {
	number := p.Number
	if p.Volume != nil {
		number = p.Volume.PV
	}
	node, err := plan.PartitionNode(number)
	if err != nil {
		return nil, err
	}
	if p.Volume != nil { // an LV: a loop device at its offset on its PV
		loop, detach, err := lvm.Loop(ctx, node, p.Volume.Offset, p.Size, true)
		if err != nil {
			return nil, err
		}
		r.detachers = append(r.detachers, detach)
		node = loop
	}
	return jobs.Deploy(ctx, engine.DeployOptions{
		Torrent: mi, Target: node, Peers: o.Peers, Seeders: o.Seeders, Trackers: o.Trackers, EzioRoom: o.ezioRoom,
		Recheck: o.Recheck, SeedAfter: o.SeedAfter, Timeout: o.Timeout, Logger: o.Logger,
	})
}

// watch follows the jobs: verified when each is done or serving others;
// the first failure (or ctx) stops them all.
func (r *Run) watch(ctx context.Context) {
	defer func() {
		if r.closer != nil {
			r.closer()
		}
		r.detach()
		close(r.done)
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	isVerified := false
	stop := ctx.Done()
	for {
		ended, ok := 0, 0
		bad := false
		for i, p := range r.Parts {
			if p.Job == nil {
				ended++
				ok++
				continue
			}
			select {
			case <-p.Job.Done():
				ended++
				if err := p.Job.Err(); err != nil {
					if !isVerified {
						r.failed[i] = err
					}
					bad = true
				} else {
					ok++
				}
				continue
			default:
			}
			if p.Job.Snapshot().Phase == engine.PhaseSeeding {
				ok++
			}
		}
		if !isVerified && (bad || ok == len(r.Parts)) {
			isVerified = true
			if bad {
				r.stopJobs()
			}
			close(r.verified)
		}
		if ended == len(r.Parts) {
			if !isVerified {
				close(r.verified)
			}
			return
		}
		select {
		case <-stop:
			r.stopJobs()
			stop = nil // once: then wait for the jobs to end
		case <-tick.C:
		}
	}
}

func (r *Run) detach() {
	for _, d := range r.detachers {
		d()
	}
	r.detachers = nil
}

func (r *Run) stopJobs() {
	for _, p := range r.Parts {
		if p.Job != nil {
			p.Job.Stop()
		}
	}
}

// Stop ends every job (what is written is kept: deploy again to resume).
func (r *Run) Stop() { r.stopOnce.Do(r.stopJobs) }

// Verified is closed when every partition is verified (the jobs may still
// serve others) or one has failed.
func (r *Run) Verified() <-chan struct{} { return r.verified }

// Done is closed when every job has ended, serving included.
func (r *Run) Done() <-chan struct{} { return r.done }

// Err is, once Verified, why the data is not all there: the failed
// partitions, or nil.
func (r *Run) Err() error {
	<-r.verified
	var bad []string
	var first error
	for i, p := range r.Parts {
		if err := r.failed[i]; err != nil {
			if first == nil {
				first = err
			}
			bad = append(bad, fmt.Sprintf("partition %d (%s): %v", p.Partition.Number, p.Partition.Name, err))
		}
	}
	if len(bad) == 0 {
		// Every partition was verified and flushed; a job stopped while
		// it served others after that changes nothing on the disk.
		return nil
	}
	return &PartitionsError{Msg: strings.Join(bad, "; "), First: first}
}

// PartitionsError lists the partitions whose job failed.
type PartitionsError struct {
	Msg   string
	First error
}

func (e *PartitionsError) Error() string { return e.Msg }
func (e *PartitionsError) Unwrap() error { return e.First }

// Finish waits until every job has ended (serving others included: they
// hold the partitions' nodes open), then tells the kernel, recreates
// swap, restores NTFS boot sectors and checks each filesystem
// (diskimage.Finish).
func (r *Run) Finish(ctx context.Context) (*diskimage.Report, error) {
	<-r.done
	if err := r.Err(); err != nil {
		return nil, err
	}
	return diskimage.Finish(ctx, r.Plan, r.VerifiedBytes())
}

// VerifiedBytes is what each partition's job has verified, by number.
func (r *Run) VerifiedBytes() map[int]int64 {
	out := map[int]int64{}
	for _, p := range r.Parts {
		if p.Job != nil {
			out[p.Partition.Number] = p.Job.Snapshot().BytesDone
		}
	}
	return out
}
