package capture

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"ezio/disks"
	"ezio/disks/diskimage"
	"ezio/disks/table"
	"ezio/engine"
	"ezio/partclone"
)

// DiskOptions describe the capture of a whole disk.
type DiskOptions struct {
	Source   string // the disk, e.g. /dev/sda
	OutDir   string // the image directory goes to OutDir/Name
	Name     string // default: the disk's name
	Trackers []string
	Logger   *slog.Logger
	// PieceLength of every partition's torrent (Options.PieceLength);
	// 0 is DiskPieceLength.
	PieceLength int64
}

// DiskPieceLength is the piece size of a whole-disk capture's torrents
// unless told otherwise. A disk image is ezio's own (nothing else reads
// its torrents), so its pieces need not be partclone's 16 MiB: with 4 MiB
// pieces a room of 8 shares its first piece after 4 s instead of 11 and
// finished 11 % sooner in the LAN lab (docs/benchmarks.md, round four),
// for one more read of the extents at capture.
const DiskPieceLength = 4 << 20

// DiskProgress is the progress of a disk capture or import: the partition
// at work and the whole.
type DiskProgress struct {
	Partition string  // e.g. sda2
	Index     int     // 1-based, of Count partitions with data
	Count     int     //
	Percent   float64 // of this partition
	Overall   float64 // of the whole disk, weighted by partition size
	// Hashing: the partition's extents are being read again to hash them
	// in pieces other than partclone's; Percent is of that read.
	Hashing bool
	partclone.Progress
}

// DiskResult is a finished disk capture or import.
type DiskResult struct {
	Manifest *diskimage.Manifest
	Dir      string // the image directory
}

// IsWholeDiskWithTable says whether source is a whole disk that carries a
// partition table: what CaptureDisk takes.
func IsWholeDiskWithTable(ctx context.Context, source string) bool {
	if !disks.IsBlockDevice(source) {
		return false
	}
	_, p, err := disks.Lookup(source)
	if err != nil || p != nil {
		return false
	}
	// A FAT or NTFS boot sector ends like an MBR: sfdisk reads an empty
	// DOS table in it. A filesystem on the whole device is a partition
	// image.
	if fstype, err := partclone.DetectFS(source); err != nil || fstype != "" {
		return false
	}
	t, err := table.Dump(ctx, source)
	return err == nil && len(t.Partitions) > 0
}

