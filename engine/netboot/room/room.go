// Package room is the use case "boot the room's machines over the
// network" beside a disk image's seeder: the deploy environment, the
// records, DHCP on the chosen interfaces, TFTP and /netboot/ on the
// image server. `ezio seed IMAGE-DIR --netboot` and the wizard's Serve
// both start it here; each words its refusals for its own user.
package room

import (
	"context"
	"errors"
	"fmt"
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

// What a network-booted machine does after its verified deploy.
const (
	ThenReboot   = "reboot"
	ThenPoweroff = "poweroff"
)

// Options say how the room boots.
type Options struct {
	// DHCPRange "FROM-TO" makes this server the DHCP server (an isolated
	// switch); "" answers PXE clients only (proxyDHCP) beside the LAN's.
	DHCPRange string
	Then      string // ThenReboot or ThenPoweroff
	// Redeploy forgets which machines are deployed, so they deploy again.
	Redeploy bool
	// TargetDisk is "auto" or a /dev/ path, for every machine.
	TargetDisk string
	// Kernel of the deploy environment ("": the newest /boot/vmlinuz-*).
	Kernel string
	// ListenHost is the address whose interface is answered on ("": every
	// interface that is up); Allow, when not empty, the clients answered.
	ListenHost string
	Allow      server.AllowList
	Logger     *slog.Logger
	// Say gets a line for the technician at each step (may be nil).
	Say func(string)
	// DHCPProbe is how long full DHCP listens for another server first
	// (0: DefaultDHCPProbe).
	DHCPProbe time.Duration
}

// DefaultDHCPProbe is how long full DHCP waits for another server's
// offer before it serves. Servers check that an address is free before
// offering it: dnsmasq pings it and waits 3 s on a first discover (seen
// here: its offer came 3.03 s after the discover), ISC dhcpd 1 s; a 3 s
// probe missed dnsmasq and served beside it.
const DefaultDHCPProbe = 6 * time.Second

// RefusedError is a room that cannot be booted as asked, for a reason
// the technician can fix (a missing package, another DHCP server, no
// interface); nothing is left running. Its message names no command-line
// flag: the command line and the wizard each add the advice their users
// act on, by Kind.
type RefusedError struct {
	Kind  Refusal
	Err   error
	Range string // RefusedRangeOff: the DHCP range asked for
}

// Refusal is why a room was refused.
type Refusal int

const (
	RefusedOther     Refusal = iota
	RefusedNoServer          // the seeder runs no HTTP server to serve the boot files
	RefusedNoIPXE            // Debian's ipxe files are missing
	RefusedNoEnv             // the deploy environment could not be built (no kernel...)
	RefusedOtherDHCP         // full DHCP asked, another DHCP server answers
	RefusedRangeOff          // the DHCP range is on no interface served
	RefusedNoIPv4            // no IPv4 interface to answer on
	RefusedBadListen         // the listen host is not an IP address
)

func (e *RefusedError) Error() string { return e.Err.Error() }
func (e *RefusedError) Unwrap() error { return e.Err }

func refused(err error) error { return &RefusedError{Err: err} }

func refusedAs(k Refusal, err error) error { return &RefusedError{Kind: k, Err: err} }

// Check says what is wrong with the options, before anything starts.
func (o Options) Check() error {
	if o.Then != ThenReboot && o.Then != ThenPoweroff {
		return fmt.Errorf("what machines do after their deploy, %q: a network-booted machine does \"reboot\" or \"poweroff\"", o.Then)
	}
	if o.TargetDisk != "auto" && !strings.HasPrefix(o.TargetDisk, "/dev/") {
		return fmt.Errorf("target disk %q: \"auto\" or a /dev/ path", o.TargetDisk)
	}
	if o.DHCPRange != "" {
		if _, err := netboot.ParseRange(o.DHCPRange); err != nil {
			return err
		}
	}
	return nil
}

// Room is network boot running beside a disk image's seeder.
type Room struct {
	svc   *netboot.Service
	stops []func()
}

// Stop ends DHCP and TFTP (the image server's /netboot/ ends with it).
func (r *Room) Stop() {
	for i := len(r.stops) - 1; i >= 0; i-- {
		r.stops[i]()
	}
	r.stops = nil
}

// Start builds (or finds cached) the deploy environment for the disk
// image image in dir, served by srv, and answers DHCP, TFTP and
// /netboot/ on the interfaces of o.ListenHost. Refusals come back as
// *RefusedError.
func Start(ctx context.Context, dir, image string, srv *server.Server, o Options) (_ *Room, err error) {
	say := o.Say
	if say == nil {
		say = func(string) {}
	}
	if srv == nil {
		return nil, refusedAs(RefusedNoServer, errors.New("network boot serves the boot files over this seeder's HTTP server, which is not running"))
	}
	if err := netboot.FindIPXE(netboot.IPXEDir); err != nil {
		return nil, refusedAs(RefusedNoIPXE, err)
	}
	recs, err := netboot.OpenRecords(dir, o.Redeploy)
	if err != nil {
		return nil, err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	env, hit, err := initramfs.Cached(initramfs.Options{Kernel: o.Kernel}, filepath.Join(cache, "ezio", "netboot"))
	if err != nil {
		return nil, refusedAs(RefusedNoEnv, fmt.Errorf("building the network deploy environment: %w", err))
	}
	how := "built"
	if hit {
		how = "cached"
	}
	say(fmt.Sprintf("network boot: deploy environment %s (kernel %s) in %s", how, env.Version, env.Dir))
	room := &Room{}
	defer func() {
		if err != nil {
			room.Stop()
		}
	}()
	room.svc = &netboot.Service{Records: recs, Image: image, ImageDir: dir, EnvDir: env.Dir, IPXEDir: netboot.IPXEDir,
		Then: o.Then, Target: o.TargetDisk, Logger: o.Logger}
	if len(o.Allow) > 0 {
		room.svc.Allowed = o.Allow.Contains
	}
	srv.SetNetboot(room.svc.Handler(), recs.List)
	if err := room.serveDHCP(ctx, srv, o, say); err != nil {
		return nil, err
	}
	stop, err := room.svc.ServeTFTP(net.JoinHostPort(o.ListenHost, "69"))
	if err != nil {
		return nil, refused(err)
	}
	room.stops = append(room.stops, stop)
	return room, nil
}

// serveDHCP answers on every interface of o.ListenHost (with full DHCP,
// only where the range lies, after making sure no other server answers).
func (r *Room) serveDHCP(ctx context.Context, srv *server.Server, o Options, say func(string)) error {
	_, portStr, _ := net.SplitHostPort(srv.Addr())
	port, _ := strconv.Atoi(portStr)
	ifaces, err := Interfaces(o.ListenHost)
	if err != nil {
		return refusedAs(RefusedBadListen, err)
	}
	var rg *netboot.Range
	if o.DHCPRange != "" {
		g, err := netboot.ParseRange(o.DHCPRange)
		if err != nil {
			return refused(err)
		}
		rg = &g
	}
	probe := o.DHCPProbe
	if probe == 0 {
		probe = DefaultDHCPProbe
	}
	for _, ifc := range ifaces {
		if rg != nil {
			if !ifc.Prefix.Contains(rg.From) || !ifc.Prefix.Contains(rg.To) {
				continue // the range belongs to another interface
			}
			if _, err := netboot.ProbeOtherDHCP(ctx, ifc.Name, probe); err != nil {
				if errors.Is(err, netboot.ErrOtherDHCP) {
					// err names the other server and what it offered.
					return refusedAs(RefusedOtherDHCP, fmt.Errorf("not serving DHCP on %s: %w", ifc.Name, err))
				}
				return refused(err)
			}
		}
		base := fmt.Sprintf("http://%s", net.JoinHostPort(ifc.Addr.String(), strconv.Itoa(port)))
		d, err := netboot.ServeDHCP(netboot.DHCPConfig{Iface: ifc.Name, ServerIP: ifc.Addr, Prefix: ifc.Prefix.Masked(), Range: rg, Answer: r.svc.Answer(base), Logger: o.Logger})
		if err != nil {
			return refused(err)
		}
		r.stops = append(r.stops, d.Close)
		mode := "proxyDHCP (addresses from the LAN's DHCP server)"
		if rg != nil {
			mode = "DHCP " + o.DHCPRange
		}
		say(fmt.Sprintf("network boot on %s (%s): %s, TFTP, %s/netboot/", ifc.Name, ifc.Addr, mode, base))
	}
	if len(r.stops) == 0 {
		if rg != nil {
			return &RefusedError{Kind: RefusedRangeOff, Range: o.DHCPRange, Err: fmt.Errorf("the DHCP range %s is on no interface this server listens on", o.DHCPRange)}
		}
		return refusedAs(RefusedNoIPv4, errors.New("network boot: no IPv4 interface to answer on"))
	}
	return nil
}

// Iface is one IPv4 interface network boot answers on.
type Iface struct {
	Name   string
	Addr   netip.Addr
	Prefix netip.Prefix
}

// Interfaces are the IPv4 interfaces to answer on: the one holding host,
// or every one that is up and not loopback when host is empty.
func Interfaces(host string) ([]Iface, error) {
	var want netip.Addr
	if host != "" {
		a, err := netip.ParseAddr(host)
		if err != nil {
			return nil, fmt.Errorf("network boot needs an IP address to listen on, not %q", host)
		}
		want = a
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []Iface
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
			out = append(out, Iface{Name: i.Name, Addr: a, Prefix: netip.PrefixFrom(a, ones)})
			break
		}
	}
	if want.IsValid() && !want.IsUnspecified() && len(out) == 0 {
		return nil, fmt.Errorf("no interface has the address %s", want)
	}
	return out, nil
}

// ListenHost is the address network boot answers on: the image
// server's, else BitTorrent's listen address, else all ("").
func ListenHost(trackerListen, peerListen string) string {
	for _, l := range []string{trackerListen, peerListen} {
		if h, _, err := net.SplitHostPort(l); err == nil && h != "" && h != "0.0.0.0" {
			return h
		}
	}
	return ""
}
