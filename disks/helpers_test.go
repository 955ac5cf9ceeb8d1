package disks

import (
	"bytes"
	"errors"
	"ezio/disks/disktest"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// In CI a missing prerequisite is a failure: the CI script installs them.
// On a developer's machine it is a skip that says what to install.
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	disktest.SkipOrFail(t, format, args...)
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		unavailable(t, "needs root (loop devices, mkfs, mount)")
	}
}

// toolPackages says which Debian package brings each tool.
var toolPackages = map[string]string{
	"losetup": "mount", "partx": "util-linux", "sfdisk": "fdisk",
	"mkfs.ext4": "e2fsprogs", "mkfs.vfat": "dosfstools", "mkswap": "util-linux",
	"swapon": "mount", "swapoff": "mount", "mount": "mount", "umount": "mount",
	"pvcreate": "lvm2", "vgcreate": "lvm2", "lvcreate": "lvm2", "blkid": "util-linux",
}

func requireTool(t *testing.T, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			unavailable(t, "needs %s (apt-get install %s)", name, toolPackages[name])
		}
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "LVM_SUPPRESS_FD_WARNINGS=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// imageFile makes a sparse file of size bytes in the test's temp dir.
func imageFile(t *testing.T, size int64) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "disk-*.img")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// attachLoop attaches file to the first free loop device and detaches it
// when the test ends. Loop devices are few and shared with other tests
// running on this machine, so a full set is waited out for a while.
func attachLoop(t *testing.T, file string, opts ...string) string {
	t.Helper()
	requireRoot(t)
	requireTool(t, "losetup")
	args := append([]string{"-f", "--show"}, opts...)
	args = append(args, file)
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := exec.Command("losetup", args...).CombinedOutput()
		if err == nil {
			dev := strings.TrimSpace(string(out))
			t.Cleanup(func() { detachLoop(t, dev, file) })
			disktest.ClearStalePartitions(dev)
			return dev
		}
		if time.Now().After(deadline) {
			t.Fatalf("losetup %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// detachLoop detaches dev only while it is still backed by our file: the
// number may have been reused by another test after an earlier detach.
func detachLoop(t *testing.T, dev, file string) {
	b, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(dev), "loop/backing_file"))
	if err != nil || strings.TrimSuffix(strings.TrimSpace(string(b)), " (deleted)") != file {
		return
	}
	if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
		t.Errorf("losetup -d %s: %v\n%s", dev, err, out)
	}
}

// partitionedLoop writes a GPT with the given sfdisk lines to a new image,
// attaches it and returns the loop device and its partition paths.
func partitionedLoop(t *testing.T, size int64, parts ...string) (string, []string) {
	t.Helper()
	requireRoot(t)
	requireTool(t, "sfdisk", "losetup", "partx")
	file := imageFile(t, size)
	cmd := exec.Command("sfdisk", "-q", file)
	cmd.Stdin = strings.NewReader("label: gpt\n" + strings.Join(parts, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	dev := attachLoop(t, file, "-P")
	var paths []string
	for i := range parts {
		paths = append(paths, fmt.Sprintf("%sp%d", dev, i+1))
	}
	// Some kernels leave the scan to user space.
	if !waitBlock(paths, 200*time.Millisecond) {
		run(t, "partx", "-a", dev)
		if !waitBlock(paths, 5*time.Second) {
			t.Fatalf("partitions of %s did not appear: %v", dev, paths)
		}
	}
	return dev, paths
}

func waitBlock(paths []string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		all := true
		for _, p := range paths {
			if !IsBlockDevice(p) {
				all = false
			}
		}
		if all || time.Now().After(deadline) {
			return all
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func mountAt(t *testing.T, dev string) string {
	t.Helper()
	requireTool(t, "mount", "umount")
	dir := t.TempDir()
	run(t, "mount", dev, dir)
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", dir, err, out)
			exec.Command("umount", "-l", dir).Run()
		}
	})
	return dir
}

func swapOn(t *testing.T, dev string) {
	t.Helper()
	requireTool(t, "mkswap", "swapon", "swapoff")
	run(t, "mkswap", "-q", dev)
	run(t, "swapon", dev)
	t.Cleanup(func() {
		if out, err := exec.Command("swapoff", dev).CombinedOutput(); err != nil {
			t.Errorf("swapoff %s: %v\n%s", dev, err, out)
		}
	})
}

// expectRefused runs CheckWritable and asserts a refusal of the given
// kind, with the bytes of the target unchanged. It returns the error.
func expectRefused(t *testing.T, target string, need int64, kind Refusal) *RefusedError {
	t.Helper()
	before := disktest.Sum(t, target)
	err := CheckWritable(target, need)
	after := disktest.Sum(t, target)
	if before != after {
		t.Fatalf("CheckWritable(%s) changed its bytes", target)
	}
	var re *RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("CheckWritable(%s, %d) = %v, want a %s refusal", target, need, err, kind)
	}
	if re.Kind != kind {
		t.Fatalf("CheckWritable(%s) refused as %s, want %s: %v", target, re.Kind, kind, err)
	}
	if re.Target != target || re.Reason == "" || re.Hint == "" {
		t.Fatalf("refusal lacks target, reason or hint: %#v", re)
	}
	if !strings.HasPrefix(err.Error(), "refusing to write to "+target+": ") {
		t.Fatalf("message %q does not start with what it refuses", err)
	}
	return re
}

func expectWritable(t *testing.T, target string, need int64) {
	t.Helper()
	if err := CheckWritable(target, need); err != nil {
		t.Fatalf("CheckWritable(%s, %d) = %v, want nil", target, need, err)
	}
}

func findDisk(t *testing.T, name string) Disk {
	t.Helper()
	ds, err := List()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.Name == name {
			return d
		}
	}
	t.Fatalf("List() has no %s", name)
	return Disk{}
}

func hasDM() bool {
	b, err := os.ReadFile("/proc/misc")
	return err == nil && bytes.Contains(b, []byte("device-mapper"))
}
