package daemon_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"ezio/engine/ezioapi"
	"ezio/engine/server"
)

// TestDaemonClientOfADamagedSeeder: Clonezilla's room, with the seeder
// daemon's copy of one piece damaged (4 bytes flipped in an extent file).
// The seeder never sends the piece and tells the client why; the client
// daemon's torrent stops within 60 s with state 0 (failed), not finished,
// and its log names the piece, its disk offset and the advice. The seeder
// goes on serving.
func TestDaemonClientOfADamagedSeeder(t *testing.T) {
	tr := startTracker(t)
	im := makeImage(t, "bad1", 3<<20, 3, 21, tr.AnnounceURL())
	serve(t, tr, im)
	ents, err := os.ReadDir(filepath.Join(im.parent, im.name))
	if err != nil || len(ents) != 3 {
		t.Fatalf("extents of the image: %v %v", ents, err)
	}
	ext := filepath.Join(im.parent, im.name, ents[1].Name())
	b, err := os.ReadFile(ext)
	if err != nil {
		t.Fatal(err)
	}
	for k := 1000; k < 1004; k++ {
		b[k] ^= 0xff
	}
	if err := os.WriteFile(ext, b, 0o644); err != nil {
		t.Fatal(err)
	}
	// Which piece holds the flipped bytes, and where it begins on the
	// disk, follow from the extents' offsets (their names) and lengths.
	fi0, err := ents[0].Info()
	if err != nil {
		t.Fatal(err)
	}
	off0, _ := strconv.ParseInt(ents[0].Name(), 16, 64)
	off1, _ := strconv.ParseInt(ents[1].Name(), 16, 64)
	const pieceLen = 256 << 10 // makeImage's
	piece := (fi0.Size() + 1000) / pieceLen
	pieceDisk := off0 + piece*pieceLen
	if piece*pieceLen >= fi0.Size() {
		pieceDisk = off1 + piece*pieceLen - fi0.Size()
	}
	sock := func(n string) string { return "unix:" + filepath.Join(t.TempDir(), n+".sock") }
	seeder := startDaemon(t, "seeder", sock("seeder"), nil, "-F", "--listen", "127.0.0.1:0")
	client := startDaemon(t, "client", sock("client"), []string{"EZIO_STATE_DIR=" + t.TempDir()}, "--listen", "127.0.0.1:0")
	addTorrent(t, seeder, im, im.parent, true)
	target := filepath.Join(t.TempDir(), "bad1.img")
	start := time.Now()
	addTorrent(t, client, im, target, false)
	failed := client.waitFor(t, im.hash, "failed", 90*time.Second, func(tr *ezioapi.Torrent) bool { return tr.GetState() == 0 })
	took := time.Since(start)
	t.Logf("the client's torrent failed %v after it was added: %v", took.Round(100*time.Millisecond), failed)
	if took > 60*time.Second || failed.GetIsFinished() || failed.GetNumPieces() >= int64(im.pieces) {
		t.Errorf("client status %v after %v", failed, took)
	}
	log := client.log.String()
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "cannot get piece ") {
			t.Logf("client log: %s", l)
			break
		}
	}
	for _, want := range []string{fmt.Sprintf("cannot get piece %d at disk offset %d", piece, pieceDisk), "does not match the torrent", server.StuckAdvice} {
		if !strings.Contains(log, want) {
			t.Errorf("the client daemon's log does not say %q:\n%s", want, log)
		}
	}
	if s := seeder.torrent(t, im.hash); s.GetState() != 5 {
		t.Errorf("the seeder stopped serving: %v", s)
	}
	if !strings.Contains(seeder.log.String(), "it is not served") {
		t.Errorf("the seeder's log does not name the bad piece:\n%s", seeder.log.String())
	}
	shutdown(t, client)
	shutdown(t, seeder)
}
