package tui

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"ezio/disks/diskimage"
	"ezio/engine"
	"ezio/engine/netboot/room"
	"ezio/engine/server"
)

// fakeDiskSeed is a disk image being served whose partitions' snapshots
// and fleet the test sets.
type fakeDiskSeed struct {
	fakeJob
	parts []engine.Snapshot
	fleet []server.FleetMember
	doneC chan struct{}
	fail  error
	room  []server.Machine // the network-booted machines
}

func (f *fakeDiskSeed) sample() ([]engine.Snapshot, []server.FleetMember) { return f.parts, f.fleet }
func (f *fakeDiskSeed) events() <-chan engine.Event                       { return nil }
func (f *fakeDiskSeed) done() <-chan struct{}                             { return f.doneC }
func (f *fakeDiskSeed) err() error                                        { return f.fail }
func (f *fakeDiskSeed) machines() []server.Machine                        { return f.room }

// sampleDiskManifest is the spare disk's image (sampleDiskResult) as its
// ezio-disk.json has it: three partitions with data, one swap.
func sampleDiskManifest() *diskimage.Manifest {
	m := *sampleDiskResult().Manifest
	m.Format, m.SectorSize, m.PartitionTable, m.MBR = diskimage.Format, 512, "sdb-pt.sf", "sdb-mbr"
	m.Partitions = append([]diskimage.Partition(nil), m.Partitions...)
	start := int64(1 << 20)
	for i := range m.Partitions {
		m.Partitions[i].Start = start
		start += m.Partitions[i].Size
	}
	return &m
}

