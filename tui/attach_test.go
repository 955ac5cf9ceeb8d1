package tui

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"ezio/disks/disktest"
	"ezio/engine"
	"ezio/engine/daemon"
	"ezio/engine/daemon/client"
	"ezio/engine/ezioapi"
	"ezio/engine/torrentfile"
)

// fakeDaemon answers like a daemon with fixed torrents and records the
// pause calls.
type fakeDaemon struct {
	mu       sync.Mutex
	torrents []client.Torrent
	err      error
	paused   map[string]bool
	asked    [][]string
	closed   bool
}

func (f *fakeDaemon) Torrents(ctx context.Context, hashes ...string) ([]client.Torrent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, hashes)
	if f.err != nil {
		return nil, f.err
	}
	var out []client.Torrent
	for _, t := range f.torrents {
		if len(hashes) == 0 || hashes[0] == t.Hash {
			t.Snapshot.Paused = f.paused[t.Hash]
			out = append(out, t)
		}
	}
	return out, nil
}

func (f *fakeDaemon) SetPaused(ctx context.Context, hash string, p bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.paused == nil {
		f.paused = map[string]bool{}
	}
	f.paused[hash] = p
	return nil
}

func (f *fakeDaemon) Close() error { f.closed = true; return nil }

func (f *fakeDaemon) pausedNow(hash string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.paused[hash]
}

// daemonTorrent is a torrent as a daemon would report it at t0+sec.
func daemonTorrent(hash, name string, state, done, total int64, pieces int64, sec int) client.Torrent {
	st := &ezioapi.Torrent{Hash: hash, Name: name, State: state, TotalDone: done, Total: total, NumPieces: pieces,
		DownloadRate: 5 << 20, UploadRate: 1 << 20, NumPeers: 4, ActiveTime: 75, TotalPayloadDownload: done, TotalPayloadUpload: 3 << 20}
	return client.Torrent{Hash: hash, Name: name, State: client.StateName(state), Snapshot: client.ToSnapshot(st, t0.Add(time.Duration(sec)*time.Second)), Status: st}
}

func attachApp(t *testing.T, fd *fakeDaemon, dialed *[]string) *Model {
	t.Helper()
	c := testCommon(80, 25, "linux")
	deps := fakeDeps(t, &fakeWorld{})
	deps.DaemonAddr = "127.0.0.1:50051"
	deps.AttachDaemon = func(addr string) (Daemon, error) {
		*dialed = append(*dialed, addr)
		return fd, nil
	}
	return New(c, deps, &Config{})
}

