package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"ezio/engine/discover/lantest"
)

// inNS runs ezio inside a network namespace.
func inNS(ctx context.Context, ns *lantest.NS, args ...string) *exec.Cmd {
	cmd := ns.Command(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), "EZIO_RUN_MAIN=1")
	return cmd
}

func followJSON(t *testing.T, cmd *exec.Cmd) *jsonRun {
	t.Helper()
	r := &jsonRun{cmd: cmd, lines: make(chan map[string]any, 10000), raw: &syncBuffer{}}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = r.raw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(r.lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				m["_at"] = time.Now()
				r.lines <- m
			}
		}
	}()
	return r
}

// TestLossyAndFlappingLinks: a server with a cable to each of two clients
// (network namespaces the test makes); one cable drops 5 % of the packets
// at random (nftables), the other goes down for 15 s mid-transfer. Both
// clients finish byte-identical, and the flapped one gets data again
// within 5 s of its link coming back.
func TestLossyAndFlappingLinks(t *testing.T) {
	lantest.Need(t, "nft:nftables")
	dir, _ := makeExtentDir(t, 48<<20, 4)
	tf := filepath.Join(t.TempDir(), "x.torrent")
	mustRun(t, ezio(context.Background(), "torrent", "create", dir, "-o", tf, "--name", "sda1", "--piece-length", "1MiB"))
	srv, lossy, flappy := lantest.TwoNetworks(t)
	var lossyDev, flappyDev string
	for dev, addr := range lossy.Addrs {
		lossyDev, _ = dev, addr
	}
	for dev := range flappy.Addrs {
		flappyDev = dev
	}
	// 5 % random loss on everything the lossy client receives.
	for _, rule := range [][]string{
		{"add", "table", "inet", "ezioloss"},
		{"add", "chain", "inet", "ezioloss", "in", "{ type filter hook input priority 0 ; }"},
		{"add", "rule", "inet", "ezioloss", "in", "iifname", lossyDev, "numgen", "random", "mod", "100", "<", "5", "drop"},
	} {
		if out, err := lossy.Command(context.Background(), "nft", rule...).CombinedOutput(); err != nil {
			t.Fatalf("nft %v: %v %s", rule, err, out)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	seed := inNS(ctx, srv, "seed", tf, dir, "--no-tracker", "--listen", "0.0.0.0:6881", "--upload-limit", "6MiB", "--no-announce")
	seedLog := &syncBuffer{}
	seed.Stdout, seed.Stderr = seedLog, seedLog
	if err := seed.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { seed.Process.Signal(os.Interrupt); seed.Wait() }()
	time.Sleep(time.Second)
	peerOf := func(client *lantest.NS) string {
		for _, a := range client.Addrs {
			return a[:len(a)-1] + "1:6881" // the server is .1 on each cable
		}
		return ""
	}
	start := func(ns *lantest.NS, target string) *jsonRun {
		return followJSON(t, inNS(ctx, ns, "deploy", tf, target, "--peer", peerOf(ns), "--yes", "--json", "--seed-after", "0"))
	}
	lossyImg, flappyImg := filepath.Join(t.TempDir(), "lossy.img"), filepath.Join(t.TempDir(), "flappy.img")
	rl, rf := start(lossy, lossyImg), start(flappy, flappyImg)
	lossyDone := make(chan map[string]any, 1)
	go func() {
		var last map[string]any
		for m := range rl.lines {
			last = m
		}
		lossyDone <- last
	}()
	var downAt, upAt, flowingAt time.Time
	var bytesAtUp float64
	for m := range rf.lines {
		rf.last = m
		at := m["_at"].(time.Time)
		switch {
		case downAt.IsZero() && num(m, "bytes_done") > 0.25*num(m, "bytes_total"):
			if out, err := flappy.Command(context.Background(), "ip", "link", "set", "dev", flappyDev, "down").CombinedOutput(); err != nil {
				t.Fatalf("link down: %v %s", err, out)
			}
			downAt = time.Now()
		case !downAt.IsZero() && upAt.IsZero() && time.Since(downAt) >= 15*time.Second:
			if out, err := flappy.Command(context.Background(), "ip", "link", "set", "dev", flappyDev, "up").CombinedOutput(); err != nil {
				t.Fatalf("link up: %v %s", err, out)
			}
			upAt = time.Now()
			bytesAtUp = num(m, "bytes_downloaded")
		case !upAt.IsZero() && flowingAt.IsZero() && num(m, "bytes_downloaded") > bytesAtUp:
			flowingAt = at
		}
	}
	if err := rf.cmd.Wait(); err != nil || rf.last["result"] != "ok" {
		t.Fatalf("flapped client: %v %v\n%s", err, rf.last, rf.raw.String())
	}
	last := <-lossyDone
	if err := rl.cmd.Wait(); err != nil || last["result"] != "ok" {
		t.Fatalf("lossy client: %v %v\n%s", err, last, rl.raw.String())
	}
	if upAt.IsZero() {
		t.Fatal("the flapped client finished before its link came back")
	}
	if flowingAt.IsZero() || flowingAt.Sub(upAt) > 5*time.Second {
		t.Errorf("data did not flow within 5 s of the link coming back (up %s, flowing %v)", upAt.Format("15:04:05.0"), flowingAt)
	}
	t.Logf("flap: data again %.1fs after the link came back; lossy client %.1fs in all", flowingAt.Sub(upAt).Seconds(), num(last, "seconds"))
	sameExtents(t, dir, lossyImg)
	sameExtents(t, dir, flappyImg)
}
