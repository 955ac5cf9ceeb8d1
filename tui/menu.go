package tui

import (
	"errors"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"ezio/disks"
)

func asRefused(err error, re **disks.RefusedError) bool { return errors.As(err, re) }

type menuChoice int

const (
	choiceDeploy menuChoice = iota
	choiceServe
	choiceCapture
	choiceBuild
	choiceDisks
	choiceSettings
	choiceDemo
	choiceQuit
)

type menuItem struct {
	choice      menuChoice
	key         string
	title, desc string
}

type menuChoiceMsg struct{ choice menuChoice }

// Menu is the main menu: one line per job, a letter to jump to each.
type Menu struct {
	c      *Common
	items  []menuItem
	cursor int
}

func NewMenu(c *Common, demo bool) *Menu {
	items := []menuItem{
		{choiceDeploy, "d", "Deploy this machine", "write an image from a server onto a disk here"},
		{choiceServe, "s", "Serve an image", "seed an image to the machines on this LAN"},
		{choiceCapture, "c", "Capture a partition", "partclone a partition, then make its torrent"},
		{choiceBuild, "b", "Build a torrent", "from an image file or an extent directory"},
		{choiceDisks, "i", "Disks", "what is here, and what ezio may write to"},
		{choiceSettings, "t", "Settings", "theme, threads, cache, listen port"},
	}
	if demo {
		items = append(items, menuItem{choiceDemo, "m", "Demo", "watch a swarm on this machine (temp files)"})
	}
	items = append(items, menuItem{choiceQuit, "q", "Quit", ""})
	return &Menu{c: c, items: items}
}

func (m *Menu) Init() tea.Cmd { return nil }

func (m *Menu) Update(msg tea.Msg) (Screen, tea.Cmd) {
	k, ok := msg.(tea.KeyMsg)
	if !ok {
		return m, nil
	}
	switch {
	case key.Matches(k, m.c.Keys.Up):
		m.cursor = (m.cursor + len(m.items) - 1) % len(m.items)
	case key.Matches(k, m.c.Keys.Down):
		m.cursor = (m.cursor + 1) % len(m.items)
	case key.Matches(k, m.c.Keys.Enter):
		c := m.items[m.cursor].choice
		return m, func() tea.Msg { return menuChoiceMsg{c} }
	default:
		for i, it := range m.items {
			if k.String() == it.key {
				m.cursor = i
				c := it.choice
				return m, func() tea.Msg { return menuChoiceMsg{c} }
			}
		}
	}
	return m, nil
}

func (m *Menu) View() string {
	c, st := m.c, m.c.Styles
	lines := []string{c.titleBar("main menu", ""), "", "  " + st.Heading.Render("What do you want to do?"), ""}
	for i, it := range m.items {
		cur := "  "
		title := st.Text.Render(it.title)
		if i == m.cursor {
			cur = st.Accent.Render(st.Glyphs.Cursor) + " "
			title = st.Selected.Render(" " + it.title + " ")
		} else {
			title = " " + title + " "
		}
		line := "  " + cur + st.HelpKey.Render(it.key) + " " + fit(title, 24)
		if c.Width >= 60 {
			line += st.Muted.Render(it.desc)
		}
		lines = append(lines, line)
	}
	for len(lines) < c.Height-1 {
		lines = append(lines, "")
	}
	lines = append(lines, " "+st.HelpKey.Render("↑/↓")+st.HelpDesc.Render(" move  ")+st.HelpKey.Render("enter")+st.HelpDesc.Render(" choose  ")+st.HelpKey.Render("letter")+st.HelpDesc.Render(" jump  ")+st.HelpKey.Render("q")+st.HelpDesc.Render(" quit"))
	if st.ASCII {
		lines[len(lines)-1] = " " + st.HelpKey.Render("up/down") + st.HelpDesc.Render(" move  ") + st.HelpKey.Render("enter") + st.HelpDesc.Render(" choose  ") + st.HelpKey.Render("letter") + st.HelpDesc.Render(" jump  ") + st.HelpKey.Render("q") + st.HelpDesc.Render(" quit")
	}
	return c.screen(lines)
}
