package tui

import (
	"fmt"

	"github.com/charmbracelet/bubbles/key"

	"ezio/disks/diskimage"
	"ezio/tui/format"
)

// growKey asks, on the confirm step of a disk image onto a larger disk,
// to grow the last partition once the data is verified (the default
// stays an exact copy).
var growKey = key.NewBinding(key.WithKeys("ctrl+g"), key.WithHelp("ctrl+g", "grow"))

// canGrow says whether the chosen disk is larger than the disk image
// needs, so that growing is a question worth asking.
func (f *DeployFlow) canGrow() bool {
	return f.disk != nil && f.plan != nil && f.plan.Table != nil && f.plan.TargetSize > f.disk.Need+(1<<20)
}

// toggleGrow turns growing the last partition on (checked as the CLI's
// --grow is: a filesystem ezio cannot grow is refused, with the reason)
// or off.
func (f *DeployFlow) toggleGrow() {
	f.growNote = ""
	if f.plan.Grow != nil {
		f.plan.Grow = nil
		return
	}
	if err := f.plan.SetGrow(diskimage.GrowLast); err != nil {
		f.growNote = err.Error()
	}
}

// growLine is the confirm step's answer to the question.
func (f *DeployFlow) growLine() string {
	st := f.c.Styles
	label := st.Muted.Render(fmt.Sprintf("   %-9s", "grow")) + " "
	switch g := f.plan.Grow; {
	case f.growNote != "":
		return label + st.Bad.Render(f.growNote)
	case g == nil:
		return label + st.Accent.Render("no") + st.Text.Render(fmt.Sprintf(": an exact copy, %s of the disk left unused", format.Bytes(f.plan.TargetSize-f.disk.Need))) + st.Muted.Render("  (ctrl+g: grow)")
	default:
		return label + st.Accent.Render("yes") + st.Text.Render(fmt.Sprintf(": partition %d (%s) grows by %s once verified", g.Partition.Number, firstNonEmptyStr(g.Partition.Filesystem, g.Partition.Saved), format.Bytes(g.Room))) + st.Muted.Render("  (ctrl+g: no)")
	}
}

func firstNonEmptyStr(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
