package tui

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"ezio/disks/diskimage"
	"ezio/engine"
	"ezio/themes"
)

// screenStates drives a wizard to every screen it has, and the
// dashboards to each of their modes, calling see with a name for each.
func screenStates(t *testing.T, c *Common, see func(name string, v string)) {
	newM := func() *Model { return New(c, fakeDeps(t, &fakeWorld{}), &Config{}) }
	m := newM()
	see("menu", m.View())
	drive(t, m, key1("?"))
	see("menu-help", m.View())
	drive(t, m, esc)

	// Deploy: source, error, images, targets, refusal, confirm.
	m = newM()
	drive(t, m, key1("d"))
	see("deploy-source", m.View())
	m.deps.ListImages = (&fakeWorld{listErr: refusedDial("10.0.0.9:6969")}).deps(t).ListImages
	drive(t, m, keys("10.0.0.9")...)
	drive(t, m, enter)
	see("deploy-unreachable", m.View())
	drive(t, m, key1("?"))
	see("error-help", m.View())
	drive(t, m, esc)
	drive(t, m, esc)
	m.deps.ListImages = fakeDeps(t, &fakeWorld{}).ListImages
	drive(t, m, enter)
	see("deploy-images", m.View())
	drive(t, m, enter)
	see("deploy-targets", m.View())
	drive(t, m, down, enter)
	see("deploy-refused", m.View())
	drive(t, m, esc)
	drive(t, m, up, enter)
	see("deploy-confirm", m.View())
	drive(t, m, keys("sda")...)
	drive(t, m, enter)
	see("deploy-confirm-wrong", m.View())

	// Whole-disk images: the list of both kinds, the disk table, the
	// summary naming what is lost, a partition image onto a partitioned
	// disk, the disk's dashboard and its end.
	w := &diskWorld{}
	m = New(c, diskDeps(t, w), &Config{})
	drive(t, m, key1("d"))
	drive(t, m, keys("10.0.0.1")...)
	drive(t, m, enter)
	see("deploy-disk-images", m.View())
	drive(t, m, enter)
	see("deploy-disk-targets", m.View())
	drive(t, m, enter)
	see("deploy-disk-confirm", m.View())
	drive(t, m, tab)
	drive(t, m, keys("sdb")...)
	drive(t, m, enter)
	settle(t, m, 30*time.Second, "the disk dashboard", func() bool { _, ok := m.Current().(*DiskDashboard); return ok })
	see("disk-dashboard", m.View())
	if dd, ok := m.Current().(*DiskDashboard); ok {
		close(w.run.verified)
		close(w.run.done)
		drive(t, m, diskDoneMsg{id: dd.id, rep: &diskimage.Report{Target: "/dev/sdb", Partitions: []diskimage.PartitionReport{{Number: 1, Node: "/dev/sdb1", Filesystem: "vfat"}}}})
		see("disk-dashboard-done", m.View())
	} else {
		t.Errorf("the disk deploy opened %T", m.Current())
	}
	m = New(c, diskDeps(t, &diskWorld{}), &Config{})
	drive(t, m, key1("d"))
	drive(t, m, keys("10.0.0.1")...)
	drive(t, m, enter)
	drive(t, m, down, enter)
	if f, ok := m.Current().(*DeployFlow); ok && f.targets != nil {
		f.targets.Select("/dev/sdb")
	}
	drive(t, m, enter)
	see("deploy-part-on-disk", m.View())

	// Serve, both pages, for a torrent and for a disk image.
	m = newM()
	drive(t, m, key1("s"))
	see("serve-what", m.View())
	tor := filepath.Join(t.TempDir(), "sda1.torrent")
	if err := engine.WriteTorrent(testTorrent(t), tor); err != nil {
		t.Fatal(err)
	}
	m.serve.Torrent, m.serve.Source = tor, "/"
	drive(t, m, esc)
	drive(t, m, key1("s"))
	drive(t, m, enter)
	drive(t, m, enter)
	see("serve-how", m.View())
	diskServeScreens(t, c, see)

	// Capture and Build forms, a task running and done.
	m = newM()
	drive(t, m, key1("c"))
	see("capture-form", m.View())
	drive(t, m, esc)
	captureDiskScreens(t, c, see)
	drive(t, m, key1("b"))
	see("build-form", m.View())
	ts := newTask(c, m.deps, "build a torrent", &m.serve, nil, nil)
	ts.last = taskProgress{frac: 0.42, what: "hashing /srv/img: 42 MiB of 100 MiB", rate: 3e6, eta: 20e9}
	m.Start(ts)
	see("task-running", m.View())
	ts.res = &taskResult{lines: []string{"wrote /srv/sda1.torrent"}, serve: &ServeValues{}}
	see("task-done", m.View())

	// Settings, Disks.
	m = newM()
	drive(t, m, key1("t"))
	see("settings", m.View())
	drive(t, m, esc)
	drive(t, m, key1("i"))
	see("disks", m.View())

	// Dashboards: deploy and seed, full help, full log, saving, stop
	// question, result.
	for _, role := range []engine.Role{engine.RoleDeploy, engine.RoleSeed} {
		m = newM()
		d := newDashboard(c, role, string(role)+" sda1 -> /dev/sdb1", &fakeJob{})
		m.Start(d)
		snap := deploySnap(10)
		if role == engine.RoleSeed {
			snap = seedSnap(10)
			d.howTo = clientInstructions("http://10.0.0.5:6969", "", "sda1")
			d.Init()
		}
		feed(t, d, snapMsg{d.id, snap})
		feed(t, d, logEvents(d)...)
		feed(t, d, eventMsg{d.id, engine.Event{Kind: engine.EventLog, Level: "info", Message: "étiquette «données» – µTorrent ✓"}})
		see(string(role)+"-dashboard", m.View())
		drive(t, m, key1("?"))
		see(string(role)+"-dashboard-help", m.View())
		drive(t, m, key1("?"), key1("l"))
		see(string(role)+"-log", m.View())
		drive(t, m, key1("z"))
		see(string(role)+"-log-wrapped", m.View())
		drive(t, m, key1("w"))
		see(string(role)+"-log-save", m.View())
		drive(t, m, esc, esc, ctrlC)
		see(string(role)+"-stop", m.View())
		drive(t, m, key1("n"), key1("p"))
		see(string(role)+"-paused", m.View())
		msgs := run(feed(t, d, jobDoneMsg{id: d.id, final: snap}))
		drive(t, m, msgs...)
		see(string(role)+"-result", m.View())
	}
	b := &BusyScreen{c: c, what: "preparing the demo"}
	see("busy", b.View())
}

