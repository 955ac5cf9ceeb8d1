package cli

import (
	"context"
	"fmt"
	"io"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"ezio/disks/diskdeploy"
	"ezio/disks/diskimage"
	"ezio/engine"
	"ezio/engine/daemon/client"
	"ezio/engine/demo"
	"ezio/engine/netboot/room"
	"ezio/engine/server"
	"ezio/engine/torrentfile"
	"ezio/tui"
	"ezio/tui/format"
)

// wizardSetup is what the wizard and the demo share: logger to a file,
// saved settings laid over the flags, and the demo's start and cleanup.
func wizardSetup(ctx context.Context, a *App) (*tui.Deps, *tui.Config, string, func(), error) {
	log, err := a.Logger(false)
	if err != nil {
		return nil, nil, "", nil, err
	}
	cfgPath := tui.DefaultConfigPath()
	cfg, err := tui.LoadConfig(cfgPath)
	if err != nil {
		log.Warn("ignoring unreadable settings", "err", err)
	}
	deps := tui.RealDeps(ctx, log, cfg.Over(a.Tuning, a.flagChanged))
	deps.ConfigPath = cfgPath
	deps.DiskDeps = a.wizardDiskDeps()
	deps.DaemonAddr = client.DefaultAddr
	deps.AttachDaemon = func(addr string) (tui.Daemon, error) { return client.Dial(addr) }
	var (
		mu    sync.Mutex
		demos []*demo.Demo
	)
	deps.Demo = func(ctx context.Context) (*engine.Job, error) {
		tu := a.Tuning
		if tu.MaxUploadRate == 0 {
			tu.MaxUploadRate = demo.DefaultRate
		}
		d, err := demo.Start(ctx, demo.Options{Logger: log, Tuning: tu})
		if err != nil {
			return nil, err
		}
		mu.Lock()
		demos = append(demos, d)
		mu.Unlock()
		return d.Seeder, nil
	}
	cleanup := func() {
		mu.Lock()
		defer mu.Unlock()
		for _, d := range demos {
			d.Close()
		}
	}
	theme := a.Theme
	if theme == "" {
		theme = cfg.Theme
	}
	return deps, cfg, theme, cleanup, nil
}

// hangupContext also ends on SIGHUP (a closed SSH session or tmux
// window), so running jobs stop cleanly and the demo removes its files.
func hangupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, syscall.SIGHUP)
}

func runWizard(ctx context.Context, a *App) error {
	ctx, stop := hangupContext(ctx)
	defer stop()
	deps, cfg, theme, cleanup, err := wizardSetup(ctx, a)
	if err != nil {
		return err
	}
	defer cleanup()
	return tui.Run(ctx, tui.RunOptions{Theme: theme, Deps: deps, Config: cfg})
}

func newDemoCmd(a *App) *cobra.Command {
	var (
		clients int
		size    string
		stagger time.Duration
		rate    string
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Watch a swarm at work: a seeder and N clients on this machine, in temporary files",
		Long: `Build a random image in a temporary directory, serve it, and deploy it to N
clients on loopback, all in this process; the seeder's dashboard shows the
swarm. Clients join one by one and share pieces with each other. Nothing
outside the temporary directory is written, and it is removed on exit.`,
		Example: "  ezio demo\n  ezio demo --clients 5 --size 1GiB",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if clients < 1 || clients > 50 {
				return refused(fmt.Errorf("--clients %d: choose 1 to 50", clients))
			}
			n, err := torrentfile.ParseSize(size)
			if err != nil {
				return refused(err)
			}
			tu := a.Tuning
			if rate != "" && rate != "0" {
				r, err := torrentfile.ParseSize(rate)
				if err != nil {
					return refused(fmt.Errorf("--rate: %w", err))
				}
				// Every machine's uplink is capped, as on a LAN; loopback
				// would otherwise finish before the eye can follow.
				tu.MaxUploadRate = r
			}
			ctx, stop := hangupContext(cmd.Context())
			defer stop()
			deps, cfg, theme, cleanup, err := wizardSetup(ctx, a)
			if err != nil {
				return err
			}
			defer cleanup()
			fmt.Fprintf(a.Stderr, "preparing a %s demo image for %d clients...\n", format.Bytes(n), clients)
			d, err := demo.Start(ctx, demo.Options{Clients: clients, Size: n, Stagger: stagger, Logger: deps.Logger, Tuning: tu})
			if err != nil {
				return err
			}
			defer d.Close()
			return tui.Run(ctx, tui.RunOptions{Theme: theme, Deps: deps, Config: cfg, Start: func(c *tui.Common) tui.Screen {
				return tui.DemoDashboard(c, d.Seeder)
			}})
		},
	}
	f := cmd.Flags()
	f.IntVar(&clients, "clients", 3, "number of clients")
	f.StringVar(&size, "size", "512MiB", "image size (e.g. 256MiB, 1GiB)")
	f.DurationVar(&stagger, "stagger", 3*time.Second, "time between client starts")
	f.StringVar(&rate, "rate", "20MiB", "upload rate of each machine, like a LAN link (0 = as fast as loopback goes)")
	return cmd
}

// wizardDiskDeps are the wizard's whole-disk deploys and serving, and its
// action after a verified deploy: the use cases of disks/diskdeploy that
// the command line runs too, with their own errors (no exit statuses).
func (a *App) wizardDiskDeps() tui.DiskDeps {
	return tui.DiskDeps{
		OpenDiskImage: diskdeploy.Open,
		PrepareDisk: func(ctx context.Context, img *diskdeploy.Image, target string) (*diskimage.Plan, error) {
			return img.Prepare(ctx, target)
		},
		DescribeDisk: diskdeploy.Describe,
		DeployDisk: func(ctx context.Context, img *diskdeploy.Image, plan *diskimage.Plan, o diskdeploy.Options) (tui.DiskRun, error) {
			return diskdeploy.DeployLocal(ctx, img, plan, o)
		},
		// Serve's disk images: what `ezio seed DIR` runs, always with the
		// tracker and image server.
		SeedDisk: func(ctx context.Context, dir string, o tui.DiskSeedOptions) (*tui.DiskSeeding, error) {
			s, err := diskdeploy.Seed(ctx, dir, diskdeploy.SeedOptions{TrackerListen: o.TrackerListen, Tuning: o.Tuning, Logger: o.Logger})
			if err != nil {
				return nil, err
			}
			return &tui.DiskSeeding{Manifest: s.Manifest, Jobs: s.Jobs, Server: s.Server, Stop: s.Stop}, nil
		},
		// Serve's "Boot the room's machines over the network?": the room
		// `ezio seed IMAGE-DIR --netboot` starts.
		StartNetboot: func(ctx context.Context, dir, image string, srv *server.Server, o room.Options) (func(), error) {
			r, err := room.Start(ctx, dir, image, srv, o)
			if err != nil {
				return nil, err
			}
			return r.Stop, nil
		},
		// Reboot and power-off only: the wizard runs a shell itself, on
		// the terminal it owns. Output goes to the log, not over the
		// screen.
		Then: func(action string) error {
			return powerAction(action, io.Discard)
		},
	}
}
