package cli

// `ezio seed IMAGE-DIR`: a disk image served to the room, its progress
// lines and JSON, and the wrappers that give diskdeploy's refusals exit
// status 2.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"ezio/disks/diskdeploy"
	"ezio/engine"
	"ezio/engine/discover"
	"ezio/engine/server"
	"ezio/tui/format"
)

// diskSeedFlags are the seed command's flags a disk image uses.
type diskSeedFlags struct {
	trackerListen                 string
	noTracker, noAnnounce, asJSON bool
	exitWhenDone                  bool
	allow                         []netip.Prefix
	room                          *roomWatch
	netboot                       netbootFlags
}

// diskSeedLine is a --json progress line of a disk image's seeder.
type diskSeedLine struct {
	Type       string               `json:"type"`
	Image      string               `json:"image"`
	UploadRate float64              `json:"upload_rate"`
	Uploaded   int64                `json:"bytes_uploaded"`
	Expected   int                  `json:"expected,omitempty"`
	FleetDone  int                  `json:"fleet_done"`
	Fleet      []server.FleetMember `json:"fleet"`
	Partitions []engine.Snapshot    `json:"partitions"`
	// Machines: the network-booted room (--netboot).
	Machines []server.Machine `json:"machines,omitempty"`
}

// SeedDiskCommand is `ezio seed DIR` for a disk image directory: it serves
// every partition, announced on the LAN, until ctx ends or (with
// --exit-when-done) the room is done, printing where clients find it.
func (a *App) SeedDiskCommand(ctx context.Context, dir string, o diskSeedFlags) error {
	log, err := a.Logger(true)
	if err != nil {
		return err
	}
	s, err := SeedDiskImage(ctx, dir, DiskSeedOptions{TrackerListen: o.trackerListen, NoTracker: o.noTracker, Allow: o.allow, Expect: o.room.expect, Tuning: a.Tuning, Logger: log})
	if err != nil {
		return err
	}
	defer s.Stop()
	name := s.Manifest.Name
	if !o.asJSON {
		fmt.Fprintf(a.Stderr, "seeding disk image %s (%s, %d partitions) from %s\n", name, strings.ToUpper(s.Manifest.Label), len(s.Manifest.Partitions), dir)
		for _, j := range s.Jobs {
			fmt.Fprintf(a.Stderr, "  %s (%s): peers connect to %s\n", j.Name(), j.InfoHash(), j.PeerAddr())
		}
		if s.Server != nil {
			fmt.Fprintf(a.Stderr, "clients: ezio deploy %s/images/%s TARGET-DISK\n", s.Server.BaseURL(), name)
		}
	}
	if s.Server != nil && !o.noAnnounce {
		stop, err := discover.Announce(ctx, discover.Info{BaseURL: s.Server.BaseURL(), Listen: o.trackerListen, Images: []string{name}, Logger: log})
		if err != nil {
			log.Warn("not announced on the LAN; clients need this server's address", "err", err)
		} else {
			defer stop()
			if !o.asJSON {
				fmt.Fprintf(a.Stderr, "announced on the LAN; clients can also use: ezio deploy auto:%s TARGET-DISK\n", name)
			}
		}
	}
	if o.netboot.on {
		room, err := a.startNetboot(ctx, dir, s, o.netboot, netbootListenHost(o.trackerListen, a.Tuning.ListenAddr), o.allow, log)
		if err != nil {
			return err
		}
		defer room.Stop()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if o.exitWhenDone && o.netboot.on {
		go watchMachines(ctx, s.Server, o.room.expect, o.netboot.then, o.room.linger, a.Stderr, o.room, cancel)
	} else if o.exitWhenDone {
		go engine.RoomWatch{
			Expect:   o.room.expect,
			Linger:   o.room.linger,
			Reached:  func(done int) { fmt.Fprintf(a.Stderr, "%d of %d clients done\n", done, o.room.expect) },
			Stopping: o.room.stopping(a.Stderr),
		}.RunImage(ctx, s.Server, name, nil, cancel)
	}
	rp := &diskSeedReporter{a: a, s: s, o: &o, mode: a.progressMode(o.asJSON), enc: json.NewEncoder(a.Stdout)}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			rp.report(true)
			if o.room.done.Load() && o.netboot.on {
				fmt.Fprintf(a.Stderr, "the room is done: %d machines verified\n", o.room.expect)
			} else if o.room.done.Load() {
				fmt.Fprintf(a.Stderr, "the room is done: %d clients completed\n", o.room.expect)
			}
			return nil // stopping a seeder is its normal end
		case <-tick.C:
			rp.report(false)
		}
	}
}

