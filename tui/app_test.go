package tui

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	tea "github.com/charmbracelet/bubbletea"

	"ezio/disks"
	"ezio/engine"
	"ezio/engine/server"
	"ezio/engine/torrentfile"
)

// testTorrent is a small valid image torrent: 2 extents, 4 pieces.
func testTorrent(t *testing.T) *metainfo.MetaInfo {
	t.Helper()
	ext := []torrentfile.Extent{{Offset: 0x100000, Length: 3 << 20}, {Offset: 0x800000, Length: 1 << 20}}
	hashes := make([][20]byte, 4)
	mi, err := engine.BuildFromExtents("sda1", 1<<20, ext, hashes, nil)
	if err != nil {
		t.Fatal(err)
	}
	return mi
}

type fakeWorld struct {
	deployed  *engine.DeployOptions
	prepared  []string
	listErr   error
	deployErr error
}

func fakeDeps(t *testing.T, w *fakeWorld) *Deps {
	mi := testTorrent(t)
	return &Deps{
		Ctx: context.Background(),
		ListImages: func(ctx context.Context, base string) ([]server.ImageEntry, error) {
			if w.listErr != nil {
				return nil, w.listErr
			}
			return []server.ImageEntry{
				{Name: "sda1", Size: 4 << 20, HighestEnd: 0x900000, Pieces: 4, PieceLength: 1 << 20, Torrent: "/torrents/sda1.torrent", Clients: 2, Done: 1},
				{Name: "sda2", Size: 8 << 20, Pieces: 8, PieceLength: 1 << 20, Torrent: "/torrents/sda2.torrent"},
			}, nil
		},
		FetchTorrent: func(ctx context.Context, src string) (*engine.FetchedTorrent, error) {
			return &engine.FetchedTorrent{MetaInfo: mi, Seeders: []string{"10.0.0.1:6881"}}, nil
		},
		ListDisks: func() ([]disks.Disk, error) {
			return []disks.Disk{
				{Name: "sda", Path: "/dev/sda", Size: 256 << 30, Model: "Samsung SSD 870", Type: "disk", Problem: "it holds the running system (/ is on /dev/sda2)",
					Partitions: []disks.Partition{{Name: "sda1", Path: "/dev/sda1", Size: 512 << 20, FSType: "vfat", MountPoint: "/boot/efi", Problem: "it is mounted on /boot/efi"}}},
				{Name: "sdb", Path: "/dev/sdb", Size: 500 << 30, Model: "WDC WD5000", Type: "disk", FSType: "ext4", Label: "old"},
				{Name: "fakeloop", Path: "/dev/fakeloop", Size: 64 << 20, Type: "loop", FSType: "ext4", MountPoint: "/mnt/x", Problem: "it is mounted on /mnt/x"},
			}, nil
		},
		PrepareDeploy: func(mi *metainfo.MetaInfo, target string) error {
			w.prepared = append(w.prepared, target)
			return nil
		},
		Deploy: func(ctx context.Context, o engine.DeployOptions) (*engine.Job, error) {
			w.deployed = &o
			if w.deployErr != nil {
				return nil, w.deployErr
			}
			return nil, errors.New("test: not deploying")
		},
		Demo: func(context.Context) (*engine.Job, error) { return nil, errors.New("no demo in tests") },
	}
}

func newApp(t *testing.T, w *fakeWorld) *Model {
	c := testCommon(80, 24, "xterm-256color")
	return New(c, fakeDeps(t, w), &Config{})
}

