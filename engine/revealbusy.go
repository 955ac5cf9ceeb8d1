package engine

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/anacrolix/torrent"
)

// Once out, a piece stays out: while the seeder's uplink is busy, it
// reveals only pieces that no connected peer holds and that no connected
// client is fetching from it (fresh pieces, or pieces whose only fetcher
// left). A second copy of a piece that is on its way to a client would
// take its uplink from the first copies of others, and every client waits
// on those: in the LAN lab the seeder sent 1.07-1.5 × the image with its
// uplink busy the whole run, so the room could not be faster than that
// multiple of one copy (docs/benchmarks.md, round three).
//
// When its uplink has room (the clients it serves cannot take its rate: a
// slow or lossy client holds the last first copies, or the endgame), a
// second copy costs nothing, and it reveals the rarest pieces again, a
// little at a time.

// uplinkMeter tells whether the seeder sends near the best rate it has
// been seen to send: a rate over the last meterSpan against the peak of
// such rates. Unknown (less than a span seen, nothing sent yet) counts as
// not busy: the rule then is the reveal's old one.
type uplinkMeter struct {
	samples []meterSample
	peak    float64 // bytes/s
}

type meterSample struct {
	at   time.Time
	sent int64
}

const (
	// meterSpan: a saturated 100 Mbit/s uplink, as the library counts
	// what it writes, reads 8 to 15 MB/s over single seconds (LAN lab);
	// over two seconds it is within a tenth of its rate.
	meterSpan = 2 * time.Second
	// busyShare of the peak rate is busy: well under a saturated link's
	// dips, well over what one slow client can take (a quarter).
	busyShare = 0.6
)

// add records the seeder's bytes sent so far, at, and says whether its
// uplink is busy.
func (m *uplinkMeter) add(at time.Time, sent int64) bool {
	m.samples = append(m.samples, meterSample{at, sent})
	for len(m.samples) > 2 && at.Sub(m.samples[1].at) >= meterSpan {
		m.samples = m.samples[1:]
	}
	first := m.samples[0]
	span := at.Sub(first.at)
	if span < meterSpan*9/10 {
		return false
	}
	rate := float64(sent-first.sent) / span.Seconds()
	m.peak = max(m.peak, rate)
	return m.peak > 0 && rate >= busyShare*m.peak
}

// What the library counts as sent is what it wrote into its sockets: on a
// slow link with many clients the kernel's send buffers take megabytes
// more than the wire carries, so that count runs ahead of the link in
// bursts. In the lab (N = 32 at 10 Mbit/s) it read 2-4 MB in single
// seconds on a 1.25 MB/s uplink: the peak was so high that the uplink
// never read as busy, and the seeder sent 1.86 × the image. The meter
// therefore reads the network interfaces' transmit counters, which count
// what left, when it can (nicCounter), and the library's count otherwise.

// nicCounter sums the transmit counters of the interfaces that carry the
// seeder's connections: the ones the kernel routes their remote addresses
// through.
type nicCounter struct {
	sysfs  string            // /sys/class/net
	ifaces map[string]string // remote IP -> interface name ("" when none)
}

func newNICCounter() *nicCounter {
	return &nicCounter{sysfs: "/sys/class/net", ifaces: map[string]string{}}
}

// sent is the bytes sent so far by the interfaces towards remotes, and
// whether every one of them could be read.
func (n *nicCounter) sent(remotes []netip.Addr) (int64, bool) {
	seen := map[string]bool{}
	var total int64
	for _, a := range remotes {
		name, ok := n.ifaces[a.String()]
		if !ok {
			name = ifaceTowards(a)
			n.ifaces[a.String()] = name
		}
		if name == "" {
			return 0, false
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		b, err := os.ReadFile(filepath.Join(n.sysfs, name, "statistics", "tx_bytes"))
		if err != nil {
			return 0, false
		}
		v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return 0, false
		}
		total += v
	}
	return total, len(seen) > 0
}

// ifaceTowards is the name of the interface the kernel would send to a
// through ("" if unknown). Connecting a UDP socket only looks the route
// up: nothing is sent.
func ifaceTowards(a netip.Addr) string {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 9)))
	if err != nil {
		return ""
	}
	local := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
	c.Close()
	ifs, err := net.Interfaces()
	if err != nil {
		return ""
	}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagLoopback != 0 {
			// Loopback carries every local process's traffic, not
			// the seeder's alone: its count says nothing here.
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, x := range addrs {
			if p, ok := x.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(p.IP); ok && ip.Unmap() == local {
					return ifc.Name
				}
			}
		}
	}
	return ""
}

// remoteAddrs are the distinct remote IP addresses of conns.
func remoteAddrs(conns []*torrent.PeerConn) []netip.Addr {
	var out []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, pc := range conns {
		ap, err := netip.ParseAddrPort(pc.RemoteAddr.String())
		if err != nil {
			continue
		}
		if a := ap.Addr().Unmap(); !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}
