package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"ezio/disks/disktest"
	"ezio/engine"
	"ezio/engine/ezioapi"
)

// TestDaemonSwarm drives three `ezio daemon` processes over gRPC as
// Clonezilla does: a seeder in file mode (-F) serving two partition
// images with seeding_mode, and two clients writing one of them onto
// loop devices. Along the way: the hashes filter, unknown hashes, pause
// and resume, a Shutdown in the middle of a deploy that must leave a
// resume record and exit 0, and a restarted daemon that resumes from it.
func TestDaemonSwarm(t *testing.T) {
	disktest.Need(t, true)
	tr := startTracker(t)
	im := makeImage(t, "sda1", 12<<20, 5, 1, tr.AnnounceURL())
	im2 := makeImage(t, "sda2", 1<<20, 2, 2, tr.AnnounceURL())
	serve(t, tr, im)
	serve(t, tr, im2)

	seeder := startDaemon(t, "seeder", fmt.Sprintf("127.0.0.1:%d", disktest.FreePort(t)), nil,
		"-F", "--listen", "127.0.0.1:0", "--upload-limit", "3MiB")
	addTorrent(t, seeder, im, im.parent, true)
	addTorrent(t, seeder, im2, im2.parent, true)

	// Adding the same torrent twice is refused.
	_, err := seeder.cl.AddTorrent(context.Background(), &ezioapi.AddRequest{Torrent: im.raw, SavePath: im.parent, SeedingMode: true})
	if status.Code(err) != codes.AlreadyExists {
		t.Fatalf("second AddTorrent of the same torrent: %v, want AlreadyExists", err)
	}
	// A seeder vouches for its data: finished and seeding at once.
	for _, x := range []*image{im, im2} {
		s := seeder.waitFor(t, x.hash, "seeding", 30*time.Second, func(tr *ezioapi.Torrent) bool { return tr.GetState() == 5 })
		if !s.GetIsFinished() || s.GetProgress() != 1 || s.GetName() != x.name || s.GetSavePath() != x.parent || s.GetTotal() != x.total {
			t.Fatalf("seeder status of %s: %v", x.name, s)
		}
	}

	// The hashes filter: everything, one, and unknown ones left out
	// (upper case is the same hash).
	if st := seeder.status(t); len(st.GetHashes()) != 2 || len(st.GetTorrents()) != 2 || st.GetHashes()[0] != im.hash || st.GetHashes()[1] != im2.hash {
		t.Fatalf("unfiltered status: %v", st)
	}
	if st := seeder.status(t, strings.ToUpper(im2.hash)); len(st.GetTorrents()) != 1 || st.GetTorrents()[im2.hash] == nil || len(st.GetHashes()) != 1 {
		t.Fatalf("status filtered on sda2: %v", st)
	}
	unknown := strings.Repeat("ab", 20)
	if st := seeder.status(t, im.hash, unknown); len(st.GetTorrents()) != 1 || st.GetTorrents()[im.hash] == nil {
		t.Fatalf("status filtered on sda1 and an unknown hash: %v", st)
	}
	if st := seeder.status(t, unknown); len(st.GetTorrents()) != 0 {
		t.Fatalf("status filtered on an unknown hash: %v", st)
	}
	checkStatusCommand(t, seeder, im, im2)

	// Unknown hashes are NOT_FOUND (EZIO says OK and does nothing).
	if _, err := seeder.cl.PauseTorrent(context.Background(), &ezioapi.PauseTorrentRequest{Hash: unknown}); status.Code(err) != codes.NotFound {
		t.Fatalf("PauseTorrent(unknown): %v, want NotFound", err)
	}
	if _, err := seeder.cl.ResumeTorrent(context.Background(), &ezioapi.ResumeTorrentRequest{Hash: unknown}); status.Code(err) != codes.NotFound {
		t.Fatalf("ResumeTorrent(unknown): %v, want NotFound", err)
	}

	// Client A over a unix socket: paused once data flows.
	stateA, stateB := t.TempDir(), t.TempDir()
	devA := disktest.NewLoop(t, im.devSize, nil)
	devB := disktest.NewLoop(t, im.devSize, nil)
	sockA := "unix:" + filepath.Join(t.TempDir(), "a.sock")
	a := startDaemon(t, "client-a", sockA, []string{"EZIO_STATE_DIR=" + stateA}, "--listen", "127.0.0.1:0")
	addTorrent(t, a, im, devA, false)
	a.waitFor(t, im.hash, "receiving", 60*time.Second, func(tr *ezioapi.Torrent) bool { return tr.GetTotalPayloadDownload() > 0 })
	if _, err := a.cl.PauseTorrent(context.Background(), &ezioapi.PauseTorrentRequest{Hash: im.hash}); err != nil {
		t.Fatal(err)
	}
	paused := a.waitFor(t, im.hash, "paused with rates at 0", 30*time.Second, func(tr *ezioapi.Torrent) bool {
		return tr.GetIsPaused() && tr.GetDownloadRate() == 0 && tr.GetUploadRate() == 0
	})
	// Chunks already on the wire when the pause came still land (a pause
	// stops requesting, it cannot recall what the seeder has sent): wait
	// until A has been still for a second, then it must stay still.
	var last *ezioapi.Torrent
	var since time.Time
	paused = a.waitFor(t, im.hash, "still after the pause", 30*time.Second, func(tr *ezioapi.Torrent) bool {
		if last == nil || tr.GetTotalPayloadDownload() != last.GetTotalPayloadDownload() || tr.GetTotalDone() != last.GetTotalDone() {
			last, since = tr, time.Now()
			return false
		}
		return time.Since(since) >= time.Second
	})
	if paused.GetIsFinished() || paused.GetProgress() >= 1 {
		t.Fatalf("client A finished before the pause took effect (seeder too fast?): %v", paused)
	}

	// Client B over TCP, while A stays paused; shut down mid-deploy.
	addrB := fmt.Sprintf("127.0.0.1:%d", disktest.FreePort(t))
	b := startDaemon(t, "client-b", addrB, []string{"EZIO_STATE_DIR=" + stateB}, "--listen", "127.0.0.1:0")
	addTorrent(t, b, im, devB, false)
	mid := b.waitFor(t, im.hash, "part way", 90*time.Second, func(tr *ezioapi.Torrent) bool { return tr.GetNumPieces() >= 2 })
	if mid.GetIsFinished() {
		t.Fatalf("client B finished before the mid-deploy Shutdown (seeder too fast?): %v", mid)
	}
	shutdown(t, b)
	t.Setenv("EZIO_STATE_DIR", stateB) // where the daemon of B keeps it
	rec := engine.ResumePath(devB, engine.TargetDevice, im.mi.HashInfoBytes())
	if fi, err := os.Stat(rec); err != nil || fi.Size() == 0 {
		t.Fatalf("Shutdown mid-deploy left no resume record at %s: %v", rec, err)
	}

	// A did not move while paused, though B was in the swarm.
	still := a.torrent(t, im.hash)
	if still.GetTotalDone() != paused.GetTotalDone() || still.GetTotalPayloadDownload() != paused.GetTotalPayloadDownload() || !still.GetIsPaused() {
		t.Fatalf("paused client moved: at pause %v, now %v", paused, still)
	}
	if _, err := a.cl.ResumeTorrent(context.Background(), &ezioapi.ResumeTorrentRequest{Hash: im.hash}); err != nil {
		t.Fatal(err)
	}

	// B again: a new daemon on the same address resumes from its record.
	b2 := startDaemon(t, "client-b2", addrB, []string{"EZIO_STATE_DIR=" + stateB}, "--listen", "127.0.0.1:0")
	addTorrent(t, b2, im, devB, false)
	first := b2.waitFor(t, im.hash, "reporting", 30*time.Second, func(tr *ezioapi.Torrent) bool { return tr.GetTotal() > 0 })
	if !strings.Contains(b2.log.String(), "resuming:") {
		t.Errorf("restarted client did not resume from its record (first status %v)", first)
	}

	for _, c := range []*runningDaemon{a, b2} {
		dev := devA
		if c == b2 {
			dev = devB
		}
		done := c.waitFor(t, im.hash, "finished", 4*time.Minute, func(tr *ezioapi.Torrent) bool { return tr.GetIsFinished() })
		if done.GetState() != 5 || done.GetProgress() != 1 || done.GetNumPieces() != int64(im.pieces) ||
			done.GetTotalDone() != done.GetTotal() || done.GetSavePath() != dev || done.GetLastDownload() < 0 || done.GetIsPaused() {
			t.Fatalf("%s finished status: %v", c.name, done)
		}
	}
	up := seeder.torrent(t, im.hash)
	if up.GetTotalPayloadUpload() <= 0 || up.GetLastUpload() < 0 {
		t.Fatalf("seeder status after the deploys: %v", up)
	}
	for _, c := range []*runningDaemon{a, b2, seeder} {
		shutdown(t, c)
	}
	want := disktest.Sum(t, im.want)
	for _, dev := range []string{devA, devB} {
		if disktest.Sum(t, dev) != want {
			t.Fatalf("%s differs from the image", dev)
		}
	}
	// A finished deploy leaves no record behind to vouch for a later disk.
	t.Setenv("EZIO_STATE_DIR", stateA)
	if _, err := os.Stat(engine.ResumePath(devA, engine.TargetDevice, im.mi.HashInfoBytes())); !os.IsNotExist(err) {
		t.Fatalf("resume record of a finished deploy still there: %v", err)
	}
}

