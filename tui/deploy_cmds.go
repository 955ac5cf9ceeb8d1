package tui

import (
	"fmt"
	"net"

	tea "github.com/charmbracelet/bubbletea"

	"ezio/disks"
	"ezio/engine"
)

// Results of the Deploy flow's background work. Every call that touches
// the network or the disks runs in a tea.Cmd, never in Update; flow tells
// which flow asked, so a late answer to a flow left behind is dropped.
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
	deployStartedMsg struct {
		flow int
		dash *Dashboard
		err  error
	}
)

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
	id, mi, prep := f.id, f.ft.MetaInfo, f.deps.PrepareDeploy
	return func() tea.Msg {
		return preparedMsg{id, r.path, prep(mi, r.path)}
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
	tu := f.deps.Tuning
	tu.ListenAddr = deployListenAddr(tu.ListenAddr)
	o := engine.DeployOptions{
		Torrent: f.ft.MetaInfo, Target: f.target.path, Seeders: f.ft.Seeders, SeedAfter: engine.SeedUntilIdle,
		Tuning: tu, Logger: f.deps.Logger,
	}
	f.busy = "starting the deploy onto " + f.target.path
	ctx, id, deploy, c := f.deps.Ctx, f.id, f.deps.Deploy, f.c
	label := fmt.Sprintf("deploy %s -> %s", f.sum.Name, f.target.path)
	return func() tea.Msg {
		j, err := deploy(ctx, o)
		if err != nil {
			return deployStartedMsg{flow: id, err: err}
		}
		return deployStartedMsg{flow: id, dash: NewDashboard(c, engine.RoleDeploy, label, j)}
	}
}
