package room

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"ezio/disks/disktest"
	"ezio/engine/discover/lantest"
	"ezio/engine/netboot"
)

// TestProbeSeesFreshDnsmasq: full DHCP's probe, as Start runs it, sees a
// dnsmasq that has just started (it pings an address for 3 s before its
// first offer), on a cable between two namespaces the test makes.
func TestProbeSeesFreshDnsmasq(t *testing.T) {
	lantest.Need(t, "dnsmasq:dnsmasq-base")
	a, b := lantest.Pair(t)
	var ifA, ifB string
	for dev := range a.Addrs {
		ifA = dev
	}
	for dev := range b.Addrs {
		ifB = dev
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var log disktest.SyncBuffer
	dm := b.Command(ctx, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--port=0", "--bind-interfaces",
		"--interface="+ifB, "--dhcp-range=10.77.1.100,10.77.1.120", "--leasefile-ro", "--pid-file="+filepath.Join(t.TempDir(), "pid"), "--log-facility=-")
	dm.Stdout, dm.Stderr = &log, &log
	if err := dm.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dm.Process.Kill(); dm.Wait() })
	for i := 0; !strings.Contains(log.String(), "DHCP, IP range"); i++ {
		if i == 100 {
			t.Fatalf("dnsmasq did not start:\n%s", log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	type result struct {
		other netip.Addr
		err   error
	}
	done := make(chan result, 1)
	go func() {
		// The probe's raw socket is made in a's namespace: this thread
		// enters it and is never given back (it ends with the goroutine).
		runtime.LockOSThread()
		f, err := os.Open(filepath.Join("/var/run/netns", a.Name))
		if err != nil {
			done <- result{err: err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- result{err: err}
			return
		}
		other, err := netboot.ProbeOtherDHCP(ctx, ifA, DefaultDHCPProbe)
		done <- result{other, err}
	}()
	r := <-done
	if !errors.Is(r.err, netboot.ErrOtherDHCP) || r.other != netip.MustParseAddr("10.77.1.2") {
		t.Fatalf("probe: %v, %v; want dnsmasq at 10.77.1.2 seen\ndnsmasq:\n%s", r.other, r.err, log.String())
	}
}
