package main

// End-to-end tests of the ezio command: the test binary re-executes itself
// as ezio (EZIO_RUN_MAIN=1), so these run the real command line, exit codes
// and signals included, without a separate build.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"ezio/disks/disktest"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"ezio/engine"
	"ezio/tui/cli"
)

func TestMain(m *testing.M) {
	if os.Getenv("EZIO_RUN_MAIN") == "1" {
		os.Exit(cli.Main())
	}
	os.Exit(m.Run())
}

func ezio(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), "EZIO_RUN_MAIN=1")
	return cmd
}

// makeExtentDir writes a partclone-style directory: n extents of about
// size/n bytes at odd offsets. It returns the directory and the device
// size the extents need.
func makeExtentDir(t *testing.T, size int64, n int) (string, int64) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "sda1")
	os.Mkdir(dir, 0o755)
	r := rand.New(rand.NewPCG(1, 2))
	off := int64(777)
	for range n {
		b := make([]byte, size/int64(n))
		for k := range b {
			b[k] = byte(r.Uint32())
		}
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("%032x", off)), b, 0o644)
		off += int64(len(b)) + 4099
	}
	return dir, (off + 1<<20) &^ 4095
}

func mustRun(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", cmd.Args, err, out)
	}
	return string(out)
}

// startSeeder runs `ezio seed` in the background and returns the torrent URL.
func startSeeder(t *testing.T, tf, src string, extra ...string) (url, peer string) {
	t.Helper()
	bt, tr := disktest.FreePort(t), disktest.FreePort(t)
	peer = fmt.Sprintf("127.0.0.1:%d", bt)
	args := append([]string{"seed", tf, src, "--listen", peer, "--tracker-listen", fmt.Sprintf("127.0.0.1:%d", tr)}, extra...)
	cmd := ezio(context.Background(), args...)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", tr)
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp4", peer, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("seeder did not come up:\n%s", log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return base + "/torrents/sda1.torrent", peer
}

func sameExtents(t *testing.T, dir, target string) {
	t.Helper()
	got, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	es, err := os.ReadDir(dir)
	if err != nil || len(es) == 0 {
		t.Fatalf("no extents to compare in %s: %v", dir, err)
	}
	for _, e := range es {
		var off int64
		if _, err := fmt.Sscanf(e.Name(), "%x", &off); err != nil {
			t.Fatalf("extent file %s: %v", e.Name(), err)
		}
		want, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(got)) < off+int64(len(want)) || !bytes.Equal(got[off:off+int64(len(want))], want) {
			t.Fatalf("extent %s differs on %s", e.Name(), target)
		}
	}
}

func TestDeployWithoutTerminalNeedsYes(t *testing.T) {
	dir, _ := makeExtentDir(t, 1<<20, 2)
	tf := filepath.Join(t.TempDir(), "x.torrent")
	mustRun(t, ezio(context.Background(), "torrent", "create", dir, "-o", tf, "--piece-length", "64KiB"))
	target := filepath.Join(t.TempDir(), "out.img")
	cmd := ezio(context.Background(), "deploy", tf, target, "--peer", "127.0.0.1:1")
	cmd.Stdin = strings.NewReader("out.img\n")
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 {
		t.Fatalf("want exit 2, got %v: %s", err, out)
	}
	if !strings.Contains(string(out), "--yes") {
		t.Errorf("refusal does not say how to confirm: %s", out)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("target was created by a refused deploy")
	}
}

