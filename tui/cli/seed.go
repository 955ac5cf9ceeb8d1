package cli

// `ezio seed`: a partition image from its torrent and source, or a disk
// image directory (disk_seed.go), with the tracker, image server, room
// rule and network boot around it.

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"ezio/disks/diskimage"
	"ezio/engine"
	"ezio/engine/discover"
	"ezio/engine/netboot"
	"ezio/engine/server"
)

// seedFlags are the seed command's flags.
type seedFlags struct {
	trackerListen string
	noTracker     bool
	asJSON        bool
	room          roomWatch
	exitWhenDone  bool
	allow         string
	noAnnounce    bool
	verify        bool
	netboot       netbootFlags
}

func newSeedCmd(a *App) *cobra.Command {
	var o seedFlags
	cmd := &cobra.Command{
		Use:   "seed FILE.torrent SOURCE | seed IMAGE-DIR",
		Short: "Serve an image to the swarm from a disk, an image file or a partclone extent directory",
		Long: `Serve the image described by FILE.torrent from SOURCE until interrupted,
or every partition of the whole-disk image in IMAGE-DIR (one process, one
BitTorrent client, one tracker for all of them).

By default the seeder also runs ezio's HTTP tracker and torrent server on
port 6969, so a client needs only its address:
  ezio deploy http://THIS-HOST:6969/torrents/NAME.torrent TARGET
Use --no-tracker to rely on the torrent's own (external) tracker.`,
		Example: `  ezio seed /srv/images/lab-2026
  ezio seed sda1.torrent /srv/images/sda1
  ezio seed sda1.torrent /dev/sda1 --listen 10.0.0.1:6881 --tracker-listen 10.0.0.1:6969`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error { return a.runSeed(cmd.Context(), &o, args) },
	}
	f := cmd.Flags()
	f.StringVar(&o.trackerListen, "tracker-listen", fmt.Sprintf(":%d", server.DefaultTrackerPort), "tracker and torrent server address ADDR:PORT")
	f.BoolVar(&o.noTracker, "no-tracker", false, "do not run the embedded tracker; use the torrent's trackers")
	f.BoolVar(&o.noAnnounce, "no-announce", false, "do not announce this server on the LAN (mDNS); clients then need its address")
	f.BoolVar(&o.asJSON, "json", false, "print progress as JSON lines")
	f.StringVar(&o.allow, "allow", "", "serve only these networks, CIDR[,CIDR] (peers, tracker and image server; loopback always)")
	f.IntVar(&o.room.expect, "expect", 0, "how many clients make the room (shown as \"k of N done\")")
	f.BoolVar(&o.exitWhenDone, "exit-when-done", false, "stop serving once --expect clients are done and no client still needs data")
	f.BoolVar(&o.verify, "verify", false, "hash the whole source (every partition of a disk image) on all cores first and refuse to serve (exit 1) if a piece does not match")
	f.DurationVar(&o.room.linger, "linger", 0, "with --exit-when-done: stop this long after the room is done even if some client still needs data")
	f.BoolVar(&o.netboot.on, "netboot", false, "boot the room's machines over the network into a deploy of IMAGE-DIR (proxyDHCP, TFTP, HTTP)")
	f.StringVar(&o.netboot.dhcpRange, "dhcp-range", "", "with --netboot: be the DHCP server, leasing FROM-TO (refused if another DHCP server answers)")
	f.StringVar(&o.netboot.then, "then", thenReboot, "with --netboot: what a machine does after its verified deploy: reboot or poweroff")
	f.BoolVar(&o.netboot.redeploy, "redeploy", false, "with --netboot: forget which machines are deployed, so that they deploy again")
	f.StringVar(&o.netboot.targetDisk, "target-disk", "auto", "with --netboot: the disk machines write (auto: the one internal disk that fits; per MAC in "+netboot.TargetsFile+" beside the image)")
	f.StringVar(&o.netboot.kernel, "netboot-kernel", "", "with --netboot: the kernel of the deploy environment (default: the newest /boot/vmlinuz-*)")
	return cmd
}

