package tui

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"ezio/engine"
	"ezio/tui/format"
)

// taskProgress is one report of a long task: a fraction (<0 unknown), and
// what it is doing.
type taskProgress struct {
	frac float64
	what string
	rate float64 // bytes/s, 0 when unknown
	eta  time.Duration
}

// taskResult is how a task ended: text to show and, when the result can
// be served, the values for the Serve form.
type taskResult struct {
	lines []string
	serve *ServeValues
	err   error
	hint  string
}

type (
	taskProgressMsg struct {
		id int
		p  taskProgress
	}
	taskDoneMsg struct {
		id int
		r  taskResult
	}
)

// TaskScreen runs one long job (hashing, capture) with a progress bar; Esc
// or Ctrl-C asks before cancelling it.
type TaskScreen struct {
	c      *Common
	deps   *Deps
	id     int
	title  string
	run    func(ctx context.Context, report func(taskProgress)) taskResult
	cancel context.CancelFunc
	prog   *engine.Latest[taskProgress]
	done   chan taskResult
	last   taskProgress
	start  time.Time
	res    *taskResult
	serve  *ServeValues // where to put the values when the user asks to serve
	back   Screen       // the questions, shown again after a failure
}

func newTask(c *Common, deps *Deps, title string, serve *ServeValues, run func(ctx context.Context, report func(taskProgress)) taskResult, back Screen) *TaskScreen {
	return &TaskScreen{c: c, deps: deps, id: newID(), title: title, run: run, serve: serve, back: back, last: taskProgress{frac: -1, what: "starting"}}
}

func (t *TaskScreen) Init() tea.Cmd {
	ctx, cancel := context.WithCancel(t.deps.Ctx)
	t.cancel = cancel
	t.prog = engine.NewLatest[taskProgress]()
	t.done = make(chan taskResult, 1)
	t.start = time.Now()
	go func() { t.done <- t.run(ctx, t.prog.Put) }()
	return t.wait()
}

func (t *TaskScreen) wait() tea.Cmd {
	id, prog, done := t.id, t.prog, t.done
	return func() tea.Msg {
		select {
		case p := <-prog.C():
			return taskProgressMsg{id, p}
		case r := <-done:
			return taskDoneMsg{id, r}
		}
	}
}

// Running and Stop let Ctrl-C ask before cancelling.
func (t *TaskScreen) Running() bool { return t.res == nil && t.cancel != nil }
func (t *TaskScreen) Stop()         { t.cancel() }
func (t *TaskScreen) StopQuestion() (string, string) {
	return "Cancel " + t.title + "?", "What it has written so far is left incomplete."
}

func (t *TaskScreen) keys() []key.Binding {
	k := t.c.Keys
	switch {
	case t.res == nil:
		return []key.Binding{as(k.ForceQuit, "cancel")}
	case t.res.serve != nil:
		return []key.Binding{k.Serve, as(k.Enter, "back to the menu")}
	}
	return []key.Binding{as(k.Enter, "back to the menu")}
}

func (t *TaskScreen) ShortHelp() []key.Binding  { return t.keys() }
func (t *TaskScreen) FullHelp() [][]key.Binding { return [][]key.Binding{t.keys()} }

func (t *TaskScreen) Update(msg tea.Msg) (Screen, tea.Cmd) {
	switch msg := msg.(type) {
	case taskProgressMsg:
		if msg.id == t.id {
			t.last = msg.p
			return t, t.wait()
		}
	case taskDoneMsg:
		if msg.id != t.id {
			return t, nil
		}
		t.res = &msg.r
		if msg.r.err != nil {
			return t, showError(capitalize(t.title)+" failed", msg.r.err, msg.r.hint, t.back)
		}
	case tea.KeyMsg:
		if t.res == nil {
			return t, nil
		}
		switch {
		case key.Matches(msg, t.c.Keys.Serve) && t.res.serve != nil:
			*t.serve = *t.res.serve
			return t, show(NewServeFlow(t.c, t.deps, t.serve))
		case key.Matches(msg, t.c.Keys.Enter), key.Matches(msg, t.c.Keys.Back):
			return t, func() tea.Msg { return backToMenuMsg{} }
		}
	}
	return t, nil
}

func (t *TaskScreen) View() string {
	c, st := t.c, t.c.Styles
	lines := []string{c.titleBar(t.title, ""), ""}
	if t.res != nil {
		lines = append(lines, "  "+st.Good.Render("Done."), "")
		for _, l := range t.res.lines {
			lines = append(lines, "  "+st.Text.Render(l))
		}
		return c.page(lines, t)
	}
	p := t.last
	lines = append(lines, "  "+st.Text.Render(p.what), "")
	if p.frac >= 0 {
		pct := fmt.Sprintf(" %5.1f%%", p.frac*100)
		lines = append(lines, "  "+c.bar(p.frac, c.Width-6-len(pct))+pct)
	}
	info := "elapsed " + format.Duration(time.Since(t.start))
	if p.rate > 0 {
		info += "  " + format.Rate(p.rate)
	}
	if p.eta > 0 {
		info += "  ETA " + format.Duration(p.eta)
	}
	lines = append(lines, "  "+st.Muted.Render(info))
	return c.page(lines, t)
}

func trimmed(s string) string { return strings.TrimSpace(s) }

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
