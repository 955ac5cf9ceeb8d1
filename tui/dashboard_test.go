package tui

import (
	"fmt"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"ezio/engine"
	"ezio/engine/server"
)

type fakeJob struct {
	paused  bool
	stopped bool
}

func (f *fakeJob) Stop()            { f.stopped = true }
func (f *fakeJob) SetPaused(p bool) { f.paused = p }
func (f *fakeJob) Paused() bool     { return f.paused }

// deploySnap is a fixed mid-transfer deploy: 300 pieces of 1 MiB, some of
// each state, three peers.
func deploySnap(sec int) engine.Snapshot {
	pieces := make([]engine.PieceState, 300)
	for i := range pieces {
		switch {
		case i < 150:
			pieces[i] = engine.PieceVerified
		case i < 156:
			pieces[i] = engine.PieceDownloading
		case i == 160:
			pieces[i] = engine.PieceFailed
		case i == 157:
			pieces[i] = engine.PieceHashing
		}
	}
	return engine.Snapshot{
		Time: t0.Add(time.Duration(sec) * time.Second), Role: engine.RoleDeploy, Name: "sda1", InfoHash: "0123456789abcdef0123456789abcdef01234567",
		Phase: engine.PhaseDownloading, BytesDone: 150 << 20, BytesTotal: 300 << 20, PiecesDone: 150, PiecesTotal: 300,
		HashFailures: 1, DownloadRate: 42.5e6, UploadRate: 11.2e6, BytesDownloaded: 151 << 20, BytesUploaded: 40 << 20,
		ETA: 4 * time.Second, Elapsed: time.Duration(sec) * time.Second, NumPeers: 3,
		Peers: []engine.PeerSnapshot{
			{Addr: "10.0.0.12:6881", Client: "ezio 0.1.0", DownloadRate: 5e6, UploadRate: 3e6, BytesDownloaded: 20 << 20, BytesUploaded: 10 << 20, Share: 0.4},
			{Addr: "10.0.0.1:6881", Client: "ezio 0.1.0", DownloadRate: 30e6, BytesDownloaded: 120 << 20, Share: 1, Seeder: true},
			{Addr: "10.0.0.13:6881", Client: "Transmission 4.0", DownloadRate: 7.5e6, UploadRate: 8.2e6, BytesDownloaded: 11 << 20, BytesUploaded: 30 << 20, Share: 0.55},
		},
		Pieces: pieces,
	}
}

func seedSnap(sec int) engine.Snapshot {
	pieces := make([]engine.PieceState, 300)
	for i := range pieces {
		pieces[i] = engine.PieceVerified
	}
	return engine.Snapshot{
		Time: t0.Add(time.Duration(sec) * time.Second), Role: engine.RoleSeed, Name: "sda1", Phase: engine.PhaseSeeding,
		BytesDone: 300 << 20, BytesTotal: 300 << 20, PiecesDone: 300, PiecesTotal: 300, UploadRate: 95e6,
		BytesUploaded: 700 << 20, Elapsed: time.Duration(sec) * time.Second, ETA: -1, NumPeers: 2,
		Peers: []engine.PeerSnapshot{
			{Addr: "127.0.0.1:40001", Client: "ezio 0.1.0", UploadRate: 60e6, BytesUploaded: 400 << 20, Share: 0.7},
			{Addr: "127.0.0.1:40002", Client: "ezio 0.1.0", UploadRate: 35e6, BytesUploaded: 300 << 20, Share: 0.3},
		},
		Fleet: []server.FleetMember{
			{Addr: "127.0.0.1:6001", Done: 1, Completed: true, Active: true, LastSeen: 1},
			{Addr: "127.0.0.1:6002", Done: 0.7, Active: true, LastSeen: 2},
			{Addr: "127.0.0.1:6003", Done: 0.3, Active: true, LastSeen: 0.5},
		},
		FleetDone: 1, Pieces: pieces,
	}
}

func feed(t *testing.T, d *Dashboard, msgs ...tea.Msg) tea.Cmd {
	t.Helper()
	var cmd tea.Cmd
	for _, m := range msgs {
		_, cmd = d.Update(m)
	}
	return cmd
}

func logEvents(d *Dashboard) []tea.Msg {
	return []tea.Msg{
		eventMsg{d.id, engine.Event{Time: t0.Add(time.Second), Kind: engine.EventLog, Level: "info", Message: "deploying target=/dev/sdb1 bytes=314572800"}},
		eventMsg{d.id, engine.Event{Time: t0.Add(2 * time.Second), Kind: engine.EventPeerJoined, Peer: "10.0.0.1:6881", Message: "ezio 0.1.0"}},
		eventMsg{d.id, engine.Event{Time: t0.Add(9 * time.Second), Kind: engine.EventLog, Level: "warn", Message: "piece failed its hash check; fetching it again piece=160"}},
	}
}

