package tui

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"ezio/disks"
	"ezio/disks/diskdeploy"
	"ezio/disks/diskimage"
	"ezio/disks/table"
	"ezio/engine"
	"ezio/engine/server"
)

// fakeDiskRun is a disk deploy whose progress the test sets.
type fakeDiskRun struct {
	pr       diskdeploy.Progress
	verified chan struct{}
	done     chan struct{}
	stopped  bool
}

func newFakeDiskRun() *fakeDiskRun {
	return &fakeDiskRun{verified: make(chan struct{}), done: make(chan struct{}), pr: diskdeploy.Progress{
		BytesDone: 150 << 20, BytesTotal: 400 << 20, Rate: 11 << 20, UpRate: 2 << 20, Peers: 3, ETA: 23e9,
		Parts: []diskdeploy.PartProgress{
			{Number: 1, Name: "sda1", FS: "vfat", State: diskdeploy.StateVerified, BytesDone: 30 << 20, BytesTotal: 30 << 20, PiecesDone: 2, PiecesTotal: 2},
			{Number: 2, Name: "sda2", FS: "ext4", State: diskdeploy.StateWriting, BytesDone: 120 << 20, BytesTotal: 250 << 20, PiecesDone: 8, PiecesTotal: 16},
			{Number: 3, Name: "sda3", FS: "ntfs", State: diskdeploy.StateWaiting, BytesTotal: 120 << 20, PiecesTotal: 8},
			{Number: 4, Name: "sda4", FS: "swap", State: diskdeploy.StateNoData},
		}}}
}

// Progress is what the test set; bytes received are at least those
// verified, as in a real run.
func (r *fakeDiskRun) Progress() diskdeploy.Progress {
	pr := r.pr
	pr.Parts = append([]diskdeploy.PartProgress(nil), r.pr.Parts...)
	pr.BytesGot = max(pr.BytesGot, pr.BytesDone)
	for i := range pr.Parts {
		pr.Parts[i].BytesGot = max(pr.Parts[i].BytesGot, pr.Parts[i].BytesDone)
	}
	return pr
}
func (r *fakeDiskRun) Stop()                     { r.stopped = true }
func (r *fakeDiskRun) Verified() <-chan struct{} { return r.verified }
func (r *fakeDiskRun) Done() <-chan struct{}     { return r.done }
func (r *fakeDiskRun) Finish(ctx context.Context) (*diskimage.Report, error) {
	<-r.done
	return nil, nil
}

type diskWorld struct {
	prepared []string
	deployed *diskdeploy.Options
	run      *fakeDiskRun
	then     []string
}

