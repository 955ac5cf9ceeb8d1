package netboot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
)

// PXEPort is where PXE clients send their boot-server request after the
// address is settled (the PXE specification's port 4011).
const PXEPort = 4011

// Range is the address pool of full DHCP (`--dhcp-range FROM-TO`).
type Range struct{ From, To netip.Addr }

// ParseRange reads "FROM-TO".
func ParseRange(s string) (Range, error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return Range{}, fmt.Errorf("DHCP range %q: want FROM-TO, e.g. 10.0.0.100-10.0.0.199", s)
	}
	from, err1 := netip.ParseAddr(a)
	to, err2 := netip.ParseAddr(b)
	if err1 != nil || err2 != nil || !from.Is4() || !to.Is4() || to.Less(from) {
		return Range{}, fmt.Errorf("DHCP range %q: want two IPv4 addresses, the lower first", s)
	}
	return Range{from, to}, nil
}

// DHCPConfig is one interface's DHCP service.
type DHCPConfig struct {
	Iface    string
	ServerIP netip.Addr   // this server's address on Iface
	Prefix   netip.Prefix // Iface's network (full DHCP: the clients' mask)
	// Range: nil for proxyDHCP (addresses come from the LAN's server).
	Range *Range
	// Answer decides for one client and records it; base is the HTTP
	// server's URL on ServerIP.
	Answer func(c Client, ip netip.Addr) Boot
	Logger *slog.Logger
}

// DHCP answers network-boot clients on one interface.
type DHCP struct {
	cfg     DHCPConfig
	servers []*server4.Server

	mu     sync.Mutex
	leases map[string]netip.Addr // full DHCP: MAC -> address
}

// ServeDHCP starts proxyDHCP (ports 67 and 4011) or, with a range, full
// DHCP (port 67; 4011 too for PXE clients that ask there).
func ServeDHCP(cfg DHCPConfig) (*DHCP, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	d := &DHCP{cfg: cfg, leases: map[string]netip.Addr{}}
	for _, port := range []int{dhcpv4.ServerPort, PXEPort} {
		s, err := server4.NewServer(cfg.Iface, &net.UDPAddr{Port: port}, d.handle)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("DHCP on %s port %d: %w", cfg.Iface, port, err)
		}
		d.servers = append(d.servers, s)
		go s.Serve()
	}
	return d, nil
}

// Close stops answering.
func (d *DHCP) Close() {
	for _, s := range d.servers {
		s.Close()
	}
}

func (d *DHCP) handle(conn net.PacketConn, peer net.Addr, req *dhcpv4.DHCPv4) {
	if req.OpCode != dhcpv4.OpcodeBootRequest {
		return
	}
	resp := d.Reply(req, localPort(conn))
	if resp == nil {
		return
	}
	if _, err := conn.WriteTo(resp.ToBytes(), peer); err != nil {
		d.cfg.Logger.Debug("DHCP reply not sent", "to", peer.String(), "err", err)
	}
}

func localPort(c net.PacketConn) int {
	if a, ok := c.LocalAddr().(*net.UDPAddr); ok {
		return a.Port
	}
	return 0
}

