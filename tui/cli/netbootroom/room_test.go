// Package netbootroom is the end-to-end test of network boot: a room of
// QEMU machines. It is a package of its own so that its few minutes of
// TCG boots have their own test timeout, and so that the race pass (which
// covers the root and engine packages) does not run it again.
package netbootroom

// A room booted over the network: `ezio seed IMAGE-DIR --netboot` in a
// network namespace with a bridge, QEMU machines (TCG) with blank disks on
// tap devices of that bridge. Each machine boots iPXE, the deploy
// environment (ezio as PID 1), writes the whole-disk image, reboots, is
// sent to its disk and comes up in the deployed system, whose init prints
// a marker on the serial console.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"ezio/disks/disktest"
	"ezio/disks/table"
	"ezio/engine/discover/lantest"
	"ezio/engine/netboot/initramfs"
	"ezio/engine/server"
	"ezio/tui/cli"
)

func TestMain(m *testing.M) {
	// EZIO_RUN_MAIN: this binary runs as ezio for the test; PID 1: it is
	// /init of the deploy environment the seeder built from it.
	if os.Getenv("EZIO_RUN_MAIN") == "1" || os.Getpid() == 1 {
		os.Exit(cli.Main())
	}
	os.Exit(m.Run())
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

const roomMarker = "EZIO-ROOM-DEPLOYED-SYSTEM-UP"

func needRoom(t *testing.T) {
	t.Helper()
	if raceDetector {
		t.Skip("the QEMU room runs in the plain test pass, not again under -race")
	}
	lantest.Need(t, "qemu-system-x86_64:qemu-system-x86", "grub-install:grub2-common", "/usr/lib/grub/i386-pc/boot.img:grub-pc-bin",
		"busybox:busybox-static", "/usr/lib/ipxe/undionly.kpxe:ipxe", "sfdisk:fdisk", "partx:util-linux", "mkfs.ext4:e2fsprogs",
		"partclone.extfs:partclone", "mcopy:mtools", "mkfs.vfat:dosfstools", "/usr/share/OVMF/OVMF_CODE_4M.fd:ovmf")
	if _, err := initramfs.NewestKernel("/"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no kernel in /boot (CI must install linux-image-amd64): %v", err)
		}
		t.Skipf("no kernel to boot: %v", err)
	}
}

