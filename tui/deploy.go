package tui

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/huh"

	"ezio/disks"
	"ezio/engine"
	"ezio/tui/format"
)

type deployStep int

const (
	stepSource deployStep = iota
	stepImage
	stepTarget
	stepConfirm
)

// Results of the flow's background work.
type (
	imagesMsg struct {
		flow   int
		images []engine.ImageEntry
		err    error
	}
	torrentMsg struct {
		flow int
		ft   *engine.FetchedTorrent
		err  error
	}
	disksMsg struct {
		flow  int
		disks []disks.Disk
		err   error
	}
	preparedMsg struct {
		flow   int
		target string
		err    error
	}
)

var nextFlowID int

// DeployFlow asks where the image is, which one, onto which disk, and for
// a typed confirmation; then it opens the dashboard.
type DeployFlow struct {
	c    *Common
	deps *Deps
	id   int
	step deployStep
	busy string // what we are waiting for, "" when idle

	form   *huh.Form
	formID int

	// Values kept across steps, so Esc never loses them.
	source   string
	images   []engine.ImageEntry
	imageIdx int
	ft       *engine.FetchedTorrent
	sum      *engine.TorrentSummary
	targets  *TargetTable
	target   targetRow
	confirm  string
}

func NewDeployFlow(c *Common, deps *Deps) *DeployFlow {
	nextFlowID++
	f := &DeployFlow{c: c, deps: deps, id: nextFlowID}
	f.buildForm()
	return f
}

func (f *DeployFlow) Init() tea.Cmd {
	if f.form != nil {
		return f.form.Init()
	}
	return nil
}

// isTorrentSource tells a torrent file or URL from a server address.
func isTorrentSource(s string) bool {
	if strings.HasSuffix(s, ".torrent") || strings.Contains(s, "/torrents/") {
		return true
	}
	if fi, err := os.Stat(s); err == nil && fi.Mode().IsRegular() {
		return true
	}
	return false
}

func (f *DeployFlow) buildForm() {
	f.form = nil
	switch f.step {
	case stepSource:
		f.form, f.formID = newForm(f.c, huh.NewGroup(
			huh.NewInput().Title("Where is the image?").
				Description("The server's address (10.0.0.1 or 10.0.0.1:6969),\nor the path or URL of a .torrent file.").
				Placeholder("10.0.0.1:6969").
				Value(&f.source).
				Validate(func(s string) error {
					if strings.TrimSpace(s) == "" {
						return fmt.Errorf("type an address or a path")
					}
					return nil
				}),
		))
	case stepImage:
		var opts []huh.Option[int]
		for i, e := range f.images {
			label := fmt.Sprintf("%-16s %10s  %5d pieces  %d clients, %d done", e.Name, format.Bytes(e.Size), e.Pieces, e.Clients, e.Done)
			opts = append(opts, huh.NewOption(label, i))
		}
		f.form, f.formID = newForm(f.c, huh.NewGroup(
			huh.NewSelect[int]().Title("Which image?").
				Description(fmt.Sprintf("%d offered by %s", len(f.images), f.source)).
				Options(opts...).Value(&f.imageIdx),
		))
	case stepConfirm:
		want := filepath.Base(f.target.path)
		f.form, f.formID = newForm(f.c, huh.NewGroup(
			huh.NewInput().Title(fmt.Sprintf("Type %s to overwrite it", want)).
				Value(&f.confirm).
				Validate(func(s string) error {
					if strings.TrimSpace(s) != want {
						return fmt.Errorf("type %s exactly, or press esc to go back", want)
					}
					return nil
				}),
		))
	}
}

func (f *DeployFlow) goTo(step deployStep) tea.Cmd {
	f.step = step
	if step == stepConfirm {
		f.confirm = ""
	}
	f.buildForm()
	if f.form != nil {
		return f.form.Init()
	}
	return nil
}

func (f *DeployFlow) back() tea.Cmd {
	f.busy = ""
	switch f.step {
	case stepSource:
		return func() tea.Msg { return backToMenuMsg{} }
	case stepImage:
		return f.goTo(stepSource)
	case stepTarget:
		if len(f.images) > 0 && !isTorrentSource(f.source) {
			return f.goTo(stepImage)
		}
		return f.goTo(stepSource)
	case stepConfirm:
		return f.goTo(stepTarget)
	}
	return nil
}

