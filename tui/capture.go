package tui

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/huh"

	"ezio/engine"
	"ezio/partclone"
	"ezio/tui/format"
)

type builtTorrent struct{ mi *metainfo.MetaInfo }

// fromInfo makes the torrent from partclone's own hashes: no data is read.
func fromInfo(name string, info *partclone.Info, trackers []string) (*builtTorrent, error) {
	ext := make([]engine.Extent, len(info.Extents))
	for i, e := range info.Extents {
		ext[i] = engine.Extent{Offset: e.Offset, Length: e.Length}
	}
	mi, err := engine.BuildFromExtents(name, partclone.InfoPieceLength, ext, info.Hashes, trackers)
	if err != nil {
		return nil, err
	}
	return &builtTorrent{mi: mi}, nil
}

// CaptureValues are what Capture asks; kept between visits.
type CaptureValues struct {
	Source, OutDir, Name string
	TorrentOnly          bool
}

// CaptureFlow saves a partition with partclone, builds its torrent from
// partclone's hashes, and offers to serve it.
type CaptureFlow struct {
	c      *Common
	deps   *Deps
	v      *CaptureValues
	serve  *ServeValues
	form   *huh.Form
	formID int
}

func NewCaptureFlow(c *Common, deps *Deps, v *CaptureValues, serve *ServeValues) *CaptureFlow {
	f := &CaptureFlow{c: c, deps: deps, v: v, serve: serve}
	f.form, f.formID = newForm(c, huh.NewGroup(
		huh.NewInput().Title("Partition to capture").Description("e.g. /dev/sda1; it must not be mounted (see Disks)").
			Value(&v.Source).Validate(func(s string) error {
			if trimmed(s) == "" {
				return errors.New("a device is needed")
			}
			return nil
		}),
		huh.NewInput().Title("Output directory").Description("created; must be empty. Extent files and torrent.info go here").
			Value(&v.OutDir).Validate(func(s string) error {
			if trimmed(s) == "" {
				return errors.New("a directory is needed")
			}
			return nil
		}),
		huh.NewSelect[bool]().Title("What to save").Options(
			huh.NewOption("an image: extent files and torrent.info (serve from the directory)", false),
			huh.NewOption("the torrent only: torrent.info (serve from the partition itself)", true),
		).Value(&v.TorrentOnly),
		huh.NewInput().Title("Image name").Description("empty: the partition's name, e.g. sda1").Value(&v.Name),
	))
	return f
}

func (f *CaptureFlow) Init() tea.Cmd { return f.form.Init() }

func (f *CaptureFlow) Update(msg tea.Msg) (Screen, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyMsg:
		if key.Matches(msg, f.c.Keys.Back) {
			return f, func() tea.Msg { return backToMenuMsg{} }
		}
	case formDoneMsg:
		if msg.id == f.formID {
			return f, show(newTask(f.c, f.deps, "capture a partition", f.serve, captureTask(*f.v)))
		}
		return f, nil
	}
	_, cmd := f.form.Update(msg)
	return f, cmd
}

func (f *CaptureFlow) View() string { return formScreen(f.c, "capture a partition", f.form) }

func captureTask(v CaptureValues) func(context.Context, func(taskProgress)) taskResult {
	return func(ctx context.Context, report func(taskProgress)) taskResult {
		src, out := trimmed(v.Source), filepath.Clean(trimmed(v.OutDir))
		report(taskProgress{frac: 0, what: "starting partclone on " + src})
		res, err := partclone.Capture(ctx, partclone.CaptureOptions{Source: src, OutDir: out, TorrentOnly: v.TorrentOnly}, func(p partclone.Progress) {
			report(taskProgress{frac: p.Percent / 100, what: "partclone is reading " + src, rate: p.BytesPerSec, eta: p.Remaining})
		})
		if err != nil {
			hint := "Check that the partition is not mounted and that the output directory is empty."
			var ee *exec.Error
			if errors.As(err, &ee) {
				hint = "Install partclone (apt install partclone) and try again."
			}
			return taskResult{err: err, hint: hint}
		}
		name := trimmed(v.Name)
		if name == "" {
			name = filepath.Base(src)
		}
		report(taskProgress{frac: 1, what: "building the torrent from partclone's hashes"})
		bt, err := fromInfo(name, res.Info, nil)
		if err != nil {
			return taskResult{err: err, hint: "partclone's torrent.info did not describe a valid image; see the log file."}
		}
		tpath := filepath.Join(out, name+".torrent")
		if err := engine.WriteTorrent(bt.mi, tpath); err != nil {
			return taskResult{err: err}
		}
		sum, _, _ := engine.Summarize(bt.mi)
		dataSrc := out
		if v.TorrentOnly {
			dataSrc = src
		}
		lines := []string{
			fmt.Sprintf("%s captured with %s in %s", src, res.Program, format.Duration(res.Elapsed)),
			"wrote " + tpath,
		}
		if sum != nil {
			lines = append(lines, fmt.Sprintf("image %s: %s in %d extents, %d pieces", sum.Name, format.Bytes(sum.TotalBytes), sum.Extents, sum.Pieces))
		}
		return taskResult{lines: lines, serve: &ServeValues{Torrent: tpath, Source: dataSrc, Tracker: true, TrackerListen: fmt.Sprintf(":%d", engine.DefaultTrackerPort)}}
	}
}
