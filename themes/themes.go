// Package themes holds the wizard's palettes and the Styles built from
// them. A palette says which colour means what; Styles turns it into
// lipgloss styles and the glyphs the terminal can draw.
package themes

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/charmbracelet/lipgloss"
)

// Palette names the colours of one theme. Each is a lipgloss colour, so a
// palette may be adaptive (light/dark) or a fixed ANSI index.
type Palette struct {
	Name    string
	Fg      lipgloss.TerminalColor
	Muted   lipgloss.TerminalColor
	Accent  lipgloss.TerminalColor // titles, focus, the progress bar
	Border  lipgloss.TerminalColor
	Good    lipgloss.TerminalColor
	Warn    lipgloss.TerminalColor
	Bad     lipgloss.TerminalColor
	TitleFg lipgloss.TerminalColor
	TitleBg lipgloss.TerminalColor
	// Background of the whole screen; NoColor leaves the terminal's own.
	Bg lipgloss.TerminalColor
	// Piece map, indexed by engine.PieceState order:
	// missing, downloading, hashing, verified, failed.
	Pieces [5]lipgloss.TerminalColor
}

// Glyphs are the characters the dashboard draws with.
type Glyphs struct {
	Border   lipgloss.Border
	BarFull  string
	BarEmpty string
	Pieces   [5]string // one cell per piece state, same order as Palette.Pieces
	Spark    []string  // sparkline levels, lowest first
	Spinner  []string
	Cursor   string // marks the selected row
	Dot      string // separator in status lines
}

// Styles is everything a screen needs to draw itself.
type Styles struct {
	Name    string
	ASCII   bool // plain glyphs only (Linux console, or asked for)
	Palette Palette
	Glyphs  Glyphs

	App       lipgloss.Style // the whole screen
	Title     lipgloss.Style // top bar
	Heading   lipgloss.Style // a pane's title
	Text      lipgloss.Style
	Muted     lipgloss.Style
	Accent    lipgloss.Style
	Good      lipgloss.Style
	Warn      lipgloss.Style
	Bad       lipgloss.Style
	Selected  lipgloss.Style // the row under the cursor
	Disabled  lipgloss.Style // rows that cannot be chosen
	Pane      lipgloss.Style // an unfocused box
	PaneFocus lipgloss.Style // the focused box
	BarFull   lipgloss.Style
	BarEmpty  lipgloss.Style
	Pieces    [5]lipgloss.Style
	HelpKey   lipgloss.Style
	HelpDesc  lipgloss.Style
	ErrorBox  lipgloss.Style
}

// Env is what decides the look, besides the theme's name.
type Env struct {
	Term    string // $TERM
	NoColor bool   // $NO_COLOR is set (to anything)
	ASCII   bool   // force plain glyphs
	// Locale is the character set locale in effect: $LC_ALL, else
	// $LC_CTYPE, else $LANG. "" means not known (taken as UTF-8);
	// FromEnviron says "C" when none of them is set, as the C library does.
	Locale string
}

// FromEnviron reads Env from the process environment.
func FromEnviron() Env {
	_, noColor := os.LookupEnv("NO_COLOR")
	loc := "C"
	for _, v := range []string{"LC_ALL", "LC_CTYPE", "LANG"} {
		if s := os.Getenv(v); s != "" {
			loc = s
			break
		}
	}
	return Env{Term: os.Getenv("TERM"), NoColor: noColor, ASCII: os.Getenv("EZIO_ASCII") != "", Locale: loc}
}

// Console tells whether the terminal is the Linux virtual console: 16
// colours and a font with few line-drawing characters.
func (e Env) Console() bool { return e.Term == "linux" }

// UTF8 tells whether the locale's character set is UTF-8; in any other
// (C, POSIX, ISO-8859-1...) a multi-byte glyph is drawn as garbage.
func (e Env) UTF8() bool {
	if e.Locale == "" {
		return true
	}
	l := strings.ToLower(e.Locale)
	return strings.Contains(l, "utf-8") || strings.Contains(l, "utf8")
}

// PlainGlyphs tells whether only ASCII may be drawn: the Linux console,
// DEC VT terminals (their fonts have no box drawing in the default set),
// a dumb terminal, a locale that is not UTF-8, or when asked for.
func (e Env) PlainGlyphs() bool {
	t := strings.ToLower(e.Term)
	return e.ASCII || e.Console() || strings.HasPrefix(t, "vt") || t == "dumb" || t == "ansi" || !e.UTF8()
}

