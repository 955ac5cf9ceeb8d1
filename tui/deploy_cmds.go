package tui

import (
	"errors"
	"fmt"
	"net"

	tea "github.com/charmbracelet/bubbletea"

	"ezio/disks"
	"ezio/disks/diskdeploy"
	"ezio/disks/diskimage"
	"ezio/engine"
	"ezio/engine/server"
	"ezio/tui/format"
)

// Results of the Deploy flow's background work. Every call that touches
// the network or the disks runs in a tea.Cmd, never in Update; flow tells
// which flow asked, so a late answer to a flow left behind is dropped.
type (
	imagesMsg struct {
		flow   int
		images []server.ImageEntry
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
		flow    int
		target  string
		plan    *diskimage.Plan     // a disk image's checked plan
		current *diskdeploy.Current // what the whole disk target holds now
		err     error
	}
	diskImageMsg struct {
		flow int
		img  *diskdeploy.Image
		err  error
	}
	deployStartedMsg struct {
		flow int
		dash *Dashboard
		disk *DiskDashboard
		err  error
	}
)

// flowResult is the answer to work a DeployFlow started in a tea.Cmd; it
// names the flow that asked, so an answer for a flow since left is dropped.
type flowResult interface{ flowID() int }

func (m imagesMsg) flowID() int        { return m.flow }
func (m torrentMsg) flowID() int       { return m.flow }
func (m disksMsg) flowID() int         { return m.flow }
func (m preparedMsg) flowID() int      { return m.flow }
func (m diskImageMsg) flowID() int     { return m.flow }
func (m deployStartedMsg) flowID() int { return m.flow }

func (f *DeployFlow) listImages() tea.Cmd {
	f.busy = "asking " + f.source + " for its images"
	ctx, id, src, list := f.deps.Ctx, f.id, f.source, f.deps.ListImages
	return func() tea.Msg {
		es, err := list(ctx, src)
		return imagesMsg{id, es, err}
	}
}

func (f *DeployFlow) fetchTorrent(src, busy string) tea.Cmd {
	f.busy = busy
	ctx, id, fetch := f.deps.Ctx, f.id, f.deps.FetchTorrent
	return func() tea.Msg {
		ft, err := fetch(ctx, src)
		return torrentMsg{id, ft, err}
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

// choose checks a row the table already knows to be usable, with every
// safety check of a real deploy, before asking for the confirmation.
func (f *DeployFlow) choose(r targetRow) tea.Cmd {
	if r.problem != "" {
		return errorScreen(problem{
			title: "Refused: " + r.path,
			what:  "ezio will not write to " + r.path + ": " + r.problem + ".",
			hint:  "Choose another target. ezio never writes to a disk that is mounted, in use, too small or the one this system runs from.",
		}, f)
	}
	f.target = r
	f.busy = "checking " + r.path
	ctx, id, describe := f.deps.Ctx, f.id, f.deps.DescribeDisk
	// What a whole disk holds now, named in the summary before it is lost.
	current := func() *diskdeploy.Current {
		if r.part || describe == nil {
			return nil
		}
		cur, err := describe(ctx, r.path)
		if err != nil {
			return nil
		}
		return cur
	}
	if f.disk != nil {
		img, prep := f.disk, f.deps.PrepareDisk
		return func() tea.Msg {
			plan, err := prep(ctx, img, r.path)
			if err != nil {
				return preparedMsg{flow: id, target: r.path, err: err}
			}
			return preparedMsg{flow: id, target: r.path, plan: plan, current: current()}
		}
	}
	mi, prep := f.ft.MetaInfo, f.deps.PrepareDeploy
	return func() tea.Msg {
		if err := prep(mi, r.path); err != nil {
			return preparedMsg{flow: id, target: r.path, err: err}
		}
		return preparedMsg{flow: id, target: r.path, current: current()}
	}
}

func (f *DeployFlow) openDisk(src, busy string) tea.Cmd {
	f.busy = busy
	ctx, id, open := f.deps.Ctx, f.id, f.deps.OpenDiskImage
	return func() tea.Msg {
		if open == nil {
			return diskImageMsg{flow: id, err: errors.New("this build cannot deploy disk images")}
		}
		img, err := open(ctx, src)
		return diskImageMsg{id, img, err}
	}
}

// deployListenAddr is where a deploy from the wizard listens: a free
// port, on the host the settings name. A client needs no fixed port (the
// seeder learns it from the tracker and the handshake), and a fixed one
// collides with a seeder on the same machine.
func deployListenAddr(configured string) string {
	host := "0.0.0.0"
	if h, _, err := net.SplitHostPort(configured); err == nil && h != "" {
		host = h
	}
	return net.JoinHostPort(host, "0")
}

// start opens the deploy in the background (engine.Deploy probes the
// target and binds a port) and hands its dashboard back.
func (f *DeployFlow) start() tea.Cmd {
	if f.disk != nil {
		return f.startDisk()
	}
	tu := f.deps.Tuning
	tu.ListenAddr = deployListenAddr(tu.ListenAddr)
	o := engine.DeployOptions{
		Torrent: f.ft.MetaInfo, Target: f.target.path, Seeders: f.ft.Seeders, EzioRoom: len(f.ft.Seeders) > 0, SeedAfter: engine.SeedUntilIdle,
		Tuning: tu, Logger: f.deps.Logger,
	}
	f.busy = "starting the deploy onto " + f.target.path
	ctx, id, deploy, c, then, deps := f.deps.Ctx, f.id, f.deps.Deploy, f.c, f.then, f.deps
	label := fmt.Sprintf("deploy %s -> %s", format.Name(f.sum.Name), f.target.path)
	return func() tea.Msg {
		j, err := deploy(ctx, o)
		if err != nil {
			return deployStartedMsg{flow: id, err: err}
		}
		d := NewDashboard(c, engine.RoleDeploy, label, j)
		d.then, d.deps = then, deps
		return deployStartedMsg{flow: id, dash: d}
	}
}

// startDisk writes the disk image's table and starts its partitions'
// jobs (the plan was checked when the disk was chosen; WriteTable checks
// once more), and opens the disk's dashboard.
func (f *DeployFlow) startDisk() tea.Cmd {
	tu := f.deps.Tuning
	tu.ListenAddr = deployListenAddr(tu.ListenAddr)
	img, plan := f.disk, f.plan
	o := diskdeploy.Options{Trackers: img.Trackers, SeedAfter: engine.SeedUntilIdle, Logger: f.deps.Logger}
	f.busy = "writing the partition table of " + f.target.path
	ctx, id, deploy, c, then, deps := f.deps.Ctx, f.id, f.deps.DeployDisk, f.c, f.then, f.deps
	label := fmt.Sprintf("deploy disk %s -> %s", format.Name(img.Manifest.Name), f.target.path)
	return func() tea.Msg {
		if deploy == nil {
			return deployStartedMsg{flow: id, err: errors.New("this build cannot deploy disk images")}
		}
		o.Tuning = tu
		run, err := deploy(ctx, img, plan, o)
		if err != nil {
			return deployStartedMsg{flow: id, err: err}
		}
		d := NewDiskDashboard(c, deps, label, run)
		d.then = then
		return deployStartedMsg{flow: id, disk: d}
	}
}
