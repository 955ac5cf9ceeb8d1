package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"ezio/partclone"
	"ezio/partclone/capture"
	"ezio/tui/format"
)

// Capture modes and the manifest live with the capture itself.
const (
	ModeImage       = capture.ModeImage
	ModeTorrentOnly = capture.ModeTorrentOnly
)

// CaptureManifest is OUTDIR/<name>.json.
type CaptureManifest = capture.Manifest

// captureProgress is a --json progress line of `ezio capture`.
type captureProgress struct {
	Type             string  `json:"type"`  // "progress"
	Phase            string  `json:"phase"` // "capturing"
	Percent          float64 `json:"percent"`
	BytesPerSec      float64 `json:"bytes_per_sec"`
	ElapsedSeconds   float64 `json:"elapsed_seconds"`
	RemainingSeconds float64 `json:"remaining_seconds"`
}

// captureResult is the final --json line of `ezio capture`.
type captureResult struct {
	Type        string  `json:"type"`   // "result"
	Result      string  `json:"result"` // "ok", "failed", "refused", "interrupted"
	Error       string  `json:"error,omitempty"`
	Name        string  `json:"name,omitempty"`
	Mode        string  `json:"mode,omitempty"`
	Source      string  `json:"source,omitempty"`
	Filesystem  string  `json:"filesystem,omitempty"`
	Program     string  `json:"program,omitempty"`
	Fallback    bool    `json:"fallback,omitempty"`
	InfoHash    string  `json:"infohash,omitempty"`
	Torrent     string  `json:"torrent,omitempty"`
	TorrentInfo string  `json:"torrent_info,omitempty"`
	Manifest    string  `json:"manifest,omitempty"`
	ImageDir    string  `json:"image_dir,omitempty"`
	SeedFrom    string  `json:"seed_from,omitempty"`
	Extents     int     `json:"extents,omitempty"`
	Pieces      int     `json:"pieces,omitempty"`
	UsedBytes   int64   `json:"used_bytes,omitempty"`
	DeviceSize  int64   `json:"device_size,omitempty"`
	Seconds     float64 `json:"seconds"`
}

