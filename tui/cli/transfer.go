package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"ezio/engine"
	"ezio/engine/discover"
	"ezio/tui/format"
)

func init() {
	Register(newDeployCmd)
	Register(newSeedCmd)
}

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
	Result  string  `json:"result,omitempty"` // "ok", "failed", "interrupted"
	Error   string  `json:"error,omitempty"`
	Seconds float64 `json:"seconds,omitempty"`
	Fleet   any     `json:"fleet,omitempty"`
}

// StatusLine is the one-line summary shown while a job runs.
func StatusLine(s engine.Snapshot) string {
	var b strings.Builder
	if s.Role == engine.RoleSeed {
		fmt.Fprintf(&b, "%s  up %s  sent %s  peers %d  %s", s.Phase, format.Rate(s.UploadRate), format.Bytes(s.BytesUploaded), s.NumPeers, format.Duration(s.Elapsed))
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
	snaps, _ := j.Subscribe()
	enc := json.NewEncoder(w)
	start := time.Now()
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
		if mode == progressJSON {
			jl := jsonLine{Type: "result", Snapshot: s, Result: "ok", Seconds: time.Since(start).Seconds()}
			switch {
			case err != nil && ctx.Err() != nil:
				jl.Result, jl.Error = "interrupted", "stopped by signal"
			case err != nil:
				jl.Result, jl.Error = "failed", err.Error()
			}
			if extra != nil {
				extra(&jl)
			}
			enc.Encode(jl)
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

func newDeployCmd(a *App) *cobra.Command {
	var o struct {
		peers, seeders []string
		tracker        string
		seedAfter      time.Duration
		yes, asJSON    bool
		recheck        bool
	}
	cmd := &cobra.Command{
		Use:   "deploy FILE.torrent|URL TARGET",
		Short: "Receive an image from the swarm and write it onto a disk, partition or file",
		Long: `Download an image from the seeder and from the other clients at once, and
write every SHA-1-verified piece straight onto TARGET at its extents' disk
offsets. TARGET is a block device, an image file (created, sparse) or a
directory (partclone extent files).

The target must not be mounted, hold swap, LVM or RAID members, or be the
disk this system runs from, and must be large enough for the image. ezio
asks you to type the target's name to confirm, unless --yes.

An interrupted deploy resumes where it stopped when run again. Exit status:
0 when every piece is verified and flushed, 1 on failure, 2 when refused,
130 when interrupted.`,
		Example: `  ezio deploy http://10.0.0.1:6969/torrents/sda1.torrent /dev/sda1
  ezio deploy sda1.torrent /dev/sdb1 --tracker http://10.0.0.1:6969/announce --yes --json
  ezio deploy sda1.torrent disk.img --peer 10.0.0.1:6881 --seed-after 10m`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			src, target := args[0], args[1]
			log, err := a.Logger(!o.asJSON || a.LogFile != "")
			if err != nil {
				return err
			}
			ft, err := discover.FetchTorrent(ctx, src, discover.DefaultTimeout)
			if err != nil {
				return sourceError(err)
			}
			sum, _, err := engine.Summarize(ft.MetaInfo)
			if err != nil {
				return refused(err)
			}
			l, kind, err := engine.PrepareDeploy(ft.MetaInfo, target, false)
			if err != nil {
				return refused(err)
			}
			if !o.yes {
				if !a.isTerminal(a.Stdin) {
					return refused(errors.New("not confirmed: standard input is not a terminal; add --yes to write without asking"))
				}
				fmt.Fprintf(a.Stderr, "Image %s: %s in %d extents (infohash %s)\n", sum.Name, format.Bytes(sum.TotalBytes), sum.Extents, sum.InfoHash[:16])
				fmt.Fprintf(a.Stderr, "Target %s (%s): the bytes of every extent, up to byte %d, will be overwritten.\n", target, kind, l.End)
				want := filepath.Base(target)
				fmt.Fprintf(a.Stderr, "Type %q to confirm: ", want)
				line, _ := bufio.NewReader(a.Stdin).ReadString('\n')
				if strings.TrimSpace(line) != want {
					return refused(errors.New("not confirmed; nothing was written"))
				}
			}
			var trackers []string
			if o.tracker != "" {
				trackers = []string{o.tracker}
			}
			j, err := engine.Deploy(ctx, engine.DeployOptions{
				Torrent: ft.MetaInfo, Target: target, Peers: o.peers, Seeders: append(ft.Seeders, o.seeders...),
				Trackers: trackers, SeedAfter: o.seedAfter, Recheck: o.recheck, Tuning: a.Tuning, Logger: log,
			})
			if err != nil {
				return refused(err)
			}
			return followJob(ctx, j, a.Stdout, a.progressMode(o.asJSON), nil)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.peers, "peer", nil, "add a peer directly, HOST:PORT (repeatable)")
	f.StringArrayVar(&o.seeders, "seeder", nil, "add a trusted seeder, HOST:PORT (never banned for bad data)")
	f.StringVar(&o.tracker, "tracker", "", "announce to this tracker instead of the torrent's")
	f.DurationVar(&o.seedAfter, "seed-after", 0, "keep serving other clients this long after completing (e.g. 10m)")
	f.BoolVarP(&o.yes, "yes", "y", false, "do not ask for confirmation")
	f.BoolVar(&o.asJSON, "json", false, "print progress as JSON lines and a final result object")
	f.BoolVar(&o.recheck, "recheck", false, "re-verify pieces already on the target instead of trusting the resume record")
	return cmd
}

func newSeedCmd(a *App) *cobra.Command {
	var o struct {
		trackerListen string
		noTracker     bool
		asJSON        bool
		noAnnounce    bool
	}
	cmd := &cobra.Command{
		Use:   "seed FILE.torrent SOURCE",
		Short: "Serve an image to the swarm from a disk, an image file or a partclone extent directory",
		Long: `Serve the image described by FILE.torrent from SOURCE until interrupted.

By default the seeder also runs ezio's HTTP tracker and torrent server on
port 6969, so a client needs only its address:
  ezio deploy http://THIS-HOST:6969/torrents/NAME.torrent TARGET
Use --no-tracker to rely on the torrent's own (external) tracker.`,
		Example: `  ezio seed sda1.torrent /srv/images/sda1
  ezio seed sda1.torrent /dev/sda1 --listen 10.0.0.1:6881 --tracker-listen 10.0.0.1:6969`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			log, err := a.Logger(!o.asJSON || a.LogFile != "")
			if err != nil {
				return err
			}
			mi, err := engine.LoadTorrent(ctx, args[0])
			if err != nil {
				return refused(err)
			}
			tl := o.trackerListen
			j, err := engine.Seed(ctx, engine.SeedOptions{
				Torrent: mi, Source: args[1], TrackerListen: tl, NoTracker: o.noTracker, Tuning: a.Tuning, Logger: log,
			})
			if err != nil {
				return refused(err)
			}
			if !o.asJSON {
				fmt.Fprintf(a.Stderr, "seeding %s (%s) from %s; peers connect to %s\n", j.Name(), j.InfoHash(), args[1], j.PeerAddr())
				if u := j.ServerURL(); u != "" {
					fmt.Fprintf(a.Stderr, "clients: ezio deploy %s/torrents/%s.torrent TARGET\n", u, j.Name())
				}
			}
			// Announce on the LAN (DNS-SD _ezio._tcp) once the server is up.
			if u := j.ServerURL(); u != "" && !o.noAnnounce {
				stopAnnounce, err := discover.Announce(ctx, discover.Info{BaseURL: u, Listen: tl, Images: []string{j.Name()}, Logger: log})
				if err != nil {
					log.Warn("not announced on the LAN; clients need this server's address", "err", err)
				} else {
					defer stopAnnounce()
					if !o.asJSON {
						fmt.Fprintf(a.Stderr, "announced on the LAN; clients can also use: ezio deploy auto:%s TARGET\n", j.Name())
					}
				}
			}
			err = followJob(ctx, j, a.Stdout, a.progressMode(o.asJSON), func(jl *jsonLine) {
				if f := j.Fleet(); f != nil {
					jl.Fleet = f
				}
			})
			var ee *ExitError
			if errors.As(err, &ee) && ee.Code == ExitInterrupted {
				// Stopping a seeder is its normal end.
				return nil
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.trackerListen, "tracker-listen", fmt.Sprintf(":%d", engine.DefaultTrackerPort), "tracker and torrent server address ADDR:PORT")
	f.BoolVar(&o.noTracker, "no-tracker", false, "do not run the embedded tracker; use the torrent's trackers")
	f.BoolVar(&o.noAnnounce, "no-announce", false, "do not announce this server on the LAN (mDNS); clients then need its address")
	f.BoolVar(&o.asJSON, "json", false, "print progress as JSON lines")
	return cmd
}
