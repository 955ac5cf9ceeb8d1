package machine

import (
	"net"
	"os"
	"path/filepath"
	"strings"
)

// LocalFacts finds this client's MAC and IPv4 address: of the interface
// that routes to server (a host or host:port; "" for the default route),
// or the first interface that is up and not loopback. Serial is the
// target disk's, from sysfs.
func LocalFacts(server, target string) Facts {
	var f Facts
	f.IP = sourceIP(server)
	ifs, _ := net.Interfaces()
	for _, in := range ifs {
		if in.Flags&net.FlagLoopback != 0 || in.Flags&net.FlagUp == 0 || len(in.HardwareAddr) == 0 {
			continue
		}
		addrs, _ := in.Addrs()
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || ipn.IP.To4() == nil {
				continue
			}
			if f.IP == "" || ipn.IP.String() == f.IP {
				f.IP, f.MAC = ipn.IP.String(), in.HardwareAddr.String()
			}
		}
		if f.MAC != "" {
			break
		}
	}
	f.Serial = diskSerial(target)
	return f
}

// sourceIP is the address this machine sends from to reach server (no
// packet is sent: a UDP socket is only connected).
func sourceIP(server string) string {
	host := server
	if h, _, err := net.SplitHostPort(server); err == nil {
		host = h
	}
	if host == "" {
		host = "192.0.2.1" // TEST-NET: the default route
	}
	c, err := net.Dial("udp4", net.JoinHostPort(host, "9"))
	if err != nil {
		return ""
	}
	defer c.Close()
	ip := c.LocalAddr().(*net.UDPAddr).IP
	if ip.IsLoopback() {
		return ""
	}
	return ip.String()
}

// diskSerial is the serial number sysfs gives for the disk.
func diskSerial(target string) string {
	real, err := filepath.EvalSymlinks(target)
	if err != nil {
		return ""
	}
	base := filepath.Join("/sys/class/block", filepath.Base(real))
	for _, f := range []string{"device/serial", "serial", "device/wwid"} {
		if b, err := os.ReadFile(filepath.Join(base, f)); err == nil {
			if s := strings.TrimSpace(string(b)); s != "" {
				return s
			}
		}
	}
	return ""
}
