package tui

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"ezio/disks"
	"ezio/engine"
	"ezio/engine/torrentfile"
)

// refusedDial is what engine.ListImages returns when nothing listens.
func refusedDial(addr string) error {
	return fmt.Errorf("asking %s for its images: %w", addr, &url.Error{Op: "Get", URL: "http://" + addr + "/images.json",
		Err: &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.ParseIP(strings.Split(addr, ":")[0]), Port: 6969}, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}})
}

// TestDeployErrorEscKeepsAddressAndTakesKeys: an unreachable server is
// named as such; Esc brings the form back with the address, and the form
// takes keys again (a submitted huh form ignores them).
func TestDeployErrorEscKeepsAddressAndTakesKeys(t *testing.T) {
	w := &fakeWorld{listErr: refusedDial("10.0.0.9:6969")}
	m := newApp(t, w)
	drive(t, m, key1("d"))
	drive(t, m, keys("10.0.0.9")...)
	drive(t, m, enter)
	v := m.View()
	if !strings.Contains(v, "Cannot reach the server") || !strings.Contains(v, "No answer from 10.0.0.9:6969: connection refused.") ||
		strings.Contains(v, "Refused") || strings.Contains(v, "--") {
		t.Fatalf("error screen:\n%s", v)
	}
	drive(t, m, esc)
	f, ok := m.Current().(*DeployFlow)
	if !ok || f.step != stepSource || !strings.Contains(m.View(), "10.0.0.9") {
		t.Fatalf("after esc: %T\n%s", m.Current(), m.View())
	}
	drive(t, m, keys(":7000")...)
	if !strings.Contains(m.View(), "10.0.0.9:7000") {
		t.Fatalf("the form does not take keys after the error:\n%s", m.View())
	}
	w.listErr = nil
	drive(t, m, enter)
	if f.step != stepImage || f.source != "10.0.0.9:7000" {
		t.Fatalf("the corrected address did not go through: step %v source %q", f.step, f.source)
	}
	// Leaving Deploy and coming back keeps the last address.
	drive(t, m, esc, esc)
	if _, ok := m.Current().(*Menu); !ok {
		t.Fatalf("esc esc gave %T", m.Current())
	}
	drive(t, m, key1("d"))
	if !strings.Contains(m.View(), "10.0.0.9:7000") {
		t.Errorf("re-entering Deploy lost the address:\n%s", m.View())
	}
}

// TestCaptureAfterErrorReplacesOldInput: after a failed capture Esc shows
// the form with its answers; the first key typed replaces the device
// instead of being added to it.
func TestCaptureAfterErrorReplacesOldInput(t *testing.T) {
	m := newApp(t, &fakeWorld{})
	out := filepath.Join(t.TempDir(), "out")
	drive(t, m, key1("c"))
	drive(t, m, keys("/dev/ezio-no-such-disk")...)
	drive(t, m, enter)
	drive(t, m, keys(out)...)
	drive(t, m, enter) // output directory
	drive(t, m, enter) // what to save
	drive(t, m, enter) // name
	drive(t, m, enter) // server that will serve it
	waitFor(t, m, func(v string) bool { return strings.Contains(v, "failed") })
	drive(t, m, esc)
	if _, ok := m.Current().(*taskForm); !ok {
		t.Fatalf("esc after the failure gave %T", m.Current())
	}
	if !strings.Contains(m.View(), "/dev/ezio-no-such-disk") || !strings.Contains(m.View(), out) {
		t.Fatalf("the answers were not kept:\n%s", m.View())
	}
	drive(t, m, keys("/dev/ezio-other")...)
	v := m.View()
	if strings.Contains(v, "no-such-disk/dev") || !strings.Contains(v, "/dev/ezio-other") {
		t.Fatalf("typing did not replace the old device:\n%s", v)
	}
	drive(t, m, enter)
	if m.capture.Source != "/dev/ezio-other" || m.capture.OutDir != out {
		t.Errorf("values after the retry: %+v", m.capture)
	}
}

