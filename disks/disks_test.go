package disks

import (
	"bufio"
	"ezio/disks/disktest"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

const mib = 1 << 20

func TestListShowsLoopWithBackingFileAndFilesystem(t *testing.T) {
	requireRoot(t)
	requireTool(t, "mkfs.ext4")
	file := imageFile(t, 32*mib)
	dev := attachLoop(t, file)
	run(t, "mkfs.ext4", "-q", "-L", "eziotest", dev)

	d := findDisk(t, filepath.Base(dev))
	if d.Path != dev || d.Size != 32*mib || d.Type != "loop" || d.BackingFile != file {
		t.Fatalf("List entry = %+v, want path %s, size %d, type loop, backing %s", d, dev, 32*mib, file)
	}
	if d.FSType != "ext4" || d.Label != "eziotest" || d.UUID == "" {
		t.Fatalf("whole-disk filesystem = %q %q %q, want ext4 eziotest <uuid>", d.FSType, d.Label, d.UUID)
	}
	if d.Problem != "" {
		t.Fatalf("an unmounted loop has problem %q", d.Problem)
	}

	if size, err := DeviceSize(dev); err != nil || size != 32*mib {
		t.Fatalf("DeviceSize(%s) = %d, %v", dev, size, err)
	}
	if size, err := DeviceSize(file); err != nil || size != 32*mib {
		t.Fatalf("DeviceSize(%s) = %d, %v", file, size, err)
	}
	if !IsBlockDevice(dev) || IsBlockDevice(file) || IsBlockDevice(filepath.Join(t.TempDir(), "none")) {
		t.Fatal("IsBlockDevice is wrong")
	}

	// Lookup resolves symlinks the way /dev/disk/by-id links are.
	link := filepath.Join(t.TempDir(), "by-id-link")
	if err := os.Symlink(dev, link); err != nil {
		t.Fatal(err)
	}
	ld, lp, err := Lookup(link)
	if err != nil || lp != nil || ld.Name != d.Name {
		t.Fatalf("Lookup(%s) = %+v, %+v, %v", link, ld, lp, err)
	}
	if _, _, err := Lookup(file); err == nil {
		t.Fatal("Lookup of a regular file succeeded")
	}
}

func TestListShowsPartitionsWithFilesystems(t *testing.T) {
	requireTool(t, "mkfs.ext4", "mkswap", "mkfs.vfat")
	dev, p := partitionedLoop(t, 64*mib, ",16M,L", ",8M,S", ",")
	run(t, "mkfs.ext4", "-q", "-L", "root", p[0])
	run(t, "mkswap", "-q", "-L", "sw", p[1])
	run(t, "mkfs.vfat", "-n", "EFI", p[2])

	d := findDisk(t, filepath.Base(dev))
	if len(d.Partitions) != 3 {
		t.Fatalf("partitions = %+v, want 3", d.Partitions)
	}
	want := []struct {
		fs, label string
		size      int64
	}{{"ext4", "root", 16 * mib}, {"swap", "sw", 8 * mib}, {"vfat", "EFI", 0}}
	for i, w := range want {
		got := d.Partitions[i]
		if got.Name != filepath.Base(p[i]) || got.Path != p[i] || got.FSType != w.fs || got.Label != w.label {
			t.Errorf("partition %d = %+v, want %s %s %s", i+1, got, p[i], w.fs, w.label)
		}
		if w.size != 0 && got.Size != w.size {
			t.Errorf("partition %d size = %d, want %d", i+1, got.Size, w.size)
		}
		if got.Problem != "" {
			t.Errorf("partition %d has problem %q", i+1, got.Problem)
		}
		if _, err := exec.LookPath("blkid"); err == nil {
			if uuid := run(t, "blkid", "-p", "-s", "UUID", "-o", "value", p[i]); got.UUID != uuid {
				t.Errorf("partition %d UUID = %q, blkid says %q", i+1, got.UUID, uuid)
			}
		}
	}
	if d.FSType != "" {
		t.Errorf("a partitioned disk has whole-disk fstype %q", d.FSType)
	}

	ld, lp, err := Lookup(p[1])
	if err != nil || ld.Name != d.Name || lp == nil || lp.Path != p[1] {
		t.Fatalf("Lookup(%s) = %+v, %+v, %v", p[1], ld, lp, err)
	}
}

func TestRefusesMountedDisk(t *testing.T) {
	requireTool(t, "mkfs.ext4")
	file := imageFile(t, 32*mib)
	dev := attachLoop(t, file)
	// Inode tables and journal written now: a lazily initialised ext4
	// keeps writing its device after the mount, and the test checks that
	// the refusal changed no byte of it.
	run(t, "mkfs.ext4", "-q", "-E", "lazy_itable_init=0,lazy_journal_init=0", dev)
	dir := mountAt(t, dev)

	re := expectRefused(t, dev, 0, RefusedMounted)
	if !strings.Contains(re.Reason, dir) || !strings.Contains(re.Hint, "umount "+dir) {
		t.Fatalf("refusal does not name the mount point %s: %v", dir, re)
	}
	// The image file behind a mounted loop is refused too.
	re = expectRefused(t, file, 0, RefusedMounted)
	if !strings.Contains(re.Reason, dev) {
		t.Fatalf("refusal of the backing file does not name %s: %v", dev, re)
	}
	if d := findDisk(t, filepath.Base(dev)); d.MountPoint != dir || d.Problem == "" {
		t.Fatalf("List entry = %+v, want mountpoint %s and a problem", d, dir)
	}
}

func TestRefusesDiskWithMountedPartition(t *testing.T) {
	requireTool(t, "mkfs.ext4")
	dev, p := partitionedLoop(t, 64*mib, ",16M", ",16M", ",")
	run(t, "mkfs.ext4", "-q", "-E", "lazy_itable_init=0,lazy_journal_init=0", p[1]) // as above
	dir := mountAt(t, p[1])

	re := expectRefused(t, dev, 0, RefusedMounted)
	if !strings.Contains(re.Reason, dir) || !strings.Contains(re.Reason, "partition "+p[1]) {
		t.Fatalf("refusal does not name %s and %s: %v", dir, p[1], re)
	}
	expectRefused(t, p[1], 0, RefusedMounted)
	// A sibling partition does not overlap the mounted one.
	expectWritable(t, p[0], 0)
	expectWritable(t, p[2], 0)

	d := findDisk(t, filepath.Base(dev))
	if d.Problem == "" || d.Partitions[1].MountPoint != dir || d.Partitions[1].Problem == "" || d.Partitions[0].Problem != "" {
		t.Fatalf("List entry = %+v", d)
	}
}

func TestRefusesSwap(t *testing.T) {
	dev, p := partitionedLoop(t, 32*mib, ",8M", ",")
	swapOn(t, p[1])
	re := expectRefused(t, dev, 0, RefusedSwap)
	if !strings.Contains(re.Reason, p[1]) || !strings.Contains(re.Hint, "swapoff "+p[1]) {
		t.Fatalf("refusal does not name the swap partition: %v", re)
	}
	expectRefused(t, p[1], 0, RefusedSwap)
	expectWritable(t, p[0], 0)
}

func TestRefusesHolder(t *testing.T) {
	requireTool(t, "pvcreate", "vgcreate", "lvcreate")
	if !hasDM() {
		// Not something CI can install: the kernel lacks it.
		t.Skip("the kernel has no device-mapper (/proc/misc), so no LVM volume can be activated")
	}
	dev, p := partitionedLoop(t, 64*mib, ",")
	vg := fmt.Sprintf("eziotest%d", os.Getpid())
	run(t, "pvcreate", "-q", "-y", p[0])
	t.Cleanup(func() { exec.Command("pvremove", "-q", "-ff", "-y", p[0]).Run() })
	run(t, "vgcreate", "-q", vg, p[0])
	t.Cleanup(func() { exec.Command("vgremove", "-q", "-f", vg).Run() })
	run(t, "lvcreate", "-q", "-y", "-L", "8M", "-n", "lv", vg)

	expectRefused(t, dev, 0, RefusedHolder)
	expectRefused(t, p[0], 0, RefusedHolder)
}

func TestRefusesLVMMemberEvenIfInactive(t *testing.T) {
	requireTool(t, "pvcreate", "pvremove")
	dev, p := partitionedLoop(t, 32*mib, ",16M", ",")
	run(t, "pvcreate", "-q", "-y", p[0])
	t.Cleanup(func() { exec.Command("pvremove", "-q", "-ff", "-y", p[0]).Run() })

	re := expectRefused(t, dev, 0, RefusedMember)
	if !strings.Contains(re.Reason, "partition "+p[0]) {
		t.Fatalf("refusal does not name the member partition: %v", re)
	}
	expectRefused(t, p[0], 0, RefusedMember)
	expectWritable(t, p[1], 0)
	if d := findDisk(t, filepath.Base(dev)); d.Partitions[0].FSType != "LVM2_member" {
		t.Fatalf("partition fstype = %q, want LVM2_member", d.Partitions[0].FSType)
	}
}

// rootDisk finds the whole disk behind / the way an administrator would:
// its device number in mountinfo, then sysfs.
func rootDisk(t *testing.T) string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 || fields[4] != "/" {
			continue
		}
		dir, err := filepath.EvalSymlinks("/sys/dev/block/" + fields[2])
		if err != nil {
			t.Skipf("/ is on %s, which is not a block device (container or overlay root)", fields[2])
		}
		if _, err := os.Stat(filepath.Join(dir, "partition")); err == nil {
			dir = filepath.Dir(dir)
		}
		for {
			// Through dm and md down to a real disk.
			slaves, _ := os.ReadDir(filepath.Join(dir, "slaves"))
			if len(slaves) == 0 {
				break
			}
			dir, _ = filepath.EvalSymlinks(filepath.Join(dir, "slaves", slaves[0].Name()))
			if _, err := os.Stat(filepath.Join(dir, "partition")); err == nil {
				dir = filepath.Dir(dir)
			}
		}
		return "/dev/" + filepath.Base(dir)
	}
	t.Fatal("no / in mountinfo")
	return ""
}

