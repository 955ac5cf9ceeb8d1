package cli

// Tests of --hostname and --then-run: a Linux root deployed to three
// clients of one room gets three names and empty machine-ids; a script
// of the image runs with the root mounted and the facts in its
// environment; a failing script is exit 1 with its output.

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ezio/disks/disktest"
	"ezio/disks/table"
	"ezio/engine"
)

// mcLinuxRoot is a loop disk whose second partition is an ext4 Linux
// root (os-release, hostname "master", hosts, a machine-id); its hosts
// file is an absolute symlink, which must resolve inside the root.
func mcLinuxRoot(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"etc/os-release":  "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n",
		"etc/hostname":    "master\n",
		"etc/hosts.d/all": "127.0.0.1\tlocalhost\n127.0.1.1\tmaster\n::1\tlocalhost\n",
		"etc/machine-id":  "0123456789abcdef0123456789abcdef\n",
	}
	for name, data := range files {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/etc/hosts.d/all", filepath.Join(dir, "etc/hosts")); err != nil {
		t.Fatal(err)
	}
	parts := []dkPart{
		{size: "8MiB", typ: "0FC63DAF-8483-4772-8E79-3D69E4C47D47", fs: "ext2", files: map[string][]byte{"vmlinuz": []byte("boot\n")}},
		{typ: "0FC63DAF-8483-4772-8E79-3D69E4C47D47"},
	}
	src, nodes := dkDisk(t, 40<<20, "gpt", parts)
	disktest.Run(t, "mkfs.ext4", "-q", "-F", "-d", dir, nodes[1])
	return src
}

// mcCat is a file of the deployed root, read without mounting.
func mcCat(t *testing.T, target, name string) string {
	t.Helper()
	node, err := table.PartitionNode(target, 2)
	if err != nil {
		t.Fatal(err)
	}
	return string(dkOut(t, "debugfs", "-R", "cat /"+name, node))
}