// diskDeps is fakeDeps with a server that offers a disk image and a
// partition image, and a disk /dev/sdb with a GPT table on it.
func diskDeps(t *testing.T, w *diskWorld) *Deps {
	d := fakeDeps(t, &fakeWorld{})
	d.ListImages = func(ctx context.Context, base string) ([]server.ImageEntry, error) {
		return []server.ImageEntry{
			{Name: "lab-2026", Kind: server.KindDisk, Size: 400 << 20, HighestEnd: 300 << 30, Clients: 4, Done: 1,
				Partitions: []server.ImagePart{{Name: "sda1"}, {Name: "sda2"}, {Name: "sda3"}, {Name: "sda4"}}},
			{Name: "sda1", Kind: server.KindPartition, Size: 4 << 20, HighestEnd: 0x900000, Pieces: 4, Torrent: "/torrents/sda1.torrent"},
		}, nil
	}
	d.ListDisks = func() ([]disks.Disk, error) {
		return []disks.Disk{
			{Name: "sda", Path: "/dev/sda", Size: 256 << 30, Model: "Samsung SSD 870", Type: "disk", Problem: "it is the disk this system runs from",
				Partitions: []disks.Partition{{Name: "sda1", Path: "/dev/sda1", Size: 512 << 20, FSType: "vfat", MountPoint: "/boot/efi", Problem: "it is mounted on /boot/efi"}}},
			{Name: "sdb", Path: "/dev/sdb", Size: 500 << 30, Model: "WDC WD5000", Type: "disk",
				Partitions: []disks.Partition{{Name: "sdb1", Path: "/dev/sdb1", Size: 100 << 20, FSType: "vfat", Label: "EFI"}, {Name: "sdb2", Path: "/dev/sdb2", Size: 499 << 30, FSType: "ext4", Label: "old"}}},
			{Name: "sdc", Path: "/dev/sdc", Size: 320 << 30, Model: "ST320", Type: "disk",
				Partitions: []disks.Partition{{Name: "sdc1", Path: "/dev/sdc1", Size: 320 << 30, FSType: "swap", Problem: "it is in use as swap"}}},
			{Name: "sdd", Path: "/dev/sdd", Size: 128 << 30, Model: "USB stick", Type: "disk"},
		}, nil
	}
	m := &diskimage.Manifest{Name: "lab-2026", Label: "gpt", Partitions: []diskimage.Partition{
		{Number: 1, Name: "sda1", Size: 100 << 20, Filesystem: "vfat", Label: "EFI", Saved: diskimage.SavedPartclone, Torrent: "sda1.torrent", UsedBytes: 30 << 20},
		{Number: 2, Name: "sda2", Size: 200 << 30, Filesystem: "ext4", Label: "root", Saved: diskimage.SavedPartclone, Torrent: "sda2.torrent", UsedBytes: 250 << 20},
		{Number: 3, Name: "sda3", Size: 90 << 30, Filesystem: "ntfs", Saved: diskimage.SavedPartclone, Torrent: "sda3.torrent", UsedBytes: 120 << 20},
		{Number: 4, Name: "sda4", Size: 8 << 30, Filesystem: "swap", Saved: diskimage.SavedSwap},
	}}
	d.DiskDeps = DiskDeps{
		OpenDiskImage: func(ctx context.Context, src string) (*diskdeploy.Image, error) {
			if !strings.HasSuffix(src, "/images/lab-2026") {
				return nil, errors.New("wrong URL " + src)
			}
			return &diskdeploy.Image{Source: src, Manifest: m, Need: 300 << 30}, nil
		},
		PrepareDisk: func(ctx context.Context, img *diskdeploy.Image, target string) (*diskimage.Plan, error) {
			w.prepared = append(w.prepared, target)
			return &diskimage.Plan{Manifest: img.Manifest, Target: target}, nil
		},
		DescribeDisk: func(ctx context.Context, disk string) (*diskdeploy.Current, error) {
			if disk != "/dev/sdb" {
				return &diskdeploy.Current{}, nil
			}
			return &diskdeploy.Current{Label: table.LabelGPT, ID: "6A1C-77", Partitions: []diskdeploy.CurrentPart{
				{Number: 1, Node: "/dev/sdb1", Size: 100 << 20, FS: "vfat", Label: "EFI"},
				{Number: 2, Node: "/dev/sdb2", Size: 499 << 30, FS: "ext4", Label: "old"},
			}}, nil
		},
		DeployDisk: func(ctx context.Context, img *diskdeploy.Image, plan *diskimage.Plan, o diskdeploy.Options) (DiskRun, error) {
			w.deployed = &o
			w.run = newFakeDiskRun()
			return w.run, nil
		},
		Then: func(action string) error { w.then = append(w.then, action); return nil },
	}
	return d
}