// waitFor drives ticks until the view satisfies ok (tasks run in goroutines).
func waitFor(t *testing.T, m *Model, ok func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok(m.View()) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out; screen:\n%s", m.View())
		}
		if ts, isTask := m.Current().(*TaskScreen); isTask {
			drive(t, m, run(ts.wait())...)
			continue
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestErrorsAreNamedForWhatHappened(t *testing.T) {
	busy := &engine.ListenError{Addr: "0.0.0.0:6881",
		Err: &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EADDRINUSE)}}
	refused := &disks.RefusedError{Target: "/dev/loop1", Reason: "it is mounted on /mnt", Hint: "Unmount it first", Kind: disks.RefusedMounted}
	noTracker := engine.ErrNoPeerSource
	notImage := &torrentfile.ValidationError{Reason: "file names are not hex offsets"}
	cases := []struct {
		err          error
		title, avoid string
	}{
		{busy, "A port is already in use", "Refused"},
		{refusedDial("10.0.0.9:6969"), "Cannot reach the server", "Refused"},
		{context.DeadlineExceeded, "Cannot reach the server", "Refused"},
		{noTracker, "The torrent names no way to find the server", "Refused"},
		{refused, "Refused: /dev/loop1", "Cannot reach"},
		{notImage, "not an ezio disk image", "Refused"},
	}
	for _, c := range cases {
		p := describe("Could not deploy", c.err, "fallback")
		all := p.title + "\n" + p.what + "\n" + p.hint
		if !strings.Contains(p.title, c.title) || strings.Contains(all, c.avoid) {
			t.Errorf("%v:\n%s", c.err, all)
		}
		if strings.Contains(all, "--") {
			t.Errorf("a command-line flag in the wizard: %q", all)
		}
	}
	if p := describe("Could not deploy", errors.New("disk on fire"), "call someone"); p.title != "Could not deploy" || p.hint != "call someone" {
		t.Errorf("an unknown error: %+v", p)
	}
}

// TestDeployListensOnAFreePort: a client in the wizard never takes the
// fixed BitTorrent port (a seeder on the same machine has it).
func TestDeployListensOnAFreePort(t *testing.T) {
	w := &fakeWorld{}
	m := newApp(t, w)
	m.deps.Tuning.ListenAddr = "127.0.0.1:6881"
	drive(t, m, key1("d"))
	drive(t, m, keys("10.0.0.1")...)
	drive(t, m, enter) // address
	drive(t, m, enter) // image
	drive(t, m, enter) // sdb
	drive(t, m, keys("sdb")...)
	drive(t, m, enter)
	if w.deployed == nil || w.deployed.Tuning.ListenAddr != "127.0.0.1:0" {
		t.Fatalf("deploy options: %+v", w.deployed)
	}
	if deployListenAddr("") != "0.0.0.0:0" {
		t.Errorf("default: %s", deployListenAddr(""))
	}
	// The fake deploy fails: the error screen goes back to the confirmation step.
	drive(t, m, esc)
	if f, ok := m.Current().(*DeployFlow); !ok || f.step != stepConfirm {
		t.Errorf("esc after a failed start: %T", m.Current())
	}
}

