package tui

import (
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
	case f.step == stepTarget && f.targets != nil:
		lines = append(lines, "  "+st.Heading.Render("Which disk or partition gets "+f.sum.Name+"?")+
			st.Muted.Render(fmt.Sprintf("  needs %s", format.Bytes(f.sum.HighestEnd))))
		lines = append(lines, f.targets.View(c.Height-len(lines)-2)...)
	case f.step == stepConfirm && f.form != nil:
		lines = append(lines, f.summary()...)
		lines = append(lines, "")
		lines = append(lines, indent(strings.Split(f.form.View(), "\n"), 1)...)
	case f.form != nil:
		lines = append(lines, indent(strings.Split(f.form.View(), "\n"), 1)...)
	}
	return c.page(lines, f)
}

// summary says exactly what will happen to which disk.
func (f *DeployFlow) summary() []string {
	st := f.c.Styles
	t := f.target
	row := func(k, v string) string {
		return "   " + st.Muted.Render(fmt.Sprintf("%-9s", k)) + " " + st.Text.Render(v)
	}
	ih := f.sum.InfoHash
	lines := []string{
		"  " + st.Heading.Render("Summary"),
		row("image", fmt.Sprintf("%s, %s in %d extents, %d pieces", f.sum.Name, format.Bytes(f.sum.TotalBytes), f.sum.Extents, f.sum.Pieces)),
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
	for _, l := range wrap(warn, f.c.Width-4) {
		lines = append(lines, "   "+st.Warn.Render(l))
	}
	return lines
}

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}
