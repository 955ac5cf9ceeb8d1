package engine

import (
	"context"
	"ezio/engine/torrentfile"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	pp "github.com/anacrolix/torrent/peer_protocol"
)

// A seeder that refuses most of its pieces (bad on its source) must still
// deliver the good ones. The library adds no request after a reject that
// leaves a connection without requests, and has no timer to retry: a
// client whose last request to a peer was refused used to wait forever.
func TestRefusedPiecesDoNotStarveTheConnection(t *testing.T) {
	const pl = 256 << 10
	for _, tc := range []struct {
		name   string
		reveal bool
	}{{"reveal", true}, {"ordinary", false}} {
		t.Run(tc.name, func(t *testing.T) {
			im := makeImage(t, 8*pl-12345, 1, pl, 31)
			_, l, err := torrentfile.Summarize(im.mi)
			if err != nil {
				t.Fatal(err)
			}
			if l.NumPieces != 8 {
				t.Fatalf("%d pieces, want 8", l.NumPieces)
			}
			// Pieces 0..6 are bad on the seeder's source, piece 7 is good.
			f, err := os.OpenFile(filepath.Join(im.dir, l.FileNames[0]), os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			for k := range int64(7) {
				f.WriteAt([]byte{^im.data[0][k*pl+100]}, k*pl+100)
			}
			f.Close()
			strat := Strategy{RevealOff: !tc.reveal}
			seed, err := Seed(context.Background(), SeedOptions{
				Torrent: im.mi, Source: im.dir, NoTracker: true,
				Tuning: Tuning{ListenAddr: "127.0.0.1:0", Strategy: strat},
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { seed.Stop(); seed.Wait() })
			target := makeTargetFile(t, im.size)
			j, err := Deploy(context.Background(), DeployOptions{
				Torrent: im.mi, Target: target, SkipSafetyChecks: true,
				Seeders: []string{seed.PeerAddr()},
				Tuning:  Tuning{ListenAddr: "127.0.0.1:0", Strategy: strat},
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { j.Stop(); j.Wait() })
			// Well before the reveal's own fallback (15 s without
			// progress), which would hide a starved connection.
			deadline := time.Now().Add(12 * time.Second)
			for j.Snapshot().PiecesDone < 1 {
				if time.Now().After(deadline) {
					s := j.Snapshot()
					t.Fatalf("the good piece never came: %d/%d pieces, %d bytes downloaded, %d peers", s.PiecesDone, s.PiecesTotal, s.BytesDownloaded, s.NumPeers)
				}
				time.Sleep(100 * time.Millisecond)
			}
			if s := j.Snapshot(); s.HashFailures != 0 {
				t.Errorf("%d hash failures: bad data was served", s.HashFailures)
			}
			if !tc.reveal {
				return
			}
			// Once the seeder knows the bad pieces, it reveals them to no
			// one: a second client is never refused anything.
			for len(seed.BadPieces()) < 7 {
				if time.Now().After(deadline) {
					t.Fatalf("the seeder found %d bad pieces, want 7", len(seed.BadPieces()))
				}
				time.Sleep(100 * time.Millisecond)
			}
			j2, err := Deploy(context.Background(), DeployOptions{
				Torrent: im.mi, Target: makeTargetFile(t, im.size), SkipSafetyChecks: true,
				Seeders: []string{seed.PeerAddr()},
				Tuning:  Tuning{ListenAddr: "127.0.0.1:0", Strategy: strat},
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { j2.Stop(); j2.Wait() })
			for j2.Snapshot().PiecesDone < 1 {
				if time.Now().After(deadline.Add(10 * time.Second)) {
					t.Fatal("the second client never got the good piece")
				}
				time.Sleep(100 * time.Millisecond)
			}
			// The seeder's connection shows what it revealed.
			for _, pc := range j2.t.PeerConns() {
				if pc.RemoteAddr.String() != seed.PeerAddr() {
					continue
				}
				if bm := pc.PeerPieces(); !bm.IsEmpty() && bm.Minimum() < 7 {
					t.Errorf("the seeder revealed %v to a second client, with pieces 0-6 it knows are bad", bm)
				}
			}
		})
	}
}

func TestRefusalsCountOnlyRejectsWhileUnchoked(t *testing.T) {
	r := newRefusals()
	pc := &torrent.PeerConn{}
	msg := func(m pp.Message) { r.read(pc, &m) }
	later := func() time.Time { return time.Now().Add(rejectSettle) }
	// A keep-alive has the zero type, which is Choke's.
	msg(pp.Message{Type: pp.Unchoke})
	msg(pp.Message{Keepalive: true})
	if u, _ := r.state(pc, later()); !u {
		t.Fatal("a keep-alive was read as a choke")
	}
	msg(pp.Message{Type: pp.Choke})
	msg(pp.Message{Type: pp.Reject, Index: 4})
	if u, last := r.state(pc, later()); u || last || len(r.refusedRecently(time.Now())) != 0 {
		t.Fatal("a reject after a choke (fast extension: the queue is dropped) counted as a refusal")
	}
	msg(pp.Message{Type: pp.Unchoke})
	msg(pp.Message{Type: pp.Reject, Index: 3})
	if u, last := r.state(pc, time.Now()); !u || last {
		t.Fatalf("state just after a reject: unchoked %v, reject last %v; want true, false (not settled)", u, last)
	}
	if _, last := r.state(pc, later()); !last {
		t.Fatal("a reject that was the last answer is not seen as such once settled")
	}
	if got := r.refusedRecently(time.Now()); !got[pc][3] || len(got[pc]) != 1 {
		t.Fatalf("refused %v, want piece 3", got)
	}
	msg(pp.Message{Type: pp.Piece, Index: 3})
	if _, last := r.state(pc, later()); last {
		t.Fatal("a block after the reject still counts the reject as the last answer")
	}
	if got := r.refusedRecently(time.Now()); got[pc][3] {
		t.Fatal("a piece the peer sent a block of is still refused")
	}
	msg(pp.Message{Type: pp.Reject, Index: 5})
	if got := r.refusedRecently(time.Now().Add(refuseCooldown)); len(got) != 0 {
		t.Fatalf("a refusal older than refuseCooldown is kept: %v", got)
	}
	r.closed(pc)
	if u, _ := r.state(pc, later()); u || len(r.conns) != 0 {
		t.Fatal("a closed connection is remembered")
	}
}