// CaptureDisk saves a whole disk as a disk image directory: the partition
// table and boot areas under Clonezilla's names, each partition with
// partclone in Clonezilla's BitTorrent layout, swap as its UUID and label,
// and the manifest last. A disk any of whose partitions is mounted is
// refused with the mount points. A capture that does not finish removes
// the image directory.
func CaptureDisk(ctx context.Context, o DiskOptions, progress func(DiskProgress)) (_ *DiskResult, err error) {
	start := time.Now()
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.PieceLength == 0 {
		o.PieceLength = DiskPieceLength
	}
	d, t, dir, err := checkDiskSource(ctx, &o)
	if err != nil {
		return nil, err
	}
	boot, err := table.ReadBootAreas(ctx, o.Source, t)
	if err != nil {
		return nil, err
	}
	size, err := disks.DeviceSize(o.Source)
	if err != nil {
		return nil, err
	}
	// The kernel may not know the partitions (this one parses no tables);
	// make their nodes for partclone, and take back what was made.
	before := table.Known(o.Source)
	if len(before) < len(t.Partitions) {
		if err := table.TellKernel(ctx, o.Source, t); err != nil {
			return nil, err
		}
		if len(before) == 0 {
			defer table.Forget(context.WithoutCancel(ctx), o.Source)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, refused(fmt.Errorf("output directory: %w", err))
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()

	m := newDiskManifest(o.Name, d.Name, t, size)
	m.SourceDevice = o.Source
	if err := writeDiskFiles(dir, m, t, boot); err != nil {
		return nil, err
	}
	parts, err := describePartitions(ctx, o.Source, d.Name, t)
	if err != nil {
		return nil, err
	}
	volumes, err := capturePartitions(ctx, o, dir, parts, progress, log)
	if err != nil {
		return nil, err
	}
	m.Partitions = append(parts, volumes...)
	m.Date, m.CreatedBy = start.Format(time.RFC3339), "ezio "+engine.Version
	if err := writeManifest(dir, m); err != nil {
		return nil, err
	}
	log.Info("captured disk", "source", o.Source, "dir", dir, "partitions", len(parts), "seconds", time.Since(start).Seconds())
	return &DiskResult{Manifest: m, Dir: dir}, nil
}

// checkDiskSource refuses a whole-disk capture before anything is made:
// not a whole disk, a bad name, mounted partitions, no partitions, an
// image of that name already there. It names the image after the disk
// when no name was given, and returns the disk, its table and the
// image directory.
func checkDiskSource(ctx context.Context, o *DiskOptions) (d *disks.Disk, t *table.Table, dir string, err error) {
	d, p, err := disks.Lookup(o.Source)
	if err != nil {
		return nil, nil, "", refused(err)
	}
	if p != nil {
		return nil, nil, "", refused(fmt.Errorf("%s is a partition of %s, not a whole disk", o.Source, d.Path))
	}
	if o.Name == "" {
		o.Name = d.Name
	}
	if err := CheckPieceLength(o.PieceLength); err != nil {
		return nil, nil, "", refused(err)
	}
	if err := CheckName(o.Name); err != nil {
		return nil, nil, "", refused(err)
	}
	var mounted []string
	if d.MountPoint != "" {
		mounted = append(mounted, d.Path+" on "+d.MountPoint)
	}
	for _, part := range d.Partitions {
		if part.MountPoint != "" {
			mounted = append(mounted, part.Path+" on "+part.MountPoint)
		}
	}
	if len(mounted) > 0 {
		return nil, nil, "", refused(fmt.Errorf("%s has mounted partitions: %s; unmount them first", o.Source, strings.Join(mounted, ", ")))
	}
	t, err = table.Dump(ctx, o.Source)
	if err != nil {
		return nil, nil, "", refused(err)
	}
	if len(t.Partitions) == 0 {
		return nil, nil, "", refused(fmt.Errorf("%s has a partition table without partitions: nothing to capture", o.Source))
	}
	dir = filepath.Join(o.OutDir, o.Name)
	if _, err := os.Lstat(dir); err == nil {
		return nil, nil, "", refused(fmt.Errorf("%s already exists: choose another name or another output directory, or remove it", dir))
	}
	return d, t, dir, nil
}

// capturePartitions captures every partition that carries data into dir
// (partclone, or dd for a filesystem it has no program for; an LVM PV
// volume by volume), records swap, and reports progress over them all.
// It returns the LVs of LVM PVs, which follow the table's partitions in
// the manifest.
func capturePartitions(ctx context.Context, o DiskOptions, dir string, parts []diskimage.Partition, progress func(DiskProgress), log *slog.Logger) ([]diskimage.Partition, error) {
	var total, done int64
	count := 0
	for _, part := range parts {
		if part.Saved == "" {
			total += part.Size
			count++
		}
	}
	index := 0
	var volumes []diskimage.Partition // the LVs of LVM PVs, after the table's partitions
	for i := range parts {
		part := &parts[i]
		if part.Saved == diskimage.SavedSwap {
			if err := writeSwapInfo(dir, part); err != nil {
				return nil, err
			}
			continue
		}
		if part.Saved != "" {
			continue
		}
		index++
		node, err := table.PartitionNode(o.Source, part.Number)
		if err != nil {
			return nil, err
		}
		if part.Filesystem == "LVM2_member" {
			lc, err := readLVM(ctx, o.Source, node, dir, part, log)
			if err != nil {
				return nil, err
			}
			vols, err := lc.capture(ctx, o, diskimage.VolumeNumbers+len(volumes), func(name string, pct float64) {
				if progress != nil {
					progress(DiskProgress{Partition: name, Index: index, Count: count, Percent: pct, Overall: overall(done, part.Size, pct, total)})
				}
			})
			if err != nil {
				return nil, fmt.Errorf("partition %s: %w", part.Name, err)
			}
			volumes = append(volumes, vols...)
			done += part.Size
			continue
		}
		fstype := part.Filesystem
		if _, _, err := partclone.ProgramFor(fstype); err != nil && fstype != "" {
			// A filesystem this partclone has no program for (jfs,
			// reiserfs...) is copied block by block, as an unknown one.
			if _, _, derr := partclone.ProgramFor(""); derr != nil {
				return nil, refused(err)
			}
			log.Warn("no partclone program for this filesystem: copying every block with partclone.dd", "partition", part.Name, "fs", fstype)
			fstype = "unknown-" + fstype
		}
		log.Info("capturing partition", "partition", part.Name, "node", node, "fs", part.Filesystem)
		hashed := func(pr partclone.Progress) {
			if progress != nil {
				progress(DiskProgress{Partition: part.Name, Index: index, Count: count, Percent: pr.Percent,
					Overall: overall(done, part.Size, 100, total), Hashing: true, Progress: pr})
			}
		}
		r, err := Capture(ctx, Options{Source: node, OutDir: dir, Name: part.Name, FSType: fstype, Trackers: o.Trackers, Logger: log,
			PieceLength: o.PieceLength, HashProgress: hashed}, func(pr partclone.Progress) {
			if progress != nil {
				progress(DiskProgress{Partition: part.Name, Index: index, Count: count, Percent: pr.Percent,
					Overall: overall(done, part.Size, pr.Percent, total), Progress: pr})
			}
		})
		if err != nil {
			return nil, fmt.Errorf("partition %s: %w", part.Name, err)
		}
		done += part.Size
		fillSaved(part, r.Manifest)
	}
	return volumes, nil
}

func overall(done, size int64, pct float64, total int64) float64 {
	if total <= 0 {
		return 100
	}
	return 100 * (float64(done) + float64(size)*pct/100) / float64(total)
}

func newDiskManifest(name, disk string, t *table.Table, size int64) *diskimage.Manifest {
	pt, mbr, hidden, gpt := diskimage.Files(disk)
	m := &diskimage.Manifest{
		Format: diskimage.Format, Name: name, Disk: disk, SizeBytes: size, SectorSize: t.SectorSize,
		Label: t.Label, LabelID: t.ID, PartitionTable: pt, MBR: mbr,
	}
	if t.Label == table.LabelDOS {
		m.HiddenAfterMBR = hidden
	} else {
		m.GPTBackup = gpt
	}
	return m
}

// writeDiskFiles writes disk, the table and the boot areas (parts comes
// with the manifest, once the partitions are known).
func writeDiskFiles(dir string, m *diskimage.Manifest, t *table.Table, b *table.BootAreas) error {
	files := []struct {
		name string
		data []byte
	}{
		{"disk", []byte(m.Disk + "\n")},
		{m.PartitionTable, []byte(t.Text)},
		{m.MBR, b.MBR},
	}
	if m.HiddenAfterMBR != "" {
		if len(b.Hidden) == 0 {
			m.HiddenAfterMBR = ""
		} else {
			files = append(files, struct {
				name string
				data []byte
			}{m.HiddenAfterMBR, b.Hidden})
		}
	}
	if m.GPTBackup != "" {
		files = append(files, struct {
			name string
			data []byte
		}{m.GPTBackup, b.GPT})
	}
	for _, f := range files {
		if err := WriteFileAtomic(filepath.Join(dir, f.name), f.data); err != nil {
			return err
		}
	}
	return nil
}

// describePartitions lists the table's partitions with what blkid finds in
// each; Saved is set for those that are not copied (swap, extended), ""
// for those still to capture.
func describePartitions(ctx context.Context, dev, disk string, t *table.Table) ([]diskimage.Partition, error) {
	var out []diskimage.Partition
	for _, tp := range t.Partitions {
		p := diskimage.Partition{
			Number: tp.Number, Name: table.PartitionName(disk, tp.Number),
			Start: tp.Start * t.SectorSize, Size: tp.Size * t.SectorSize,
			Type: tp.Type, PartUUID: tp.UUID, PartLabel: tp.Name,
		}
		if table.IsExtended(t.Label, tp.Type) {
			p.Saved = diskimage.SavedExtended
			out = append(out, p)
			continue
		}
		fsys, err := table.ProbeRange(ctx, dev, p.Start, p.Size)
		if err != nil {
			return nil, err
		}
		p.Filesystem, p.UUID, p.Label = fsys.Type, fsys.UUID, fsys.Label
		if fsys.Type == "swap" {
			p.Saved = diskimage.SavedSwap
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	return out, nil
}

// fillSaved copies what a partition capture produced into the disk
// manifest's entry.
func fillSaved(p *diskimage.Partition, m *Manifest) {
	p.Saved = diskimage.SavedPartclone
	if m.Fallback {
		p.Saved = diskimage.SavedDD
	}
	p.Program = m.Program
	p.Torrent, p.TorrentInfo, p.ImageDir = m.Torrent, m.TorrentInfo, m.ImageDir
	p.InfoHash, p.UsedBytes, p.Pieces = m.InfoHash, m.UsedBytes, m.Pieces
}

// writeSwapInfo writes Clonezilla's swappt-<part>.info.
func writeSwapInfo(dir string, p *diskimage.Partition) error {
	s := fmt.Sprintf("UUID=%q\nLABEL=%q\n", p.UUID, p.Label)
	return WriteFileAtomic(filepath.Join(dir, "swappt-"+p.Name+".info"), []byte(s))
}

// writeManifest writes parts and then the manifest: a manifest means a
// complete image.
func writeManifest(dir string, m *diskimage.Manifest) error {
	var names []string
	for _, p := range m.Partitions {
		if p.HasData() && p.Volume == nil {
			names = append(names, p.Name)
		}
	}
	if err := WriteFileAtomic(filepath.Join(dir, "parts"), []byte(strings.Join(names, " ")+"\n")); err != nil {
		return err
	}
	if err := m.Check(); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(filepath.Join(dir, diskimage.ManifestFile), append(b, '\n'))
}
