package tui

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"ezio/engine"
	"ezio/themes"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestMain(m *testing.M) {
	// Golden files hold plain text: no colour, whatever the terminal.
	lipgloss.SetColorProfile(termenv.Ascii)
	lipgloss.SetHasDarkBackground(true)
	// The Serve screen lists this machine's addresses: the same in every run.
	listLocalAddrs = func() []localAddr { return []localAddr{{"eth0", "10.0.0.5"}, {"lo", "127.0.0.1"}} }
	// And the name it announces itself by.
	hostName = func() (string, error) { return "lab", nil }
	os.Exit(m.Run())
}

func testCommon(w, h int, term string) *Common {
	c := NewCommon(themes.MustLoad("default", themes.Env{Term: term}))
	c.Width, c.Height = w, h
	return c
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./tui -run %s -update to create it)", err, t.Name())
	}
	if string(want) != got {
		t.Errorf("%s differs from the golden file; run with -update if the change is intended.\n--- got:\n%s\n--- want:\n%s", path, got, want)
	}
}

// checkSize makes sure a view is exactly w x h cells.
func checkSize(t *testing.T, v string, w, h int) {
	t.Helper()
	lines := strings.Split(v, "\n")
	if len(lines) != h {
		t.Errorf("view has %d lines, want %d", len(lines), h)
	}
	for i, l := range lines {
		if n := lipgloss.Width(l); n != w {
			t.Errorf("line %d is %d cells wide, want %d: %q", i, n, w, l)
		}
	}
}

// run executes a command the way the program would, but drops commands
// that block (timers, cursor blinks) and flattens batches and sequences.
func run(cmd tea.Cmd) []tea.Msg {
	if cmd == nil {
		return nil
	}
	ch := make(chan tea.Msg, 1)
	go func() { ch <- cmd() }()
	var msg tea.Msg
	select {
	case msg = <-ch:
	case <-time.After(50 * time.Millisecond):
		lateMu.Lock()
		late = append(late, ch)
		lateMu.Unlock()
		return nil
	}
	return expand(msg)
}

// late holds the commands run gave up on: most are timers, but on a
// loaded machine a command doing real work (hashing, writing a file) can
// take longer than run waits. settle delivers what they answer later.
var (
	lateMu sync.Mutex
	late   []chan tea.Msg
)

// settle feeds m the late answers of dropped commands (and whatever
// their messages start) until done reports true, or fails after timeout.
// Tests whose step does real work in a command use it instead of
// expecting the answer within run's 50 ms.
func settle(t *testing.T, m tea.Model, timeout time.Duration, what string, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; screen:\n%s", what, timeout, m.View())
		}
		lateMu.Lock()
		pending := late
		late = nil
		lateMu.Unlock()
		for _, ch := range pending {
			select {
			case msg := <-ch:
				for _, msg := range expand(msg) {
					drive(t, m, msg)
				}
			default:
				lateMu.Lock()
				late = append(late, ch)
				lateMu.Unlock()
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// expand flattens a command's answer: batches and sequences run their
// commands, nil is nothing.
func expand(msg tea.Msg) []tea.Msg {
	if msg == nil {
		return nil
	}
	if b, ok := msg.(tea.BatchMsg); ok {
		var out []tea.Msg
		for _, c := range b {
			out = append(out, run(c)...)
		}
		return out
	}
	rv := reflect.ValueOf(msg)
	if rv.Kind() == reflect.Slice && rv.Type().Elem() == reflect.TypeOf(tea.Cmd(nil)) {
		var out []tea.Msg
		for i := 0; i < rv.Len(); i++ {
			c, _ := rv.Index(i).Interface().(tea.Cmd)
			out = append(out, run(c)...)
		}
		return out
	}
	return []tea.Msg{msg}
}

// drive feeds msgs to m, then every message its commands produce, until
// things settle. It returns the messages that quit, if any.
func drive(t *testing.T, m tea.Model, msgs ...tea.Msg) (quit bool) {
	t.Helper()
	queue := append([]tea.Msg(nil), msgs...)
	for n := 0; len(queue) > 0; n++ {
		if n > 500 {
			t.Fatal("messages never settle")
		}
		msg := queue[0]
		queue = queue[1:]
		if _, ok := msg.(tea.QuitMsg); ok {
			quit = true
			continue
		}
		_, cmd := m.Update(msg)
		queue = append(queue, run(cmd)...)
	}
	return quit
}

func keys(s string) []tea.Msg {
	var out []tea.Msg
	for _, r := range s {
		out = append(out, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
	}
	return out
}

var (
	enter = tea.KeyMsg{Type: tea.KeyEnter}
	esc   = tea.KeyMsg{Type: tea.KeyEsc}
	down  = tea.KeyMsg{Type: tea.KeyDown}
	up    = tea.KeyMsg{Type: tea.KeyUp}
	tab   = tea.KeyMsg{Type: tea.KeyTab}
	ctrlC = tea.KeyMsg{Type: tea.KeyCtrlC}
	t0    = time.Date(2025, 3, 14, 2, 0, 0, 0, time.UTC)
	bg    = context.Background()
	_     = engine.PhaseDone
)

func key1(s string) tea.KeyMsg { return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)} }
