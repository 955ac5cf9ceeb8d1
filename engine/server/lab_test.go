package server_test

import (
	"bytes"
	"encoding/json"
	"ezio/disks/disktest"
	"ezio/engine/server"
	"ezio/engine/server/servertest"
	"ezio/engine/torrentfile/torrentfiletest"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"
)

func TestImagesJSONKindsAndPartitions(t *testing.T) {
	ls := servertest.NewLab(t)
	_, b := disktest.HTTPGet(t, ls.S.BaseURL()+"/images.json")
	var es []server.ImageEntry
	if err := json.Unmarshal(b, &es); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	if len(es) != 2 || es[0].Name != "lab" || es[1].Name != "sda1" {
		t.Fatalf("entries %+v, want lab and sda1", es)
	}
	disk, part := es[0], es[1]
	if part.Kind != server.KindPartition || part.Torrent != "/torrents/sda1.torrent" || part.URL != "/images/sda1" || part.InfoHash != ls.Part.HashInfoBytes().HexString() || len(part.Partitions) != 0 {
		t.Errorf("partition image entry: %+v", part)
	}
	if disk.Kind != server.KindDisk || disk.Torrent != "" || disk.URL != "/images/lab" || disk.Size != 8<<20 || disk.Pieces != 8 || disk.HighestEnd != 264<<20 {
		t.Errorf("disk image entry: %+v", disk)
	}
	if len(disk.Partitions) != 3 {
		t.Fatalf("disk partitions %+v", disk.Partitions)
	}
	want := []server.ImagePart{
		{Name: "sdb1", Number: 1, Start: 1 << 20, Size: 100 << 20, FS: "vfat", Torrent: "/torrents/lab/sdb1.torrent", InfoHash: ls.ESP.HashInfoBytes().HexString(), Bytes: 2 << 20, Pieces: 2, PieceLength: 1 << 20},
		{Name: "sdb2", Number: 2, Start: 101 << 20, Size: 99 << 20, FS: "ext4", Torrent: "/torrents/lab/sdb2.torrent", InfoHash: ls.Root.HashInfoBytes().HexString(), Bytes: 6 << 20, Pieces: 6, PieceLength: 1 << 20},
		{Name: "sdb3", Number: 3, Start: 200 << 20, Size: 64 << 20, FS: "swap"},
	}
	for i, w := range want {
		if disk.Partitions[i] != w {
			t.Errorf("partition %d: %+v, want %+v", i, disk.Partitions[i], w)
		}
	}
}

