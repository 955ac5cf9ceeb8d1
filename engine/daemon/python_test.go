package daemon_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ezio/disks/disktest"
	"ezio/engine"
	"ezio/engine/ezioapi"
)

// Debian's interpreter: the python3 first on PATH may be another one
// without Debian's modules.
const debianPython = "/usr/bin/python3"

// pyEnv generates the Python stubs from our ezio.proto with
// python3-grpc-tools and returns the environment the scripts run in.
func pyEnv(t *testing.T) []string {
	t.Helper()
	if out, err := exec.Command(debianPython, "-c", "import grpc, grpc_tools.protoc").CombinedOutput(); err != nil {
		disktest.SkipOrFail(t, "%s cannot import grpc and grpc_tools (apt-get install python3-grpcio python3-grpc-tools): %v %s", debianPython, err, out)
	}
	dir := t.TempDir()
	proto, err := filepath.Abs(filepath.Join("..", "ezioapi"))
	if err != nil {
		t.Fatal(err)
	}
	disktest.Run(t, debianPython, "-m", "grpc_tools.protoc", "-I", proto, "--python_out="+dir, "--grpc_python_out="+dir, filepath.Join(proto, "ezio.proto"))
	return append(os.Environ(), "PYTHONPATH="+dir, "PYTHONDONTWRITEBYTECODE=1")
}