// roomEzio is this test binary, which runs as ezio with EZIO_RUN_MAIN=1
// and, as PID 1 of the deploy environment, as ezio boot-init (TestMain):
// the seeder puts the binary it runs as into the initramfs.
func roomEzio(t *testing.T) string {
	t.Helper()
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func ezioCmd(cmd *exec.Cmd) *exec.Cmd {
	cmd.Env = append(os.Environ(), "EZIO_RUN_MAIN=1")
	return cmd
}

// bootableImage captures a 64 MiB MBR disk that boots by itself under
// BIOS (GRUB in the MBR and the gap after it) and UEFI (OVMF's shell runs
// the ESP's startup.nsh) into a kernel whose init prints roomMarker and
// powers off. It returns the image directory and
// the source disk's file.
func bootableImage(t *testing.T, bin string) (string, string) {
	t.Helper()
	work := t.TempDir()
	kernel, _ := initramfs.NewestKernel("/")
	root := filepath.Join(work, "root")
	os.MkdirAll(filepath.Join(root, "boot", "grub"), 0o755)
	// The deployed system's initramfs: busybox and an init that says so.
	var ird bytes.Buffer
	zw := newGzip(&ird)
	w := initramfs.NewWriter(zw)
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	w.File("bin/busybox", 0o755, int64(len(bb)), bytes.NewReader(bb))
	init := "#!/bin/busybox sh\n/bin/busybox echo " + roomMarker + "\n/bin/busybox poweroff -f\n"
	w.File("init", 0o755, int64(len(init)), strings.NewReader(init))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	os.WriteFile(filepath.Join(root, "boot", "initrd.gz"), ird.Bytes(), 0o644)
	disktest.Run(t, "cp", kernel, filepath.Join(root, "boot", "vmlinuz"))
	os.WriteFile(filepath.Join(root, "boot", "grub", "grub.cfg"), []byte("set timeout=0\nmenuentry marker {\n linux /boot/vmlinuz console=ttyS0 panic=-1\n initrd /boot/initrd.gz\n}\n"), 0o644)

	// Partition 1: an EFI system partition whose startup.nsh boots the
	// kernel from OVMF's shell (UEFI); partition 2: ext4 with GRUB's
	// /boot (BIOS).
	src := disktest.PartitionedLoop(t, 64<<20, "label: dos\nstart=2048, size=40960, type=ef\nstart=43008, type=83, bootable\n")
	esp, err := table.PartitionNode(src, 1)
	if err != nil {
		t.Fatal(err)
	}
	node, err := table.PartitionNode(src, 2)
	if err != nil {
		t.Fatal(err)
	}
	disktest.Run(t, "mkfs.vfat", esp)
	nsh := filepath.Join(work, "startup.nsh")
	os.WriteFile(nsh, []byte("fs0:\r\n\\vmlinuz initrd=\\initrd.gz console=ttyS0 panic=-1\r\n"), 0o644)
	mcopy := exec.Command("mcopy", "-i", esp, filepath.Join(root, "boot", "vmlinuz"), filepath.Join(root, "boot", "initrd.gz"), nsh, "::/")
	mcopy.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	if out, err := mcopy.CombinedOutput(); err != nil {
		t.Fatalf("mcopy: %v\n%s", err, out)
	}
	disktest.Run(t, "mkfs.ext4", "-q", "-F", "-d", root, node)
	mnt := filepath.Join(work, "mnt")
	os.Mkdir(mnt, 0o755)
	disktest.Run(t, "mount", node, mnt)
	out, err := exec.Command("grub-install", "--target=i386-pc", "--boot-directory="+filepath.Join(mnt, "boot"), src).CombinedOutput()
	disktest.Run(t, "umount", mnt)
	if err != nil {
		t.Fatalf("grub-install: %v\n%s", err, out)
	}
	images := filepath.Join(work, "images")
	// partclone.extfs has failed here now and then right after the
	// unmount, saying nothing: the fixture tries again before giving up.
	for try := 1; ; try++ {
		os.RemoveAll(images)
		out, err := ezioCmd(exec.Command(bin, "capture", src, images, "--name", "room")).CombinedOutput()
		if err == nil {
			break
		}
		if try == 3 {
			t.Fatalf("capture: %v\n%s", err, out)
		}
		t.Logf("capture failed (try %d), again: %v\n%s", try, err, tail(string(out), 600))
		time.Sleep(2 * time.Second)
	}
	// The loop's backing file, to compare deployed disks with.
	back := strings.TrimSpace(disktest.Run(t, "losetup", "-n", "-O", "BACK-FILE", src))
	return filepath.Join(images, "room"), back
}

// roomLAN is a namespace with a bridge at 10.78.0.1/24 and tap devices.
type roomLAN struct {
	ns *lantest.NS
}

func newRoomLAN(t *testing.T, taps int) *roomLAN {
	ns := lantest.New(t)
	ip := func(args ...string) { disktest.Run(t, "ip", append([]string{"-n", ns.Name}, args...)...) }
	ip("link", "add", "br0", "type", "bridge", "forward_delay", "0")
	ip("addr", "add", "10.78.0.1/24", "brd", "+", "dev", "br0")
	ip("link", "set", "br0", "up")
	for i := 0; i < taps; i++ {
		tap := fmt.Sprintf("tap%d", i)
		ip("tuntap", "add", tap, "mode", "tap")
		ip("link", "set", tap, "master", "br0", "up")
	}
	return &roomLAN{ns: ns}
}

// seedRoom runs the seeder in the room's namespace with --json, keeping
// the last line's machines.
type seedRoom struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error

	mu       sync.Mutex
	log      bytes.Buffer
	machines []server.Machine
}

