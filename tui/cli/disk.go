package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"ezio/disks/diskimage"
	"ezio/engine"
	"ezio/tui/format"
)

// partitionJobs starts the engine jobs of a disk image's partitions: an
// *engine.Session, one BitTorrent client for all of them.
type partitionJobs interface {
	Seed(ctx context.Context, o engine.SeedOptions) (*engine.Job, error)
	Deploy(ctx context.Context, o engine.DeployOptions) (*engine.Job, error)
}

// loadPartitionTorrent reads a partition's torrent out of an image
// directory.
func loadPartitionTorrent(fsys fs.FS, p diskimage.Partition) (*metainfo.MetaInfo, error) {
	f, err := fsys.Open(p.Torrent)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := engine.ReadTorrentLimited(f, -1)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.Torrent, err)
	}
	mi, err := engine.ParseTorrent(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.Torrent, err)
	}
	if _, _, err := engine.Summarize(mi); err != nil {
		return nil, fmt.Errorf("%s: %w", p.Torrent, err)
	}
	return mi, nil
}

// DiskSeed is a disk image being served: one seed job per partition.
type DiskSeed struct {
	Manifest *diskimage.Manifest
	Jobs     []*engine.Job
	Server   *engine.Server // nil with NoTracker
	Session  *engine.Session
}

// Stop ends every job, the client and the server.
func (s *DiskSeed) Stop() {
	if s.Session != nil {
		s.Session.Close()
	}
}

// DiskSeedOptions describe the seeding of a disk image directory.
type DiskSeedOptions struct {
	TrackerListen string // "" = :6969
	NoTracker     bool
	Tuning        engine.Tuning
	Logger        *slog.Logger
}

