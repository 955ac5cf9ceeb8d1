package tui

import (
	"errors"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"ezio/engine"
)

var errDemoUnavailable = errors.New("the demo is not available here")

// startDemo runs deps.Demo in the background behind a waiting screen.
func startDemo(c *Common, deps *Deps) tea.Cmd {
	if deps.Demo == nil {
		return showError("Could not start the demo", errDemoUnavailable, "", nil)
	}
	busy := &BusyScreen{c: c, what: "preparing the demo: writing and hashing a random image"}
	ctx, start := deps.Ctx, deps.Demo
	return tea.Sequence(show(busy), func() tea.Msg {
		j, err := start(ctx)
		if err != nil {
			p := describe("Could not start the demo", err, "The demo needs a few hundred MiB free in the temporary directory and free loopback ports.")
			return errorMsg{title: p.title, what: p.what, hint: p.hint}
		}
		return switchMsg{DemoDashboard(c, j)}
	})
}

// DemoDashboard is the seeder's dashboard of a demo swarm.
func DemoDashboard(c *Common, j *engine.Job) *Dashboard {
	return NewDashboard(c, engine.RoleSeed, "demo: seeding "+j.Name(), j)
}

// BusyScreen says what is being waited for.
type BusyScreen struct {
	c    *Common
	what string
}

func (b *BusyScreen) Init() tea.Cmd                    { return nil }
func (b *BusyScreen) Update(tea.Msg) (Screen, tea.Cmd) { return b, nil }
func (b *BusyScreen) ShortHelp() []key.Binding         { return []key.Binding{as(b.c.Keys.ForceQuit, "quit")} }
func (b *BusyScreen) FullHelp() [][]key.Binding        { return [][]key.Binding{b.ShortHelp()} }
func (b *BusyScreen) View() string {
	st := b.c.Styles
	return b.c.page([]string{b.c.titleBar("working", ""), "", "  " + st.Accent.Render(st.Glyphs.Spinner[0]) + " " + st.Text.Render(b.what+"...")}, b)
}
