package tui

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
)

// logSavedMsg says how saving the log ended.
type logSavedMsg struct {
	id    int
	path  string
	lines int
	err   error
}

// defaultLogPath suggests a file in the working directory (a USB stick's
// mount point is typed over it), named for the job and the time.
func (d *Dashboard) defaultLogPath(now time.Time) string {
	dir, err := os.Getwd()
	if err != nil {
		dir = os.TempDir()
	}
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '-'
	}, d.label)
	for strings.Contains(name, "--") {
		name = strings.ReplaceAll(name, "--", "-")
	}
	return filepath.Join(dir, "ezio-"+strings.Trim(name, "-")+"-"+now.Format("20060102-150405")+".log")
}

func (d *Dashboard) askSavePath() tea.Cmd {
	ti := textinput.New()
	ti.Prompt = "save the log to: "
	ti.PromptStyle = d.c.Styles.Heading
	ti.TextStyle = d.c.Styles.Text
	ti.CharLimit = 4096
	ti.Width = max(10, d.c.Width-len(ti.Prompt)-3)
	ti.SetValue(d.defaultLogPath(time.Now()))
	d.savePath, d.saving, d.logStatus = ti, true, ""
	return d.savePath.Focus()
}

func (d *Dashboard) saveKey(msg tea.KeyMsg) tea.Cmd {
	switch {
	case key.Matches(msg, d.c.Keys.Back):
		d.saving = false
		d.logStatus = "not saved"
		return nil
	case key.Matches(msg, d.c.Keys.Enter):
		d.saving = false
		path := strings.TrimSpace(d.savePath.Value())
		if path == "" {
			d.logStatus = "not saved: no file named"
			return nil
		}
		return saveLog(d.id, path, append([]logLine(nil), d.logs...))
	}
	var cmd tea.Cmd
	d.savePath, cmd = d.savePath.Update(msg)
	return cmd
}

// saveLog writes every kept line to path, in the background.
func saveLog(id int, path string, logs []logLine) tea.Cmd {
	return func() tea.Msg {
		err := writeLog(path, logs)
		return logSavedMsg{id: id, path: path, lines: len(logs), err: err}
	}
}

func writeLog(path string, logs []logLine) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for _, l := range logs {
		fmt.Fprintf(w, "%s %-5s %s\n", l.at.Format(time.RFC3339), l.level, l.msg)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	// On a USB stick pulled out right after, only what was synced is there.
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// logKey scrolls the full-screen log; Esc or l goes back.
func (d *Dashboard) logKey(msg tea.KeyMsg) tea.Cmd {
	k := d.c.Keys
	page := max(1, d.c.Height-3)
	switch {
	case key.Matches(msg, k.Back), key.Matches(msg, k.Log):
		d.logFull = false
	case key.Matches(msg, k.SaveLog):
		return d.askSavePath()
	case key.Matches(msg, k.Wrap):
		d.logWrap = !d.logWrap
	case key.Matches(msg, k.Up):
		d.logOff++
	case key.Matches(msg, k.Down):
		d.logOff = max(0, d.logOff-1)
	case key.Matches(msg, k.PageUp):
		d.logOff += page
	case key.Matches(msg, k.PageDown):
		d.logOff = max(0, d.logOff-page)
	case key.Matches(msg, k.Home):
		d.logOff = len(d.logs) * 100 // clamped when drawn
	case key.Matches(msg, k.End):
		d.logOff = 0
	case key.Matches(msg, k.Pause):
		return d.togglePause()
	}
	return nil
}

// fullLogLines renders every kept line for a width, wrapped or cut.
func (d *Dashboard) fullLogLines(w int) []string {
	var out []string
	for _, l := range d.logLinesOf(d.logs) {
		if !d.logWrap {
			out = append(out, l)
			continue
		}
		for _, part := range strings.Split(ansi.Hardwrap(l, w, true), "\n") {
			out = append(out, part)
		}
	}
	return out
}

func (d *Dashboard) logView() string {
	c, st := d.c, d.c.Styles
	w := c.Width
	wrapState := "cut"
	if d.logWrap {
		wrapState = "wrapped"
	}
	lines := []string{c.titleBar(d.label+": log", st.Muted.Render(fmt.Sprintf("%d lines, %s", len(d.logs), wrapState)))}
	body := d.fullLogLines(w - 1)
	foot := d.footer()
	h := max(1, c.Height-1-len(foot))
	maxOff := max(0, len(body)-h)
	d.logOff = min(d.logOff, maxOff)
	end := len(body) - d.logOff
	start := max(0, end-h)
	for _, l := range body[start:end] {
		lines = append(lines, " "+l)
	}
	for len(lines) < c.Height-len(foot) {
		lines = append(lines, "")
	}
	return c.screen(append(lines, foot...))
}

func (d *Dashboard) keys() [][]key.Binding {
	k := d.c.Keys
	switch {
	case d.saving:
		return [][]key.Binding{{as(k.Enter, "save"), as(k.Back, "cancel")}}
	case d.logFull:
		return [][]key.Binding{{k.Up, k.Down, k.PageUp, k.PageDown, k.Home, k.End}, {k.Wrap, k.SaveLog, as(k.Back, "dashboard"), k.Pause}}
	}
	return [][]key.Binding{{k.Pause, k.Tab, k.ShiftTab}, {k.Up, k.Down, k.Log, k.SaveLog}, {k.ForceQuit, k.Quit, k.Help}}
}

// ShortHelp and FullHelp are the dashboard's key map.
func (d *Dashboard) ShortHelp() []key.Binding {
	k := d.c.Keys
	switch {
	case d.saving:
		return d.keys()[0]
	case d.logFull:
		return []key.Binding{k.Up, k.Down, k.PageUp, k.Wrap, k.SaveLog, as(k.Back, "dashboard")}
	}
	return []key.Binding{k.Pause, k.Tab, k.Log, k.SaveLog, as(k.ForceQuit, "stop"), k.Help}
}

func (d *Dashboard) FullHelp() [][]key.Binding { return d.keys() }
