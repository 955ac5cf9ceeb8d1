package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"ezio/disks/diskimage"
	"ezio/partclone/capture"
	"ezio/tui/format"
)

func newImportCmd(a *App) *cobra.Command {
	var o struct {
		name     string
		trackers []string
		asJSON   bool
	}
	cmd := &cobra.Command{
		Use:   "import CLONEZILLA_IMAGE_DIR OUTDIR",
		Short: "Turn a Clonezilla disk image into an ezio disk image",
		Long: `Read a Clonezilla image directory, as ocs-sr savedisk writes it, and write
the same whole-disk image ezio capture writes, into OUTDIR/NAME (NAME
defaults to the Clonezilla image's name). The disk files (disk, parts,
<disk>-pt.sf, <disk>-mbr, <disk>-hidden-data-after-mbr, <disk>-gpt.gdisk,
swappt-*.info) are copied; each partition's image
<part>.<fs>-ptcl-img.<gz|zst|xz|bz2|lz4>[.aa ...] is streamed through its
decompressor into partclone.<fs> -d -r -s - -T, which writes its extent
files and torrent.info, and the torrent is made from partclone's hashes.

Encrypted Clonezilla images and images with LVM are refused (LVM is a
later step). Exit status: 0 done, 1 failed, 2 refused, 130 interrupted.`,
		Example: `  ezio import /home/partimag/2026-12-01-img /srv/images --name pc-2026
  ezio seed /srv/images/pc-2026`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			d := a.newDiskRun("importing", o.asJSON)
			log, err := a.Logger(d.mode != progressJSON || a.LogFile != "")
			if err != nil {
				return err
			}
			r, err := capture.ImportClonezilla(cmd.Context(), capture.ImportOptions{
				Source: args[0], OutDir: filepath.Clean(args[1]), Name: o.name, Trackers: o.trackers, Logger: log,
			}, d.progress)
			return d.finish(cmd.Context(), args[0], r, err)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.name, "name", "", "image name (default: the Clonezilla image's name)")
	f.StringArrayVar(&o.trackers, "tracker", nil, "announce URL to put in the torrents (repeatable)")
	f.BoolVar(&o.asJSON, "json", false, "print progress as JSON lines and a final result object")
	return cmd
}

// captureDisk is `ezio capture DISK OUTDIR`.
func (a *App) captureDisk(ctx context.Context, o capture.DiskOptions, asJSON bool) error {
	d := a.newDiskRun("capturing", asJSON)
	log, err := a.Logger(d.mode != progressJSON || a.LogFile != "")
	if err != nil {
		return err
	}
	o.Logger = log
	r, err := capture.CaptureDisk(ctx, o, d.progress)
	return d.finish(ctx, o.Source, r, err)
}

// diskRun reports a disk capture or import.
type diskRun struct {
	a        *App
	verb     string
	mode     progressMode
	start    time.Time
	lastLen  int
	lastEmit time.Time
}

func (a *App) newDiskRun(verb string, asJSON bool) *diskRun {
	return &diskRun{a: a, verb: verb, mode: a.progressMode(asJSON), start: time.Now()}
}

// diskCaptureProgress is a --json progress line of a disk capture/import.
type diskCaptureProgress struct {
	Type             string  `json:"type"` // "progress"
	Phase            string  `json:"phase"`
	Partition        string  `json:"partition"`
	Index            int     `json:"index"`
	Count            int     `json:"count"`
	Percent          float64 `json:"percent"`
	OverallPercent   float64 `json:"overall_percent"`
	BytesPerSec      float64 `json:"bytes_per_sec"`
	RemainingSeconds float64 `json:"remaining_seconds"`
}

// diskCaptureResult is the final --json line.
type diskCaptureResult struct {
	Type     string              `json:"type"`   // "result"
	Result   string              `json:"result"` // ok, failed, refused, interrupted
	Error    string              `json:"error,omitempty"`
	Source   string              `json:"source"`
	Dir      string              `json:"dir,omitempty"`
	Manifest *diskimage.Manifest `json:"manifest,omitempty"`
	Seconds  float64             `json:"seconds"`
}

