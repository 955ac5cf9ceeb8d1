package cli

// `ezio seed IMAGE-DIR --netboot`: the flags, and the room's start-up as
// the command line reports it. The use case itself is engine/netboot/room,
// which the wizard's Serve runs too.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"ezio/engine/netboot/room"
	"ezio/engine/server"
)

// netbootFlags are the seed command's network-boot flags.
type netbootFlags struct {
	on         bool
	dhcpRange  string
	then       string
	redeploy   bool
	targetDisk string
	kernel     string
}

func (f netbootFlags) check() error {
	if !f.on {
		if f.dhcpRange != "" || f.redeploy || f.kernel != "" {
			return errors.New("--dhcp-range, --redeploy and --netboot-kernel need --netboot")
		}
		return nil
	}
	return f.options("", nil, nil).Check()
}

// options are the flags as the room's use case takes them.
func (f netbootFlags) options(listenHost string, allow server.AllowList, log *slog.Logger) room.Options {
	return room.Options{DHCPRange: f.dhcpRange, Then: f.then, Redeploy: f.redeploy, TargetDisk: f.targetDisk, Kernel: f.kernel,
		ListenHost: listenHost, Allow: allow, Logger: log}
}

// startNetboot builds (or finds cached) the deploy environment and answers
// DHCP, TFTP and /netboot/ on the interfaces of listenHost ("" = all); its
// refusals exit with status 2.
func (a *App) startNetboot(ctx context.Context, dir string, s *DiskSeed, f netbootFlags, listenHost string, allow server.AllowList, log *slog.Logger) (*room.Room, error) {
	o := f.options(listenHost, allow, log)
	o.Say = func(line string) { fmt.Fprintln(a.Stderr, line) }
	r, err := room.Start(ctx, dir, s.Manifest.Name, s.Server, o)
	var re *room.RefusedError
	if errors.As(err, &re) {
		return nil, refused(withNetbootAdvice(re))
	}
	return r, err
}

// withNetbootAdvice adds to a room's refusal the flags that fix it.
func withNetbootAdvice(re *room.RefusedError) error {
	switch re.Kind {
	case room.RefusedNoServer:
		return errors.New("--netboot serves the boot files over this seeder's HTTP server; it cannot be used with --no-tracker")
	case room.RefusedOtherDHCP:
		return fmt.Errorf("%w; leave out --dhcp-range to boot by proxyDHCP beside it", re.Err)
	case room.RefusedRangeOff:
		return fmt.Errorf("--dhcp-range: %w; give a range on the network of --tracker-listen, or listen on every interface", re.Err)
	case room.RefusedNoIPv4:
		return fmt.Errorf("--netboot: %w (see --tracker-listen)", re.Err)
	case room.RefusedBadListen:
		return fmt.Errorf("%w (see --tracker-listen and --listen)", re.Err)
	case room.RefusedNoEnv:
		return fmt.Errorf("%w; --netboot-kernel PATH names the kernel to boot", re.Err)
	}
	return re.Err
}

// netbootListenHost is the address network boot answers on: the image
// server's, else BitTorrent's --listen, else all ("").
func netbootListenHost(trackerListen, peerListen string) string {
	return room.ListenHost(trackerListen, peerListen)
}

// watchMachines ends the seeder (stop) once expect machines are verified
// and, when they reboot, are back in their own system (or linger passed).
func watchMachines(ctx context.Context, srv *server.Server, expect int, then string, linger time.Duration, log io.Writer, rw *roomWatch, stop func()) {
	room.Watch{Expect: expect, Then: then, Linger: linger,
		Reached: func(verified int) { fmt.Fprintf(log, "%d of %d machines verified\n", verified, expect) },
		Stop:    func() { rw.done.Store(true); stop() },
	}.Run(ctx, srv)
}

// machinesLine counts the network-booted machines by state for the
// seeder's progress line ("  machines: 2 verified, 1 deploying").
func machinesLine(ms []server.Machine) string {
	if len(ms) == 0 {
		return ""
	}
	return "  machines: " + room.Counts(ms)
}
