package tui

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"ezio/disks"
	"ezio/disks/diskimage"
	"ezio/disks/disktest"
	"ezio/engine"
	"ezio/partclone"
	"ezio/partclone/capture"
	"ezio/themes"
)

func TestTrackerURLFromWhatIsTyped(t *testing.T) {
	for in, want := range map[string]string{
		"":                               "",
		"10.0.0.1":                       "http://10.0.0.1:6969/announce",
		"10.0.0.1:7000":                  "http://10.0.0.1:7000/announce",
		"http://10.0.0.1:7000/":          "http://10.0.0.1:7000/announce",
		"http://10.0.0.1:7000/announce":  "http://10.0.0.1:7000/announce",
		"http://tracker.lan:80/announce": "http://tracker.lan:80/announce",
		" 10.0.0.2:6969 ":                "http://10.0.0.2:6969/announce",
	} {
		if got, err := trackerURL(in); err != nil || got != want {
			t.Errorf("trackerURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"ftp://x/", "http://10.0.0.1:7000/torrents/a.torrent", "::"} {
		if _, err := trackerURL(bad); err == nil {
			t.Errorf("trackerURL(%q) accepted", bad)
		}
	}
	// The wizard's guess: the Serve form's address, else this machine's
	// first LAN address (pinned to 10.0.0.5 in tests), default port.
	if got := servingAddr(&ServeValues{}); got != "10.0.0.5:6969" {
		t.Errorf("servingAddr() = %q", got)
	}
	if got := servingAddr(&ServeValues{Host: "127.0.0.1", Port: "7070"}); got != "127.0.0.1:7070" {
		t.Errorf("servingAddr(127.0.0.1:7070) = %q", got)
	}
}

// The wizard's Capture of a real ext4 partition (a loop device) writes a
// torrent that names the serving machine's tracker, as
// `ezio capture --tracker` does, and the Serve form it offers serves
// from that port.
func TestCaptureTorrentNamesTheServersTracker(t *testing.T) {
	need(t, true, "partclone.extfs", "mkfs.ext4", "losetup")
	dev := disktest.NewLoop(t, 24<<20, nil)
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", dev).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	m := newApp(t, &fakeWorld{})
	m.serve.Port = "7070" // the Serve form was opened with this port
	out := filepath.Join(t.TempDir(), "out")
	drive(t, m, key1("c"))
	if m.capture.Tracker != "10.0.0.5:7070" {
		t.Fatalf("the form does not offer this machine's serving address: %q", m.capture.Tracker)
	}
	drive(t, m, keys(dev)...)
	drive(t, m, enter)
	drive(t, m, keys(out)...)
	drive(t, m, enter) // output directory
	drive(t, m, enter) // an image
	drive(t, m, keys("sdc7")...)
	drive(t, m, enter) // name
	drive(t, m, enter) // server: the guess
	ts := followTask(t, m)
	if v := m.View(); !strings.Contains(v, "http://10.0.0.5:7070/announce") {
		t.Fatalf("the result does not name the tracker:\n%s", v)
	}
	mi, err := engine.LoadTorrent(bg, filepath.Join(out, "sdc7.torrent"))
	if err != nil {
		t.Fatal(err)
	}
	if mi.Announce != "http://10.0.0.5:7070/announce" {
		t.Errorf("the torrent announces to %q (list %v)", mi.Announce, mi.AnnounceList)
	}
	if sv := ts.res.serve; sv == nil || sv.Host != "10.0.0.5" || sv.Port != "7070" || sv.Torrent != filepath.Join(out, "sdc7.torrent") {
		t.Errorf("serve values after the capture: %+v", sv)
	}
	if _, err := os.Stat(filepath.Join(out, "sdc7")); err != nil {
		t.Error(err)
	}
}

// captureDisks is a machine as Capture sees it: the system disk (two of
// its partitions mounted), a spare GPT disk with two partitions, and a
// stick with a filesystem on the whole device.
func captureDisks() ([]disks.Disk, error) {
	return []disks.Disk{
		{Name: "sda", Path: "/dev/sda", Size: 256 << 30, Model: "Samsung SSD 870", Type: "disk", Problem: "it holds the running system",
			Partitions: []disks.Partition{
				{Name: "sda1", Path: "/dev/sda1", Size: 512 << 20, FSType: "vfat", MountPoint: "/boot/efi"},
				{Name: "sda2", Path: "/dev/sda2", Size: 200 << 30, FSType: "ext4", MountPoint: "/"},
				{Name: "sda3", Path: "/dev/sda3", Size: 8 << 30, FSType: "swap"},
			}},
		{Name: "sdb", Path: "/dev/sdb", Size: 500 << 30, Model: "WDC WD5000", Type: "disk",
			Partitions: []disks.Partition{
				{Name: "sdb1", Path: "/dev/sdb1", Size: 100 << 20, FSType: "vfat", Label: "ESP"},
				{Name: "sdb2", Path: "/dev/sdb2", Size: 400 << 30, FSType: "ext4", Label: "data"},
			}},
		{Name: "sdc", Path: "/dev/sdc", Size: 32 << 30, Type: "disk", FSType: "exfat", Label: "STICK"},
	}, nil
}

// The rows Capture offers: what each is captured as, and why a mounted
// partition, or a disk with one, cannot be.
func TestCaptureSources(t *testing.T) {
	ds, _ := captureDisks()
	rows, kinds := captureSources(ds)
	want := []struct {
		path    string
		kind    sourceKind
		problem string
	}{
		{"/dev/sda", sourceDisk, "its partitions are mounted: /dev/sda1 on /boot/efi, /dev/sda2 on /; unmount them first"},
		{"/dev/sda1", sourcePartition, "it is mounted on /boot/efi; unmount it first"},
		{"/dev/sda2", sourcePartition, "it is mounted on /; unmount it first"},
		{"/dev/sda3", sourcePartition, ""},
		{"/dev/sdb", sourceDisk, ""},
		{"/dev/sdb1", sourcePartition, ""},
		{"/dev/sdb2", sourcePartition, ""},
		{"/dev/sdc", sourcePartition, ""},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d: %+v", len(rows), len(want), rows)
	}
	for i, w := range want {
		if rows[i].path != w.path || kinds[i] != w.kind || rows[i].problem != w.problem {
			t.Errorf("row %d: %s kind %d problem %q; want %s kind %d problem %q", i, rows[i].path, kinds[i], rows[i].problem, w.path, w.kind, w.problem)
		}
	}
	if rows[0].mount != "/boot/efi, /" || rows[4].what() != "2 partitions" || rows[5].what() != "vfat ESP" {
		t.Errorf("columns: mount %q, what %q, %q", rows[0].mount, rows[4].what(), rows[5].what())
	}
}

// TestCaptureChooser drives Capture's first question: the arrows choose
// a row, a refused disk says why (with its mount points) and stays, a
// whole disk is taken as one and skips "What to save", and typing a
// path (letters j and k too) takes the path.
func TestCaptureChooser(t *testing.T) {
	m := newApp(t, &fakeWorld{})
	m.c.Height = 25
	m.deps.ListDisks = captureDisks
	drive(t, m, key1("c"))
	v := m.View()
	for _, s := range []string{"sda", "no, mounted: /boot/efi, /", "2 partitions", "whole disk", "vfat ESP", "exfat STICK", "Enter captures /dev/sda3 as one partition"} {
		if !strings.Contains(v, s) {
			t.Errorf("the chooser lacks %q:\n%s", s, v)
		}
	}
	// Up to the system disk: refused, with every mount point.
	drive(t, m, up, up, up)
	if v := m.View(); !strings.Contains(v, "/dev/sda cannot be captured: its partitions are mounted: /dev/sda1 on") || !strings.Contains(v, "/boot/efi, /dev/sda2 on /; unmount them first") {
		t.Errorf("the refused disk does not say why:\n%s", v)
	}
	drive(t, m, enter)
	if m.capture.Source != "" {
		t.Errorf("a refused disk was taken: %+v", m.capture)
	}
	if v := m.View(); strings.Count(v, "/dev/sda cannot be captured") != 2 {
		t.Errorf("Enter on a refused disk does not show the refusal as the form's error:\n%s", v)
	}
	// Down to the spare disk: captured whole.
	drive(t, m, down, down, down, down)
	if v := m.View(); !strings.Contains(v, "Enter captures /dev/sdb whole: partition table, boot areas, 2 partitions") {
		t.Errorf("the disk's row does not say it is captured whole:\n%s", v)
	}
	drive(t, m, enter)
	if m.capture.Source != "/dev/sdb" || !m.capture.WholeDisk {
		t.Fatalf("after Enter on sdb: %+v", m.capture)
	}
	if v := m.View(); !strings.Contains(v, "the disk image: table, boot areas") {
		t.Errorf("What to save does not say what a disk saves:\n%s", v)
	}
	drive(t, m, keys("/srv/img")...)
	drive(t, m, enter)
	drive(t, m, keys("pc1")...) // straight into the name: What to save is skipped
	if m.capture.OutDir != "/srv/img" || m.capture.Name != "pc1" {
		t.Errorf("values after the disk's answers: %+v", m.capture)
	}
	// Back later: the chooser is on the disk chosen; a typed path wins.
	drive(t, m, esc)
	drive(t, m, key1("c"))
	if v := m.View(); !strings.Contains(v, "Enter captures /dev/sdb whole") {
		t.Errorf("the chooser forgot the disk:\n%s", v)
	}
	drive(t, m, keys("/tmp/jk.img")...)
	if v := m.View(); !strings.Contains(v, "Enter captures /tmp/jk.img: whole if it is a disk") {
		t.Errorf("typing did not go to the path:\n%s", v)
	}
	drive(t, m, enter)
	if m.capture.Source != "/tmp/jk.img" || m.capture.WholeDisk {
		t.Errorf("after a typed path: %+v", m.capture)
	}
	// A typed path that is a listed, refused row is refused too.
	m = newApp(t, &fakeWorld{})
	m.deps.ListDisks = captureDisks
	drive(t, m, key1("c"))
	drive(t, m, keys("/dev/sda1")...)
	drive(t, m, enter)
	if v := m.View(); m.capture.Source != "" || !strings.Contains(v, "mounted on /boot/efi") {
		t.Errorf("a typed mounted partition was taken (%+v):\n%s", m.capture, v)
	}
}

// sampleDiskResult is a finished disk capture of the spare disk.
func sampleDiskResult() *capture.DiskResult {
	return &capture.DiskResult{Dir: "/srv/img/pc1", Manifest: &diskimage.Manifest{
		Name: "pc1", Disk: "sdb", SizeBytes: 500 << 30, Label: "gpt",
		Partitions: []diskimage.Partition{
			{Number: 1, Name: "sdb1", Size: 100 << 20, Filesystem: "vfat", Saved: diskimage.SavedPartclone, Program: "partclone.fat32", Torrent: "sdb1.torrent", UsedBytes: 30 << 20},
			{Number: 2, Name: "sdb2", Size: 400 << 30, Filesystem: "ext4", Saved: diskimage.SavedPartclone, Program: "partclone.extfs", Torrent: "sdb2.torrent", UsedBytes: 12 << 30},
			{Number: 3, Name: "sdb3", Size: 8 << 30, Filesystem: "swap", Saved: diskimage.SavedSwap},
			{Number: 4, Name: "sdb4", Size: 1 << 30, Saved: diskimage.SavedDD, Program: "partclone.dd", Torrent: "sdb4.torrent", UsedBytes: 1 << 30},
		},
	}}
}

// captureDiskScreens shows Capture of a whole disk: the chooser on a
// refused disk, a disk's progress, its result.
func captureDiskScreens(t *testing.T, c *Common, see func(name, v string)) {
	m := New(c, fakeDeps(t, &fakeWorld{}), &Config{})
	m.deps.ListDisks = captureDisks
	drive(t, m, key1("c"))
	drive(t, m, up, up, up, enter)
	see("capture-disk-refused", m.View())
	drive(t, m, down, down, down, down)
	see("capture-disk-chosen", m.View())
	ts := newTask(c, m.deps, "capture a disk or a partition", &m.serve, nil, nil)
	ts.start = time.Now()
	ts.last = diskTaskProgress(capture.DiskProgress{Partition: "sdb2", Index: 2, Count: 3, Percent: 40, Overall: 55,
		Progress: partclone.Progress{BytesPerSec: 80e6, Remaining: 30 * time.Second}})
	m.Start(ts)
	see("capture-disk-running", m.View())
	r := diskTaskResult("/dev/sdb", sampleDiskResult(), "http://10.0.0.5:6969/announce", 95*time.Second)
	ts.res = &r
	see("capture-disk-done", m.View())
}

func TestCaptureDiskScreens(t *testing.T) {
	c := NewCommon(themes.MustLoad("default", themes.Env{Term: "linux"}))
	c.Width, c.Height = 80, 25
	n := 0
	captureDiskScreens(t, c, func(screen, v string) {
		n++
		checkSize(t, v, 80, 25)
		golden(t, filepath.Join("screens", screen+"-80x25-linux"), v)
	})
	if n != 4 {
		t.Errorf("%d screens", n)
	}
	// The progress says which partition, k of n, its percent; the bar is
	// the disk's; the result lists each partition and how it was saved,
	// and offers it to Serve.
	p := diskTaskProgress(capture.DiskProgress{Partition: "sdb2", Index: 2, Count: 3, Percent: 40, Overall: 55, Progress: partclone.Progress{BytesPerSec: 80e6}})
	if !strings.Contains(p.what, "partition sdb2, 2 of 3: 40.0%") || p.frac != 0.55 || p.rate != 80e6 {
		t.Errorf("progress: %+v", p)
	}
	r := diskTaskResult("/dev/sdb", sampleDiskResult(), "", time.Second)
	all := strings.Join(r.lines, "\n")
	for _, s := range []string{"  1  sdb1", "vfat   partclone, used blocks (partclone.fat32)", "swap   swap: UUID and label recorded", "4  sdb4", "dd, every block", "image directory: /srv/img/pc1", "ezio seed /srv/img/pc1"} {
		if !strings.Contains(all, s) {
			t.Errorf("result lacks %q:\n%s", s, all)
		}
	}
	if r.serve == nil || r.serve.Torrent != "/srv/img/pc1" || r.serve.Source != "" {
		t.Errorf("the disk image is not offered to Serve as its directory: %+v", r.serve)
	}
}

// TestCaptureWholeDiskThroughWizard: the wizard's Capture lists a real
// GPT loop disk (two ext4 partitions, nodes made with partx: this kernel
// parses no tables) as a whole disk, captures it through
// capture.CaptureDisk, and its result lists both partitions; the image
// directory's manifest has both, saved by partclone, and ezio's disk
// image loader accepts it.
func TestCaptureWholeDiskThroughWizard(t *testing.T) {
	need(t, true, "losetup", "sfdisk", "sgdisk", "partx", "mkfs.ext4", "partclone.extfs", "blkid")
	dev := disktest.PartitionedLoop(t, 48<<20, "label: gpt\nstart=2048, size=16MiB, type=0FC63DAF-8483-4772-8E79-3D69E4C47D47\ntype=0FC63DAF-8483-4772-8E79-3D69E4C47D47\n")
	for i := 1; i <= 2; i++ {
		disktest.Run(t, "mkfs.ext4", "-q", "-F", "-L", fmt.Sprintf("part%d", i), fmt.Sprintf("%sp%d", dev, i))
	}
	m := newApp(t, &fakeWorld{})
	m.c.Height = 25
	// This machine's real list, cut to the test's disk (other loops come
	// and go on a shared machine).
	m.deps.ListDisks = func() ([]disks.Disk, error) {
		ds, err := disks.List()
		for _, d := range ds {
			if d.Path == dev {
				return []disks.Disk{d}, err
			}
		}
		return nil, fmt.Errorf("%s is not in the disk list (%v)", dev, err)
	}
	out := filepath.Join(t.TempDir(), "images")
	drive(t, m, key1("c"))
	if v := m.View(); !strings.Contains(v, "Enter captures "+dev+" whole") || !strings.Contains(v, "2 partitions") {
		t.Fatalf("the loop disk is not offered whole:\n%s", v)
	}
	drive(t, m, enter)
	if !m.capture.WholeDisk || m.capture.Source != dev {
		t.Fatalf("after choosing the disk: %+v", m.capture)
	}
	drive(t, m, keys(out)...)
	drive(t, m, enter) // output directory; What to save is skipped
	drive(t, m, keys("wdisk")...)
	drive(t, m, enter) // name
	drive(t, m, enter) // server: the guess
	ts := followTask(t, m)
	v := m.View()
	if ts.res.err != nil {
		t.Fatalf("capture failed: %v\n%s", ts.res.err, v)
	}
	dir := filepath.Join(out, "wdisk")
	base := filepath.Base(dev)
	for _, s := range []string{"captured whole", "1  " + base + "p1", "2  " + base + "p2", "ext4   partclone, used blocks (partclone.extfs)", "image directory:", "ezio seed"} {
		if !strings.Contains(v, s) {
			t.Errorf("the result lacks %q:\n%s", s, v)
		}
	}
	// The paths, wrapped on screen, are whole in the result.
	if all := strings.Join(ts.res.lines, ""); strings.Count(all, dir) != 2 {
		t.Errorf("the result does not name %s twice (image, seed command):\n%s", dir, strings.Join(ts.res.lines, "\n"))
	}
	// Offered to Serve, as a partition's capture is, with the server
	// its torrents name (this machine's address, pinned by the tests).
	if s := ts.res.serve; s == nil || s.Torrent != dir || s.Host != "10.0.0.5" || s.Port != "6969" {
		t.Errorf("the disk image is not offered to Serve: %+v", ts.res.serve)
	}
	if !strings.Contains(v, "s serve it now") {
		t.Errorf("the result does not offer to serve it:\n%s", v)
	}
	mf, err := diskimage.LoadDir(dir)
	if err != nil {
		t.Fatalf("ezio's disk image loader refuses the capture: %v", err)
	}
	if mf.Label != "gpt" || len(mf.Partitions) != 2 {
		t.Fatalf("manifest: label %q, %d partitions", mf.Label, len(mf.Partitions))
	}
	for i, p := range mf.Partitions {
		if p.Number != i+1 || p.Filesystem != "ext4" || p.Label != fmt.Sprintf("part%d", i+1) || p.Saved != diskimage.SavedPartclone || !p.HasData() {
			t.Errorf("partition %d in the manifest: %+v", i+1, p)
		}
		mi, err := engine.LoadTorrent(bg, filepath.Join(dir, p.Torrent))
		if err != nil {
			t.Errorf("partition %d's torrent: %v", p.Number, err)
		} else if mi.Announce != "http://10.0.0.5:6969/announce" {
			t.Errorf("partition %d's torrent announces to %q", p.Number, mi.Announce)
		}
	}
}

// followTask follows the task just started to its end (every message,
// none dropped), for at most a minute.
func followTask(t *testing.T, m *Model) *TaskScreen {
	t.Helper()
	ts, ok := m.Current().(*TaskScreen)
	if !ok {
		t.Fatalf("no task started:\n%s", m.View())
	}
	deadline := time.After(60 * time.Second)
	for ts.res == nil {
		msgc := make(chan tea.Msg, 1)
		go func() { msgc <- ts.wait()() }()
		select {
		case msg := <-msgc:
			m.Update(msg)
		case <-deadline:
			t.Fatalf("the capture did not end in 60 s:\n%s", m.View())
		}
	}
	return ts
}
