package tui

import (
	"fmt"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"ezio/disks"
	"ezio/tui/format"
)

// targetRow is one disk or partition as the target table shows it.
type targetRow struct {
	name, path, model, fs, label, mount, problem string
	size                                         int64
	part                                         bool
	parts                                        int // partitions the kernel lists on a disk
}

// TargetTable lists every disk and partition, usable or not; a row that
// cannot be written says why, and choosing it is refused with that reason.
type TargetTable struct {
	c      *Common
	rows   []targetRow
	cursor int
	offset int
	need   int64
}

func NewTargetTable(c *Common, ds []disks.Disk, need int64) *TargetTable {
	return newTargetTable(c, ds, need, false)
}

// NewDiskTargetTable lists whole disks only, for a disk image: a disk
// cannot be used when it, or any of its partitions, cannot be written,
// or when it is smaller than the end of the image's last partition.
func NewDiskTargetTable(c *Common, ds []disks.Disk, need int64) *TargetTable {
	return newTargetTable(c, ds, need, true)
}

func newTargetTable(c *Common, ds []disks.Disk, need int64, wholeDisks bool) *TargetTable {
	t := &TargetTable{c: c, need: need}
	for _, d := range ds {
		if wholeDisks {
			model := d.Model
			if d.BackingFile != "" {
				model = d.BackingFile
			}
			r := targetRow{name: d.Name, path: d.Path, model: model, fs: d.FSType, label: d.Label, mount: d.MountPoint, problem: d.Problem, size: d.Size, parts: len(d.Partitions)}
			for _, p := range d.Partitions {
				if r.problem == "" && p.Problem != "" {
					r.problem = "its partition " + p.Name + ": " + p.Problem
				}
				if r.mount == "" {
					r.mount = p.MountPoint
				}
			}
			if r.problem == "" && need > 0 && d.Size < need {
				r.problem = fmt.Sprintf("it is too small: %s, the image needs %s", format.Bytes(d.Size), format.Bytes(need))
			}
			t.rows = append(t.rows, r)
			continue
		}
		model := d.Model
		if d.BackingFile != "" {
			model = d.BackingFile
		}
		r := targetRow{name: d.Name, path: d.Path, model: model, fs: d.FSType, label: d.Label, mount: d.MountPoint, problem: d.Problem, size: d.Size}
		if r.problem == "" && need > 0 && d.Size < need {
			r.problem = fmt.Sprintf("it is too small: %s, the image needs %s", format.Bytes(d.Size), format.Bytes(need))
		}
		t.rows = append(t.rows, r)
		for _, p := range d.Partitions {
			pr := targetRow{name: p.Name, path: p.Path, fs: p.FSType, label: p.Label, mount: p.MountPoint, problem: p.Problem, size: p.Size, part: true}
			if pr.problem == "" && need > 0 && p.Size < need {
				pr.problem = fmt.Sprintf("it is too small: %s, the image needs %s", format.Bytes(p.Size), format.Bytes(need))
			}
			t.rows = append(t.rows, pr)
			// An LVM PV's logical volumes, shown under it: ezio images
			// them with the disk, never writes one alone.
			for _, v := range p.Volumes {
				why := "an LVM logical volume: deploy the whole disk"
				if v.Problem != "" {
					why = "LV " + v.Problem + ": ezio will not capture this disk"
				}
				t.rows = append(t.rows, targetRow{name: " " + v.VG + "/" + v.Name, fs: "LV", size: v.Size, part: true, problem: why})
			}
		}
	}
	// Start on the first row that can be used.
	for i, r := range t.rows {
		if r.problem == "" {
			t.cursor = i
			break
		}
	}
	return t
}

// Selected is the row under the cursor.
func (t *TargetTable) Selected() targetRow {
	if len(t.rows) == 0 {
		return targetRow{}
	}
	return t.rows[t.cursor]
}

// Select moves the cursor to path, if listed.
func (t *TargetTable) Select(path string) {
	for i, r := range t.rows {
		if r.path == path && path != "" {
			t.cursor = i
		}
	}
}

// Update moves the cursor; chosen is true on Enter.
func (t *TargetTable) Update(k tea.KeyMsg) (targetRow, bool) {
	if len(t.rows) == 0 {
		return targetRow{}, false
	}
	switch {
	case key.Matches(k, t.c.Keys.Up):
		t.cursor = max(0, t.cursor-1)
	case key.Matches(k, t.c.Keys.Down):
		t.cursor = min(len(t.rows)-1, t.cursor+1)
	case key.Matches(k, t.c.Keys.Home):
		t.cursor = 0
	case key.Matches(k, t.c.Keys.End):
		t.cursor = len(t.rows) - 1
	case key.Matches(k, t.c.Keys.Enter):
		return t.rows[t.cursor], true
	}
	return targetRow{}, false
}

// View draws the table in at most h lines, and the selected row's problem
// in full under it.
func (t *TargetTable) View(h int) []string {
	st := t.c.Styles
	w := t.c.Width
	// NAME SIZE MODEL FS MOUNTED; the problem column takes what is left.
	fixed := 2 + 12 + 10 + 1 + 10 + 1 + 6 + 1 + 12 + 1
	pw := max(10, w-fixed-1)
	row := func(cur, name, size, model, fs, mount, problem string) string {
		return fmt.Sprintf("%s%-12s%10s %-10.10s %-6.6s %-12.12s %s", cur, name, size, model, fs, mount, problem)
	}
	lines := []string{st.Muted.Render(row("  ", "NAME", "SIZE", "MODEL", "FS", "MOUNTED", "CANNOT BE USED BECAUSE"))}
	if len(t.rows) == 0 {
		return append(lines, st.Muted.Render("  no disks found (ezio needs /sys; are you root?)"))
	}
	rowsH := max(1, h-3)
	if t.cursor < t.offset {
		t.offset = t.cursor
	}
	if t.cursor >= t.offset+rowsH {
		t.offset = t.cursor - rowsH + 1
	}
	end := min(len(t.rows), t.offset+rowsH)
	for i := t.offset; i < end; i++ {
		r := t.rows[i]
		name := r.name
		if r.part {
			name = " " + name
		}
		problem := r.problem
		if len(problem) > pw {
			problem = problem[:pw-3] + "..."
		}
		mount := r.mount
		if mount == "" {
			mount = "-"
		}
		cur := "  "
		if i == t.cursor {
			cur = st.Glyphs.Cursor + " "
		}
		line := row(cur, name, format.Bytes(r.size), r.model, r.fs, mount, problem)
		switch {
		case i == t.cursor:
			line = st.Selected.Render(fit(line, w-1))
		case r.problem != "":
			line = st.Disabled.Render(line)
		default:
			line = st.Text.Render(line)
		}
		lines = append(lines, line)
	}
	if s := t.Selected(); s.problem != "" {
		lines = append(lines, "", "  "+st.Warn.Render(s.path+": "+s.problem))
	} else {
		lines = append(lines, "", "  "+st.Good.Render(s.path+" can be written"))
	}
	return lines
}