func (f *DeployFlow) Update(msg tea.Msg) (Screen, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyMsg:
		if key.Matches(msg, f.c.Keys.Back) {
			return f, f.back()
		}
		if f.busy != "" {
			return f, nil
		}
		if f.step == stepTarget && f.targets != nil {
			if msg.String() == "r" {
				return f, f.loadDisks()
			}
			row, chosen := f.targets.Update(msg)
			if chosen {
				return f, f.choose(row)
			}
			return f, nil
		}
	case formDoneMsg:
		if msg.id != f.formID {
			return f, nil
		}
		return f, f.submitted()
	case imagesMsg:
		if msg.flow != f.id || f.busy == "" {
			return f, nil
		}
		f.busy = ""
		if msg.err != nil {
			return f, showError("Could not list the server's images", msg.err,
				"Check the address, that the seeder runs (ezio seed, or Serve an image) and that this machine is on its network.", f)
		}
		if len(msg.images) == 0 {
			return f, showError("The server offers no image", fmt.Errorf("%s answered with an empty /images.json", f.source),
				"Start serving an image on the server first.", f)
		}
		f.images = msg.images
		if f.imageIdx >= len(f.images) {
			f.imageIdx = 0
		}
		return f, f.goTo(stepImage)
	case torrentMsg:
		if msg.flow != f.id || f.busy == "" {
			return f, nil
		}
		f.busy = ""
		if msg.err != nil {
			return f, showError("Could not read the torrent", msg.err,
				"Check the path or URL; a torrent made by ezio torrent create or served by ezio seed works.", f)
		}
		sum, _, err := engine.Summarize(msg.ft.MetaInfo)
		if err != nil {
			return f, showError("This torrent is not an ezio disk image", err,
				"Its files must be extents named by hex disk offsets (partclone -T layout).", f)
		}
		f.ft, f.sum = msg.ft, sum
		f.step = stepTarget
		f.form = nil
		return f, f.loadDisks()
	case disksMsg:
		if msg.flow != f.id || f.busy == "" {
			return f, nil
		}
		f.busy = ""
		if msg.err != nil {
			return f, showError("Could not list the disks", msg.err, "ezio reads /sys and /proc; run it as root.", nil)
		}
		sel := ""
		if f.targets != nil {
			sel = f.targets.Selected().path
		}
		f.targets = NewTargetTable(f.c, msg.disks, f.sum.HighestEnd)
		f.targets.Select(sel)
		return f, nil
	case preparedMsg:
		if msg.flow != f.id || f.busy == "" {
			return f, nil
		}
		f.busy = ""
		if msg.err != nil {
			return f, f.refuse(msg.target, msg.err.Error(), hintFor(msg.err))
		}
		return f, f.goTo(stepConfirm)
	}
	if f.form != nil && f.busy == "" {
		_, cmd := f.form.Update(msg)
		return f, cmd
	}
	return f, nil
}

func (f *DeployFlow) refuse(target, reason, hint string) tea.Cmd {
	if hint == "" {
		hint = "Choose another target. ezio never writes to a disk that is mounted, in use, too small or the one this system runs from."
	}
	if !strings.HasPrefix(reason, "refusing") {
		reason = "refusing to write to " + target + ": " + reason
	}
	return func() tea.Msg {
		return errorMsg{title: "Refused: " + target, what: reason, hint: hint, back: f}
	}
}

func (f *DeployFlow) loadDisks() tea.Cmd {
	f.busy = "looking at the disks of this machine"
	id, list := f.id, f.deps.ListDisks
	return func() tea.Msg {
		ds, err := list()
		return disksMsg{id, ds, err}
	}
}

func (f *DeployFlow) choose(r targetRow) tea.Cmd {
	if r.problem != "" {
		return f.refuse(r.path, r.problem, "")
	}
	f.target = r
	f.busy = "checking " + r.path
	id, mi, prep := f.id, f.ft.MetaInfo, f.deps.PrepareDeploy
	return func() tea.Msg {
		return preparedMsg{id, r.path, prep(mi, r.path)}
	}
}

func (f *DeployFlow) submitted() tea.Cmd {
	ctx := f.deps.Ctx
	switch f.step {
	case stepSource:
		f.source = strings.TrimSpace(f.source)
		src, id := f.source, f.id
		if isTorrentSource(src) {
			f.images = nil
			f.busy = "reading " + src
			fetch := f.deps.FetchTorrent
			return func() tea.Msg {
				ft, err := fetch(ctx, src)
				return torrentMsg{id, ft, err}
			}
		}
		f.busy = "asking " + src + " for its images"
		list := f.deps.ListImages
		return func() tea.Msg {
			es, err := list(ctx, src)
			return imagesMsg{id, es, err}
		}
	case stepImage:
		e := f.images[f.imageIdx]
		u := engine.TorrentURL(f.source, e)
		f.busy = "fetching " + u
		id, fetch := f.id, f.deps.FetchTorrent
		return func() tea.Msg {
			ft, err := fetch(ctx, u)
			return torrentMsg{id, ft, err}
		}
	case stepConfirm:
		return f.start()
	}
	return nil
}

func (f *DeployFlow) start() tea.Cmd {
	o := engine.DeployOptions{
		Torrent: f.ft.MetaInfo, Target: f.target.path, Seeders: f.ft.Seeders,
		Tuning: f.deps.Tuning, Logger: f.deps.Logger,
	}
	j, err := f.deps.Deploy(f.deps.Ctx, o)
	if err != nil {
		return f.refuse(f.target.path, err.Error(), hintFor(err))
	}
	d := NewDashboard(f.c, engine.RoleDeploy, fmt.Sprintf("deploy %s -> %s", f.sum.Name, f.target.path), j)
	return show(d)
}

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
	case f.step == stepConfirm:
		lines = append(lines, f.summary()...)
		lines = append(lines, "")
		lines = append(lines, indent(strings.Split(f.form.View(), "\n"), 1)...)
	case f.form != nil:
		lines = append(lines, indent(strings.Split(f.form.View(), "\n"), 1)...)
	}
	for len(lines) < c.Height-1 {
		lines = append(lines, "")
	}
	foot := st.HelpKey.Render("esc") + st.HelpDesc.Render(" back  ")
	if f.step == stepTarget {
		foot += st.HelpKey.Render("enter") + st.HelpDesc.Render(" choose  ") + st.HelpKey.Render("r") + st.HelpDesc.Render(" rescan  ")
	} else {
		foot += st.HelpKey.Render("enter") + st.HelpDesc.Render(" next  ")
	}
	foot += st.HelpKey.Render("ctrl+c") + st.HelpDesc.Render(" quit")
	lines = append(lines[:c.Height-1], " "+foot)
	return c.screen(lines)
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
