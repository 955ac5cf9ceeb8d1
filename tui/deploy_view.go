package tui

import (
	"cmp"
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"

	"ezio/tui/format"
)

func (f *DeployFlow) keys() []key.Binding {
	k := f.c.Keys
	if f.busy != "" {
		return []key.Binding{as(k.Back, "cancel"), k.ForceQuit}
	}
	switch f.step {
	case stepTarget:
		return []key.Binding{as(k.Back, "back"), k.Up, k.Down, as(k.Enter, "choose"), k.Rescan, as(k.ForceQuit, "quit")}
	case stepSource:
		return []key.Binding{as(k.Back, "menu"), as(k.Enter, "next"), as(k.ForceQuit, "quit")}
	}
	bs := []key.Binding{as(k.Back, "back")}
	if f.step == stepConfirm {
		bs = append(bs, as(k.Tab, "then"))
		if f.canGrow() {
			bs = append(bs, growKey)
		}
	}
	if f.form != nil {
		bs = append(bs, f.form.KeyBinds()...)
	}
	return append(bs, as(k.ForceQuit, "quit"))
}

func (f *DeployFlow) ShortHelp() []key.Binding  { return f.keys() }
func (f *DeployFlow) FullHelp() [][]key.Binding { return [][]key.Binding{f.keys()} }

func (f *DeployFlow) stepsLine() string {
	st := f.c.Styles
	names := []string{"image", "target", "confirm"}
	cur := map[deployStep]int{stepSource: 0, stepImage: 0, stepTarget: 1, stepConfirm: 2}[f.step]
	var parts []string
	for i, n := range names {
		s := fmt.Sprintf("%d %s", i+1, n)
		switch {
		case i == cur:
			parts = append(parts, st.Selected.Render(" "+s+" "))
		case i < cur:
			parts = append(parts, st.Good.Render(" "+s+" "))
		default:
			parts = append(parts, st.Muted.Render(" "+s+" "))
		}
	}
	return " " + strings.Join(parts, st.Muted.Render(" > "))
}

func (f *DeployFlow) View() string {
	c, st := f.c, f.c.Styles
	lines := []string{c.titleBar("deploy this machine", ""), f.stepsLine(), ""}
	switch {
	case f.busy != "":
		lines = append(lines, "  "+st.Accent.Render(st.Glyphs.Spinner[0])+" "+st.Text.Render(f.busy+"..."))
	case f.step == stepTarget && f.targets != nil && f.disk != nil:
		m := f.disk.Manifest
		lines = append(lines, "  "+st.Heading.Render("Which whole disk gets the disk image "+format.Name(m.Name)+"?")+
			st.Muted.Render(fmt.Sprintf("  needs %s", format.Bytes(f.disk.Need))))
		lines = append(lines, f.targets.View(c.Height-len(lines)-2)...)
	case f.step == stepTarget && f.targets != nil:
		lines = append(lines, "  "+st.Heading.Render("Which disk or partition gets "+format.Name(f.sum.Name)+"?")+
			st.Muted.Render(fmt.Sprintf("  needs %s", format.Bytes(f.sum.HighestEnd))))
		lines = append(lines, f.targets.View(c.Height-len(lines)-2)...)
	case f.step == stepConfirm && f.form != nil:
		lines = append(lines, f.summary()...)
		lines = append(lines, "   "+st.Muted.Render(fmt.Sprintf("%-9s", "then"))+" "+st.Accent.Render(f.then)+
			st.Text.Render(": "+thenLabel(f.then)+" once verified")+st.Muted.Render("  (tab: change)"))
		if f.canGrow() {
			lines = append(lines, f.growLine())
		}
		lines = append(lines, "")
		lines = append(lines, indent(strings.Split(f.form.View(), "\n"), 1)...)
	case f.form != nil:
		lines = append(lines, indent(strings.Split(f.form.View(), "\n"), 1)...)
	}
	return c.page(lines, f)
}

