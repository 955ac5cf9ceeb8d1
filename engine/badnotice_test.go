package engine

import (
	"context"
	"errors"
	"ezio/engine/torrentfile"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestBadNoticeRoundTrip(t *testing.T) {
	b := BadPiece{Index: 9, Offset: 10486537, File: "00000000000000000000000000100309", Reason: "SHA-1 mismatch"}
	n, ok := decodeBadNotice(encodeBadNotice(b))
	if !ok || n.Piece != 9 || n.Offset != b.Offset || n.File != b.File || n.Reason != b.Reason {
		t.Fatalf("round trip: %+v %v", n, ok)
	}
	for _, p := range []string{"", "x", "d5:piecei-1ee", "l"} {
		if _, ok := decodeBadNotice([]byte(p)); ok {
			t.Errorf("%q decoded as a notice", p)
		}
	}
}

// A seeder that only refuses a bad piece (no notice: another BitTorrent
// seeder, or an older ezio) still ends a client that has no other source
// for it, once every holder has refused it for refusedGrace.
func TestRefusalsWithoutNoticeEndTheDeploy(t *testing.T) {
	const pl = 256 << 10
	old := refusedGrace
	refusedGrace = 6 * time.Second
	silentSeederForTest.Store(true)
	t.Cleanup(func() { refusedGrace = old; silentSeederForTest.Store(false) })

	im := makeImage(t, 8*pl-12345, 1, pl, 32)
	_, l, err := torrentfile.Summarize(im.mi)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(im.dir, l.FileNames[0]), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{^im.data[0][3*pl+100]}, 3*pl+100) // piece 3
	f.Close()
	strat := Strategy{RevealOff: true}
	seed, err := Seed(context.Background(), SeedOptions{
		Torrent: im.mi, Source: im.dir, NoTracker: true,
		Tuning: Tuning{ListenAddr: "127.0.0.1:0", Strategy: strat},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { seed.Stop(); seed.Wait() })
	start := time.Now()
	j, err := Deploy(context.Background(), DeployOptions{
		Torrent: im.mi, Target: makeTargetFile(t, im.size), SkipSafetyChecks: true,
		Seeders: []string{seed.PeerAddr()},
		Tuning:  Tuning{ListenAddr: "127.0.0.1:0", Strategy: strat},
	})
	if err != nil {
		t.Fatal(err)
	}
	err = waitJob(t, j, refusedGrace+30*time.Second)
	took := time.Since(start)
	var ue *UnservableError
	if !errors.As(err, &ue) || ue.Index != 3 || ue.Told || len(ue.Servers) != 1 || ue.Servers[0] != seed.PeerAddr() {
		t.Fatalf("deploy ended with %v (%T), want an UnservableError for piece 3 refused by %s", err, err, seed.PeerAddr())
	}
	if s := j.Snapshot(); s.PiecesDone != 7 || s.HashFailures != 0 {
		t.Errorf("%d pieces done, %d hash failures; want 7 and 0", s.PiecesDone, s.HashFailures)
	}
	if took < refusedGrace {
		t.Errorf("gave up after %v, before the grace of %v", took, refusedGrace)
	}
	// The seeder lists the client as stuck, not told.
	st := seed.StuckClients()
	if len(st) != 1 || st[0].Told || len(st[0].Pieces) != 1 || st[0].Pieces[0] != 3 {
		t.Errorf("seeder's stuck clients: %+v", st)
	}
	t.Logf("gave up after %v: %v", took.Round(100*time.Millisecond), err)
}

// The seeder's own record of its clients: one that took pieces counts
// (done once it holds all), one that held everything from its first
// message is another seeder and does not, and a client lacking a bad
// piece is stuck, told or not.
func TestClientWatchCountsClientsNotSeeders(t *testing.T) {
	w := newClientWatch(4)
	mk := func(id byte) *seenClient {
		c := &seenClient{have: make([]bool, 4), sent: map[int]bool{}, told: map[int]bool{}, loggedOn: map[int]bool{}}
		var pid [20]byte
		pid[0] = id
		w.clients[pid] = c
		return c
	}
	done, partial, seeder, probe := mk(1), mk(2), mk(3), mk(4)
	_ = probe // seen, never took a piece, gone: not listed
	done.count, done.have = 4, []bool{true, true, true, true}
	partial.count, partial.have = 2, []bool{true, true, false, false}
	partial.told[2] = true
	seeder.count, seeder.have, seeder.seeder = 4, []bool{true, true, true, true}, true
	ms := w.members(time.Now())
	if len(ms) != 2 {
		t.Fatalf("members %+v: want the done and the partial client only", ms)
	}
	nDone := 0
	for _, m := range ms {
		if m.Completed {
			nDone++
		}
	}
	if nDone != 1 {
		t.Errorf("members %+v: want one completed", ms)
	}
	list, fresh := w.stuck([]BadPiece{{Index: 2}}, true)
	if len(list) != 1 || !list[0].Told || list[0].Pieces[0] != 2 || len(fresh) != 1 {
		t.Errorf("stuck %+v fresh %+v: want the partial client, told, on piece 2", list, fresh)
	}
	if _, fresh := w.stuck([]BadPiece{{Index: 2}}, true); len(fresh) != 0 {
		t.Errorf("a stuck client is logged twice: %+v", fresh)
	}
}
