// Package discover lets clients find an ezio seeder on their LAN without
// an address: the seeder announces itself with DNS-SD over multicast DNS
// (service _ezio._tcp.local.) and clients browse for it. The wire protocol
// is hashicorp/mdns's (on miekg/dns), so Avahi, Bonjour and python-zeroconf
// see the same service.
//
// TXT records of an announced seeder:
//
//	version=0.1.0                 ezio's version
//	url=http://10.0.0.1:6969      the seeder's HTTP base URL on that network
//	images=sda1,sda2              the image names, as many as fit in one
//	                              TXT string (255 bytes)
//	images_more=3                 only when names were left out of images=;
//	                              /images.json at url= has them all
package discover

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/mdns"
	"github.com/miekg/dns"

	"ezio/engine"
	"ezio/engine/server"
)

// Service is the DNS-SD service type of an ezio seeder.
const Service = "_ezio._tcp"

// Domain is where the service lives: multicast DNS's link-local domain.
const Domain = "local."

// maxTXTString is the most one DNS character-string holds.
const maxTXTString = 255

// Info is what a seeder announces.
type Info struct {
	// Name is the instance name shown to people; "ezio on HOSTNAME" when empty.
	Name string
	// BaseURL is the seeder's HTTP server, http://HOST:PORT. A loopback or
	// unspecified host (what server.Server.BaseURL writes for a server
	// listening on every address) means: every interface, each with its own
	// address in url=. A specific IP means the one interface that has it.
	BaseURL string
	// Listen, when set, is the address the server was told to listen on
	// (HOST:PORT or :PORT, as for --tracker-listen): its host decides the
	// interfaces instead of BaseURL's, and a loopback host announces
	// nothing (nobody else could connect). BaseURL still gives the port.
	Listen string
	// Images are the names of the images served.
	Images []string
	// Version defaults to engine.Version.
	Version string
	// Interfaces, when set, restricts the announce to these interface names.
	Interfaces []string
	Logger     *slog.Logger
}

// Announce answers DNS-SD queries for the seeder on the interfaces its
// server is reachable on, until stop is called or ctx ends. It answers
// only there: one responder per interface, joined to the mDNS group on
// that interface alone.
func Announce(ctx context.Context, in Info) (stop func(), err error) {
	log := in.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	targets, port, err := announceTargets(in.BaseURL, in.Listen, in.Interfaces)
	if err != nil {
		return nil, err
	}
	name := in.Name
	if name == "" {
		name = "ezio on " + shortHostname()
	}
	version := in.Version
	if version == "" {
		version = engine.Version
	}
	host := hostLabel() + "." + Domain

	var servers []*mdns.Server
	shutdown := func() {
		for _, s := range servers {
			s.Shutdown()
		}
	}
	for _, t := range targets {
		txt := TXT(version, t.url, in.Images)
		svc, err := mdns.NewMDNSService(escapeLabel(name), Service, Domain, host, port, t.ips, txt)
		if err != nil {
			shutdown()
			return nil, fmt.Errorf("announcing on %s: %w", t.iface.Name, err)
		}
		ifi := t.iface
		s, err := mdns.NewServer(&mdns.Config{Zone: foldZone{svc}, Iface: &ifi, Logger: quietLogger()})
		if err != nil {
			shutdown()
			return nil, fmt.Errorf("announcing on %s: %w", t.iface.Name, err)
		}
		servers = append(servers, s)
		log.Info("announcing on the LAN", "service", Service, "name", name, "interface", t.iface.Name, "url", t.url)
	}

	hearOwnInterfaceOnly()

	var once sync.Once
	done := make(chan struct{})
	stop = func() {
		once.Do(func() {
			close(done)
			shutdown()
		})
	}
	go func() {
		select {
		case <-ctx.Done():
			stop()
		case <-done:
		}
	}()
	return stop, nil
}

// TXT builds the TXT strings of an announce. Image names go into one
// images= string; names that do not fit are counted in images_more=.
func TXT(version, baseURL string, images []string) []string {
	txt := []string{"version=" + version, "url=" + baseURL}
	list := "images="
	more := 0
	for _, im := range images {
		sep := ","
		if list == "images=" {
			sep = ""
		}
		if more > 0 || len(list)+len(sep)+len(im) > maxTXTString {
			more++
			continue
		}
		list += sep + im
	}
	txt = append(txt, list)
	if more > 0 {
		txt = append(txt, "images_more="+strconv.Itoa(more))
	}
	return txt
}

type target struct {
	iface net.Interface
	ips   []net.IP
	url   string
}