// TestDeployDiskImageFlow: the image list shows both kinds; a disk image
// gets a table of whole disks with reasons; the summary names the table
// and partitions lost and those written; the typed name starts the disk
// deploy with the room's seeding policy; its dashboard has one row per
// partition; after a verified deploy the chosen action runs, after a
// failure it does not.
func TestDeployDiskImageFlow(t *testing.T) {
	w := &diskWorld{}
	c := testCommon(80, 25, "linux")
	m := New(c, diskDeps(t, w), &Config{})
	drive(t, m, key1("d"))
	f := m.Current().(*DeployFlow)
	drive(t, m, keys("10.0.0.1")...)
	drive(t, m, enter)
	v := m.View()
	checkSize(t, v, 80, 25)
	for _, want := range []string{"disk lab-2026", "4 partitions", "part sda1"} {
		if !strings.Contains(v, want) {
			t.Errorf("image list lacks %q:\n%s", want, v)
		}
	}
	golden(t, "deploy-disk-images-80x25", v)
	drive(t, m, enter) // the disk image
	if f.step != stepTarget || f.disk == nil || f.targets == nil {
		t.Fatalf("after the disk image: step %v disk %v", f.step, f.disk != nil)
	}
	v = m.View()
	golden(t, "deploy-disk-targets-80x25", v)
	for _, want := range []string{"Which whole disk", "it is the disk this", "its partition sdc1:", "it is too small: 128"} {
		if !strings.Contains(v, want) {
			t.Errorf("disk target table lacks %q:\n%s", want, v)
		}
	}
	if strings.Contains(v, "sdb1") {
		t.Errorf("partitions listed for a disk image:\n%s", v)
	}
	if got := f.targets.Selected().path; got != "/dev/sdb" {
		t.Fatalf("cursor on %s, want the one usable disk", got)
	}
	// The too small one is refused with its reason, before any check.
	drive(t, m, tea_end(), enter)
	if _, ok := m.Current().(*ErrorScreen); !ok || !strings.Contains(m.View(), "too small") {
		t.Fatalf("a too small disk gave %T:\n%s", m.Current(), m.View())
	}
	drive(t, m, esc)
	drive(t, m, tea_home(), down, enter)
	if f.step != stepConfirm || len(w.prepared) != 1 || w.prepared[0] != "/dev/sdb" {
		t.Fatalf("choosing sdb: step %v prepared %v", f.step, w.prepared)
	}
	v = m.View()
	checkSize(t, v, 80, 25)
	golden(t, "deploy-disk-confirm-80x25", v)
	for _, want := range []string{"GPT partition table 6A1C-77, 2 partitions, all lost", "499 GiB", `"old"`, "written:", `"root"`, "swap", "Type sdb"} {
		if !strings.Contains(v, want) {
			t.Errorf("summary lacks %q:\n%s", want, v)
		}
	}
	// Tab chooses what happens after; the name starts it.
	drive(t, m, tab)
	if f.then != thenReboot || !strings.Contains(m.View(), "reboot this machine") {
		t.Fatalf("tab: then %q", f.then)
	}
	drive(t, m, keys("sdb")...)
	drive(t, m, enter)
	if w.deployed == nil || w.deployed.SeedAfter != engine.SeedUntilIdle {
		t.Fatalf("disk deploy options %+v", w.deployed)
	}
	d, ok := m.Current().(*DiskDashboard)
	if !ok {
		t.Fatalf("the deploy opened %T", m.Current())
	}
	v = m.View()
	checkSize(t, v, 80, 25)
	golden(t, "dashboard-disk-80x25-linux", v)
	for _, want := range []string{"PIECES", "8/16", "writing", "verified", "waiting", "no data", "peers 3", "ETA"} {
		if !strings.Contains(v, want) {
			t.Errorf("disk dashboard lacks %q:\n%s", want, v)
		}
	}
	if len(w.then) != 0 {
		t.Fatal("the action ran before the deploy ended")
	}
	// Verified and done: the action runs.
	for i := range w.run.pr.Parts[:3] {
		p := &w.run.pr.Parts[i]
		p.State, p.BytesDone, p.PiecesDone = diskdeploy.StateVerified, p.BytesTotal, p.PiecesTotal
	}
	w.run.pr.BytesDone, w.run.pr.ETA, w.run.pr.Rate = w.run.pr.BytesTotal, 0, 0
	close(w.run.verified)
	close(w.run.done)
	drive(t, m, diskDoneMsg{id: d.id, rep: &diskimage.Report{Target: "/dev/sdb", Partitions: []diskimage.PartitionReport{
		{Number: 1, Node: "/dev/sdb1", Filesystem: "vfat", Bytes: 30 << 20, Fsck: &table.Check{OK: true}},
		{Number: 4, Node: "/dev/sdb4", Filesystem: "swap", Done: "swap recreated"},
	}}})
	v = m.View()
	golden(t, "dashboard-disk-done-80x25-linux", v)
	if len(w.then) != 1 || w.then[0] != thenReboot || !strings.Contains(v, "Done: reboot this machine") {
		t.Errorf("after a verified deploy: then %v\n%s", w.then, v)
	}
	if !strings.Contains(v, "Completed: every partition verified") || !strings.Contains(v, "fsck clean") {
		t.Errorf("result:\n%s", v)
	}

	// A failed deploy never runs it and says why.
	w2 := &diskWorld{}
	dd := NewDiskDashboard(c, diskDeps(t, w2), "deploy disk lab -> /dev/sdb", newFakeDiskRun())
	dd.then = thenPoweroff
	dd.Update(diskDoneMsg{id: dd.id, err: errors.New("partition 2 (sda2): write /dev/sdb2: input/output error")})
	v = dd.View()
	if len(w2.then) != 0 || !strings.Contains(v, "input/output error") || !strings.Contains(v, "Not carried out after a failure") {
		t.Errorf("after a failure: then %v\n%s", w2.then, v)
	}
}

