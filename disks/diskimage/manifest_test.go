package diskimage

import (
	"strings"
	"testing"
	"testing/fstest"
)

func goodManifest() *Manifest {
	return &Manifest{
		Format: Format, Name: "pc", Disk: "sda", SizeBytes: 100 << 20, SectorSize: 512, Label: "gpt",
		PartitionTable: "sda-pt.sf", MBR: "sda-mbr", GPTBackup: "sda-gpt.gdisk",
		Partitions: []Partition{
			{Number: 1, Name: "sda1", Start: 1 << 20, Size: 40 << 20, Saved: SavedPartclone, Torrent: "sda1.torrent", ImageDir: "sda1", UsedBytes: 5},
			{Number: 2, Name: "sda2", Start: 41 << 20, Size: 20 << 20, Saved: SavedSwap},
		},
	}
}

func TestManifestCheck(t *testing.T) {
	if err := goodManifest().Check(); err != nil {
		t.Fatal(err)
	}
	if m := goodManifest(); m.End() != 61<<20 || m.DataBytes() != 5 {
		t.Errorf("end %d data %d", m.End(), m.DataBytes())
	}
	bad := map[string]func(m *Manifest){
		"format":          func(m *Manifest) { m.Format = "ezio-disk/9" },
		"label":           func(m *Manifest) { m.Label = "sun" },
		"traversal":       func(m *Manifest) { m.Partitions[0].Torrent = "../../etc/passwd" },
		"table traversal": func(m *Manifest) { m.PartitionTable = "/etc/x" },
		"past the end":    func(m *Manifest) { m.Partitions[1].Size = 90 << 20 },
		"repeated number": func(m *Manifest) { m.Partitions[1].Number = 1 },
		"no torrent":      func(m *Manifest) { m.Partitions[0].Torrent = "" },
		"unknown saved":   func(m *Manifest) { m.Partitions[1].Saved = "magic" },
		"no sector size":  func(m *Manifest) { m.SectorSize = 0 },
		"no table":        func(m *Manifest) { m.PartitionTable = "" },
		"negative start":  func(m *Manifest) { m.Partitions[0].Start = -1 },
		"zero-size":       func(m *Manifest) { m.Partitions[0].Size = 0 },
	}
	for name, f := range bad {
		m := goodManifest()
		f(m)
		if err := m.Check(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestLoad(t *testing.T) {
	fsys := fstest.MapFS{ManifestFile: {Data: []byte(`{"format":"ezio-disk/1","label":"dos","size_bytes":1,"sector_size":512}`)}}
	if _, err := Load(fsys); err == nil || !strings.Contains(err.Error(), "partition table") {
		t.Errorf("a manifest without a table file: %v", err)
	}
	if _, err := Load(fstest.MapFS{ManifestFile: {Data: []byte("{")}}); err == nil {
		t.Error("bad JSON accepted")
	}
}
