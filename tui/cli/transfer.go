package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"ezio/disks/diskimage"
	"ezio/engine"
	"ezio/engine/discover"
	"ezio/engine/torrentfile"
	"ezio/tui/format"
)

// progressMode is how a running job reports on standard output.
type progressMode int

const (
	progressLine  progressMode = iota // one updating line on a terminal
	progressJSON                      // one JSON object per line
	progressPlain                     // a plain line every few seconds (logs, pipes)
)

// jsonLine is the --json progress record.
type jsonLine struct {
	Type string `json:"type"` // "progress" or "result"
	engine.Snapshot
	// result only
	Result  string  `json:"result,omitempty"` // "ok", "failed", "refused", "unreachable", "interrupted"
	Code    *int    `json:"code,omitempty"`   // the exit status
	Reason  string  `json:"reason,omitempty"` // why, when not ok
	Error   string  `json:"error,omitempty"`  // the same as reason (older scripts read it)
	Seconds float64 `json:"seconds,omitempty"`
	Fleet   any     `json:"fleet,omitempty"`
}

// printResult writes the one final result object of a --json run, for
// every outcome: done, failed, refused before anything started,
// unreachable, interrupted.
func printResult(ctx context.Context, w io.Writer, s engine.Snapshot, start time.Time, err error, extra func(*jsonLine)) {
	code := ExitCode(ctx, err)
	jl := jsonLine{Type: "result", Snapshot: s, Result: ResultWord(code), Code: &code, Seconds: time.Since(start).Seconds()}
	if err != nil {
		jl.Reason = oneLine(err.Error())
		if code == ExitInterrupted {
			jl.Reason = "stopped by a signal; run the same command again to resume"
		}
		jl.Error = jl.Reason
	}
	if extra != nil {
		extra(&jl)
	}
	json.NewEncoder(w).Encode(jl)
}

// StatusLine is the one-line summary shown while a job runs.
func StatusLine(s engine.Snapshot) string {
	var b strings.Builder
	if s.Role == engine.RoleSeed {
		fmt.Fprintf(&b, "%s  up %s  sent %s  peers %d  %s", s.Phase, format.Rate(s.UploadRate), format.Bytes(s.BytesUploaded), s.NumPeers, format.Duration(s.Elapsed))
		if n := len(s.Stuck); n > 0 {
			fmt.Fprintf(&b, "  %d stuck on a damaged piece: re-capture, or fix the source and ezio torrent verify", n)
		}
		return b.String()
	}
	fmt.Fprintf(&b, "%-11s %6s  %s/%s  down %s  up %s  peers %d  ETA %s",
		s.Phase, format.Percent(s.BytesDone, s.BytesTotal), format.Bytes(s.BytesDone), format.Bytes(s.BytesTotal),
		format.Rate(s.DownloadRate), format.Rate(s.UploadRate), s.NumPeers, format.ETA(s.ETA))
	if s.HashFailures > 0 {
		fmt.Fprintf(&b, "  hash failures %d", s.HashFailures)
	}
	if s.Paused {
		b.WriteString("  (paused)")
	}
	return b.String()
}

// followJob reports a job until it ends and returns its error.
func followJob(ctx context.Context, j *engine.Job, w io.Writer, mode progressMode, extra func(*jsonLine)) error {
	snaps, _ := j.Subscribe(ctx)
	enc := json.NewEncoder(w)
	var lastEmit time.Time
	lastLen := 0
	emit := func(s engine.Snapshot, force bool) {
		now := time.Now()
		switch mode {
		case progressLine:
			line := StatusLine(s)
			pad := ""
			if n := lastLen - len(line); n > 0 {
				pad = strings.Repeat(" ", n)
			}
			lastLen = len(line)
			fmt.Fprint(w, "\r"+line+pad)
		case progressJSON:
			if !force && now.Sub(lastEmit) < time.Second {
				return
			}
			jl := jsonLine{Type: "progress", Snapshot: s}
			if extra != nil {
				extra(&jl)
			}
			enc.Encode(jl)
		case progressPlain:
			if !force && now.Sub(lastEmit) < 5*time.Second {
				return
			}
			fmt.Fprintln(w, StatusLine(s))
		}
		lastEmit = now
	}
	for {
		select {
		case s := <-snaps.C():
			emit(s, false)
		case <-ctx.Done():
			j.Stop()
			<-j.Done()
		case <-j.Done():
		}
		select {
		case <-j.Done():
		default:
			continue
		}
		err := j.Err()
		s := j.Snapshot()
		switch mode {
		case progressLine:
			emit(s, true)
			fmt.Fprintln(w)
		case progressPlain:
			emit(s, true)
		}
		if err != nil && ctx.Err() != nil {
			return &ExitError{Code: ExitInterrupted, Err: errors.New("interrupted; run the same command again to resume")}
		}
		return err
	}
}

