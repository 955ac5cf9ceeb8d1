package tui

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/huh"

	"ezio/disks/diskdeploy"
	"ezio/disks/diskimage"
	"ezio/engine"
	"ezio/engine/discover"
	"ezio/engine/server"
	"ezio/engine/torrentfile"
	"ezio/tui/format"
)

// The Deploy flow lives in three files: the steps and their Update here,
// the background work in deploy_cmds.go, the drawing in deploy_view.go.

type deployStep int

const (
	stepSource deployStep = iota
	stepImage
	stepTarget
	stepConfirm
)

// DeployValues are what Deploy asks that is worth keeping between visits:
// the server a room of machines is deployed from.
type DeployValues struct {
	Source string
}

// DeployFlow asks where the image is, which one, onto which disk, and for
// a typed confirmation; then it opens the dashboard.
type DeployFlow struct {
	c    *Common
	deps *Deps
	v    *DeployValues
	id   int
	step deployStep
	busy string // what we are waiting for, "" when idle

	form   *huh.Form
	formID int

	// Values kept across steps, so Esc never loses them.
	source   string
	images   []server.ImageEntry
	imageIdx int
	ft       *engine.FetchedTorrent
	sum      *torrentfile.TorrentSummary
	targets  *TargetTable
	target   targetRow
	confirm  string
	then     string // after a verified deploy: exit, reboot, poweroff, shell
	growNote string // why ctrl+g could not grow (a refusal), "" otherwise

	// A whole-disk image (nil for a partition image), its checked plan,
	// and what the chosen whole disk holds now.
	disk    *diskdeploy.Image
	plan    *diskimage.Plan
	current *diskdeploy.Current
	fits    *diskdeploy.CurrentPart // a partition image: the partition that takes it instead
}

// NewDeployFlow starts at the source step, with the last address used.
func NewDeployFlow(c *Common, deps *Deps, v *DeployValues) *DeployFlow {
	if v == nil {
		v = &DeployValues{}
	}
	return &DeployFlow{c: c, deps: deps, v: v, id: newID(), source: v.Source, then: thenExit}
}

// Init (re)builds the current step's form from the kept values: a form
// that was submitted takes no more keys, so coming back from an error
// needs a fresh one.
func (f *DeployFlow) Init() tea.Cmd {
	f.busy = ""
	f.buildForm()
	if f.form != nil {
		return f.form.Init()
	}
	if f.step == stepTarget && f.targets == nil {
		return f.loadDisks()
	}
	return nil
}

// isTorrentSource tells a torrent file or URL from a server address.
func isTorrentSource(s string) bool {
	if discover.IsAuto(s) {
		return true // found on the LAN; the fetch resolves it
	}
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
				Description("The server's address (10.0.0.1 or 10.0.0.1:6969), auto to find it,\na .torrent file or URL, or a disk image directory (a USB stick).").
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
			opts = append(opts, huh.NewOption(imageLabel(e), i))
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
		// Under the summary: only as high as the question and its error.
		f.form = f.form.WithHeight(4)
	}
}

func (f *DeployFlow) goTo(step deployStep) tea.Cmd {
	f.step = step
	if step == stepConfirm {
		f.confirm, f.growNote = "", ""
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
		if cmd, handled := f.onKey(msg); handled {
			return f, cmd
		}
	case formDoneMsg:
		if msg.id != f.formID {
			return f, nil
		}
		return f, f.submitted()
	case flowResult:
		// Only the answer to the work this flow is waiting for counts:
		// one for a flow since left, or a second answer, is dropped.
		if msg.flowID() != f.id || f.busy == "" {
			return f, nil
		}
		f.busy = ""
		return f, f.onResult(msg)
	}
	if f.form != nil && f.busy == "" {
		_, cmd := f.form.Update(msg)
		return f, cmd
	}
	return f, nil
}

