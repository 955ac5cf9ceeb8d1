package main

import (
	"context"
	"ezio/disks/disktest"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDanglingSymlinkIntoDevIsRefused: a target that is a dangling symlink
// into /dev is judged as the /dev path it leads to, so no regular file is
// ever created there. /dev is a fresh tmpfs in the test's own mount
// namespace, so the machine's /dev is never at risk.
func TestDanglingSymlinkIntoDevIsRefused(t *testing.T) {
	disktest.Need(t, true, "unshare")
	dir, _ := makeExtentDir(t, 1<<20, 2)
	tf := filepath.Join(t.TempDir(), "x.torrent")
	mustRun(t, ezio(context.Background(), "torrent", "create", dir, "-o", tf, "--piece-length", "64KiB"))
	link := filepath.Join(t.TempDir(), "target")
	script := fmt.Sprintf(`set -u
mount -t tmpfs ezio-test-dev /dev || exit 90
ln -s /dev/sdz9 %[1]s
"$EZIO" deploy %[2]s %[1]s --peer 127.0.0.1:1 --yes --timeout 1s >/dev/null 2>%[3]s
code=$?
if [ -e /dev/sdz9 ]; then echo CREATED; fi
exit $code`, link, tf, filepath.Join(t.TempDir(), "err.txt"))
	errFile := strings.Split(script, "2>")[1]
	errFile = strings.Fields(errFile)[0]
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "EZIO_RUN_MAIN=1", "EZIO="+os.Args[0])
	out, err := cmd.CombinedOutput()
	ee, _ := err.(*exec.ExitError)
	if ee == nil || ee.ExitCode() != 2 {
		msg, _ := os.ReadFile(errFile)
		t.Fatalf("want a refusal (exit 2), got %v: %s %s", err, out, msg)
	}
	if strings.Contains(string(out), "CREATED") {
		t.Fatal("a file was created in /dev through the dangling symlink")
	}
	msg, _ := os.ReadFile(errFile)
	if !strings.Contains(string(msg), "no such device") {
		t.Errorf("refusal does not say there is no such device: %s", msg)
	}
}

// TestSysTargetIsAKernelInterface: /sys files are refused as what they
// are, not as "too small".
func TestSysTargetIsAKernelInterface(t *testing.T) {
	dir, _ := makeExtentDir(t, 1<<20, 2)
	tf := filepath.Join(t.TempDir(), "x.torrent")
	mustRun(t, ezio(context.Background(), "torrent", "create", dir, "-o", tf, "--piece-length", "64KiB"))
	out, err := ezio(context.Background(), "deploy", tf, "/sys/kernel/mm/transparent_hugepage/enabled", "--peer", "127.0.0.1:1", "--yes").CombinedOutput()
	ee, _ := err.(*exec.ExitError)
	if ee == nil || ee.ExitCode() != 2 || !strings.Contains(string(out), "kernel interface") {
		t.Fatalf("want a kernel-interface refusal, got %v: %s", err, out)
	}
}