func (a *App) progressMode(asJSON bool) progressMode {
	switch {
	case asJSON:
		return progressJSON
	case a.isTerminal(a.Stdout):
		return progressLine
	}
	return progressPlain
}

// deployFlags are the deploy command's flags.
type deployFlags struct {
	peers, seeders []string
	tracker        string
	seedAfter      time.Duration
	timeout        time.Duration
	yes, asJSON    bool
	recheck        bool
	then           string
	grow           string
	hostname       string
	thenRun        string
}

// policy is what the flags say of trackers, seeding after the deploy
// (default: serve while others need pieces) and giving up (0: never),
// for partition and disk images alike.
func (o *deployFlags) policy(cmd *cobra.Command) (trackers []string, seedAfter, timeout time.Duration) {
	if o.tracker != "" {
		trackers = []string{o.tracker}
	}
	seedAfter = engine.SeedUntilIdle
	if cmd.Flags().Changed("seed-after") {
		seedAfter = o.seedAfter
	}
	timeout = o.timeout
	if timeout <= 0 {
		timeout = -1
	}
	return trackers, seedAfter, timeout
}

func newDeployCmd(a *App) *cobra.Command {
	var o deployFlags
	cmd := &cobra.Command{
		Use:   "deploy FILE.torrent|URL|SERVER|auto[:NAME]|IMAGE-DIR TARGET",
		Short: "Receive an image from the swarm and write it onto a disk, partition or file",
		Long: `Download an image from the seeder and from the other clients at once, and
write every SHA-1-verified piece straight onto TARGET at its extents' disk
offsets. TARGET is a block device, an image file (created at its full size)
or a directory (partclone extent files).

The target must not be mounted, hold swap, LVM or RAID members, or be the
disk this system runs from, and must be large enough for the image. ezio
asks you to type the target's name to confirm, unless --yes.

After it is done, the client keeps serving the others while any of them
still needs pieces, until it has sent nothing for a minute or three times
the image (--seed-after overrides that; --seed-after 0 leaves at once).
A lost server is redialled; with no server for --timeout the deploy ends
(exit 3) and a later run resumes where it stopped.

Exit status:
  0    every piece verified and flushed to the target
  1    failed (bad data at the source, a write error on the target)
  2    refused (unsafe or too small target, bad torrent, usage, no confirmation)
  3    unreachable: no server, the image is not on it, or none for --timeout (retry later)
  130  interrupted (run the same command again to resume)
With --json, every outcome ends with one {"type":"result",...} object
carrying "result", "code" and "reason".`,
		Example: `  ezio deploy http://10.0.0.1:6969/torrents/sda1.torrent /dev/sda1
  ezio deploy sda1.torrent /dev/sdb1 --tracker http://10.0.0.1:6969/announce --yes --json
  ezio deploy sda1.torrent disk.img --peer 10.0.0.1:6881 --seed-after 10m`,
		Args: cobra.RangeArgs(2, 3), // 3 with --grow PART
		RunE: func(cmd *cobra.Command, args []string) error {
			args, aerr := growArgs(cmd, args, &o.grow)
			if aerr != nil {
				return aerr
			}
			engine.LimitMemory(a.Tuning) // --cache-size bounds the whole client
			return a.runDeploy(cmd, &o, args)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.peers, "peer", nil, "add a peer directly, HOST:PORT (repeatable)")
	f.StringArrayVar(&o.seeders, "seeder", nil, "add a trusted seeder, HOST:PORT (never banned for bad data)")
	f.StringVar(&o.tracker, "tracker", "", "announce to this tracker instead of the torrent's")
	f.DurationVar(&o.seedAfter, "seed-after", 0, "serve other clients this long after completing (default: while they need pieces, until idle 60s or 3x the image sent; 0 leaves at once)")
	f.DurationVar(&o.timeout, "timeout", engine.DefaultTimeout, "give up (exit 3) after this long with no server reachable; 0 waits forever")
	f.BoolVarP(&o.yes, "yes", "y", false, "do not ask for confirmation")
	f.BoolVar(&o.asJSON, "json", false, "print progress as JSON lines and a final result object")
	f.BoolVar(&o.recheck, "recheck", false, "re-verify pieces already on the target instead of trusting the resume record")
	f.StringVar(&o.then, "then", thenExit, "after a verified deploy (and serving the others): reboot, poweroff, shell or exit")
	growFlag(cmd, &o.grow)
	f.StringVar(&o.hostname, "hostname", "", "whole-disk images: name the deployed Linux system (/etc/hostname, 127.0.1.1 in /etc/hosts; machine-id emptied); PATTERN may hold {mac} {ip} {serial} {n} (n: 1, 2, 3... handed out by the server)")
	f.StringVar(&o.thenRun, "then-run", "", "whole-disk images: once verified, run this script of the image directory with the partitions mounted and EZIO_* facts in its environment; its failure is exit 1")
	return cmd
}

// runDeploy deploys args[0] onto args[1]: a whole-disk image (a local
// image directory, or found so on a server) by the disk deploy, anything
// else as a partition image; then the --then action, after a verified
// deploy only.
func (a *App) runDeploy(cmd *cobra.Command, o *deployFlags, args []string) error {
	ctx := cmd.Context()
	start := time.Now()
	deployDisk := func(src string) error {
		// A whole-disk image: its own progress and result lines.
		if err := checkThen(o.then); err != nil {
			return refused(err)
		}
		// The same peers, seeding policy and timeout as a partition
		// image's deploy.
		trackers, seedAfter, timeout := o.policy(cmd)
		if err := a.DeployDiskCommand(ctx, src, args[1], o.asJSON, DiskDeployOptions{Peers: o.peers, Seeders: o.seeders, Trackers: trackers, Yes: o.yes, Recheck: o.recheck, SeedAfter: seedAfter, Timeout: timeout, Grow: o.grow, Hostname: o.hostname, ThenRun: o.thenRun}); err != nil {
			return err
		}
		return a.runThen(o.then)
	}
	if IsDiskImageSource(ctx, args[0]) {
		return deployDisk(args[0])
	}
	job, diskURL, err := a.deployPartition(cmd, o, args[0], args[1])
	if diskURL != "" {
		if !o.asJSON {
			fmt.Fprintf(a.Stderr, "%s is a whole-disk image\n", diskURL)
		}
		return deployDisk(diskURL)
	}
	if o.asJSON {
		var s engine.Snapshot
		if job != nil {
			s = job.Snapshot()
		}
		printResult(ctx, a.Stdout, s, start, err, nil)
	}
	if err != nil {
		// Never reboot over a failed or refused deploy: the
		// technician must see why.
		return err
	}
	return a.runThen(o.then)
}

// deployPartition deploys a partition image from src onto target and
// follows it to its end. diskURL is set instead when the image found on
// the LAN (auto) or on a server given by its address is a whole disk.
func (a *App) deployPartition(cmd *cobra.Command, o *deployFlags, src, target string) (job *engine.Job, diskURL string, _ error) {
	ctx := cmd.Context()
	if err := checkThen(o.then); err != nil {
		return nil, "", refused(err)
	}
	log, err := a.Logger(true)
	if err != nil {
		return nil, "", err
	}
	ft, err := discover.FetchTorrent(ctx, src, discover.DefaultTimeout)
	var de *engine.DiskImageError
	if errors.As(err, &de) && IsDiskImageSource(ctx, de.URL) {
		return nil, de.URL, nil
	}
	if err != nil {
		return nil, "", fetchError(err)
	}
	if o.grow != "" || o.hostname != "" || o.thenRun != "" {
		return nil, "", refused(errors.New("--grow, --hostname and --then-run apply to whole-disk images, not to a partition image"))
	}
	sum, _, err := torrentfile.Summarize(ft.MetaInfo)
	if err != nil {
		return nil, "", refused(err)
	}
	l, kind, err := engine.PrepareDeploy(ft.MetaInfo, target, false)
	if err != nil {
		return nil, "", refused(err)
	}
	// A partition image onto a whole disk with a partition table would
	// destroy the table: refused, naming what would be lost and the
	// partition that fits.
	if err := diskimage.CheckPartitionImageTarget(ctx, target, l.End, ""); err != nil {
		return nil, "", refused(err)
	}
	if !o.yes {
		err := a.confirmTarget(target, func(w io.Writer) {
			fmt.Fprintf(w, "Image %s: %s in %d extents (infohash %s)\n", format.Name(sum.Name), format.Bytes(sum.TotalBytes), sum.Extents, sum.InfoHash[:16])
			fmt.Fprintf(w, "Target %s (%s): the bytes of every extent, up to byte %d, will be overwritten.\n", target, kind, l.End)
		})
		if err != nil {
			return nil, "", err
		}
	}
	trackers, seedAfter, timeout := o.policy(cmd)
	do := engine.DeployOptions{
		Torrent: ft.MetaInfo, Target: target, Peers: o.peers, Seeders: append(ft.Seeders, o.seeders...), EzioRoom: len(ft.Seeders) > 0,
		Trackers: trackers, SeedAfter: seedAfter, Timeout: timeout, Recheck: o.recheck, Tuning: a.Tuning, Logger: log,
	}
	j, err := deployListening(ctx, do, a.Tuning.ListenAddr == "", serverHost(src, do))
	if err != nil {
		return nil, "", deployError(err)
	}
	return j, "", followJob(ctx, j, a.Stdout, a.progressMode(o.asJSON), nil)
}

// fetchError words a failure to get the torrent: a server that cannot be
// reached is worth retrying (exit 3); a body that is no torrent is not.
func fetchError(err error) error {
	var ue *engine.UnreachableError
	if errors.As(err, &ue) {
		return err
	}
	var ne net.Error
	var oe *net.OpError
	var nf *engine.NotFoundError
	if errors.As(err, &nf) || errors.As(err, &oe) || errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) || discover.Unreachable(err) {
		return &engine.UnreachableError{What: "the server", Err: err}
	}
	return refused(err)
}