// TestServeFormPassesItsFields: address, port, tracker, expected clients
// and the upload limit reach the seeder's options.
func TestServeFormPassesItsFields(t *testing.T) {
	m, seeded := serveFormOnTorrent(t, fmt.Errorf("listen tcp 127.0.0.1:7070: %w", os.NewSyscallError("bind", syscall.EADDRINUSE)))
	s := m.Current().(*ServeFlow)
	// Second page: serve on loopback (the last address), port 7070, no
	// tracker, 12 clients, 5 MiB/s.
	for range s.hosts {
		drive(t, m, tea.KeyMsg{Type: tea.KeyRight})
	}
	drive(t, m, enter)
	drive(t, m, tea.KeyMsg{Type: tea.KeyBackspace}, tea.KeyMsg{Type: tea.KeyBackspace}, tea.KeyMsg{Type: tea.KeyBackspace}, tea.KeyMsg{Type: tea.KeyBackspace})
	drive(t, m, keys("7070")...)
	drive(t, m, enter)
	drive(t, m, key1("n")) // no tracker; the answer moves on by itself
	drive(t, m, keys("12")...)
	drive(t, m, enter)
	drive(t, m, keys("5MiB")...)
	drive(t, m, enter)
	if v := m.View(); !strings.Contains(v, "Check the whole source first?") {
		t.Fatalf("no question about checking the source:\n%s", v)
	}
	drive(t, m, key1("n")) // serve without hashing it all first
	got := seeded.got
	if got == nil {
		t.Fatalf("the seeder was not started:\n%s", m.View())
	}
	host := ""
	if len(s.hosts) > 0 {
		host = s.hosts[len(s.hosts)-1].ip
	}
	if got.TrackerListen != net.JoinHostPort(host, "7070") || !got.NoTracker || got.MaxUploadRate != 5<<20 {
		t.Errorf("seed options: listen %q no-tracker %v rate %d", got.TrackerListen, got.NoTracker, got.MaxUploadRate)
	}
	if m.serve.Expect != "12" {
		t.Errorf("expected clients not kept: %q", m.serve.Expect)
	}
	if v := m.View(); !strings.Contains(v, "A port is already in use") {
		t.Errorf("a busy port is not named:\n%s", v)
	}
	drive(t, m, esc)
	if _, ok := m.Current().(*ServeFlow); !ok {
		t.Fatalf("esc after the error: %T", m.Current())
	}
	for _, r := range []struct {
		in   string
		want int64
	}{{"", 0}, {"0", 0}, {"5MiB", 5 << 20}, {"800k", 800 << 10}, {"1G/s", 1 << 30}, {"1048576", 1 << 20}} {
		if n, err := parseRate(r.in); err != nil || n != r.want {
			t.Errorf("parseRate(%q) = %d, %v", r.in, n, err)
		}
	}
	if _, err := parseRate("fast"); err == nil {
		t.Error("parseRate accepted a word")
	}
}

func TestSeederDashboardCountsTheExpectedRoom(t *testing.T) {
	d := newDashboard(testCommon(80, 24, "linux"), engine.RoleSeed, "seed sda1", &fakeJob{})
	d.expect = 5
	d.howTo = clientInstructions("http://0.0.0.0:6969", "10.0.0.5", "sda1")
	d.Init()
	feed(t, d, snapMsg{d.id, seedSnap(30)})
	v := d.View()
	for _, want := range []string{"1 of 5 clients done", "10.0.0.5:6969"} {
		if !strings.Contains(v, want) {
			t.Errorf("seeder dashboard lacks %q:\n%s", want, v)
		}
	}
	if _, done, n := d.fleetFrac(); done != 1 || n != 5 {
		t.Errorf("fleet %d of %d", done, n)
	}
	cmd := strings.Join(d.howTo, "\n")
	if !strings.Contains(cmd, "ezio deploy http://10.0.0.5:6969/torrents/sda1.torrent DISK") {
		t.Errorf("client command: %s", cmd)
	}
}

// bigPieceSnaps is a deploy of 16 MiB pieces at a steady 10 MB/s with a
// little noise in the rate: bytes arrive every sample, pieces complete
// every 1.7 s.
func bigPieceSnaps(n int) []engine.Snapshot {
	const piece = 16 << 20
	total := int64(40 * piece)
	var out []engine.Snapshot
	for i := 0; i < n; i++ {
		el := time.Duration(i) * 250 * time.Millisecond
		got := int64(10e6 * el.Seconds())
		done := got / piece * piece
		rate := 10e6 * (1 + 0.03*float64(i%3-1))
		out = append(out, engine.Snapshot{
			Time: t0.Add(el), Role: engine.RoleDeploy, Phase: engine.PhaseDownloading,
			BytesTotal: total, BytesDone: done, BytesDownloaded: got, PiecesTotal: 40, PiecesDone: int(done / piece),
			DownloadRate: rate, Elapsed: el, ETA: -1,
		})
	}
	return out
}

