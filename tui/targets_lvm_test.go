package tui

import (
	"strings"
	"testing"

	"ezio/disks"
)

// TestTargetTableShowsLVs: an LVM PV's logical volumes are listed under
// it (VG/LV, size), and cannot be chosen as a target on their own.
func TestTargetTableShowsLVs(t *testing.T) {
	c := testCommon(120, 30, "xterm-256color")
	ds := []disks.Disk{{Name: "fakeloop7", Path: "/dev/fakeloop7", Size: 1 << 30, Partitions: []disks.Partition{
		{Name: "fakeloop7p1", Path: "/dev/fakeloop7p1", Size: 8 << 20, FSType: "ext2"},
		{Name: "fakeloop7p2", Path: "/dev/fakeloop7p2", Size: 1000 << 20, FSType: "LVM2_member", Volumes: []disks.LogicalVolume{
			{VG: "vgez", Name: "root", Size: 512 << 20}, {VG: "vgez", Name: "pool0", Size: 64 << 20, Problem: "a thin pool or thin volume"},
		}},
	}}}
	tb := NewTargetTable(c, ds, 0)
	view := strings.Join(tb.View(20), "\n")
	for _, want := range []string{"vgez/root", "512", "vgez/pool0", "deploy the whole disk"} {
		if !strings.Contains(view, want) {
			t.Errorf("the disk list does not show %q:\n%s", want, view)
		}
	}
	for i := 0; i < 10; i++ {
		tb.cursor = i % len(tb.rows)
		if r := tb.Selected(); strings.Contains(r.name, "vgez/") && r.problem == "" {
			t.Errorf("LV row %q can be chosen as a target", r.name)
		}
	}
}