func (w *fakeWorld) deps(t *testing.T) *Deps { return fakeDeps(t, w) }

// TestScreenScanASCII renders every screen at 80x24 where only ASCII can
// be drawn (the Linux console, and any terminal in the C locale): no
// byte above 0x7F may reach the terminal.
func TestScreenScanASCII(t *testing.T) {
	envs := map[string]themes.Env{
		"TERM=linux": {Term: "linux", Locale: "en_US.UTF-8"},
		"LC_ALL=C":   {Term: "xterm-256color", Locale: "C"},
		"TERM=vt220": {Term: "vt220", Locale: "en_US.UTF-8"},
	}
	for name, env := range envs {
		for _, theme := range themes.Names() {
			t.Run(name+"/"+theme, func(t *testing.T) {
				c := NewCommon(themes.MustLoad(theme, env))
				c.Width, c.Height = 80, 24
				n := 0
				screenStates(t, c, func(screen, v string) {
					n++
					checkSize(t, v, 80, 24)
					for i := 0; i < len(v); i++ {
						if v[i] > 0x7f {
							line := strings.Count(v[:i], "\n")
							t.Errorf("%s: byte %#x on line %d:\n%s", screen, v[i], line, strings.Split(v, "\n")[line])
							return
						}
					}
				})
				if n < 30 {
					t.Errorf("only %d screens scanned", n)
				}
			})
		}
	}
	// And the scan can fail: a UTF-8 terminal does get box drawing.
	c := NewCommon(themes.MustLoad("default", themes.Env{Term: "xterm-256color", Locale: "en_US.UTF-8"}))
	if v := NewMenu(c, false, false).View() + c.Styles.Glyphs.Border.Top; !strings.ContainsAny(v, "─╭▸") {
		t.Error("a UTF-8 terminal lost its glyphs")
	}
}