// onKey takes the keys the flow itself answers; the rest go to its form.
func (f *DeployFlow) onKey(msg tea.KeyMsg) (tea.Cmd, bool) {
	switch {
	case key.Matches(msg, f.c.Keys.Back):
		return f.back(), true
	case f.busy != "":
		return nil, true
	case f.step == stepConfirm && f.fits != nil && msg.String() == "ctrl+p":
		return f.useFits(), true
	case f.step == stepConfirm && f.canGrow() && key.Matches(msg, growKey):
		f.toggleGrow()
		return nil, true
	case f.step == stepConfirm && key.Matches(msg, f.c.Keys.Tab):
		f.then = nextThen(f.then, f.deps.Then != nil)
		return nil, true
	case f.step == stepTarget && f.targets != nil:
		if key.Matches(msg, f.c.Keys.Rescan) {
			return f.loadDisks(), true
		}
		if row, chosen := f.targets.Update(msg); chosen {
			return f.choose(row), true
		}
		return nil, true
	}
	return nil, false
}

// onResult moves the flow on with the answer it was waiting for.
func (f *DeployFlow) onResult(msg flowResult) tea.Cmd {
	switch msg := msg.(type) {
	case imagesMsg:
		return f.onImages(msg)
	case torrentMsg:
		return f.onTorrent(msg)
	case disksMsg:
		return f.onDisks(msg)
	case preparedMsg:
		if msg.err != nil {
			return f.refuse(msg.target, msg.err)
		}
		f.plan, f.current, f.fits = msg.plan, msg.current, nil
		if f.disk == nil && f.current != nil && len(f.current.Partitions) > 0 {
			f.fits = f.current.Fits(f.sum.HighestEnd, "")
		}
		return f.goTo(stepConfirm)
	case diskImageMsg:
		return f.onDiskImage(msg)
	case deployStartedMsg:
		switch {
		case msg.err != nil:
			return showError("Could not start the deploy", msg.err, "", f)
		case msg.disk != nil:
			return show(msg.disk)
		}
		return show(msg.dash)
	}
	return nil
}

func (f *DeployFlow) onImages(msg imagesMsg) tea.Cmd {
	if msg.err != nil {
		return showError("Could not list the server's images", msg.err,
			"Check the address, that the server is serving an image and that this machine is on its network.", f)
	}
	if len(msg.images) == 0 {
		return errorScreen(problem{title: "The server offers no image",
			what: f.source + " answers, but serves no image yet.",
			hint: "Start serving an image on the server first (Serve an image), then try again."}, f)
	}
	f.images = msg.images
	if f.imageIdx >= len(f.images) {
		f.imageIdx = 0
	}
	return f.goTo(stepImage)
}

func (f *DeployFlow) onTorrent(msg torrentMsg) tea.Cmd {
	var de *engine.DiskImageError
	switch {
	case errors.As(msg.err, &de):
		// Found on the LAN or on a server by its address: the image is a
		// whole disk, read from its /images/NAME.
		return f.openDisk(de.URL, "reading the disk image "+de.URL)
	case errors.Is(msg.err, discover.ErrNoServer):
		return showError("No ezio server found on this network", msg.err,
			"Start one (Serve, or ezio seed on the server) on this network, or type its address instead of auto.", f)
	case msg.err != nil:
		return showError("Could not read the torrent", msg.err,
			"Check the path or the URL; a torrent made by Capture or Build a torrent, or served by a seeder, works.", f)
	}
	sum, _, err := torrentfile.Summarize(msg.ft.MetaInfo)
	if err != nil {
		return showError("This torrent is not an ezio disk image", err,
			"Its files must be extents named by hex disk offsets (partclone -T layout).", f)
	}
	f.ft, f.sum, f.disk = msg.ft, sum, nil
	f.step = stepTarget
	f.form = nil
	return f.loadDisks()
}

