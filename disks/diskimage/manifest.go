// Package diskimage describes a whole-disk image directory and writes one
// onto a disk. The directory is Clonezilla's (so the two tools read each
// other's disk metadata) plus ezio's manifest and one partclone BitTorrent
// layout per partition:
//
//	disk, parts                       the disk's name, the saved partitions' names
//	<disk>-pt.sf                      sfdisk --dump
//	<disk>-mbr                        the first sector
//	<disk>-hidden-data-after-mbr      MBR disks: sectors 1 .. first partition
//	<disk>-gpt.gdisk                  GPT disks: sgdisk --backup
//	swappt-<part>.info                a swap partition's UUID and label
//	<part>/  <part>.torrent  <part>.torrent.info   each saved partition
//	ezio-disk.json                    the Manifest, written last
//
// A partition torrent's extents are offsets inside its partition; on a disk
// they are written at the partition's start plus that offset.
package diskimage

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"ezio/disks/table"
)

// ManifestFile is the manifest's name inside an image directory.
const ManifestFile = "ezio-disk.json"

// Format is the manifest's format name and version.
const Format = "ezio-disk/1"

// How a partition was saved.
const (
	SavedPartclone = "partclone" // used blocks, by partclone.<fs>
	SavedDD        = "dd"        // every block, by partclone.dd
	SavedSwap      = "swap"      // not copied; recreated with its UUID and label
	SavedExtended  = "extended"  // an MBR extended partition: the table rebuilds its EBR chain
	// An LVM PV: its torrent holds the label and metadata area (the
	// bytes before its first extent); its LVs follow as entries of their
	// own, each with a Volume.
	SavedLVM = "lvm-pv"
)

// Volume places an entry on an LVM PV: one segment of a logical volume,
// its bytes at Offset from the start of partition PV. Its entry's Start
// is the same place from the start of the disk, its Number one above the
// table's (VolumeNumbers and up).
type Volume struct {
	PV       int    `json:"pv"` // the number of the PV's partition
	Offset   int64  `json:"offset"`
	VG       string `json:"vg"`
	VGUUID   string `json:"vg_uuid"`
	LV       string `json:"lv"`
	LVUUID   string `json:"lv_uuid"`
	Segment  int    `json:"segment"`      // 1-based, of Segments
	Segments int    `json:"segments"`     // of the LV
	StartLE  int64  `json:"start_extent"` // the LV's extent where this segment starts
}

// VolumeNumbers is the first number given to the LV entries of a disk
// image (no partition table numbers this high).
const VolumeNumbers = 1001

// Manifest is ezio-disk.json.
type Manifest struct {
	Format       string `json:"format"`
	Name         string `json:"name"`
	Disk         string `json:"disk"` // the source disk's name, the prefix of its files (Clonezilla's "disk")
	SourceDevice string `json:"source_device,omitempty"`
	ImportedFrom string `json:"imported_from,omitempty"` // a Clonezilla image directory
	SizeBytes    int64  `json:"size_bytes"`
	SectorSize   int64  `json:"sector_size"`
	Label        string `json:"label"` // "gpt" or "dos"
	LabelID      string `json:"label_id,omitempty"`
	// The files of the disk's metadata, relative to the directory.
	PartitionTable string      `json:"partition_table"` // <disk>-pt.sf
	MBR            string      `json:"mbr"`
	HiddenAfterMBR string      `json:"hidden_data_after_mbr,omitempty"`
	GPTBackup      string      `json:"gpt_backup,omitempty"`
	Partitions     []Partition `json:"partitions"`
	Date           string      `json:"date"`
	CreatedBy      string      `json:"created_by"`
}

// Partition is one partition of the disk, saved or not.
type Partition struct {
	Number     int    `json:"number"`
	Name       string `json:"name"`  // <disk> + number as the kernel names it: sda1, loop0p1
	Start      int64  `json:"start"` // bytes from the start of the disk
	Size       int64  `json:"size"`  // bytes
	Type       string `json:"type"`  // GPT type GUID or MBR type (hex)
	PartUUID   string `json:"partuuid,omitempty"`
	PartLabel  string `json:"partlabel,omitempty"`
	Filesystem string `json:"filesystem,omitempty"` // blkid's TYPE
	UUID       string `json:"uuid,omitempty"`
	Label      string `json:"label,omitempty"`
	Saved      string `json:"saved"`             // partclone, dd, swap, extended
	Program    string `json:"program,omitempty"` // partclone.extfs...
	// The partition's BitTorrent layout, relative to the directory; empty
	// for swap and extended partitions.
	Torrent     string `json:"torrent,omitempty"`
	TorrentInfo string `json:"torrent_info,omitempty"`
	ImageDir    string `json:"image_dir,omitempty"`
	InfoHash    string `json:"infohash,omitempty"`
	UsedBytes   int64  `json:"used_bytes,omitempty"`
	Pieces      int    `json:"pieces,omitempty"`
	// Volume is set on an LV's entry: where on which PV it lies.
	Volume *Volume `json:"volume,omitempty"`
}