// SeedDiskImage serves every partition of the disk image in dir, with one
// tracker and torrent server for all of them.
func SeedDiskImage(ctx context.Context, dir string, o DiskSeedOptions) (_ *DiskSeed, err error) {
	m, err := diskimage.LoadDir(dir)
	if err != nil {
		return nil, refused(err)
	}
	sess, err := engine.NewSession(engine.SessionOptions{Tuning: o.Tuning, Logger: o.Logger, Serve: !o.NoTracker, ServerListen: o.TrackerListen})
	if err != nil {
		return nil, err
	}
	s := &DiskSeed{Manifest: m, Session: sess, Server: sess.Server()}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	fsys := os.DirFS(dir)
	var parts []engine.DiskPart
	for _, p := range m.Partitions {
		if !p.HasData() {
			continue
		}
		mi, err := loadPartitionTorrent(fsys, p)
		if err != nil {
			return nil, refused(err)
		}
		// Listed by the disk image below, not as images of their own.
		j, err := sess.Seed(ctx, engine.SeedOptions{Torrent: mi, Source: filepath.Join(dir, p.ImageDir), Unlisted: true, Logger: o.Logger})
		if err != nil {
			return nil, refused(fmt.Errorf("partition %s: %w", p.Name, err))
		}
		s.Jobs = append(s.Jobs, j)
		parts = append(parts, engine.DiskPart{Name: p.Name, Number: p.Number, Start: p.Start, Size: p.Size, FS: p.Filesystem, MI: mi})
	}
	if s.Server != nil {
		files, err := diskImageFiles(dir, m)
		if err != nil {
			return nil, err
		}
		for _, p := range m.Partitions {
			if !p.HasData() {
				parts = append(parts, engine.DiskPart{Name: p.Name, Number: p.Number, Start: p.Start, Size: p.Size, FS: p.Filesystem})
			}
		}
		if err := s.Server.AddDiskImage(engine.DiskImage{Name: m.Name, Manifest: files[diskimage.ManifestFile], Parts: parts, PeerPort: sess.PeerPort(), Files: files}); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// DiskDeployOptions describe the deploy of a disk image onto a disk.
type DiskDeployOptions struct {
	Peers, Seeders, Trackers []string
	Yes                      bool
	Recheck                  bool
	Tuning                   engine.Tuning
	Logger                   *slog.Logger
}

// diskProgress is a --json line of a disk deploy.
type diskProgress struct {
	Type       string              `json:"type"` // "progress" or "result"
	Target     string              `json:"target"`
	Image      string              `json:"image"`
	Phase      string              `json:"phase"`
	BytesDone  int64               `json:"bytes_done"`
	BytesTotal int64               `json:"bytes_total"`
	Partitions []partitionProgress `json:"partitions"`
	// result only
	Result  string            `json:"result,omitempty"`
	Error   string            `json:"error,omitempty"`
	Seconds float64           `json:"seconds,omitempty"`
	Report  *diskimage.Report `json:"report,omitempty"`
}

type partitionProgress struct {
	Number      int     `json:"number"`
	Name        string  `json:"name"`
	Phase       string  `json:"phase"`
	BytesDone   int64   `json:"bytes_done"`
	BytesTotal  int64   `json:"bytes_total"`
	PiecesDone  int     `json:"pieces_done"`
	PiecesTotal int     `json:"pieces_total"`
	Rate        float64 `json:"download_rate"`
	Peers       int     `json:"peers"`
}

// DeployDiskImage writes the disk image (manifest and files in fsys, e.g.
// os.DirFS of a local image directory) onto the whole disk target: checks,
// then the partition table and boot areas, then every partition's data
// (one deploy job each), then Finish (kernel, swap, NTFS, fsck). It reports
// on a.Stdout in the mode chosen by asJSON and returns an *ExitError with
// the contract's code.
func (a *App) DeployDiskImage(ctx context.Context, fsys fs.FS, target string, asJSON bool, o DiskDeployOptions) (*diskimage.Report, error) {
	sess, err := diskSession(o)
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	return a.deployDiskImage(ctx, sess, fsys, target, a.progressMode(asJSON), o)
}

// diskSession is the one client that writes every partition of a disk.
func diskSession(o DiskDeployOptions) (*engine.Session, error) {
	tu := o.Tuning
	if tu.ListenAddr == "" {
		tu.ListenAddr = "0.0.0.0:0" // a free port: a seeder may be on this machine
	}
	sess, err := engine.NewSession(engine.SessionOptions{Tuning: tu, Logger: o.Logger})
	if err != nil {
		return nil, deployError(err)
	}
	return sess, nil
}

func (a *App) deployDiskImage(ctx context.Context, jobs partitionJobs, fsys fs.FS, target string, mode progressMode, o DiskDeployOptions) (rep *diskimage.Report, err error) {
	start := time.Now()
	var m *diskimage.Manifest
	var progress []partitionProgress
	defer func() {
		if mode != progressJSON {
			return
		}
		r := diskProgress{Type: "result", Target: target, Result: "ok", Seconds: time.Since(start).Seconds(), Report: rep, Partitions: progress}
		if m != nil {
			r.Image = m.Name
		}
		for _, p := range progress {
			r.BytesDone += p.BytesDone
			r.BytesTotal += p.BytesTotal
		}
		var ee *ExitError
		if err != nil {
			r.Result, r.Error = "failed", err.Error()
			if errors.As(err, &ee) {
				switch ee.Code {
				case ExitRefused:
					r.Result = "refused"
				case ExitInterrupted:
					r.Result = "interrupted"
				}
			}
		}
		json.NewEncoder(a.Stdout).Encode(r)
	}()
	m, err = diskimage.Load(fsys)
	if err != nil {
		return nil, refused(err)
	}
	plan, err := diskimage.PrepareDeploy(ctx, m, fsys, target)
	if err != nil {
		return nil, refused(err)
	}
	torrents := map[int]*metainfo.MetaInfo{}
	for _, p := range m.Partitions {
		if p.HasData() {
			mi, err := loadPartitionTorrent(fsys, p)
			if err != nil {
				return nil, refused(err)
			}
			torrents[p.Number] = mi
		}
	}
	if !o.Yes {
		if err := a.confirmDisk(plan); err != nil {
			return nil, err
		}
	}
	if err := diskimage.WriteTable(ctx, plan); err != nil {
		return nil, err
	}
	type running struct {
		part diskimage.Partition
		job  *engine.Job
	}
	var rs []running
	stopAll := func() {
		for _, r := range rs {
			r.job.Stop()
		}
		for _, r := range rs {
			<-r.job.Done()
		}
	}
	for _, p := range m.Partitions {
		mi := torrents[p.Number]
		if mi == nil {
			continue
		}
		j, err := startPartitionDeploy(ctx, jobs, plan, p, mi, o)
		if err != nil {
			stopAll()
			return nil, fmt.Errorf("partition %d (%s): %w", p.Number, p.Name, err)
		}
		rs = append(rs, running{p, j})
	}
	snapshot := func() []partitionProgress {
		out := make([]partitionProgress, len(rs))
		for i, r := range rs {
			s := r.job.Snapshot()
			out[i] = partitionProgress{Number: r.part.Number, Name: r.part.Name, Phase: string(s.Phase), BytesDone: s.BytesDone, BytesTotal: s.BytesTotal,
				PiecesDone: s.PiecesDone, PiecesTotal: s.PiecesTotal, Rate: s.DownloadRate, Peers: s.NumPeers}
		}
		return out
	}
	// Every job to its end; the first failure stops the others.
	errs := make([]error, len(rs))
	var wg sync.WaitGroup
	failed := make(chan struct{}, len(rs))
	for i, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = r.job.Wait(); errs[i] != nil {
				failed <- struct{}{}
			}
		}()
	}
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastPlain := time.Time{}
	report := func(final bool) {
		progress = snapshot()
		var done, total int64
		for _, p := range progress {
			done += p.BytesDone
			total += p.BytesTotal
		}
		switch mode {
		case progressJSON:
			if !final {
				json.NewEncoder(a.Stdout).Encode(diskProgress{Type: "progress", Target: target, Image: m.Name, Phase: "deploying", BytesDone: done, BytesTotal: total, Partitions: progress})
			}
		case progressLine, progressPlain:
			if mode == progressPlain && !final && time.Since(lastPlain) < 5*time.Second {
				return
			}
			lastPlain = time.Now()
			var parts []string
			for _, p := range progress {
				parts = append(parts, fmt.Sprintf("%s %s", p.Name, format.Percent(p.BytesDone, p.BytesTotal)))
			}
			line := fmt.Sprintf("disk %s  %s/%s  %s", format.Percent(done, total), format.Bytes(done), format.Bytes(total), strings.Join(parts, "  "))
			if mode == progressLine {
				fmt.Fprint(a.Stdout, "\r"+line)
				if final {
					fmt.Fprintln(a.Stdout)
				}
			} else {
				fmt.Fprintln(a.Stdout, line)
			}
		}
	}
loop:
	for {
		select {
		case <-tick.C:
			report(false)
		case <-failed:
			stopAll()
		case <-ctx.Done():
			stopAll()
		case <-allDone:
			break loop
		}
	}
	report(true)
	if ctx.Err() != nil {
		return nil, &ExitError{Code: ExitInterrupted, Err: errors.New("interrupted; run the same command again to resume")}
	}
	verified := map[int]int64{}
	var bad []string
	for i, r := range rs {
		if errs[i] != nil {
			bad = append(bad, fmt.Sprintf("partition %d (%s): %v", r.part.Number, r.part.Name, errs[i]))
		}
		verified[r.part.Number] = r.job.Snapshot().BytesDone
	}
	if len(bad) > 0 {
		return nil, &ExitError{Code: ExitFailed, Err: errors.New(strings.Join(bad, "; "))}
	}
	rep, err = diskimage.Finish(ctx, plan, verified)
	if mode != progressJSON && rep != nil {
		printDiskReport(a.Stdout, rep)
	}
	if err != nil {
		return rep, &ExitError{Code: ExitFailed, Err: err}
	}
	return rep, nil
}