func (f *DeployFlow) onDisks(msg disksMsg) tea.Cmd {
	if msg.err != nil {
		return showError("Could not list the disks", msg.err, "ezio reads /sys and /proc; run it as root.", f)
	}
	sel := ""
	if f.targets != nil {
		sel = f.targets.Selected().path
	}
	if f.disk != nil {
		f.targets = NewDiskTargetTable(f.c, msg.disks, f.disk.Need)
	} else {
		f.targets = NewTargetTable(f.c, msg.disks, f.sum.HighestEnd)
	}
	f.targets.Select(sel)
	return nil
}

func (f *DeployFlow) onDiskImage(msg diskImageMsg) tea.Cmd {
	if msg.err != nil {
		hint := "Check that the server still serves it; a disk image is read from its /images/NAME."
		if !diskdeploy.IsRemote(f.source) {
			hint = "The directory must hold " + diskimage.ManifestFile + " and the partitions' torrents and extents, as Capture writes them."
		}
		return showError("Could not read the disk image", msg.err, hint, f)
	}
	f.disk, f.ft, f.sum = msg.img, nil, nil
	f.step = stepTarget
	f.form = nil
	return f.loadDisks()
}

// refuse shows why target cannot be written; Esc comes back to the table.
func (f *DeployFlow) refuse(target string, err error) tea.Cmd {
	p := describe("Could not use "+target, err, "")
	if classify(err) == errOther {
		p.title = "Refused: " + target
		p.hint = hintFor(err)
		if p.hint == "" {
			p.hint = "Choose another target. ezio never writes to a disk that is mounted, in use, too small or the one this system runs from."
		}
	}
	return errorScreen(p, f)
}

func (f *DeployFlow) submitted() tea.Cmd {
	switch f.step {
	case stepSource:
		f.source = strings.TrimSpace(f.source)
		f.v.Source = f.source
		if diskimage.IsDiskImage(f.source) {
			return f.openDisk(f.source, "reading the disk image in "+f.source)
		}
		if isTorrentSource(f.source) {
			f.images = nil
			return f.fetchTorrent(f.source, "reading "+f.source)
		}
		return f.listImages()
	case stepImage:
		e := f.images[f.imageIdx]
		if e.Kind == server.KindDisk {
			u := engine.ImageURL(f.source, e)
			return f.openDisk(u, "reading the disk image "+u)
		}
		u := engine.TorrentURL(f.source, e)
		return f.fetchTorrent(u, "fetching "+u)
	case stepConfirm:
		return f.start()
	}
	return nil
}

// imageLabel is one row of the image list: what kind of image it is, so
// that a whole disk is never mistaken for a partition.
func imageLabel(e server.ImageEntry) string {
	if e.Kind == server.KindDisk {
		return fmt.Sprintf("disk %-16s %10s  %d partitions  %d clients, %d done", format.Name(e.Name), format.Bytes(e.Size), len(e.Partitions), e.Clients, e.Done)
	}
	return fmt.Sprintf("part %-16s %10s  %5d pieces  %d clients, %d done", format.Name(e.Name), format.Bytes(e.Size), e.Pieces, e.Clients, e.Done)
}

// useFits turns the target to the partition that takes a partition
// image, instead of the whole disk under it.
func (f *DeployFlow) useFits() tea.Cmd {
	p := f.fits
	r := targetRow{name: filepath.Base(p.Node), path: p.Node, fs: p.FS, label: p.Label, size: p.Size, part: true}
	if f.targets != nil {
		f.targets.Select(p.Node)
		if s := f.targets.Selected(); s.path == p.Node {
			r = s
		}
	}
	f.step = stepTarget
	f.form = nil
	return f.choose(r)
}

// nextThen is the action after a verified deploy that follows a (tab on
// the confirmation); reboot and poweroff only where they can be done.
func nextThen(a string, power bool) string {
	all := []string{thenExit, thenReboot, thenPoweroff, thenShell}
	if !power {
		all = []string{thenExit, thenShell}
	}
	for i, x := range all {
		if x == a {
			return all[(i+1)%len(all)]
		}
	}
	return thenExit
}