func newDeployDash(c *Common) (*Dashboard, *fakeJob) {
	j := &fakeJob{}
	d := newDashboard(c, engine.RoleDeploy, "deploy sda1 -> /dev/sdb1", j)
	return d, j
}

func TestDashboardUpdate(t *testing.T) {
	c := testCommon(80, 24, "xterm-256color")
	d, j := newDeployDash(c)
	// A snapshot re-issues the wait (nil here: no real job), and is shown.
	feed(t, d, snapMsg{d.id, deploySnap(10)})
	if !d.haveSnap || d.snap.PiecesDone != 150 {
		t.Fatal("snapshot not applied")
	}
	// Messages for another dashboard are ignored.
	feed(t, d, snapMsg{d.id + 1000, engine.Snapshot{PiecesDone: 1}})
	if d.snap.PiecesDone != 150 {
		t.Fatal("a stale dashboard's snapshot was applied")
	}
	// p pauses and resumes the job.
	feed(t, d, key1("p"))
	if !j.paused || !d.snap.Paused {
		t.Fatal("p did not pause")
	}
	if !strings.Contains(d.View(), "paused") {
		t.Error("paused state not on screen")
	}
	feed(t, d, key1("p"))
	if j.paused {
		t.Fatal("p did not resume")
	}
	// Tab walks the panes and wraps.
	seen := []pane{d.focus}
	for range 3 {
		feed(t, d, tab)
		seen = append(seen, d.focus)
	}
	if fmt.Sprint(seen) != fmt.Sprint([]pane{panePeers, panePieces, paneLog, panePeers}) {
		t.Errorf("tab order %v", seen)
	}
	feed(t, d, tea.KeyMsg{Type: tea.KeyShiftTab})
	if d.focus != paneLog {
		t.Errorf("shift+tab went to %v", d.focus)
	}
	// ? toggles the full help.
	feed(t, d, key1("?"))
	if !d.fullHelp || !strings.Contains(d.View(), "previous pane") {
		t.Error("? did not show the full help")
	}
	// Log events land in the log pane.
	feed(t, d, logEvents(d)...)
	if len(d.logs) != 3 {
		t.Fatalf("%d log lines", len(d.logs))
	}
	// The end of the job becomes a result screen with per-peer totals.
	cmd := feed(t, d, jobDoneMsg{id: d.id, final: deploySnap(20)})
	msgs := run(cmd)
	if len(msgs) != 1 {
		t.Fatalf("job end gave %v", msgs)
	}
	r := msgs[0].(jobFinishedMsg).result
	if r.Err != nil || r.Verified != 150<<20 || len(r.Peers) != 3 || r.Peers[0].addr != "10.0.0.1:6881" {
		t.Errorf("result %+v", r)
	}
	if d.Running() {
		t.Error("a finished dashboard still says it runs")
	}
}

func TestSparklineKeepsLastMinute(t *testing.T) {
	d, _ := newDeployDash(testCommon(80, 24, "xterm"))
	for i := 0; i < 90*4; i++ { // 90 s at 4 Hz
		s := deploySnap(0)
		s.Time = t0.Add(time.Duration(i) * 250 * time.Millisecond)
		feed(t, d, snapMsg{d.id, s})
	}
	if len(d.spark) != sparkSeconds {
		t.Errorf("sparkline holds %d samples, want %d", len(d.spark), sparkSeconds)
	}
}

func TestPieceMapRendersOnlyOnChange(t *testing.T) {
	c := testCommon(80, 24, "xterm")
	d, _ := newDeployDash(c)
	feed(t, d, snapMsg{d.id, deploySnap(1)})
	d.View()
	d.View()
	feed(t, d, snapMsg{d.id, deploySnap(2)}) // same pieces
	d.View()
	if d.pm.renders != 1 {
		t.Errorf("rendered %d times for unchanged data, want 1", d.pm.renders)
	}
	s := deploySnap(3)
	s.Pieces[299] = engine.PieceVerified
	feed(t, d, snapMsg{d.id, s})
	d.View()
	if d.pm.renders != 2 {
		t.Errorf("rendered %d times after a change, want 2", d.pm.renders)
	}
	c.Width = 100
	d.View()
	if d.pm.renders != 3 {
		t.Errorf("rendered %d times after a resize, want 3", d.pm.renders)
	}
}

