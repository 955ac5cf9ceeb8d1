package cli

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"ezio/disks/diskdeploy"
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

// DiskDeployOptions describe the deploy of a disk image onto a disk.
type DiskDeployOptions struct {
	Peers, Seeders, Trackers []string
	Yes                      bool
	Recheck                  bool
	// SeedAfter: as engine.DeployOptions.SeedAfter, for every partition
	// (0 leaves at once, engine.SeedUntilIdle serves while others need).
	SeedAfter time.Duration
	// Timeout: as engine.DeployOptions.Timeout (negative: wait forever).
	Timeout time.Duration
	// Grow names the partition grown to fill a larger target once every
	// piece is verified (diskimage.GrowLast: the last one); "" keeps the
	// image's sizes.
	Grow string
	// Source is where the image came from (a directory or the seeder's
	// URL): the room counter of --hostname is asked there.
	Source string
	// Hostname is a pattern ({mac} {ip} {serial} {n}) for the Linux
	// root's hostname; ThenRun a script of the image run once verified.
	Hostname, ThenRun string
	Tuning            engine.Tuning
	Logger            *slog.Logger
}

// diskProgress is a --json line of a disk deploy.
type diskProgress struct {
	Type       string `json:"type"` // "progress" or "result"
	Target     string `json:"target"`
	Image      string `json:"image"`
	Phase      string `json:"phase"`
	BytesDone  int64  `json:"bytes_done"` // verified
	BytesTotal int64  `json:"bytes_total"`
	// BytesReceived counts bytes not yet verified too (they move while
	// a 16 MiB piece arrives).
	BytesReceived int64               `json:"bytes_received"`
	Partitions    []partitionProgress `json:"partitions"`
	// LostSeconds: how long a partition has been waiting for a source
	// since the last was lost (the server is gone); absent otherwise.
	LostSeconds float64 `json:"lost_seconds,omitempty"`
	// result only
	Result  string            `json:"result,omitempty"`
	Error   string            `json:"error,omitempty"`
	Seconds float64           `json:"seconds,omitempty"`
	Report  *diskimage.Report `json:"report,omitempty"`
	Machine *machineResult    `json:"machine,omitempty"` // --hostname, --then-run
}

type partitionProgress struct {
	Number      int     `json:"number"`
	Name        string  `json:"name"`
	Phase       string  `json:"phase"`
	BytesDone   int64   `json:"bytes_done"`
	BytesTotal  int64   `json:"bytes_total"`
	Received    int64   `json:"bytes_received"`
	PiecesDone  int     `json:"pieces_done"`
	PiecesTotal int     `json:"pieces_total"`
	Rate        float64 `json:"download_rate"`
	Peers       int     `json:"peers"`
	Uploaded    int64   `json:"bytes_uploaded"` // to other clients, while and after writing
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
	sess, err := diskdeploy.NewSession(o.Tuning, o.Logger)
	if err != nil {
		return nil, deployError(err)
	}
	return sess, nil
}