func TestProgressMovesWithBytesAndETANeverRises(t *testing.T) {
	d, _ := newDeployDash(testCommon(80, 24, "xterm"))
	var lastGot int64 = -1
	var lastETA time.Duration = -1
	moved := 0
	for i, s := range bigPieceSnaps(80) {
		feed(t, d, snapMsg{d.id, s})
		if d.got < lastGot {
			t.Fatalf("progress went back at %d: %d < %d", i, d.got, lastGot)
		}
		if d.got > lastGot {
			moved++
		}
		if d.got > s.BytesTotal {
			t.Fatalf("progress above the total")
		}
		if i > 0 && lastETA > 0 && d.eta > lastETA {
			t.Fatalf("ETA rose at a steady rate at sample %d: %s -> %s", i, lastETA, d.eta)
		}
		lastGot, lastETA = d.got, d.eta
	}
	// 80 samples, a piece every ~7: the bar must move on nearly every one.
	if moved < 70 {
		t.Errorf("the bar moved on %d of 80 samples", moved)
	}
	if !strings.Contains(d.View(), format3(float64(d.got)/float64(40*16<<20))) {
		t.Errorf("percentage on screen does not follow the bytes:\n%s", d.View())
	}
	// A real slowdown (rate halves) does make the ETA grow.
	s := bigPieceSnaps(81)[80]
	s.DownloadRate = 4e6
	before := d.eta
	feed(t, d, snapMsg{d.id, s})
	if d.eta <= before {
		t.Errorf("ETA did not grow when the rate fell: %s -> %s", before, d.eta)
	}
}

func format3(f float64) string { return fmt.Sprintf("%.1f%%", f*100) }

func TestResumedDeployCountsFromWhatWasThere(t *testing.T) {
	d, _ := newDeployDash(testCommon(80, 24, "xterm"))
	s := engine.Snapshot{Time: t0, Role: engine.RoleDeploy, BytesTotal: 100 << 20, BytesDone: 60 << 20}
	feed(t, d, snapMsg{d.id, s})
	s.Time, s.BytesDownloaded = t0.Add(time.Second), 10<<20
	feed(t, d, snapMsg{d.id, s})
	if d.got != 70<<20 {
		t.Errorf("resumed progress %d MiB, want 70", d.got>>20)
	}
}

func TestPausedShowsZeroRates(t *testing.T) {
	// Pausing with p shows 0 at once, before the next snapshot.
	d, j := newDeployDash(testCommon(80, 24, "xterm"))
	feed(t, d, snapMsg{d.id, deploySnap(5)}, key1("p"))
	if v := d.View(); !j.paused || !strings.Contains(v, "down 0 B/s") || strings.Contains(v, "30.0 MB/s") {
		t.Errorf("just paused:\n%s", v)
	}
	d, _ = newDeployDash(testCommon(80, 24, "xterm"))
	s := deploySnap(5)
	s.Paused = true
	feed(t, d, snapMsg{d.id, s})
	v := d.View()
	if !strings.Contains(v, "down 0 B/s") || !strings.Contains(v, "up 0 B/s") || !strings.Contains(v, "ETA paused") {
		t.Errorf("paused dashboard:\n%s", v)
	}
	for _, p := range d.snap.Peers {
		if p.DownloadRate != 0 || p.UploadRate != 0 {
			t.Errorf("peer %s moves while paused", p.Addr)
		}
	}
}

func TestWaitingForLostSeeder(t *testing.T) {
	d, _ := newDeployDash(testCommon(80, 24, "linux"))
	s := deploySnap(5)
	s.Phase = phaseWaiting
	feed(t, d, snapMsg{d.id, s})
	if v := d.View(); !strings.Contains(v, "waiting for the server") {
		t.Errorf("a lost seeder is not shown:\n%s", v)
	}
	// With the engine's lost_seconds, the time since is shown.
	s.LostSeconds = 12
	feed(t, d, snapMsg{d.id, s})
	if v := d.View(); !strings.Contains(v, "lost 12 s ago") {
		t.Errorf("how long ago is not shown:\n%s", v)
	}
	if lostFor(150*time.Second) != "2 min" {
		t.Errorf("lostFor: %s", lostFor(150*time.Second))
	}
}

