package server

import (
	"errors"
	"ezio/engine/torrentfile/torrentfiletest"
	"net/netip"
	"strings"
	"testing"
)

// TestDiskImageFleet counts a client of a disk image once, done when every
// partition is.
func TestDiskImageFleet(t *testing.T) {
	s := newServer(discardLog())
	esp, root := torrentfiletest.Fake(t, "sdb1", 2, 1<<20), torrentfiletest.Fake(t, "sdb2", 6, 1<<20)
	if err := s.AddDiskImage(DiskImage{Name: "lab", Parts: []DiskPart{{Name: "sdb1", MI: esp}, {Name: "sdb2", Start: 3 << 20, MI: root}}}); err != nil {
		t.Fatal(err)
	}
	all := func(netip.AddrPort) Evidence { return Evidence{Pieces: 100} }
	s.SetWitness(esp.HashInfoBytes(), all)
	s.SetWitness(root.HashInfoBytes(), all)
	tt := &trackerUnderTest{t: t, s: s, h: s.Handler()}
	tt.ih = esp.HashInfoBytes()
	tt.announce("192.0.2.70:1", "disk-client-00000001", 6881, 0, "event=completed")
	tt.ih = root.HashInfoBytes()
	tt.announce("192.0.2.70:1", "disk-client-00000001", 6881, 3<<20, "")
	st := s.Status("server")
	if len(st.Images) != 1 || len(st.Images[0].Fleet) != 1 {
		t.Fatalf("status %+v", st)
	}
	m := st.Images[0].Fleet[0]
	if m.Completed || m.State != FleetDownloading || m.Done != 5.0/8 {
		t.Errorf("half-done disk client: %+v, want downloading at 5/8", m)
	}
	tt.announce("192.0.2.70:1", "disk-client-00000001", 6881, 0, "event=completed")
	st = s.Status("server")
	if m := st.Images[0].Fleet[0]; !m.Completed || m.State != FleetDone || st.Summary != "1 of 1 clients done" {
		t.Errorf("finished disk client: %+v, summary %q", m, st.Summary)
	}
}

func TestServerListenErrorIsTyped(t *testing.T) {
	s, err := NewServer("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = NewServer(s.Addr(), nil)
	var le *ServerListenError
	if !errors.As(err, &le) || le.Addr != s.Addr() || strings.Contains(err.Error(), "--") {
		t.Errorf("second server on %s: %v, want a ServerListenError without flag names", s.Addr(), err)
	}
}