// The whole way through, Update as a function: the menu entry, the
// address with the daemon's default, the list, the dashboard on the
// chosen torrent, pause through the daemon, Esc back to the list.
func TestAttachFlowUpdate(t *testing.T) {
	fd := &fakeDaemon{torrents: []client.Torrent{
		daemonTorrent("aa11", "sda1", 5, 64<<20, 64<<20, 4, 0),
		daemonTorrent("bb22", "sda2", 3, 32<<20, 128<<20, 2, 0),
	}}
	var dialed []string
	m := attachApp(t, fd, &dialed)
	v := m.View()
	var line string
	for _, l := range strings.Split(v, "\n") {
		if strings.Contains(l, "Attach") {
			line = l
		}
	}
	if !strings.Contains(line, "a  Attach to a running ezio daemon  watch its torrents live") {
		t.Fatalf("menu entry %q:\n%s", line, v)
	}
	drive(t, m, key1("a"))
	f, ok := m.Current().(*AttachFlow)
	if !ok {
		t.Fatalf("a opened %T", m.Current())
	}
	if v := m.View(); !strings.Contains(v, "Address of the daemon") || !strings.Contains(v, "127.0.0.1:50051") {
		t.Fatalf("the address form lacks the default address:\n%s", v)
	}
	asciiScreen(t, m.View())
	drive(t, m, enter)
	if len(dialed) != 1 || dialed[0] != "127.0.0.1:50051" || !f.listing {
		t.Fatalf("dialed %v, listing %v:\n%s", dialed, f.listing, m.View())
	}
	v = m.View()
	for _, want := range []string{"Which torrent?", "2 in the daemon at 127.0.0.1:50051", "sda1", "100.0%", "seeding", "sda2", "25.0%", "downloading"} {
		if !strings.Contains(v, want) {
			t.Errorf("the list lacks %q:\n%s", want, v)
		}
	}
	asciiScreen(t, v)
	drive(t, m, down, enter)
	a, ok := m.Current().(*AttachDashboard)
	if !ok {
		t.Fatalf("enter on sda2 opened %T:\n%s", m.Current(), m.View())
	}
	if a.job.hash != "bb22" {
		t.Fatalf("attached to %s, want bb22", a.job.hash)
	}
	v = m.View()
	checkSize(t, v, 80, 25)
	for _, want := range []string{"sda2 on the daemon at 127.0.0.1:50051", "25.0%", "32.0 MiB / 128 MiB", "pieces 2/8", "peers 4", "esc detach", "p pause"} {
		if !strings.Contains(v, want) {
			t.Errorf("the dashboard lacks %q:\n%s", want, v)
		}
	}
	if strings.Contains(v, "stop") || strings.Contains(v, "no peers connected") {
		t.Errorf("the dashboard offers a stop the daemon cannot do, or denies its peers:\n%s", v)
	}
	// p pauses the torrent in the daemon.
	drive(t, m, key1("p"))
	deadline := time.Now().Add(5 * time.Second)
	for !fd.pausedNow("bb22") {
		if time.Now().After(deadline) {
			t.Fatal("p did not pause the daemon's torrent")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(m.View(), "paused") {
		t.Errorf("the dashboard does not say paused:\n%s", m.View())
	}
	// q is free on the dashboard and quits without asking: nothing stops.
	if quit := drive(t, m, key1("q")); !quit {
		t.Error("q on the attached dashboard did not quit")
	}
	// Esc detaches: the poll ends, and the list is shown again.
	drive(t, m, esc)
	select {
	case <-a.job.done:
	case <-time.After(5 * time.Second):
		t.Fatal("esc did not end the poll")
	}
	drive(t, m, jobDoneMsg{id: a.id, err: a.job.Err()})
	if m.Current() != Screen(f) || !f.listing {
		t.Fatalf("after esc: %T, listing %v", m.Current(), f.listing)
	}
	if fd.pausedNow("bb22") != true {
		t.Error("detaching changed the torrent")
	}
	// Esc again: the address; again: the menu, and the connection closes.
	drive(t, m, esc)
	if !strings.Contains(m.View(), "Address of the daemon") {
		t.Fatalf("esc from the list:\n%s", m.View())
	}
	drive(t, m, esc)
	if m.Current() != Screen(m.menu) || !fd.closed {
		t.Fatalf("esc from the address went to %T; closed %v", m.Current(), fd.closed)
	}
}

// No daemon: an error named for it, and Esc brings the address back.
func TestAttachUnreachableKeepsAddress(t *testing.T) {
	fd := &fakeDaemon{err: &engine.UnreachableError{Addr: "10.0.0.9:50051", Err: fmt.Errorf("connection refused")}}
	var dialed []string
	m := attachApp(t, fd, &dialed)
	m.attach.Addr = "10.0.0.9:50051"
	drive(t, m, key1("a"))
	drive(t, m, enter)
	v := m.View()
	if !strings.Contains(v, "No daemon answers at 10.0.0.9:50051") || !strings.Contains(v, "connection refused") || regexp.MustCompile(`--[a-z]`).MatchString(v) {
		t.Fatalf("error screen:\n%s", v)
	}
	drive(t, m, esc)
	if v := m.View(); !strings.Contains(v, "Address of the daemon") || !strings.Contains(v, "10.0.0.9:50051") {
		t.Fatalf("after esc the address is not kept:\n%s", v)
	}
	// The form takes keys again.
	drive(t, m, keys("7")...)
	if !strings.Contains(m.View(), "10.0.0.9:500517") {
		t.Errorf("the form ignores keys after the error:\n%s", m.View())
	}
}

// The torrent leaving the daemon ends the dashboard with an error, not
// a result that pretends the job ended here.
func TestAttachTorrentGone(t *testing.T) {
	old := attachPoll
	attachPoll = 10 * time.Millisecond
	t.Cleanup(func() { attachPoll = old })
	fd := &fakeDaemon{torrents: []client.Torrent{daemonTorrent("aa11", "sda1", 5, 64<<20, 64<<20, 4, 0)}}
	c := testCommon(80, 25, "linux")
	flow := NewAttachFlow(c, &Deps{Ctx: bg}, &AttachValues{Addr: "x:1"})
	a := newAttachDashboard(c, bg, fd, "x:1", fd.torrents[0], flow)
	fd.mu.Lock()
	fd.torrents = nil
	fd.mu.Unlock()
	select {
	case <-a.job.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the poll did not notice the torrent had gone")
	}
	_, cmd := a.Update(jobDoneMsg{id: a.id, err: a.job.Err()})
	msgs := run(cmd)
	if len(msgs) != 1 {
		t.Fatalf("messages %v", msgs)
	}
	e, ok := msgs[0].(errorMsg)
	if !ok || !strings.Contains(e.what, "no longer has") || e.back != Screen(flow) {
		t.Fatalf("got %#v", msgs[0])
	}
}

func TestAttachDashboardGolden(t *testing.T) {
	fd := &fakeDaemon{}
	c := testCommon(80, 25, "linux")
	tor := daemonTorrent("bb22", "sda2", 3, 6*16<<20, 256<<20, 6, 0)
	flow := NewAttachFlow(c, &Deps{Ctx: bg}, &AttachValues{Addr: "127.0.0.1:50051"})
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	a := newAttachDashboard(c, ctx, fd, "127.0.0.1:50051", tor, flow)
	cancel()
	for sec := 0; sec < 4; sec++ {
		a.Update(snapMsg{id: a.id, s: daemonTorrent("bb22", "sda2", 3, int64(6+sec)*16<<20, 256<<20, int64(6+sec), sec).Snapshot})
	}
	v := a.View()
	checkSize(t, v, 80, 25)
	asciiScreen(t, v)
	golden(t, "attach-dashboard-80x25-linux", v)
}

// Against a real daemon on loopback with a real seeding job: the list
// shows it, the dashboard shows its name and progress from the daemon's
// own status, and p pauses it in the daemon.
func TestAttachRealDaemon(t *testing.T) {
	old := attachPoll
	attachPoll = 100 * time.Millisecond
	t.Cleanup(func() { attachPoll = old })

	// An image of two extents and its torrent.
	parent := t.TempDir()
	dir := filepath.Join(parent, "sdz1")
	os.Mkdir(dir, 0o755)
	for i, off := range []int64{4096*3 + 517, 3 << 20} {
		b := make([]byte, 1<<20+i*4099)
		for k := range b {
			b[k] = byte(k*7 + i)
		}
		if err := os.WriteFile(filepath.Join(dir, torrentfile.FormatOffset(off)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mi, err := engine.CreateTorrent(bg, dir, engine.CreateOptions{PieceLength: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	tf := filepath.Join(t.TempDir(), "sdz1.torrent")
	if err := engine.WriteTorrent(mi, tf); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(tf)

	var tu engine.Tuning
	tu.ListenAddr = fmt.Sprintf("127.0.0.1:%d", disktest.FreePort(t))
	d, err := daemon.New(daemon.Options{FileMode: true, Tuning: tu})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	served := make(chan error, 1)
	ctx, stop := context.WithCancel(bg)
	go func() { served <- d.Serve(ctx, ln) }()
	t.Cleanup(func() {
		stop()
		select {
		case <-served:
		case <-time.After(30 * time.Second):
			t.Error("the daemon did not stop")
		}
	})
	conn, err := client.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	api, cc, err := daemon.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if _, err := api.AddTorrent(bg, &ezioapi.AddRequest{Torrent: raw, SavePath: parent, SeedingMode: true}); err != nil {
		t.Fatal(err)
	}

	c := testCommon(80, 25, "linux")
	deps := fakeDeps(t, &fakeWorld{})
	deps.Ctx = bg
	deps.DaemonAddr = addr
	deps.AttachDaemon = func(a string) (Daemon, error) { return client.Dial(a) }
	m := New(c, deps, &Config{})
	drive(t, m, key1("a"))
	f := m.Current().(*AttachFlow)
	// The daemon may still be checking the data: ask until it serves.
	// (The list is asked for here, not by a key: drive drops a command
	// slower than 50 ms, and the first gRPC call may be.)
	deadline := time.Now().Add(20 * time.Second)
	for {
		m.Update(f.list()())
		if strings.Contains(m.View(), "seeding") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the list never showed the seeding torrent:\n%s", m.View())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(m.View(), "sdz1") || len(f.torrents) != 1 {
		t.Fatalf("the list:\n%s", m.View())
	}
	drive(t, m, enter)
	a, ok := m.Current().(*AttachDashboard)
	if !ok {
		t.Fatalf("enter opened %T", m.Current())
	}
	// Feed the dashboard what the poll brings, as the program would.
	next := func() {
		t.Helper()
		select {
		case s := <-a.snaps.C():
			m.Update(snapMsg{id: a.id, s: s})
		case <-time.After(5 * time.Second):
			t.Fatalf("no snapshot from the daemon in 5 s:\n%s", m.View())
		}
	}
	next()
	next()
	v := m.View()
	for _, want := range []string{"sdz1 on the daemon at " + addr, "100.0%", "seeding", "pieces 9/9"} {
		if !strings.Contains(v, want) {
			t.Errorf("the dashboard lacks %q:\n%s", want, v)
		}
	}
	// p: the daemon reports the torrent paused.
	drive(t, m, key1("p"))
	deadline = time.Now().Add(10 * time.Second)
	for {
		st, err := api.GetTorrentStatus(bg, &ezioapi.UpdateRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if st.GetTorrents()[a.job.hash].GetIsPaused() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("p on the attached dashboard did not pause the daemon's torrent")
		}
		time.Sleep(50 * time.Millisecond)
	}
	deadline = time.Now().Add(10 * time.Second)
	for !strings.Contains(m.View(), "paused") {
		if time.Now().After(deadline) {
			t.Fatalf("the dashboard does not show the pause:\n%s", m.View())
		}
		next()
	}
	// Detach: the daemon still has its torrent, and still serves it.
	drive(t, m, esc)
	<-a.job.done
	st, err := api.GetTorrentStatus(bg, &ezioapi.UpdateRequest{})
	if err != nil || len(st.GetTorrents()) != 1 {
		t.Fatalf("after detaching the daemon has %v (%v)", st.GetTorrents(), err)
	}
}

// A daemon that stops answering: the dashboard says it waits, with
// nothing moving, then gives up with an error named for it.
func TestAttachDaemonLost(t *testing.T) {
	oldPoll, oldLost := attachPoll, attachLostMax
	attachPoll, attachLostMax = 10*time.Millisecond, 300*time.Millisecond
	t.Cleanup(func() { attachPoll, attachLostMax = oldPoll, oldLost })
	fd := &fakeDaemon{torrents: []client.Torrent{daemonTorrent("bb22", "sda2", 3, 32<<20, 128<<20, 2, 0)}}
	c := testCommon(80, 25, "linux")
	flow := NewAttachFlow(c, &Deps{Ctx: bg}, &AttachValues{Addr: "x:1"})
	a := newAttachDashboard(c, bg, fd, "x:1", fd.torrents[0], flow)
	fd.mu.Lock()
	fd.err = &engine.UnreachableError{Addr: "x:1", Err: fmt.Errorf("connection refused")}
	fd.mu.Unlock()
	deadline := time.After(5 * time.Second)
	for waiting := false; !waiting; {
		select {
		case s := <-a.snaps.C():
			a.Update(snapMsg{id: a.id, s: s})
			waiting = s.Phase == engine.PhaseWaiting
		case <-deadline:
			t.Fatalf("no waiting snapshot:\n%s", a.View())
		}
	}
	v := a.View()
	if !strings.Contains(v, "waiting for the server, lost") || !strings.Contains(v, "down 0 B/s") {
		t.Errorf("the dashboard does not show the lost daemon:\n%s", v)
	}
	select {
	case <-a.job.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the poll never gave up on a silent daemon")
	}
	_, cmd := a.Update(jobDoneMsg{id: a.id, err: a.job.Err()})
	msgs := run(cmd)
	if e, ok := msgs[0].(errorMsg); !ok || e.title != "The daemon stopped answering" || e.back != Screen(flow) {
		t.Fatalf("got %#v", msgs[0])
	}
}