func TestTorrentInfoJSON(t *testing.T) {
	dir, _ := makeExtentDir(t, 3<<20, 3)
	tf := filepath.Join(t.TempDir(), "x.torrent")
	mustRun(t, ezio(context.Background(), "torrent", "create", dir, "-o", tf, "--name", "sda1", "--piece-length", "1MiB", "--tracker", "http://10.0.0.1:6969/announce"))
	out, err := ezio(context.Background(), "torrent", "info", tf, "--json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Name        string   `json:"name"`
		InfoHash    string   `json:"infohash"`
		PieceLength int64    `json:"piece_length"`
		Pieces      int      `json:"pieces"`
		Extents     int      `json:"extents"`
		TotalBytes  int64    `json:"total_bytes"`
		HighestEnd  int64    `json:"highest_offset"`
		Trackers    []string `json:"trackers"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if info.Name != "sda1" || info.PieceLength != 1<<20 || info.Extents != 3 || info.TotalBytes != 3*(1<<20) || info.Pieces != 3 || len(info.InfoHash) != 40 || len(info.Trackers) != 1 {
		t.Errorf("unexpected info: %+v", info)
	}
	if want := int64(777 + 3*(1<<20) + 2*4099); info.HighestEnd != want {
		t.Errorf("highest_offset %d, want %d", info.HighestEnd, want)
	}
}

// TestKillNineResume: a client killed with SIGKILL half-way continues from
// what it had flushed, and the JSON stream tells the story.
func TestKillNineResume(t *testing.T) {
	dir, devSize := makeExtentDir(t, 48<<20, 4)
	tf := filepath.Join(t.TempDir(), "x.torrent")
	mustRun(t, ezio(context.Background(), "torrent", "create", dir, "-o", tf, "--name", "sda1", "--piece-length", "1MiB"))
	url, _ := startSeeder(t, tf, dir)
	target := filepath.Join(t.TempDir(), "target.img")
	os.WriteFile(target, nil, 0o644)
	os.Truncate(target, devSize)

	// First run, slowed down so it can be killed in the middle.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := ezio(ctx, "deploy", url, target, "--yes", "--json", "--listen", "127.0.0.1:0", "--download-limit", "4MiB")
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	var firstDone, total int64
	killed := false
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("not JSON: %q", sc.Text())
		}
		if line["type"] == "result" {
			t.Fatalf("the first run finished before the kill: %s", sc.Text())
		}
		for _, k := range []string{"phase", "bytes_done", "bytes_total", "pieces_done", "pieces_total", "download_rate", "upload_rate", "peers", "eta_seconds"} {
			if _, ok := line[k]; !ok {
				t.Fatalf("progress line lacks %q: %s", k, sc.Text())
			}
		}
		firstDone, total = int64(line["bytes_done"].(float64)), int64(line["bytes_total"].(float64))
		if !killed && firstDone > total/2 {
			// Give the flusher time to record what is verified, then pull
			// the plug; lines already written tell how far it got.
			killed = true
			go func() {
				time.Sleep(2500 * time.Millisecond)
				cmd.Process.Signal(syscall.SIGKILL)
			}()
		}
	}
	cmd.Wait()
	if !killed {
		t.Fatal("first run never got half-way")
	}
	// What the first run recorded as verified and flushed.
	recorded, err := engine.ResumeRecordPieces(target + ".ezio-resume") // integrity: record format v2
	if err != nil {
		t.Fatalf("no resume record after the kill: %v", err)
	}
	if recorded == 0 {
		t.Fatal("the resume record holds no piece")
	}

	// Second run, full speed, must fetch only what was missing.
	out, err := ezio(ctx, "deploy", url, target, "--yes", "--json", "--listen", "127.0.0.1:0").Output()
	if err != nil {
		t.Fatalf("second run: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var result map[string]any
	json.Unmarshal([]byte(lines[len(lines)-1]), &result)
	if result["type"] != "result" || result["result"] != "ok" {
		t.Fatalf("last line is not a successful result: %s", lines[len(lines)-1])
	}
	got := int64(result["bytes_downloaded"].(float64))
	const piece = 1 << 20
	missing := total - int64(recorded)*piece
	t.Logf("first run: %d of %d bytes seen verified, %d pieces recorded when killed; second downloaded %d (missing %d)", firstDone, total, recorded, got, missing)
	// Pieces are recorded only after an fdatasync, so the record may lag
	// what was verified, never lead it: the second run fetches what the
	// record lacks, give or take a piece in flight twice.
	if got > missing+2*piece {
		t.Errorf("second run downloaded %d bytes, more than the %d the record lacks: resume did not use it", got, missing)
	}
	if got < missing-2*piece {
		t.Errorf("second run downloaded %d bytes, less than the %d the record lacks: unverified pieces were trusted", got, missing)
	}
	sameExtents(t, dir, target)
}

func TestDeployHumanProgressAndExitZero(t *testing.T) {
	dir, _ := makeExtentDir(t, 4<<20, 2)
	tf := filepath.Join(t.TempDir(), "x.torrent")
	mustRun(t, ezio(context.Background(), "torrent", "create", dir, "-o", tf, "--name", "sda1", "--piece-length", "256KiB"))
	_, peer := startSeeder(t, tf, dir, "--no-tracker")
	target := filepath.Join(t.TempDir(), "t.img")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := mustRun(t, ezio(ctx, "deploy", tf, target, "--peer", peer, "--yes", "--listen", "127.0.0.1:0"))
	if !strings.Contains(out, "done") || !strings.Contains(out, "100.0%") {
		t.Errorf("final progress line does not show completion:\n%s", out)
	}
	sameExtents(t, dir, target)
}
