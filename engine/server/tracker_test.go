package server

import (
	"ezio/engine/torrentfile/torrentfiletest"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
)

// testClock is a settable clock for the tracker.
type testClock struct{ ns atomic.Int64 }

func (c *testClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *testClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// trackerUnderTest is a server without a listener: requests go straight
// to its handler, with any source address the test wants.
type trackerUnderTest struct {
	t     testing.TB
	s     *Server
	h     http.Handler
	ih    metainfo.Hash
	total int64
	clock *testClock
}

func newTrackerUnderTest(t testing.TB, opts ...ServerOption) *trackerUnderTest {
	s := newServer(slog.New(slog.DiscardHandler))
	for _, o := range opts {
		o(s)
	}
	clock := &testClock{}
	clock.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	s.now = clock.now
	mi := torrentfiletest.Fake(t, "sda1", 10, 1<<20)
	if err := s.AddImage(mi, 6881); err != nil {
		t.Fatal(err)
	}
	return &trackerUnderTest{t: t, s: s, h: s.Handler(), ih: mi.HashInfoBytes(), total: 10 << 20, clock: clock}
}

type announceResp struct {
	Failure    string `bencode:"failure reason"`
	Interval   int    `bencode:"interval"`
	Complete   int    `bencode:"complete"`
	Incomplete int    `bencode:"incomplete"`
	Peers      string `bencode:"peers"`
}

func (r announceResp) peers() []netip.AddrPort {
	var out []netip.AddrPort
	for b := []byte(r.Peers); len(b) >= 6; b = b[6:] {
		out = append(out, netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[:4])), uint16(b[4])<<8|uint16(b[5])))
	}
	return out
}

// announce sends one announce from src; extra is added to the query.
func (tt *trackerUnderTest) announce(src, peerID string, port int, left int64, extra string) (int, announceResp) {
	tt.t.Helper()
	q := url.Values{}
	q.Set("info_hash", string(tt.ih[:]))
	q.Set("peer_id", peerID)
	q.Set("port", fmt.Sprint(port))
	q.Set("left", fmt.Sprint(left))
	q.Set("uploaded", "0")
	u := "/announce?" + q.Encode()
	if extra != "" {
		u += "&" + extra
	}
	req := httptest.NewRequest(http.MethodGet, u, nil)
	req.RemoteAddr = src
	rec := httptest.NewRecorder()
	tt.h.ServeHTTP(rec, req)
	var r announceResp
	if rec.Code == http.StatusOK {
		if err := bencode.Unmarshal(rec.Body.Bytes(), &r); err != nil {
			tt.t.Fatalf("announce answer %q: %v", rec.Body.String(), err)
		}
	}
	return rec.Code, r
}

func (tt *trackerUnderTest) fleet() []FleetMember { return tt.s.Fleet(tt.ih, tt.total) }

func memberOf(f []FleetMember, addr string) *FleetMember {
	for i := range f {
		if f[i].Addr == addr {
			return &f[i]
		}
	}
	return nil
}

func TestTrackerIgnoresSpoofedIP(t *testing.T) {
	tt := newTrackerUnderTest(t)
	// The announce claims to be 10.88.0.99:22; it came from 192.0.2.10.
	if code, r := tt.announce("192.0.2.10:40000", "spoofer-000000000001", 22, tt.total, "ip=10.88.0.99"); code != 200 || r.Failure != "" {
		t.Fatalf("announce: %d %q", code, r.Failure)
	}
	// ip= equal to the source is fine.
	tt.announce("192.0.2.11:40001", "honest-0000000000001", 6881, tt.total, "ip=192.0.2.11")
	_, r := tt.announce("192.0.2.12:40002", "asker-00000000000001", 6881, tt.total, "")
	got := map[netip.AddrPort]bool{}
	for _, p := range r.peers() {
		got[p] = true
	}
	if got[netip.MustParseAddrPort("10.88.0.99:22")] {
		t.Errorf("the tracker handed out the spoofed address 10.88.0.99:22: %v", r.peers())
	}
	for _, want := range []string{"192.0.2.10:22", "192.0.2.11:6881"} {
		if !got[netip.MustParseAddrPort(want)] {
			t.Errorf("peer list %v lacks %s", r.peers(), want)
		}
	}
	if m := memberOf(tt.fleet(), "10.88.0.99:22"); m != nil {
		t.Errorf("the fleet lists the spoofed address: %+v", m)
	}
}