// testDiskImageDir writes the sample manifest into a directory: what the
// Serve form looks at (the seeder itself is the test's).
func testDiskImageDir(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "pc1")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(sampleDiskManifest())
	if err := os.WriteFile(filepath.Join(dir, diskimage.ManifestFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// diskSeedSnaps is the three served partitions of the sample disk at
// second sec: two clients connected to each, one of them done.
func diskSeedSnaps(sec int) []engine.Snapshot {
	at := t0.Add(time.Duration(sec) * time.Second)
	peers := func(up1, up2 float64) []engine.PeerSnapshot {
		return []engine.PeerSnapshot{
			{Addr: "10.0.0.22:51001", Client: "ezio 0.1.0", UploadRate: up1, BytesUploaded: int64(up1) * int64(sec), Share: 0.4},
			{Addr: "10.0.0.23:51002", Client: "ezio 0.1.0", UploadRate: up2, BytesUploaded: int64(up2) * int64(sec), Share: 0.1},
		}
	}
	snap := func(name string, total int64, pieces int, up1, up2 float64) engine.Snapshot {
		return engine.Snapshot{Time: at, Role: engine.RoleSeed, Name: name, Phase: engine.PhaseSeeding, Elapsed: time.Duration(sec) * time.Second,
			BytesDone: total, BytesTotal: total, PiecesDone: pieces, PiecesTotal: pieces, UploadRate: up1 + up2,
			BytesUploaded: int64(up1+up2) * int64(sec), Peers: peers(up1, up2), NumPeers: 2}
	}
	return []engine.Snapshot{
		snap("sdb1", 30<<20, 2, 0, 0),
		snap("sdb2", 12<<30, 768, 40e6, 20e6),
		snap("sdb4", 1<<30, 64, 4e6, 0),
	}
}

func diskSeedFleet() []server.FleetMember {
	return []server.FleetMember{
		{Addr: "10.0.0.21:6881", Done: 1, Completed: true, State: server.FleetDone},
		{Addr: "10.0.0.22:6881", Done: 0.45, State: server.FleetDownloading, Active: true},
		{Addr: "10.0.0.23:6881", Done: 0.1, State: server.FleetDownloading, Active: true},
	}
}

func newFakeDiskSeedDashboard(c *Common) (*DiskSeedDashboard, *fakeDiskSeed) {
	src := &fakeDiskSeed{parts: diskSeedSnaps(10), fleet: diskSeedFleet(), doneC: make(chan struct{})}
	d := newDiskSeedDashboard(c, sampleDiskManifest(), src, 4, false)
	d.howTo = diskInstructions("http://0.0.0.0:6969", "10.0.0.5", "pc1", "ezio on lab")
	return d, src
}

// TestDiskSeedDashboard: the totals are the partitions' sums, one row a
// partition (a swap one without data), the fleet is the image's with "k
// of N clients done", and the exact client commands; tab, pause and stop
// reach every partition; the end is the seeder's result.
func TestDiskSeedDashboard(t *testing.T) {
	c := testCommon(80, 24, "linux")
	d, src := newFakeDiskSeedDashboard(c)
	d.Init()
	src.parts = diskSeedSnaps(11)
	d.Update(diskSeedTickMsg{d.id})
	if s := d.snap; s.BytesTotal != 30<<20+13<<30 || s.PiecesTotal != 834 || s.UploadRate != 64e6 || s.NumPeers != 6 || s.FleetDone != 1 || s.Phase != engine.PhaseSeeding {
		t.Errorf("totals: %d bytes, %d pieces, up %.0f, %d peers, %d done, %s", s.BytesTotal, s.PiecesTotal, s.UploadRate, s.NumPeers, s.FleetDone, s.Phase)
	}
	v := d.View()
	checkSize(t, v, 80, 24)
	golden(t, "dashboard-disk-seed-80x24-linux", v)
	for _, want := range []string{"seed disk pc1", "1 of 4 clients done", "sent 671 MiB", "up 64.0 MB/s",
		"clients: ezio deploy auto:pc1 TARGET-DISK", "or: ezio deploy http://10.0.0.5:6969/images/pc1 TARGET-DISK",
		"[Partitions]", "2 sdb2       ext4", "3 sdb3       swap", "no data", "60.0 MB/s", "10.0.0.21", "done", "45%"} {
		if !strings.Contains(v, want) {
			t.Errorf("disk seeder dashboard lacks %q:\n%s", want, v)
		}
	}
	// The log opens with every instruction, the service name too.
	if l := strings.Join(d.logLinesOf(d.logs), "\n"); !strings.Contains(l, "announced on the LAN as ezio on lab._ezio._tcp.local.") {
		t.Errorf("log:\n%s", l)
	}
	// 80x25 draws the same, a line taller.
	c.Height = 25
	checkSize(t, d.View(), 80, 25)
	c.Height = 24

	for _, want := range []pane{paneFleet, paneLog, paneParts} {
		d.Update(tea.KeyMsg{Type: tea.KeyTab})
		if d.focus != want {
			t.Fatalf("tab: focus %v, want %v", d.focus, want)
		}
	}
	d.Update(key1("p"))
	if !src.paused || !strings.Contains(d.View(), "paused") {
		t.Errorf("p did not pause the partitions: %v\n%s", src.paused, d.View())
	}
	d.Update(key1("p"))
	if q, _ := d.StopQuestion(); q != "Stop serving?" || !d.Running() {
		t.Errorf("stop question %q, running %v", q, d.Running())
	}

	// Ctrl-C asks, y stops every partition.
	m := newApp(t, &fakeWorld{})
	m.Start(d)
	drive(t, m, ctrlC)
	if v := m.View(); !strings.Contains(v, "Stop serving?") {
		t.Fatalf("ctrl+c:\n%s", v)
	}
	drive(t, m, key1("y"))
	if !src.stopped {
		t.Fatal("y did not stop the serving")
	}
	// The end: the seeder's result, for the whole disk.
	close(src.doneC)
	drive(t, m, diskSeedDoneMsg{id: d.id, parts: diskSeedSnaps(12), fleet: diskSeedFleet()})
	r, ok := m.Current().(*Result)
	if !ok {
		t.Fatalf("after the end: %T", m.Current())
	}
	if r.Role != engine.RoleSeed || r.Fleet != "1 of 4 clients done" || r.Moved != 12*64e6 || r.Err != nil {
		t.Errorf("result: %+v", r)
	}
	if v := m.View(); !strings.Contains(v, "result seed disk pc1") || !strings.Contains(v, "Completed: seeder finished serving") {
		t.Errorf("result screen:\n%s", v)
	}
}

// TestServeFormTakesADiskImage: a disk image directory skips the image
// data and the tracker question (a disk's clients need the server), asks
// whether to check the data first, says what clients run, and starts SeedDisk with the form's address, port
// and upload limit; a plain directory and a build without SeedDisk are
// refused with their reason.
func TestServeFormTakesADiskImage(t *testing.T) {
	dir := testDiskImageDir(t)
	var got *DiskSeedOptions
	var gotDir string
	m := newApp(t, &fakeWorld{})
	m.deps.Tuning.ListenAddr = "127.0.0.1:7777"
	m.deps.SeedDisk = func(ctx context.Context, d string, o DiskSeedOptions) (*DiskSeeding, error) {
		got, gotDir = &o, d
		return nil, errors.New("test: not serving")
	}
	drive(t, m, key1("s"))
	drive(t, m, keys(dir)...)
	v := m.View()
	for _, want := range []string{"Torrent file or disk image", "in the disk image directory: each partition's torrent and data", "ezio deploy auto:pc1 TARGET-DISK"} {
		if !strings.Contains(v, want) {
			t.Errorf("the form with a disk image lacks %q:\n%s", want, v)
		}
	}
	drive(t, m, enter) // the image data is skipped
	v = m.View()
	if !strings.Contains(v, "Serve on") || !strings.Contains(v, "yes, for a disk image: clients get its table") {
		t.Fatalf("after the disk image:\n%s", v)
	}
	checkSize(t, v, 80, 24)
	golden(t, "serve-disk-how-80x24", v)
	s := m.Current().(*ServeFlow)
	s.tracker = false                           // a "no" from a torrent served before
	drive(t, m, tea.KeyMsg{Type: tea.KeyRight}) // 10.0.0.5
	drive(t, m, enter)
	drive(t, m, tea.KeyMsg{Type: tea.KeyBackspace}, tea.KeyMsg{Type: tea.KeyBackspace}, tea.KeyMsg{Type: tea.KeyBackspace}, tea.KeyMsg{Type: tea.KeyBackspace})
	drive(t, m, keys("7070")...)
	drive(t, m, enter) // the tracker is skipped
	drive(t, m, keys("3")...)
	drive(t, m, enter)
	drive(t, m, keys("5MiB")...)
	drive(t, m, enter)
	if v := m.View(); !strings.Contains(v, "Check the whole source first?") {
		t.Fatalf("no check question for a disk image:\n%s", v)
	}
	drive(t, m, key1("n"))
	if v := m.View(); !strings.Contains(v, "Announce this server on the LAN?") {
		t.Fatalf("no announce question for a disk image:\n%s", v)
	}
	drive(t, m, key1("n"))
	if v := m.View(); !strings.Contains(v, "Stop serving when the room is done?") {
		t.Fatalf("no exit-when-done question for a disk image:\n%s", v)
	}
	drive(t, m, key1("y"))
	settle(t, m, 10*time.Second, "SeedDisk", func() bool { return got != nil })
	if gotDir != dir || got.TrackerListen != "10.0.0.5:7070" || got.Tuning.MaxUploadRate != 5<<20 || got.Tuning.ListenAddr != "10.0.0.5:7777" {
		t.Errorf("SeedDisk(%q, %+v)", gotDir, got)
	}
	if m.serve.NoTracker || !m.serve.NoAnnounce || !m.serve.ExitWhenDone || m.serve.Expect != "3" {
		t.Errorf("values kept: %+v", m.serve)
	}
	settle(t, m, 10*time.Second, "the error", func() bool { _, ok := m.Current().(*ErrorScreen); return ok })
	if v := m.View(); !strings.Contains(v, "Could not serve the disk image") || !strings.Contains(v, "Check the disk image directory") {
		t.Errorf("the error does not speak of the disk image:\n%s", v)
	}

	// A directory that is no disk image, and no SeedDisk at all.
	for _, c := range []struct {
		dir, want string
		seed      bool
	}{{t.TempDir(), "this directory is not a disk image (no ezio-disk.json in it)", true}, {dir, "disk images cannot be served from here", false}} {
		m := newApp(t, &fakeWorld{})
		if c.seed {
			m.deps.SeedDisk = func(context.Context, string, DiskSeedOptions) (*DiskSeeding, error) {
				return nil, errors.New("not reached")
			}
		}
		drive(t, m, key1("s"))
		drive(t, m, keys(c.dir)...)
		drive(t, m, enter)
		if v := m.View(); !strings.Contains(v, c.want) || strings.Contains(v, "Serve on") {
			t.Errorf("%s: the form does not say %q:\n%s", c.dir, c.want, v)
		}
	}
}

// diskServeScreens are the disk image's Serve page and its seeder's
// dashboard, stop question, full log and result, for the screen scans.
func diskServeScreens(t *testing.T, c *Common, see func(name, v string)) {
	m := New(c, fakeDeps(t, &fakeWorld{}), &Config{})
	m.deps.SeedDisk = func(context.Context, string, DiskSeedOptions) (*DiskSeeding, error) { return nil, errors.New("test") }
	drive(t, m, key1("s"))
	drive(t, m, keys(testDiskImageDir(t))...)
	see("serve-disk-what", m.View())
	drive(t, m, enter)
	see("serve-disk-how", m.View())

	d, src := newFakeDiskSeedDashboard(c)
	m = New(c, fakeDeps(t, &fakeWorld{}), &Config{})
	m.Start(d)
	d.Init()
	feed(t, d.Dashboard, eventMsg{d.id, engine.Event{Kind: engine.EventLog, Level: "info", Message: "sdb2: étiquette «données» – µTorrent ✓"}})
	see("disk-seed-dashboard", m.View())
	drive(t, m, key1("?"))
	see("disk-seed-dashboard-help", m.View())
	drive(t, m, key1("?"), key1("l"))
	see("disk-seed-log", m.View())
	drive(t, m, esc, ctrlC)
	see("disk-seed-stop", m.View())
	drive(t, m, key1("y"))
	close(src.doneC)
	drive(t, m, diskSeedDoneMsg{id: d.id, parts: diskSeedSnaps(12), fleet: diskSeedFleet()})
	see("disk-seed-result", m.View())

	// Network boot: its questions, a bad range, and the room's rows.
	m = New(c, fakeDeps(t, &fakeWorld{}), &Config{})
	m.deps.SeedDisk = func(context.Context, string, DiskSeedOptions) (*DiskSeeding, error) { return nil, errors.New("test") }
	m.deps.StartNetboot = func(context.Context, string, string, *server.Server, room.Options) (func(), error) {
		return nil, errors.New("test")
	}
	toNetbootQuestion(t, m, testDiskImageDir(t))
	if v := m.View(); !strings.Contains(v, "Boot the room") {
		t.Errorf("not the network-boot question:\n%s", v)
	}
	see("serve-netboot", m.View())
	drive(t, m, key1("y"))
	see("serve-netboot-dhcp", m.View())
	drive(t, m, down)
	drive(t, m, enter)
	drive(t, m, keys("10.0.0.9-10.0.0.1")...)
	drive(t, m, enter)
	if v := m.View(); !strings.Contains(v, "the lower first") {
		t.Errorf("a reversed range is not refused:\n%s", v)
	}
	see("serve-netboot-range-bad", m.View())
	p := netbootProblem(errNotRoot)
	m = New(c, fakeDeps(t, &fakeWorld{}), &Config{})
	drive(t, m, errorMsg{title: p.title, what: p.what, hint: p.hint})
	see("serve-netboot-refused", m.View())
	src = &fakeDiskSeed{parts: diskSeedSnaps(10), fleet: diskSeedFleet(), doneC: make(chan struct{}), room: sampleRoom()}
	nd := newDiskSeedDashboard(c, sampleDiskManifest(), src, 5, true)
	nd.howTo = netbootHowTo("pc1", room.ThenReboot, diskInstructions("http://0.0.0.0:6969", "10.0.0.5", "pc1", ""), nil)
	m = New(c, fakeDeps(t, &fakeWorld{}), &Config{})
	m.Start(nd)
	nd.Init()
	see("disk-netboot-dashboard", m.View())
}
