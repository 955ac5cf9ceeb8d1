package tui

import (
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
)

type menuChoice int

const (
	choiceDeploy menuChoice = iota
	choiceServe
	choiceCapture
	choiceBuild
	choiceAttach
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

func NewMenu(c *Common, demo, attach bool) *Menu {
	items := []menuItem{
		{choiceDeploy, "d", "Deploy this machine", "write an image from a server onto a disk here"},
		{choiceServe, "s", "Serve an image", "seed an image to the machines on this LAN"},
		{choiceCapture, "c", "Capture a disk", "a whole disk or one partition, used blocks only"},
		{choiceBuild, "b", "Build a torrent", "from an image file or an extent directory"},
	}
	if attach {
		items = append(items, menuItem{choiceAttach, "a", "Attach to a running ezio daemon", "watch its torrents live"})
	}
	items = append(items, []menuItem{
		{choiceDisks, "i", "Disks", "what is here, and what ezio may write to"},
		{choiceSettings, "t", "Settings", "theme, threads, cache, listen port"},
	}...)
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
			if key.Matches(k, itemKey(it)) {
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
		// A title longer than the column pushes its own description along.
		line := "  " + cur + st.HelpKey.Render(it.key) + " " + fit(title, max(24, len(it.title)+3))
		if c.Width >= 60 {
			line += st.Muted.Render(it.desc)
		}
		lines = append(lines, line)
	}
	return c.page(lines, m)
}

func (m *Menu) ShortHelp() []key.Binding {
	k := m.c.Keys
	return []key.Binding{k.Up, k.Down, as(k.Enter, "choose"), m.letters(), k.Help, k.Quit}
}

func (m *Menu) FullHelp() [][]key.Binding {
	k := m.c.Keys
	var jump []key.Binding
	for _, it := range m.items {
		jump = append(jump, itemKey(it))
	}
	return [][]key.Binding{{k.Up, k.Down, as(k.Enter, "choose"), k.Quit}, jump}
}

// itemKey is the letter that jumps to an item.
func itemKey(it menuItem) key.Binding {
	return key.NewBinding(key.WithKeys(it.key), key.WithHelp(it.key, it.title))
}

// letters is the jump keys as one binding, for the short help.
func (m *Menu) letters() key.Binding {
	var ks []string
	for _, it := range m.items {
		ks = append(ks, it.key)
	}
	return key.NewBinding(key.WithKeys(ks...), key.WithHelp("letter", "jump"))
}
