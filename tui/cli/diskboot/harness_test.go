// Package diskboot boots deployed whole-disk images in QEMU: an LVM disk
// (captured by ezio, and saved by Clonezilla then imported) and disks
// grown onto a larger target, under BIOS and UEFI. It is a package of its
// own so that its minutes of TCG boots have their own test timeout and
// run after the other packages, and so that the race pass does not run
// them again.
package diskboot

// This file: the test binary as ezio, the seeder and the deploy as the
// real command runs them, loop disks, and one boot's facts.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"ezio/disks/diskimage"
	"ezio/disks/disktest"
	"ezio/disks/disktest/vmtest"
	"ezio/tui/cli"
)

func TestMain(m *testing.M) {
	// EZIO_RUN_MAIN: this binary runs as ezio for the test.
	if os.Getenv("EZIO_RUN_MAIN") == "1" {
		os.Exit(cli.Main())
	}
	os.Exit(m.Run())
}

// need stops the test unless it can build disks and boot them.
func need(t *testing.T, tools ...string) {
	t.Helper()
	if raceDetector {
		t.Skip("the QEMU boots run in the plain test pass, not again under -race")
	}
	vmtest.Need(t)
	disktest.Need(t, true, append([]string{"sfdisk", "partx", "mkfs.ext4", "dumpe2fs", "partclone.extfs", "grub-install",
		"pvcreate", "vgcfgrestore", "lvs", "mcopy", "mkfs.vfat"}, tools...)...)
	if _, err := os.Stat("/usr/lib/grub/i386-pc/boot.img"); err != nil {
		disktest.SkipOrFail(t, "no GRUB for BIOS (the grub-pc-bin package): %v", err)
	}
}

// ezioCmd is this test binary run as ezio, with a cache directory of
// the test's own.
func ezioCmd(t *testing.T, ctx context.Context, args ...string) *exec.Cmd {
	t.Helper()
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "EZIO_RUN_MAIN=1", "XDG_CACHE_HOME="+t.TempDir())
	cmd.Stdin = strings.NewReader("")
	return cmd
}

// ezio runs one command to its end (at most 5 minutes) and returns its
// exit status and output.
func ezio(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := ezioCmd(t, ctx, args...)
	var out, errb disktest.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("ezio %s: %v", strings.Join(args, " "), err)
	}
	return code, out.String(), errb.String()
}

// capture is `ezio capture DISK OUT --name NAME`; it returns the image
// directory.
func capture(t *testing.T, disk, name string) string {
	t.Helper()
	out := t.TempDir()
	if code, stdout, stderr := ezio(t, "capture", disk, out, "--name", name); code != 0 {
		t.Fatalf("ezio capture %s: exit %d\n%s\n%s", disk, code, vmtest.Tail(stdout, 2000), vmtest.Tail(stderr, 2000))
	}
	return filepath.Join(out, name)
}

var clientsLine = regexp.MustCompile(`clients: ezio deploy (\S+) `)

// seed serves the image directory with `ezio seed` on loopback (its
// tracker and server on a port the kernel picks) until the test ends,
// and returns the URL a client deploys from (SERVER/images/NAME).
func seed(t *testing.T, dir string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := ezioCmd(t, ctx, "seed", dir, "--tracker-listen", "127.0.0.1:0", "--listen", "127.0.0.1:0", "--no-announce")
	var log disktest.SyncBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cancel()
			<-done
		}
		cancel()
	})
	deadline := time.Now().Add(time.Minute)
	for {
		if m := clientsLine.FindStringSubmatch(log.String()); m != nil {
			return m[1]
		}
		select {
		case <-done:
			t.Fatalf("ezio seed ended:\n%s", log.String())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("ezio seed did not say where clients deploy from:\n%s", log.String())
		}
	}
}

// deployResult is the result line of `ezio deploy --json`.
type deployResult struct {
	Type   string            `json:"type"`
	Result string            `json:"result"`
	Error  string            `json:"error"`
	Report *diskimage.Report `json:"report"`
}

