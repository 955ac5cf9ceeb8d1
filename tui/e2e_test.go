package tui

// End-to-end tests: the built binary in a detached tmux session at 80x24
// with TERM=linux, driven with send-keys and read with capture-pane.
// They need tmux (and root for the loop devices): outside CI they skip
// with the reason; with CI=true a missing prerequisite fails.

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"ezio/disks/disktest"
)

func need(t *testing.T, root bool, tools ...string) {
	t.Helper()
	disktest.Need(t, root, tools...)
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
}

func ezioBinary(t *testing.T) string { return disktest.EzioBinary(t) }

// tmuxSession is one detached session this test created.
type tmuxSession struct {
	t    *testing.T
	name string
}

var sessionSeq int

func startTmux(t *testing.T, home string, args ...string) *tmuxSession {
	t.Helper()
	sessionSeq++
	name := fmt.Sprintf("ezio-e2e-%d-%d", os.Getpid(), sessionSeq)
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	// The pane stays after the program exits so its last screen can be read.
	cmdline := fmt.Sprintf("env TERM=linux HOME='%s' XDG_CONFIG_HOME='%s/.config' XDG_CACHE_HOME='%s/.cache' %s; sleep 600",
		home, home, home, strings.Join(quoted, " "))
	out, err := exec.Command("tmux", "new-session", "-d", "-s", name, "-x", "80", "-y", "24", cmdline).CombinedOutput()
	if err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	s := &tmuxSession{t: t, name: name}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last screen of %s:\n%s", name, s.capture())
		}
		exec.Command("tmux", "kill-session", "-t", "="+name).Run()
	})
	return s
}

func (s *tmuxSession) capture() string {
	out, _ := exec.Command("tmux", "capture-pane", "-p", "-t", s.name).Output()
	return string(out)
}

// send types keys: tmux key names ("Enter", "Down", "Escape") or text.
func (s *tmuxSession) send(keys ...string) {
	s.t.Helper()
	args := append([]string{"send-keys", "-t", s.name}, keys...)
	if out, err := exec.Command("tmux", args...).CombinedOutput(); err != nil {
		s.t.Fatalf("tmux send-keys %v: %v\n%s", keys, err, out)
	}
}

func (s *tmuxSession) sendText(text string) {
	s.t.Helper()
	if out, err := exec.Command("tmux", "send-keys", "-t", s.name, "-l", text).CombinedOutput(); err != nil {
		s.t.Fatalf("tmux send-keys: %v\n%s", err, out)
	}
}

