package tui

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/huh"

	"ezio/engine"
	"ezio/engine/torrentfile"
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
	return newTaskForm(c, deps, serve, "build a torrent", func() taskFunc { return buildTask(*v) }, func() *huh.Group {
		return buildGroup(v)
	}, nil)
}

func buildGroup(v *BuildValues) *huh.Group {
	return huh.NewGroup(
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
		huh.NewInput().Title("Tracker URL").Description("empty: none; Serve an image runs its own").Value(&v.Tracker),
	)
}

// taskFunc is the work a task screen runs.
type taskFunc = func(context.Context, func(taskProgress)) taskResult

// taskForm is a question step that runs a task once answered: Build a
// torrent and Capture are both one. The answers live in the caller's
// values; the form is rebuilt from them each time the step is shown.
type taskForm struct {
	c      *Common
	deps   *Deps
	serve  *ServeValues
	title  string
	task   func() taskFunc   // reads the answers when the form is submitted
	group  func() *huh.Group // the questions, bound to the values
	form   *huh.Form
	formID int
	// clearFirst empties the first answer; after a failed task the first
	// key typed replaces it instead of adding to it (nil: never).
	clearFirst func()
	replace    bool
}

func newTaskForm(c *Common, deps *Deps, serve *ServeValues, title string, task func() taskFunc, group func() *huh.Group, clearFirst func()) *taskForm {
	f := &taskForm{c: c, deps: deps, serve: serve, title: title, task: task, group: group, clearFirst: clearFirst}
	f.form, f.formID = newForm(c, group())
	return f
}

func (f *taskForm) Init() tea.Cmd {
	f.form, f.formID = newForm(f.c, f.group())
	return f.form.Init()
}

// afterError is the form shown again after its task failed: the answers
// are kept, and typing a new first answer replaces the old one.
func (f *taskForm) afterError() Screen {
	f.replace = f.clearFirst != nil
	return f
}

func (f *taskForm) Update(msg tea.Msg) (Screen, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyMsg:
		if key.Matches(msg, f.c.Keys.Back) {
			return f, func() tea.Msg { return backToMenuMsg{} }
		}
		if f.replace {
			f.replace = false
			if msg.Type == tea.KeyRunes && !msg.Paste {
				f.clearFirst()
				cmd := f.Init()
				_, cmd2 := f.form.Update(msg)
				return f, tea.Batch(cmd, cmd2)
			}
		}
	case formDoneMsg:
		if msg.id == f.formID {
			return f, show(newTask(f.c, f.deps, f.title, f.serve, f.task(), f.afterError()))
		}
		return f, nil
	}
	_, cmd := f.form.Update(msg)
	return f, cmd
}

func (f *taskForm) ShortHelp() []key.Binding  { return formKeys(f.c, f.form, "menu") }
func (f *taskForm) FullHelp() [][]key.Binding { return [][]key.Binding{f.ShortHelp()} }

func (f *taskForm) View() string {
	var note []string
	if f.replace {
		note = []string{"  " + f.c.Styles.Warn.Render("The last try failed: type to replace the first answer, or edit it with the arrows.")}
	}
	return formScreen(f.c, f.title, f.form, f, note...)
}

func formScreen(c *Common, title string, f *huh.Form, km help.KeyMap, note ...string) string {
	lines := []string{c.titleBar(title, "")}
	lines = append(lines, note...)
	lines = append(lines, "")
	lines = append(lines, indent(strings.Split(f.View(), "\n"), 1)...)
	return c.page(lines, km)
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
		sum, _, _ := torrentfile.Summarize(mi)
		lines := []string{"wrote " + out}
		if sum != nil {
			lines = append(lines, fmt.Sprintf("image %s: %s in %d extents, %d pieces", format.Name(sum.Name), format.Bytes(sum.TotalBytes), sum.Extents, sum.Pieces), "infohash "+sum.InfoHash)
		}
		return taskResult{lines: lines, serve: &ServeValues{Torrent: out, Source: dataDir}}
	}
}
