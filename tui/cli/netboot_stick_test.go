package cli

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"ezio/disks/disktest"
	"ezio/disks/table"
)

// runStick runs `ezio netboot stick` in this process and returns its exit
// code, the --json result and stderr.
func runStick(t *testing.T, args ...string) (int, map[string]any, string) {
	t.Helper()
	var out, errb bytes.Buffer
	a := &App{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb}
	root := NewRoot(a)
	root.SetArgs(append([]string{"netboot", "stick", "--json"}, args...))
	root.SilenceErrors, root.SilenceUsage = true, true
	err := root.ExecuteContext(context.Background())
	var res map[string]any
	if e := json.Unmarshal(out.Bytes(), &res); e != nil {
		t.Fatalf("no JSON result: %v\n%s\n%s", e, out.String(), errb.String())
	}
	return ExitCode(context.Background(), err), res, errb.String()
}

// TestStickRefusals: each unsafe target is refused with exit status 2 and
// a reason, and nothing is written.
func TestStickRefusals(t *testing.T) {
	disktest.Need(t, true, "losetup", "mkfs.ext4", "sfdisk", "partx")
	file := filepath.Join(t.TempDir(), "file.img")
	os.WriteFile(file, make([]byte, 1<<20), 0o644)
	small := disktest.NewLoop(t, 32<<20, nil)
	blank := disktest.NewLoop(t, 128<<20, nil)
	mounted := disktest.NewLoop(t, 128<<20, nil)
	disktest.Run(t, "mkfs.ext4", "-q", mounted)
	mnt := t.TempDir()
	disktest.Run(t, "mount", mounted, mnt)
	t.Cleanup(func() { disktest.Run(t, "umount", mnt) })
	parted := disktest.PartitionedLoop(t, 128<<20, "label: dos\nstart=2048, type=83\n")
	part, err := table.PartitionNode(parted, 1)
	if err != nil {
		t.Fatal(err)
	}
	held := disktest.NewLoop(t, 128<<20, nil)
	fd, err := unix.Open(held, unix.O_RDONLY|unix.O_EXCL, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"a regular file", []string{file, "--yes"}, "is not a block device"},
		{"too small", []string{small, "--yes"}, "it holds 32.0 MiB"},
		{"mounted", []string{mounted, "--yes"}, "it is mounted at"},
		{"a partition", []string{part, "--yes"}, "is a partition: name the whole stick, " + parted},
		{"held by another writer", []string{held, "--yes"}, "in use"},
		{"not confirmed", []string{blank}, "not confirmed"},
		{"a bad server", []string{blank, "--server", "http://x/a/b", "--yes"}, "--server"},
		{"a bad --then", []string{blank, "--then", "halt", "--yes"}, "--then"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, res, stderr := runStick(t, tc.args...)
			msg, _ := res["error"].(string)
			if code != ExitRefused || res["result"] != "refused" || !strings.Contains(msg, tc.want) {
				t.Errorf("exit %d, result %v, error %q; want 2, refused, %q\n%s", code, res["result"], msg, tc.want, stderr)
			}
		})
	}
	if b, _ := os.ReadFile(strings.TrimSpace(disktest.Run(t, "losetup", "-n", "-O", "BACK-FILE", blank))); !bytes.Equal(b, make([]byte, len(b))) {
		t.Error("the unconfirmed disk was written to")
	}
}

// TestIsStick: the deploy environment knows its stick by the MBR disk ID
// on its command line.
func TestIsStick(t *testing.T) {
	p := filepath.Join(t.TempDir(), "disk")
	b := make([]byte, 4096)
	binary.LittleEndian.PutUint32(b[440:], 0x1234abcd)
	os.WriteFile(p, b, 0o644)
	for id, want := range map[string]bool{"1234abcd": true, "1234ABCD": true, "1234abce": false, "": false} {
		if got := isStick(p, id); got != want {
			t.Errorf("isStick(%q) = %v", id, got)
		}
	}
	if isStick(filepath.Join(t.TempDir(), "none"), "1234abcd") {
		t.Error("a missing disk is a stick")
	}
}
