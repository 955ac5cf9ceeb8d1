package themes

import (
	"fmt"
	"strings"
	"testing"

	"github.com/charmbracelet/lipgloss"
)

func TestLoadEveryTheme(t *testing.T) {
	for _, n := range Names() {
		for _, env := range []Env{{Term: "xterm-256color"}, {Term: "linux"}, {Term: "xterm", NoColor: true}} {
			s, err := Load(n, env)
			if err != nil {
				t.Fatalf("%s %+v: %v", n, env, err)
			}
			if s.Name != n {
				t.Errorf("Load(%q).Name = %q", n, s.Name)
			}
			if len(s.Glyphs.Spark) == 0 || len(s.Glyphs.Spinner) == 0 {
				t.Errorf("%s: empty glyph sets", n)
			}
		}
	}
	if _, err := Load("neon", Env{}); err == nil || !strings.Contains(err.Error(), "default") {
		t.Errorf("unknown theme: err = %v, want the list of themes", err)
	}
}

func TestConsoleIsPlainASCII(t *testing.T) {
	s := MustLoad("default", Env{Term: "linux"})
	if !s.ASCII {
		t.Fatal("TERM=linux must select plain glyphs")
	}
	g := s.Glyphs
	all := []string{g.BarFull, g.BarEmpty, g.Cursor, g.Dot, g.Border.Top, g.Border.Left, g.Border.TopLeft}
	all = append(all, g.Pieces[:]...)
	all = append(all, g.Spark...)
	all = append(all, g.Spinner...)
	for _, c := range all {
		for _, r := range c {
			if r > 126 {
				t.Errorf("glyph %q is not ASCII", c)
			}
		}
	}
	if s := MustLoad("default", Env{Term: "xterm-256color"}); s.ASCII {
		t.Error("a graphical terminal should get box-drawing glyphs")
	}
}

func TestNoColorDropsColours(t *testing.T) {
	s := MustLoad("classic", Env{Term: "xterm", NoColor: true})
	for _, c := range []lipgloss.TerminalColor{s.Palette.Bg, s.Palette.Accent, s.Palette.Pieces[3]} {
		if _, ok := c.(lipgloss.NoColor); !ok {
			t.Errorf("NO_COLOR: colour %#v is not lipgloss.NoColor", c)
		}
	}
}

func TestPlainGlyphsWhereverTheyCannotBeDrawn(t *testing.T) {
	cases := []struct {
		env   Env
		plain bool
	}{
		{Env{Term: "linux", Locale: "en_US.UTF-8"}, true},
		{Env{Term: "vt100", Locale: "en_US.UTF-8"}, true},
		{Env{Term: "vt220", Locale: "en_US.UTF-8"}, true},
		{Env{Term: "xterm-256color", Locale: "C"}, true},
		{Env{Term: "xterm-256color", Locale: "POSIX"}, true},
		{Env{Term: "xterm-256color", Locale: "de_DE.ISO-8859-1"}, true},
		{Env{Term: "xterm-256color", Locale: "en_US.UTF-8"}, false},
		{Env{Term: "tmux-256color", Locale: "C.utf8"}, false},
		{Env{Term: "xterm-256color"}, false}, // locale not known: UTF-8
		{Env{Term: "xterm-256color", Locale: "en_US.UTF-8", ASCII: true}, true},
	}
	for _, c := range cases {
		if got := c.env.PlainGlyphs(); got != c.plain {
			t.Errorf("%+v: plain %v, want %v", c.env, got, c.plain)
		}
		if s := MustLoad("default", c.env); s.ASCII != c.plain {
			t.Errorf("%+v: Styles.ASCII %v", c.env, s.ASCII)
		}
	}
	t.Setenv("LC_ALL", "")
	t.Setenv("LC_CTYPE", "")
	t.Setenv("LANG", "")
	if e := FromEnviron(); e.Locale != "C" || !e.PlainGlyphs() {
		t.Errorf("no locale variable set: %+v", e)
	}
	t.Setenv("LANG", "fr_FR.UTF-8")
	t.Setenv("LC_ALL", "C")
	if e := FromEnviron(); e.Locale != "C" {
		t.Errorf("LC_ALL must win over LANG: %+v", e)
	}
}

// TestConsolePalettesUseBaseColours: on the Linux console nothing uses
// the colours 8-15 (drawn as SGR 90-97 and 100-107).
func TestConsolePalettesUseBaseColours(t *testing.T) {
	for _, n := range Names() {
		p := MustLoad(n, Env{Term: "linux"}).Palette
		cs := []lipgloss.TerminalColor{p.Fg, p.Muted, p.Accent, p.Border, p.Good, p.Warn, p.Bad, p.TitleFg, p.TitleBg, p.Bg}
		cs = append(cs, p.Pieces[:]...)
		for _, c := range cs {
			if col, ok := c.(lipgloss.Color); ok {
				var i int
				if _, err := fmt.Sscan(string(col), &i); err != nil || i > 7 {
					t.Errorf("%s on the console uses colour %q", n, col)
				}
			}
		}
	}
}