func TestImageRouteForDiskAndPartitionImages(t *testing.T) {
	ls := servertest.NewLab(t)
	base := ls.S.BaseURL()
	resp, b := disktest.HTTPGet(t, base+"/images/lab")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("/images/lab: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	var info server.ImageInfo
	if err := json.Unmarshal(b, &info); err != nil {
		t.Fatal(err)
	}
	if info.Kind != server.KindDisk || len(info.Partitions) != 3 {
		t.Fatalf("/images/lab: %+v", info)
	}
	var m, wantM any
	json.Unmarshal(info.Manifest, &m)
	json.Unmarshal(ls.Manifest, &wantM)
	if !bytes.Equal(mustJSON(t, m), mustJSON(t, wantM)) {
		t.Errorf("manifest %s, want %s", info.Manifest, ls.Manifest)
	}
	wantT := []string{base + "/torrents/lab/sdb1.torrent", base + "/torrents/lab/sdb2.torrent"}
	if strings.Join(info.Torrents, " ") != strings.Join(wantT, " ") {
		t.Errorf("torrents %v, want %v", info.Torrents, wantT)
	}

	_, b = disktest.HTTPGet(t, base+"/images/sda1")
	info = server.ImageInfo{}
	json.Unmarshal(b, &info)
	if info.Kind != server.KindPartition || len(info.Torrents) != 1 || info.Torrents[0] != base+"/torrents/sda1.torrent" || info.Manifest != nil {
		t.Errorf("/images/sda1: %+v", info)
	}

	// A disk partition's torrent, pointed at this tracker.
	resp, b = disktest.HTTPGet(t, base+"/torrents/lab/sdb2.torrent")
	mi, err := metainfo.Load(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if mi.HashInfoBytes() != ls.Root.HashInfoBytes() || mi.Announce != base+"/announce" {
		t.Errorf("served torrent: infohash %s announce %s", mi.HashInfoBytes().HexString(), mi.Announce)
	}
	if h := resp.Header.Get(server.SeederHeader); h != "127.0.0.1:6881" {
		t.Errorf("%s header %q", server.SeederHeader, h)
	}
	for _, p := range []string{"/images/nope", "/torrents/nope.torrent", "/torrents/lab/sdb3.torrent", "/torrents/sda1", "/nope"} {
		if resp, _ := disktest.HTTPGet(t, base+p); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %s, want 404", p, resp.Status)
		}
	}
}

func TestAddDiskImageRefusals(t *testing.T) {
	ls := servertest.NewLab(t)
	mi := torrentfiletest.Fake(t, "sdc1", 1, 1<<20)
	for name, d := range map[string]server.DiskImage{
		"same name":      {Name: "lab", Parts: []server.DiskPart{{Name: "sdc1", MI: mi}}},
		"partition name": {Name: "sda1", Parts: []server.DiskPart{{Name: "sdc1", MI: mi}}},
		"bad manifest":   {Name: "x", Manifest: []byte("{"), Parts: []server.DiskPart{{Name: "sdc1", MI: mi}}},
		"slash":          {Name: "a/b", Parts: []server.DiskPart{{Name: "sdc1", MI: mi}}},
		"repeated part":  {Name: "y", Parts: []server.DiskPart{{Name: "sdc1", MI: mi}, {Name: "sdc1"}}},
	} {
		if err := ls.S.AddDiskImage(d); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := ls.S.AddImage(torrentfiletest.Fake(t, "lab", 1, 1<<20), 1); err == nil {
		t.Error("a partition image took the name of a disk image")
	}
}

// TestHeldServerAnswersOnceOpen: a client that asks a seeder's server
// while its images are still being added waits, then gets the image (it
// was told "not found" and gave up, exit 3, when a room started at once).
func TestHeldServerAnswersOnceOpen(t *testing.T) {
	s, err := server.NewServer("127.0.0.1:0", nil, server.WithHold())
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
	if err := s.AddImage(torrentfiletest.Fake(t, "sda1", 4, 1<<20), 6881); err != nil {
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
	ls := servertest.NewLab(t)
	if resp, _ := disktest.HTTPGet(t, ls.S.BaseURL()+"/images.json"); resp.StatusCode != http.StatusOK {
		t.Errorf("an unheld server answered %d", resp.StatusCode)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestScriptReport: a client's finishing-script report is taken for an
// image the server serves (204), refused for another (404) and when it is
// not a report or too long (400).
func TestScriptReport(t *testing.T) {
	ls := servertest.NewLab(t)
	post := func(image, body string) int {
		t.Helper()
		resp, err := http.Post(ls.S.BaseURL()+"/images/"+image+"/"+server.ScriptReportPath+"?client=aa:bb", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	good := `{"hostname":"lab-1","script":"post.sh","exit":0,"output":"done\n"}`
	for _, c := range []struct {
		image, body string
		want        int
	}{
		{"lab", good, http.StatusNoContent},
		{"nope", good, http.StatusNotFound},
		{"lab", "not json", http.StatusBadRequest},
		{"lab", `{"output":"` + strings.Repeat("x", 70<<10) + `"}`, http.StatusBadRequest},
	} {
		if got := post(c.image, c.body); got != c.want {
			t.Errorf("POST %s (%d bytes): %d, want %d", c.image, len(c.body), got, c.want)
		}
	}
}
