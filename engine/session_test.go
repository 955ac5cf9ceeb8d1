package engine

import (
	"context"
	"net"
	"os"
	"testing"
	"time"
)

// TestSessionHostsSeveralTorrents: one seeder session serves two images
// on one port, one client session writes both; a third image is written
// at a base offset inside a larger file, as a partition inside a disk.
func TestSessionHostsSeveralTorrents(t *testing.T) {
	a := makeImage(t, 6<<20, 3, 256<<10, 11)
	b := makeImage(t, 5<<20, 2, 256<<10, 12)
	srv, err := NewSession(SessionOptions{Tuning: Tuning{ListenAddr: "127.0.0.1:0"}, Serve: true, ServerListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx := context.Background()
	for _, im := range []*testImage{a, b} {
		if _, err := srv.Seed(ctx, SeedOptions{Torrent: im.mi, Source: im.dir}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(srv.Jobs()); n != 2 {
		t.Fatalf("session hosts %d jobs, want 2", n)
	}
	if _, err := srv.Seed(ctx, SeedOptions{Torrent: a.mi, Source: a.dir}); err == nil {
		t.Error("the same torrent was accepted twice in one session")
	}
	cl, err := NewSession(SessionOptions{Tuning: Tuning{ListenAddr: "127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ta, tb := makeTargetFile(t, a.size), makeTargetFile(t, b.size)
	const base = 3 << 20
	tc := makeTargetFile(t, a.size+base)
	var jobs []*Job
	for _, o := range []DeployOptions{
		{Torrent: a.mi, Target: ta},
		{Torrent: b.mi, Target: tb},
	} {
		o.Seeders, o.SkipSafetyChecks, o.Trackers = []string{srv.PeerAddr()}, true, []string{srv.Server().AnnounceURL()}
		j, err := cl.Deploy(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, j)
	}
	for i, j := range jobs {
		if err := waitJob(t, j, time.Minute); err != nil {
			t.Fatalf("image %d: %v", i, err)
		}
		if j.PeerAddr() != cl.PeerAddr() {
			t.Errorf("job %d listens on %s, the session on %s", i, j.PeerAddr(), cl.PeerAddr())
		}
	}
	checkTarget(t, a, ta)
	checkTarget(t, b, tb)
	// The same image again into another target at a base offset, in the
	// same client session (its infohash is free again).
	j, err := cl.Deploy(ctx, DeployOptions{Torrent: a.mi, Target: tc, Base: base, Seeders: []string{srv.PeerAddr()}, SkipSafetyChecks: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := waitJob(t, j, time.Minute); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(tc)
	for i, e := range a.extents {
		if string(got[base+e.Offset:base+e.End()]) != string(a.data[i]) {
			t.Fatalf("extent %d is not at base+%d", i, e.Offset)
		}
	}
	for k := int64(0); k < base; k++ {
		if got[k] != pattern {
			t.Fatalf("byte %d below the base offset was written", k)
		}
	}
}

// TestIdlePeersDoNotStarveAnHonestClient: hundreds of connections that
// handshake and then move nothing fill the seeder's slots; they are
// dropped when slots run short, and an honest client still gets the image
// in seconds.
func TestIdlePeersDoNotStarveAnHonestClient(t *testing.T) {
	im := makeImage(t, 4<<20, 2, 256<<10, 13)
	seed := startSeed(t, im, im.dir)
	ih := im.mi.HashInfoBytes()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range 260 {
		c, err := net.DialTimeout("tcp4", seed.PeerAddr(), 2*time.Second)
		if err != nil {
			t.Fatalf("fake peer %d: %v", i, err)
		}
		hs := append([]byte{19}, "BitTorrent protocol"...)
		hs = append(hs, make([]byte, 8)...)
		hs = append(hs, ih[:]...)
		id := []byte("-FK0001-000000000000")
		id[12], id[13], id[14] = byte('0'+i/100), byte('0'+i/10%10), byte('0'+i%10)
		hs = append(hs, id...)
		c.Write(hs)
		conns = append(conns, c)
	}
	// Let them settle into the slots.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && seed.Snapshot().NumPeers < slotsShort {
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d idle peers connected to the seeder", seed.Snapshot().NumPeers)
	start := time.Now()
	j, err := Deploy(context.Background(), DeployOptions{
		Torrent: im.mi, Target: makeTargetFile(t, im.size), Seeders: []string{seed.PeerAddr()},
		SkipSafetyChecks: true, Tuning: Tuning{ListenAddr: "127.0.0.1:0"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := waitJob(t, j, time.Minute); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 12*time.Second {
		t.Errorf("the honest client took %.1fs beside idle peers", el.Seconds())
	} else {
		t.Logf("the honest client took %.1fs", el.Seconds())
	}
}