func (d *diskRun) progress(p capture.DiskProgress) {
	now := time.Now()
	verb := d.verb
	if p.Hashing {
		verb = "hashing"
	}
	switch d.mode {
	case progressLine:
		line := fmt.Sprintf("%s %s (%d of %d) %5.1f%%  disk %5.1f%%  %s  remaining %s", verb, p.Partition, p.Index, p.Count, p.Percent, p.Overall, format.Rate(p.BytesPerSec), format.ETA(p.Remaining))
		pad := ""
		if n := d.lastLen - len(line); n > 0 {
			pad = strings.Repeat(" ", n)
		}
		d.lastLen = len(line)
		fmt.Fprint(d.a.Stdout, "\r"+line+pad)
	case progressJSON:
		if !d.lastEmit.IsZero() && now.Sub(d.lastEmit) < time.Second && !p.Done {
			return
		}
		json.NewEncoder(d.a.Stdout).Encode(diskCaptureProgress{Type: "progress", Phase: verb, Partition: p.Partition, Index: p.Index, Count: p.Count,
			Percent: p.Percent, OverallPercent: p.Overall, BytesPerSec: p.BytesPerSec, RemainingSeconds: p.Remaining.Seconds()})
	case progressPlain:
		if !d.lastEmit.IsZero() && now.Sub(d.lastEmit) < 5*time.Second && !p.Done {
			return
		}
		fmt.Fprintf(d.a.Stdout, "%s %s (%d of %d) %5.1f%%  disk %5.1f%%\n", verb, p.Partition, p.Index, p.Count, p.Percent, p.Overall)
	}
	d.lastEmit = now
}

func (d *diskRun) finish(ctx context.Context, source string, r *capture.DiskResult, err error) error {
	if d.mode == progressLine && d.lastLen > 0 {
		fmt.Fprintln(d.a.Stdout)
	}
	if err != nil {
		var re *capture.RefusedError
		switch {
		case ctx.Err() != nil:
			err = &ExitError{Code: ExitInterrupted, Err: fmt.Errorf("%s interrupted; nothing was kept: %w", d.verb, err)}
		case errors.As(err, &re):
			err = refused(re.Err)
		}
	}
	if d.mode == progressJSON {
		res := diskCaptureResult{Type: "result", Result: "ok", Source: source, Seconds: time.Since(d.start).Seconds()}
		if err != nil {
			res.Result, res.Error = "failed", err.Error()
			var ee *ExitError
			if errors.As(err, &ee) && ee.Code == ExitRefused {
				res.Result = "refused"
			} else if errors.As(err, &ee) && ee.Code == ExitInterrupted {
				res.Result = "interrupted"
			}
		} else {
			res.Dir, res.Manifest = r.Dir, r.Manifest
		}
		json.NewEncoder(d.a.Stdout).Encode(res)
		return err
	}
	if err != nil {
		return err
	}
	w := d.a.Stdout
	m := r.Manifest
	fmt.Fprintf(w, "%s %s: %s disk of %s, %d partitions, %s of data in %s\n", strings.TrimSuffix(d.verb, "ing")+"ed", source, strings.ToUpper(m.Label), format.Bytes(m.SizeBytes), len(m.Partitions), format.Bytes(m.DataBytes()), format.Duration(time.Since(d.start)))
	for _, p := range m.Partitions {
		fmt.Fprintf(w, "  %d %-10s %-9s %-9s %s\n", p.Number, p.Name, format.Bytes(p.Size), cmp.Or(p.Filesystem, "-"), p.Saved)
	}
	fmt.Fprintf(w, "image:   %s\n", r.Dir)
	fmt.Fprintf(w, "seed it: ezio seed %s\n", r.Dir)
	return nil
}
