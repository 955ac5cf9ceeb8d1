package engine

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/anacrolix/torrent/iplist"
)

// ParseAllow reads a comma-separated list of networks (CIDR, or a single
// address) that may talk to this node.
func ParseAllow(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("allowed network %q: not an address or CIDR", f)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("allowed network %q: %v", f, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// allowList turns allowed networks into the library's block list: every
// address outside them is "blocked", so it can neither connect to us nor
// be dialled. Loopback stays allowed, for this machine's own tools.
type allowList []netip.Prefix

func (a allowList) allowed(ip netip.Addr) bool {
	ip = ip.Unmap()
	if ip.IsLoopback() {
		return true
	}
	for _, p := range a {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func (a allowList) Lookup(ip net.IP) (iplist.Range, bool) {
	addr, ok := netip.AddrFromSlice(ip)
	if !ok || a.allowed(addr) {
		return iplist.Range{}, false
	}
	return iplist.Range{First: ip, Last: ip, Description: "outside the allowed networks"}, true
}

func (a allowList) NumRanges() int { return len(a) }