func TestMenu(t *testing.T) {
	m := newApp(t, &fakeWorld{})
	v := m.View()
	checkSize(t, v, 80, 24)
	golden(t, "menu-80x24", v)
	drive(t, m, down, down, up)
	if m.menu.cursor != 1 {
		t.Errorf("cursor %d after down down up", m.menu.cursor)
	}
	drive(t, m, enter)
	if _, ok := m.Current().(*ServeFlow); !ok {
		t.Fatalf("enter on Serve opened %T", m.Current())
	}
	drive(t, m, esc)
	if m.Current() != Screen(m.menu) {
		t.Fatalf("esc from Serve went to %T", m.Current())
	}
	drive(t, m, key1("i"))
	if _, ok := m.Current().(*DisksScreen); !ok {
		t.Fatalf("i opened %T", m.Current())
	}
	if !strings.Contains(m.View(), "it is mounted on /mnt/x") {
		t.Error("disks screen lacks the refusal reason")
	}
	drive(t, m, esc)
	if quit := drive(t, m, key1("q")); !quit {
		t.Error("q on the menu did not quit")
	}
}

func TestDeployFlow(t *testing.T) {
	w := &fakeWorld{}
	m := newApp(t, w)
	drive(t, m, key1("d"))
	f, ok := m.Current().(*DeployFlow)
	if !ok {
		t.Fatalf("d opened %T", m.Current())
	}
	// Step 1: the server's address.
	drive(t, m, keys("10.0.0.1")...)
	drive(t, m, enter)
	if f.step != stepImage {
		t.Fatalf("after the address: step %v, busy %q", f.step, f.busy)
	}
	if v := m.View(); !strings.Contains(v, "sda2") || !strings.Contains(v, "Which image?") {
		t.Errorf("image list not shown:\n%s", v)
	}
	// Esc goes back and keeps the address.
	drive(t, m, esc)
	if f.step != stepSource || f.source != "10.0.0.1" || !strings.Contains(m.View(), "10.0.0.1") {
		t.Fatalf("back lost the address: step %v source %q", f.step, f.source)
	}
	drive(t, m, enter)
	drive(t, m, enter) // first image
	if f.step != stepTarget || f.targets == nil {
		t.Fatalf("after the image: step %v", f.step)
	}
	v := m.View()
	checkSize(t, v, 80, 24)
	golden(t, "deploy-targets-80x24", v)
	// The cursor starts on the first usable row: sdb.
	if got := f.targets.Selected().path; got != "/dev/sdb" {
		t.Fatalf("cursor on %s", got)
	}
	// A mounted loop device is listed, and choosing it is refused.
	drive(t, m, down, enter)
	es, ok := m.Current().(*ErrorScreen)
	if !ok {
		t.Fatalf("choosing a mounted device gave %T", m.Current())
	}
	v = m.View()
	if !strings.Contains(v, "Refused: /dev/fakeloop") || !strings.Contains(v, "mounted on /mnt/x") {
		t.Errorf("refusal screen:\n%s", v)
	}
	golden(t, "deploy-refused-80x24", v)
	_ = es
	if len(w.prepared) != 0 {
		t.Error("a refused row reached PrepareDeploy")
	}
	// Esc returns to the table, still on fakeloop.
	drive(t, m, esc)
	if m.Current() != Screen(f) || f.targets.Selected().path != "/dev/fakeloop" {
		t.Fatalf("back from the refusal: %T on %s", m.Current(), f.targets.Selected().path)
	}
	drive(t, m, up, enter)
	if f.step != stepConfirm || len(w.prepared) != 1 || w.prepared[0] != "/dev/sdb" {
		t.Fatalf("choosing sdb: step %v prepared %v", f.step, w.prepared)
	}
	v = m.View()
	for _, want := range []string{"Summary", "sda1", "/dev/sdb", "overwritten", "Type sdb"} {
		if !strings.Contains(v, want) {
			t.Errorf("summary lacks %q", want)
		}
	}
	golden(t, "deploy-confirm-80x24", v)
	// A wrong name does not start anything.
	drive(t, m, keys("sda")...)
	drive(t, m, enter)
	if w.deployed != nil {
		t.Fatal("deployed with a wrong confirmation")
	}
	if !strings.Contains(m.View(), "type sdb exactly") {
		t.Errorf("no hint after a wrong name:\n%s", m.View())
	}
	drive(t, m, tea.KeyMsg{Type: tea.KeyBackspace}, key1("b"), enter)
	if w.deployed == nil || w.deployed.Target != "/dev/sdb" || len(w.deployed.Seeders) != 1 {
		t.Fatalf("deploy options %+v", w.deployed)
	}
	// The fake Deploy fails: its error is shown on its own screen.
	if _, ok := m.Current().(*ErrorScreen); !ok {
		t.Fatalf("a failed start shows %T", m.Current())
	}
}

