package tui

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"ezio/disks/disktest"
	"ezio/engine"
	"ezio/engine/discover"
	"ezio/engine/torrentfile"
)

// serveFormOnTorrent opens Serve on a test torrent written in a temporary
// directory, which is also the source, and returns the app at the form's
// second page; seeded.got is what Seed is given (it fails with seedErr).
func serveFormOnTorrent(t *testing.T, seedErr error) (*Model, *seedRecorder) {
	t.Helper()
	dir := t.TempDir()
	tor := filepath.Join(dir, "sda1.torrent")
	if err := engine.WriteTorrent(testTorrent(t), tor); err != nil {
		t.Fatal(err)
	}
	rec := &seedRecorder{}
	m := newApp(t, &fakeWorld{})
	m.deps.Seed = func(ctx context.Context, o engine.SeedOptions) (*engine.Job, error) {
		rec.got = &o
		return nil, seedErr
	}
	drive(t, m, key1("s"))
	drive(t, m, keys(tor)...)
	drive(t, m, enter)
	drive(t, m, keys(dir)...)
	drive(t, m, enter)
	return m, rec
}

// seedRecorder keeps the options a fake Seed was last given.
type seedRecorder struct{ got *engine.SeedOptions }

// The form asks whether to announce and whether to stop when the room is
// done (only with a tracker, and the latter only with a room size), and
// shows the command clients run once the torrent is known.
func TestServeFormAnnounceAndExitWhenDone(t *testing.T) {
	m, seeded := serveFormOnTorrent(t, errors.New("test: not serving"))
	v := m.View()
	if !strings.Contains(v, "ezio deploy auto:sda1 /dev/sdX --yes") || !strings.Contains(v, "mDNS "+instanceName()) {
		t.Errorf("the form does not show the client command and the mDNS name:\n%s", v)
	}
	// Every interface, port 6969, tracker yes, 2 clients, no limit.
	drive(t, m, enter)
	drive(t, m, enter)
	drive(t, m, enter) // the tracker: yes (the default)
	drive(t, m, keys("2")...)
	drive(t, m, enter)
	drive(t, m, enter)
	drive(t, m, enter) // check the whole source first: no (the default)
	if v := m.View(); !strings.Contains(v, "Announce this server on the LAN?") {
		t.Fatalf("no announce question:\n%s", v)
	}
	drive(t, m, key1("n")) // not announced
	if v := m.View(); !strings.Contains(v, "Stop serving when the room is done?") {
		t.Fatalf("no exit-when-done question:\n%s", v)
	}
	drive(t, m, key1("y"))
	got := seeded.got
	if got == nil {
		t.Fatalf("the seeder was not started:\n%s", m.View())
	}
	if !m.serve.NoAnnounce || !m.serve.ExitWhenDone || got.Expect != 2 || got.NoTracker {
		t.Errorf("values %+v, seed options expect %d no-tracker %v", m.serve, got.Expect, got.NoTracker)
	}
	// Back from the error: the form is rebuilt with the answers kept.
	drive(t, m, esc)
	s := m.Current().(*ServeFlow)
	if s.announce || !s.v.ExitWhenDone {
		t.Errorf("answers not kept: announce %v exit %v", s.announce, s.v.ExitWhenDone)
	}
	if strings.Contains(m.View(), "auto:sda1") {
		t.Errorf("the auto command is shown although the server is not announced:\n%s", m.View())
	}
}

// A real seeder on loopback: the wizard announces it with the torrent's
// name and shows the exact client commands and the service name; the
// announce ends with the job.
func TestServeAnnouncesAndSaysHowToDeploy(t *testing.T) {
	img := filepath.Join(t.TempDir(), "sdq1")
	os.Mkdir(img, 0o755)
	os.WriteFile(filepath.Join(img, torrentfile.FormatOffset(1<<20)), make([]byte, 300<<10), 0o644)
	mi, err := engine.CreateTorrent(bg, img, engine.CreateOptions{PieceLength: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	tor := filepath.Join(t.TempDir(), "sdq1.torrent")
	if err := engine.WriteTorrent(mi, tor); err != nil {
		t.Fatal(err)
	}
	var announced []discover.Info
	stopped := make(chan struct{})
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	deps := &Deps{Ctx: ctx, Seed: engine.Seed, Announce: func(ctx context.Context, in discover.Info) (func(), error) {
		announced = append(announced, in)
		return func() { close(stopped) }, nil
	}}
	deps.Tuning.ListenAddr = fmt.Sprintf("127.0.0.1:%d", disktest.FreePort(t))
	port := fmt.Sprint(disktest.FreePort(t))
	c := testCommon(80, 24, "linux")
	s := NewServeFlow(c, deps, &ServeValues{Torrent: tor, Source: img, Host: "127.0.0.1", Port: port, Expect: "1", ExitWhenDone: true})
	msg, ok := s.start()().(serveStartedMsg)
	if !ok || msg.err != nil {
		t.Fatalf("start: %+v", msg)
	}
	d := msg.dash.(*Dashboard)
	want := []string{
		"on each client: ezio deploy auto:sdq1 /dev/sdX --yes",
		"or: ezio deploy http://127.0.0.1:" + port + "/torrents/sdq1.torrent /dev/sdX --yes",
		"announced on the LAN as " + instanceName() + "._ezio._tcp.local.",
	}
	how := strings.Join(d.howTo, "\n")
	for _, w := range want {
		if !strings.Contains(how, w) {
			t.Errorf("what to do on the clients lacks %q:\n%s", w, how)
		}
	}
	if len(announced) != 1 || announced[0].Name != instanceName() || strings.Join(announced[0].Images, ",") != "sdq1" ||
		announced[0].BaseURL != "http://127.0.0.1:"+port || announced[0].Listen != "127.0.0.1:"+port {
		t.Fatalf("announced %+v", announced)
	}
	d.Init()
	var v string
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(v, "auto:sdq1") {
		if time.Now().After(deadline) {
			t.Fatalf("the dashboard does not show the client command:\n%s", v)
		}
		feedOnce(d)
		v = d.View()
	}
	// Stop the job: the announce stops with it.
	d.Stop()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the announce outlived the seeder")
	}
}

// feedOnce hands the dashboard the next snapshot, if one comes soon.
func feedOnce(d *Dashboard) {
	select {
	case s := <-d.snaps.C():
		d.Update(snapMsg{id: d.id, s: s})
	case <-time.After(time.Second):
	}
}

var _ tea.Msg = serveStartedMsg{}
