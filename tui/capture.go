package tui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/huh"

	"ezio/disks/diskimage"
	"ezio/engine/server"
	"ezio/partclone"
	"ezio/partclone/capture"
	"ezio/tui/format"
)

// CaptureValues are what Capture asks; kept between visits.
type CaptureValues struct {
	Source, OutDir, Name string
	TorrentOnly          bool
	// Tracker is the server that will serve the image (HOST[:PORT] or
	// its announce URL): its tracker goes into the torrent, so that the
	// torrent deploys from a file. Filled in once from what the wizard
	// knows; "" puts none in.
	Tracker      string
	trackerGuess bool // Tracker was filled in (the technician may clear it)
	// WholeDisk: Source was chosen from the list as a disk with
	// partitions, captured whole (capture.CaptureDisk). A typed path is
	// judged when the capture starts, as `ezio capture` does.
	WholeDisk bool
}

// NewCaptureFlow asks for a disk or a partition of this machine (or a
// path) and saves it: a partition with partclone, its torrent built from
// partclone's hashes, then offered to Serve; a whole disk as a disk image
// directory (capture.CaptureDisk), as `ezio capture DISK DIR` does.
func NewCaptureFlow(c *Common, deps *Deps, v *CaptureValues, serve *ServeValues) Screen {
	if !v.trackerGuess {
		v.trackerGuess = true
		v.Tracker = servingAddr(serve)
	}
	return newTaskForm(c, deps, serve, "capture a disk or a partition", func() taskFunc { return captureTask(*v, deps.Logger) },
		func() *huh.Group { return captureGroup(c, deps, v) }, func() { v.Source, v.WholeDisk = "", false })
}

func captureGroup(c *Common, deps *Deps, v *CaptureValues) *huh.Group {
	return huh.NewGroup(
		newSourceField(c, v, deps.ListDisks),
		huh.NewInput().Title("Output directory").Description("created if missing; a partition goes in NAME/, NAME.torrent and NAME.json beside it, a disk in the directory NAME/").
			Value(&v.OutDir).Validate(func(s string) error {
			if trimmed(s) == "" {
				return errors.New("a directory is needed")
			}
			return nil
		}),
		&skippedFor{Field: huh.NewSelect[bool]().Title("What to save").Options(
			huh.NewOption("an image: the used blocks as extent files (serve from the directory)", false),
			huh.NewOption("the torrent only (serve from the partition itself)", true),
		).Value(&v.TorrentOnly), skip: func() bool { return v.WholeDisk }, title: "What to save",
			note: "the disk image: table, boot areas, each partition's used blocks"},
		huh.NewInput().Title("Image name").Description("empty: the device's name, e.g. sda1 or sda").Value(&v.Name),
		huh.NewInput().Title("Server that will serve it").
			Description("its tracker goes into the torrent, so the torrent deploys from a file; empty: none").
			Placeholder("10.0.0.1:6969").Value(&v.Tracker).Validate(func(s string) error {
			_, err := trackerURL(s)
			return err
		}),
	)
}

// servingAddr is where this machine would serve, as the Serve form has
// it or would default it: HOST:PORT, "" when it has no LAN address.
func servingAddr(serve *ServeValues) string {
	host, port := "", strconv.Itoa(server.DefaultTrackerPort)
	if serve != nil {
		host = serve.Host
		if p := trimmed(serve.Port); p != "" {
			port = p
		}
	}
	if host == "" {
		for _, a := range listLocalAddrs() {
			if ip := net.ParseIP(a.ip); ip != nil && !ip.IsLoopback() {
				host = a.ip
				break
			}
		}
	}
	if host == "" {
		return ""
	}
	return net.JoinHostPort(host, port)
}

// trackerURL is the announce URL of a server typed as HOST[:PORT] or
// http://HOST:PORT/ (ezio's tracker is at /announce), or an announce URL
// as it is; "" for none.
func trackerURL(s string) (string, error) {
	s = trimmed(s)
	if s == "" {
		return "", nil
	}
	if u, err := url.Parse(s); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && strings.HasSuffix(u.Path, "/announce") {
		return s, nil
	}
	base, err := server.ParseServer(s)
	if err != nil {
		return "", errors.New("a server address like 10.0.0.1:6969, or empty for none")
	}
	return base + "/announce", nil
}

// serveValuesFor is the Serve form's start after a capture: the image,
// and the address and port of the tracker the torrent names when it is
// this machine's, so that serving it runs that very tracker.
func serveValuesFor(torrent, source, tracker string) *ServeValues {
	sv := &ServeValues{Torrent: torrent, Source: source}
	u, err := url.Parse(tracker)
	if tracker == "" || err != nil {
		return sv
	}
	sv.Port = u.Port()
	for _, a := range listLocalAddrs() {
		if a.ip == u.Hostname() {
			sv.Host = a.ip
		}
	}
	return sv
}

