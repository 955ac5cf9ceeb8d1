package themes

import (
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
