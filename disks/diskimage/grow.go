package diskimage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"ezio/disks"
	"ezio/disks/lvm"
	"ezio/disks/table"
)

// GrowLast asks SetGrow for the partition that ends last on the disk.
const GrowLast = "last"

// RefusedGrow is the refusal of a --grow that cannot be done: the
// partition does not exist, is a logical or extended one, or holds a
// filesystem ezio does not grow.
const RefusedGrow disks.Refusal = "grow"

// minGrow is the least free space worth growing into: less is the
// alignment slack of a disk of the image's own size.
const minGrow = 1 << 20

// GrowRequest is the partition a deploy grows once its data is verified.
type GrowRequest struct {
	Partition Partition
	// Room is the free space after the partition on the target, in
	// bytes (0: none worth growing into; the deploy says so).
	Room int64
}

// Growth is what a deploy grew, in its report.
type Growth struct {
	From       int64  `json:"from_bytes"` // the partition's size in the image
	To         int64  `json:"to_bytes"`   // its size on the target now
	Filesystem string `json:"filesystem,omitempty"`
	// FSBytes is the filesystem's size as its own tool reports it after
	// growing (the PV's size for LVM, the swap area's for swap).
	FSBytes int64  `json:"filesystem_bytes,omitempty"`
	Tool    string `json:"tool,omitempty"` // what grew the filesystem
	Note    string `json:"note,omitempty"` // why nothing grew
	// LV, for an LVM PV: the VG's last LV given the new extents, and its
	// filesystem grown (when the LV is one segment).
	LV *LVGrowth `json:"lv,omitempty"`
}

// LVGrowth is the LV a PV's growth went to.
type LVGrowth struct {
	Name       string `json:"name"` // VG/LV
	From       int64  `json:"from_bytes"`
	To         int64  `json:"to_bytes"`
	Filesystem string `json:"filesystem,omitempty"`
	FSBytes    int64  `json:"filesystem_bytes,omitempty"`
	Tool       string `json:"tool,omitempty"`
	Note       string `json:"note,omitempty"`
}

// growers are the filesystems a deploy grows, with the tools each needs.
var growers = map[string][]string{
	"ext2": {"e2fsck", "resize2fs", "dumpe2fs"}, "ext3": {"e2fsck", "resize2fs", "dumpe2fs"}, "ext4": {"e2fsck", "resize2fs", "dumpe2fs"},
	"xfs":         {"xfs_growfs"},
	"btrfs":       {"btrfs"},
	"ntfs":        {"ntfsresize", "ntfsfix"},
	"swap":        {"mkswap"},
	"LVM2_member": {"pvresize", "pvs"},
}

// SetGrow checks, before anything is written, that partition which (a
// number, the image's name for it such as sda3, or GrowLast) can be grown
// on this plan's target after the deploy, and records it. Refusals are
// *disks.RefusedError. A target with no free space after the partition is
// no refusal: the deploy reports that nothing grew.
func (p *Plan) SetGrow(which string) error {
	part, err := p.growPartition(which)
	if err != nil {
		return err
	}
	refuse := func(reason, hint string) error {
		return &disks.RefusedError{Target: p.Target, Kind: RefusedGrow, Reason: reason, Hint: hint}
	}
	what := fmt.Sprintf("partition %d (%s)", part.Number, part.Name)
	switch {
	case part.Saved == SavedExtended:
		return refuse(what+" is an MBR extended partition, a container of others", "Name the partition to grow")
	case p.Manifest.Label == table.LabelDOS && part.Number > 4:
		return refuse(what+" is a logical partition inside an extended one: ezio grows primary and GPT partitions only", "Deploy without growing, or name a primary partition to grow")
	}
	fstype := part.Filesystem
	if part.Saved == SavedSwap {
		fstype = "swap"
	}
	tools, ok := growers[fstype]
	if !ok {
		reason := fmt.Sprintf("%s holds %s, which ezio does not grow", what, cmp.Or(fstype, "no filesystem it knows"))
		if strings.EqualFold(fstype, "vfat") {
			reason = what + " holds FAT, which is not grown: no FAT resizer is installed here and FAT cannot be grown in place by mkfs or fsck tools"
		}
		return refuse(reason+" (it grows ext2/3/4, xfs, btrfs, NTFS, swap and LVM PVs)", "Deploy without growing, or name another partition to grow")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			return refuse(fmt.Sprintf("growing %s (%s) needs %s, which is not installed", what, fstype, tool),
				"Install the Debian package "+table.PackageOf(tool)+", or deploy without growing")
		}
	}
	p.Grow = &GrowRequest{Partition: part, Room: p.roomAfter(part)}
	return nil
}

