package tui

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/huh"

	"ezio/engine"
	"ezio/partclone"
	"ezio/partclone/capture"
	"ezio/tui/format"
)

// BuildValues are what Build a torrent asks; kept between visits.
type BuildValues struct {
	Source, Output, Name, Tracker string
}

// NewBuildFlow asks for data and makes a torrent from an image file, an
// extent directory or partclone's torrent.info.
func NewBuildFlow(c *Common, deps *Deps, v *BuildValues, serve *ServeValues) Screen {
	return newTaskForm(c, deps, serve, "build a torrent", func() taskFunc { return buildTask(*v) }, huh.NewGroup(
		huh.NewInput().Title("Image data").
			Description("an extent directory (partclone -T), an image file, or a torrent.info").
			Value(&v.Source).Validate(func(s string) error {
			if _, err := os.Stat(trimmed(s)); err != nil {
				return fmt.Errorf("%q: no such file or directory", s)
			}
			return nil
		}),
		huh.NewInput().Title("Torrent file to write").Description("empty: NAME.torrent beside the data").Value(&v.Output),
		huh.NewInput().Title("Image name").Description("empty: the data's file name, e.g. sda1").Value(&v.Name),
		huh.NewInput().Title("Tracker URL").Description("empty: none; ezio seed runs its own").Value(&v.Tracker),
	))
}

// taskFunc is the work a task screen runs.
type taskFunc = func(context.Context, func(taskProgress)) taskResult

// taskForm is a question step that runs a task once answered: Build a
// torrent and Capture are both one.
type taskForm struct {
	c      *Common
	deps   *Deps
	serve  *ServeValues
	title  string
	task   func() taskFunc // reads the answers when the form is submitted
	form   *huh.Form
	formID int
}

func newTaskForm(c *Common, deps *Deps, serve *ServeValues, title string, task func() taskFunc, groups ...*huh.Group) *taskForm {
	f := &taskForm{c: c, deps: deps, serve: serve, title: title, task: task}
	f.form, f.formID = newForm(c, groups...)
	return f
}

func (f *taskForm) Init() tea.Cmd { return f.form.Init() }

func (f *taskForm) Update(msg tea.Msg) (Screen, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyMsg:
		if key.Matches(msg, f.c.Keys.Back) {
			return f, func() tea.Msg { return backToMenuMsg{} }
		}
	case formDoneMsg:
		if msg.id == f.formID {
			return f, show(newTask(f.c, f.deps, f.title, f.serve, f.task()))
		}
		return f, nil
	}
	_, cmd := f.form.Update(msg)
	return f, cmd
}

func (f *taskForm) View() string { return formScreen(f.c, f.title, f.form) }

func formScreen(c *Common, title string, f *huh.Form) string {
	st := c.Styles
	lines := []string{c.titleBar(title, ""), ""}
	lines = append(lines, indent(strings.Split(f.View(), "\n"), 1)...)
	for len(lines) < c.Height-1 {
		lines = append(lines, "")
	}
	lines = append(lines[:c.Height-1], " "+st.HelpKey.Render("esc")+st.HelpDesc.Render(" back  ")+st.HelpKey.Render("enter")+st.HelpDesc.Render(" next  ")+st.HelpKey.Render("shift+tab")+st.HelpDesc.Render(" previous field"))
	return c.screen(lines)
}

func buildTask(v BuildValues) taskFunc {
	return func(ctx context.Context, report func(taskProgress)) taskResult {
		src := filepath.Clean(trimmed(v.Source))
		var trackers []string
		if t := trimmed(v.Tracker); t != "" {
			trackers = []string{t}
		}
		name := trimmed(v.Name)
		dataDir := src
		report(taskProgress{frac: 0, what: "reading " + src})
		mi, err := func() (*metainfo.MetaInfo, error) {
			if filepath.Base(src) == "torrent.info" {
				dataDir = filepath.Dir(src)
				if name == "" {
					name = filepath.Base(dataDir)
				}
				f, err := os.Open(src)
				if err != nil {
					return nil, err
				}
				defer f.Close()
				info, err := partclone.ParseInfo(f)
				if err != nil {
					return nil, err
				}
				mi, _, err := capture.TorrentFromInfo(info, name, trackers)
				return mi, err
			}
			if name == "" {
				name = filepath.Base(src)
			}
			return engine.CreateTorrent(ctx, src, engine.CreateOptions{Name: name, Trackers: trackers, Progress: func(done, total int64) {
				if total > 0 {
					report(taskProgress{frac: float64(done) / float64(total), what: fmt.Sprintf("hashing %s: %s of %s", src, format.Bytes(done), format.Bytes(total))})
				}
			}})
		}()
		if err != nil {
			return taskResult{err: err, hint: "Choose an extent directory (hex-offset files), an image file or partclone's torrent.info."}
		}
		out := trimmed(v.Output)
		if out == "" {
			out = filepath.Join(filepath.Dir(filepath.Clean(dataDir)), name+".torrent")
		}
		if err := engine.WriteTorrent(mi, out); err != nil {
			return taskResult{err: err, hint: "Choose a torrent path in a writable directory."}
		}
		sum, _, _ := engine.Summarize(mi)
		lines := []string{"wrote " + out}
		if sum != nil {
			lines = append(lines, fmt.Sprintf("image %s: %s in %d extents, %d pieces", sum.Name, format.Bytes(sum.TotalBytes), sum.Extents, sum.Pieces), "infohash "+sum.InfoHash)
		}
		return taskResult{lines: lines, serve: &ServeValues{Torrent: out, Source: dataDir, Tracker: true, TrackerListen: fmt.Sprintf(":%d", engine.DefaultTrackerPort)}}
	}
}
