package tui

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"ezio/engine"
	"ezio/engine/discover"

	"github.com/charmbracelet/lipgloss"
)

// TestDeployAutoWithNoServer: `auto` when nobody announces ezio on the
// LAN says that no server was found and what to do, not that a torrent
// could not be read, and the error box keeps to the screen at 80 columns.
func TestDeployAutoWithNoServer(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {80, 25}} {
		m := newApp(t, &fakeWorld{})
		m.c.Width, m.c.Height = size[0], size[1]
		m.deps.FetchTorrent = func(ctx context.Context, src string) (*engine.FetchedTorrent, error) {
			return nil, fmt.Errorf("looking for %s on the LAN for 3s: %w", src, discover.ErrNoServer)
		}
		drive(t, m, key1("d"))
		drive(t, m, keys("auto")...)
		drive(t, m, enter)
		v := m.View()
		if !strings.Contains(v, "No ezio server found on this network") || strings.Contains(v, "Could not read the torrent") ||
			strings.Contains(v, "Check the path or the URL") {
			t.Fatalf("%dx%d: the error screen for auto with no server:\n%s", size[0], size[1], v)
		}
		checkSize(t, v, size[0], size[1])
	}
}

// TestErrorBoxKeepsToTheScreen: the longest words and lines an error can
// carry (a long path, a long title) are wrapped inside the box.
func TestErrorBoxKeepsToTheScreen(t *testing.T) {
	long := "/srv/images/" + strings.Repeat("a-very-long-directory-name/", 5) + "sda1.torrent"
	m := newApp(t, &fakeWorld{})
	for _, title := range []string{"Could not read the torrent", "Could not read the torrent " + long} {
		s := &ErrorScreen{c: m.c, title: title, what: "open " + long + ": no such file or directory", hint: "Check the path or the URL; " + long}
		checkSize(t, s.View(), 80, 24)
	}
}

// TestWrapCountsCells: wrapping counts what the screen shows, so a line
// of multi-byte characters is neither cut short nor cut inside a rune.
func TestWrapCountsCells(t *testing.T) {
	for _, l := range wrap("├──── "+strings.Repeat("é", 30)+" …", 10) {
		if !utf8.ValidString(l) || lipgloss.Width(l) > 10 {
			t.Errorf("line %q: %d cells, valid %v", l, lipgloss.Width(l), utf8.ValidString(l))
		}
	}
	if got := wrap("ééé ééé", 7); len(got) != 1 {
		t.Errorf("7 cells of text wrapped into %q", got)
	}
}
