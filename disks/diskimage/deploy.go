package diskimage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"ezio/disks"
	"ezio/disks/table"
)

// RefusedPartitioned is the refusal of a partition image onto a whole disk
// that has a partition table.
const RefusedPartitioned disks.Refusal = "partitioned"

// RefusedNotDisk is the refusal of a disk image onto something that is not
// a whole disk.
const RefusedNotDisk disks.Refusal = "not-disk"

// Plan is a checked deploy of a disk image onto a whole disk.
type Plan struct {
	Manifest   *Manifest
	Table      *table.Table
	Boot       *table.BootAreas
	Target     string
	TargetSize int64
	// Grow, set by SetGrow, is the partition grown to fill the free
	// space after it once every partition is verified.
	Grow *GrowRequest
}

// PrepareDeploy checks, before anything is written, that the disk image
// described by m (with its metadata files in fsys) may be written onto
// target: a whole disk, none of whose partitions is mounted, swap, an LVM
// or RAID member, not the system's disk, and at least as large as the end
// of the last partition (plus the backup GPT). A larger disk is fine.
// Refusals are *disks.RefusedError.
func PrepareDeploy(ctx context.Context, m *Manifest, fsys fs.FS, target string) (*Plan, error) {
	if err := m.Check(); err != nil {
		return nil, err
	}
	ptText, err := fs.ReadFile(fsys, m.PartitionTable)
	if err != nil {
		return nil, fmt.Errorf("disk image %s: %w", m.Name, err)
	}
	t, err := table.ParseDump(string(ptText))
	if err != nil {
		return nil, fmt.Errorf("disk image %s: %s: %w", m.Name, m.PartitionTable, err)
	}
	if t.Label != m.Label {
		return nil, fmt.Errorf("disk image %s: %s says %s, the manifest %s", m.Name, m.PartitionTable, t.Label, m.Label)
	}
	b := &table.BootAreas{}
	for _, f := range []struct {
		name string
		dst  *[]byte
	}{{m.MBR, &b.MBR}, {m.HiddenAfterMBR, &b.Hidden}, {m.GPTBackup, &b.GPT}} {
		if f.name == "" {
			continue
		}
		if *f.dst, err = fs.ReadFile(fsys, f.name); err != nil {
			return nil, fmt.Errorf("disk image %s: %w", m.Name, err)
		}
	}
	if err := checkWholeDisk(target); err != nil {
		return nil, err
	}
	need := max(t.Need(), m.End())
	if err := disks.CheckWritable(target, need); err != nil {
		return nil, err
	}
	size, err := disks.DeviceSize(target)
	if err != nil {
		return nil, err
	}
	if t.SectorSize != logicalSectorSize(target) {
		return nil, &disks.RefusedError{Target: target, Kind: RefusedNotDisk,
			Reason: fmt.Sprintf("its sectors are %d bytes, the image's disk had %d-byte sectors", logicalSectorSize(target), t.SectorSize),
			Hint:   "Choose a disk with the same sector size"}
	}
	return &Plan{Manifest: m, Table: t, Boot: b, Target: target, TargetSize: size}, nil
}

// checkWholeDisk refuses a partition, a file or anything but a whole disk.
func checkWholeDisk(target string) error {
	var st unix.Stat_t
	if err := unix.Stat(target, &st); err != nil {
		return &disks.RefusedError{Target: target, Kind: disks.RefusedNotFound, Reason: "there is no such device",
			Hint: "Run `ezio disks` to see the disks"}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return &disks.RefusedError{Target: target, Kind: RefusedNotDisk, Reason: "it is not a block device; a disk image is written onto a whole disk",
			Hint: "Give a disk such as /dev/sdb (see `ezio disks`)"}
	}
	d, p, err := disks.Lookup(target)
	if err != nil {
		return err
	}
	if p != nil {
		return &disks.RefusedError{Target: target, Kind: RefusedNotDisk,
			Reason: "it is a partition of " + d.Path + "; a disk image is written onto a whole disk, table and all",
			Hint:   "Give the whole disk: " + d.Path}
	}
	return nil
}

func logicalSectorSize(dev string) int64 {
	f, err := os.Open(dev)
	if err != nil {
		return 512
	}
	defer f.Close()
	n, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKSSZGET)
	if err != nil || n <= 0 {
		return 512
	}
	return int64(n)
}

