package diskimage

import (
	"context"
	"errors"
	"fmt"

	"ezio/disks/lvm"
	"ezio/disks/table"
)

// finishVolume checks one LV entry of a deployed disk: its filesystem
// read-only through a loop device over the disk at its offset (no
// device-mapper needed). A segment of an LV of several is not checked
// alone.
func finishVolume(ctx context.Context, p *Plan, part Partition, verified map[int]int64) (PartitionReport, error) {
	v := part.Volume
	r := PartitionReport{Number: part.Number, Name: part.Name, Filesystem: part.Filesystem, Saved: part.Saved, Bytes: verified[part.Number],
		Node: fmt.Sprintf("LV %s/%s at byte %d of %s", v.VG, v.LV, part.Start, p.Target)}
	if v.Segments > 1 {
		r.FsckSkip = fmt.Sprintf("segment %d of %d of the LV: its filesystem spans the others", v.Segment, v.Segments)
		return r, nil
	}
	loop, detach, err := lvm.Loop(ctx, p.Target, part.Start, part.Size, false)
	if err != nil {
		return r, err
	}
	defer detach()
	c, err := table.Fsck(ctx, loop, part.Filesystem)
	switch {
	case errors.Is(err, table.ErrNoChecker):
		r.FsckSkip = err.Error()
	case err != nil:
		return r, err
	default:
		r.Fsck = c
	}
	return r, nil
}
