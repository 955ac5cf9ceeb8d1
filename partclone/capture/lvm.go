package capture

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"ezio/disks/diskimage"
	"ezio/disks/lvm"
	"ezio/disks/table"
	"ezio/partclone"
)

// lvmCapture is the capture of one LVM PV partition: the layout read
// from lvm's reports, then the pieces captured through loop devices
// over the source disk (no device-mapper needed).
type lvmCapture struct {
	source string // the whole disk
	dir    string
	part   *diskimage.Partition
	layout *lvm.Layout
	log    *slog.Logger
}

// readLVM reads and checks the layout of the PV partition part (node is
// its device node). A layout ezio cannot capture is a refusal naming
// each LV and why; so is LUKS inside an LV.
func readLVM(ctx context.Context, source, node, dir string, part *diskimage.Partition, log *slog.Logger) (*lvmCapture, error) {
	l, err := lvm.Read(ctx, node)
	if err != nil {
		return nil, err
	}
	// lvm names the PV by the node it was given; the source's partition.
	if err := l.Check(); err != nil {
		return nil, refused(err)
	}
	c := &lvmCapture{source: source, dir: dir, part: part, layout: l, log: log}
	for _, lv := range l.LVs {
		s := lv.Segments[0]
		fsys, err := table.ProbeRange(ctx, source, part.Start+l.Offset(s), l.Bytes(s))
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(fsys.Type, "crypto_") {
			return nil, refused(fmt.Errorf("the LVM volume group %s on %s cannot be captured: %s/%s is encrypted (%s); ezio does not image encrypted volumes", l.PV.VG, node, l.PV.VG, lv.Name, fsys.Type))
		}
	}
	return c, nil
}

// capture saves the PV's label and metadata area as the partition's own
// torrent (partclone.dd of the bytes before the first extent), then each
// LV segment as an entry of its own: partclone of the LV's filesystem
// (used blocks) when the LV is one segment, every block by partclone.dd
// otherwise. next is the number the first entry takes.
func (c *lvmCapture) capture(ctx context.Context, o DiskOptions, next int, progress func(name string, pct float64)) ([]diskimage.Partition, error) {
	l := c.layout
	if err := c.one(ctx, o, c.part, c.part.Start, l.PV.PEStart, "unknown-lvm-header", progress); err != nil {
		return nil, fmt.Errorf("the LVM header of %s: %w", c.part.Name, err)
	}
	c.part.Saved = diskimage.SavedLVM
	var out []diskimage.Partition
	for _, lv := range l.LVs {
		for i, s := range lv.Segments {
			e := diskimage.Partition{
				Number: next, Name: l.PV.VG + "-" + lv.Name,
				Start: c.part.Start + l.Offset(s), Size: l.Bytes(s),
				Volume: &diskimage.Volume{PV: c.part.Number, Offset: l.Offset(s), VG: l.PV.VG, VGUUID: l.PV.VGUUID,
					LV: lv.Name, LVUUID: lv.UUID, Segment: i + 1, Segments: len(lv.Segments), StartLE: s.StartLE},
			}
			fstype := "" // detected: the LV's filesystem, used blocks only
			if len(lv.Segments) > 1 {
				e.Name = fmt.Sprintf("%s-seg%d", e.Name, i+1)
				fstype = "unknown-lv-segment" // a piece of a filesystem: every block
			}
			fsys, err := table.ProbeRange(ctx, c.source, e.Start, e.Size)
			if err != nil {
				return nil, err
			}
			e.Filesystem, e.UUID, e.Label = fsys.Type, fsys.UUID, fsys.Label
			if len(lv.Segments) > 1 {
				e.Filesystem = ""
			}
			if err := c.one(ctx, o, &e, e.Start, e.Size, fstype, progress); err != nil {
				return nil, fmt.Errorf("logical volume %s/%s: %w", l.PV.VG, lv.Name, err)
			}
			out = append(out, e)
			next++
		}
	}
	return out, nil
}

// one captures length bytes at off of the source disk as entry e, through
// a read-only loop device.
func (c *lvmCapture) one(ctx context.Context, o DiskOptions, e *diskimage.Partition, off, length int64, fstype string, progress func(string, float64)) error {
	loop, detach, err := lvm.Loop(ctx, c.source, off, length, false)
	if err != nil {
		return err
	}
	defer detach()
	c.log.Info("capturing an LVM piece", "name", e.Name, "offset", off, "bytes", length, "loop", loop)
	r, err := Capture(ctx, Options{Source: loop, OutDir: c.dir, Name: e.Name, FSType: fstype, Trackers: o.Trackers, Logger: c.log, PieceLength: o.PieceLength}, func(pr partclone.Progress) {
		if progress != nil {
			progress(e.Name, pr.Percent)
		}
	})
	if err != nil {
		return err
	}
	saved := e.Saved
	fillSaved(e, r.Manifest)
	if saved == diskimage.SavedLVM {
		e.Saved = saved
	}
	return nil
}