// growPartition finds the partition SetGrow names.
func (p *Plan) growPartition(which string) (Partition, error) {
	m := p.Manifest
	if which == "" || which == GrowLast {
		var last Partition
		for _, part := range m.Partitions {
			if part.Saved != SavedExtended && part.Start+part.Size > last.Start+last.Size {
				last = part
			}
		}
		if last.Number == 0 {
			return last, &disks.RefusedError{Target: p.Target, Kind: RefusedGrow, Reason: "the image has no partition to grow"}
		}
		return last, nil
	}
	n, err := strconv.Atoi(which)
	for _, part := range m.Partitions {
		if (err == nil && part.Number == n) || part.Name == which || "/dev/"+part.Name == which {
			return part, nil
		}
	}
	var names []string
	for _, part := range m.Partitions {
		names = append(names, fmt.Sprintf("%d (%s)", part.Number, part.Name))
	}
	return Partition{}, &disks.RefusedError{Target: p.Target, Kind: RefusedGrow,
		Reason: fmt.Sprintf("the image has no partition %q to grow; it has %s", which, strings.Join(names, ", ")),
		Hint:   "Name one by its number or name, e.g. " + strconv.Itoa(m.Partitions[len(m.Partitions)-1].Number)}
}

// roomAfter is the free space after part on the target once the image's
// table is on it: up to the next partition, or the disk's last usable
// byte (before the backup GPT).
func (p *Plan) roomAfter(part Partition) int64 {
	limit := p.TargetSize
	if p.Table.Label == table.LabelGPT {
		limit -= 33 * p.Table.SectorSize
	}
	end := part.Start + part.Size
	for _, tp := range p.Table.Partitions {
		if s := tp.Start * p.Table.SectorSize; s >= end && s < limit {
			limit = s
		}
	}
	if room := limit - end; room >= minGrow {
		return room
	}
	return 0
}

// grow runs after every partition is verified and finished: the table's
// entry moves its end, the kernel is told, then the filesystem grows.
func (p *Plan) grow(ctx context.Context) (*Growth, error) {
	part := p.Grow.Partition
	g := &Growth{From: part.Size, To: part.Size, Filesystem: part.Filesystem}
	if p.Grow.Room == 0 {
		g.Note = "not grown: the target has no free space after it"
		return g, nil
	}
	t, err := table.GrowPartition(ctx, p.Target, part.Number, p.TargetSize)
	if err != nil {
		return nil, err
	}
	p.Table = t
	tp, ok := t.Partition(part.Number)
	if !ok {
		return nil, fmt.Errorf("partition %d is gone from %s after growing it", part.Number, p.Target)
	}
	g.To = tp.Size * t.SectorSize
	node, err := p.PartitionNode(part.Number)
	if err != nil {
		return nil, err
	}
	if part.Saved == SavedSwap {
		g.Filesystem, g.Tool = "swap", "mkswap"
		if err := table.MkSwap(ctx, node, part.UUID, part.Label); err != nil {
			return nil, err
		}
		g.FSBytes = g.To
		return g, nil
	}
	g.Tool, g.FSBytes, err = growFS(ctx, node, part.Filesystem)
	if err != nil {
		return g, fmt.Errorf("partition %d (%s) was grown to %s but its %s was not: %w", part.Number, node, disks.HumanBytes(g.To), part.Filesystem, err)
	}
	if part.Saved == SavedLVM {
		if g.LV, err = growLastLV(ctx, node); err != nil {
			return g, fmt.Errorf("the PV on partition %d (%s) was grown, but not its last LV: %w", part.Number, node, err)
		}
	}
	flush(p.Target)
	flush(node)
	return g, nil
}

// growFS grows the filesystem on node to fill it and returns the tool
// that did and the size the filesystem's own tool reports after.
func growFS(ctx context.Context, node, fstype string) (tool string, size int64, err error) {
	switch fstype {
	case "ext2", "ext3", "ext4":
		// resize2fs wants a forced check first; the data was checked
		// read-only already, so this only records that it was.
		// (Exit status 1 means it corrected something: still fine.)
		var exit *exec.ExitError
		if _, err := table.Tool(ctx, "e2fsck", "-f", "-p", node); err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
			return "", 0, err
		}
		if _, err := table.Tool(ctx, "resize2fs", node); err != nil {
			return "", 0, err
		}
		out, err := table.Tool(ctx, "dumpe2fs", "-h", node)
		if err != nil {
			return "", 0, err
		}
		return "resize2fs", field(out, `Block count:\s+(\d+)`) * field(out, `Block size:\s+(\d+)`), nil
	case "xfs":
		err := mounted(node, "xfs", func(mnt string) error {
			out, err := table.Tool(ctx, "xfs_growfs", mnt)
			if err != nil {
				return err
			}
			out, err = table.Tool(ctx, "xfs_growfs", "-n", mnt) // the geometry now
			size = field(out, `data\s+=\s+bsize=(\d+)`) * field(out, `data\s+=\s+bsize=\d+\s+blocks=(\d+)`)
			return err
		})
		return "xfs_growfs", size, err
	case "btrfs":
		err := mounted(node, "btrfs", func(mnt string) error {
			_, err := table.Tool(ctx, "btrfs", "filesystem", "resize", "max", mnt)
			return err
		})
		if err != nil {
			return "", 0, err
		}
		out, err := table.Tool(ctx, "btrfs", "inspect-internal", "dump-super", node)
		return "btrfs filesystem resize max", field(out, `(?m)^dev_item\.total_bytes\s+(\d+)`), err
	case "ntfs":
		if _, err := table.Tool(ctx, "ntfsresize", "--force", "--no-progress-bar", node); err != nil {
			return "", 0, err
		}
		// ntfsresize marks the volume for a check by Windows, and until
		// then ntfs-3g will not mount it; it checked the volume itself, so
		// the mark goes, as Clonezilla clears it after a restore.
		if _, err := table.Tool(ctx, "ntfsfix", "-d", node); err != nil {
			return "", 0, err
		}
		out, err := table.Tool(ctx, "ntfsresize", "--info", "--force", "--no-progress-bar", node)
		return "ntfsresize, ntfsfix -d", field(out, `Current volume size:\s+(\d+) bytes`), err
	case "LVM2_member":
		dev := "--devices=" + node // lvm looks at this device only
		if _, err := table.Tool(ctx, "pvresize", dev, node); err != nil {
			return "", 0, err
		}
		out, err := table.Tool(ctx, "pvs", dev, "--noheadings", "--nosuffix", "--units", "b", "-o", "pv_size", node)
		n, _ := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
		return "pvresize", n, err
	}
	return "", 0, fmt.Errorf("no way to grow %s", fstype)
}