// HasData says whether the partition has a torrent to deploy.
func (p Partition) HasData() bool { return p.Torrent != "" }

// Files names the files of a disk's metadata under Clonezilla's names.
func Files(disk string) (pt, mbr, hidden, gpt string) {
	return disk + "-pt.sf", disk + "-mbr", disk + "-hidden-data-after-mbr", disk + "-gpt.gdisk"
}

// Load reads and checks the manifest of an image directory (any fs.FS:
// os.DirFS for a local directory, the seeder's files over HTTP).
func Load(fsys fs.FS) (*Manifest, error) {
	b, err := fs.ReadFile(fsys, ManifestFile)
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", ManifestFile, err)
	}
	if err := m.Check(); err != nil {
		return nil, fmt.Errorf("%s: %w", ManifestFile, err)
	}
	return &m, nil
}

// LoadDir reads the manifest of a local image directory.
func LoadDir(dir string) (*Manifest, error) {
	m, err := Load(os.DirFS(dir))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return m, nil
}

// IsDiskImage says whether dir is a whole-disk image directory.
func IsDiskImage(dir string) bool {
	st, err := os.Stat(path.Join(dir, ManifestFile))
	return err == nil && st.Mode().IsRegular()
}

// Check refuses a manifest that could write outside its partitions or
// name files outside its directory.
func (m *Manifest) Check() error {
	if m.Format != Format {
		return fmt.Errorf("format %q, want %q", m.Format, Format)
	}
	if m.Label != table.LabelGPT && m.Label != table.LabelDOS {
		return fmt.Errorf("label %q, want gpt or dos", m.Label)
	}
	if m.SectorSize <= 0 || m.SizeBytes <= 0 {
		return errors.New("no disk size or sector size")
	}
	for _, f := range []string{m.PartitionTable, m.MBR, m.HiddenAfterMBR, m.GPTBackup} {
		if err := plainFile(f); err != nil {
			return err
		}
	}
	if m.PartitionTable == "" {
		return errors.New("no partition table file")
	}
	seen := map[int]bool{}
	for _, p := range m.Partitions {
		if p.Number <= 0 || seen[p.Number] {
			return fmt.Errorf("partition number %d missing or repeated", p.Number)
		}
		seen[p.Number] = true
		if v := p.Volume; v != nil {
			pv, ok := m.Partition(v.PV)
			if !ok || pv.Saved != SavedLVM || v.Offset < 0 || pv.Start+v.Offset != p.Start || v.Offset+p.Size > pv.Size {
				return fmt.Errorf("volume entry %d (%s) is not inside an LVM PV partition of the image", p.Number, p.Name)
			}
		}
		if p.Start < 0 || p.Size <= 0 || p.Start+p.Size > m.SizeBytes {
			return fmt.Errorf("partition %d (start %d, %d bytes) is not inside the %d-byte disk", p.Number, p.Start, p.Size, m.SizeBytes)
		}
		for _, f := range []string{p.Torrent, p.TorrentInfo, p.ImageDir} {
			if err := plainFile(f); err != nil {
				return fmt.Errorf("partition %d: %w", p.Number, err)
			}
		}
		switch p.Saved {
		case SavedPartclone, SavedDD, SavedLVM:
			if p.Torrent == "" {
				return fmt.Errorf("partition %d is saved by %s but has no torrent", p.Number, p.Saved)
			}
		case SavedSwap, SavedExtended:
		default:
			return fmt.Errorf("partition %d: saved %q", p.Number, p.Saved)
		}
	}
	return nil
}

func plainFile(f string) error {
	if f == "" {
		return nil
	}
	if f == "." || f == ".." || strings.ContainsAny(f, "/\\\x00") {
		return fmt.Errorf("file name %q is not a plain name inside the image directory", f)
	}
	return nil
}

// End is the byte just past the last partition.
func (m *Manifest) End() int64 {
	var end int64
	for _, p := range m.Partitions {
		end = max(end, p.Start+p.Size)
	}
	return end
}

// DataBytes is the sum of the partitions' used bytes: what a deploy moves.
func (m *Manifest) DataBytes() int64 {
	var n int64
	for _, p := range m.Partitions {
		n += p.UsedBytes
	}
	return n
}

// Partition returns the partition numbered n.
func (m *Manifest) Partition(n int) (Partition, bool) {
	for _, p := range m.Partitions {
		if p.Number == n {
			return p, true
		}
	}
	return Partition{}, false
}
