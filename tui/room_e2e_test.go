package tui

// A room run end to end with the real binary: the wizard serves in one
// network namespace and announces itself by mDNS; clients in another
// find it with `ezio deploy auto:NAME` (nobody types an address), write
// loop devices and run their --then action; the wizard's seeder, told the
// room has two clients and to stop when it is done, ends by itself. The
// same flow from the command line alone is TestRoomEndsByItself and
// TestServersAndDeployAutoInNamespaces (package main). All multicast
// stays on the veth pair the test makes.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"ezio/disks/disktest"
)

var lanSeq int

// wroomLAN makes two namespaces joined by a veth pair with multicast
// (server 10.79.1.1, client 10.79.1.2), named with "wroom" and this
// process's PID; removed when the test ends.
func wroomLAN(t *testing.T) (server, client string) {
	t.Helper()
	pid := os.Getpid()
	lanSeq++
	server, client = fmt.Sprintf("wroom%d-%ds", pid, lanSeq), fmt.Sprintf("wroom%d-%dc", pid, lanSeq)
	ip := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	for _, ns := range []string{server, client} {
		ip("netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "delete", ns).Run() })
		ip("-n", ns, "link", "set", "lo", "up")
	}
	da, db := fmt.Sprintf("wr%d-%ds", pid%100000, lanSeq), fmt.Sprintf("wr%d-%dc", pid%100000, lanSeq)
	ip("link", "add", da, "netns", server, "type", "veth", "peer", "name", db, "netns", client)
	for _, side := range []struct{ ns, dev, addr string }{{server, da, "10.79.1.1"}, {client, db, "10.79.1.2"}} {
		ip("-n", side.ns, "addr", "add", side.addr+"/24", "brd", "+", "dev", side.dev)
		ip("-n", side.ns, "link", "set", "dev", side.dev, "multicast", "on")
		ip("-n", side.ns, "link", "set", "dev", side.dev, "up")
		ip("-n", side.ns, "route", "add", "224.0.0.0/4", "dev", side.dev)
	}
	return server, client
}

// roomImage writes an image of two extents at unaligned offsets into
// work/sdw1 and its torrent, work/sdw1.torrent.
func roomImage(t *testing.T, bin, work string) (img, tor string, extents map[int64][]byte) {
	t.Helper()
	img = filepath.Join(work, "sdw1")
	os.Mkdir(img, 0o755)
	extents = map[int64][]byte{0x100000 + 512: make([]byte, 3<<20+333), 0x600000: make([]byte, 2<<20)}
	for off, data := range extents {
		rand.Read(data)
		if err := os.WriteFile(filepath.Join(img, fmt.Sprintf("%032x", off)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tor = filepath.Join(work, "sdw1.torrent")
	if out, err := exec.Command(bin, "torrent", "create", img, "-o", tor, "--name", "sdw1", "--piece-length", "256KiB").CombinedOutput(); err != nil {
		t.Fatalf("torrent create: %v\n%s", err, out)
	}
	return img, tor, extents
}

// sameBytes fails unless dev holds every extent at its offset.
func sameBytes(t *testing.T, who, dev string, extents map[int64][]byte) {
	t.Helper()
	f, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for off, data := range extents {
		got := make([]byte, len(data))
		if _, err := f.ReadAt(got, off); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("%s: extent at %#x differs on %s", who, off, dev)
		}
	}
}

// powerStandIn is a program for EZIO_POWER_COMMAND that records each call
// in the returned file instead of rebooting anything.
func powerStandIn(t *testing.T, work string) (script, record string) {
	record = filepath.Join(work, "power.log")
	script = filepath.Join(work, "power.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$@\" >> "+record+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return script, record
}

func TestE2ERoomFoundByMDNSEndsByItself(t *testing.T) {
	need(t, true, "tmux", "go", "ip", "losetup")
	bin := ezioBinary(t)
	work := t.TempDir()
	serverNS, clientNS := wroomLAN(t)

	img, tor, extents := roomImage(t, bin, work)

	// The wizard serves in its namespace: every interface, the tracker,
	// a room of 2, announced, stop when the room is done.
	wizardCmd := fmt.Sprintf("ip netns exec %s %s --log-file %s; echo EXIT=$?", serverNS, bin, filepath.Join(work, "wizard.log"))
	s := startTmux(t, work, "sh", "-c", wizardCmd)
	s.waitText("What do you want to do?", 30*time.Second)
	s.send("s")
	s.waitText("Torrent file", 10*time.Second)
	s.sendText(tor)
	s.send("Enter")
	// The form moves to the next field a message later: text typed
	// before that lands in the field just left (seen once on a loaded CI
	// machine), so wait for the focus bar.
	s.waitText("| Image data", 10*time.Second)
	s.sendText(img)
	s.send("Enter")
	s.waitText("Serve on", 10*time.Second)
	s.send("Enter") // every interface
	s.send("Enter") // port 6969
	s.send("Enter") // the tracker: yes
	s.waitText("| Clients expected", 10*time.Second)
	s.sendText("2")
	s.send("Enter")
	s.send("Enter") // no upload limit
	s.waitText("Check the whole source first?", 10*time.Second)
	s.send("y") // hash it all before serving
	s.waitText("Announce this server on the LAN?", 10*time.Second)
	s.send("Enter") // yes
	s.waitText("Stop serving when the room is done?", 10*time.Second)
	s.send("y")
	scr := s.waitText("clients: ezio deploy auto:sdw1 /dev/sdX --yes", 30*time.Second)
	asciiScreen(t, scr)

	// Two clients, nothing but the image's name: they find the server by
	// mDNS, write their loop devices, and --then exit runs no power
	// command (the stand-in would record it).
	script, record := powerStandIn(t, work)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	type client struct {
		dev string
		cmd *exec.Cmd
		out bytes.Buffer
	}
	var clients []*client
	for i := range 2 {
		c := &client{dev: disktest.NewLoop(t, 12<<20, nil)}
		c.cmd = exec.CommandContext(ctx, "ip", "netns", "exec", clientNS, bin, "deploy", "auto:sdw1", c.dev,
			"--yes", "--json", "--then", "exit", "--listen", fmt.Sprintf(":%d", 7101+i))
		c.cmd.Env = append(os.Environ(), "EZIO_POWER_COMMAND="+script)
		c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
		if err := c.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	for i, c := range clients {
		err := c.cmd.Wait()
		if code := c.cmd.ProcessState.ExitCode(); err != nil || code != 0 {
			t.Fatalf("client %d: exit %d (%v)\n%s\nwizard:\n%s", i, code, err, c.out.String(), s.capture())
		}
		// The last JSON line is the result object.
		lines := strings.Split(strings.TrimSpace(c.out.String()), "\n")
		var res map[string]any
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil || res["result"] != "ok" {
			t.Errorf("client %d result %v (%v):\n%s", i, res, err, c.out.String())
		}
		sameBytes(t, fmt.Sprintf("client %d", i), c.dev, extents)
	}
	if b, err := os.ReadFile(record); err == nil {
		t.Errorf("--then exit ran the power command: %s", b)
	}

	// The wizard's seeder ends by itself once the room is done.
	scr = s.waitText("Completed", 60*time.Second)
	if !strings.Contains(scr, "2 of 2 clients done") {
		t.Errorf("the result does not count the room:\n%s", scr)
	}
	asciiScreen(t, scr)
	s.send("Enter")
	s.waitText("What do you want to do?", 10*time.Second)
	s.send("q")
	s.waitText("EXIT=0", 20*time.Second)
}

// On the console alone, every program in its own tmux window at 80x24:
// `ezio seed --expect 2 --exit-when-done` announced by mDNS, two clients
// `ezio deploy auto:sdw1 DEV --yes --then exit`; all three end by
// themselves with exit status 0, and the devices hold the image.
func TestE2ERoomOnTheConsole(t *testing.T) {
	need(t, true, "tmux", "go", "ip", "losetup")
	bin := ezioBinary(t)
	work := t.TempDir()
	serverNS, clientNS := wroomLAN(t)
	img, tor, extents := roomImage(t, bin, work)
	script, record := powerStandIn(t, work)

	seed := startTmux(t, work, "sh", "-c", fmt.Sprintf("ip netns exec %s %s seed %s %s --expect 2 --exit-when-done --log-file %s; echo EXIT=$?",
		serverNS, bin, tor, img, filepath.Join(work, "seed.log")))
	seed.waitText("auto:sdw1", 30*time.Second)
	var devs []string
	var panes []*tmuxSession
	for i := range 2 {
		dev := disktest.NewLoop(t, 12<<20, nil)
		devs = append(devs, dev)
		panes = append(panes, startTmux(t, work, "sh", "-c", fmt.Sprintf("EZIO_POWER_COMMAND=%s ip netns exec %s %s deploy auto:sdw1 %s --yes --then exit --listen :%d --log-file %s; echo EXIT=$?",
			script, clientNS, bin, dev, 7201+i, filepath.Join(work, fmt.Sprintf("client%d.log", i)))))
	}
	exited := regexp.MustCompile(`EXIT=(\d+)`)
	for i, p := range append(panes, seed) {
		scr := p.waitFor("the program to end", 90*time.Second, func(scr string) bool { return exited.MatchString(scr) })
		if m := exited.FindStringSubmatch(scr); m[1] != "0" {
			t.Errorf("window %d ended with exit status %s:\n%s", i, m[1], scr)
		}
		asciiScreen(t, scr)
	}
	for i, dev := range devs {
		sameBytes(t, fmt.Sprintf("client %d", i), dev, extents)
	}
	if b, err := os.ReadFile(record); err == nil {
		t.Errorf("--then exit ran the power command: %s", b)
	}
	if log, _ := os.ReadFile(filepath.Join(work, "seed.log")); !strings.Contains(seed.capture()+string(log), "room is done") {
		t.Errorf("the seeder did not say the room is done:\n%s", seed.capture())
	}
}
