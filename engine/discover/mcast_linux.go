package discover

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// hearOwnInterfaceOnly makes every mDNS responder socket of this process
// receive queries only from the interface it joined the group on. Linux
// delivers a multicast datagram to every socket bound to the group's
// address and port, whichever interface joined it (IP_MULTICAST_ALL is on
// by default), so the responder for one network would also answer
// queries from another, with the first network's URL. hashicorp/mdns does
// not expose its sockets; they are found here by their port, 5353, which
// in this process only responders bind (Browse queries from an ephemeral
// port).
func hearOwnInterfaceOnly() {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range fds {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		sa, err := unix.Getsockname(fd)
		if err != nil {
			continue
		}
		if in4, ok := sa.(*unix.SockaddrInet4); ok && in4.Port == mdnsGroup.Port {
			unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0)
		}
	}
}
