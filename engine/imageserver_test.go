package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"
)

// labServer serves a partition image "sda1" and a disk image "lab" of
// three partitions (the last one, swap, without a torrent).
type labServer struct {
	s         *Server
	part      *metainfo.MetaInfo
	esp, root *metainfo.MetaInfo
	manifest  []byte
	peerPort  int
}

func newLabServer(t *testing.T, opts ...ServerOption) *labServer {
	t.Helper()
	s, err := NewServer("127.0.0.1:0", nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ls := &labServer{
		s: s, part: fakeTorrent(t, "sda1", 4, 1<<20),
		esp: fakeTorrent(t, "sdb1", 2, 1<<20), root: fakeTorrent(t, "sdb2", 6, 1<<20),
		manifest: []byte(`{"disk":"sdb","label":"gpt","sector_size":512}`), peerPort: 6881,
	}
	if err := s.AddImage(ls.part, ls.peerPort); err != nil {
		t.Fatal(err)
	}
	err = s.AddDiskImage(DiskImage{Name: "lab", Manifest: ls.manifest, PeerPort: ls.peerPort, Parts: []DiskPart{
		{Name: "sdb3", Number: 3, Start: 200 << 20, Size: 64 << 20, FS: "swap"},
		{Name: "sdb2", Number: 2, Start: 101 << 20, Size: 99 << 20, FS: "ext4", MI: ls.root},
		{Name: "sdb1", Number: 1, Start: 1 << 20, Size: 100 << 20, FS: "vfat", MI: ls.esp},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

func getBody(t *testing.T, u string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestImagesJSONKindsAndPartitions(t *testing.T) {
	ls := newLabServer(t)
	_, b := getBody(t, ls.s.BaseURL()+"/images.json")
	var es []ImageEntry
	if err := json.Unmarshal(b, &es); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	if len(es) != 2 || es[0].Name != "lab" || es[1].Name != "sda1" {
		t.Fatalf("entries %+v, want lab and sda1", es)
	}
	disk, part := es[0], es[1]
	if part.Kind != KindPartition || part.Torrent != "/torrents/sda1.torrent" || part.URL != "/images/sda1" || part.InfoHash != ls.part.HashInfoBytes().HexString() || len(part.Partitions) != 0 {
		t.Errorf("partition image entry: %+v", part)
	}
	if disk.Kind != KindDisk || disk.Torrent != "" || disk.URL != "/images/lab" || disk.Size != 8<<20 || disk.Pieces != 8 || disk.HighestEnd != 264<<20 {
		t.Errorf("disk image entry: %+v", disk)
	}
	if len(disk.Partitions) != 3 {
		t.Fatalf("disk partitions %+v", disk.Partitions)
	}
	want := []ImagePart{
		{Name: "sdb1", Number: 1, Start: 1 << 20, Size: 100 << 20, FS: "vfat", Torrent: "/torrents/lab/sdb1.torrent", InfoHash: ls.esp.HashInfoBytes().HexString(), Bytes: 2 << 20, Pieces: 2, PieceLength: 1 << 20},
		{Name: "sdb2", Number: 2, Start: 101 << 20, Size: 99 << 20, FS: "ext4", Torrent: "/torrents/lab/sdb2.torrent", InfoHash: ls.root.HashInfoBytes().HexString(), Bytes: 6 << 20, Pieces: 6, PieceLength: 1 << 20},
		{Name: "sdb3", Number: 3, Start: 200 << 20, Size: 64 << 20, FS: "swap"},
	}
	for i, w := range want {
		if disk.Partitions[i] != w {
			t.Errorf("partition %d: %+v, want %+v", i, disk.Partitions[i], w)
		}
	}
}

func TestImageRouteForDiskAndPartitionImages(t *testing.T) {
	ls := newLabServer(t)
	base := ls.s.BaseURL()
	resp, b := getBody(t, base+"/images/lab")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("/images/lab: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	var info ImageInfo
	if err := json.Unmarshal(b, &info); err != nil {
		t.Fatal(err)
	}
	if info.Kind != KindDisk || len(info.Partitions) != 3 {
		t.Fatalf("/images/lab: %+v", info)
	}
	var m, wantM any
	json.Unmarshal(info.Manifest, &m)
	json.Unmarshal(ls.manifest, &wantM)
	if !bytes.Equal(mustJSON(t, m), mustJSON(t, wantM)) {
		t.Errorf("manifest %s, want %s", info.Manifest, ls.manifest)
	}
	wantT := []string{base + "/torrents/lab/sdb1.torrent", base + "/torrents/lab/sdb2.torrent"}
	if strings.Join(info.Torrents, " ") != strings.Join(wantT, " ") {
		t.Errorf("torrents %v, want %v", info.Torrents, wantT)
	}

	_, b = getBody(t, base+"/images/sda1")
	info = ImageInfo{}
	json.Unmarshal(b, &info)
	if info.Kind != KindPartition || len(info.Torrents) != 1 || info.Torrents[0] != base+"/torrents/sda1.torrent" || info.Manifest != nil {
		t.Errorf("/images/sda1: %+v", info)
	}

	// A disk partition's torrent, pointed at this tracker.
	resp, b = getBody(t, base+"/torrents/lab/sdb2.torrent")
	mi, err := metainfo.Load(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if mi.HashInfoBytes() != ls.root.HashInfoBytes() || mi.Announce != base+"/announce" {
		t.Errorf("served torrent: infohash %s announce %s", mi.HashInfoBytes().HexString(), mi.Announce)
	}
	if h := resp.Header.Get(SeederHeader); h != "127.0.0.1:6881" {
		t.Errorf("%s header %q", SeederHeader, h)
	}
	for _, p := range []string{"/images/nope", "/torrents/nope.torrent", "/torrents/lab/sdb3.torrent", "/torrents/sda1", "/nope"} {
		if resp, _ := getBody(t, base+p); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %s, want 404", p, resp.Status)
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAddDiskImageRefusals(t *testing.T) {
	ls := newLabServer(t)
	mi := fakeTorrent(t, "sdc1", 1, 1<<20)
	for name, d := range map[string]DiskImage{
		"same name":      {Name: "lab", Parts: []DiskPart{{Name: "sdc1", MI: mi}}},
		"partition name": {Name: "sda1", Parts: []DiskPart{{Name: "sdc1", MI: mi}}},
		"bad manifest":   {Name: "x", Manifest: []byte("{"), Parts: []DiskPart{{Name: "sdc1", MI: mi}}},
		"slash":          {Name: "a/b", Parts: []DiskPart{{Name: "sdc1", MI: mi}}},
		"repeated part":  {Name: "y", Parts: []DiskPart{{Name: "sdc1", MI: mi}, {Name: "sdc1"}}},
	} {
		if err := ls.s.AddDiskImage(d); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := ls.s.AddImage(fakeTorrent(t, "lab", 1, 1<<20), 1); err == nil {
		t.Error("a partition image took the name of a disk image")
	}
}

// TestDiskImageFleet counts a client of a disk image once, done when every
// partition is.
func TestDiskImageFleet(t *testing.T) {
	s := newServer(discardLog())
	esp, root := fakeTorrent(t, "sdb1", 2, 1<<20), fakeTorrent(t, "sdb2", 6, 1<<20)
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

// TestHeldServerAnswersOnceOpen: a client that asks a seeder's server
// while its images are still being added waits, then gets the image (it
// was told "not found" and gave up, exit 3, when a room started at once).
func TestHeldServerAnswersOnceOpen(t *testing.T) {
	s, err := NewServer("127.0.0.1:0", nil, WithHold())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	type answer struct {
		code int
		at   time.Time
		err  error
	}
	got := make(chan answer, 1)
	go func() {
		resp, err := http.Get(s.BaseURL() + "/torrents/sda1.torrent")
		if err != nil {
			got <- answer{err: err}
			return
		}
		resp.Body.Close()
		got <- answer{code: resp.StatusCode, at: time.Now()}
	}()
	select {
	case a := <-got:
		t.Fatalf("a held server answered before Open: %d %v", a.code, a.err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := s.AddImage(fakeTorrent(t, "sda1", 4, 1<<20), 6881); err != nil {
		t.Fatal(err)
	}
	opened := time.Now()
	s.Open()
	s.Open() // twice is harmless
	select {
	case a := <-got:
		if a.err != nil || a.code != http.StatusOK {
			t.Fatalf("after Open: %d %v, want 200", a.code, a.err)
		}
		if a.at.Before(opened) {
			t.Errorf("answered at %v, before Open at %v", a.at, opened)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no answer 10 s after Open")
	}
	// A server never held answers at once.
	ls := newLabServer(t)
	if resp, _ := getBody(t, ls.s.BaseURL()+"/images.json"); resp.StatusCode != http.StatusOK {
		t.Errorf("an unheld server answered %d", resp.StatusCode)
	}
}