func TestTrackerPeerIDBoundToItsSource(t *testing.T) {
	tt := newTrackerUnderTest(t)
	tt.announce("192.0.2.20:1", "victim-0000000000001", 6881, tt.total/2, "")
	// Someone else replays the victim's peer id to mark it stopped and done.
	tt.announce("192.0.2.66:1", "victim-0000000000001", 6881, 0, "event=stopped")
	f := tt.fleet()
	m := memberOf(f, "192.0.2.20:6881")
	if m == nil || m.State != FleetDownloading || m.Done != 0.5 {
		t.Fatalf("the victim's entry was changed by another machine: %+v", f)
	}
	if len(f) != 1 {
		t.Errorf("fleet %+v, want only the victim", f)
	}
}

func TestTrackerFakeCompletionIsReported(t *testing.T) {
	tt := newTrackerUnderTest(t)
	// Without a witness nobody can be confirmed.
	tt.announce("192.0.2.30:1", "early-00000000000001", 6881, 0, "event=completed")
	if m := memberOf(tt.fleet(), "192.0.2.30:6881"); m == nil || m.Completed || !m.Reported || m.State != FleetReported {
		t.Fatalf("completion without a witness: %+v", m)
	}
	// The seeder saw 192.0.2.31 take every piece, and nobody else.
	var calls atomic.Int32
	tt.s.SetWitness(tt.ih, func(p netip.AddrPort) Evidence {
		calls.Add(1)
		if p == netip.MustParseAddrPort("192.0.2.31:6881") {
			return Evidence{Pieces: 10}
		}
		return Evidence{Pieces: 9, Uploaded: tt.total - 1}
	})
	tt.announce("192.0.2.31:1", "real-000000000000001", 6881, 0, "event=completed")
	tt.announce("192.0.2.32:1", "liar-000000000000001", 6881, 0, "event=completed")
	// Announce answers count entries as of the last sweep, once a second.
	tt.clock.advance(1100 * time.Millisecond)
	_, r := tt.announce("192.0.2.32:1", "liar-000000000000001", 6881, 0, "")
	f := tt.fleet()
	if m := memberOf(f, "192.0.2.31:6881"); m == nil || !m.Completed || m.State != FleetDone || m.Done != 1 {
		t.Errorf("witnessed completion not believed: %+v", m)
	}
	if m := memberOf(f, "192.0.2.32:6881"); m == nil || m.Completed || m.State != FleetReported {
		t.Errorf("fake completion believed: %+v", m)
	}
	// One confirmed client plus the seeder itself.
	if r.Complete != 2 {
		t.Errorf("announce says %d complete, want 2 (the seeder and one confirmed client)", r.Complete)
	}
	done := 0
	for _, e := range tt.s.entries() {
		done += e.Done
	}
	if done != 1 {
		t.Errorf("/images.json counts %d done, want 1", done)
	}
	if calls.Load() == 0 {
		t.Error("the witness was never asked")
	}
	// The liar's claim is checked again later, and still not believed.
	time.Sleep(2500 * time.Millisecond)
	if m := memberOf(tt.fleet(), "192.0.2.32:6881"); m == nil || m.Completed {
		t.Errorf("fake completion believed on a later check: %+v", m)
	}
}

