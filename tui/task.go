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
}

func newTask(c *Common, deps *Deps, title string, serve *ServeValues, run func(ctx context.Context, report func(taskProgress)) taskResult) *TaskScreen {
	nextFlowID++
	return &TaskScreen{c: c, deps: deps, id: nextFlowID, title: title, run: run, serve: serve, last: taskProgress{frac: -1, what: "starting"}}
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
			return t, showError(t.title+" failed", msg.r.err, msg.r.hint, nil)
		}
	case tea.KeyMsg:
		if t.res == nil {
			return t, nil
		}
		switch {
		case msg.String() == "s" && t.res.serve != nil:
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
		lines = append(lines, "")
		foot := st.HelpKey.Render("enter") + st.HelpDesc.Render(" back to the menu")
		if t.res.serve != nil {
			foot = st.HelpKey.Render("s") + st.HelpDesc.Render(" serve it now  ") + foot
		}
		for len(lines) < c.Height-1 {
			lines = append(lines, "")
		}
		return c.screen(append(lines[:c.Height-1], " "+foot))
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
	for len(lines) < c.Height-1 {
		lines = append(lines, "")
	}
	return c.screen(append(lines[:c.Height-1], " "+st.HelpKey.Render("ctrl+c")+st.HelpDesc.Render(" cancel")))
}

func trimmed(s string) string { return strings.TrimSpace(s) }
