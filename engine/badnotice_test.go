package engine

import (
	"context"
	"errors"
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
	_, l, err := Summarize(im.mi)
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