func TestCellState(t *testing.T) {
	V, M, D, F := engine.PieceVerified, engine.PieceMissing, engine.PieceDownloading, engine.PieceFailed
	cases := []struct {
		in   []engine.PieceState
		want engine.PieceState
	}{
		{[]engine.PieceState{V, V}, V},
		{[]engine.PieceState{V, M}, D}, // never drawn done before every piece is
		{[]engine.PieceState{M, M}, M},
		{[]engine.PieceState{V, F}, F},
		{[]engine.PieceState{D}, D},
	}
	for _, c := range cases {
		if got := cellState(c.in); got != c.want {
			t.Errorf("cellState(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	if perCell(300, 10, 10) != 3 || perCell(50, 10, 10) != 1 {
		t.Error("perCell")
	}
}

func TestDashboardGolden(t *testing.T) {
	for _, sz := range [][2]int{{80, 24}, {120, 40}} {
		for _, term := range []string{"xterm-256color", "linux"} {
			w, h := sz[0], sz[1]
			name := fmt.Sprintf("%dx%d-%s", w, h, term)
			t.Run("deploy-"+name, func(t *testing.T) {
				c := testCommon(w, h, term)
				d, _ := newDeployDash(c)
				for i := 0; i <= 10; i++ {
					s := deploySnap(i)
					s.DownloadRate = float64(i) * 4e6
					feed(t, d, snapMsg{d.id, s})
				}
				feed(t, d, logEvents(d)...)
				v := d.View()
				checkSize(t, v, w, h)
				golden(t, "dashboard-deploy-"+name, v)
			})
			t.Run("seed-"+name, func(t *testing.T) {
				c := testCommon(w, h, term)
				d := newDashboard(c, engine.RoleSeed, "seed sda1", &fakeJob{})
				feed(t, d, snapMsg{d.id, seedSnap(30)})
				v := d.View()
				checkSize(t, v, w, h)
				for _, want := range []string{"1 of 3 done", "127.0.0.1:6002", "127.0.0.1:40001"} {
					if !strings.Contains(v, want) {
						t.Errorf("seeder dashboard lacks %q", want)
					}
				}
				golden(t, "dashboard-seed-"+name, v)
			})
		}
	}
}

func TestResultGolden(t *testing.T) {
	for _, sz := range [][2]int{{80, 24}, {120, 40}} {
		c := testCommon(sz[0], sz[1], "xterm-256color")
		d, _ := newDeployDash(c)
		s := deploySnap(30)
		s.Phase, s.BytesDone, s.PiecesDone = engine.PhaseDone, s.BytesTotal, s.PiecesTotal
		feed(t, d, snapMsg{d.id, s})
		msgs := run(feed(t, d, jobDoneMsg{id: d.id}))
		r := msgs[0].(jobFinishedMsg).result
		v := r.View()
		checkSize(t, v, sz[0], sz[1])
		if !strings.Contains(v, "Completed") || !strings.Contains(v, "300 of 300 pieces") {
			t.Errorf("result screen:\n%s", v)
		}
		golden(t, fmt.Sprintf("result-%dx%d", sz[0], sz[1]), v)
		// Enter goes back to the menu.
		if _, cmd := r.Update(enter); len(run(cmd)) != 1 {
			t.Error("enter on the result did nothing")
		}
	}
}

// A seeder whose source has a bad piece says so, with the clients stuck
// on it and what to do.
func TestSeedDashboardShowsStuckClients(t *testing.T) {
	c := testCommon(100, 30, "xterm-256color")
	d := newDashboard(c, engine.RoleSeed, "seed sda1", &fakeJob{})
	s := seedSnap(30)
	s.BadPieces = []engine.BadPiece{{Index: 9, Offset: 10486537, Reason: "SHA-1 mismatch"}}
	s.Stuck = []server.StuckClient{{Addr: "127.0.0.1:6002", Pieces: []int{9}, Connected: true, Told: true}, {Addr: "127.0.0.1:6003", Pieces: []int{9}, Told: true}}
	feed(t, d, snapMsg{d.id, s})
	v := d.View()
	checkSize(t, v, 100, 30)
	if !strings.Contains(v, "1 damaged piece(s) on the source, 2 client(s) stuck on them") || !strings.Contains(v, "fix the source and check it with ezio torrent verify") {
		t.Errorf("the seeder dashboard does not show the stuck clients:\n%s", v)
	}
	feed(t, d, snapMsg{d.id, seedSnap(31)})
	if strings.Contains(d.View(), "damaged") {
		t.Errorf("a healthy source is shown as damaged:\n%s", d.View())
	}
}