// py runs one of the scripts in testdata and returns its exit code, stdout
// and stderr.
func py(t *testing.T, env []string, script string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(debianPython, append([]string{filepath.Join("testdata", script)}, args...)...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
		case <-time.After(6 * time.Minute):
			cmd.Process.Kill()
		}
	}()
	err := cmd.Run()
	close(done)
	if cmd.ProcessState == nil {
		t.Fatalf("%s: %v", script, err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

func mustPy(t *testing.T, env []string, script string, args ...string) string {
	t.Helper()
	code, out, errs := py(t, env, script, args...)
	if code != 0 {
		t.Fatalf("%s %s exited %d\nstdout:\n%s\nstderr:\n%s", script, strings.Join(args, " "), code, out, errs)
	}
	return out
}

// TestDaemonPythonClients runs the same flow as the Go test with Python
// gRPC (a second, independent implementation of the wire format), the way
// Clonezilla calls EZIO's utilities: `add -S -c 6 -u 5 TORRENT DIR` on a
// seeder daemon in file mode, `add -c 6 -u 5 TORRENT /dev/...` on two
// client daemons, a status poller until every torrent is finished, pause,
// resume and an unknown hash, and Shutdown.
func TestDaemonPythonClients(t *testing.T) {
	disktest.Need(t, true)
	env := pyEnv(t)
	tr := startTracker(t)
	im := makeImage(t, "sda1", 6<<20, 4, 9, tr.AnnounceURL())
	serve(t, tr, im)
	tf := filepath.Join(t.TempDir(), "sda1.torrent")
	if err := os.WriteFile(tf, im.raw, 0o644); err != nil {
		t.Fatal(err)
	}

	seedAddr := fmt.Sprintf("127.0.0.1:%d", disktest.FreePort(t))
	seeder := startDaemon(t, "seeder", seedAddr, nil, "-F", "--listen", "127.0.0.1:0", "--upload-limit", "2MiB")
	mustPy(t, env, "ezio_add.py", "-a", seedAddr, "-S", "-c", "6", "-u", "5", tf, im.parent)
	if v := strings.TrimSpace(mustPy(t, env, "ezio_ctl.py", "-a", seedAddr, "version")); v != engine.Version {
		t.Fatalf("GetVersion from Python: %q", v)
	}

	var clients []*runningDaemon
	var devs []string
	for i := range 2 {
		addr := "unix:" + filepath.Join(t.TempDir(), "c.sock")
		if i == 1 {
			addr = fmt.Sprintf("127.0.0.1:%d", disktest.FreePort(t))
		}
		c := startDaemon(t, fmt.Sprintf("client-%d", i), addr, []string{"EZIO_STATE_DIR=" + t.TempDir()}, "--listen", "127.0.0.1:0")
		dev := disktest.NewLoop(t, im.devSize, nil)
		mustPy(t, env, "ezio_add.py", "-a", addr, "-c", "6", "-u", "5", tf, dev)
		clients, devs = append(clients, c), append(devs, dev)
	}

	// Pause the first client from Python; the Go side sees it hold still.
	c0 := clients[0]
	mustPy(t, env, "ezio_ctl.py", "-a", c0.addr, "pause", im.hash)
	c0.waitFor(t, im.hash, "paused with rates at 0", 30*time.Second, func(tr *ezioapi.Torrent) bool {
		return tr.GetIsPaused() && tr.GetDownloadRate() == 0
	})
	out := mustPy(t, env, "ezio_poll.py", "-a", c0.addr)
	if !strings.Contains(out, " paused") || !strings.Contains(out, `"is_paused": true`) {
		t.Fatalf("the Python poller does not see the pause:\n%s", out)
	}
	mustPy(t, env, "ezio_ctl.py", "-a", c0.addr, "resume", im.hash)
	code, _, errs := py(t, env, "ezio_ctl.py", "-a", c0.addr, "pause", strings.Repeat("0", 40))
	if code != 1 || !strings.HasPrefix(strings.TrimSpace(errs), "NOT_FOUND:") {
		t.Fatalf("pause of an unknown hash from Python: exit %d, stderr %q", code, errs)
	}

	for i, c := range clients {
		out := mustPy(t, env, "ezio_poll.py", "-a", c.addr, "--until-finished", "--timeout", "240", "--hash", im.hash)
		var final map[string]any
		for _, line := range strings.Split(out, "\n") {
			if s, ok := strings.CutPrefix(line, "FINAL "); ok {
				if err := json.Unmarshal([]byte(s), &final); err != nil {
					t.Fatal(err)
				}
			}
		}
		if final == nil || final["hash"] != im.hash || final["name"] != "sda1" || final["is_finished"] != true ||
			final["progress"] != 1.0 || final["state"] != 5.0 || final["save_path"] != devs[i] ||
			final["total"] != float64(im.total) || final["num_pieces"] != float64(im.pieces) || final["is_paused"] != false {
			t.Fatalf("client %d final status from Python: %v\n%s", i, final, out)
		}
	}
	// The seeder's own view, filtered on its one hash.
	out = mustPy(t, env, "ezio_poll.py", "-a", seedAddr, "--hash", im.hash)
	if !strings.Contains(out, "seeding") || strings.Count(out, "FINAL ") != 1 {
		t.Fatalf("seeder status from Python:\n%s", out)
	}

	// Client 1 stops itself as Clonezilla's leecher does (finished, idle,
	// paused, then Shutdown); the others are told to shut down.
	out = mustPy(t, env, "ezio_autostop.py", "-a", clients[1].addr, "-w", "2", "--timeout", "120")
	if !strings.Contains(out, "pausing sda1") || !strings.Contains(out, "ezio "+engine.Version+"\n") {
		t.Fatalf("autostop:\n%s", out)
	}
	if code := clients[1].waitExit(time.Minute); code != 0 {
		t.Fatalf("daemon %s exited %d after the autostop's Shutdown", clients[1].name, code)
	}
	for _, c := range []*runningDaemon{clients[0], seeder} {
		mustPy(t, env, "ezio_ctl.py", "-a", c.addr, "shutdown")
		if code := c.waitExit(time.Minute); code != 0 {
			t.Fatalf("daemon %s exited %d after Shutdown from Python", c.name, code)
		}
	}
	want := disktest.Sum(t, im.want)
	for _, dev := range devs {
		if disktest.Sum(t, dev) != want {
			t.Fatalf("%s differs from the image", dev)
		}
	}
}

// TestDaemonRemoveFromPython: ezio's RemoveTorrent and GetDiagnostics
// from Python gRPC (stubs generated from our proto). A client daemon is
// told to remove a deploy half-way: the call returns once the torrent is
// gone from the daemon and its session, with the resume record written;
// a second remove is NOT_FOUND; the same torrent added again resumes from
// the record and ends byte-identical; then it is removed finished.
func TestDaemonRemoveFromPython(t *testing.T) {
	env := pyEnv(t)
	tr := startTracker(t)
	im := makeImage(t, "sda3", 6<<20, 4, 11, tr.AnnounceURL())
	serve(t, tr, im)
	tf := filepath.Join(t.TempDir(), "sda3.torrent")
	if err := os.WriteFile(tf, im.raw, 0o644); err != nil {
		t.Fatal(err)
	}
	sock := func(n string) string { return "unix:" + filepath.Join(t.TempDir(), n+".sock") }
	seeder := startDaemon(t, "seeder", sock("seeder"), nil, "-F", "--listen", "127.0.0.1:0", "--upload-limit", "1MiB")
	client := startDaemon(t, "client", sock("client"), []string{"EZIO_STATE_DIR=" + t.TempDir()}, "--listen", "127.0.0.1:0")
	mustPy(t, env, "ezio_add.py", "-a", seeder.addr, "-S", tf, im.parent)
	target := filepath.Join(t.TempDir(), "sda3.img")
	if err := os.WriteFile(target, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(target, im.devSize); err != nil {
		t.Fatal(err)
	}
	mustPy(t, env, "ezio_add.py", "-a", client.addr, tf, target)
	mid := client.waitFor(t, im.hash, "part way", time.Minute, func(tr *ezioapi.Torrent) bool { return tr.GetNumPieces() >= 2 })
	if mid.GetIsFinished() {
		t.Fatalf("client finished before the remove (seeder too fast?): %v", mid)
	}

	mustPy(t, env, "ezio_ctl.py", "-a", client.addr, "remove", im.hash)
	if st := client.status(t); len(st.GetTorrents()) != 0 {
		t.Fatalf("the client still lists the removed torrent: %v", st)
	}
	diag := strings.TrimSpace(mustPy(t, env, "ezio_ctl.py", "-a", client.addr, "diag"))
	if !strings.Contains(diag, " torrents=0 session_torrents=0") || !strings.HasPrefix(diag, "goroutines=") {
		t.Fatalf("diag from Python after the remove: %q", diag)
	}
	if fi, err := os.Stat(engine.ResumePath(target, engine.TargetFile, im.mi.HashInfoBytes())); err != nil || fi.Size() == 0 {
		t.Fatalf("removing an unfinished deploy left no resume record: %v", err)
	}
	code, _, errs := py(t, env, "ezio_ctl.py", "-a", client.addr, "remove", im.hash)
	if code != 1 || !strings.HasPrefix(strings.TrimSpace(errs), "NOT_FOUND:") {
		t.Fatalf("second remove from Python: exit %d, stderr %q", code, errs)
	}

	// Added again: it resumes from the record and finishes.
	mustPy(t, env, "ezio_add.py", "-a", client.addr, tf, target)
	client.waitFor(t, im.hash, "finished", 2*time.Minute, func(tr *ezioapi.Torrent) bool { return tr.GetIsFinished() })
	if !strings.Contains(client.log.String(), "resuming:") {
		t.Errorf("the torrent added again did not resume from its record")
	}
	mustPy(t, env, "ezio_ctl.py", "-a", client.addr, "remove", im.hash)
	mustPy(t, env, "ezio_ctl.py", "-a", seeder.addr, "remove", im.hash)
	if st := seeder.status(t); len(st.GetTorrents()) != 0 {
		t.Fatalf("the seeder still lists the removed torrent: %v", st)
	}
	if disktest.Sum(t, target) != disktest.Sum(t, im.want) {
		t.Fatalf("%s differs from the image", target)
	}
	for _, d := range []*runningDaemon{client, seeder} {
		mustPy(t, env, "ezio_ctl.py", "-a", d.addr, "shutdown")
		if code := d.waitExit(time.Minute); code != 0 {
			t.Fatalf("daemon %s exited %d after Shutdown from Python", d.name, code)
		}
	}
}
