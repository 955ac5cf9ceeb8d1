package diskdeploy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"ezio/disks/diskimage"
)

// A directory that is not a disk image, or one whose partition torrent is
// missing, is an ImageError (the CLI's exit status 2), and nothing is left
// serving.
func TestSeedRefusesWhatIsNotAnImage(t *testing.T) {
	var ie *ImageError
	if _, err := Seed(context.Background(), t.TempDir(), SeedOptions{NoTracker: true}); !errors.As(err, &ie) {
		t.Fatalf("an empty directory: %v (%T), want an *ImageError", err, err)
	}
	if IsImageSource(context.Background(), t.TempDir()) {
		t.Error("an empty directory is taken for a disk image")
	}
}

// ClientFiles lists what a client reads before any data, and never the
// extents; files the image does not have are left out, but the manifest
// is required.
func TestClientFilesAreTheSmallOnes(t *testing.T) {
	dir := t.TempDir()
	m := &diskimage.Manifest{PartitionTable: "sda-pt.sf", MBR: "sda-mbr",
		Partitions: []diskimage.Partition{{Name: "sda1", Torrent: "sda1.torrent", TorrentInfo: "sda1.torrent.info", ImageDir: "sda1"}}}
	if _, err := diskimage.ClientFiles(dir, m); err == nil {
		t.Fatal("no manifest, and no error")
	}
	for name, body := range map[string]string{diskimage.ManifestFile: "{}", "sda-pt.sf": "label: gpt\n", "sda1.torrent": "d4:infod", "swappt-sda2.info": "UUID=x",
		"sda1/00000000000000000000000000000000": "extent data"} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files, err := diskimage.ClientFiles(dir, m)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{diskimage.ManifestFile, "sda-pt.sf", "sda1.torrent", "swappt-sda2.info"} {
		if files[want] == nil {
			t.Errorf("%s missing from %v", want, keys(files))
		}
	}
	if len(files) != 4 {
		t.Errorf("files %v: want exactly the four small files present (no extents, nothing absent)", keys(files))
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
