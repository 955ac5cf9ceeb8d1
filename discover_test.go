package main

// Finding the server with no address typed, end to end: `ezio seed` in
// one network namespace announces itself, and in another `ezio servers
// --json` lists it and `ezio deploy auto:NAME` writes the image. The mDNS
// traffic never leaves the namespaces the test makes (lantest).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ezio/engine"
	"ezio/engine/discover"
	"ezio/engine/discover/lantest"
)

// ezioIn runs ezio (this test binary as ezio) inside a namespace.
func ezioIn(ctx context.Context, ns *lantest.NS, args ...string) *exec.Cmd {
	cmd := ns.Command(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), "EZIO_RUN_MAIN=1")
	return cmd
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func TestServersAndDeployAutoInNamespaces(t *testing.T) {
	lantest.Need(t)
	seederNS, clientNS := lantest.Pair(t)
	seederIP := seederNS.Addrs[firstAddrKey(seederNS.Addrs)]

	dir, _ := makeExtentDir(t, 2<<20, 2)
	tf := filepath.Join(t.TempDir(), "sda1.torrent")
	mustRun(t, ezio(context.Background(), "torrent", "create", dir, "-o", tf, "--name", "sda1", "--piece-length", "256KiB"))

	// The seeder listens on every address of its machine, as by default.
	seed := ezioIn(context.Background(), seederNS, "seed", tf, dir, "--listen", ":7011", "--tracker-listen", ":7012")
	var seedLog bytes.Buffer
	seed.Stdout, seed.Stderr = &seedLog, &seedLog
	if err := seed.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		seed.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { seed.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			seed.Process.Kill()
			<-done
		}
	})

	// ezio servers --json, until the seeder is up (bounded).
	var found []discover.Server
	deadline := time.Now().Add(40 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := ezioIn(ctx, clientNS, "servers", "--json", "--timeout", "2s").Output()
		cancel()
		if err == nil {
			if err := json.Unmarshal(out, &found); err != nil {
				t.Fatalf("servers --json printed %q: %v", out, err)
			}
			break
		}
		if code := exitCode(err); code != 3 {
			t.Fatalf("ezio servers exited %d (%v), want 0 or 3 (none yet)", code, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("ezio servers found nothing in 40 s; seeder said:\n%s", seedLog.String())
		}
	}
	if len(found) != 1 {
		t.Fatalf("servers found %+v, want the one seeder", found)
	}
	s := found[0]
	if s.BaseURL != "http://"+seederIP+":7012" || s.Version != engine.Version || strings.Join(s.Images, ",") != "sda1" || !strings.HasPrefix(s.Name, "ezio on ") {
		t.Errorf("servers listed %+v, want ezio on ... at http://%s:7012 with sda1, version %s", s, seederIP, engine.Version)
	}

	// Deploy with no address: auto:sda1, then plain auto (one server, one image).
	for _, spec := range []string{"auto:sda1", "auto"} {
		target := filepath.Join(t.TempDir(), "t.img")
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		out, err := ezioIn(ctx, clientNS, "deploy", spec, target, "--yes", "--listen", ":7013").CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("deploy %s: %v\n%s\nseeder:\n%s", spec, err, out, seedLog.String())
		}
		sameExtents(t, dir, target)
	}

	// An image nobody offers is refused (2), not retried.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := ezioIn(ctx, clientNS, "deploy", "auto:sdz9", filepath.Join(t.TempDir(), "u.img"), "--yes").CombinedOutput()
	if code := exitCode(err); code != 2 || !strings.Contains(string(out), "no server on this network offers the image sdz9") {
		t.Errorf("deploy auto:sdz9 exited %d:\n%s", code, out)
	}
}

// With nobody announcing, a client says so and exits 3 (unreachable: retry).
func TestDeployAutoWithoutServerIsUnreachable(t *testing.T) {
	lantest.Need(t)
	_, clientNS := lantest.Pair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	target := filepath.Join(t.TempDir(), "t.img")
	out, err := ezioIn(ctx, clientNS, "deploy", "auto", target, "--yes").CombinedOutput()
	if code := exitCode(err); code != 3 || !strings.Contains(string(out), discover.ErrNoServer.Error()) {
		t.Errorf("deploy auto with no server exited %d:\n%s", code, out)
	}
	if _, err := os.Stat(target); err == nil {
		t.Errorf("deploy with no server created %s", target)
	}
	out, err = ezioIn(ctx, clientNS, "servers", "--timeout", "1s").CombinedOutput()
	if code := exitCode(err); code != 3 || !strings.Contains(string(out), "no server found") {
		t.Errorf("servers with no server exited %d:\n%s", code, out)
	}
}

// A seeder with --no-announce is not found.
func TestSeedNoAnnounce(t *testing.T) {
	lantest.Need(t)
	seederNS, clientNS := lantest.Pair(t)
	dir, _ := makeExtentDir(t, 1<<20, 1)
	tf := filepath.Join(t.TempDir(), "sda1.torrent")
	mustRun(t, ezio(context.Background(), "torrent", "create", dir, "-o", tf, "--name", "sda1", "--piece-length", "256KiB"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seed := ezioIn(ctx, seederNS, "seed", tf, dir, "--listen", ":7011", "--tracker-listen", ":7012", "--no-announce")
	if err := seed.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { seed.Process.Signal(os.Interrupt); seed.Wait() }()
	// The server is up (its torrent is served) before we look.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if exitCode(ezioIn(ctx, clientNS, "torrent", "info", "http://10.77.1.1:7012/torrents/sda1.torrent").Run()) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("seeder did not come up in 30 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	out, err := ezioIn(ctx, clientNS, "servers", "--json", "--timeout", "2s").CombinedOutput()
	if code := exitCode(err); code != 3 {
		t.Errorf("servers found a seeder started with --no-announce (exit %d):\n%s", code, out)
	}
}

func firstAddrKey(m map[string]string) string {
	for k := range m {
		return k
	}
	return ""
}