// Names lists the themes, for --theme and Settings.
func Names() []string {
	var out []string
	for n := range palettes {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

var palettes = map[string]func(console bool) Palette{
	"default": defaultPalette,
	"classic": classicPalette,
	"mono":    monoPalette,
}

// Load builds the named theme ("" = default) for env.
func Load(name string, env Env) (Styles, error) {
	if name == "" {
		name = "default"
	}
	mk, ok := palettes[strings.ToLower(name)]
	if !ok {
		return Styles{}, fmt.Errorf("unknown theme %q: choose one of %s", name, strings.Join(Names(), ", "))
	}
	p := mk(env.Console())
	if env.NoColor {
		p = monoPalette(env.Console())
		p.Name = strings.ToLower(name)
	}
	return Build(p, env.PlainGlyphs(), env.NoColor || p.Name == "mono"), nil
}

// MustLoad is Load for names known to be valid.
func MustLoad(name string, env Env) Styles {
	s, err := Load(name, env)
	if err != nil {
		s, _ = Load("default", env)
	}
	return s
}

func ansi(n int) lipgloss.TerminalColor { return lipgloss.Color(fmt.Sprint(n)) }

func defaultPalette(console bool) Palette {
	if console {
		// Only the eight base colours (SGR 30-37 and 40-47): the console
		// draws the bright ones (90-97, 100-107) unreliably or not at all,
		// so nothing that carries meaning depends on them. Bold gives
		// brightness instead (see Build).
		return Palette{
			Name: "default", Fg: ansi(7), Muted: ansi(7), Accent: ansi(6), Border: ansi(7),
			Good: ansi(2), Warn: ansi(3), Bad: ansi(1), TitleFg: ansi(0), TitleBg: ansi(6),
			Bg:     lipgloss.NoColor{},
			Pieces: [5]lipgloss.TerminalColor{ansi(7), ansi(3), ansi(5), ansi(2), ansi(1)},
		}
	}
	ad := func(light, dark string) lipgloss.TerminalColor {
		return lipgloss.AdaptiveColor{Light: light, Dark: dark}
	}
	return Palette{
		Name: "default", Fg: ad("#1f2328", "#e6edf3"), Muted: ad("#6e7781", "#7d8590"),
		Accent: ad("#0969da", "#58a6ff"), Border: ad("#8c959f", "#484f58"),
		Good: ad("#1a7f37", "#3fb950"), Warn: ad("#9a6700", "#d29922"), Bad: ad("#cf222e", "#f85149"),
		TitleFg: ad("#ffffff", "#0d1117"), TitleBg: ad("#0969da", "#58a6ff"),
		Bg: lipgloss.NoColor{},
		Pieces: [5]lipgloss.TerminalColor{
			ad("#d0d7de", "#30363d"), ad("#bf8700", "#d29922"), ad("#8250df", "#bc8cff"),
			ad("#1a7f37", "#3fb950"), ad("#cf222e", "#f85149"),
		},
	}
}

// classicPalette is the blue dialog technicians know from text-mode
// installers: white on blue, a cyan title, yellow highlights.
func classicPalette(console bool) Palette {
	if console {
		// The same dialog with the eight base colours only.
		return Palette{
			Name: "classic", Fg: ansi(7), Muted: ansi(7), Accent: ansi(3), Border: ansi(7),
			Good: ansi(2), Warn: ansi(3), Bad: ansi(1), TitleFg: ansi(0), TitleBg: ansi(6),
			Bg:     ansi(4),
			Pieces: [5]lipgloss.TerminalColor{ansi(7), ansi(3), ansi(5), ansi(2), ansi(1)},
		}
	}
	return Palette{
		Name: "classic", Fg: ansi(15), Muted: ansi(7), Accent: ansi(11), Border: ansi(7),
		Good: ansi(10), Warn: ansi(11), Bad: ansi(9), TitleFg: ansi(0), TitleBg: ansi(6),
		Bg:     ansi(4),
		Pieces: [5]lipgloss.TerminalColor{ansi(7), ansi(11), ansi(13), ansi(10), ansi(9)},
	}
}

func monoPalette(bool) Palette {
	n := lipgloss.NoColor{}
	return Palette{
		Name: "mono", Fg: n, Muted: n, Accent: n, Border: n, Good: n, Warn: n, Bad: n,
		TitleFg: n, TitleBg: n, Bg: n, Pieces: [5]lipgloss.TerminalColor{n, n, n, n, n},
	}
}

// ASCIIBorder is drawn with characters every console font has.
var ASCIIBorder = lipgloss.Border{
	Top: "-", Bottom: "-", Left: "|", Right: "|",
	TopLeft: "+", TopRight: "+", BottomLeft: "+", BottomRight: "+",
	MiddleLeft: "+", MiddleRight: "+", Middle: "+", MiddleTop: "+", MiddleBottom: "+",
}

func glyphs(ascii bool) Glyphs {
	if ascii {
		return Glyphs{
			Border: ASCIIBorder, BarFull: "#", BarEmpty: "-",
			Pieces:  [5]string{".", "+", "*", "#", "x"},
			Spark:   []string{"_", ".", ":", "-", "=", "+", "*", "#"},
			Spinner: []string{"|", "/", "-", "\\"},
			Cursor:  ">", Dot: "|",
		}
	}
	return Glyphs{
		Border: lipgloss.RoundedBorder(), BarFull: "█", BarEmpty: "░",
		Pieces:  [5]string{"·", "▒", "▓", "█", "x"},
		Spark:   []string{"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"},
		Spinner: []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"},
		Cursor:  "▸", Dot: "·",
	}
}

// Build turns a palette into Styles. mono draws selection and focus with
// reverse video and bold instead of colour.
func Build(p Palette, ascii, mono bool) Styles {
	g := glyphs(ascii)
	fg := func(c lipgloss.TerminalColor) lipgloss.Style { return lipgloss.NewStyle().Foreground(c) }
	s := Styles{Name: p.Name, ASCII: ascii, Palette: p, Glyphs: g}
	s.App = lipgloss.NewStyle().Foreground(p.Fg).Background(p.Bg)
	s.Title = lipgloss.NewStyle().Bold(true).Foreground(p.TitleFg).Background(p.TitleBg).Padding(0, 1)
	s.Heading = lipgloss.NewStyle().Bold(true).Foreground(p.Accent)
	s.Text = fg(p.Fg)
	s.Muted = fg(p.Muted)
	s.Accent = fg(p.Accent).Bold(true)
	s.Good = fg(p.Good)
	s.Warn = fg(p.Warn)
	s.Bad = fg(p.Bad).Bold(true)
	s.Selected = lipgloss.NewStyle().Foreground(p.TitleFg).Background(p.Accent).Bold(true)
	s.Disabled = fg(p.Muted)
	s.Pane = lipgloss.NewStyle().Border(g.Border).BorderForeground(p.Border)
	s.PaneFocus = lipgloss.NewStyle().Border(g.Border).BorderForeground(p.Accent)
	s.BarFull = fg(p.Accent)
	s.BarEmpty = fg(p.Muted)
	for i := range s.Pieces {
		s.Pieces[i] = fg(p.Pieces[i])
	}
	s.HelpKey = fg(p.Accent).Bold(true)
	s.HelpDesc = fg(p.Muted)
	s.ErrorBox = lipgloss.NewStyle().Border(g.Border).BorderForeground(p.Bad).Padding(0, 1)
	if mono {
		s.Title = lipgloss.NewStyle().Reverse(true).Bold(true).Padding(0, 1)
		s.Selected = lipgloss.NewStyle().Reverse(true)
		s.Heading = lipgloss.NewStyle().Bold(true)
		s.Accent = lipgloss.NewStyle().Bold(true)
		s.Bad = lipgloss.NewStyle().Bold(true)
		s.PaneFocus = s.PaneFocus.BorderStyle(g.Border).Bold(true)
		s.HelpKey = lipgloss.NewStyle().Bold(true)
	}
	if p.Name == "classic" {
		// Blue everywhere, so no cell shows the terminal's own background.
		bg := p.Bg
		for _, st := range []*lipgloss.Style{&s.Heading, &s.Text, &s.Muted, &s.Accent, &s.Good, &s.Warn, &s.Bad, &s.Disabled, &s.BarFull, &s.BarEmpty, &s.HelpKey, &s.HelpDesc} {
			*st = st.Background(bg)
		}
		for i := range s.Pieces {
			s.Pieces[i] = s.Pieces[i].Background(bg)
		}
		s.Pane = s.Pane.BorderBackground(bg)
		s.PaneFocus = s.PaneFocus.BorderBackground(bg)
		s.ErrorBox = s.ErrorBox.BorderBackground(bg).Background(bg)
	}
	return s
}
