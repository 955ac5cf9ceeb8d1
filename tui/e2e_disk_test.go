package tui

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ezio/disks/disktest"
)

// TestE2EDeployDiskImage: the real binary in tmux on the console deploys a
// whole-disk image (a GPT loop disk with two ext4 partitions, captured
// with `ezio capture` and served by `ezio seed DIR/NAME`) onto a blank
// loop disk: the image list says it is a disk, the target table lists
// disks, the summary names what is written, the name is typed, the
// disk's dashboard ends verified. Then the table is the source's, each
// filesystem is clean and every file is equal, and the action chosen on
// the summary (reboot) ran, through EZIO_POWER_COMMAND, after the deploy.
func TestE2EDeployDiskImage(t *testing.T) {
	need(t, true, "tmux", "go", "losetup", "sfdisk", "partx", "mkfs.ext4", "debugfs", "e2fsck", "partclone.extfs")
	bin := ezioBinary(t)
	work := t.TempDir()

	// The source disk: GPT, two ext4 partitions with files.
	src := disktest.PartitionedLoop(t, 64<<20, "label: gpt\nstart=2048, size=24MiB, type=0FC63DAF-8483-4772-8E79-3D69E4C47D47\ntype=0FC63DAF-8483-4772-8E79-3D69E4C47D47\n")
	files := []map[string][]byte{{"a.bin": make([]byte, 700<<10), "a.txt": []byte("first\n")}, {"b.bin": make([]byte, 1<<20+77)}}
	for i, fs := range files {
		dir := t.TempDir()
		for name, data := range fs {
			if strings.HasSuffix(name, ".bin") {
				rand.Read(data)
			}
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		disktest.Run(t, "mkfs.ext4", "-q", "-F", "-d", dir, fmt.Sprintf("%sp%d", src, i+1))
	}
	images := filepath.Join(work, "images")
	if out, err := exec.Command(bin, "capture", src, images, "--name", "e2edisk", "--log-file", filepath.Join(work, "capture.log")).CombinedOutput(); err != nil {
		t.Fatalf("ezio capture: %v\n%s", err, out)
	}
	trackerPort := disktest.FreePort(t)
	seed := exec.Command(bin, "seed", filepath.Join(images, "e2edisk"), "--tracker-listen", fmt.Sprintf("127.0.0.1:%d", trackerPort),
		"--listen", "127.0.0.1:0", "--log-file", filepath.Join(work, "seed.log"))
	if err := seed.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { seed.Process.Kill(); seed.Wait() })

	target := disktest.NewLoop(t, 64<<20, nil)
	t.Cleanup(func() { exec.Command("partx", "-d", target).Run() })
	// Never the real thing: a script that records what it was asked.
	calls := filepath.Join(work, "power-calls")
	power := filepath.Join(work, "power")
	if err := os.WriteFile(power, []byte("#!/bin/sh\necho \"$@\" >> "+calls+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}

	s := startTmux(t, work, "env", "EZIO_POWER_COMMAND="+power, bin, "--log-file", filepath.Join(work, "wizard.log"), "--listen", "127.0.0.1:0")
	s.waitText("What do you want to do?", 30*time.Second)
	s.send("d")
	s.waitText("Where is the image?", 10*time.Second)
	s.sendText(fmt.Sprintf("127.0.0.1:%d", trackerPort))
	s.send("Enter")
	scr := s.waitText("Which image?", 20*time.Second)
	if !strings.Contains(scr, "disk e2edisk") || !strings.Contains(scr, "2 partitions") {
		t.Errorf("the image list does not say it is a disk image:\n%s", scr)
	}
	s.send("Enter")
	scr = s.waitText("Which whole disk", 30*time.Second)
	if strings.Contains(scr, filepath.Base(src)+"p1") {
		t.Errorf("partitions listed as targets of a disk image:\n%s", scr)
	}
	selectRow(s, target)
	s.send("Enter")
	scr = s.waitText("Type "+filepath.Base(target), 20*time.Second)
	for _, want := range []string{"now: no partition table", "written:", "ext4", "disk e2edisk, GPT partition table, 2 partitions"} {
		if !strings.Contains(scr, want) {
			t.Errorf("summary lacks %q:\n%s", want, scr)
		}
	}
	if _, err := os.Stat(calls); err == nil {
		t.Fatal("the power command ran before the deploy")
	}
	s.send("Tab") // then: reboot
	s.waitText("then      reboot", 5*time.Second)
	s.sendText(filepath.Base(target))
	s.send("Enter")
	scr = s.waitText("Completed: every partition verified", 120*time.Second)
	for _, want := range []string{"fsck clean", "verified"} {
		if !strings.Contains(scr, want) {
			t.Errorf("result lacks %q:\n%s", want, scr)
		}
	}
	asciiScreen(t, scr)
	s.waitText("Done: reboot this machine", 10*time.Second)
	b, err := os.ReadFile(calls)
	if err != nil || strings.TrimSpace(string(b)) != "reboot" {
		t.Errorf("power command calls: %q, %v; want one \"reboot\"", b, err)
	}

	// The disk: the same table, clean filesystems, the same files.
	dump := func(dev string) string {
		var out []string
		for _, l := range strings.Split(disktest.Run(t, "sfdisk", "--dump", dev), "\n") {
			if !strings.HasPrefix(l, "device:") {
				out = append(out, strings.ReplaceAll(l, dev, "DISK"))
			}
		}
		return strings.Join(out, "\n")
	}
	if got, want := dump(target), dump(src); got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
	for i, fs := range files {
		node := fmt.Sprintf("%sp%d", target, i+1)
		if out, err := exec.Command("e2fsck", "-fn", node).CombinedOutput(); err != nil {
			t.Errorf("e2fsck -fn %s: %v\n%s", node, err, out)
		}
		for name, want := range fs {
			got, err := exec.Command("debugfs", "-R", "cat /"+name, node).Output()
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s on %s: %d bytes, differ from the %d written (%v)", name, node, len(got), len(want), err)
			}
		}
	}
	s.send("Enter")
	s.waitText("What do you want to do?", 10*time.Second)
	s.send("q")
}
