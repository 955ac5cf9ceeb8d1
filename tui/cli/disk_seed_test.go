package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ezio/disks/disktest"
	"ezio/engine"
)

// TestDiskDeploySeedsAfter: a disk deploy with default flags keeps serving
// another client that still needs pieces (the second client's only peer
// is the first, so it completes only with data the first uploaded, much of
// it after the first was verified), and with --seed-after 0 the first
// leaves as soon as it is verified, the second still short of data.
func TestDiskDeploySeedsAfter(t *testing.T) {
	dkNeed(t, "debugfs:e2fsprogs")
	parts := []dkPart{
		{typ: "83", size: "20MiB", fs: "ext4", files: map[string][]byte{"f": dkRandom(21, 1<<20)}},
		{typ: "83", fs: "ext4", files: map[string][]byte{"g": dkRandom(22, 1<<20)}},
	}
	src, _ := dkDisk(t, 48<<20, "dos", parts)
	dir := dkCaptureDisk(t, src, t.TempDir(), "after")
	// A slow seeder, so that the second client is still behind when the
	// first one is verified.
	seed, err := SeedDiskImage(context.Background(), dir, DiskSeedOptions{TrackerListen: fmt.Sprintf("127.0.0.1:%d", disktest.FreePort(t)),
		Tuning: engine.Tuning{ListenAddr: "127.0.0.1:0", MaxUploadRate: 2 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(seed.Stop)
	url := seed.Server.BaseURL() + "/images/after"
	meta := dkMetadataOnly(t, dir)

	type result struct {
		code     int
		out, err string
		at       time.Time
	}
	runBoth := func(t *testing.T, firstFlags ...string) (first, second result) {
		targetA, targetB := dkBlank(t, 48<<20), dkBlank(t, 48<<20)
		portA := disktest.FreePort(t)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		resA, resB := make(chan result, 1), make(chan result, 1)
		go func() {
			var out, errb capBuffer
			args := append([]string{"deploy", url, targetA, "--yes", "--json", "--listen", fmt.Sprintf("127.0.0.1:%d", portA)}, firstFlags...)
			code, _ := capExec(ctx, t, &out, &errb, args...)
			resA <- result{code, out.String(), errb.String(), time.Now()}
		}()
		go func() {
			// Behind the first client: a copy of the image without its
			// extents for the table and torrents, its data from the
			// first client (and
			// whatever peers it learns of from it).
			time.Sleep(1500 * time.Millisecond)
			var out, errb capBuffer
			code, _ := capExec(ctx, t, &out, &errb, "deploy", meta, targetB, "--yes", "--json", "--listen", "127.0.0.1:0",
				"--peer", fmt.Sprintf("127.0.0.1:%d", portA), "--seed-after", "0")
			resB <- result{code, out.String(), errb.String(), time.Now()}
		}()
		first = <-resA
		second = <-resB
		cancel()
		return first, second
	}

	seederSent := func() int64 {
		var n int64
		for _, j := range seed.Jobs {
			n += j.Snapshot().BytesUploaded
		}
		return n
	}
	t.Run("default keeps serving", func(t *testing.T) {
		sent0 := seederSent()
		a, b := runBoth(t)
		if a.code != 0 {
			t.Fatalf("first client: exit %d\n%s\n%s", a.code, capTail(a.out), capTail(a.err))
		}
		if !strings.Contains(a.out, `"phase":"seeding"`) {
			t.Errorf("the first client never reported serving others after it was verified:\n%s", capTail(a.out))
		}
		if b.code != 0 || !strings.Contains(b.out, `"result":"ok"`) {
			t.Fatalf("second client (fed by the first only): exit %d\n%s\n%s", b.code, capTail(b.out), capTail(b.err))
		}
		if b.at.After(a.at) {
			t.Errorf("the first client left (%s) before the second, which needed its pieces, was done (%s)", a.at.Format(time.StampMilli), b.at.Format(time.StampMilli))
		}
		if up := uploaded(t, a.out); up <= 0 {
			t.Errorf("the first client uploaded nothing to the second:\n%s", capTail(a.out))
		}
		// The seeder's side: it sent less than the two disks' data, so
		// the rest came from the first client.
		time.Sleep(time.Second) // its snapshots are sampled
		total := resultTotal(t, a.out)
		sent := seederSent() - sent0
		t.Logf("seeder sent %d bytes, the first client %d, for two clients of %d", sent, uploaded(t, a.out), total)
		if total <= 0 || sent >= 2*total {
			t.Errorf("the seeder sent %d bytes for two clients of %d: the first client served nothing", sent, total)
		}
	})
	t.Run("seed-after 0 leaves at once", func(t *testing.T) {
		a, b := runBoth(t, "--seed-after", "0")
		if a.code != 0 {
			t.Fatalf("first client: exit %d\n%s\n%s", a.code, capTail(a.out), capTail(a.err))
		}
		if strings.Contains(a.out, `"phase":"seeding"`) {
			t.Errorf("--seed-after 0 served others after it was verified:\n%s", capTail(a.out))
		}
		if b.code != 0 {
			t.Fatalf("second client: exit %d\n%s\n%s", b.code, capTail(b.out), capTail(b.err))
		}
		// Serving others would keep the first client until the second is
		// done and then 2 s more (the leave-when-nobody-needs rule); its
		// own finish (kernel, fsck) may end close to the second's.
		if !a.at.Before(b.at.Add(1500 * time.Millisecond)) {
			t.Errorf("with --seed-after 0 the first client (left %s) waited for the second (done %s)", a.at.Format(time.StampMilli), b.at.Format(time.StampMilli))
		}
	})
}

// uploaded is what a --json disk deploy's result says its partitions sent
// to other clients.
func uploaded(t *testing.T, out string) int64 {
	t.Helper()
	var n int64
	for _, l := range capJSONLines(t, out) {
		if l["type"] != "result" {
			continue
		}
		parts, _ := l["partitions"].([]any)
		for _, p := range parts {
			if m, ok := p.(map[string]any); ok {
				f, _ := m["bytes_uploaded"].(float64)
				n += int64(f)
			}
		}
	}
	return n
}

// resultTotal is the bytes_total of a --json disk deploy's result.
func resultTotal(t *testing.T, out string) int64 {
	t.Helper()
	for _, l := range capJSONLines(t, out) {
		if l["type"] == "result" {
			f, _ := l["bytes_total"].(float64)
			return int64(f)
		}
	}
	return 0
}

// TestDiskDeployTimeout: a disk deploy whose only peer never answers gives
// up after --timeout with exit 3 (retry later), as a partition deploy does,
// instead of waiting for the engine's default of minutes.
func TestDiskDeployTimeout(t *testing.T) {
	parts := []dkPart{{typ: "83", fs: "ext4", files: map[string][]byte{"f": dkRandom(31, 1<<20)}}}
	src, _ := dkDisk(t, 32<<20, "dos", parts)
	// The image's table and torrents, none of its data.
	dir := dkMetadataOnly(t, dkCaptureDisk(t, src, t.TempDir(), "lonely"))
	target := dkBlank(t, 32<<20)
	// A port nothing listens on: the peer is never reachable.
	dead := fmt.Sprintf("127.0.0.1:%d", disktest.FreePort(t))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out, errb capBuffer
	start := time.Now()
	code, _ := capExec(ctx, t, &out, &errb, "deploy", dir, target, "--yes", "--json", "--listen", "127.0.0.1:0",
		"--peer", dead, "--timeout", "3s")
	took := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("the deploy was still waiting after %s; --timeout 3s was not applied\nstderr:\n%s", took, errb.String())
	}
	if code != 3 {
		t.Fatalf("exit %d, want 3 (unreachable)\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), `"result":"unreachable"`) {
		t.Errorf("the JSON result does not say unreachable:\n%s", out.String())
	}
	t.Logf("gave up after %s", took.Round(100*time.Millisecond))
}

// TestDiskRoomEndsByItself: `ezio seed IMAGE-DIR --expect 2
// --exit-when-done` stops by itself once two clients have deployed the
// disk image, and the clients name the server only by its address (HOST:PORT
// and http://HOST:PORT/): the one image it serves is found to be a whole
// disk and deployed as one.
func TestDiskRoomEndsByItself(t *testing.T) {
	dkNeed(t, "debugfs:e2fsprogs")
	// Two partitions of one 16 MiB piece each; the clients keep the
	// default seeding policy (serve while anyone needs pieces).
	parts := []dkPart{
		{typ: "83", size: "12MiB", fs: "ext4", files: map[string][]byte{"f": dkRandom(41, 1<<20)}},
		{typ: "83", fs: "ext4", files: map[string][]byte{"g": dkRandom(42, 1<<20)}},
	}
	src, _ := dkDisk(t, 32<<20, "dos", parts)
	dir := dkCaptureDisk(t, src, t.TempDir(), "room")

	// Refused before anything starts: no tracker, no room to count.
	if code, _, _, err := capCLI(t, "seed", dir, "--no-tracker", "--no-announce", "--expect", "2", "--exit-when-done"); code != ExitRefused || err == nil || !strings.Contains(err.Error(), "--no-tracker") {
		t.Errorf("--exit-when-done with --no-tracker: exit %d, want 2 naming --no-tracker: %v", code, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	addr := fmt.Sprintf("127.0.0.1:%d", disktest.FreePort(t))
	type result struct {
		code     int
		out, err string
	}
	seeder := make(chan result, 1)
	go func() {
		var out, errb capBuffer
		code, _ := capExec(ctx, t, &out, &errb, "seed", dir, "--tracker-listen", addr, "--listen", "127.0.0.1:0",
			"--no-announce", "--expect", "2", "--exit-when-done", "--json")
		seeder <- result{code, out.String(), errb.String()}
	}()
	up := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get("http://" + addr + "/images.json")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(up) {
			t.Fatalf("the seeder's server never answered: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	targets := []string{dkBlank(t, 32<<20), dkBlank(t, 32<<20)}
	servers := []string{addr, "http://" + addr + "/"}
	clients := make(chan result, 2)
	for i := range targets {
		go func() {
			var out, errb capBuffer
			code, _ := capExec(ctx, t, &out, &errb, "deploy", servers[i], targets[i], "--yes", "--json", "--listen", "127.0.0.1:0")
			clients <- result{code, out.String(), errb.String()}
		}()
	}
	for range targets {
		r := <-clients
		if r.code != 0 || !strings.Contains(r.out, `"result":"ok"`) || !strings.Contains(r.out, `"partitions":[{"number":1`) {
			t.Fatalf("client: exit %d, want 0 with a disk result\n%s\n%s", r.code, capTail(r.out), capTail(r.err))
		}
	}
	var s result
	select {
	case s = <-seeder:
	case <-time.After(time.Minute):
		cancel()
		s = <-seeder
		t.Fatalf("the seeder did not stop within a minute of its two clients being done:\n%s", lastLine(s.out))
	}
	if ctx.Err() != nil || s.code != 0 || !strings.Contains(s.err, "the room is done: 2 clients completed") {
		t.Fatalf("seeder: exit %d (ctx %v), want 0 saying the room is done\n%s", s.code, ctx.Err(), capTail(s.err))
	}
	if !strings.Contains(s.out, `"fleet_done":2`) || !strings.Contains(s.out, `"expected":2`) {
		t.Errorf("the seeder's JSON never showed 2 of 2 done:\n%s", capTail(s.out))
	}
	for _, target := range targets {
		dkCheckFiles(t, target, parts)
	}
}

// TestDiskDeployFromLocalDir: `ezio deploy IMAGE-DIR DISK` with no server,
// peer or tracker (an image on a USB stick) writes the disk from the
// directory itself and ends once verified, without waiting for other
// clients to ask for pieces.
func TestDiskDeployFromLocalDir(t *testing.T) {
	dkNeed(t, "debugfs:e2fsprogs")
	parts := []dkPart{{typ: "83", fs: "ext4", files: map[string][]byte{"f": dkRandom(51, 2<<20)}}}
	src, _ := dkDisk(t, 32<<20, "dos", parts)
	dir := dkCaptureDisk(t, src, t.TempDir(), "stick")
	target := dkBlank(t, 32<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errb capBuffer
	start := time.Now()
	code, err := capExec(ctx, t, &out, &errb, "deploy", dir, target, "--yes", "--json", "--listen", "127.0.0.1:0")
	took := time.Since(start)
	if code != 0 || !strings.Contains(out.String(), `"result":"ok"`) {
		t.Fatalf("deploy from the directory: exit %d (%v), want 0\n%s\n%s", code, err, capTail(out.String()), capTail(errb.String()))
	}
	// The room policy would serve for a minute of idleness first.
	if took > 50*time.Second {
		t.Errorf("the deploy took %s: it waited for clients that nobody named", took)
	}
	dkCheckFiles(t, target, parts)
}

// TestDiskDeployShowsLostServer: when the seeder of a disk image goes away
// mid-deploy, the progress says so (phase "waiting", lost_seconds) instead
// of showing a deploy that merely stalls.
func TestDiskDeployShowsLostServer(t *testing.T) {
	dkNeed(t, "debugfs:e2fsprogs")
	parts := []dkPart{{typ: "83", fs: "ext4", files: map[string][]byte{"f": dkRandom(61, 12<<20)}}}
	src, _ := dkDisk(t, 32<<20, "dos", parts)
	dir := dkCaptureDisk(t, src, t.TempDir(), "gone")
	seed, err := SeedDiskImage(context.Background(), dir, DiskSeedOptions{TrackerListen: fmt.Sprintf("127.0.0.1:%d", disktest.FreePort(t)),
		Tuning: engine.Tuning{ListenAddr: "127.0.0.1:0", MaxUploadRate: 1 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			seed.Stop()
		}
	})
	url := seed.Server.BaseURL() + "/images/gone"
	target := dkBlank(t, 32<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out, errb capBuffer
	done := make(chan int, 1)
	go func() {
		code, _ := capExec(ctx, t, &out, &errb, "deploy", url, target, "--yes", "--json", "--listen", "127.0.0.1:0", "--timeout", "60s")
		done <- code
	}()
	// Some data first (received, the one 16 MiB piece not yet whole),
	// then the seeder goes.
	deadline := time.Now().Add(60 * time.Second)
	for {
		var l struct {
			Received int64 `json:"bytes_received"`
		}
		if json.Unmarshal([]byte(lastLine(out.String())), &l) == nil && l.Received > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no progress within a minute:\n%s\n%s", capTail(out.String()), capTail(errb.String()))
		}
		time.Sleep(200 * time.Millisecond)
	}
	seed.Stop()
	stopped = true
	deadline = time.Now().Add(40 * time.Second)
	for {
		l := lastLine(out.String())
		if strings.Contains(l, `"phase":"waiting"`) && strings.Contains(l, `"lost_seconds":`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lost server never showed:\n%s", capTail(out.String()))
		}
		time.Sleep(200 * time.Millisecond)
	}
	cancel()
	<-done
}

// lastLine is the last complete line of out.
func lastLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return lines[len(lines)-1]
}

// dkMetadataOnly copies an image directory's files (manifest, table, boot
// areas, torrents) without its extent directories: a deploy from it must
// get every byte of data from peers.
func dkMetadataOnly(t *testing.T, dir string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(dir))
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return out
}
