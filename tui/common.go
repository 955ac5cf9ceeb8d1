// Package tui is ezio's terminal interface: the wizard's screens and the
// live dashboard of a running seed or deploy. It imports the engine, disks
// and partclone packages; they never import it.
package tui

import (
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"ezio/themes"
)

// Common is what every screen shares: the size of the terminal, the
// styles and the key map. Screens hold a pointer so a theme change or a
// resize reaches them all.
type Common struct {
	Width, Height int
	Styles        themes.Styles
	Keys          KeyMap
}

// KeyMap is every key the wizard answers to.
type KeyMap struct {
	Up, Down, Enter, Back, Tab, ShiftTab key.Binding
	Pause, Help, Quit, ForceQuit         key.Binding
	Yes, No                              key.Binding
}

// DefaultKeyMap is the key map; it is the same at every screen so that a
// technician learns it once.
func DefaultKeyMap() KeyMap {
	return KeyMap{
		Up:        key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")),
		Down:      key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
		Enter:     key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "choose")),
		Back:      key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "back")),
		Tab:       key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "next pane")),
		ShiftTab:  key.NewBinding(key.WithKeys("shift+tab"), key.WithHelp("shift+tab", "previous pane")),
		Pause:     key.NewBinding(key.WithKeys("p"), key.WithHelp("p", "pause/resume")),
		Help:      key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "more keys")),
		Quit:      key.NewBinding(key.WithKeys("q"), key.WithHelp("q", "quit")),
		ForceQuit: key.NewBinding(key.WithKeys("ctrl+c"), key.WithHelp("ctrl+c", "stop")),
		Yes:       key.NewBinding(key.WithKeys("y", "Y"), key.WithHelp("y", "yes")),
		No:        key.NewBinding(key.WithKeys("n", "N", "esc"), key.WithHelp("n", "no")),
	}
}

// asciiKeys replaces the arrows in help texts on a console without them.
func (k *KeyMap) asciiHelp() {
	k.Up.SetHelp("up/k", "up")
	k.Down.SetHelp("down/j", "down")
}

// NewCommon builds the shared state for a theme.
func NewCommon(st themes.Styles) *Common {
	c := &Common{Width: 80, Height: 24, Styles: st, Keys: DefaultKeyMap()}
	if st.ASCII {
		c.Keys.asciiHelp()
	}
	return c
}

// fit cuts or pads a styled line to exactly w cells.
func fit(s string, w int) string {
	if w <= 0 {
		return ""
	}
	n := lipgloss.Width(s)
	if n > w {
		s = ansi.Truncate(s, w, "")
		n = lipgloss.Width(s)
	}
	return s + strings.Repeat(" ", w-n)
}

// box draws a bordered pane of w x h cells with title in its top border;
// lines beyond the inside are cut, missing lines are blank.
func (c *Common) box(title string, lines []string, w, h int, focused bool) []string {
	if w < 4 || h < 2 {
		return nil
	}
	st := c.Styles
	b := st.Glyphs.Border
	border := st.Pane.GetBorderTopForeground()
	bs := lipgloss.NewStyle().Foreground(border)
	if focused {
		bs = lipgloss.NewStyle().Foreground(st.PaneFocus.GetBorderTopForeground()).Bold(true)
	}
	if bg := st.Pane.GetBorderTopBackground(); bg != nil {
		bs = bs.Background(bg)
	}
	inner := w - 2
	t := ""
	if title != "" {
		t = " " + title + " "
		if focused {
			t = "[" + title + "]"
		}
		if lipgloss.Width(t) > inner-1 {
			t = ansi.Truncate(t, inner-1, "")
		}
	}
	top := bs.Render(b.TopLeft+b.Top) + st.Heading.Render(t) + bs.Render(strings.Repeat(b.Top, max(0, inner-1-lipgloss.Width(t)))+b.TopRight)
	out := make([]string, 0, h)
	out = append(out, top)
	for i := 0; i < h-2; i++ {
		l := ""
		if i < len(lines) {
			l = lines[i]
		}
		out = append(out, bs.Render(b.Left)+fit(l, inner)+bs.Render(b.Right))
	}
	out = append(out, bs.Render(b.BottomLeft+strings.Repeat(b.Bottom, inner)+b.BottomRight))
	return out
}

// joinH puts blocks of lines side by side; all must have the same height.
func joinH(blocks ...[]string) []string {
	h := 0
	for _, b := range blocks {
		h = max(h, len(b))
	}
	out := make([]string, h)
	for i := range out {
		var sb strings.Builder
		for _, b := range blocks {
			if i < len(b) {
				sb.WriteString(b[i])
			}
		}
		out[i] = sb.String()
	}
	return out
}

// screen pads or cuts lines to the terminal and joins them.
func (c *Common) screen(lines []string) string {
	h := max(1, c.Height)
	if len(lines) > h {
		lines = lines[:h]
	}
	for len(lines) < h {
		lines = append(lines, "")
	}
	for i := range lines {
		lines[i] = fit(lines[i], c.Width)
	}
	return strings.Join(lines, "\n")
}

// titleBar is the top line of every screen: the app name, what is on
// screen, and something at the right (a phase, a clock).
func (c *Common) titleBar(what, right string) string {
	st := c.Styles
	left := st.Title.Render("ezio") + " " + st.Accent.Render(what)
	pad := c.Width - lipgloss.Width(left) - lipgloss.Width(right) - 1
	if pad < 1 {
		return fit(left+" "+right, c.Width)
	}
	return left + strings.Repeat(" ", pad) + right + " "
}
