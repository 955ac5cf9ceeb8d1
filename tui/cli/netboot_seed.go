package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"ezio/engine/netboot"
	"ezio/engine/netboot/initramfs"
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
	if f.then != thenReboot && f.then != thenPoweroff {
		return fmt.Errorf("--then %q: a network-booted machine does \"reboot\" or \"poweroff\" after its deploy", f.then)
	}
	if f.targetDisk != "auto" && !strings.HasPrefix(f.targetDisk, "/dev/") {
		return fmt.Errorf("--target-disk %q: \"auto\" or a /dev/ path", f.targetDisk)
	}
	if f.dhcpRange != "" {
		if _, err := netboot.ParseRange(f.dhcpRange); err != nil {
			return err
		}
	}
	return nil
}

// netbootRoom is network boot running beside a disk image's seeder.
type netbootRoom struct {
	svc   *netboot.Service
	stops []func()
}

func (r *netbootRoom) Stop() {
	for i := len(r.stops) - 1; i >= 0; i-- {
		r.stops[i]()
	}
}

// startNetboot builds (or finds cached) the deploy environment and answers
// DHCP, TFTP and /netboot/ on the interfaces of listenHost ("" = all).
func (a *App) startNetboot(ctx context.Context, dir string, s *DiskSeed, f netbootFlags, listenHost string, allow server.AllowList, log *slog.Logger) (_ *netbootRoom, err error) {
	if s.Server == nil {
		return nil, refused(errors.New("--netboot serves the boot files over this seeder's HTTP server; it cannot be used with --no-tracker"))
	}
	if err := netboot.FindIPXE(netboot.IPXEDir); err != nil {
		return nil, refused(err)
	}
	recs, err := netboot.OpenRecords(dir, f.redeploy)
	if err != nil {
		return nil, err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	env, hit, err := initramfs.Cached(initramfs.Options{Kernel: f.kernel}, filepath.Join(cache, "ezio", "netboot"))
	if err != nil {
		return nil, refused(fmt.Errorf("building the network deploy environment: %w", err))
	}
	how := "built"
	if hit {
		how = "cached"
	}
	fmt.Fprintf(a.Stderr, "network boot: deploy environment %s (kernel %s) in %s\n", how, env.Version, env.Dir)
	room := &netbootRoom{}
	defer func() {
		if err != nil {
			room.Stop()
		}
	}()
	room.svc = &netboot.Service{Records: recs, Image: s.Manifest.Name, ImageDir: dir, EnvDir: env.Dir, IPXEDir: netboot.IPXEDir,
		Then: f.then, Target: f.targetDisk, Logger: log}
	if len(allow) > 0 {
		room.svc.Allowed = allow.Contains
	}
	s.Server.SetNetboot(room.svc.Handler(), recs.List)
	_, portStr, _ := net.SplitHostPort(s.Server.Addr())
	port, _ := strconv.Atoi(portStr)
	ifaces, err := netbootInterfaces(listenHost)
	if err != nil {
		return nil, refused(err)
	}
	var rg *netboot.Range
	if f.dhcpRange != "" {
		r, _ := netboot.ParseRange(f.dhcpRange)
		rg = &r
	}
	for _, ifc := range ifaces {
		if rg != nil {
			if !ifc.prefix.Contains(rg.From) || !ifc.prefix.Contains(rg.To) {
				continue // the range belongs to another interface
			}
			if other, err := netboot.ProbeOtherDHCP(ctx, ifc.name, 3*time.Second); err != nil {
				if errors.Is(err, netboot.ErrOtherDHCP) {
					return nil, refused(fmt.Errorf("not serving DHCP on %s: %w; leave out --dhcp-range to boot by proxyDHCP beside it (server %s)", ifc.name, err, other))
				}
				return nil, refused(err)
			}
		}
		base := fmt.Sprintf("http://%s", net.JoinHostPort(ifc.addr.String(), strconv.Itoa(port)))
		d, err := netboot.ServeDHCP(netboot.DHCPConfig{Iface: ifc.name, ServerIP: ifc.addr, Prefix: ifc.prefix.Masked(), Range: rg, Answer: room.svc.Answer(base), Logger: log})
		if err != nil {
			return nil, refused(err)
		}
		room.stops = append(room.stops, d.Close)
		mode := "proxyDHCP (addresses from the LAN's DHCP server)"
		if rg != nil {
			mode = "DHCP " + f.dhcpRange
		}
		fmt.Fprintf(a.Stderr, "network boot on %s (%s): %s, TFTP, %s/netboot/\n", ifc.name, ifc.addr, mode, base)
	}
	if len(room.stops) == 0 {
		if rg != nil {
			return nil, refused(fmt.Errorf("--dhcp-range %s is on no interface this server listens on", f.dhcpRange))
		}
		return nil, refused(errors.New("--netboot: no IPv4 interface to answer on (see --tracker-listen)"))
	}
	tftpAddr := net.JoinHostPort(listenHost, "69")
	stop, err := room.svc.ServeTFTP(tftpAddr)
	if err != nil {
		return nil, refused(err)
	}
	room.stops = append(room.stops, stop)
	return room, nil
}

type netbootIface struct {
	name   string
	addr   netip.Addr
	prefix netip.Prefix
}

// netbootInterfaces are the IPv4 interfaces to answer on: the one holding
// host, or every one that is up and not loopback when host is empty.
func netbootInterfaces(host string) ([]netbootIface, error) {
	var want netip.Addr
	if host != "" {
		a, err := netip.ParseAddr(host)
		if err != nil {
			return nil, fmt.Errorf("--netboot needs an IP address to listen on, not %q", host)
		}
		want = a
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []netbootIface
	for _, i := range ifs {
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := i.Addrs()
		for _, ad := range addrs {
			ipn, ok := ad.(*net.IPNet)
			if !ok {
				continue
			}
			a, ok := netip.AddrFromSlice(ipn.IP.To4())
			if !ok {
				continue
			}
			ones, _ := ipn.Mask.Size()
			if want.IsValid() && !want.IsUnspecified() && a != want {
				continue
			}
			out = append(out, netbootIface{name: i.Name, addr: a, prefix: netip.PrefixFrom(a, ones)})
			break
		}
	}
	if want.IsValid() && !want.IsUnspecified() && len(out) == 0 {
		return nil, fmt.Errorf("no interface has the address %s", want)
	}
	return out, nil
}

// netbootListenHost is the address network boot answers on: the image
// server's, else BitTorrent's --listen, else all ("").
func netbootListenHost(trackerListen, peerListen string) string {
	for _, l := range []string{trackerListen, peerListen} {
		if h, _, err := net.SplitHostPort(l); err == nil && h != "" && h != "0.0.0.0" {
			return h
		}
	}
	return ""
}

// machinesDone counts the machines that reached "verified" (or came back
// after it) and how many of those have not yet come back to their disk.
func machinesDone(ms []server.Machine) (verified, waiting int) {
	for _, m := range ms {
		switch m.State {
		case netboot.StateVerified:
			verified++
			waiting++
		case netboot.StateRebooted:
			verified++
		}
	}
	return verified, waiting
}

// watchMachines ends the seeder (stop) once expect machines are verified
// and, when they reboot, are back in their own system (or linger passed).
func watchMachines(ctx context.Context, srv *server.Server, expect int, then string, linger time.Duration, log io.Writer, room *roomWatch, stop func()) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var reached time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		verified, waiting := machinesDone(srv.Machines())
		if verified < expect {
			continue
		}
		if reached.IsZero() {
			reached = time.Now()
			fmt.Fprintf(log, "%d of %d machines verified\n", verified, expect)
		}
		if then == thenPoweroff || waiting == 0 || (linger > 0 && time.Since(reached) >= linger) {
			room.done.Store(true)
			stop()
			return
		}
	}
}

// machinesLine counts the network-booted machines by state for the
// seeder's progress line ("  machines: 2 verified, 1 deploying").
func machinesLine(ms []server.Machine) string {
	if len(ms) == 0 {
		return ""
	}
	n := map[string]int{}
	for _, m := range ms {
		n[m.State]++
	}
	var parts []string
	for _, st := range []string{netboot.StateBooting, netboot.StateDeploying, netboot.StateVerified, netboot.StateRebooted, netboot.StateFailed} {
		if n[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[st], st))
		}
	}
	return "  machines: " + strings.Join(parts, ", ")
}