func TestTrackerLateEvidenceIsChecked(t *testing.T) {
	tt := newTrackerUnderTest(t)
	var seen atomic.Bool
	tt.s.SetWitness(tt.ih, func(p netip.AddrPort) Evidence {
		if seen.Load() {
			return Evidence{Pieces: 10}
		}
		return Evidence{Pieces: 9}
	})
	tt.announce("192.0.2.40:1", "late-000000000000001", 6881, 0, "event=completed")
	if m := memberOf(tt.fleet(), "192.0.2.40:6881"); m == nil || m.Completed {
		t.Fatalf("completed before the evidence: %+v", m)
	}
	// Its last have message reaches the seeder just after the announce.
	seen.Store(true)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m := memberOf(tt.fleet(), "192.0.2.40:6881"); m != nil && m.Completed {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("a completion whose evidence came late was never confirmed")
}

func TestTrackerTenThousandFakePeers(t *testing.T) {
	tt := newTrackerUnderTest(t)
	tt.s.SetWitness(tt.ih, func(p netip.AddrPort) Evidence {
		if p.Addr() == netip.MustParseAddr("192.0.2.50") {
			return Evidence{Pieces: 10}
		}
		return Evidence{}
	})
	// Two real clients: one done, one downloading.
	tt.announce("192.0.2.50:1", "done-000000000000001", 6881, 0, "event=completed")
	tt.announce("192.0.2.51:1", "busy-000000000000001", 6881, tt.total/2, "")

	start := time.Now()
	const fakes = 10000
	for i := range fakes {
		src := fmt.Sprintf("198.18.%d.%d:1", i/250, i%250+1)
		code, r := tt.announce(src, fmt.Sprintf("fake-%015d", i), 1000+i%60000, 0, "event=completed")
		if code != 200 || r.Failure != "" {
			t.Fatalf("fake %d: %d %q", i, code, r.Failure)
		}
		if n := len(r.peers()); n > 200 {
			t.Fatalf("announce handed out %d peers, more than numwant's cap", n)
		}
	}
	t.Logf("%d fake announces in %v", fakes, time.Since(start))
	f := tt.fleet()
	if len(f) != MaxPeersPerTorrent {
		t.Errorf("fleet has %d entries after %d fakes, want the cap %d", len(f), fakes, MaxPeersPerTorrent)
	}
	done, reported := 0, 0
	for _, m := range f {
		if m.Completed {
			done++
		}
		if m.Reported {
			reported++
		}
	}
	if done != 1 || reported != MaxPeersPerTorrent-2 {
		t.Errorf("fleet counts %d done and %d reported, want 1 and %d", done, reported, MaxPeersPerTorrent-2)
	}
	if memberOf(f, "192.0.2.51:6881") == nil {
		t.Error("the real client that announced before the flood was pushed out")
	}

	// The busy client keeps announcing; the fakes stop.
	for range 4 {
		tt.clock.advance(PeerTTL / 3)
		tt.announce("192.0.2.51:1", "busy-000000000000001", 6881, tt.total/4, "")
	}
	f = tt.fleet()
	if len(f) != 2 {
		t.Fatalf("after the fakes expired the fleet has %d entries, want 2 (the client that finished, the one still downloading): %+v", len(f), f[:min(len(f), 5)])
	}
	if m := memberOf(f, "192.0.2.50:6881"); m == nil || !m.Completed || m.Active {
		t.Errorf("the finished client: %+v (want completed, no longer active)", m)
	}
	if m := memberOf(f, "192.0.2.51:6881"); m == nil || m.State != FleetDownloading || m.Done != 0.75 {
		t.Errorf("the downloading client: %+v", m)
	}
	// Room again for newcomers.
	tt.announce("192.0.2.52:1", "new-0000000000000001", 6881, tt.total, "")
	if memberOf(tt.fleet(), "192.0.2.52:6881") == nil {
		t.Error("a newcomer after the expiry was not recorded")
	}
}

func TestTrackerStates(t *testing.T) {
	tt := newTrackerUnderTest(t)
	tt.announce("192.0.2.60:1", "left-000000000000001", 6881, tt.total/2, "")
	tt.announce("192.0.2.60:1", "left-000000000000001", 6881, tt.total/2, "event=stopped")
	tt.announce("192.0.2.61:1", "lost-000000000000001", 6881, tt.total/2, "")
	tt.clock.advance(lostAfter + time.Second)
	tt.announce("192.0.2.62:1", "here-000000000000001", 6881, tt.total, "")
	f := tt.fleet()
	for addr, want := range map[string]string{"192.0.2.60:6881": FleetLeft, "192.0.2.61:6881": FleetLost, "192.0.2.62:6881": FleetDownloading} {
		if m := memberOf(f, addr); m == nil || m.State != want {
			t.Errorf("%s: %+v, want state %s", addr, m, want)
		}
	}
	// A restarted client (same address and port, new id) replaces its entry.
	tt.announce("192.0.2.62:1", "here-000000000000002", 6881, tt.total, "")
	if n := len(tt.fleet()); n != 3 {
		t.Errorf("fleet has %d entries after a restart, want 3", n)
	}
	// Stopped and lost entries leave after PeerTTL.
	tt.clock.advance(PeerTTL)
	tt.announce("192.0.2.62:1", "here-000000000000002", 6881, tt.total, "")
	if f := tt.fleet(); len(f) != 1 {
		t.Errorf("after expiry: %+v, want only the client still announcing", f)
	}
}

// TestAnnounceConcurrent runs announces of one peer from two ports and
// fleet reads at once over a real listener (the seeder address path
// included); under -race it catches unlocked reads of an entry.
func TestAnnounceConcurrent(t *testing.T) {
	s, err := NewServer("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mi := torrentfiletest.Fake(t, "sda1", 4, 1<<20)
	s.AddImage(mi, 6881)
	ih := mi.HashInfoBytes()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				q := url.Values{"info_hash": {string(ih[:])}, "peer_id": {"same-peer-id-0000001"}, "port": {fmt.Sprint(7000 + (g+i)%2)}, "left": {fmt.Sprint(i)}}
				resp, err := http.Get(s.AnnounceURL() + "?" + q.Encode())
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				s.Fleet(ih, 4<<20)
			}
		}()
	}
	wg.Wait()
	if f := s.Fleet(ih, 4<<20); len(f) != 1 {
		t.Errorf("fleet %+v, want the one peer", f)
	}
}