// announceTargets picks the interfaces a server at baseURL is reachable on.
func announceTargets(baseURL, listen string, only []string) ([]target, int, error) {
	base, err := server.ParseServer(baseURL)
	if err != nil {
		return nil, 0, fmt.Errorf("announce: %w", err)
	}
	u, _ := url.Parse(base)
	port, _ := strconv.Atoi(u.Port())
	host := u.Hostname()
	addr, perr := netip.ParseAddr(host)
	isIP := perr == nil
	everywhere := !isIP || addr.IsLoopback() || addr.IsUnspecified()
	if listen != "" {
		h, _, err := net.SplitHostPort(listen)
		if err != nil {
			return nil, 0, fmt.Errorf("announce: listen address %q: %w", listen, err)
		}
		la, lerr := netip.ParseAddr(h)
		switch {
		case h == "" || lerr == nil && la.IsUnspecified():
			everywhere, isIP = true, true
		case lerr == nil && la.IsLoopback():
			return nil, 0, fmt.Errorf("announce: the server listens on %s, which no other machine can reach", listen)
		case lerr == nil:
			addr, isIP, everywhere = la.Unmap(), true, false
			host = h
			base = u.Scheme + "://" + net.JoinHostPort(h, u.Port())
		}
	}
	ifaces, err := usableInterfaces(only)
	if err != nil {
		return nil, 0, err
	}
	var ts []target
	for _, ifc := range ifaces {
		v4 := ipv4Addrs(ifc.iface)
		if everywhere {
			t := target{iface: ifc.iface, ips: v4, url: base}
			if isIP {
				t.url = u.Scheme + "://" + net.JoinHostPort(v4[0].String(), u.Port())
			}
			ts = append(ts, t)
			continue
		}
		for _, ip := range v4 {
			if a, ok := netip.AddrFromSlice(ip.To4()); ok && a == addr.Unmap() {
				ts = append(ts, target{iface: ifc.iface, ips: []net.IP{ip}, url: base})
			}
		}
	}
	if len(ts) == 0 {
		if everywhere {
			return nil, 0, errors.New("announce: no network interface with an IPv4 address and multicast is up")
		}
		return nil, 0, fmt.Errorf("announce: %s is not the address of an interface that is up and does multicast", host)
	}
	return ts, port, nil
}

type usable struct{ iface net.Interface }

// usableInterfaces lists the interfaces mDNS can work on: up, multicast,
// not loopback, with an IPv4 address; only those named, when names are given.
func usableInterfaces(only []string) ([]usable, error) {
	all, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("listing network interfaces: %w", err)
	}
	var out []usable
	for _, ifi := range all {
		if len(only) > 0 && !contains(only, ifi.Name) {
			continue
		}
		if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagMulticast == 0 || ifi.Flags&net.FlagLoopback != 0 {
			continue
		}
		if len(ipv4Addrs(ifi)) == 0 {
			continue
		}
		out = append(out, usable{ifi})
	}
	for _, n := range only {
		found := false
		for _, u := range out {
			found = found || u.iface.Name == n
		}
		if !found {
			return nil, fmt.Errorf("interface %s is not up, does not do multicast or has no IPv4 address", n)
		}
	}
	return out, nil
}

func ipv4Addrs(ifi net.Interface) []net.IP {
	as, err := ifi.Addrs()
	if err != nil {
		return nil
	}
	var ips []net.IP
	for _, a := range as {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			ips = append(ips, n.IP.To4())
		}
	}
	return ips
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func shortHostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	h, _, _ = strings.Cut(h, ".")
	return h
}

// hostLabel is the name the SRV record points at. It is not the machine's
// own name, which Avahi may already claim with other addresses.
func hostLabel() string {
	var b strings.Builder
	for _, r := range strings.ToLower(shortHostname()) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return "ezio-" + b.String()
}

// escapeLabel writes an instance name in miekg/dns's presentation form: an
// instance name is one DNS label of any bytes, and the library reads dots,
// spaces and backslashes in a name string as syntax.
func escapeLabel(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.' || c == ' ' || c == '\\' || c == '"' || c == '(' || c == ')' || c == ';' || c == '@':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// unescapeLabel reverses escapeLabel (and miekg/dns's own escaping).
func unescapeLabel(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
			n, _ := strconv.Atoi(s[i+1 : i+4])
			b.WriteByte(byte(n))
			i += 3
			continue
		}
		i++
		b.WriteByte(s[i])
	}
	return b.String()
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// foldZone answers questions whatever the case of their names: DNS names
// compare case-insensitively, and the library compares them as strings.
type foldZone struct{ svc *mdns.MDNSService }

func (z foldZone) Records(q dns.Question) []dns.RR {
	for _, n := range []string{
		z.svc.Service + "." + z.svc.Domain,
		z.svc.Instance + "." + z.svc.Service + "." + z.svc.Domain,
		z.svc.HostName,
		"_services._dns-sd._udp." + z.svc.Domain,
	} {
		if strings.EqualFold(q.Name, n) {
			q.Name = n
			break
		}
	}
	return z.svc.Records(q)
}

// quietLogger keeps the library's log lines (every foreign query it has no
// answer for, every IPv6 socket it cannot open) out of ezio's output.
func quietLogger() *log.Logger { return log.New(io.Discard, "", 0) }