func (a *App) deployDiskImage(ctx context.Context, jobs partitionJobs, fsys fs.FS, target string, mode progressMode, o DiskDeployOptions) (rep *diskimage.Report, err error) {
	start := time.Now()
	var m *diskimage.Manifest
	var progress []partitionProgress
	var mres *machineResult
	defer func() {
		if mode != progressJSON {
			return
		}
		r := diskProgress{Type: "result", Target: target, Result: "ok", Seconds: time.Since(start).Seconds(), Report: rep, Partitions: progress, Machine: mres}
		if m != nil {
			r.Image = m.Name
		}
		for _, p := range progress {
			r.BytesDone += p.BytesDone
			r.BytesTotal += p.BytesTotal
			r.BytesReceived += p.Received
		}
		if err != nil {
			r.Result, r.Error = ResultWord(ExitCode(ctx, err)), err.Error()
		}
		json.NewEncoder(a.Stdout).Encode(r)
	}()
	img, err := diskdeploy.Load(fsys)
	if err != nil {
		return nil, refused(err)
	}
	m = img.Manifest
	plan, err := img.Prepare(ctx, target)
	if err != nil {
		return nil, refused(err)
	}
	if o.Grow != "" {
		if err := plan.SetGrow(o.Grow); err != nil {
			return nil, refused(err)
		}
	}
	script, err := checkMachine(fsys, &o)
	if err != nil {
		return nil, err
	}
	if !o.Yes {
		if err := a.confirmDisk(plan); err != nil {
			return nil, err
		}
	}
	run, err := diskdeploy.Start(ctx, jobs, img, plan, diskdeploy.Options{
		Peers: o.Peers, Seeders: o.Seeders, Trackers: o.Trackers, Recheck: o.Recheck, SeedAfter: o.SeedAfter, Timeout: o.Timeout, Logger: o.Logger,
	})
	if err != nil {
		return nil, err
	}
	rp := &diskReporter{a: a, run: run, mode: mode, target: target, image: m.Name}
	defer func() { progress = rp.progress }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	if err := rp.untilVerified(ctx, tick.C); err != nil {
		return nil, err
	}
	rp.serveOthers(ctx, tick.C)
	// Stopped while serving others: the data is verified, so the disk is
	// still finished (kernel, swap, NTFS, fsck) before leaving.
	fctx := ctx
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		fctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
	}
	rep, err = run.Finish(fctx)
	if mode != progressJSON && rep != nil {
		printDiskReport(a.Stdout, rep)
	}
	if err != nil {
		return rep, &ExitError{Code: ExitFailed, Err: err}
	}
	if o.Hostname != "" || script != nil {
		mres, err = a.finishMachine(fctx, plan, rep, script, o)
		if mode != progressJSON {
			printMachine(a.Stdout, mres)
		}
		if err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// diskReporter writes a disk deploy's progress in the chosen mode and
// runs its two waits: until every partition is verified, then while the
// seeding policy keeps serving the others.
type diskReporter struct {
	a         *App
	run       *diskdeploy.Run
	mode      progressMode
	target    string
	image     string
	lastPlain time.Time
	progress  []partitionProgress // the last look, for the result
}

// untilVerified reports every tick until each job is verified; the first
// failure stops the others. The error is the deploy's exit.
func (r *diskReporter) untilVerified(ctx context.Context, tick <-chan time.Time) error {
loop:
	for {
		select {
		case <-tick:
			r.report(false)
		case <-ctx.Done():
			r.run.Stop()
			<-r.run.Done()
			break loop
		case <-r.run.Verified():
			break loop
		}
	}
	r.report(true)
	if ctx.Err() != nil {
		<-r.run.Done()
		return &ExitError{Code: ExitInterrupted, Err: errors.New("interrupted; run the same command again to resume")}
	}
	if err := r.run.Err(); err != nil {
		<-r.run.Done()
		// A partition whose server stayed unreachable makes the disk
		// unreachable too (exit 3: retry later), anything else failed.
		code := ExitFailed
		if ExitCode(ctx, err) == ExitUnreachable {
			code = ExitUnreachable
		}
		return &ExitError{Code: code, Err: err}
	}
	return nil
}

// serveOthers is what a partition deploy does after verification: serve
// the other clients while the seeding policy says so. The jobs hold the
// partitions' nodes open until they end, so the kernel is told about the
// table after. An interrupt stops the serving, not the deploy.
func (r *diskReporter) serveOthers(ctx context.Context, tick <-chan time.Time) {
	select {
	case <-r.run.Done():
		return
	default:
	}
	if r.mode != progressJSON {
		fmt.Fprintln(r.a.Stderr, "verified; serving the other clients while they need pieces")
	}
	stop := ctx.Done()
	for {
		select {
		case <-tick:
			r.report(false)
		case <-stop:
			r.run.Stop()
			stop = nil
		case <-r.run.Done():
			if r.mode == progressLine {
				fmt.Fprintln(r.a.Stdout)
			}
			return
		}
	}
}

// report writes one look at the deploy: a JSON progress line, the
// one-line status, or (in a log) the totals and a row per partition.
func (r *diskReporter) report(final bool) {
	pr := r.run.Progress()
	r.progress = r.progress[:0]
	for _, p := range pr.Parts {
		if p.State == diskdeploy.StateNoData {
			continue // as before: the JSON lists the partitions that carry data
		}
		r.progress = append(r.progress, partitionProgress{Number: p.Number, Name: p.Name, Phase: string(p.Phase), BytesDone: p.BytesDone, BytesTotal: p.BytesTotal, Received: p.BytesGot,
			PiecesDone: p.PiecesDone, PiecesTotal: p.PiecesTotal, Rate: p.Rate, Peers: p.Peers, Uploaded: p.Uploaded})
	}
	switch r.mode {
	case progressJSON:
		if !final {
			phase := "deploying"
			if pr.Seeding {
				phase = "seeding"
			}
			if pr.Lost > 0 {
				phase = string(engine.PhaseWaiting)
			}
			json.NewEncoder(r.a.Stdout).Encode(diskProgress{Type: "progress", Target: r.target, Image: r.image, Phase: phase, BytesDone: pr.BytesDone, BytesTotal: pr.BytesTotal, BytesReceived: pr.BytesGot, Partitions: r.progress, LostSeconds: pr.Lost.Seconds()})
		}
	case progressLine, progressPlain:
		if r.mode == progressPlain && !final && time.Since(r.lastPlain) < 5*time.Second {
			return
		}
		r.lastPlain = time.Now()
		if r.mode == progressLine {
			fmt.Fprint(r.a.Stdout, "\r"+DiskStatusLine(pr))
			if final {
				fmt.Fprintln(r.a.Stdout)
			}
			return
		}
		// In a log: the totals, then one row per partition, as the
		// wizard's dashboard shows them.
		fmt.Fprintln(r.a.Stdout, DiskStatusLine(pr))
		for _, p := range pr.Parts {
			fmt.Fprintln(r.a.Stdout, DiskPartLine(p))
		}
	}
}

// DiskStatusLine is the one-line progress of a disk deploy: the totals,
// then each partition's state.
func DiskStatusLine(pr diskdeploy.Progress) string {
	var parts []string
	for _, p := range pr.Parts {
		if p.State == diskdeploy.StateNoData {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %s", p.Name, format.Percent(p.BytesGot, p.BytesTotal)))
	}
	phase := "disk"
	if pr.Seeding {
		phase = "seeding"
	}
	if pr.Lost > 0 {
		phase = fmt.Sprintf("waiting for the server, lost %s ago; disk", pr.Lost.Round(time.Second))
	}
	return fmt.Sprintf("%s %s  %s/%s  down %s  up %s  peers %d  ETA %s  %s", phase, format.Percent(pr.BytesGot, pr.BytesTotal), format.Bytes(pr.BytesGot), format.Bytes(pr.BytesTotal),
		format.Rate(pr.Rate), format.Rate(pr.UpRate), pr.Peers, format.ETA(pr.ETA), strings.Join(parts, "  "))
}

// DiskPartLine is one partition's row, as the wizard's dashboard shows it.
func DiskPartLine(p diskdeploy.PartProgress) string {
	return fmt.Sprintf("  %2d %-8s %-8s %5d/%-5d pieces %10s/%-10s %s", p.Number, p.Name, cmp.Or(p.FS, "-"), p.PiecesDone, p.PiecesTotal,
		format.Bytes(p.BytesDone), format.Bytes(p.BytesTotal), p.State)
}

// confirmDisk shows what will be overwritten and asks for the disk's name.
func (a *App) confirmDisk(p *diskimage.Plan) error {
	return a.confirmTarget(p.Target, func(w io.Writer) {
		m := p.Manifest
		fmt.Fprintf(w, "Disk image %s: %s partition table, %d partitions, %s of data\n", m.Name, strings.ToUpper(m.Label), len(m.Partitions), format.Bytes(m.DataBytes()))
		for _, part := range m.Partitions {
			fmt.Fprintf(w, "  %d  %-10s %-8s %s %s\n", part.Number, format.Bytes(part.Size), part.Filesystem, part.Saved, part.Label)
		}
		fmt.Fprintf(w, "Target %s (%s): its partition table and everything on it will be overwritten.\n", p.Target, format.Bytes(p.TargetSize))
		if g := p.Grow; g != nil {
			fmt.Fprintf(w, "Then partition %d (%s) grows from %s by the %s free after it.\n", g.Partition.Number, cmp.Or(g.Partition.Filesystem, g.Partition.Saved), format.Bytes(g.Partition.Size), format.Bytes(g.Room))
		}
	})
}

// confirmTarget is the one confirmation of a write: what will be lost
// (told by show), then the target's name typed back on a terminal. Without
// a terminal it refuses and names --yes.
func (a *App) confirmTarget(target string, show func(w io.Writer)) error {
	if !a.isTerminal(a.Stdin) {
		return refused(errors.New("not confirmed: standard input is not a terminal; add --yes to write without asking"))
	}
	show(a.Stderr)
	want := filepath.Base(target)
	fmt.Fprintf(a.Stderr, "Type %q to confirm: ", want)
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
		line := fmt.Sprintf("partition %d %s (%s, %s): %s verified, %s", p.Number, p.Node, cmp.Or(p.Filesystem, "-"), p.Saved, format.Bytes(p.Bytes), check)
		if p.Done != "" {
			line += "; " + p.Done
		}
		fmt.Fprintln(w, line)
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
	o.Logger, o.Tuning, o.Source = log, a.Tuning, src
	fsys := diskdeploy.SourceFS(ctx, src)
	// The seeder's own tracker, where its partitions' seed jobs and the
	// other clients are.
	if u, err := url.Parse(src); err == nil && diskdeploy.IsRemote(src) && len(o.Trackers) == 0 {
		o.Trackers = []string{u.Scheme + "://" + u.Host + "/announce"}
	}
	if diskdeploy.IsRemote(src) && len(o.Seeders) == 0 {
		o.Seeders = diskdeploy.ServerSeeders(ctx, src)
	}
	if !diskdeploy.IsRemote(src) {
		stop, err := serveLocalImage(ctx, src, a.Tuning, log, len(o.Peers) == 0 && len(o.Trackers) == 0, &o.Seeders, &o.SeedAfter)
		if err != nil {
			return err
		}
		defer stop()
	}
	_, err = a.DeployDiskImage(ctx, fsys, target, asJSON, o)
	return err
}
