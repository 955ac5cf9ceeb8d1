package tui

import (
	"context"
	"fmt"
	"os"
	"os/exec"

	tea "github.com/charmbracelet/bubbletea"

	"ezio/disks/diskdeploy"
	"ezio/disks/diskimage"
	"ezio/engine/netboot/room"
	"ezio/engine/server"
)

// DiskDeps is what the wizard does for whole-disk images and after a
// deploy. The command line (the composition root) fills them in; a nil
// field hides what needs it.
type DiskDeps struct {
	// OpenDiskImage reads a disk image's manifest and torrents from the
	// server's /images/NAME (or a local directory).
	OpenDiskImage func(ctx context.Context, src string) (*diskdeploy.Image, error)
	// PrepareDisk runs every check of a disk deploy onto target.
	PrepareDisk func(ctx context.Context, img *diskdeploy.Image, target string) (*diskimage.Plan, error)
	// DescribeDisk says what a whole disk holds now.
	DescribeDisk func(ctx context.Context, disk string) (*diskdeploy.Current, error)
	// DeployDisk writes the table and starts every partition's job, in a
	// session of its own that ends with the last job.
	DeployDisk func(ctx context.Context, img *diskdeploy.Image, plan *diskimage.Plan, o diskdeploy.Options) (DiskRun, error)
	// SeedDisk serves a disk image directory, every partition in one
	// session with one tracker and image server (the command line's
	// SeedDiskImage); nil: Serve takes torrents only.
	SeedDisk func(ctx context.Context, dir string, o DiskSeedOptions) (*DiskSeeding, error)
	// StartNetboot boots the room's machines from the network into a
	// deploy of the disk image served by srv (room.Start, what `ezio seed
	// IMAGE-DIR --netboot` runs); stop ends it. nil: Serve does not ask.
	StartNetboot func(ctx context.Context, dir, image string, srv *server.Server, o room.Options) (stop func(), err error)
	// Then carries out reboot or poweroff after a verified deploy (the
	// command line's, with EZIO_POWER_COMMAND to replace it).
	Then func(action string) error
}

// DiskRun is a running disk deploy as the dashboard follows it;
// *diskdeploy.Run has it.
type DiskRun interface {
	Progress() diskdeploy.Progress
	Stop()
	Verified() <-chan struct{}
	Done() <-chan struct{}
	Finish(ctx context.Context) (*diskimage.Report, error)
}

// What to do after a verified deploy, as on the command line's --then.
const (
	thenExit     = "exit"
	thenReboot   = "reboot"
	thenPoweroff = "poweroff"
	thenShell    = "shell"
)

// thenCmd runs the chosen action once the deploy is verified and the
// seeding policy has let it go; done gets its error (nil for exit).
func thenCmd(deps *Deps, action string, done func(error) tea.Msg) tea.Cmd {
	switch action {
	case thenExit, "":
		return nil
	case thenShell:
		sh := os.Getenv("SHELL")
		if sh == "" {
			sh = "/bin/sh"
		}
		return tea.ExecProcess(exec.Command(sh), func(err error) tea.Msg { return done(err) })
	}
	then := deps.Then
	return func() tea.Msg {
		if then == nil {
			return done(fmt.Errorf("%s is not available here", action))
		}
		return done(then(action))
	}
}

// thenDoneMsg is the outcome of the action after a deploy.
type thenDoneMsg struct {
	id     int
	action string
	err    error
}

func thenLabel(action string) string {
	switch action {
	case thenReboot:
		return "reboot this machine"
	case thenPoweroff:
		return "power this machine off"
	case thenShell:
		return "open a shell"
	}
	return "stay here (show the result)"
}