// TestPartitionImageOntoPartitionedDisk: a partition image chosen onto a
// whole disk with a table is shown plainly: the summary names the table
// and every partition lost, and offers the partition that takes it.
func TestPartitionImageOntoPartitionedDisk(t *testing.T) {
	w := &diskWorld{}
	c := testCommon(80, 25, "linux")
	m := New(c, diskDeps(t, w), &Config{})
	drive(t, m, key1("d"))
	f := m.Current().(*DeployFlow)
	drive(t, m, keys("10.0.0.1")...)
	drive(t, m, enter)
	drive(t, m, down, enter) // the partition image
	if f.step != stepTarget || f.disk != nil {
		t.Fatalf("after the partition image: step %v", f.step)
	}
	f.targets.Select("/dev/sdb")
	drive(t, m, enter)
	if f.step != stepConfirm {
		t.Fatalf("choosing sdb: step %v (%T)", f.step, m.Current())
	}
	v := m.View()
	checkSize(t, v, 80, 25)
	golden(t, "deploy-part-on-disk-80x25", v)
	for _, want := range []string{"whole disk with a GPT partition table", "destroys the table", "all lost", `"EFI"`, `"old"`, "ctrl+p: write it to partition 1 (/dev/sdb1) instead"} {
		if !strings.Contains(v, want) {
			t.Errorf("summary lacks %q:\n%s", want, v)
		}
	}
	// ctrl+p takes the partition instead.
	drive(t, m, ctrlP)
	if f.step != stepConfirm || f.target.path != "/dev/sdb1" || !strings.Contains(m.View(), "Type sdb1") {
		t.Errorf("ctrl+p: step %v target %s\n%s", f.step, f.target.path, m.View())
	}
}

var ctrlP = tea.KeyMsg{Type: tea.KeyCtrlP}

func tea_home() tea.KeyMsg { return tea.KeyMsg{Type: tea.KeyHome} }
func tea_end() tea.KeyMsg  { return tea.KeyMsg{Type: tea.KeyEnd} }