// WriteTable writes the partition table and boot areas onto the plan's
// target, after checking it once more, and tells the kernel about the new
// partitions. It comes before any partition's data.
func WriteTable(ctx context.Context, p *Plan) error {
	if err := disks.CheckWritable(p.Target, max(p.Table.Need(), p.Manifest.End())); err != nil {
		return err
	}
	// The old partitions' nodes go first: nothing may open them while the
	// new table is written under them.
	if err := table.Forget(ctx, p.Target); err != nil {
		return err
	}
	if err := table.Restore(ctx, p.Target, p.TargetSize, p.Table, p.Boot); err != nil {
		return err
	}
	return table.TellKernel(ctx, p.Target, p.Table)
}

// DataTarget is where partition part's extents go: the whole disk at the
// partition's start. Offset-capable writers take (disk, start); writers
// that need a device per partition take PartitionNode.
func (p *Plan) DataTarget(part Partition) (disk string, base int64) {
	return p.Target, part.Start
}

// PartitionNode is the device node of partition number n of the target.
func (p *Plan) PartitionNode(n int) (string, error) {
	return table.PartitionNode(p.Target, n)
}

// PartitionReport is the outcome of one partition of a disk deploy.
type PartitionReport struct {
	Number     int          `json:"number"`
	Name       string       `json:"name"` // in the image
	Node       string       `json:"node"` // on the target
	Filesystem string       `json:"filesystem,omitempty"`
	Saved      string       `json:"saved"`
	Bytes      int64        `json:"bytes_verified"`
	Done       string       `json:"done,omitempty"` // what Finish did: "swap recreated", "NTFS alternate boot sector restored"
	Grew       *Growth      `json:"grew,omitempty"` // --grow: what grew, to what size
	Fsck       *table.Check `json:"fsck,omitempty"`
	FsckSkip   string       `json:"fsck_skipped,omitempty"`
}

// Report is the outcome of Finish.
type Report struct {
	Target     string            `json:"target"`
	Partitions []PartitionReport `json:"partitions"`
}

// Failed lists the partitions whose check failed.
func (r *Report) Failed() []string {
	var out []string
	for _, p := range r.Partitions {
		if p.Fsck != nil && !p.Fsck.OK {
			out = append(out, fmt.Sprintf("%s (%s: %s)", p.Node, p.Fsck.Tool, strings.ReplaceAll(p.Fsck.Output, "\n", "; ")))
		}
	}
	return out
}

// Finish runs after every partition's data is verified on the target:
// the kernel's partitions are made to match the table, swap is recreated
// with its UUID and label, NTFS volumes get their alternate boot sector
// back, and every filesystem with a checker is checked read-only. verified
// gives the bytes each partition's job verified (by number), for the report.
// The error lists the partitions whose check failed.
func Finish(ctx context.Context, p *Plan, verified map[int]int64) (*Report, error) {
	if err := table.TellKernel(ctx, p.Target, p.Table); err != nil {
		return nil, err
	}
	// Data may have gone through the disk's node, checks read the
	// partitions' nodes: each has its own page cache.
	flush(p.Target)
	rep := &Report{Target: p.Target}
	for _, part := range p.Manifest.Partitions {
		if part.Volume != nil {
			r, err := finishVolume(ctx, p, part, verified)
			if err != nil {
				return nil, err
			}
			rep.Partitions = append(rep.Partitions, r)
			continue
		}
		node, err := p.PartitionNode(part.Number)
		if err != nil {
			return nil, err
		}
		r := PartitionReport{Number: part.Number, Name: part.Name, Node: node, Filesystem: part.Filesystem, Saved: part.Saved, Bytes: verified[part.Number]}
		switch {
		case part.Saved == SavedSwap:
			if err := table.MkSwap(ctx, node, part.UUID, part.Label); err != nil {
				return nil, err
			}
			r.Done = "swap recreated"
		case part.Saved == SavedLVM:
			r.Done = "LVM PV label and metadata written; its LVs follow"
		case strings.EqualFold(part.Filesystem, "ntfs"):
			wrote, err := table.FixNTFSBackupBoot(p.Target, part.Start, part.Size)
			if err != nil {
				return nil, err
			}
			if wrote {
				r.Done = "NTFS alternate boot sector restored"
			}
		}
		flush(p.Target)
		flush(node)
		if part.Saved == SavedPartclone || part.Saved == SavedDD {
			c, err := table.Fsck(ctx, node, part.Filesystem)
			switch {
			case errors.Is(err, table.ErrNoChecker):
				r.FsckSkip = err.Error()
			case err != nil:
				return nil, err
			default:
				r.Fsck = c
			}
		}
		rep.Partitions = append(rep.Partitions, r)
	}
	if p.Grow != nil {
		if err := p.finishGrow(ctx, rep); err != nil {
			return rep, err
		}
	}
	if bad := rep.Failed(); len(bad) > 0 {
		return rep, fmt.Errorf("deployed, but the check of %s failed", strings.Join(bad, ", "))
	}
	return rep, nil
}