func newCaptureCmd(a *App) *cobra.Command {
	var o struct {
		name        string
		torrentOnly bool
		fsType      string
		trackers    []string
		asJSON      bool
		pieceMiB    int
	}
	cmd := &cobra.Command{
		Use:   "capture SOURCE OUTDIR",
		Short: "Capture a disk or a partition with partclone and make torrents of it",
		Long: `When SOURCE is a whole disk with a partition table (GPT or MBR), capture
the whole disk into the image directory OUTDIR/NAME (NAME defaults to the
disk's name): its table and boot areas under Clonezilla's names (disk,
parts, <disk>-pt.sf, <disk>-mbr, <disk>-hidden-data-after-mbr,
<disk>-gpt.gdisk), each partition as below (<part>/, <part>.torrent,
<part>.torrent.info), swap as its UUID and label, and ezio-disk.json.
Its torrents have 4 MiB pieces (--piece-size): a room passes them on
sooner than partclone's 16 MiB, for one more read of the extents.
Serve it with ezio seed OUTDIR/NAME; write it with ezio deploy. No
partition of the disk may be mounted.

Otherwise capture the used blocks of the partition SOURCE with the partclone program
for its filesystem (detected with blkid, or given with --fs; a filesystem
partclone does not know is copied block by block by partclone.dd), and turn
partclone's torrent.info into an image torrent, reusing its SHA-1 piece
hashes: the data is read once (with --piece-size other than 16, the extent
files are read again and hashed in pieces of that size).

OUTDIR receives (the layout of Clonezilla's BitTorrent mode):
  OUTDIR/NAME/               the used blocks as extent files named by hex disk offset
  OUTDIR/NAME.torrent        the image torrent (info.name NAME, 16 MiB pieces unless --piece-size)
  OUTDIR/NAME.torrent.info   partclone's description of the extents and hashes
  OUTDIR/NAME.json           a manifest: source, filesystem, sizes, infohash, date

With --torrent-only partclone only reads and hashes: no extent files are
written, and the seeder serves the image straight from SOURCE, which must
then stay unchanged until every client is done.

SOURCE must not be mounted. An interrupted capture leaves no torrent or
manifest behind. Exit status: 0 on success, 1 when partclone fails, 2 when
refused (mounted source, existing image, missing partclone), 130 when
interrupted.`,
		Example: `  ezio capture /dev/sda /srv/images --name pc-2026
  ezio capture /dev/sda1 /srv/images
  ezio seed /srv/images/sda1.torrent /srv/images/sda1
  ezio capture /dev/sda1 /srv/images --torrent-only --json
  ezio seed /srv/images/sda1.torrent /dev/sda1`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if n := o.pieceMiB; n != 0 && (n < 1 || capture.CheckPieceLength(int64(n)<<20) != nil) {
				return refused(fmt.Errorf("--piece-size %d: give a power of two from 1 to 64 (MiB)", n))
			}
			if !o.torrentOnly && o.fsType == "" && capture.IsWholeDiskWithTable(cmd.Context(), args[0]) {
				return a.captureDisk(cmd.Context(), capture.DiskOptions{Source: args[0], OutDir: filepath.Clean(args[1]), Name: o.name, Trackers: o.trackers, PieceLength: int64(o.pieceMiB) << 20}, o.asJSON)
			}
			c := &captureRun{
				a: a, source: args[0], outDir: filepath.Clean(args[1]), name: o.name,
				torrentOnly: o.torrentOnly, fsType: o.fsType, trackers: o.trackers,
				pieceLength: int64(o.pieceMiB) << 20,
				mode:        a.progressMode(o.asJSON), start: time.Now(),
			}
			return c.run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.name, "name", "", "image name (info.name and file names), e.g. sda1 (default: SOURCE's base name)")
	f.BoolVar(&o.torrentOnly, "torrent-only", false, "write no extent files, only the torrent: seed straight from SOURCE")
	f.StringVar(&o.fsType, "fs", "", "filesystem type instead of detecting it, e.g. ext4, vfat, ntfs (unknown types are copied with partclone.dd)")
	f.StringArrayVar(&o.trackers, "tracker", nil, "announce URL to put in the torrent (repeatable)")
	f.BoolVar(&o.asJSON, "json", false, "print progress as JSON lines and a final result object")
	f.IntVar(&o.pieceMiB, "piece-size", 0, "MiB per torrent piece, a power of two up to 64: smaller pieces start a room sooner, but anything but 16 reads the extents again to hash them (default: 4 for a whole disk, partclone's 16 for a partition)")
	return cmd
}

// captureRun is one `ezio capture`.
type captureRun struct {
	a           *App
	source      string
	outDir      string
	name        string
	torrentOnly bool
	fsType      string
	trackers    []string
	pieceLength int64
	mode        progressMode
	start       time.Time
	log         *slog.Logger

	lastLen  int
	lastEmit time.Time
}

func (c *captureRun) run(ctx context.Context) error {
	res, err := c.capture(ctx)
	if c.mode == progressLine && c.lastLen > 0 {
		fmt.Fprintln(c.a.Stdout)
	}
	if err != nil && ctx.Err() != nil {
		err = &ExitError{Code: ExitInterrupted, Err: fmt.Errorf("capture interrupted; nothing was kept: %w", err)}
	}
	if c.mode == progressJSON {
		if err != nil {
			r := captureResult{Type: "result", Result: "failed", Error: err.Error(), Source: c.source, Seconds: time.Since(c.start).Seconds()}
			var ee *ExitError
			if errors.As(err, &ee) {
				switch ee.Code {
				case ExitRefused:
					r.Result = "refused"
				case ExitInterrupted:
					r.Result = "interrupted"
				}
			}
			json.NewEncoder(c.a.Stdout).Encode(r)
		} else {
			json.NewEncoder(c.a.Stdout).Encode(res)
		}
	}
	if err == nil && c.mode != progressJSON {
		w := c.a.Stdout
		fs := res.Filesystem
		if fs == "" {
			fs = "no filesystem found"
		}
		how := res.Program
		if res.Fallback {
			how += ", every block"
		}
		fmt.Fprintf(w, "captured %s (%s, %s) in %s: %s in %d extents, %d pieces\n", res.Source, fs, how, format.Duration(time.Duration(res.Seconds*float64(time.Second))), format.Bytes(res.UsedBytes), res.Extents, res.Pieces)
		fmt.Fprintf(w, "torrent:  %s (infohash %s)\n", res.Torrent, res.InfoHash)
		fmt.Fprintf(w, "manifest: %s\n", res.Manifest)
		if res.Mode == ModeTorrentOnly {
			fmt.Fprintf(w, "no extent files were written: serve it from the source, unchanged:\n")
		}
		fmt.Fprintf(w, "seed it:  ezio seed %s %s\n", res.Torrent, res.SeedFrom)
	}
	return err
}

