package engine

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/anacrolix/torrent"
	"golang.org/x/time/rate"
)

// clientConfig is the client configuration for a closed LAN: no DHT, uTP,
// encryption or port mapping; limits and dial rates sized for hundreds of
// peers; every node seeds (docs/benchmarks.md has the measurements behind it).
func clientConfig(tu Tuning, log *slog.Logger) (*torrent.ClientConfig, error) {
	cfg := torrent.NewDefaultClientConfig()
	cfg.NoDHT = true
	cfg.DisableUTP = true
	cfg.DisableIPv6 = true
	cfg.DisableWebtorrent = true
	cfg.DisableWebseeds = true
	cfg.NoDefaultPortForwarding = true
	cfg.DisablePEX = false
	cfg.HeaderObfuscationPolicy = torrent.HeaderObfuscationPolicy{}
	cfg.Seed = true
	cfg.DropDuplicatePeerIds = true
	cfg.DropMutuallyCompletePeers = true
	cfg.DialRateLimiter = rate.NewLimiter(rate.Limit(500), 100)
	cfg.EstablishedConnsPerTorrent = 200
	cfg.HalfOpenConnsPerTorrent = 100
	cfg.TotalHalfOpenConns = 400
	cfg.TorrentPeersHighWater = 2000
	cfg.TorrentPeersLowWater = 200
	cfg.NominalDialTimeout = 5 * time.Second
	cfg.MinDialTimeout = time.Second
	cfg.HandshakesTimeout = 10 * time.Second
	cfg.MaxUnverifiedBytes = int64(tu.CacheSizeMiB) << 20
	cfg.PieceHashersPerTorrent = tu.HashingThreads
	// Each connection may have this much requested data being read for it;
	// enough for a full pipeline of 16 KiB chunks.
	cfg.MaxAllocPeerRequestDataPerConn = 16 << 20
	// Rate caps are applied in the storage (newLimiter), not with the
	// library's limiters: its download limiter also refuses connections
	// while its bucket is empty, and with an upload limiter transfers were
	// seen to stall for tens of seconds.
	if tu.MaxUploadRate > 0 {
		// Less data read ahead per connection, so the cap holds from the
		// first second.
		cfg.MaxAllocPeerRequestDataPerConn = int(min(16<<20, max(256<<10, tu.MaxUploadRate/4)))
	}
	cfg.ExtendedHandshakeClientVersion = "ezio " + Version
	cfg.Bep20 = bep20Prefix()
	cfg.HTTPUserAgent = "ezio/" + Version
	cfg.Slogger = log.With("component", "torrent")
	host, port := "0.0.0.0", DefaultPeerPort
	if tu.ListenAddr != "" {
		h, p, err := net.SplitHostPort(tu.ListenAddr)
		if err != nil {
			return nil, &ListenError{Addr: tu.ListenAddr, Err: fmt.Errorf("not HOST:PORT: %w", err)}
		}
		if h != "" {
			host = h
		}
		port, err = strconv.Atoi(p)
		if err != nil || port < 0 || port > 65535 {
			return nil, &ListenError{Addr: tu.ListenAddr, Err: fmt.Errorf("bad port %q", p)}
		}
	}
	cfg.ListenHost = func(network string) string { return host }
	cfg.ListenPort = port
	return cfg, nil
}

// bep20Prefix is the peer id prefix, "-EZ" and four version digits.
func bep20Prefix() string {
	d := make([]byte, 0, 4)
	for i := 0; i < len(Version) && len(d) < 4; i++ {
		if c := Version[i]; c >= '0' && c <= '9' {
			d = append(d, c)
		}
	}
	for len(d) < 4 {
		d = append(d, '0')
	}
	return "-EZ" + string(d) + "-"
}

// resolveAddrPort turns HOST:PORT into an IPv4 address and port.
func resolveAddrPort(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad port %q", port)
	}
	ips, err := net.LookupIP(host)
	if err != nil || len(ips) == 0 {
		return netip.AddrPort{}, fmt.Errorf("cannot resolve %q", host)
	}
	for _, ip := range ips {
		if v4 := ip.To4(); v4 != nil {
			a, _ := netip.AddrFromSlice(v4)
			return netip.AddrPortFrom(a, uint16(p)), nil
		}
	}
	return netip.AddrPort{}, fmt.Errorf("%q has no IPv4 address", host)
}

type ipPortAddr netip.AddrPort

func (a ipPortAddr) String() string  { return netip.AddrPort(a).String() }
func (a ipPortAddr) Network() string { return "tcp" }

// newLimiter is a rate cap of bytes/s (nil for none) with a burst of a
// tenth of a second, at least one 16 KiB chunk.
func newLimiter(bytesPerSec int64) *rate.Limiter {
	l := rate.NewLimiter(rate.Inf, 0)
	setLimit(l, bytesPerSec)
	return l
}

func setLimit(l *rate.Limiter, bytesPerSec int64) {
	if bytesPerSec <= 0 {
		l.SetLimit(rate.Inf)
		return
	}
	l.SetBurst(int(max(bytesPerSec/10, 64<<10)))
	l.SetLimit(rate.Limit(bytesPerSec))
}