func startSeedRoom(t *testing.T, ctx context.Context, lan *roomLAN, bin string, args ...string) *seedRoom {
	t.Helper()
	cmd := ezioCmd(lan.ns.Command(ctx, bin, append([]string{"seed"}, args...)...))
	cmd.Env = append(cmd.Env, "XDG_CACHE_HOME="+t.TempDir())
	s := &seedRoom{cmd: cmd, done: make(chan struct{})}
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = writerFunc(func(b []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.log.Write(b) })
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var line struct {
				Machines []server.Machine `json:"machines"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Machines != nil {
				s.mu.Lock()
				s.machines = line.Machines
				s.mu.Unlock()
			}
		}
	}()
	go func() { s.err = cmd.Wait(); pw.Close(); close(s.done) }()
	t.Cleanup(func() {
		select {
		case <-s.done:
			return
		default:
		}
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-s.done
		}
	})
	return s
}

func (s *seedRoom) Log() string { s.mu.Lock(); defer s.mu.Unlock(); return s.log.String() }
func (s *seedRoom) Machines() []server.Machine {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]server.Machine(nil), s.machines...)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// vm is one machine of the room.
type vm struct {
	name, mac, tap string
	disk, serial   string
	uefi           bool
	done           chan error
	cmd            *exec.Cmd
}

func startVM(t *testing.T, ctx context.Context, lan *roomLAN, m *vm, diskSize int64) {
	t.Helper()
	dir := t.TempDir()
	m.disk, m.serial = filepath.Join(dir, m.name+".img"), filepath.Join(dir, m.name+".serial")
	if err := os.WriteFile(m.disk, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Truncate(m.disk, diskSize)
	args := []string{"-m", "640", "-smp", "1", "-display", "none", "-serial", "file:" + m.serial,
		"-netdev", "tap,id=n0,ifname=" + m.tap + ",script=no,downscript=no"}
	if m.uefi {
		vars := filepath.Join(dir, "vars.fd")
		disktest.Run(t, "cp", "/usr/share/OVMF/OVMF_VARS_4M.fd", vars)
		// As a room's firmware setup would: no IPv6 network boot, which
		// only adds its timeouts before the disk.
		args = append(args, "-machine", "q35", "-fw_cfg", "name=opt/org.tianocore/IPv6PXESupport,string=no",
			"-drive", "if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
			"-drive", "if=pflash,format=raw,file="+vars,
			"-device", "virtio-net-pci,netdev=n0,romfile=,bootindex=1,mac="+m.mac,
			"-drive", "file="+m.disk+",format=raw,if=none,id=d0", "-device", "virtio-blk-pci,drive=d0,bootindex=2")
	} else {
		args = append(args, "-device", "virtio-net-pci,netdev=n0,mac="+m.mac,
			"-drive", "file="+m.disk+",format=raw,if=virtio", "-boot", "order=nc")
	}
	m.launch(t, ctx, lan, args)
}

// launch starts QEMU with args in the room's namespace; m.done gets how
// it ended (with its output when it failed), and the test's end kills it.
func (m *vm) launch(t *testing.T, ctx context.Context, lan *roomLAN, args []string) {
	t.Helper()
	m.cmd = lan.ns.Command(ctx, "qemu-system-x86_64", args...)
	var out bytes.Buffer
	m.cmd.Stdout, m.cmd.Stderr = &out, &out
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m.done = make(chan error, 1)
	go func() {
		err := m.cmd.Wait()
		if err != nil {
			err = &qemuError{err: err, out: out.String()}
		}
		m.done <- err
	}()
	t.Cleanup(func() {
		if m.cmd.ProcessState == nil {
			m.cmd.Process.Kill()
			<-m.done
		}
	})
}

// qemuError is QEMU's exit with what it printed.
type qemuError struct {
	err error
	out string
}

func (e *qemuError) Error() string { return e.err.Error() + ": " + e.out }

func (m *vm) console() string {
	b, _ := os.ReadFile(m.serial)
	return string(b)
}

// waitConsole waits for want on the machine's serial console.
func (m *vm) waitConsole(t *testing.T, want string, limit time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if strings.Contains(m.console(), want) {
			return true
		}
		time.Sleep(time.Second)
	}
	return false
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// sameDisk compares a deployed disk with the source: the boot code, and
// everything from the second sector to the source's end (the partition
// table's CHS fields follow each disk's size).
func sameDisk(t *testing.T, src, got string) {
	t.Helper()
	a, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(got)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, len(a))
	if _, err := io.ReadFull(f, b); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	if !bytes.Equal(a[:446], b[:446]) || !bytes.Equal(a[512:], b[512:]) {
		t.Errorf("%s differs from the source disk", got)
	}
}

func TestNetbootRoom(t *testing.T) {
	needRoom(t)
	start := time.Now()
	bin := roomEzio(t)
	image, src := bootableImage(t, bin)
	machines := []*vm{
		{name: "bios1", mac: "52:54:00:78:00:01", tap: "tap0"},
		{name: "bios2", mac: "52:54:00:78:00:02", tap: "tap1"},
		{name: "uefi", mac: "52:54:00:78:00:03", tap: "tap2", uefi: true},
	}
	lan := newRoomLAN(t, len(machines))
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	seed := startSeedRoom(t, ctx, lan, bin, image, "--netboot", "--dhcp-range", "10.78.0.100-10.78.0.150",
		"--tracker-listen", "10.78.0.1:6969", "--listen", "10.78.0.1:6881", "--no-announce",
		"--expect", fmt.Sprint(len(machines)), "--exit-when-done", "--json")
	waitLog(t, seed, "network boot on br0", time.Minute)
	t.Logf("image and server ready after %s", time.Since(start).Round(time.Second))
	for _, m := range machines {
		startVM(t, ctx, lan, m, 80<<20)
	}
	for _, m := range machines {
		select {
		case err := <-m.done:
			if err != nil {
				t.Errorf("%s: qemu: %v", m.name, err)
			}
		case <-ctx.Done():
			t.Fatalf("%s did not finish; console:\n%s\nseeder:\n%s", m.name, tail(m.console(), 3000), tail(seed.Log(), 3000))
		}
		con := m.console()
		if !strings.Contains(con, "ezio: deploy verified") || !strings.Contains(con, roomMarker) {
			t.Errorf("%s: no verified deploy followed by the deployed system's marker on its console:\n%s", m.name, tail(con, 3000))
		}
		if i := strings.Index(con, "ezio: deploy verified"); i >= 0 && !strings.Contains(con[i:], roomMarker) {
			t.Errorf("%s: the marker came before the deploy", m.name)
		}
		sameDisk(t, src, m.disk)
	}
	select {
	case <-seed.done:
	case <-time.After(time.Minute):
		t.Fatalf("--exit-when-done did not end the seeder\n%s", tail(seed.Log(), 3000))
	}
	if exitCode(seed.err) != 0 || !strings.Contains(seed.Log(), fmt.Sprintf("the room is done: %d machines verified", len(machines))) {
		t.Errorf("seeder: %v\n%s", seed.err, tail(seed.Log(), 2000))
	}
	got := map[string]server.Machine{}
	for _, m := range seed.Machines() {
		got[m.MAC] = m
	}
	for _, m := range machines {
		if r := got[m.mac]; r.State != "rebooted" || r.Verified.IsZero() || r.Arch == "" {
			t.Errorf("%s: the seeder's last row is %+v, want verified and rebooted", m.name, r)
		}
	}
	if _, err := os.Stat(filepath.Join(image, "ezio-netboot.json")); err != nil {
		t.Errorf("no records beside the image: %v", err)
	}
	t.Logf("room of %d machines: %s", len(machines), time.Since(start).Round(time.Second))
}

func waitLog(t *testing.T, s *seedRoom, want string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !strings.Contains(s.Log(), want) {
		select {
		case <-s.done:
			t.Fatalf("the seeder ended: %v\n%s", s.err, s.Log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the seeder did not say %q\n%s", want, s.Log())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func newGzip(w io.Writer) *gzip.Writer { return gzip.NewWriter(w) }

// TestNetbootProxyBesideDnsmasq: the LAN has its own DHCP server (dnsmasq
// on another machine of the bridge); ezio only hands out boot files. One
// machine deploys and comes up in its system; one whose disk is too small
// is refused with the reason on its console and the status page, and its
// disk stays blank.
func TestNetbootProxyBesideDnsmasq(t *testing.T) {
	needRoom(t)
	lantest.Need(t, "dnsmasq:dnsmasq-base")
	start := time.Now()
	bin := roomEzio(t)
	image, src := bootableImage(t, bin)
	lan := newRoomLAN(t, 2)
	dhcpNS := lantest.New(t)
	disktest.Run(t, "ip", "link", "add", "lan0", "netns", dhcpNS.Name, "type", "veth", "peer", "name", "dhcp0", "netns", lan.ns.Name)
	disktest.Run(t, "ip", "-n", lan.ns.Name, "link", "set", "dhcp0", "master", "br0", "up")
	disktest.Run(t, "ip", "-n", dhcpNS.Name, "addr", "add", "10.78.0.2/24", "brd", "+", "dev", "lan0")
	disktest.Run(t, "ip", "-n", dhcpNS.Name, "link", "set", "lan0", "up")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	work := t.TempDir()
	dns := dhcpNS.Command(ctx, "dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--port=0", "--user=root", "--bind-interfaces",
		"--interface=lan0", "--dhcp-range=10.78.0.50,10.78.0.99,255.255.255.0,10m", "--dhcp-leasefile="+filepath.Join(work, "leases"),
		"--pid-file="+filepath.Join(work, "pid"), "--log-dhcp")
	var dnsLog bytes.Buffer
	dns.Stdout, dns.Stderr = &dnsLog, &dnsLog
	if err := dns.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dns.Process.Kill(); dns.Wait() })

	seed := startSeedRoom(t, ctx, lan, bin, image, "--netboot", "--tracker-listen", "10.78.0.1:6969", "--listen", "10.78.0.1:6881",
		"--no-announce", "--json")
	waitLog(t, seed, "network boot on br0", time.Minute)
	if !strings.Contains(seed.Log(), "proxyDHCP") {
		t.Fatalf("not in proxy mode:\n%s", seed.Log())
	}
	good := &vm{name: "proxy", mac: "52:54:00:78:01:01", tap: "tap0"}
	small := &vm{name: "small", mac: "52:54:00:78:01:02", tap: "tap1"}
	startVM(t, ctx, lan, good, 80<<20)
	startVM(t, ctx, lan, small, 32<<20)

	if !small.waitConsole(t, "DEPLOY FAILED", 6*time.Minute) {
		t.Fatalf("the machine with a small disk was not refused; console:\n%s\nseeder:\n%s", tail(small.console(), 3000), tail(seed.Log(), 2000))
	}
	if con := small.console(); !strings.Contains(con, "disk too small") || !strings.Contains(con, "nothing was written") {
		t.Errorf("the refusal does not say why:\n%s", tail(con, 1500))
	}
	select {
	case err := <-good.done:
		if err != nil {
			t.Errorf("qemu: %v", err)
		}
	case <-ctx.Done():
		t.Fatalf("the machine did not finish; console:\n%s\nseeder:\n%s", tail(good.console(), 3000), tail(seed.Log(), 3000))
	}
	if con := good.console(); !strings.Contains(con, "ezio: deploy verified") || !strings.Contains(con, roomMarker) {
		t.Errorf("no verified deploy and deployed system on the console:\n%s", tail(con, 3000))
	}
	sameDisk(t, src, good.disk)
	// The failure and the room as the status page shows them.
	var page []byte
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		page, _ = lan.ns.Command(ctx, "busybox", "wget", "-qO-", "http://10.78.0.1:6969/").Output()
		if bytes.Contains(page, []byte("too small")) && bytes.Contains(page, []byte("rebooted")) {
			break
		}
		time.Sleep(time.Second)
	}
	for _, want := range []string{small.mac, good.mac, "disk too small", "rebooted"} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("the status page lacks %q:\n%s", want, page)
		}
	}
	rows := map[string]server.Machine{}
	for _, m := range seed.Machines() {
		rows[m.MAC] = m
	}
	if r := rows[small.mac]; r.State != "failed" || !strings.Contains(r.Reason, "too small") {
		t.Errorf("small machine's row %+v", r)
	}
	if r := rows[good.mac]; r.State != "rebooted" || !strings.HasPrefix(r.IP, "10.78.0.") {
		t.Errorf("deployed machine's row %+v", r)
	}
	// The address came from dnsmasq, not from ezio.
	if !strings.Contains(dnsLog.String(), "DHCPACK") || !strings.Contains(strings.ToLower(dnsLog.String()), good.mac) {
		t.Errorf("dnsmasq did not lease the machine its address:\n%s", tail(dnsLog.String(), 2000))
	}
	b, _ := os.ReadFile(small.disk)
	if !bytes.Equal(b, make([]byte, len(b))) {
		t.Error("something was written to the disk that is too small")
	}
	t.Logf("proxy room: %s", time.Since(start).Round(time.Second))
}
