// Package disktest is what the tests of every ezio package use to work on
// real devices: loop devices backed by temporary files, commands that must
// succeed, checksums to show a device was left alone, free loopback ports.
// Every helper cleans up after itself (exactly what it made) when the test
// ends.
package disktest

import (
	"context"
	"crypto/sha256"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Run runs a command that must succeed (within two minutes) and returns
// its trimmed combined output.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Attach attaches a file as a new loop device (losetup -f, so tests
// running at once never share one) and detaches exactly that device when
// the test ends.
func Attach(t testing.TB, path string) string {
	t.Helper()
	out, err := exec.Command("losetup", "-f", "--show", path).Output()
	if err != nil {
		t.Fatalf("losetup -f --show %s: %v", path, err)
	}
	dev := strings.TrimSpace(string(out))
	if !strings.HasPrefix(dev, "/dev/loop") {
		t.Fatalf("losetup gave %q", dev)
	}
	ClearStalePartitions(dev)
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v %s", dev, err, out)
		}
	})
	return dev
}

// ClearStalePartitions removes the partitions a loop device just attached
// still shows. The kernel here scans no tables, and a loop device
// detached while partitions that partx added were still there (a test
// killed midway, by this run or an earlier one) keeps them: on a device
// just attached they are stale, and partx -a would fail on them.
func ClearStalePartitions(dev string) {
	name := filepath.Base(dev)
	if stale, _ := filepath.Glob("/sys/block/" + name + "/" + name + "p*"); len(stale) > 0 {
		exec.Command("partx", "-d", dev).Run()
	}
}

// NewLoop backs a new loop device with a file of size bytes, written by
// fill first (or sparse).
func NewLoop(t testing.TB, size int64, fill func(w io.Writer)) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if fill != nil {
		fill(f)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return Attach(t, path)
}

// PartitionedLoop is a loop disk of size bytes with the partition table
// the sfdisk script describes, and its partition nodes (DEVpN) made with
// partx, since the kernel here parses no tables; they go at the end.
func PartitionedLoop(t testing.TB, size int64, script string) string {
	t.Helper()
	dev := NewLoop(t, size, nil)
	t.Cleanup(func() { exec.Command("partx", "-d", dev).Run() })
	sf := exec.Command("sfdisk", "-q", "--no-reread", "--no-tell-kernel", dev)
	sf.Stdin = strings.NewReader(script)
	if out, err := sf.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk %s: %v\n%s\n%s", dev, err, script, out)
	}
	Run(t, "partx", "-a", dev)
	return dev
}

// Sum is the SHA-256 of a whole file or device.
func Sum(t testing.TB, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

// DirNames lists the names in dir, in the order the directory gives.
func DirNames(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// FreePort is a TCP port free on 127.0.0.1 a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
