package tui

// What Serve tells the technician to do on each client: the exact
// commands, by address and by the name announced on the LAN.

import (
	"net"
	"strings"

	"ezio/engine/discover"
)

// clientBase is the server's base URL as clients type it: this machine's
// address in place of a loopback or unspecified one.
func clientBase(serverURL, host string) string {
	if h := strings.TrimPrefix(serverURL, "http://"); h != serverURL {
		if sh, port, err := net.SplitHostPort(h); err == nil {
			if ip := net.ParseIP(sh); ip != nil && (ip.IsLoopback() || ip.IsUnspecified()) && host != "" {
				sh = host
			}
			return "http://" + net.JoinHostPort(sh, port)
		}
	}
	return serverURL
}

// clientInstructions is what to do on each client, exactly: the address
// to give the wizard's Deploy, and the command line.
func clientInstructions(serverURL, host, name string) []string {
	if serverURL == "" {
		return []string{"no image server here: clients use the torrent's own tracker"}
	}
	base := clientBase(serverURL, host)
	addr := strings.TrimPrefix(base, "http://")
	return []string{
		"on each client: Deploy this machine from " + addr,
		"or: ezio deploy " + base + "/torrents/" + name + ".torrent DISK",
		"status page: " + base + "/",
	}
}

// instanceName is the DNS-SD instance this machine announces: the name
// `ezio servers` lists.
func instanceName() string {
	h, err := hostName()
	if err != nil || h == "" {
		h = "localhost"
	}
	h, _, _ = strings.Cut(h, ".")
	return "ezio on " + h
}

// serviceName is an instance's full DNS-SD name.
func serviceName(inst string) string {
	return inst + "." + discover.Service + "." + discover.Domain
}

// roomInstructions is what to do on each client of an announced server:
// nothing to type but the image's name first, then the same by address.
func roomInstructions(serverURL, host, name, inst string) []string {
	byAddr := clientInstructions(serverURL, host, name)
	base := strings.TrimSuffix(strings.TrimPrefix(byAddr[1], "or: ezio deploy "), "/torrents/"+name+".torrent DISK")
	return []string{
		"on each client: ezio deploy auto:" + name + " /dev/sdX --yes",
		"or: ezio deploy " + base + "/torrents/" + name + ".torrent /dev/sdX --yes",
		"or in the wizard: Deploy this machine from " + strings.TrimPrefix(base, "http://") + " (or auto:" + name + ")",
		"announced on the LAN as " + serviceName(inst),
		byAddr[2],
	}
}
