// Package bootenv is the machine side of network boot: what ezio does as
// PID 1 of the deploy environment before and after the deploy itself
// (mounts, modules, the network, reports to the server, the reboot).
package bootenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"golang.org/x/sys/unix"

	"ezio/engine/netboot"
	"ezio/engine/netboot/kmod"
)

// MountEarly mounts what a PID 1 needs: /proc, /sys, /dev and tmpfs on
// /tmp and /run.
func MountEarly() error {
	var errs []error
	for _, m := range []struct{ src, dir, fs string }{
		{"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"}, {"devtmpfs", "/dev", "devtmpfs"},
		{"tmpfs", "/tmp", "tmpfs"}, {"tmpfs", "/run", "tmpfs"},
	} {
		os.MkdirAll(m.dir, 0o755)
		if err := unix.Mount(m.src, m.dir, m.fs, 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			errs = append(errs, fmt.Errorf("mount %s: %w", m.dir, err))
		}
	}
	os.Setenv("PATH", "/bin:/sbin:/usr/bin:/usr/sbin")
	return errors.Join(errs...)
}

// Consoles is a writer to every console the kernel writes to, when the
// command line names several (console=tty0 console=ttyS0): /dev/console,
// PID 1's output, is only the last one named, and the technician may be
// at the screen (a stick) or at the serial port (a lab's VMs). It falls
// back to w.
func Consoles(w io.Writer) io.Writer {
	b, err := os.ReadFile("/sys/class/tty/console/active")
	names := strings.Fields(string(b))
	if err != nil || len(names) < 2 {
		return w
	}
	var all allWriter
	for _, n := range names {
		if f, err := os.OpenFile("/dev/"+n, os.O_WRONLY|unix.O_NOCTTY, 0); err == nil {
			all = append(all, f)
		}
	}
	if len(all) == 0 {
		return w
	}
	return all
}

// allWriter writes to each; one console that fails does not silence the
// others.
type allWriter []io.Writer

func (a allWriter) Write(b []byte) (int, error) {
	for _, w := range a {
		w.Write(b)
	}
	return len(b), nil
}

// Cmdline is the ezio.* words of the kernel's command line.
func Cmdline() map[string]string {
	b, _ := os.ReadFile("/proc/cmdline")
	return netboot.ParseCmdline(string(b))
}

// LoadModules loads the modules of this machine's devices from
// /lib/modules/RELEASE; it returns the names loaded.
func LoadModules() ([]string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return nil, err
	}
	rel := unix.ByteSliceToString(u.Release[:])
	ix, err := kmod.Open(filepath.Join("/lib/modules", rel))
	if err != nil {
		return nil, err
	}
	l := &kmod.Loader{Ix: ix}
	var all []string
	var lastErr error
	// Devices appear while drivers probe: look again a few times.
	for i := 0; i < 5; i++ {
		got, err := l.Coldplug("/sys/devices", 4)
		all = append(all, got...)
		lastErr = err
		time.Sleep(300 * time.Millisecond)
	}
	return all, lastErr
}

// Lease is the address the deploy environment got.
type Lease struct {
	Iface  string
	Addr   netip.Prefix
	Router netip.Addr
}

// BringUp finds the NIC with mac (any wired NIC when mac is empty),
// waits for it, sets it up and takes an address by DHCP.
func BringUp(ctx context.Context, mac string) (*Lease, error) {
	setUp("lo")
	var iface string
	deadline := time.Now().Add(30 * time.Second)
	for iface == "" {
		iface = findIface(mac)
		if iface != "" {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no network card with MAC %s appeared (is its driver in the deploy environment?)", mac)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err := setUp(iface); err != nil {
		return nil, fmt.Errorf("%s up: %w", iface, err)
	}
	var lastErr error
	for try := 0; try < 10 && ctx.Err() == nil; try++ {
		c, err := nclient4.New(iface, nclient4.WithTimeout(4*time.Second), nclient4.WithRetry(2))
		if err != nil {
			lastErr = err
			time.Sleep(time.Second)
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		l, err := c.Request(rctx)
		cancel()
		c.Close()
		if err != nil {
			lastErr = err
			continue
		}
		ip, _ := netip.AddrFromSlice(l.ACK.YourIPAddr.To4())
		ones, _ := l.ACK.SubnetMask().Size()
		if l.ACK.SubnetMask() == nil {
			ones = 24
		}
		lease := &Lease{Iface: iface, Addr: netip.PrefixFrom(ip, ones)}
		if r := l.ACK.Router(); len(r) > 0 {
			lease.Router, _ = netip.AddrFromSlice(r[0].To4())
		}
		if err := setAddr(iface, lease.Addr); err != nil {
			return nil, fmt.Errorf("setting %s on %s: %w", lease.Addr, iface, err)
		}
		return lease, nil
	}
	return nil, fmt.Errorf("no DHCP answer on %s: %v", iface, lastErr)
}

func findIface(mac string) string {
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback != 0 || len(i.HardwareAddr) != 6 {
			continue
		}
		if mac == "" || strings.EqualFold(i.HardwareAddr.String(), mac) {
			return i.Name
		}
	}
	return ""
}

func setUp(name string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

func setAddr(name string, p netip.Prefix) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if err := ifr.SetInet4Addr(p.Addr().AsSlice()); err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFADDR, ifr); err != nil {
		return err
	}
	mask := net.CIDRMask(p.Bits(), 32)
	if err := ifr.SetInet4Addr(mask); err != nil {
		return err
	}
	return unix.IoctlIfreq(fd, unix.SIOCSIFNETMASK, ifr)
}

// Reporter posts the machine's state to the server's /netboot/report.
type Reporter struct {
	Server, MAC string
	Client      *http.Client
}

// Send posts one report; it never blocks the deploy for long.
func (r *Reporter) Send(rep netboot.Report) error {
	rep.MAC = r.MAC
	b, _ := json.Marshal(rep)
	c := r.Client
	if c == nil {
		c = &http.Client{Timeout: 5 * time.Second}
	}
	resp, err := c.Post(r.Server+"/netboot/report", "application/json", bytes.NewReader(b))
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("report: %s", resp.Status)
	}
	return nil
}

// Finish syncs the disks and reboots or powers off.
func Finish(then string) error {
	unix.Sync()
	cmd := unix.LINUX_REBOOT_CMD_RESTART
	if then == "poweroff" {
		cmd = unix.LINUX_REBOOT_CMD_POWER_OFF
	}
	return unix.Reboot(cmd)
}

// Shell runs busybox's shell on the console when there is one, else
// waits forever: PID 1 must not exit, and the disk must not be booted.
func Shell() {
	for {
		if _, err := os.Stat("/bin/busybox"); err == nil {
			p, err := os.StartProcess("/bin/busybox", []string{"sh"}, &os.ProcAttr{Files: []*os.File{os.Stdin, os.Stdout, os.Stderr}, Env: []string{"PATH=/bin", "HOME=/"}})
			if err == nil {
				started := time.Now()
				p.Wait()
				if time.Since(started) < 5*time.Second {
					time.Sleep(5 * time.Second) // no console input: do not spin
				}
				continue
			}
		}
		time.Sleep(time.Hour)
	}
}