// TestPartitionDeployThen: a verified partition deploy runs the action
// chosen on the summary, and its result says so; a failed one never runs
// it.
func TestPartitionDeployThen(t *testing.T) {
	c := testCommon(80, 25, "linux")
	var calls []string
	deps := fakeDeps(t, &fakeWorld{})
	deps.Then = func(a string) error { calls = append(calls, a); return nil }

	d := newDashboard(c, engine.RoleDeploy, "deploy sda1 -> /dev/sdb1", &fakeJob{})
	d.then, d.deps = thenPoweroff, deps
	final := deploySnap(10)
	final.Phase, final.PiecesDone, final.BytesDone = engine.PhaseDone, final.PiecesTotal, final.BytesTotal
	var res *Result
	for _, msg := range run(feed(t, d, jobDoneMsg{id: d.id, final: final})) {
		_, cmd := d.Update(msg)
		for _, m := range run(cmd) {
			if jf, ok := m.(jobFinishedMsg); ok {
				res = jf.result
			}
		}
	}
	if len(calls) != 1 || calls[0] != thenPoweroff || res == nil || !res.ThenDone || res.ThenErr != nil {
		t.Fatalf("after a verified deploy: calls %v result %+v", calls, res)
	}
	res.c = c
	if v := res.View(); !strings.Contains(v, "power this machine off: done") {
		t.Errorf("result does not say the action ran:\n%s", v)
	}

	calls = nil
	d = newDashboard(c, engine.RoleDeploy, "deploy sda1 -> /dev/sdb1", &fakeJob{})
	d.then, d.deps = thenReboot, deps
	msgs := run(feed(t, d, jobDoneMsg{id: d.id, final: deploySnap(10), err: errors.New("write /dev/sdb1: input/output error")}))
	for _, msg := range msgs {
		if _, ok := msg.(jobFinishedMsg); !ok {
			t.Errorf("a failed deploy led to %T", msg)
		}
	}
	if len(calls) != 0 {
		t.Errorf("a failed deploy ran %v", calls)
	}
}

// TestDeployDiskFromDirOrFound: a disk image directory typed as the source
// (an image on a USB stick) and a disk image that auto (or a server's
// address) finds both open as disk images, with whole disks as targets,
// instead of being read as torrents.
func TestDeployDiskFromDirOrFound(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, diskimage.ManifestFile), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	found := "http://10.0.0.1:6969/images/lab-2026"
	for _, tc := range []struct{ typed, opened string }{{dir, dir}, {"auto:lab-2026", found}} {
		w := &diskWorld{}
		d := diskDeps(t, w)
		var opened []string
		open := d.DiskDeps.OpenDiskImage
		d.DiskDeps.OpenDiskImage = func(ctx context.Context, src string) (*diskdeploy.Image, error) {
			opened = append(opened, src)
			return open(ctx, found)
		}
		d.FetchTorrent = func(ctx context.Context, src string) (*engine.FetchedTorrent, error) {
			if src != "auto:lab-2026" {
				return nil, errors.New("fetched " + src)
			}
			return nil, &engine.DiskImageError{URL: found}
		}
		m := New(testCommon(80, 25, "linux"), d, &Config{})
		drive(t, m, key1("d"))
		f := m.Current().(*DeployFlow)
		drive(t, m, keys(tc.typed)...)
		drive(t, m, enter)
		settle(t, m, 10*time.Second, "the disk image opened", func() bool { return f.disk != nil })
		if len(opened) != 1 || opened[0] != tc.opened {
			t.Errorf("%s: opened %q, want %q", tc.typed, opened, tc.opened)
		}
		if f.step != stepTarget || !strings.Contains(m.View(), "Which whole disk") {
			t.Errorf("%s: not at the whole-disk targets:\n%s", tc.typed, m.View())
		}
	}
}

// TestDiskDashboardCountsReceivedBytes: the disk dashboard's bar and
// totals move with bytes received before a 16 MiB piece is whole, and
// the lost server is named.
func TestDiskDashboardCountsReceivedBytes(t *testing.T) {
	run := newFakeDiskRun()
	run.pr.BytesGot = 200 << 20
	run.pr.Parts[2].BytesGot = 50 << 20
	run.pr.Lost = 12 * time.Second
	c := testCommon(80, 25, "linux")
	d := NewDiskDashboard(c, nil, "deploy disk lab-2026 -> /dev/sdb", run)
	d.Update(diskTickMsg{id: d.id})
	v := d.View()
	checkSize(t, v, 80, 25)
	for _, want := range []string{"200 MiB of 400 MiB", " 50.0%", "50.0 MiB/120 MiB", "waiting for the server, lost 12 s ago", "waiting"} {
		if !strings.Contains(v, want) {
			t.Errorf("dashboard lacks %q:\n%s", want, v)
		}
	}
}