func TestLogFullScreenScrollsWrapsAndSaves(t *testing.T) {
	c := testCommon(80, 24, "linux")
	d, _ := newDeployDash(c)
	feed(t, d, snapMsg{d.id, deploySnap(1)})
	for i := 0; i < 300; i++ {
		feed(t, d, eventMsg{d.id, engine.Event{Time: t0.Add(time.Duration(i) * time.Second), Kind: engine.EventLog, Level: "info",
			Message: fmt.Sprintf("line %03d %s", i, strings.Repeat("x", 90))}})
	}
	feed(t, d, key1("l"))
	v := d.View()
	checkSize(t, v, 80, 24)
	if !d.logFull || !strings.Contains(v, "line 299") || strings.Contains(v, "Peers") {
		t.Fatalf("full-screen log:\n%s", v)
	}
	feed(t, d, tea.KeyMsg{Type: tea.KeyHome})
	if v := d.View(); !strings.Contains(v, "line 000") {
		t.Errorf("home does not reach the first line (the pane keeps only %d):\n%s", maxLogLines, v)
	}
	feed(t, d, key1("z"))
	if v := d.View(); !strings.Contains(v, "wrapped") || !strings.Contains(v, "xxxxxxxx") {
		t.Errorf("wrap:\n%s", v)
	}
	path := filepath.Join(t.TempDir(), "stick", "room.log")
	os.MkdirAll(filepath.Dir(path), 0o755)
	feed(t, d, key1("w"))
	if !d.saving || !d.typing() {
		t.Fatal("w did not ask where to save")
	}
	d.savePath.SetValue(path)
	cmd := feed(t, d, enter)
	for _, msg := range run(cmd) {
		feed(t, d, msg)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n != 300 || !strings.Contains(string(b), "line 000") {
		t.Errorf("saved %d lines", n)
	}
	if !strings.Contains(d.View(), "300 lines saved to") {
		t.Errorf("no word of the save:\n%s", d.View())
	}
	feed(t, d, esc)
	if d.logFull {
		t.Error("esc did not leave the full-screen log")
	}
}

// TestGaveUsAddsUp: a peer that reconnects keeps what its first
// connection gave, and what no sample saw gets its own row.
func TestGaveUsAddsUp(t *testing.T) {
	d, _ := newDeployDash(testCommon(80, 24, "xterm"))
	s := engine.Snapshot{Time: t0, Role: engine.RoleDeploy, BytesTotal: 100 << 20,
		Peers: []engine.PeerSnapshot{{Addr: "10.0.0.1:6881", BytesDownloaded: 30 << 20}, {Addr: "10.0.0.2:6881", BytesDownloaded: 5 << 20}}}
	s.BytesDownloaded = 35 << 20
	feed(t, d, snapMsg{d.id, s})
	// 10.0.0.1 reconnects: its new connection starts again from zero.
	s.Time, s.BytesDownloaded = t0.Add(time.Second), 50<<20
	s.Peers = []engine.PeerSnapshot{{Addr: "10.0.0.1:6881", BytesDownloaded: 10 << 20}, {Addr: "10.0.0.2:6881", BytesDownloaded: 5 << 20}}
	feed(t, d, snapMsg{d.id, s})
	// The job ends with 60 MiB received: 5 MiB were never sampled per peer.
	s.Time, s.BytesDownloaded = t0.Add(2*time.Second), 60<<20
	r := d.resultAfter(s)
	var sum int64
	for _, p := range r.Peers {
		sum += p.down
	}
	if sum != r.Moved {
		t.Errorf("GAVE US adds up to %d MiB, received %d MiB: %+v", sum>>20, r.Moved>>20, r.Peers)
	}
	if r.Peers[0].addr != "10.0.0.1:6881" || r.Peers[0].down != 40<<20 {
		t.Errorf("reconnected peer: %+v", r.Peers[0])
	}
}

// resultAfter ends the dashboard with a last snapshot.
func (d *Dashboard) resultAfter(s engine.Snapshot) *Result {
	s.Peers = nil
	d.apply(s)
	return d.result()
}

func TestStopQuestionOnASeederSpeaksOfServing(t *testing.T) {
	m := newApp(t, &fakeWorld{})
	d := newDashboard(m.c, engine.RoleSeed, "seed sda1", &fakeJob{})
	m.Start(d)
	drive(t, m, ctrlC)
	v := m.View()
	if !strings.Contains(v, "Stop serving?") || strings.Contains(v, "written") {
		t.Errorf("stop question on a seeder:\n%s", v)
	}
}

// TestSettingsPrecedence: a flag given on the command line beats the
// settings file, which beats the defaults.
func TestSettingsPrecedence(t *testing.T) {
	cfg := &Config{AIOThreads: 8, HashingThreads: 3, CacheSizeMiB: 512, ListenPort: 7000}
	defaults := engine.Tuning{AIOThreads: 4, HashingThreads: 2, CacheSizeMiB: 256}
	// No flag: the file wins over the defaults.
	got := cfg.Over(defaults, nil)
	if got.AIOThreads != 8 || got.HashingThreads != 3 || got.CacheSizeMiB != 512 || got.ListenAddr != "0.0.0.0:7000" {
		t.Errorf("file over defaults: %+v", got)
	}
	// --aio-threads 16 and --listen given: they win.
	flags := engine.Tuning{AIOThreads: 16, HashingThreads: 2, CacheSizeMiB: 256, ListenAddr: "127.0.0.1:9000"}
	given := map[string]bool{"aio-threads": true, "listen": true}
	got = cfg.Over(flags, func(f string) bool { return given[f] })
	if got.AIOThreads != 16 || got.ListenAddr != "127.0.0.1:9000" || got.HashingThreads != 3 || got.CacheSizeMiB != 512 {
		t.Errorf("flags over file: %+v", got)
	}
	// An empty file leaves everything as given.
	if got := (&Config{}).Over(flags, nil); got != flags {
		t.Errorf("empty file changed %+v", got)
	}
}

// TestDeployStartErrorIsNotARefusal: a deploy that cannot start for a
// reason other than the disk says so, with no disk refused and no flag.
func TestDeployStartErrorIsNotARefusal(t *testing.T) {
	for _, c := range []struct {
		err   error
		title string
	}{
		{engine.ErrNoPeerSource, "no way to find the server"},
		{&engine.ListenError{Addr: "0.0.0.0:0",
			Err: &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EADDRINUSE)}}, "A port is already in use"},
	} {
		w := &fakeWorld{deployErr: c.err}
		m := newApp(t, w)
		drive(t, m, key1("d"))
		drive(t, m, keys("10.0.0.1")...)
		drive(t, m, enter)
		drive(t, m, enter)
		drive(t, m, enter)
		drive(t, m, keys("sdb")...)
		drive(t, m, enter)
		v := m.View()
		if !strings.Contains(v, c.title) || strings.Contains(v, "Refused") || strings.Contains(v, "Choose another target") || strings.Contains(v, "--") {
			t.Errorf("%v:\n%s", c.err, v)
		}
	}
}

// TestFailedResultHasNoFlags: the result of a failed job words the error
// for the wizard.
func TestFailedResultHasNoFlags(t *testing.T) {
	d, _ := newDeployDash(testCommon(80, 24, "xterm"))
	feed(t, d, snapMsg{d.id, deploySnap(3)})
	err := fmt.Errorf("tracker cannot listen on :6969: %w (use --tracker-listen with another port, or --no-tracker)",
		&net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EADDRINUSE)})
	r := run(feed(t, d, jobDoneMsg{id: d.id, err: err}))[0].(jobFinishedMsg).result
	v := r.View()
	if !strings.Contains(v, "A port is already in use") || strings.Contains(v, "--") {
		t.Errorf("failed result:\n%s", v)
	}
}