func TestDeployFlowServerDown(t *testing.T) {
	w := &fakeWorld{listErr: errors.New("dial tcp 10.0.0.9:6969: connection refused")}
	m := newApp(t, w)
	drive(t, m, key1("d"))
	drive(t, m, keys("10.0.0.9")...)
	drive(t, m, enter)
	v := m.View()
	if !strings.Contains(v, "connection refused") || !strings.Contains(v, "What to do") {
		t.Errorf("error screen:\n%s", v)
	}
	drive(t, m, esc)
	f := m.Current().(*DeployFlow)
	if f.source != "10.0.0.9" {
		t.Errorf("back from the error lost the address: %q", f.source)
	}
}

func TestCtrlCAsksWhileRunning(t *testing.T) {
	m := newApp(t, &fakeWorld{})
	j := &fakeJob{}
	d := newDashboard(m.c, engine.RoleDeploy, "deploy", j)
	m.Start(d)
	if quit := drive(t, m, ctrlC); quit || !m.askQuit {
		t.Fatal("ctrl+c on a running job did not ask")
	}
	if !strings.Contains(m.View(), "Stop the deploy?") {
		t.Error("question not on screen")
	}
	drive(t, m, key1("n"))
	if m.askQuit || j.stopped {
		t.Fatal("n stopped the job")
	}
	drive(t, m, ctrlC, key1("y"))
	if !j.stopped {
		t.Fatal("y did not stop the job")
	}
	// When the job has ended, the result shows; Enter goes to the menu.
	drive(t, m, jobDoneMsg{id: d.id, err: context.Canceled})
	if _, ok := m.Current().(*Result); !ok {
		t.Fatalf("after the job: %T", m.Current())
	}
	drive(t, m, enter)
	if _, ok := m.Current().(*Menu); !ok {
		t.Fatalf("after the result: %T", m.Current())
	}
	if quit := drive(t, m, ctrlC); !quit {
		t.Error("ctrl+c with nothing running did not quit")
	}
}

func TestSettingsSaves(t *testing.T) {
	w := &fakeWorld{}
	m := newApp(t, w)
	m.deps.ConfigPath = t.TempDir() + "/config.json"
	drive(t, m, key1("t"))
	s, ok := m.Current().(*Settings)
	if !ok {
		t.Fatalf("t opened %T", m.Current())
	}
	// Theme select: move to "mono", then accept every field.
	drive(t, m, down, enter, enter, enter, enter, enter) // default -> mono
	// "being saved to" shows at once; the file is written when "saved to" does.
	settle(t, m, 30*time.Second, "settings saved", func() bool { return strings.HasPrefix(s.saved, "saved to") })
	cfg, err := LoadConfig(m.deps.ConfigPath)
	if err != nil || cfg.Theme != "mono" || cfg.AIOThreads != 4 || cfg.ListenPort != 6881 {
		t.Fatalf("saved %+v, %v", cfg, err)
	}
	if m.c.Styles.Name != "mono" {
		t.Error("theme not applied")
	}
}

func TestServeFormKeepsValues(t *testing.T) {
	m := newApp(t, &fakeWorld{})
	drive(t, m, key1("s"))
	drive(t, m, keys("/nonexistent.torrent")...)
	drive(t, m, enter)
	if !strings.Contains(m.View(), "no such file") {
		t.Errorf("missing torrent not refused:\n%s", m.View())
	}
	drive(t, m, esc)
	drive(t, m, key1("s"))
	if m.serve.Torrent != "/nonexistent.torrent" || !strings.Contains(m.View(), "/nonexistent.torrent") {
		t.Errorf("value lost: %q", m.serve.Torrent)
	}
}