// deployError maps an engine refusal to exit 2, keeping the other codes.
func deployError(err error) error {
	var ue *engine.UnreachableError
	var le *engine.ListenError
	switch {
	case errors.As(err, &ue):
		return err
	case errors.As(err, &le):
		return &ExitError{Code: ExitFailed, Err: fmt.Errorf("%w (choose another with --listen ADDR:PORT)", err)}
	case errors.Is(err, engine.ErrNoPeerSource):
		return refused(fmt.Errorf("%w: give --tracker URL or --peer HOST:PORT", err))
	}
	return refused(err)
}

// serverHost is the host the image comes from: the URL's, or the first
// seeder's or peer's.
func serverHost(src string, o engine.DeployOptions) string {
	if u, err := url.Parse(src); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		return u.Hostname()
	}
	for _, p := range append(append([]string{}, o.Seeders...), o.Peers...) {
		if h, _, err := net.SplitHostPort(p); err == nil {
			return h
		}
	}
	return ""
}

// deployListening starts a deploy. When the listen address is not given,
// it listens for other clients on the address this machine reaches the
// server from (not on every interface), on the usual port, or on a free
// one when that is taken (a seeder on the same machine has it).
func deployListening(ctx context.Context, o engine.DeployOptions, pick bool, host string) (*engine.Job, error) {
	if !pick {
		return engine.Deploy(ctx, o)
	}
	ip := "0.0.0.0"
	if host != "" {
		if local := localAddrToward(host); local != "" {
			ip = local
		}
	}
	o.Tuning.ListenAddr = net.JoinHostPort(ip, strconv.Itoa(engine.DefaultPeerPort))
	j, err := engine.Deploy(ctx, o)
	var le *engine.ListenError
	if errors.As(err, &le) {
		o.Tuning.ListenAddr = net.JoinHostPort(ip, "0")
		return engine.Deploy(ctx, o)
	}
	return j, err
}

// localAddrToward is this machine's address on the route to host (a UDP
// "connection" sends nothing).
func localAddrToward(host string) string {
	c, err := net.Dial("udp4", net.JoinHostPort(host, "9"))
	if err != nil {
		return ""
	}
	defer c.Close()
	if ua, ok := c.LocalAddr().(*net.UDPAddr); ok && ua.IP.To4() != nil {
		return ua.IP.String()
	}
	return ""
}