// mounted mounts node (fstype) on a private temporary directory for fn.
func mounted(node, fstype string, fn func(mnt string) error) (err error) {
	mnt, err := os.MkdirTemp("", "ezio-grow-")
	if err != nil {
		return err
	}
	defer os.Remove(mnt)
	if err := unix.Mount(node, mnt, fstype, unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting %s (%s) on %s: %w", node, fstype, mnt, err)
	}
	defer func() {
		if uerr := unix.Unmount(mnt, 0); uerr != nil && err == nil {
			err = fmt.Errorf("unmounting %s: %w", mnt, uerr)
		}
	}()
	// Nothing else on this machine sees it or what is mounted under it.
	if err := unix.Mount("", mnt, "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making %s private: %w", mnt, err)
	}
	return fn(mnt)
}

// field is the number the first group of re captures in out, 0 if none.
func field(out, re string) int64 {
	m := regexp.MustCompile(re).FindStringSubmatch(out)
	if m == nil {
		return 0
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// finishGrow grows the requested partition (after Finish has recreated
// swap, restored NTFS boot sectors and checked every filesystem), then
// checks it again and puts what grew in its report.
func (p *Plan) finishGrow(ctx context.Context, rep *Report) error {
	var r *PartitionReport
	for i := range rep.Partitions {
		if rep.Partitions[i].Number == p.Grow.Partition.Number {
			r = &rep.Partitions[i]
		}
	}
	if r == nil {
		return fmt.Errorf("partition %d is not in the report", p.Grow.Partition.Number)
	}
	if r.Fsck != nil && !r.Fsck.OK {
		r.Grew = &Growth{From: p.Grow.Partition.Size, To: p.Grow.Partition.Size, Note: "not grown: its check failed"}
		return nil
	}
	g, err := p.grow(ctx)
	r.Grew = g
	if err != nil {
		return fmt.Errorf("deployed and verified, but growing failed: %w", err)
	}
	if g.To == g.From {
		return nil
	}
	r.Done = strings.TrimPrefix(r.Done+"; ", "; ") + fmt.Sprintf("grown from %s to %s", disks.HumanBytes(g.From), disks.HumanBytes(g.To))
	if r.Fsck != nil {
		c, err := table.Fsck(ctx, r.Node, r.Filesystem)
		if err != nil {
			return err
		}
		r.Fsck = c
	}
	return nil
}

// growLastLV gives the grown PV's free extents to the VG's last LV and
// grows its filesystem through a loop device at its offset.
func growLastLV(ctx context.Context, node string) (*LVGrowth, error) {
	ext, err := lvm.GrowLastLV(ctx, node)
	if err != nil || ext == nil {
		return nil, err
	}
	g := &LVGrowth{Name: ext.VG + "/" + ext.LV, From: ext.From, To: ext.To}
	loop, detach, err := lvm.Loop(ctx, node, ext.Offset, ext.Bytes, true)
	if err != nil {
		return g, err
	}
	defer detach()
	fsys, err := table.ProbeRange(ctx, loop, 0, ext.Bytes)
	if err != nil {
		return g, err
	}
	g.Filesystem = fsys.Type
	if _, ok := growers[fsys.Type]; !ok || fsys.Type == "LVM2_member" || fsys.Type == "swap" {
		g.Note = "its " + cmp.Or(fsys.Type, "content") + " was not grown"
		return g, nil
	}
	g.Tool, g.FSBytes, err = growFS(ctx, loop, fsys.Type)
	if err == nil {
		c, cerr := table.Fsck(ctx, loop, fsys.Type)
		if cerr == nil && !c.OK {
			err = fmt.Errorf("%s after growing: %s", c.Tool, c.Output)
		}
	}
	return g, err
}