// diskSeedReporter prints a disk seeder's state in the chosen mode.
type diskSeedReporter struct {
	a    *App
	s    *DiskSeed
	o    *diskSeedFlags
	mode progressMode
	enc  *json.Encoder
	last time.Time
}

// report prints the state each second; final is the last line, as the
// seeder stops (a room that ended between two ticks is seen).
func (r *diskSeedReporter) report(final bool) {
	s, o, name := r.s, r.o, r.s.Manifest.Name
	line := diskSeedLine{Type: "progress", Image: name, Expected: o.room.expect, Fleet: []server.FleetMember{}}
	for _, j := range s.Jobs {
		sn := j.Snapshot()
		line.UploadRate += sn.UploadRate
		line.Uploaded += sn.BytesUploaded
		line.Partitions = append(line.Partitions, sn)
	}
	if s.Server != nil {
		if f := s.Server.ImageFleet(name); f != nil {
			line.Fleet = f
		}
		line.FleetDone = server.DoneCount(line.Fleet)
	}
	room := ""
	if o.room.expect > 0 {
		room = fmt.Sprintf("  %d of %d clients done", line.FleetDone, o.room.expect)
	}
	if s.Server != nil && o.netboot.on {
		line.Machines = s.Server.Machines()
		room += machinesLine(line.Machines)
	}
	switch r.mode {
	case progressJSON:
		r.enc.Encode(line)
	case progressLine:
		fmt.Fprintf(r.a.Stdout, "\rseeding %s  up %s  sent %s%s   ", name, format.Rate(line.UploadRate), format.Bytes(line.Uploaded), room)
		if final {
			fmt.Fprintln(r.a.Stdout)
		}
	case progressPlain:
		if final || time.Since(r.last) >= 5*time.Second {
			r.last = time.Now()
			fmt.Fprintf(r.a.Stdout, "seeding %s  up %s  sent %s%s\n", name, format.Rate(line.UploadRate), format.Bytes(line.Uploaded), room)
		}
	}
}

// DiskSeed is a disk image being served (diskdeploy.Seeding).
type DiskSeed = diskdeploy.Seeding

// DiskSeedOptions describe the seeding of a disk image directory.
type DiskSeedOptions = diskdeploy.SeedOptions

// SeedDiskImage is diskdeploy.Seed with its refusals as exit status 2.
func SeedDiskImage(ctx context.Context, dir string, o DiskSeedOptions) (*DiskSeed, error) {
	s, err := diskdeploy.Seed(ctx, dir, o)
	var ie *diskdeploy.ImageError
	if errors.As(err, &ie) {
		return nil, refused(err)
	}
	return s, err
}

// IsDiskImageSource says whether a deploy source is a disk image.
func IsDiskImageSource(ctx context.Context, src string) bool {
	return diskdeploy.IsImageSource(ctx, src)
}

// serveLocalImage is diskdeploy.ServeLocal with its refusals as exit
// status 2.
func serveLocalImage(ctx context.Context, dir string, tu engine.Tuning, log *slog.Logger, noOthers bool, seeders *[]string, seedAfter *time.Duration) (stop func(), err error) {
	stop, err = diskdeploy.ServeLocal(ctx, dir, tu, log, noOthers, seeders, seedAfter)
	var ie *diskdeploy.ImageError
	if errors.As(err, &ie) {
		return nil, refused(err)
	}
	return stop, err
}
