package tui

import (
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
)

// DisksScreen is the table of disks and partitions, and why ezio would
// refuse each one.
type DisksScreen struct {
	c     *Common
	deps  *Deps
	id    int
	table *TargetTable
	err   error
}

func NewDisksScreen(c *Common, deps *Deps) *DisksScreen {
	return &DisksScreen{c: c, deps: deps, id: newID()}
}

func (s *DisksScreen) Init() tea.Cmd {
	id, list := s.id, s.deps.ListDisks
	return func() tea.Msg {
		ds, err := list()
		return disksMsg{id, ds, err}
	}
}

func (s *DisksScreen) Update(msg tea.Msg) (Screen, tea.Cmd) {
	switch msg := msg.(type) {
	case disksMsg:
		if msg.flow != s.id {
			return s, nil
		}
		if msg.err != nil {
			return s, showError("Could not list the disks", msg.err, "ezio reads /sys and /proc; run it as root.", nil)
		}
		sel := ""
		if s.table != nil {
			sel = s.table.Selected().path
		}
		s.table = NewTargetTable(s.c, msg.disks, 0)
		s.table.Select(sel)
	case tea.KeyMsg:
		switch {
		case key.Matches(msg, s.c.Keys.Back):
			return s, func() tea.Msg { return backToMenuMsg{} }
		case key.Matches(msg, s.c.Keys.Rescan):
			return s, s.Init()
		case s.table != nil:
			s.table.Update(msg)
		}
	}
	return s, nil
}

func (s *DisksScreen) View() string {
	c, st := s.c, s.c.Styles
	lines := []string{c.titleBar("disks", ""), ""}
	if s.table == nil {
		lines = append(lines, "  "+st.Text.Render("looking at the disks..."))
	} else {
		lines = append(lines, s.table.View(c.Height-4)...)
	}
	return c.page(lines, s)
}

func (s *DisksScreen) ShortHelp() []key.Binding {
	k := s.c.Keys
	return []key.Binding{as(k.Back, "menu"), k.Up, k.Down, k.Rescan, k.Quit}
}

func (s *DisksScreen) FullHelp() [][]key.Binding {
	k := s.c.Keys
	return [][]key.Binding{{as(k.Back, "menu"), k.Rescan, k.Quit}, {k.Up, k.Down, k.Home, k.End}}
}
