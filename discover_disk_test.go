package main

// The room of the README, with a whole-disk image: `ezio seed IMAGE-DIR
// --expect 1 --exit-when-done` in one namespace, `ezio deploy auto DISK
// --yes --then poweroff` in another, nobody typing an address; the client
// finds the disk image, writes it, "powers off" (a stand-in program), and
// the seeder ends by itself.

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ezio/disks/disktest"
	"ezio/disks/table"
	"ezio/engine/discover/lantest"
)

func TestDiskRoomAutoInNamespaces(t *testing.T) {
	lantest.Need(t)
	disktest.Need(t, true, "sfdisk", "partx", "mkfs.ext4", "debugfs", "partclone.extfs")
	seederNS, clientNS := lantest.Pair(t)
	work := t.TempDir()

	// A 32 MiB MBR disk with one ext4 partition holding a file.
	src := disktest.PartitionedLoop(t, 32<<20, "label: dos\nstart=2048, type=83\n")
	node, err := table.PartitionNode(src, 1)
	if err != nil {
		t.Fatal(err)
	}
	files := filepath.Join(work, "files")
	os.Mkdir(files, 0o755)
	data := bytes.Repeat([]byte("a room of disks\n"), 1<<16)
	if err := os.WriteFile(filepath.Join(files, "f"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	disktest.Run(t, "mkfs.ext4", "-q", "-F", "-d", files, node)
	images := filepath.Join(work, "images")
	mustRun(t, ezio(context.Background(), "capture", src, images, "--name", "lab"))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	seed := ezioIn(ctx, seederNS, "seed", filepath.Join(images, "lab"), "--listen", ":7031", "--tracker-listen", ":7032",
		"--expect", "1", "--exit-when-done")
	var seedLog bytes.Buffer
	seed.Stdout, seed.Stderr = &seedLog, &seedLog
	if err := seed.Start(); err != nil {
		t.Fatal(err)
	}
	seedDone := make(chan struct{})
	var seedErr error
	go func() { seedErr = seed.Wait(); close(seedDone) }()
	t.Cleanup(func() {
		select {
		case <-seedDone:
			return
		default:
		}
		seed.Process.Signal(os.Interrupt)
		select {
		case <-seedDone:
		case <-time.After(10 * time.Second):
			seed.Process.Kill()
			<-seedDone
		}
	})

	target := disktest.NewLoop(t, 32<<20, nil)
	t.Cleanup(func() { exec.Command("partx", "-d", target).Run() })
	record := filepath.Join(work, "power.log")
	script := filepath.Join(work, "power.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$@\" >> "+record+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// The seeder may not be announced yet: a client that finds no server
	// exits 3 (retry), as a room's boot script would retry it.
	var out []byte
	for attempt := 1; ; attempt++ {
		client := ezioIn(ctx, clientNS, "deploy", "auto", target, "--yes", "--then", "poweroff", "--listen", ":7033")
		client.Env = append(client.Env, "EZIO_POWER_COMMAND="+script)
		out, err = client.CombinedOutput()
		if code := exitCode(err); code != 3 || attempt == 5 {
			if code != 0 {
				t.Fatalf("deploy auto: exit %d\n%s\nseeder:\n%s", code, out, seedLog.String())
			}
			break
		}
		time.Sleep(time.Second)
	}
	if !strings.Contains(string(out), "whole-disk image") {
		t.Errorf("the client did not say it found a whole-disk image:\n%s", out)
	}
	if b, _ := os.ReadFile(record); strings.TrimSpace(string(b)) != "poweroff" {
		t.Errorf("the power command was called with %q, want poweroff once", b)
	}
	select {
	case <-seedDone:
		if err := seedErr; exitCode(err) != 0 || !strings.Contains(seedLog.String(), "the room is done: 1 clients completed") {
			t.Errorf("seeder: %v, want exit 0 saying the room is done\n%s", err, seedLog.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("the seeder did not stop by itself within a minute of the room being done\n%s", seedLog.String())
	}
	tnode, err := table.PartitionNode(target, 1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := exec.Command("debugfs", "-R", "cat /f", tnode).Output()
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("the file on the deployed disk: %d bytes (%v), want the %d written", len(got), err, len(data))
	}
}