func TestRefusesRootDisk(t *testing.T) {
	disk := rootDisk(t)
	err := CheckWritable(disk, 0)
	re, ok := err.(*RefusedError)
	if !ok || re.Kind != RefusedSystem {
		t.Fatalf("CheckWritable(%s) = %v, want a system refusal", disk, err)
	}
	d, _, lerr := Lookup(disk)
	if lerr != nil {
		t.Fatal(lerr)
	}
	if d.Problem == "" {
		t.Fatalf("root disk %s has no problem in List", disk)
	}
	for _, p := range d.Partitions {
		if err := CheckWritable(p.Path, 0); err == nil {
			t.Errorf("partition %s of the root disk is writable", p.Path)
		}
	}
	// Checksums where the sandbox lets us read the disk at all.
	if f, err := os.Open(disk); err == nil {
		f.Close()
		buf := make([]byte, 1<<20)
		read := func() []byte {
			f, err := os.Open(disk)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			n, _ := f.ReadAt(buf, 0)
			return append([]byte(nil), buf[:n]...)
		}
		before := read()
		CheckWritable(disk, 0)
		if string(read()) != string(before) {
			t.Fatal("the first MiB of the root disk changed")
		}
	}
}

func TestRefusesReadOnlyLoop(t *testing.T) {
	file := imageFile(t, 16*mib)
	dev := attachLoop(t, file, "-r")
	re := expectRefused(t, dev, 0, RefusedReadOnly)
	if !strings.Contains(re.Hint, "losetup") {
		t.Fatalf("hint does not say how to attach it writable: %v", re)
	}
}