// checkStatusCommand runs `ezio status` against the seeder: one line per
// torrent, JSON with the API's field names, and exit 3 with no daemon.
func checkStatusCommand(t *testing.T, seeder *runningDaemon, ims ...*image) {
	t.Helper()
	out, err := exec.Command(disktest.EzioBinary(t), "status", "--grpc", seeder.addr).CombinedOutput()
	if err != nil {
		t.Fatalf("ezio status: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(ims) {
		t.Fatalf("ezio status printed %d lines for %d torrents:\n%s", len(lines), len(ims), out)
	}
	for i, im := range ims {
		if f := strings.Fields(lines[i]); len(f) < 2 || f[0] != im.name || f[1] != "100.0%" || !strings.Contains(lines[i], "seeding") || !strings.Contains(lines[i], "peers ") {
			t.Fatalf("ezio status line for %s: %q", im.name, lines[i])
		}
	}
	out, err = exec.Command(disktest.EzioBinary(t), "status", "--grpc", seeder.addr, "--json", "--hash", ims[0].hash).Output()
	if err != nil {
		t.Fatalf("ezio status --json: %v", err)
	}
	var js struct {
		Torrents []map[string]any `json:"torrents"`
	}
	if err := json.Unmarshal(out, &js); err != nil || len(js.Torrents) != 1 {
		t.Fatalf("ezio status --json: %v\n%s", err, out)
	}
	if tr := js.Torrents[0]; tr["hash"] != ims[0].hash || tr["state"] != 5.0 || tr["is_finished"] != true || tr["total"] != float64(ims[0].total) {
		t.Fatalf("ezio status --json: %v", tr)
	}
	cmd := exec.Command(disktest.EzioBinary(t), "status", "--grpc", fmt.Sprintf("127.0.0.1:%d", disktest.FreePort(t)))
	msg, _ := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 3 {
		t.Fatalf("ezio status with no daemon exited %d, want 3:\n%s", code, msg)
	}
}