// TestScreensArePlainWithoutFolding: the fold in Common.screen is a net
// for data (labels, file names, log lines); the screens' own glyphs, and
// those of huh and bubbles, must be plain already.
func TestScreensArePlainWithoutFolding(t *testing.T) {
	noFold = true
	defer func() { noFold = false }()
	c := NewCommon(themes.MustLoad("default", themes.Env{Term: "linux"}))
	c.Width, c.Height = 80, 24
	screenStates(t, c, func(screen, v string) {
		for _, l := range strings.Split(v, "\n") {
			if strings.Contains(l, "tiquette") { // the log line with data in it
				continue
			}
			for _, r := range l {
				if r > 0x7f {
					t.Errorf("%s: %q in %q", screen, r, l)
					return
				}
			}
		}
	})
}

var sgr = regexp.MustCompile(`\x1b\[([0-9;]*)m`)

// TestConsoleColours renders every screen on TERM=linux with the 16
// colour profile: nothing may use the bright colours (SGR 90-97 and
// 100-107) the console does not draw reliably, and the classic theme
// paints its blue behind every cell.
func TestConsoleColours(t *testing.T) {
	lipgloss.SetColorProfile(termenv.ANSI)
	defer lipgloss.SetColorProfile(termenv.Ascii)
	for _, theme := range themes.Names() {
		c := NewCommon(themes.MustLoad(theme, themes.Env{Term: "linux"}))
		c.Width, c.Height = 80, 24
		screenStates(t, c, func(screen, v string) {
			for _, m := range sgr.FindAllStringSubmatch(v, -1) {
				for _, p := range strings.Split(m[1], ";") {
					var n int
					fmt.Sscan(p, &n)
					if (n >= 90 && n <= 97) || (n >= 100 && n <= 107) {
						t.Errorf("%s/%s: bright colour SGR %d in %q", theme, screen, n, m[0])
						return
					}
				}
			}
			if theme != "classic" {
				return
			}
			// Every cell of every line sits on blue (SGR 44): each line
			// starts with it and sets it again after every reset.
			for i, l := range strings.Split(v, "\n") {
				if !strings.HasPrefix(l, "\x1b[44m") {
					t.Errorf("classic/%s: line %d does not start on blue: %q", screen, i, l)
					return
				}
				parts := strings.Split(strings.TrimSuffix(l, "\x1b[0m"), "\x1b[0m")
				for _, p := range parts[1:] {
					if !strings.HasPrefix(p, "\x1b[44m") {
						t.Errorf("classic/%s: line %d leaves the blue after a reset: %q", screen, i, l)
						return
					}
				}
			}
		})
	}
}

// TestGoldenScreens keeps the wizard's pages at 80x24 and 80x25 on the
// console, to be looked at when they change.
func TestGoldenScreens(t *testing.T) {
	for _, h := range []int{24, 25} {
		c := NewCommon(themes.MustLoad("default", themes.Env{Term: "linux"}))
		c.Width, c.Height = 80, h
		want := map[string]bool{"deploy-unreachable": true, "serve-how": true, "deploy-dashboard": true, "seed-dashboard": true,
			"deploy-log": true, "seed-stop": true, "seed-result": true, "capture-form": true}
		screenStates(t, c, func(screen, v string) {
			if want[screen] {
				checkSize(t, v, 80, h)
				golden(t, filepath.Join("screens", fmt.Sprintf("%s-80x%d-linux", screen, h)), v)
			}
		})
	}
}

var _ = tea.KeyMsg{}