// runSeed checks the flags together, then serves a whole-disk image
// directory (one argument) or a partition image from its source (two).
func (a *App) runSeed(ctx context.Context, o *seedFlags, args []string) error {
	if o.exitWhenDone {
		if o.room.expect <= 0 {
			return refused(errors.New("--exit-when-done needs --expect N (how many clients make the room)"))
		}
		if o.noTracker {
			return refused(errors.New("--exit-when-done counts the clients through this seeder's tracker; it cannot be used with --no-tracker"))
		}
	}
	allow, err := server.ParseAllowList(o.allow)
	if err != nil {
		return refused(err)
	}
	if err := o.netboot.check(); err != nil {
		return refused(err)
	}
	if o.netboot.on && len(args) != 1 {
		return refused(errors.New("--netboot deploys a whole-disk image: ezio seed IMAGE-DIR --netboot"))
	}
	if len(args) == 1 {
		if !diskimage.IsDiskImage(args[0]) {
			return refused(fmt.Errorf("%s is not a disk image directory (it has no %s); a partition image is seeded with: ezio seed FILE.torrent SOURCE", args[0], diskimage.ManifestFile))
		}
		if o.verify {
			if err := verifyDiskBeforeSeeding(ctx, a, args[0]); err != nil {
				return err
			}
		}
		return a.SeedDiskCommand(ctx, args[0], diskSeedFlags{trackerListen: o.trackerListen, noTracker: o.noTracker, noAnnounce: o.noAnnounce,
			asJSON: o.asJSON, exitWhenDone: o.exitWhenDone, allow: allow, room: &o.room, netboot: o.netboot})
	}
	return a.seedPartition(ctx, o, args[0], args[1], allow)
}

// seedPartition serves the partition image torrentSrc describes from
// source until interrupted or, with --exit-when-done, the room is done.
func (a *App) seedPartition(ctx context.Context, o *seedFlags, torrentSrc, source string, allow server.AllowList) error {
	log, err := a.Logger(true)
	if err != nil {
		return err
	}
	mi, err := engine.LoadTorrent(ctx, torrentSrc)
	if err != nil {
		return refused(err)
	}
	if o.verify {
		if err := verifyBeforeSeeding(ctx, a, mi, source); err != nil {
			return err
		}
	}
	tl := o.trackerListen
	j, err := engine.Seed(ctx, engine.SeedOptions{
		Torrent: mi, Source: source, TrackerListen: tl, NoTracker: o.noTracker, Expect: o.room.expect,
		Allow: allow, Tuning: a.Tuning, Logger: log,
	})
	if err != nil {
		return refused(err)
	}
	if !o.asJSON {
		fmt.Fprintf(a.Stderr, "seeding %s (%s) from %s; peers connect to %s\n", j.Name(), j.InfoHash(), source, j.PeerAddr())
		if u := j.ServerURL(); u != "" {
			fmt.Fprintf(a.Stderr, "clients: ezio deploy %s/torrents/%s.torrent TARGET\n", u, j.Name())
		}
	}
	if o.exitWhenDone {
		go o.room.run(ctx, j, a.Stderr)
	}
	// Announce on the LAN (DNS-SD _ezio._tcp) once the server is up.
	if u := j.ServerURL(); u != "" && !o.noAnnounce {
		stopAnnounce, err := discover.Announce(ctx, discover.Info{BaseURL: u, Listen: tl, Images: []string{j.Name()}, Logger: log})
		if err != nil {
			log.Warn("not announced on the LAN; clients need this server's address", "err", err)
		} else {
			defer stopAnnounce()
			if !o.asJSON {
				fmt.Fprintf(a.Stderr, "announced on the LAN; clients can also use: ezio deploy auto:%s TARGET\n", j.Name())
			}
		}
	}
	err = followJob(ctx, j, a.Stdout, a.progressMode(o.asJSON), func(jl *jsonLine) {
		if f := j.Fleet(); f != nil {
			jl.Fleet = f
		}
	})
	if o.room.done.Load() {
		fmt.Fprintf(a.Stderr, "the room is done: %d clients completed\n", o.room.expect)
		return nil
	}
	var ee *ExitError
	if errors.As(err, &ee) && ee.Code == ExitInterrupted {
		// Stopping a seeder is its normal end.
		return nil
	}
	return err
}