// startPartitionDeploy starts the job that writes one partition's data.
// It is the one place that knows where a partition's extents go: before
// DeployOptions.Base it writes through the partition's device node (made by
// WriteTable); with Base it is Target: disk, Base: start (plan.DataTarget).
func startPartitionDeploy(ctx context.Context, jobs partitionJobs, plan *diskimage.Plan, p diskimage.Partition, mi *metainfo.MetaInfo, o DiskDeployOptions) (*engine.Job, error) {
	node, err := plan.PartitionNode(p.Number)
	if err != nil {
		return nil, err
	}
	return jobs.Deploy(ctx, engine.DeployOptions{
		Torrent: mi, Target: node, Peers: o.Peers, Seeders: o.Seeders, Trackers: o.Trackers,
		Recheck: o.Recheck, Logger: o.Logger,
	})
}

// confirmDisk shows what will be overwritten and asks for the disk's name.
func (a *App) confirmDisk(p *diskimage.Plan) error {
	if !a.isTerminal(a.Stdin) {
		return refused(errors.New("not confirmed: standard input is not a terminal; add --yes to write without asking"))
	}
	w := a.Stderr
	m := p.Manifest
	fmt.Fprintf(w, "Disk image %s: %s partition table, %d partitions, %s of data\n", m.Name, strings.ToUpper(m.Label), len(m.Partitions), format.Bytes(m.DataBytes()))
	for _, part := range m.Partitions {
		fmt.Fprintf(w, "  %d  %-10s %-8s %s %s\n", part.Number, format.Bytes(part.Size), part.Filesystem, part.Saved, part.Label)
	}
	fmt.Fprintf(w, "Target %s (%s): its partition table and everything on it will be overwritten.\n", p.Target, format.Bytes(p.TargetSize))
	want := filepath.Base(p.Target)
	fmt.Fprintf(w, "Type %q to confirm: ", want)
	line, _ := bufio.NewReader(a.Stdin).ReadString('\n')
	if strings.TrimSpace(line) != want {
		return refused(errors.New("not confirmed; nothing was written"))
	}
	return nil
}