func captureTask(v CaptureValues, log *slog.Logger) taskFunc {
	return func(ctx context.Context, report func(taskProgress)) taskResult {
		src, out := trimmed(v.Source), filepath.Clean(trimmed(v.OutDir))
		tracker, _ := trackerURL(v.Tracker)
		var trackers []string
		if tracker != "" {
			trackers = []string{tracker}
		}
		// A disk chosen from the list is captured whole; a typed path by
		// the command line's rule.
		if v.WholeDisk || (!v.TorrentOnly && capture.IsWholeDiskWithTable(ctx, src)) {
			return captureDiskTask(ctx, capture.DiskOptions{Source: src, OutDir: out, Name: trimmed(v.Name), Trackers: trackers, Logger: log}, tracker, report)
		}
		report(taskProgress{frac: 0, what: "starting partclone on " + src})
		r, err := capture.Capture(ctx, capture.Options{Source: src, OutDir: out, Name: trimmed(v.Name), TorrentOnly: v.TorrentOnly, Trackers: trackers}, func(p partclone.Progress) {
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
		if tracker != "" {
			lines = append(lines, "the torrent's tracker: "+tracker+" (serve it there)")
		} else {
			lines = append(lines, "the torrent names no tracker: clients fetch it from the server that serves it")
		}
		return taskResult{lines: lines, serve: serveValuesFor(r.Paths.Torrent, r.SeedFrom, tracker)}
	}
}

// captureDiskTask saves a whole disk as a disk image directory, with the
// partition at work and the whole disk in the progress, and lists each
// partition and how it was saved at the end.
func captureDiskTask(ctx context.Context, o capture.DiskOptions, tracker string, report func(taskProgress)) taskResult {
	start := time.Now()
	report(taskProgress{frac: 0, what: "reading the partition table of " + o.Source})
	r, err := capture.CaptureDisk(ctx, o, func(p capture.DiskProgress) { report(diskTaskProgress(p)) })
	if err != nil {
		hint := "Check the disk and the output directory, then try again."
		var re *capture.RefusedError
		var ee *exec.Error
		switch {
		case errors.As(err, &re) && strings.Contains(err.Error(), "mounted"):
			hint = "Unmount its partitions first (umount each mount point named above), then try again."
		case errors.As(err, &re) && strings.Contains(err.Error(), "already exists"):
			hint = "Choose another image name or output directory, or remove the old image."
		case errors.As(err, &ee):
			hint = "Install the missing program (" + ee.Name + ") and try again."
		}
		return taskResult{err: err, hint: hint}
	}
	return diskTaskResult(o.Source, r, tracker, time.Since(start))
}

// diskTaskProgress is a disk capture's progress as the task screen shows
// it: the partition at work (k of n, its percent) in words, the whole
// disk in the bar.
func diskTaskProgress(p capture.DiskProgress) taskProgress {
	what := fmt.Sprintf("partition %s, %d of %d: %.1f%%", p.Partition, p.Index, p.Count, p.Percent)
	if p.Hashing {
		what = fmt.Sprintf("partition %s, %d of %d: hashing %.1f%%", p.Partition, p.Index, p.Count, p.Percent)
	}
	if p.Remaining > 0 {
		what += ", " + format.Duration(p.Remaining) + " left"
	}
	return taskProgress{frac: p.Overall / 100, what: what + "; the bar is the whole disk", rate: p.BytesPerSec}
}

// diskTaskResult is the end of a disk capture: each partition and how
// it was saved, the image directory, and how to serve it.
func diskTaskResult(source string, r *capture.DiskResult, tracker string, took time.Duration) taskResult {
	m := r.Manifest
	lines := []string{
		fmt.Sprintf("%s captured whole in %s: %s, %s, %d partitions, %s of data",
			source, format.Duration(took), strings.ToUpper(m.Label), format.Bytes(m.SizeBytes), len(m.Partitions), format.Bytes(m.DataBytes())),
	}
	for _, p := range m.Partitions {
		fs := p.Filesystem
		if fs == "" {
			fs = "-"
		}
		lines = append(lines, fmt.Sprintf("%3d  %-9s %9s  %-6s %s", p.Number, p.Name, format.Bytes(p.Size), fs, savedAs(p)))
	}
	// Paths are long: wrapped rather than cut at the screen's edge.
	lines = append(lines, wrap("image directory: "+r.Dir, 74)...)
	if tracker != "" {
		lines = append(lines, "the torrents' tracker: "+tracker)
	}
	// Serve takes the directory as it is; so does the command line.
	lines = append(lines, wrap("serve it now, or later with: ezio seed "+r.Dir, 74)...)
	return taskResult{lines: lines, serve: serveValuesFor(r.Dir, "", tracker)}
}

// savedAs says how a partition of a disk image was saved.
func savedAs(p diskimage.Partition) string {
	switch p.Saved {
	case diskimage.SavedPartclone:
		return "partclone, used blocks (" + p.Program + ")"
	case diskimage.SavedDD:
		return "dd, every block (" + p.Program + ")"
	case diskimage.SavedSwap:
		return "swap: UUID and label recorded, not copied"
	case diskimage.SavedExtended:
		return "extended: rebuilt from the table"
	case "":
		return "none"
	}
	return p.Saved
}
