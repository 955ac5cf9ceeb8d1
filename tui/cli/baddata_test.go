package cli

// A damaged image stops the room in seconds with the reason (issue 22):
// a seeder whose source has 4 bytes flipped in piece 9 of 38 (1 MiB
// pieces) tells its clients, every client exits 1 naming the piece and
// its disk offset, and the seeder lists them as stuck; a client holding a
// good copy from before the damage keeps the room going. Real ezio
// processes on loopback (the helpers of integrity_test.go).

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ezio/disks/disktest"
	"ezio/engine/server"
	"ezio/engine/torrentfile"
)

// badMakeImage is a 38-piece image of 1 MiB pieces with a good copy of its
// extent directory kept aside and 4 bytes flipped in piece 9 of im.dir.
// It returns the image, a copy of it pointing at the good directory, and
// the damaged piece's disk offset.
func badMakeImage(t *testing.T) (bad, good *intImage, off int64) {
	t.Helper()
	im := intMakeImage(t, 38<<20, 3, 1<<20, 22)
	g := *im
	g.dir = filepath.Join(t.TempDir(), "sda1")
	if out, err := exec.Command("cp", "-a", im.dir, g.dir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	const at = 9<<20 + 5000 // inside piece 9, in the first extent
	if im.extents[0].Length <= at {
		t.Fatalf("first extent is only %d bytes", im.extents[0].Length)
	}
	f, err := os.OpenFile(filepath.Join(im.dir, torrentfile.FormatOffset(im.extents[0].Offset)), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	f.ReadAt(b, at)
	for i := range b {
		b[i] ^= 0xff
	}
	f.WriteAt(b, at)
	f.Close()
	return im, &g, intPieceDisk(im, 9, 0)
}

// badSeed runs `ezio seed` from source with extra flags; it returns the
// process, its peer address and its server's base URL.
func badSeed(t *testing.T, im *intImage, source string, extra ...string) (*intProc, string, string) {
	t.Helper()
	bt, tr := disktest.FreePort(t), disktest.FreePort(t)
	peer := fmt.Sprintf("127.0.0.1:%d", bt)
	base := fmt.Sprintf("http://127.0.0.1:%d", tr)
	args := append([]string{"seed", im.torrent, source, "--listen", peer, "--tracker-listen", fmt.Sprintf("127.0.0.1:%d", tr)}, extra...)
	p := intStart(t, nil, args...)
	intSeederUp(t, p, func() bool {
		r, err := http.Get(base + "/status.json")
		if err == nil {
			r.Body.Close()
		}
		return err == nil
	})
	return p, peer, base
}

// badStatus reads a seeder's /status.json.
func badStatus(t *testing.T, base string) server.Status {
	t.Helper()
	r, err := http.Get(base + "/status.json")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var st server.Status
	if err := json.NewDecoder(r.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// badResult is a finished client's last JSON line and its stderr.
func badResult(t *testing.T, p *intProc) (map[string]any, string) {
	t.Helper()
	lines := capJSONLines(t, p.stdout.String())
	if len(lines) == 0 {
		return nil, p.stderr.String()
	}
	return lines[len(lines)-1], p.stderr.String()
}

func TestDamagedSeederStopsTheRoom(t *testing.T) {
	im, _, off := badMakeImage(t)
	for _, n := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("%d_clients", n), func(t *testing.T) {
			seeder, peer, base := badSeed(t, im, im.dir, "--json")
			var clients []*intProc
			start := time.Now()
			for k := range n {
				target := filepath.Join(t.TempDir(), fmt.Sprintf("c%d.img", k))
				clients = append(clients, intStart(t, nil, "deploy", im.torrent, target, "--peer", peer, "--yes", "--json", "--listen", "127.0.0.1:0"))
			}
			for k, c := range clients {
				code := c.wait(t, 90*time.Second)
				took := time.Since(start)
				res, errs := badResult(t, c)
				msg := fmt.Sprint(res["error"])
				if code != ExitFailed || res["type"] != "result" || res["result"] != "failed" {
					t.Fatalf("client %d exited %d with %v, want 1 and a failed result\nstderr: %s\nseeder: %s", k, code, res, capTail(errs), capTail(seeder.stderr.String()))
				}
				for _, want := range []string{fmt.Sprintf("piece 9 at disk offset %d", off), torrentfile.FormatOffset(im.extents[0].Offset), peer, "ezio torrent verify"} {
					if !strings.Contains(msg, want) {
						t.Errorf("client %d's error does not say %q: %s", k, want, msg)
					}
				}
				if took > 60*time.Second {
					t.Errorf("client %d took %v to give up", k, took)
				}
				t.Logf("client %d: exit %d after %v: %s", k, code, took.Round(100*time.Millisecond), msg)
			}
			st := badStatus(t, base)
			if len(st.Images) != 1 {
				t.Fatalf("status: %+v", st)
			}
			si := st.Images[0]
			if len(si.BadPieces) != 1 || si.BadPieces[0].Piece != 9 {
				t.Errorf("status lists bad pieces %+v, want piece 9", si.BadPieces)
			}
			if len(si.Stuck) != n || si.Advice == "" || !strings.Contains(st.Summary, "stuck") {
				t.Errorf("status lists %d stuck clients (advice %q, summary %q), want %d: %+v", len(si.Stuck), si.Advice, st.Summary, n, si.Stuck)
			}
			for _, c := range si.Stuck {
				if len(c.Pieces) != 1 || c.Pieces[0] != 9 || !c.Told {
					t.Errorf("stuck client %+v: want piece 9, told", c)
				}
			}
			if si.Clients != n {
				t.Errorf("status counts %d clients, want %d (they only had --peer)", si.Clients, n)
			}
			// The seeder's --json lines carry the stuck clients too.
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(seeder.stdout.String(), `"stuck_clients":[{`) {
				if time.Now().After(deadline) {
					t.Errorf("the seeder's --json lines never list stuck clients:\n%s", capTail(seeder.stdout.String()))
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			seeder.stop(10 * time.Second)
			if s := seeder.stderr.String(); !strings.Contains(s, "damaged on the source") {
				t.Errorf("the seeder's log does not say a client is stuck:\n%s", capTail(s))
			}
		})
	}
}

func TestGoodCopyKeepsTheRoomGoing(t *testing.T) {
	im, good, _ := badMakeImage(t)
	// One client took the image before the damage.
	_, gpeer0, _ := badSeed(t, good, good.dir)
	early := filepath.Join(t.TempDir(), "early.img")
	if code, out, errs := intRun(t, nil, 2*time.Minute, "deploy", im.torrent, early, "--peer", gpeer0, "--yes", "--json", "--listen", "127.0.0.1:0"); code != 0 {
		t.Fatalf("the early deploy exited %d\n%s\n%s", code, capTail(out), capTail(errs))
	}
	intSame(t, good, early)
	// It serves its copy; the damaged seeder serves the others too.
	_, gpeer, _ := badSeed(t, im, early)
	_, peer, _ := badSeed(t, im, im.dir)
	var clients []*intProc
	var targets []string
	for k := range 2 {
		target := filepath.Join(t.TempDir(), fmt.Sprintf("c%d.img", k))
		targets = append(targets, target)
		clients = append(clients, intStart(t, nil, "deploy", im.torrent, target, "--peer", peer, "--peer", gpeer, "--yes", "--json", "--listen", "127.0.0.1:0"))
	}
	for k, c := range clients {
		code := c.wait(t, 90*time.Second)
		res, errs := badResult(t, c)
		if code != 0 || res["result"] != "ok" {
			t.Fatalf("client %d exited %d with %v, want 0\n%s", k, code, res, capTail(errs))
		}
		intSame(t, good, targets[k])
	}
}

// TestPeerOnlyClientIsCounted: a client given only --peer never announces
// to the tracker; the seeder counts it all the same (status page,
// /status.json, --expect), and a client that does announce is not
// counted twice.
func TestPeerOnlyClientIsCounted(t *testing.T) {
	im := intMakeImage(t, 8<<20, 2, 256<<10, 26)
	seeder, peer, base := badSeed(t, im, im.dir, "--expect", "2", "--exit-when-done")
	first := filepath.Join(t.TempDir(), "first.img")
	if code, out, errs := intRun(t, nil, 2*time.Minute, "deploy", im.torrent, first, "--peer", peer, "--yes", "--json", "--listen", "127.0.0.1:0"); code != 0 {
		t.Fatalf("--peer deploy exited %d\n%s\n%s", code, capTail(out), capTail(errs))
	}
	intSame(t, im, first)
	st := badStatus(t, base)
	if st.Clients != 1 || st.Done != 1 || st.Summary != "1 of 2 clients done" {
		t.Errorf("after a --peer client: clients %d, done %d, summary %q; want 1, 1, \"1 of 2 clients done\"\n%+v", st.Clients, st.Done, st.Summary, st.Images)
	}
	r, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page := new(strings.Builder)
	io.Copy(page, r.Body)
	r.Body.Close()
	if !strings.Contains(page.String(), "1 of 2 clients done") || strings.Contains(page.String(), "no clients yet") {
		t.Errorf("the status page does not count the --peer client:\n%s", page)
	}
	select {
	case <-seeder.done:
		t.Fatalf("the seeder stopped with 1 of 2 clients done: %s", capTail(seeder.stderr.String()))
	default:
	}
	// The second client deploys from the server's URL: it announces too.
	second := filepath.Join(t.TempDir(), "second.img")
	if code, out, errs := intRun(t, nil, 2*time.Minute, "deploy", st.Images[0].URL, second, "--yes", "--json", "--listen", "127.0.0.1:0"); code != 0 {
		t.Fatalf("URL deploy exited %d\n%s\n%s", code, capTail(out), capTail(errs))
	}
	intSame(t, im, second)
	if code := seeder.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("seeder with --expect 2 --exit-when-done exited %d: %s", code, capTail(seeder.stderr.String()))
	}
	if s := seeder.stderr.String(); !strings.Contains(s, "2 of 2") {
		t.Logf("seeder's last lines: %s", capTail(s))
	}
}

// TestSeedVerify: `ezio seed --verify` hashes the whole source first; a
// damaged one is refused (exit 1) with its bad pieces listed, a good one
// is served.
func TestSeedVerify(t *testing.T) {
	im, good, off := badMakeImage(t)
	bt, tr := disktest.FreePort(t), disktest.FreePort(t)
	code, out, errs := intRun(t, nil, time.Minute, "seed", im.torrent, im.dir, "--verify", "--listen", fmt.Sprintf("127.0.0.1:%d", bt), "--tracker-listen", fmt.Sprintf("127.0.0.1:%d", tr))
	if code != ExitFailed {
		t.Fatalf("seed --verify of a damaged source exited %d, want 1\n%s\n%s", code, capTail(out), capTail(errs))
	}
	for _, want := range []string{fmt.Sprintf("bad: piece 9 at disk offset %d", off), "verifying 100.0%", "1 of 38 pieces do not match"} {
		if !strings.Contains(errs, want) {
			t.Errorf("seed --verify does not say %q:\n%s", want, capTail(errs))
		}
	}
	seeder, peer, _ := badSeed(t, good, good.dir, "--verify")
	if s := seeder.stderr.String(); !strings.Contains(s, "all 38 pieces match") {
		t.Errorf("seed --verify of a good source does not say so:\n%s", capTail(s))
	}
	target := filepath.Join(t.TempDir(), "t.img")
	if code, out, errs := intRun(t, nil, 2*time.Minute, "deploy", im.torrent, target, "--peer", peer, "--yes", "--json", "--listen", "127.0.0.1:0"); code != 0 {
		t.Fatalf("deploy from a verified seeder exited %d\n%s\n%s", code, capTail(out), capTail(errs))
	}
	intSame(t, good, target)
}
