// Package tui is ezio's terminal interface: the wizard's screens and the
// live dashboard of a running seed or deploy. It imports the engine, disks
// and partclone packages; they never import it.
package tui

import (
	"strings"

	"github.com/charmbracelet/bubbles/help"
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

// KeyMap is every key the wizard answers to. A screen lists the ones it
// takes in its help.KeyMap, so that its footer and its "?" page are drawn
// from the same bindings it matches.
type KeyMap struct {
	Up, Down, Enter, Back, Tab, ShiftTab key.Binding
	Home, End, PageUp, PageDown          key.Binding
	Pause, Help, Quit, ForceQuit         key.Binding
	Yes, No                              key.Binding
	Rescan, Serve, Log, SaveLog, Wrap    key.Binding
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
		Home:      key.NewBinding(key.WithKeys("home", "g"), key.WithHelp("home", "first")),
		End:       key.NewBinding(key.WithKeys("end", "G"), key.WithHelp("end", "last")),
		PageUp:    key.NewBinding(key.WithKeys("pgup"), key.WithHelp("pgup", "page up")),
		PageDown:  key.NewBinding(key.WithKeys("pgdown", " "), key.WithHelp("pgdn", "page down")),
		Rescan:    key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "rescan")),
		Serve:     key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "serve it now")),
		Log:       key.NewBinding(key.WithKeys("l"), key.WithHelp("l", "full log")),
		SaveLog:   key.NewBinding(key.WithKeys("w"), key.WithHelp("w", "save log")),
		Wrap:      key.NewBinding(key.WithKeys("z"), key.WithHelp("z", "wrap lines")),
	}
}

// asciiHelp replaces the arrows in help texts on a console without them.
func (k *KeyMap) asciiHelp() {
	k.Up.SetHelp("up/k", "up")
	k.Down.SetHelp("down/j", "down")
}

// as is b with another description, for a screen where the key means
// something more precise ("enter: next" on a form, "choose" on a list).
func as(b key.Binding, desc string) key.Binding {
	b.SetHelp(b.Help().Key, desc)
	return b
}

// keyList is a help.KeyMap made of bindings, for screens whose short
// and full help are the same.
type keyList []key.Binding

func (k keyList) ShortHelp() []key.Binding  { return k }
func (k keyList) FullHelp() [][]key.Binding { return [][]key.Binding{k} }

// helpModel renders key bindings with the theme's styles.
func (c *Common) helpModel() help.Model {
	h := help.New()
	st := c.Styles
	h.Styles.ShortKey, h.Styles.FullKey = st.HelpKey, st.HelpKey
	h.Styles.ShortDesc, h.Styles.FullDesc = st.HelpDesc, st.HelpDesc
	h.Styles.ShortSeparator, h.Styles.FullSeparator = st.Muted, st.Muted
	h.Styles.Ellipsis = st.Muted
	h.ShortSeparator = "  "
	if st.ASCII {
		h.FullSeparator = "   "
		h.Ellipsis = "..."
	}
	return h
}

// footer is the help line of a screen, drawn from its key map; full
// shows every binding in columns (the "?" page).
func (c *Common) footer(km help.KeyMap, full bool) []string {
	h := c.helpModel()
	h.Width = c.Width - 1
	h.ShowAll = full
	return strings.Split(" "+strings.ReplaceAll(h.View(km), "\n", "\n "), "\n")
}

// page lays out a screen: lines from the top, the footer of km at the
// bottom, cut or padded to the terminal.
func (c *Common) page(lines []string, km help.KeyMap) string {
	foot := c.footer(km, false)
	room := max(0, c.Height-len(foot))
	if len(lines) > room {
		lines = lines[:room]
	}
	for len(lines) < room {
		lines = append(lines, "")
	}
	return c.screen(append(lines, foot...))
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

// screen pads or cuts lines to the terminal and joins them. On a plain
// terminal every glyph left (from a library, a disk label, a file name)
// is folded to ASCII; a theme with a background paints every cell.
func (c *Common) screen(lines []string) string {
	h := max(1, c.Height)
	if len(lines) > h {
		lines = lines[:h]
	}
	for len(lines) < h {
		lines = append(lines, "")
	}
	bg := c.bgSequence()
	for i := range lines {
		l := lines[i]
		if c.Styles.ASCII && !noFold {
			l = foldASCII(l)
		}
		l = fit(l, c.Width)
		if bg != "" {
			l = paintBackground(l, bg)
		}
		lines[i] = l
	}
	return strings.Join(lines, "\n")
}

// noFold turns folding off, for the test that checks the screens' own
// glyphs are plain without its help.
var noFold bool

// bgSequence is the SGR sequence that sets the theme's background in the
// current colour profile, "" when there is none to paint.
func (c *Common) bgSequence() string {
	bg := c.Styles.Palette.Bg
	if bg == nil {
		return ""
	}
	if _, none := bg.(lipgloss.NoColor); none {
		return ""
	}
	r := lipgloss.NewStyle().Background(bg).Render("x")
	i := strings.Index(r, "x")
	if i <= 0 {
		return ""
	}
	return r[:i]
}

// paintBackground sets bg at the start of a line and again after every
// reset inside it, so the gaps between styled runs are painted too.
func paintBackground(l, bg string) string {
	l = strings.ReplaceAll(l, "\x1b[0m", "\x1b[0m"+bg)
	l = strings.ReplaceAll(l, "\x1b[m", "\x1b[m"+bg)
	return bg + l + "\x1b[0m"
}

// asciiFold maps the glyphs libraries and data bring in to what a plain
// console can draw; anything else becomes "?".
var asciiFold = map[rune]string{
	'·': ".", '•': "*", '…': "...", '←': "<-", '→': "->", '↑': "up", '↓': "down",
	'½': "1/2", '✓': "x", '✗': "x", 'µ': "u", '×': "x", '—': "-", '–': "-",
	'‘': "'", '’': "'", '“': "\"", '”': "\"", '▸': ">", '›': ">", '‹': "<", '°': "o",
}

func foldASCII(s string) string {
	plain := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r < 0x80:
			b.WriteRune(r)
		case asciiFold[r] != "":
			b.WriteString(asciiFold[r])
		case r >= 0x2500 && r <= 0x257f: // box drawing
			switch {
			case strings.ContainsRune("─━┄┅┈┉╌╍═", r):
				b.WriteByte('-')
			case strings.ContainsRune("│┃┆┇┊┋╎╏║", r):
				b.WriteByte('|')
			default:
				b.WriteByte('+')
			}
		case r >= 0x2580 && r <= 0x259f: // block elements
			b.WriteByte('#')
		case r >= 0x2800 && r <= 0x28ff: // braille (spinners)
			b.WriteByte('*')
		default:
			b.WriteByte('?')
		}
	}
	return b.String()
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