func TestAllowList(t *testing.T) {
	l, err := ParseAllowList("10.0.0.0/8, 192.0.2.7")
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{"10.1.2.3": true, "192.0.2.7": true, "192.0.2.8": false, "::ffff:10.9.9.9": true, "127.0.0.1": false} {
		if got := l.Contains(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Contains(%s) = %v, want %v", addr, got, want)
		}
	}
	if l.String() != "10.0.0.0/8,192.0.2.7/32" {
		t.Errorf("String() = %q", l.String())
	}
	if _, blocked := l.Blocklist().Lookup(netip.MustParseAddr("192.0.2.8").AsSlice()); !blocked {
		t.Error("Blocklist does not block an address outside the list")
	}
	if _, blocked := l.Blocklist().Lookup(netip.MustParseAddr("10.0.0.1").AsSlice()); blocked {
		t.Error("Blocklist blocks an allowed address")
	}
	for _, bad := range []string{"10.0.0.0/33", "lab", ","} {
		if _, err := ParseAllowList(bad); err == nil {
			t.Errorf("ParseAllowList(%q) accepted", bad)
		}
	}
	if l, err := ParseAllowList(""); err != nil || len(l) != 0 || !l.Contains(netip.MustParseAddr("203.0.113.1")) {
		t.Errorf("empty list: %v %v, want everyone allowed", l, err)
	}

	tt := newTrackerUnderTest(t, WithAllow(l))
	if code, _ := tt.announce("192.0.2.8:1", "outsider-00000000001", 6881, 0, ""); code != http.StatusForbidden {
		t.Errorf("announce from outside: %d, want 403", code)
	}
	if code, _ := tt.announce("10.0.0.5:1", "insider-000000000001", 6881, tt.total, ""); code != http.StatusOK {
		t.Errorf("announce from inside: %d, want 200", code)
	}
	f := tt.fleet()
	if len(f) != 1 || f[0].Addr != "10.0.0.5:6881" {
		t.Errorf("fleet %+v, want only the allowed client", f)
	}
	for _, path := range []string{"/", "/status.json", "/images.json", "/images/sda1", "/torrents/sda1.torrent"} {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.RemoteAddr = "192.0.2.8:1234"
		rec := httptest.NewRecorder()
		tt.h.ServeHTTP(rec, req)
		if rec.Code != http.StatusForbidden || strings.Contains(rec.Body.String(), "sda1") {
			t.Errorf("%s from outside: %d %q, want 403 and nothing about the images", path, rec.Code, rec.Body.String())
		}
		req.RemoteAddr = "10.0.0.5:1234"
		rec = httptest.NewRecorder()
		tt.h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Errorf("%s from inside: %d", path, rec.Code)
		}
	}
	if !tt.s.Allow().Contains(netip.MustParseAddr("10.0.0.5")) || tt.s.Allow().Contains(netip.MustParseAddr("192.0.2.8")) {
		t.Error("Server.Allow does not report the list it enforces")
	}
}

// BenchmarkAnnounceFullSwarm is the cost of one announce when the torrent
// is at its cap (the work 30,000 fake peer ids can cause).
func BenchmarkAnnounceFullSwarm(b *testing.B) {
	tt := newTrackerUnderTest(b)
	for i := range MaxPeersPerTorrent {
		tt.announce(fmt.Sprintf("198.18.%d.%d:1", i/250, i%250+1), fmt.Sprintf("fake-%015d", i), 6881, 0, "")
	}
	b.ResetTimer()
	for i := range b.N {
		tt.announce("198.19.0.1:1", fmt.Sprintf("more-%015d", i), 6881, 0, "")
	}
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
