package diskimage

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// ClientFiles reads the small files of an image directory that a client needs
// before any data: the manifest, the partition table and
// boot areas, Clonezilla's disk and parts lists, swap records, and each
// partition's torrent and torrent.info. Never the extents.
func ClientFiles(dir string, m *Manifest) (map[string][]byte, error) {
	names := []string{ManifestFile, "disk", "parts", m.PartitionTable, m.MBR, m.HiddenAfterMBR, m.GPTBackup}
	for _, p := range m.Partitions {
		names = append(names, p.Torrent, p.TorrentInfo)
	}
	names = append(names, Scripts(dir)...) // what --then-run names
	if swaps, err := filepath.Glob(filepath.Join(dir, "swappt-*.info")); err == nil {
		for _, sw := range swaps {
			names = append(names, filepath.Base(sw))
		}
	}
	files := map[string][]byte{}
	for _, n := range names {
		if n == "" || files[n] != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(n)))
		if errors.Is(err, fs.ErrNotExist) && n != ManifestFile {
			continue
		}
		if err != nil {
			return nil, err
		}
		files[n] = b
	}
	return files, nil
}

// MaxScript caps a --then-run script's size.
const MaxScript = 1 << 20

// Scripts are the *.sh files at the top of an image directory: what
// --then-run may name, served with the image.
func Scripts(dir string) []string {
	var out []string
	matches, _ := filepath.Glob(filepath.Join(dir, "*.sh"))
	for _, m := range matches {
		if st, err := os.Stat(m); err == nil && st.Mode().IsRegular() && st.Size() <= MaxScript {
			out = append(out, filepath.Base(m))
		}
	}
	return out
}