// waitFor polls the screen until ok accepts it, or fails at the deadline.
func (s *tmuxSession) waitFor(what string, timeout time.Duration, ok func(screen string) bool) string {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		scr := s.capture()
		if ok(scr) {
			return scr
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out after %s waiting for %s; screen:\n%s", timeout, what, scr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (s *tmuxSession) waitText(text string, timeout time.Duration) string {
	s.t.Helper()
	return s.waitFor(fmt.Sprintf("%q", text), timeout, func(scr string) bool { return strings.Contains(scr, text) })
}

var fleetPct = regexp.MustCompile(`fleet [#-]+\s+(\d+)%`)

func TestE2EDemo(t *testing.T) {
	need(t, false, "tmux", "go")
	bin := ezioBinary(t)
	home := t.TempDir()
	s := startTmux(t, home, bin, "demo", "--clients", "3", "--size", "256MiB", "--stagger", "3s")
	s.waitText("fleet", 90*time.Second)
	// Peers: the clients connect to the seeder.
	s.waitFor("a client in the peers table", 60*time.Second, func(scr string) bool {
		return regexp.MustCompile(`\|127\.0\.0\.1:\d+\s+ezio`).MatchString(scr)
	})
	// The fleet's progress bar moves.
	seen := map[string]bool{}
	var dashboard string
	s.waitFor("the progress bar to move", 90*time.Second, func(scr string) bool {
		if m := fleetPct.FindStringSubmatch(scr); m != nil {
			if !seen[m[1]] && len(seen) > 0 {
				dashboard = scr
			}
			seen[m[1]] = true
		}
		return len(seen) >= 2 || strings.Contains(scr, "Completed")
	})
	if len(seen) < 2 {
		t.Errorf("the progress bar never moved: saw %v", seen)
	}
	for _, l := range strings.Split(dashboard, "\n") {
		if len([]rune(l)) > 80 {
			t.Errorf("line wider than 80: %q", l)
		}
	}
	if out := os.Getenv("EZIO_DASHBOARD_OUT"); out != "" && dashboard != "" {
		os.WriteFile(out, []byte(dashboard), 0o644)
	}
	scr := s.waitText("Completed", 120*time.Second)
	for _, want := range []string{"3 of 3 clients done", "Contribution per peer", "127.0.0.1:"} {
		if !strings.Contains(scr, want) {
			t.Errorf("result lacks %q:\n%s", want, scr)
		}
	}
	// Back to the menu, and quit: the demo removes its files.
	s.send("Enter")
	s.waitText("What do you want to do?", 10*time.Second)
	s.send("q")
}

// selectRow moves the target table's cursor (">" on the console) to dev.
func selectRow(s *tmuxSession, dev string) {
	s.t.Helper()
	name := filepath.Base(dev)
	re := regexp.MustCompile(`(?m)^> ` + regexp.QuoteMeta(name) + `\s`)
	s.send("Home")
	time.Sleep(100 * time.Millisecond)
	for range 200 {
		if re.MatchString(s.capture()) {
			return
		}
		s.send("Down")
		time.Sleep(80 * time.Millisecond)
	}
	s.t.Fatalf("could not put the cursor on %s:\n%s", name, s.capture())
}

func TestE2EDeployLoopDevices(t *testing.T) {
	need(t, true, "tmux", "go", "losetup", "mkfs.ext4", "mount", "umount")
	bin := ezioBinary(t)
	work := t.TempDir()

	// An image of two extents at unaligned offsets, and its torrent.
	img := filepath.Join(work, "img")
	os.Mkdir(img, 0o755)
	extents := map[int64][]byte{0x100000 + 512: make([]byte, 5<<20+333), 0x900000: make([]byte, 3<<20)}
	for off, data := range extents {
		rand.Read(data)
		if err := os.WriteFile(filepath.Join(img, fmt.Sprintf("%032x", off)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tor := filepath.Join(work, "e2e.torrent")
	if out, err := exec.Command(bin, "torrent", "create", img, "-o", tor, "--name", "e2e", "--piece-length", "1MiB").CombinedOutput(); err != nil {
		t.Fatalf("torrent create: %v\n%s", err, out)
	}
	trackerPort, peerPort := disktest.FreePort(t), disktest.FreePort(t)
	seed := exec.Command(bin, "seed", tor, img, "--tracker-listen", fmt.Sprintf("127.0.0.1:%d", trackerPort),
		"--listen", fmt.Sprintf("127.0.0.1:%d", peerPort), "--log-file", filepath.Join(work, "seed.log"))
	if err := seed.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { seed.Process.Kill(); seed.Wait() })

	// A mounted device (must be refused) and a free one (the target).
	mounted := disktest.NewLoop(t, 64<<20, nil)
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", mounted).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", mounted, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	target := disktest.NewLoop(t, 32<<20, nil)

	s := startTmux(t, work, bin, "--log-file", filepath.Join(work, "wizard.log"), "--listen", "127.0.0.1:0")
	s.waitText("What do you want to do?", 30*time.Second)
	s.send("d")
	s.waitText("Where is the image?", 10*time.Second)
	s.sendText(fmt.Sprintf("127.0.0.1:%d", trackerPort))
	s.send("Enter")
	s.waitText("Which image?", 20*time.Second)
	s.send("Enter")
	s.waitText("Which disk or partition", 30*time.Second)

	// The mounted device is listed with its reason, and refused when chosen.
	selectRow(s, mounted)
	s.send("Enter")
	scr := s.waitText("Refused: "+mounted, 10*time.Second)
	if !strings.Contains(scr, "mounted") {
		t.Errorf("refusal does not say why:\n%s", scr)
	}
	s.send("Escape")
	s.waitText("Which disk or partition", 10*time.Second)

	// The free device: summary, typed confirmation, dashboard, result.
	selectRow(s, target)
	s.send("Enter")
	s.waitText("Type "+filepath.Base(target), 20*time.Second)
	s.sendText(filepath.Base(target))
	s.send("Enter")
	scr = s.waitText("Completed: every piece verified", 120*time.Second)
	if !strings.Contains(scr, "9 of 9 pieces") {
		t.Errorf("result does not count the pieces:\n%s", scr)
	}
	// The device holds the image at its offsets.
	sameBytes(t, "the wizard's deploy", target, extents)
	s.send("Enter")
	s.waitText("What do you want to do?", 10*time.Second)
	s.send("q")
}

// TestE2EDeployErrorEscKeepsAddress: the real binary on the console at
// 80x24. A server that does not answer is named as such (not a refusal
// of a disk); Esc brings the form back with the address in it, and the
// form takes keys again. Every byte on screen is ASCII.
func TestE2EDeployErrorEscKeepsAddress(t *testing.T) {
	need(t, false, "tmux", "go")
	bin := ezioBinary(t)
	home := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", disktest.FreePort(t)) // nothing listens there
	s := startTmux(t, home, bin, "--log-file", filepath.Join(home, "wizard.log"), "--listen", "127.0.0.1:0")
	s.waitText("What do you want to do?", 30*time.Second)
	s.send("d")
	s.waitText("Where is the image?", 10*time.Second)
	s.sendText(addr)
	s.send("Enter")
	scr := s.waitText("Cannot reach the server", 30*time.Second)
	if !strings.Contains(scr, "No answer from "+addr) {
		t.Errorf("the error does not say which server did not answer:\n%s", scr)
	}
	for _, bad := range []string{"Refused", "Choose another target"} {
		if strings.Contains(scr, bad) {
			t.Errorf("the error screen says %q:\n%s", bad, scr)
		}
	}
	if f := regexp.MustCompile(`--[a-z]`).FindString(scr); f != "" {
		t.Errorf("a command-line flag on the wizard's screen:\n%s", scr)
	}
	asciiScreen(t, scr)
	s.send("Escape")
	scr = s.waitText("Where is the image?", 10*time.Second)
	if !strings.Contains(scr, addr) {
		t.Fatalf("the address is not kept:\n%s", scr)
	}
	asciiScreen(t, scr)
	// The form takes keys: type, see it, take it back, ask again.
	s.sendText("7")
	s.waitText(addr+"7", 10*time.Second)
	s.send("BSpace")
	s.waitFor("the address without the 7", 10*time.Second, func(scr string) bool {
		return strings.Contains(scr, addr) && !strings.Contains(scr, addr+"7")
	})
	s.send("Enter")
	s.waitText("Cannot reach the server", 30*time.Second)
	// Leaving Deploy and coming back keeps the address too.
	s.send("Escape")
	s.waitText("Where is the image?", 10*time.Second)
	s.send("Escape")
	s.waitText("What do you want to do?", 10*time.Second)
	s.send("d")
	scr = s.waitText("Where is the image?", 10*time.Second)
	if !strings.Contains(scr, addr) {
		t.Errorf("re-entering Deploy lost the address:\n%s", scr)
	}
	s.send("Escape")
	s.waitText("What do you want to do?", 10*time.Second)
	s.send("q")
}

// asciiScreen fails on any byte above 0x7F in a captured screen.
func asciiScreen(t *testing.T, scr string) {
	t.Helper()
	for i := 0; i < len(scr); i++ {
		if scr[i] > 0x7f {
			t.Errorf("byte %#x on the console screen:\n%s", scr[i], scr)
			return
		}
	}
}
