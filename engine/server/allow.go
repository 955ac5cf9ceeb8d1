package server

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/anacrolix/torrent/iplist"
)

// AllowList is the set of networks a seeder serves (`--allow CIDR[,CIDR]`).
// An empty list allows every address.
type AllowList []netip.Prefix

// ParseAllowList reads "10.0.0.0/24,192.168.1.7": comma-separated CIDR
// prefixes, a bare address meaning that one host.
func ParseAllowList(s string) (AllowList, error) {
	var out AllowList
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a network (CIDR such as 10.0.0.0/24) nor an address", f)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	if len(out) == 0 && strings.TrimSpace(s) != "" {
		return nil, fmt.Errorf("no network in %q", s)
	}
	return out, nil
}

// Contains tells whether a is allowed.
func (l AllowList) Contains(a netip.Addr) bool {
	if len(l) == 0 {
		return true
	}
	a = a.Unmap()
	for _, p := range l {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (l AllowList) String() string {
	s := make([]string, len(l))
	for i, p := range l {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// Blocklist turns the allow list into the BitTorrent client's block list
// (torrent.ClientConfig.IPBlocklist): every address outside the list is
// blocked, for incoming connections and dials alike. Nil when the list is
// empty.
func (l AllowList) Blocklist() iplist.Ranger {
	if len(l) == 0 {
		return nil
	}
	return allowRanger(l)
}

type allowRanger AllowList

func (r allowRanger) Lookup(ip net.IP) (iplist.Range, bool) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return iplist.Range{First: ip, Last: ip, Description: "not an address"}, true
	}
	if AllowList(r).Contains(a) {
		return iplist.Range{}, false
	}
	return iplist.Range{First: ip, Last: ip, Description: "outside the allowed networks"}, true
}

func (r allowRanger) NumRanges() int { return len(r) }
