package tui

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/charmbracelet/huh"

	"ezio/partclone"
	"ezio/partclone/capture"
	"ezio/tui/format"
)

// CaptureValues are what Capture asks; kept between visits.
type CaptureValues struct {
	Source, OutDir, Name string
	TorrentOnly          bool
}

// NewCaptureFlow asks for a partition and saves it with partclone, builds
// its torrent from partclone's hashes, and offers to serve it.
func NewCaptureFlow(c *Common, deps *Deps, v *CaptureValues, serve *ServeValues) Screen {
	return newTaskForm(c, deps, serve, "capture a partition", func() taskFunc { return captureTask(*v) },
		func() *huh.Group { return captureGroup(v) }, func() { v.Source = "" })
}

func captureGroup(v *CaptureValues) *huh.Group {
	return huh.NewGroup(
		huh.NewInput().Title("Partition to capture").Description("e.g. /dev/sda1; it must not be mounted (see Disks)").
			Value(&v.Source).Validate(func(s string) error {
			if trimmed(s) == "" {
				return errors.New("a device is needed")
			}
			return nil
		}),
		huh.NewInput().Title("Output directory").Description("created if missing; the image goes in NAME/, NAME.torrent and NAME.json beside it").
			Value(&v.OutDir).Validate(func(s string) error {
			if trimmed(s) == "" {
				return errors.New("a directory is needed")
			}
			return nil
		}),
		huh.NewSelect[bool]().Title("What to save").Options(
			huh.NewOption("an image: the used blocks as extent files (serve from the directory)", false),
			huh.NewOption("the torrent only (serve from the partition itself)", true),
		).Value(&v.TorrentOnly),
		huh.NewInput().Title("Image name").Description("empty: the partition's name, e.g. sda1").Value(&v.Name),
	)
}

func captureTask(v CaptureValues) taskFunc {
	return func(ctx context.Context, report func(taskProgress)) taskResult {
		src, out := trimmed(v.Source), filepath.Clean(trimmed(v.OutDir))
		report(taskProgress{frac: 0, what: "starting partclone on " + src})
		r, err := capture.Capture(ctx, capture.Options{Source: src, OutDir: out, Name: trimmed(v.Name), TorrentOnly: v.TorrentOnly}, func(p partclone.Progress) {
			report(taskProgress{frac: p.Percent / 100, what: "partclone is reading " + src, rate: p.BytesPerSec, eta: p.Remaining})
		})
		if err != nil {
			hint := "Check the partition and the output directory, then try again."
			var me *partclone.MountedError
			var ee *exec.Error
			switch {
			case errors.As(err, &me):
				hint = "Unmount it first: " + strings.Join(me.Commands, "; ")
			case errors.As(err, &ee):
				hint = "Install partclone (the partclone package of the distribution) and try again."
			}
			return taskResult{err: err, hint: hint}
		}
		m := r.Manifest
		lines := []string{
			fmt.Sprintf("%s captured with %s in %s", src, m.Program, format.Duration(time.Duration(m.CaptureSeconds*float64(time.Second)))),
			"wrote " + r.Paths.Torrent + " and " + r.Paths.Manifest,
			fmt.Sprintf("image %s: %s in %d extents, %d pieces", m.Name, format.Bytes(m.UsedBytes), m.Extents, m.Pieces),
		}
		return taskResult{lines: lines, serve: &ServeValues{Torrent: r.Paths.Torrent, Source: r.SeedFrom}}
	}
}