func printDiskReport(w io.Writer, r *diskimage.Report) {
	for _, p := range r.Partitions {
		check := "no check"
		switch {
		case p.Fsck != nil && p.Fsck.OK:
			check = "fsck clean"
		case p.Fsck != nil:
			check = "fsck FAILED: " + strings.ReplaceAll(p.Fsck.Output, "\n", "; ")
		case p.FsckSkip != "":
			check = "not checked: " + p.FsckSkip
		}
		line := fmt.Sprintf("partition %d %s (%s, %s): %s verified, %s", p.Number, p.Node, firstOf(p.Filesystem, "-"), p.Saved, format.Bytes(p.Bytes), check)
		if p.Done != "" {
			line += "; " + p.Done
		}
		fmt.Fprintln(w, line)
	}
}

func firstOf(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// SeedDiskCommand is `ezio seed DIR` for a disk image directory: it serves
// every partition until ctx ends, printing where clients find it.
func (a *App) SeedDiskCommand(ctx context.Context, dir, trackerListen string, noTracker, asJSON bool) error {
	log, err := a.Logger(true)
	if err != nil {
		return err
	}
	s, err := SeedDiskImage(ctx, dir, DiskSeedOptions{TrackerListen: trackerListen, NoTracker: noTracker, Tuning: a.Tuning, Logger: log})
	if err != nil {
		return err
	}
	defer s.Stop()
	if !asJSON {
		fmt.Fprintf(a.Stderr, "seeding disk image %s (%s, %d partitions) from %s\n", s.Manifest.Name, strings.ToUpper(s.Manifest.Label), len(s.Manifest.Partitions), dir)
		for _, j := range s.Jobs {
			fmt.Fprintf(a.Stderr, "  %s (%s): peers connect to %s\n", j.Name(), j.InfoHash(), j.PeerAddr())
		}
		if s.Server != nil {
			fmt.Fprintf(a.Stderr, "clients: ezio deploy %s/images/%s TARGET-DISK\n", s.Server.BaseURL(), s.Manifest.Name)
		}
	}
	mode := a.progressMode(asJSON)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	enc := json.NewEncoder(a.Stdout)
	last := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return nil // stopping a seeder is its normal end
		case <-tick.C:
		}
		var up float64
		var sent int64
		var rows []engine.Snapshot
		for _, j := range s.Jobs {
			sn := j.Snapshot()
			up += sn.UploadRate
			sent += sn.BytesUploaded
			rows = append(rows, sn)
		}
		switch mode {
		case progressJSON:
			enc.Encode(struct {
				Type       string            `json:"type"`
				Image      string            `json:"image"`
				UploadRate float64           `json:"upload_rate"`
				Uploaded   int64             `json:"bytes_uploaded"`
				Partitions []engine.Snapshot `json:"partitions"`
			}{"progress", s.Manifest.Name, up, sent, rows})
		case progressLine:
			fmt.Fprintf(a.Stdout, "\rseeding %s  up %s  sent %s   ", s.Manifest.Name, format.Rate(up), format.Bytes(sent))
		case progressPlain:
			if time.Since(last) >= 5*time.Second {
				last = time.Now()
				fmt.Fprintf(a.Stdout, "seeding %s  up %s  sent %s\n", s.Manifest.Name, format.Rate(up), format.Bytes(sent))
			}
		}
	}
}

