package tui

import (
	"context"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"

	"ezio/disks/diskdeploy"
	"ezio/disks/diskimage"
	"ezio/disks/table"
)

// TestDeployDiskGrowQuestion: on the confirm step of a disk image onto a
// larger disk, the wizard says the copy is exact and what is left unused;
// ctrl+g grows the last partition (checked as --grow is) and the plan the
// deploy gets carries it; a disk of the image's size is not asked.
func TestDeployDiskGrowQuestion(t *testing.T) {
	w := &diskWorld{}
	deps := diskDeps(t, w)
	var plans []*diskimage.Plan
	deps.DiskDeps.PrepareDisk = func(ctx context.Context, img *diskdeploy.Image, target string) (*diskimage.Plan, error) {
		p := &diskimage.Plan{Manifest: img.Manifest, Target: target, TargetSize: 500 << 30, Table: &table.Table{Label: table.LabelGPT, SectorSize: 512}}
		plans = append(plans, p)
		return p, nil
	}
	c := testCommon(100, 30, "linux")
	m := New(c, deps, &Config{})
	drive(t, m, key1("d"))
	f := m.Current().(*DeployFlow)
	drive(t, m, keys("10.0.0.1")...)
	drive(t, m, enter)
	drive(t, m, enter) // the disk image
	drive(t, m, tea_home(), down, enter)
	if f.step != stepConfirm || len(plans) != 1 {
		t.Fatalf("step %v, %d plans\n%s", f.step, len(plans), m.View())
	}
	v := m.View()
	checkSize(t, v, 100, 30)
	if !strings.Contains(v, "no: an exact copy, 200 GiB of the disk left unused") {
		t.Errorf("the confirm step does not ask about growing:\n%s", v)
	}
	drive(t, m, tea.KeyMsg{Type: tea.KeyCtrlG})
	v = m.View()
	if plans[0].Grow == nil || plans[0].Grow.Partition.Number != 2 || !strings.Contains(v, "yes: partition 2 (ext4) grows by") {
		t.Fatalf("ctrl+g: grow %+v\n%s", plans[0].Grow, v)
	}
	drive(t, m, keys("sdb")...)
	drive(t, m, enter)
	if w.deployed == nil || f.plan != plans[0] || f.plan.Grow == nil {
		t.Errorf("the deploy did not get the plan that grows")
	}
}
