package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"ezio/disks/disktest"
	"ezio/disks/table"
	"ezio/engine"
	"ezio/themes"
	"ezio/tui"
)

// viewRecorder runs the wizard in a real program and keeps what it drew.
type viewRecorder struct {
	tea.Model
	mu    *sync.Mutex
	views *[]string
}

func (r viewRecorder) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	m, cmd := r.Model.Update(msg)
	r.Model = m
	return r, cmd
}

func (r viewRecorder) View() string {
	v := r.Model.View()
	r.mu.Lock()
	if n := len(*r.views); n == 0 || (*r.views)[n-1] != v {
		*r.views = append(*r.views, v)
	}
	r.mu.Unlock()
	return v
}

// wizardProgram is the wizard at 80x24 on the console, in a real Bubble
// Tea program with no terminal: keys are sent, screens are read.
type wizardProgram struct {
	t     *testing.T
	p     *tea.Program
	mu    sync.Mutex
	views []string
}

func startWizard(t *testing.T, ctx context.Context, deps *tui.Deps) *wizardProgram {
	c := tui.NewCommon(themes.MustLoad("default", themes.Env{Term: "linux"}))
	c.Width, c.Height = 80, 24
	w := &wizardProgram{t: t}
	rec := viewRecorder{Model: tui.New(c, deps, &tui.Config{}), mu: &w.mu, views: &w.views}
	w.p = tea.NewProgram(rec, tea.WithInput(nil), tea.WithOutput(io.Discard), tea.WithoutSignalHandler(), tea.WithContext(ctx))
	ended := make(chan struct{})
	go func() { w.p.Run(); close(ended) }()
	t.Cleanup(func() {
		w.p.Kill()
		<-ended
		if t.Failed() {
			t.Logf("last screen:\n%s", w.last())
		}
	})
	return w
}

func (w *wizardProgram) last() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.views) == 0 {
		return ""
	}
	return w.views[len(w.views)-1]
}

// seen tells whether any screen drawn so far satisfies ok.
func (w *wizardProgram) seen(ok func(string) bool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, v := range w.views {
		if ok(v) {
			return true
		}
	}
	return false
}

func (w *wizardProgram) wait(text string, timeout time.Duration) string {
	w.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		v := w.last()
		if strings.Contains(v, text) {
			return v
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("no %q on the screen within %s:\n%s", text, timeout, v)
		}
		time.Sleep(30 * time.Millisecond)
	}
}

func (w *wizardProgram) send(msgs ...tea.Msg) {
	for _, m := range msgs {
		w.p.Send(m)
	}
}

func (w *wizardProgram) typeText(s string) {
	w.send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)})
}

var (
	wzEnter = tea.KeyMsg{Type: tea.KeyEnter}
	wzRight = tea.KeyMsg{Type: tea.KeyRight}
	wzBack  = tea.KeyMsg{Type: tea.KeyBackspace}
)

