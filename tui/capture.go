package tui

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/huh"

	"ezio/engine"
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
}

// NewCaptureFlow asks for a partition and saves it with partclone, builds
// its torrent from partclone's hashes, and offers to serve it.
func NewCaptureFlow(c *Common, deps *Deps, v *CaptureValues, serve *ServeValues) Screen {
	if !v.trackerGuess {
		v.trackerGuess = true
		v.Tracker = servingAddr(serve)
	}
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
	host, port := "", strconv.Itoa(engine.DefaultTrackerPort)
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
	base, err := engine.ParseServer(s)
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

func captureTask(v CaptureValues) taskFunc {
	return func(ctx context.Context, report func(taskProgress)) taskResult {
		src, out := trimmed(v.Source), filepath.Clean(trimmed(v.OutDir))
		tracker, _ := trackerURL(v.Tracker)
		var trackers []string
		if tracker != "" {
			trackers = []string{tracker}
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