func TestRefusesTooSmall(t *testing.T) {
	file := imageFile(t, 64*mib)
	dev := attachLoop(t, file)
	re := expectRefused(t, dev, 128*mib, RefusedTooSmall)
	for _, s := range []string{"64.0 MiB (67108864 bytes)", "128 MiB (134217728 bytes)"} {
		if !strings.Contains(re.Reason, s) {
			t.Fatalf("reason %q lacks %q", re.Reason, s)
		}
	}
	expectWritable(t, dev, 64*mib)
}

func TestAcceptsBlankLoop(t *testing.T) {
	file := imageFile(t, 16*mib)
	dev := attachLoop(t, file)
	before := disktest.Sum(t, dev)
	expectWritable(t, dev, 16*mib)
	expectWritable(t, file, 1<<40) // files grow: their size is no limit
	if disktest.Sum(t, dev) != before {
		t.Fatal("CheckWritable changed the device")
	}
}

func TestRefusesExclusivelyOpenedDevice(t *testing.T) {
	file := imageFile(t, 16*mib)
	dev := attachLoop(t, file)
	fd, err := unix.Open(dev, unix.O_RDONLY|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	expectRefused(t, dev, 0, RefusedBusy)
}

func TestRefusesLoopBackingDevice(t *testing.T) {
	file := imageFile(t, 16*mib)
	lower := attachLoop(t, file)
	upper := attachLoop(t, lower)
	re := expectRefused(t, lower, 0, RefusedHolder)
	if !strings.Contains(re.Reason, upper) || !strings.Contains(re.Hint, "losetup -d "+upper) {
		t.Fatalf("refusal does not name %s: %v", upper, re)
	}
	expectWritable(t, upper, 0)
}

func TestFileTargets(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "image.raw")
	if err := os.WriteFile(file, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	expectWritable(t, file, 1<<30)
	expectWritable(t, filepath.Join(dir, "new.raw"), 1<<30)
	expectWritable(t, dir, 0) // a partclone -T extent directory
	expectWritable(t, "/dev/shm/ezio-test-no-such.img", 1<<30)
	for _, c := range []struct {
		target string
		kind   Refusal
	}{
		{filepath.Join(dir, "missing", "new.raw"), RefusedNotFound},
		{"/dev/ezio-no-such-disk", RefusedNotFound},
		{"/dev/null", RefusedNotBlock},
		{"/dev", RefusedNotBlock},
		{"/sys/block", RefusedNotBlock},
		{"/proc/self/mountinfo", RefusedNotBlock},
		{"", RefusedNotFound},
	} {
		err := CheckWritable(c.target, 0)
		re, ok := err.(*RefusedError)
		if !ok || re.Kind != c.kind || re.Hint == "" {
			t.Errorf("CheckWritable(%q) = %v, want a %s refusal with a hint", c.target, err, c.kind)
		}
	}
	if got, _ := os.ReadFile(file); string(got) != "data" {
		t.Fatal("CheckWritable changed a file")
	}
}

func TestRefusedErrorMessage(t *testing.T) {
	err := &RefusedError{Target: "/dev/loop3", Reason: "it is mounted at /mnt/x (partition /dev/loop3p1)", Hint: "Unmount it first: umount /mnt/x"}
	want := "refusing to write to /dev/loop3: it is mounted at /mnt/x (partition /dev/loop3p1). Unmount it first: umount /mnt/x"
	if err.Error() != want {
		t.Fatalf("got %q\nwant %q", err.Error(), want)
	}
}

func TestRefusesActiveSwapFile(t *testing.T) {
	requireRoot(t)
	requireTool(t, "mkswap", "swapon", "swapoff")
	file := filepath.Join(t.TempDir(), "swapfile")
	// Swap files must not be sparse.
	if err := os.WriteFile(file, make([]byte, 16*mib), 0o600); err != nil {
		t.Fatal(err)
	}
	swapOn(t, file)
	re := expectRefused(t, file, 0, RefusedSwap)
	if !strings.Contains(re.Hint, "swapoff "+file) {
		t.Fatalf("hint does not say how to turn it off: %v", re)
	}
}

// CheckWritable runs for every row of the wizard's disk table.
func BenchmarkCheckWritable(b *testing.B) {
	ds, err := List()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		for _, d := range ds {
			CheckWritable(d.Path, 0)
		}
	}
	b.ReportMetric(float64(len(ds)), "disks")
}