// capture does the work; the caller reports the outcome.
func (c *captureRun) capture(ctx context.Context) (*captureResult, error) {
	log, err := c.a.Logger(c.mode != progressJSON || c.a.LogFile != "")
	if err != nil {
		return nil, err
	}
	c.log = log
	r, err := capture.Capture(ctx, capture.Options{
		Source: c.source, OutDir: c.outDir, Name: c.name, FSType: c.fsType,
		TorrentOnly: c.torrentOnly, Trackers: c.trackers, Logger: log,
		PieceLength: c.pieceLength, HashProgress: func(p partclone.Progress) { c.report("hashing", p) },
	}, c.progress)
	if err != nil {
		var re *capture.RefusedError
		if errors.As(err, &re) {
			return nil, refused(re.Err)
		}
		return nil, err
	}
	m := r.Manifest
	return &captureResult{
		Type: "result", Result: "ok", Name: m.Name, Mode: m.Mode, Source: c.source,
		Filesystem: m.Filesystem, Program: m.Program, Fallback: m.Fallback,
		InfoHash: m.InfoHash, Torrent: r.Paths.Torrent, TorrentInfo: r.Paths.Info, Manifest: r.Paths.Manifest,
		ImageDir: r.ImageDir, SeedFrom: r.SeedFrom,
		Extents: m.Extents, Pieces: m.Pieces, UsedBytes: m.UsedBytes, DeviceSize: m.DeviceSize,
		Seconds: time.Since(c.start).Seconds(),
	}, nil
}

// progress shows one partclone progress report.
func (c *captureRun) progress(p partclone.Progress) { c.report("capturing", p) }

// report shows the progress of a phase: capturing, or hashing.
func (c *captureRun) report(phase string, p partclone.Progress) {
	now := time.Now()
	switch c.mode {
	case progressLine:
		line := fmt.Sprintf("%-9s  %5.1f%%  %s  elapsed %s  remaining %s", phase,
			p.Percent, format.Rate(p.BytesPerSec), format.Duration(p.Elapsed), format.ETA(p.Remaining))
		pad := ""
		if n := c.lastLen - len(line); n > 0 {
			pad = strings.Repeat(" ", n)
		}
		c.lastLen = len(line)
		fmt.Fprint(c.a.Stdout, "\r"+line+pad)
	case progressJSON:
		if !c.lastEmit.IsZero() && now.Sub(c.lastEmit) < time.Second && !p.Done {
			return
		}
		json.NewEncoder(c.a.Stdout).Encode(captureProgress{
			Type: "progress", Phase: phase, Percent: p.Percent, BytesPerSec: p.BytesPerSec,
			ElapsedSeconds: p.Elapsed.Seconds(), RemainingSeconds: p.Remaining.Seconds(),
		})
	case progressPlain:
		if !c.lastEmit.IsZero() && now.Sub(c.lastEmit) < 5*time.Second && !p.Done {
			return
		}
		fmt.Fprintf(c.a.Stdout, "%s %5.1f%%  %s  elapsed %s  remaining %s\n", phase,
			p.Percent, format.Rate(p.BytesPerSec), format.Duration(p.Elapsed), format.ETA(p.Remaining))
	}
	c.lastEmit = now
}

