// Package lantest builds small LANs out of network namespaces for tests
// that send multicast: each namespace is a machine, each veth pair a cable
// with multicast on and a route for 224.0.0.0/4, so mDNS traffic stays
// inside what the test made and never touches the machine's interfaces.
// Everything is named with the prefix "ezd" and the test process's PID,
// and removed when the test ends.
package lantest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var seq atomic.Int32

// NS is one namespace, a machine of the test LAN.
type NS struct {
	Name string
	// Addrs maps the namespace's interface names to their IPv4 addresses.
	Addrs map[string]string
}

// Need skips the test unless it can build namespaces (root, ip); with
// CI=true it fails instead.
func Need(t testing.TB, tools ...string) {
	t.Helper()
	fail := t.Skipf
	if os.Getenv("CI") == "true" {
		fail = t.Fatalf
	}
	if os.Geteuid() != 0 {
		fail("needs root to create network namespaces")
		return
	}
	for _, tool := range append([]string{"ip:iproute2"}, tools...) {
		prog, pkg, _ := strings.Cut(tool, ":")
		if _, err := os.Stat(prog); strings.HasPrefix(prog, "/") && err == nil {
			continue
		}
		if _, err := exec.LookPath(prog); err != nil {
			fail("needs %s (Debian package %s)", prog, pkg)
			return
		}
	}
}

func run(t testing.TB, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// New creates a namespace with its loopback up, deleted when the test ends.
func New(t testing.TB) *NS {
	t.Helper()
	name := fmt.Sprintf("ezd%d-%d", os.Getpid(), seq.Add(1))
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		exec.Command("ip", "netns", "delete", name).Run()
	})
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	return &NS{Name: name, Addrs: map[string]string{}}
}

// Link joins a and b with a veth pair on the IPv4 network net3.0/24 (net3
// is like "10.77.1"): a gets .1, b gets .2. It returns the two interface
// names, a's first.
func Link(t testing.TB, a, b *NS, net3 string) (string, string) {
	t.Helper()
	n := seq.Add(1)
	da := fmt.Sprintf("ezd%d%da", os.Getpid()%100000, n)
	db := fmt.Sprintf("ezd%d%db", os.Getpid()%100000, n)
	if len(da) > 15 {
		t.Fatalf("interface name %s too long", da)
	}
	run(t, "ip", "link", "add", da, "netns", a.Name, "type", "veth", "peer", "name", db, "netns", b.Name)
	for _, side := range []struct {
		ns   *NS
		dev  string
		host string
	}{{a, da, "1"}, {b, db, "2"}} {
		addr := net3 + "." + side.host
		run(t, "ip", "-n", side.ns.Name, "addr", "add", addr+"/24", "brd", "+", "dev", side.dev)
		run(t, "ip", "-n", side.ns.Name, "link", "set", "dev", side.dev, "multicast", "on")
		run(t, "ip", "-n", side.ns.Name, "link", "set", "dev", side.dev, "up")
		// A machine with several cables has one multicast route on each;
		// the metric keeps them apart.
		run(t, "ip", "-n", side.ns.Name, "route", "add", "224.0.0.0/4", "dev", side.dev, "metric", fmt.Sprint(n))
		side.ns.Addrs[side.dev] = addr
	}
	return da, db
}

// Pair is the smallest LAN: two machines on one cable (10.77.1.0/24).
func Pair(t testing.TB) (a, b *NS) {
	t.Helper()
	a, b = New(t), New(t)
	Link(t, a, b, "10.77.1")
	return a, b
}

// TwoNetworks is a machine on two LANs: host has a cable to a
// (10.77.4.0/24, host .1, a .2) and another to b (10.77.5.0/24).
func TwoNetworks(t testing.TB) (host, a, b *NS) {
	t.Helper()
	host, a, b = New(t), New(t), New(t)
	Link(t, host, a, "10.77.4")
	Link(t, host, b, "10.77.5")
	return host, a, b
}

// Command runs a program inside the namespace.
func (n *NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}