// Reply is the answer to one request arriving on port (67 or 4011), nil
// for none. Proxy mode answers only network-boot clients and never hands
// out an address; full mode leases to everyone and adds the boot file for
// network-boot clients.
func (d *DHCP) Reply(req *dhcpv4.DHCPv4, port int) *dhcpv4.DHCPv4 {
	c := ClientOf(req.ClientHWAddr, req.ClassIdentifier(), req.UserClass(), req.ClientArch())
	var typ dhcpv4.MessageType
	switch req.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		typ = dhcpv4.MessageTypeOffer
	case dhcpv4.MessageTypeRequest:
		typ = dhcpv4.MessageTypeAck
	default:
		return nil
	}
	ip := netip.Addr{}
	if a, ok := netip.AddrFromSlice(req.ClientIPAddr.To4()); ok && !a.IsUnspecified() {
		ip = a
	}
	full := d.cfg.Range != nil && port == dhcpv4.ServerPort
	var lease netip.Addr
	if full {
		var nak bool
		lease, nak = d.lease(req)
		if nak {
			return d.reply(req, dhcpv4.MessageTypeNak)
		}
		if !lease.IsValid() {
			d.cfg.Logger.Warn("DHCP range exhausted", "mac", req.ClientHWAddr.String())
			return nil
		}
		ip = lease
	}
	var boot Boot
	if c.PXE || c.HTTP || c.IPXE {
		boot = d.cfg.Answer(c, ip)
	}
	if !full && boot.Kind == NoBoot {
		return nil
	}
	resp := d.reply(req, typ)
	if resp == nil {
		return nil
	}
	if full {
		resp.YourIPAddr = lease.AsSlice()
		resp.UpdateOption(dhcpv4.OptSubnetMask(net.CIDRMask(d.cfg.Prefix.Bits(), 32)))
		resp.UpdateOption(dhcpv4.OptIPAddressLeaseTime(time.Hour))
	}
	if boot.Kind != NoBoot {
		resp.ServerIPAddr = d.cfg.ServerIP.AsSlice()
		resp.BootFileName = boot.File
		resp.UpdateOption(dhcpv4.OptBootFileName(boot.File))
		resp.UpdateOption(dhcpv4.OptClassIdentifier(boot.VendorClass))
		if guid := req.GetOneOption(dhcpv4.OptionClientMachineIdentifier); guid != nil {
			resp.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionClientMachineIdentifier, guid))
		}
		if !c.IPXE && c.PXE {
			// PXE discovery control 8: boot the file named here, ask
			// no boot server.
			resp.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionVendorSpecificInformation, []byte{6, 1, 8, 255}))
		}
	}
	return resp
}

func (d *DHCP) reply(req *dhcpv4.DHCPv4, typ dhcpv4.MessageType) *dhcpv4.DHCPv4 {
	resp, err := dhcpv4.NewReplyFromRequest(req,
		dhcpv4.WithMessageType(typ),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(d.cfg.ServerIP.AsSlice())))
	if err != nil {
		return nil
	}
	return resp
}

// lease picks the client's address from the range: the one it has, else
// the first free. nak: it asked for an address that is not its own.
func (d *DHCP) lease(req *dhcpv4.DHCPv4) (ip netip.Addr, nak bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	mac := req.ClientHWAddr.String()
	ip, ok := d.leases[mac]
	if !ok {
		used := map[netip.Addr]bool{d.cfg.ServerIP: true}
		for _, a := range d.leases {
			used[a] = true
		}
		for a := d.cfg.Range.From; a.IsValid() && !d.cfg.Range.To.Less(a); a = a.Next() {
			if !used[a] {
				ip = a
				break
			}
		}
		if !ip.IsValid() {
			return ip, false
		}
		d.leases[mac] = ip
	}
	if req.MessageType() == dhcpv4.MessageTypeRequest {
		want := req.RequestedIPAddress()
		if want == nil || want.IsUnspecified() {
			want = req.ClientIPAddr
		}
		if sid := req.ServerIdentifier(); sid != nil && !sid.Equal(net.IP(d.cfg.ServerIP.AsSlice())) {
			return netip.Addr{}, false // it chose another server
		}
		if a, ok := netip.AddrFromSlice(want.To4()); ok && !a.IsUnspecified() && a != ip {
			return ip, true
		}
	}
	return ip, false
}

// ErrOtherDHCP is a full DHCP server refused because another answers.
var ErrOtherDHCP = errors.New("another DHCP server answers on this network")

// ProbeOtherDHCP sends a DHCP discover on iface and reports the address of
// any server that offers within wait: full DHCP must not start beside it.
func ProbeOtherDHCP(ctx context.Context, iface string, wait time.Duration) (netip.Addr, error) {
	c, err := nclient4.New(iface, nclient4.WithTimeout(wait), nclient4.WithRetry(1))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("probing %s for a DHCP server: %w", iface, err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, wait+time.Second)
	defer cancel()
	offer, err := c.DiscoverOffer(ctx)
	if err != nil {
		return netip.Addr{}, nil // nobody answered
	}
	a, _ := netip.AddrFromSlice(offer.ServerIdentifier().To4())
	if !a.IsValid() {
		a, _ = netip.AddrFromSlice(offer.ServerIPAddr.To4())
	}
	return a, fmt.Errorf("%w (%s offered %s)", ErrOtherDHCP, a, offer.YourIPAddr)
}