// TestWizardServesADiskImage: the wizard's Serve, with the command line's
// SeedDisk behind it, serves a disk image captured from a real loop disk
// (two ext4 partitions), on loopback, told the room has one client and to
// stop when it is done. A real `ezio deploy http://127.0.0.1:PORT/images/
// NAME` (in this process) writes a blank loop disk: the same table, each
// partition the same bytes. The seeder's dashboard counts the client done
// in its fleet, and the wizard stops serving by itself.
func TestWizardServesADiskImage(t *testing.T) {
	dkNeed(t)
	parts := []dkPart{
		{typ: "83", size: "12MiB", fs: "ext4", files: map[string][]byte{"a.bin": dkRandom(51, 700<<10), "a.txt": []byte("first\n")}},
		{typ: "83", fs: "ext4", files: map[string][]byte{"b.bin": dkRandom(52, 1<<20+77)}},
	}
	src, nodes := dkDisk(t, 32<<20, "dos", parts)
	dir := dkCaptureDisk(t, src, t.TempDir(), "wizdisk")
	target := dkBlank(t, 32<<20)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	logf, err := os.Create(filepath.Join(t.TempDir(), "wizard.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	a := &App{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard}
	deps := tui.RealDeps(ctx, slog.New(slog.NewTextHandler(logf, nil)), engine.Tuning{ListenAddr: "127.0.0.1:0"})
	deps.DiskDeps = a.wizardDiskDeps()
	deps.Announce = nil // multicast only in a namespace of a test's own
	w := startWizard(t, ctx, deps)

	w.wait("What do you want to do?", 10*time.Second)
	w.typeText("s")
	w.wait("Torrent file or disk image", 10*time.Second)
	w.typeText(dir)
	w.wait("in the disk image directory", 10*time.Second)
	w.send(wzEnter)
	// Serve on loopback (the last address), a free port, one client, a
	// limit, not announced, stop when the room is done.
	v := w.wait("Port of the image server", 10*time.Second)
	for i := 0; !strings.Contains(v, "127.0.0.1 (lo)"); i++ {
		if i > 40 {
			t.Fatalf("loopback is not offered:\n%s", v)
		}
		w.send(wzRight)
		time.Sleep(50 * time.Millisecond)
		v = w.last()
	}
	w.send(wzEnter)
	w.wait("| Port of the image server", 10*time.Second)
	port := fmt.Sprint(disktest.FreePort(t))
	w.send(wzBack, wzBack, wzBack, wzBack)
	w.typeText(port)
	w.wait("> "+port, 10*time.Second)
	w.send(wzEnter)
	w.wait("| Clients expected", 10*time.Second) // the tracker question is skipped
	w.typeText("1")
	w.send(wzEnter)
	w.wait("| Upload limit per second", 10*time.Second)
	w.typeText("200MiB")
	w.send(wzEnter)
	w.wait("Check the whole source first?", 10*time.Second)
	w.typeText("n")
	// Not booted over the network (the default): these clients deploy.
	w.wait("Boot the room's machines over the network?", 10*time.Second)
	w.send(wzEnter)
	w.wait("Announce this server on the LAN?", 10*time.Second)
	w.typeText("n")
	w.wait("Stop serving when the room is done?", 10*time.Second)
	w.typeText("y")

	url := "http://127.0.0.1:" + port + "/images/wizdisk"
	v = w.wait("seed disk wizdisk", 30*time.Second)
	if !strings.Contains(v, "clients: ezio deploy "+url+" TARGET-DISK") || !strings.Contains(v, "[Partitions]") {
		t.Errorf("the dashboard does not say what clients run:\n%s", v)
	}
	// The client's default policy: it serves others a moment after it is
	// done, and so stays connected while the seeder sees it complete.
	var out, errb capBuffer
	code, err := capExec(ctx, t, &out, &errb, "deploy", url, target, "--yes", "--json", "--listen", "127.0.0.1:0")
	if code != 0 {
		t.Fatalf("ezio deploy %s: exit %d, %v\n%s\n%s", url, code, err, capTail(out.String()), capTail(errb.String()))
	}

	// The room of one is done: the wizard stops serving and says so.
	v = w.wait("Completed: seeder finished serving.", 60*time.Second)
	if !strings.Contains(v, "result seed disk wizdisk") || !regexp.MustCompile(`fleet\s+1 of 1 clients done`).MatchString(v) {
		t.Errorf("result:\n%s", v)
	}
	done := regexp.MustCompile(`\|127\.0\.0\.1\S*\s+#+\s+100% done`)
	if !w.seen(func(v string) bool {
		return strings.Contains(v, "seed disk wizdisk") && strings.Contains(v, "1 of 1 clients done") && done.MatchString(v)
	}) {
		t.Error("no dashboard showed the client done in its fleet")
	}
	for _, v := range []string{w.last()} {
		for i := 0; i < len(v); i++ {
			if v[i] > 0x7f {
				t.Fatalf("byte %#x on the console screen:\n%s", v[i], v)
			}
		}
	}

	// The disk: the same table, every partition the same bytes.
	if got, want := dkDump(t, target, true), dkDump(t, src, true); got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
	for i, node := range nodes {
		tnode, err := table.PartitionNode(target, i+1)
		if err != nil {
			t.Fatal(err)
		}
		if disktest.Sum(t, tnode) != disktest.Sum(t, node) {
			t.Errorf("partition %d: %s differs from %s", i+1, tnode, node)
		}
	}
	dkCheckFiles(t, target, parts)
}