// deploy is `ezio deploy SRC TARGET --yes --json` (and args); it must
// end verified.
func deploy(t *testing.T, src, target string, args ...string) *diskimage.Report {
	t.Helper()
	start := time.Now()
	code, stdout, stderr := ezio(t, append([]string{"deploy", src, target, "--yes", "--json", "--listen", "127.0.0.1:0", "--seed-after", "0"}, args...)...)
	var res deployResult
	for _, line := range strings.Split(stdout, "\n") {
		if strings.Contains(line, `"type":"result"`) {
			if err := json.Unmarshal([]byte(line), &res); err != nil {
				t.Fatalf("result line %s: %v", line, err)
			}
		}
	}
	if code != 0 || res.Result != "ok" || res.Report == nil {
		t.Fatalf("ezio deploy %s %s %v: exit %d, result %q %s\n%s\n%s", src, target, args, code, res.Result, res.Error, vmtest.Tail(stdout, 1500), vmtest.Tail(stderr, 2500))
	}
	for _, p := range res.Report.Partitions {
		if p.Fsck != nil && !p.Fsck.OK {
			t.Errorf("after the deploy, %s (%s) does not check clean: %+v", p.Node, p.Name, p.Fsck)
		}
	}
	t.Logf("deploy %v onto %s: %s", args, target, time.Since(start).Round(100*time.Millisecond))
	return res.Report
}

// loopDisk is a loop device over a new file of size bytes (sparse) in
// the test's directory, and that file, which QEMU boots.
type loopDisk struct{ dev, file string }

// blank is a blank loop disk; the partition nodes a deploy adds go
// before it is detached.
func blank(t *testing.T, size int64) loopDisk {
	t.Helper()
	file := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(file, size); err != nil {
		t.Fatal(err)
	}
	dev := disktest.Attach(t, file)
	t.Cleanup(func() { exec.Command("partx", "-d", dev).Run() })
	return loopDisk{dev: dev, file: file}
}

// partitioned is a loop disk with the table the sfdisk script gives,
// its partition nodes added with partx (the kernel here reads no
// tables).
func partitioned(t *testing.T, size int64, script string) loopDisk {
	t.Helper()
	d := blank(t, size)
	sf := exec.Command("sfdisk", "-q", "--no-reread", "--no-tell-kernel", d.dev)
	sf.Stdin = strings.NewReader(script)
	if out, err := sf.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk %s: %v\n%s", d.dev, err, out)
	}
	disktest.Run(t, "partx", "-a", d.dev)
	return d
}

// bootMarker is what the init of every test root prints last, after its
// facts, before it powers the machine off.
const bootMarker = "EZIO-DISKBOOT-INIT-UP"

var factLine = regexp.MustCompile(`(?m)^EZIO-FACT (\S+) (.*?)\r?$`)

// boot starts the disk's file in QEMU (BIOS or UEFI) until its init has
// printed the marker and powered off, and returns the facts it printed.
func boot(t *testing.T, d loopDisk, uefi bool) map[string]string {
	t.Helper()
	// Every write through the loop devices (and their partition nodes)
	// reaches the file QEMU reads.
	syscall.Sync()
	start := time.Now()
	con, err := vmtest.Boot{Disk: d.file, UEFI: uefi}.Run(t)
	if err != nil || !strings.Contains(con, bootMarker) {
		t.Fatalf("the disk did not boot to its init (%v); console:\n%s", err, vmtest.Tail(con, 4000))
	}
	facts := map[string]string{}
	for _, m := range factLine.FindAllStringSubmatch(con, -1) {
		facts[m[1]] = m[2]
	}
	t.Logf("booted (uefi %v) in %s: %v", uefi, time.Since(start).Round(100*time.Millisecond), facts)
	return facts
}

// fact is a fact the init printed, or a failure naming it.
func fact(t *testing.T, facts map[string]string, name string) string {
	t.Helper()
	v, ok := facts[name]
	if !ok {
		t.Errorf("the booted system printed no %s: %v", name, facts)
	}
	return v
}

// factBytes is a fact that is a byte count.
func factBytes(t *testing.T, facts map[string]string, name string) int64 {
	t.Helper()
	var n int64
	if v := fact(t, facts, name); v != "" {
		if _, err := fmt.Sscan(v, &n); err != nil {
			t.Errorf("%s is %q, not a number", name, v)
		}
	}
	return n
}