// summary says exactly what will happen to which disk.
func (f *DeployFlow) summary() []string {
	if f.disk != nil {
		return f.diskSummary()
	}
	st := f.c.Styles
	t := f.target
	row := func(k, v string) string {
		return "   " + st.Muted.Render(fmt.Sprintf("%-9s", k)) + " " + st.Text.Render(v)
	}
	ih := f.sum.InfoHash
	lines := []string{
		"  " + st.Heading.Render("Summary"),
		row("image", fmt.Sprintf("%s, %s in %d extents, %d pieces", format.Name(f.sum.Name), format.Bytes(f.sum.TotalBytes), f.sum.Extents, f.sum.Pieces)),
		row("infohash", ih),
		row("target", fmt.Sprintf("%s (%s%s)", t.path, format.Bytes(t.size), prefixed(", ", t.model))),
	}
	was := "no filesystem ezio recognises"
	if t.fs != "" {
		was = "its " + t.fs + " filesystem"
		if t.label != "" {
			was += " \"" + t.label + "\""
		}
	}
	warn := fmt.Sprintf("%s will be overwritten: the image's extents, up to byte %d (%s); %s is replaced by the image.",
		t.path, f.sum.HighestEnd, format.Bytes(f.sum.HighestEnd), was)
	if cur := f.current; cur != nil && len(cur.Partitions) > 0 {
		// A partition image onto a whole disk with a table: the table
		// and everything on it go.
		warn = fmt.Sprintf("%s is a whole disk with a %s partition table: writing a partition image here destroys the table and every partition on it:", t.path, cur.TableName())
	}
	for _, l := range wrap(warn, f.c.Width-4) {
		lines = append(lines, "   "+st.Warn.Render(l))
	}
	if cur := f.current; cur != nil && len(cur.Partitions) > 0 {
		lines = append(lines, f.currentLines("lost")...)
		if f.fits != nil {
			lines = append(lines, "   "+st.Accent.Render(fmt.Sprintf("ctrl+p: write it to partition %d (%s) instead", f.fits.Number, f.fits.Node)))
		}
	}
	return lines
}

// currentLines lists what the chosen whole disk holds now.
func (f *DeployFlow) currentLines(verb string) []string {
	st := f.c.Styles
	cur := f.current
	if cur == nil {
		if f.disk == nil {
			return nil
		}
		return []string{"   " + st.Warn.Render("now: its partition table could not be read; everything on it is "+verb)}
	}
	if cur.Label == "" {
		return []string{"   " + st.Text.Render("now: no partition table")}
	}
	lines := []string{"   " + st.Text.Render(fmt.Sprintf("now: %s partition table%s, %d partitions, all %s:", cur.TableName(), prefixed(" ", cur.ID), len(cur.Partitions), verb))}
	for _, p := range cur.Partitions {
		fs := cmp.Or(p.FS, "no filesystem")
		if p.Extended {
			fs = "extended"
		}
		lines = append(lines, "     "+st.Warn.Render(fit(fmt.Sprintf("%2d  %10s  %-8s %s", p.Number, format.Bytes(p.Size), fs, quoted(p.Label)), f.c.Width-6)))
	}
	return lines
}

func quoted(s string) string {
	if s == "" {
		return ""
	}
	return "\"" + s + "\""
}

// diskSummary says what a disk image does to the chosen disk: its
// current table and partitions are lost, the image's are written.
func (f *DeployFlow) diskSummary() []string {
	st := f.c.Styles
	t := f.target
	m := f.disk.Manifest
	row := func(k, v string) string {
		return "   " + st.Muted.Render(fmt.Sprintf("%-9s", k)) + " " + st.Text.Render(v)
	}
	lines := []string{
		"  " + st.Heading.Render("Summary"),
		row("image", fmt.Sprintf("disk %s, %s partition table, %d partitions, %s of data", format.Name(m.Name), strings.ToUpper(tableName(m.Label)), len(m.Partitions), format.Bytes(m.DataBytes()))),
		row("target", fmt.Sprintf("%s (%s%s)", t.path, format.Bytes(t.size), prefixed(", ", t.model))),
	}
	lines = append(lines, f.currentLines("lost")...)
	lines = append(lines, "   "+st.Text.Render("written:"))
	for _, p := range m.Partitions {
		lines = append(lines, "     "+st.Text.Render(fit(fmt.Sprintf("%2d  %10s  %-8s %-9s %s", p.Number, format.Bytes(p.Size), cmp.Or(p.Filesystem, "-"), p.Saved, quoted(p.Label)), f.c.Width-6)))
	}
	return lines
}

func tableName(label string) string {
	if label == "dos" {
		return "MBR"
	}
	return label
}

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}