// flush writes a device's dirty pages and drops its cache (BLKFLSBUF).
func flush(dev string) {
	f, err := os.Open(dev)
	if err != nil {
		return
	}
	defer f.Close()
	_ = unix.Fsync(int(f.Fd()))
	_ = unix.IoctlSetInt(int(f.Fd()), unix.BLKFLSBUF, 0)
}

// CheckPartitionImageTarget refuses to write a partition image (need bytes
// of it, filesystem fstype if known) onto a whole disk that has a
// partition table: the message names the table and every partition that
// would be lost, and the partition that would take the image instead. A
// partition, a file, or a disk without a table pass.
func CheckPartitionImageTarget(ctx context.Context, target string, need int64, fstype string) error {
	var st unix.Stat_t
	if err := unix.Stat(target, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return nil
	}
	_, p, err := disks.Lookup(target)
	if err != nil || p != nil {
		return nil
	}
	t, err := table.Dump(ctx, target)
	if errors.Is(err, table.ErrNoTable) {
		return nil
	}
	if err != nil {
		return err
	}
	var lost []string
	best := -1
	var bestFS string
	for i, part := range t.Partitions {
		start, size := part.Start*t.SectorSize, part.Size*t.SectorSize
		fsys, _ := table.ProbeRange(ctx, target, start, size)
		desc := fmt.Sprintf("%d (%s, %s", part.Number, disks.HumanBytes(size), cmp.Or(fsys.Type, "no filesystem"))
		if fsys.Label != "" {
			desc += fmt.Sprintf(", label %q", fsys.Label)
		}
		desc += ")"
		lost = append(lost, desc)
		if table.IsExtended(t.Label, part.Type) || size < need {
			continue
		}
		// The partition that fits, preferring the image's filesystem,
		// then the smallest.
		better := best < 0 ||
			(fstype != "" && strings.EqualFold(fsys.Type, fstype) && !strings.EqualFold(bestFS, fstype)) ||
			((fstype == "" || strings.EqualFold(fsys.Type, fstype) == strings.EqualFold(bestFS, fstype)) && size < t.Partitions[best].Size*t.SectorSize)
		if better {
			best, bestFS = i, fsys.Type
		}
	}
	what := "an MBR"
	if t.Label == table.LabelGPT {
		what = "a GPT"
	}
	reason := fmt.Sprintf("it is a whole disk with %s partition table", what)
	if t.ID != "" {
		reason += " (id " + t.ID + ")"
	}
	reason += fmt.Sprintf(" and %d partition", len(t.Partitions))
	if len(t.Partitions) != 1 {
		reason += "s"
	}
	if len(lost) > 0 {
		reason += ", " + strings.Join(lost, ", ")
	}
	reason += "; a partition image written here would destroy the table and every partition on it"
	hint := "Write it to one partition instead"
	if best >= 0 {
		node := t.Partitions[best].Node
		hint = fmt.Sprintf("Write it to partition %d instead: %s", t.Partitions[best].Number, node)
		if _, err := table.PartitionNode(target, t.Partitions[best].Number); err != nil {
			hint += " (make its device node first: partx -a " + target + ")"
		}
	} else {
		hint = fmt.Sprintf("No partition of it holds the image's %s; choose another disk or partition", disks.HumanBytes(need))
	}
	return &disks.RefusedError{Target: target, Kind: RefusedPartitioned, Reason: reason, Hint: hint}
}