// TestDiskHostnameRoom: three clients of one room deploy with
// --hostname lab-{n} --then-run post.sh: names lab-1, lab-2 and lab-3
// (one each), each root's hosts line follows, every machine-id is empty,
// and the script saw the mounted root and its facts.
func TestDiskHostnameRoom(t *testing.T) {
	dkNeed(t, "debugfs:e2fsprogs", "mkfs.ext4:e2fsprogs")
	dir := dkCaptureDisk(t, mcLinuxRoot(t), t.TempDir(), "lab")
	post := "#!/bin/sh\n[ -n \"$EZIO_ROOT\" ] || exit 9\necho \"post: $EZIO_HOSTNAME on $EZIO_TARGET\"\ntest -f \"$EZIO_ROOT/etc/os-release\" || exit 7\nenv | grep '^EZIO_' | sort > \"$EZIO_ROOT/etc/ezio-post.env\"\n"
	if err := os.WriteFile(filepath.Join(dir, "post.sh"), []byte(post), 0o644); err != nil {
		t.Fatal(err)
	}
	var seedLog disktest.SyncBuffer
	seed, err := SeedDiskImage(context.Background(), dir, DiskSeedOptions{TrackerListen: fmt.Sprintf("127.0.0.1:%d", disktest.FreePort(t)), Tuning: engine.Tuning{ListenAddr: "127.0.0.1:0"},
		Logger: slog.New(slog.NewTextHandler(&seedLog, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(seed.Stop)
	url := seed.Server.BaseURL() + "/images/lab"
	targets := []string{dkBlank(t, 40<<20), dkBlank(t, 40<<20), dkBlank(t, 40<<20)}
	errs := make(chan error, len(targets))
	for _, target := range targets {
		go func() {
			code, res, out := grDeploy(t, url, target, "--hostname", "lab-{n}", "--then-run", "post.sh", "--seed-after", "0")
			if code != 0 || res.Result != "ok" {
				errs <- fmt.Errorf("deploy onto %s: exit %d\n%s", target, code, out)
				return
			}
			errs <- nil
		}()
	}
	for range targets {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if t.Failed() {
		return
	}
	names := map[string]string{}
	for _, target := range targets {
		name := strings.TrimSpace(mcCat(t, target, "etc/hostname"))
		if other, ok := names[name]; ok {
			t.Errorf("%s and %s are both named %q", other, target, name)
		}
		names[name] = target
		if hosts := mcCat(t, target, "etc/hosts.d/all"); !strings.Contains(hosts, "127.0.1.1\t"+name+"\n") || strings.Contains(hosts, "master") || !strings.Contains(hosts, "::1") {
			t.Errorf("%s: /etc/hosts (a link to /etc/hosts.d/all):\n%s", target, hosts)
		}
		if id := mcCat(t, target, "etc/machine-id"); id != "" {
			t.Errorf("%s: machine-id %q, want empty", target, id)
		}
		env := mcCat(t, target, "etc/ezio-post.env")
		for _, want := range []string{"EZIO_TARGET=" + target + "\n", "EZIO_HOSTNAME=" + name + "\n", "EZIO_IMAGE=lab\n", "EZIO_PART2=", "EZIO_ROOT=", "EZIO_PARTITIONS=1:" + target + "p1:ext2:"} {
			if !strings.Contains(env, want) {
				t.Errorf("%s: the script's environment lacks %q:\n%s", target, want, env)
			}
		}
	}
	for _, want := range []string{"lab-1", "lab-2", "lab-3"} {
		if names[want] == "" {
			t.Errorf("no client is named %s: %v", want, names)
		}
		// Each script's output reached the seeder's log too.
		if line := "post: " + want + " on " + names[want]; !strings.Contains(seedLog.String(), line) {
			t.Errorf("the seeder's log lacks %q:\n%s", line, seedLog.String())
		}
	}
	if _, err := os.Stat("/etc/hosts.d/all"); err == nil {
		t.Errorf("/etc/hosts.d/all exists on this machine: was the deployed root's link followed out of it?")
	}
}

// TestDiskThenRunFails: a script that fails makes the deploy exit 1 with
// its output, and the deployed data is still there and verified; a
// hostname pattern with {n} and no server, and a script the image lacks,
// are refused before anything is written.
func TestDiskThenRunFails(t *testing.T) {
	dkNeed(t, "debugfs:e2fsprogs", "mkfs.ext4:e2fsprogs")
	dir := dkCaptureDisk(t, mcLinuxRoot(t), t.TempDir(), "fails")
	if err := os.WriteFile(filepath.Join(dir, "fail.sh"), []byte("echo \"boom on $EZIO_TARGET\"\nexit 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	target := dkBlank(t, 40<<20)
	code, res, out := grDeploy(t, dir, target, "--then-run", "fail.sh", "--hostname", "pc-{mac}")
	if code != ExitFailed || res.Result != "failed" {
		t.Fatalf("exit %d (%s), want 1\n%s", code, res.Result, out)
	}
	for _, want := range []string{"boom on " + target, "exit 3", "stays verified"} {
		if !strings.Contains(out, want) {
			t.Errorf("the failure does not say %q:\n%s", want, out)
		}
	}
	if res.Report == nil || len(res.Report.Partitions) != 2 || res.Report.Partitions[1].Fsck == nil || !res.Report.Partitions[1].Fsck.OK {
		t.Errorf("no clean report for the verified data: %+v", res.Report)
	}
	if name := strings.TrimSpace(mcCat(t, target, "etc/hostname")); !strings.HasPrefix(name, "pc-") || len(name) != 15 {
		t.Errorf("hostname %q, want pc- and 12 hex digits of the MAC", name)
	}
	for _, c := range [][]string{{"--hostname", "lab-{n}"}, {"--then-run", "missing.sh"}, {"--hostname", "x-{colour}"}} {
		blank := dkBlank(t, 40<<20)
		before := disktest.Sum(t, blank)
		code, _, out := grDeploy(t, append([]string{dir, blank}, c...)...)
		if code != ExitRefused || disktest.Sum(t, blank) != before {
			t.Errorf("%v: exit %d, want %d with nothing written\n%s", c, code, ExitRefused, out)
		}
	}
}
