// Package servertest starts ezio servers with known images for the tests
// of the server and of its clients.
package servertest

import (
	"ezio/engine/server"
	"ezio/engine/torrentfile/torrentfiletest"
	"testing"

	"github.com/anacrolix/torrent/metainfo"
)

// Lab serves a partition image "sda1" and a disk image "lab" of
// three partitions (the last one, swap, without a torrent).
type Lab struct {
	S         *server.Server
	Part      *metainfo.MetaInfo
	ESP, Root *metainfo.MetaInfo
	Manifest  []byte
	PeerPort  int
}

// NewLab starts a Lab on loopback, closed when the test ends.
func NewLab(t testing.TB, opts ...server.ServerOption) *Lab {
	t.Helper()
	s, err := server.NewServer("127.0.0.1:0", nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ls := &Lab{
		S: s, Part: torrentfiletest.Fake(t, "sda1", 4, 1<<20),
		ESP: torrentfiletest.Fake(t, "sdb1", 2, 1<<20), Root: torrentfiletest.Fake(t, "sdb2", 6, 1<<20),
		Manifest: []byte(`{"disk":"sdb","label":"gpt","sector_size":512}`), PeerPort: 6881,
	}
	if err := s.AddImage(ls.Part, ls.PeerPort); err != nil {
		t.Fatal(err)
	}
	err = s.AddDiskImage(server.DiskImage{Name: "lab", Manifest: ls.Manifest, PeerPort: ls.PeerPort, Parts: []server.DiskPart{
		{Name: "sdb3", Number: 3, Start: 200 << 20, Size: 64 << 20, FS: "swap"},
		{Name: "sdb2", Number: 2, Start: 101 << 20, Size: 99 << 20, FS: "ext4", MI: ls.Root},
		{Name: "sdb1", Number: 1, Start: 1 << 20, Size: 100 << 20, FS: "vfat", MI: ls.ESP},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return ls
}