// DeployDiskCommand is `ezio deploy SRC TARGET` for a disk image: SRC is a
// local image directory or the seeder's http://HOST:PORT/images/NAME,
// whose files (ezio-disk.json, the table, the torrents) are read over HTTP.
func (a *App) DeployDiskCommand(ctx context.Context, src, target string, asJSON bool, o DiskDeployOptions) error {
	log, err := a.Logger(true)
	if err != nil {
		return err
	}
	o.Logger, o.Tuning = log, a.Tuning
	var fsys fs.FS
	if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") {
		fsys = httpFS{ctx: ctx, base: strings.TrimRight(src, "/")}
		// The seeder's own tracker, where its partitions' seed jobs and
		// the other clients are.
		if u, err := url.Parse(src); err == nil && len(o.Trackers) == 0 {
			o.Trackers = []string{u.Scheme + "://" + u.Host + "/announce"}
		}
	} else {
		fsys = os.DirFS(src)
	}
	_, err = a.DeployDiskImage(ctx, fsys, target, asJSON, o)
	return err
}

// IsDiskImageSource says whether a deploy source is a disk image: a local
// directory with ezio-disk.json, or a server's /images/NAME that serves
// one (a partition image there is not).
func IsDiskImageSource(ctx context.Context, src string) bool {
	if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") {
		if !strings.Contains(src, "/images/") {
			return false
		}
		f, err := httpFS{ctx: ctx, base: strings.TrimRight(src, "/")}.Open(diskimage.ManifestFile)
		if err != nil {
			return false
		}
		f.Close()
		return true
	}
	return diskimage.IsDiskImage(src)
}

// diskImageFiles reads the small files of an image directory that a
// client needs before any data: the manifest, the partition table and
// boot areas, Clonezilla's disk and parts lists, swap records, and each
// partition's torrent and torrent.info. Never the extents.
func diskImageFiles(dir string, m *diskimage.Manifest) (map[string][]byte, error) {
	names := []string{diskimage.ManifestFile, "disk", "parts", m.PartitionTable, m.MBR, m.HiddenAfterMBR, m.GPTBackup}
	for _, p := range m.Partitions {
		names = append(names, p.Torrent, p.TorrentInfo)
	}
	if swaps, err := filepath.Glob(filepath.Join(dir, "swappt-*.info")); err == nil {
		for _, sw := range swaps {
			names = append(names, filepath.Base(sw))
		}
	}
	files := map[string][]byte{}
	for _, n := range names {
		if n == "" || files[n] != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(n)))
		if errors.Is(err, fs.ErrNotExist) && n != diskimage.ManifestFile {
			continue
		}
		if err != nil {
			return nil, err
		}
		files[n] = b
	}
	return files, nil
}

// httpFS reads an image directory's files from the seeder's HTTP server:
// GET base/<name>.
type httpFS struct {
	ctx  context.Context
	base string
}

func (h httpFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	ctx, cancel := context.WithTimeout(h.ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.base+"/"+name, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: h.base + "/" + name, Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e := fmt.Errorf("HTTP %s", resp.Status)
		if resp.StatusCode == http.StatusNotFound {
			e = fs.ErrNotExist
		}
		return nil, &fs.PathError{Op: "open", Path: h.base + "/" + name, Err: e}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	return &memFile{name: name, Reader: bytes.NewReader(b), size: int64(len(b))}, nil
}

type memFile struct {
	*bytes.Reader
	name string
	size int64
}

func (f *memFile) Stat() (fs.FileInfo, error) { return memInfo{f}, nil }
func (f *memFile) Close() error               { return nil }

type memInfo struct{ f *memFile }

func (i memInfo) Name() string       { return path.Base(i.f.name) }
func (i memInfo) Size() int64        { return i.f.size }
func (i memInfo) Mode() fs.FileMode  { return 0o444 }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }
