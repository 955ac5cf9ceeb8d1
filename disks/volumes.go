package disks

import (
	"context"
	"time"

	"ezio/disks/lvm"
)

// LogicalVolume is an LVM logical volume whose extents lie on a
// partition (a PV), as lvm reports it without activating anything.
type LogicalVolume struct {
	VG      string `json:"vg"`
	Name    string `json:"name"`
	Size    int64  `json:"size"`
	Problem string `json:"problem,omitempty"` // why ezio would not capture it
}

// volumesOn lists the LVs of the VG on the PV at path (nil if lvm is
// missing or says nothing).
func volumesOn(path string) []LogicalVolume {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := lvm.Read(ctx, path)
	if err != nil {
		return nil
	}
	var out []LogicalVolume
	for _, lv := range l.LVs {
		out = append(out, LogicalVolume{VG: l.PV.VG, Name: lv.Name, Size: lv.Size, Problem: lv.Problem})
	}
	return out
}