func newTorrentFromPartcloneCmd(a *App) *cobra.Command {
	var o struct {
		out, name, verify string
		trackers          []string
	}
	cmd := &cobra.Command{
		Use:   "from-partclone torrent.info -o OUT.torrent --name NAME",
		Short: "Turn partclone's torrent.info into an image torrent, reusing its hashes",
		Long: `Convert the torrent.info that partclone -T or -t writes (block size, extents
as hex offset/length pairs, SHA-1 of every 16 MiB piece) into an image
torrent: files NAME/<offset>, 16 MiB pieces, partclone's hashes. Nothing is
read or hashed, unless --verify DIR re-hashes the extent files in DIR
(partclone -T output) and reports the pieces that do not match; then no
torrent is written and the exit status is 1.

A malformed torrent.info is refused (exit 2) with the line at fault.`,
		Example: `  ezio torrent from-partclone /srv/images/sda1.torrent.info -o sda1.torrent --name sda1
  ezio torrent from-partclone img/torrent.info -o sda1.torrent --name sda1 --verify img --tracker http://10.0.0.1:6969/announce`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.out == "" {
				return refused(errors.New("give the output file with -o OUT.torrent"))
			}
			if o.name == "" {
				return refused(errors.New("give the image name with --name, e.g. --name sda1 (it becomes info.name)"))
			}
			if err := capture.CheckName(o.name); err != nil {
				return refused(err)
			}
			f, err := os.Open(args[0])
			if err != nil {
				return refused(err)
			}
			info, err := partclone.ParseInfo(f)
			f.Close()
			if err != nil {
				return refused(fmt.Errorf("%s: %w", args[0], err))
			}
			mi, sum, err := capture.TorrentFromInfo(info, o.name, o.trackers)
			if err != nil {
				return refused(fmt.Errorf("%s: %w", args[0], err))
			}
			if o.verify != "" {
				if err := a.verifyExtents(cmd.Context(), info, o.verify); err != nil {
					return err
				}
			}
			var buf bytes.Buffer
			if err := mi.Write(&buf); err != nil {
				return err
			}
			if err := capture.WriteFileAtomic(o.out, buf.Bytes()); err != nil {
				return err
			}
			fmt.Fprintf(a.Stdout, "wrote %s: %s, %d extents, %s in %d pieces of %s, infohash %s\n", o.out, sum.Name, sum.Extents, format.Bytes(sum.TotalBytes), sum.Pieces, format.Bytes(sum.PieceLength), sum.InfoHash)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.out, "output", "o", "", "torrent file to write")
	f.StringVar(&o.name, "name", "", "image name (info.name), e.g. sda1")
	f.StringArrayVar(&o.trackers, "tracker", nil, "announce URL (repeatable)")
	f.StringVar(&o.verify, "verify", "", "re-hash the extent files in this directory against torrent.info first")
	return cmd
}

// verifyExtents re-hashes the extent files in dir and reports every piece
// that does not match, with the extent files it is made of.
func (a *App) verifyExtents(ctx context.Context, info *partclone.Info, dir string) error {
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		if err == nil {
			err = errors.New("not a directory")
		}
		return refused(fmt.Errorf("--verify %s: %w", dir, err))
	}
	tty := a.isTerminal(a.Stderr)
	start := time.Now()
	bad, err := partclone.VerifyDir(ctx, info, dir, func(done, total int64) {
		if tty {
			fmt.Fprintf(a.Stderr, "\rverifying %s  %s of %s  %s   ", format.Percent(done, total), format.Bytes(done), format.Bytes(total), format.Rate(float64(done)/max(time.Since(start).Seconds(), 1e-3)))
		}
	})
	if tty {
		fmt.Fprintln(a.Stderr)
	}
	if err != nil {
		if ctx.Err() != nil {
			return &ExitError{Code: ExitInterrupted, Err: err}
		}
		return err
	}
	if len(bad) == 0 {
		fmt.Fprintf(a.Stdout, "verified %s: all %d pieces match\n", dir, info.NumPieces())
		return nil
	}
	const show = 20
	for i, p := range bad {
		if i == show {
			fmt.Fprintf(a.Stdout, "... and %d more\n", len(bad)-show)
			break
		}
		fmt.Fprintf(a.Stdout, "piece %d does not match (extent files %s)\n", p, strings.Join(pieceFiles(info, p), ", "))
	}
	return &ExitError{Code: ExitFailed, Err: fmt.Errorf("%d of %d pieces in %s do not match %s; no torrent written", len(bad), info.NumPieces(), dir, partclone.InfoFileName)}
}

// pieceFiles names the extent files piece p is made of.
func pieceFiles(info *partclone.Info, p int) []string {
	from := int64(p) * partclone.InfoPieceLength
	to := from + partclone.InfoPieceLength
	var names []string
	var pos int64
	for _, e := range info.Extents {
		if pos < to && pos+e.Length > from {
			names = append(names, partclone.ExtentFileName(e.Offset))
		}
		pos += e.Length
		if pos >= to {
			break
		}
	}
	return names
}
