package tui

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"ezio/engine"
	"ezio/engine/netboot"
	"ezio/engine/netboot/room"
	"ezio/engine/server"
)

// netbootWorld is a wizard whose SeedDisk serves the sample disk's
// manifest from a real image server on loopback (no partition data), and
// whose StartNetboot records what it was asked and answers refuse.
type netbootWorld struct {
	m       *Model
	got     *room.Options
	image   string
	stopped chan struct{} // closed when the serving was stopped
	refuse  error
	served  bool // SeedDisk was called
}

func newNetbootWorld(t *testing.T, c *Common) *netbootWorld {
	w := &netbootWorld{stopped: make(chan struct{})}
	w.m = New(c, fakeDeps(t, &fakeWorld{}), &Config{})
	w.m.deps.SeedDisk = func(ctx context.Context, dir string, o DiskSeedOptions) (*DiskSeeding, error) {
		w.served = true
		tu := o.Tuning
		tu.ListenAddr = "127.0.0.1:0"
		sess, err := engine.NewSession(engine.SessionOptions{Tuning: tu, Serve: true, ServerListen: "127.0.0.1:0"})
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { sess.Close() })
		return &DiskSeeding{Manifest: sampleDiskManifest(), Server: sess.Server(), Stop: func() { sess.Close(); close(w.stopped) }}, nil
	}
	w.m.deps.StartNetboot = func(ctx context.Context, dir, image string, srv *server.Server, o room.Options) (func(), error) {
		if srv == nil {
			return nil, errors.New("no image server")
		}
		w.got, w.image = &o, image
		if w.refuse != nil {
			return nil, w.refuse
		}
		return func() {}, nil
	}
	return w
}

// toNetbootQuestion types the disk image and takes every default up to
// the network-boot question.
func toNetbootQuestion(t *testing.T, m *Model, dir string) {
	t.Helper()
	drive(t, m, key1("s"))
	drive(t, m, keys(dir)...)
	drive(t, m, enter) // the image data is skipped
	drive(t, m, enter) // every interface
	drive(t, m, enter) // port 6969
	drive(t, m, enter) // clients expected: not said
	drive(t, m, enter) // no upload limit
	drive(t, m, enter) // no check of the whole source first
}

// TestServeNetbootQuestion: a disk image's Serve asks whether the room
// boots from the network (no by default); yes asks where addresses come
// from (proxyDHCP by default), the range for full DHCP (checked), and what
// machines do after the deploy; the answers reach the room's use case.
func TestServeNetbootQuestion(t *testing.T) {
	c := testCommon(80, 25, "linux")
	w := newNetbootWorld(t, c)
	defer func(f func() bool) { isRoot = f }(isRoot)
	isRoot = func() bool { return true }
	m, dir := w.m, testDiskImageDir(t)
	toNetbootQuestion(t, m, dir)
	v := m.View()
	if !strings.Contains(v, "Boot the room's machines over the network?") {
		t.Fatalf("no network-boot question:\n%s", v)
	}
	checkSize(t, v, 80, 25)
	golden(t, "serve-netboot-question-80x25-linux", v)
	drive(t, m, enter) // no, the default
	if v := m.View(); !strings.Contains(v, "Announce this server on the LAN?") || strings.Contains(v, "Addresses for the machines") {
		t.Fatalf("no is not the default, or asks on:\n%s", v)
	}

	// Again, yes: proxyDHCP is the default.
	m = newNetbootWorld(t, c).m
	toNetbootQuestion(t, m, dir)
	drive(t, m, key1("y"))
	v = m.View()
	if !strings.Contains(v, "Addresses for the machines") || !strings.Contains(v, "> from the LAN's DHCP server (proxyDHCP)") {
		t.Fatalf("after yes:\n%s", v)
	}
	checkSize(t, v, 80, 25)
	golden(t, "serve-netboot-dhcp-80x25-linux", v)

	// Full DHCP: the range is asked, and checked.
	m = w.m
	drive(t, m, esc) // back to the menu
	w = newNetbootWorld(t, c)
	w.refuse = &room.RefusedError{Kind: room.RefusedOtherDHCP, Err: fmt.Errorf("not serving DHCP on eth0: %w", fmt.Errorf("%w (10.0.0.1 offered 10.0.0.220)", netboot.ErrOtherDHCP))}
	m = w.m
	toNetbootQuestion(t, m, dir)
	drive(t, m, key1("y"))
	drive(t, m, down)
	drive(t, m, enter)
	if v := m.View(); !strings.Contains(v, "Addresses to lease") {
		t.Fatalf("full DHCP does not ask the range:\n%s", v)
	}
	drive(t, m, keys("10.0.0.150-10.0.0.100")...)
	drive(t, m, enter)
	if v := m.View(); !strings.Contains(v, "the lower first") || strings.Contains(v, "After its deploy") {
		t.Fatalf("a reversed range is taken:\n%s", v)
	}
	for range "10.0.0.150-10.0.0.100" {
		drive(t, m, tea.KeyMsg{Type: tea.KeyBackspace})
	}
	drive(t, m, keys("10.0.0.100-10.0.0.150")...)
	drive(t, m, enter)
	if v := m.View(); !strings.Contains(v, "After its deploy, each machine") || !strings.Contains(v, "> reboots") {
		t.Fatalf("no question on what machines do after, or reboot is not the default:\n%s", v)
	}
	drive(t, m, down)
	drive(t, m, enter)     // powers off
	drive(t, m, key1("n")) // not announced
	settle(t, m, 10*time.Second, "StartNetboot", func() bool { return w.got != nil })
	if o := w.got; o.DHCPRange != "10.0.0.100-10.0.0.150" || o.Then != room.ThenPoweroff || o.TargetDisk != "auto" || o.ListenHost != "" || w.image != "pc1" || o.Say == nil {
		t.Errorf("StartNetboot(%q, %+v)", w.image, o)
	}
	if err := o(w.got).Check(); err != nil {
		t.Errorf("the wizard's answers do not pass the command line's check: %v", err)
	}
	// Refused: the error box says what happened, with no flag, and what
	// to do; the serving is stopped.
	settle(t, m, 10*time.Second, "the error", func() bool { _, ok := m.Current().(*ErrorScreen); return ok })
	v = m.View()
	for _, want := range []string{"Could not boot the room over the network", "another DHCP server answers on this network", "proxyDHCP"} {
		if !strings.Contains(v, want) {
			t.Errorf("the refusal lacks %q:\n%s", want, v)
		}
	}
	if flagName.MatchString(v) || !strings.Contains(v, "(10.0.0.1 offered 10.0.0.220)") {
		t.Errorf("the refusal names a flag, or not the other server:\n%s", v)
	}
	checkSize(t, v, 80, 25)
	golden(t, "serve-netboot-refused-80x25-linux", v)
	select {
	case <-w.stopped:
	case <-time.After(10 * time.Second):
		t.Error("the refused room's serving was not stopped")
	}
	// Back: the answers are kept.
	drive(t, m, esc)
	if n := m.serve.Netboot; !n.On || !n.FullDHCP || n.Range != "10.0.0.100-10.0.0.150" || n.Then != room.ThenPoweroff {
		t.Errorf("answers not kept: %+v", n)
	}
}

func o(p *room.Options) room.Options { return *p }

// flagName is a command-line flag in a text.
var flagName = regexp.MustCompile(`--[a-z]`)

// TestServeNetbootRefusals: each refusal in the wizard's words, with what
// to do; not root is refused before anything is served.
func TestServeNetbootRefusals(t *testing.T) {
	c := testCommon(80, 25, "linux")
	w := newNetbootWorld(t, c)
	defer func(f func() bool) { isRoot = f }(isRoot)
	isRoot = func() bool { return false }
	m := w.m
	toNetbootQuestion(t, m, testDiskImageDir(t))
	drive(t, m, key1("y")) // one key a drive: each moves to the next page
	drive(t, m, enter)
	drive(t, m, enter)
	drive(t, m, key1("n"))
	settle(t, m, 10*time.Second, "the error", func() bool { _, ok := m.Current().(*ErrorScreen); return ok })
	if v := m.View(); !strings.Contains(v, "which only root") || !strings.Contains(v, "Run the wizard as root") || w.got != nil || w.served {
		t.Errorf("not root (served: %v, room started: %v):\n%s", w.served, w.got != nil, v)
	}
	for _, tc := range []struct {
		err        error
		what, hint string
	}{
		{&room.RefusedError{Kind: room.RefusedNoIPXE, Err: errors.New("network boot needs iPXE's undionly.kpxe in /usr/lib/ipxe: install the package ipxe (apt-get install ipxe)")}, "undionly.kpxe", "apt-get install ipxe"},
		{&room.RefusedError{Kind: room.RefusedNoEnv, Err: fmt.Errorf("building the network deploy environment: %w", errors.New("no kernel in /boot (install linux-image-amd64, or name a kernel image to use)"))}, "no kernel in /boot", "linux-image-amd64"},
		{&room.RefusedError{Kind: room.RefusedRangeOff, Range: "10.9.0.10-10.9.0.20", Err: errors.New("the DHCP range 10.9.0.10-10.9.0.20 is on no interface this server listens on")}, "(10.9.0.10-10.9.0.20) are on no network", "Serve on"},
		{&room.RefusedError{Kind: room.RefusedNoIPv4, Err: errors.New("network boot: no IPv4 interface to answer on")}, "No network interface", "give it an address"},
	} {
		p := netbootProblem(tc.err)
		if !strings.Contains(p.what, tc.what) || !strings.Contains(p.hint, tc.hint) || flagName.MatchString(p.what+p.hint) {
			t.Errorf("%v: %+v", tc.err, p)
		}
	}
}

// TestServeNetbootStarts: the started room's dashboard says to power the
// machines on first, keeps the client commands for the others and the
// room's own lines, and has the machines' pane; the room stops with the
// serving.
func TestServeNetbootStarts(t *testing.T) {
	c := testCommon(80, 25, "linux")
	w := newNetbootWorld(t, c)
	defer func(f func() bool) { isRoot = f }(isRoot)
	isRoot = func() bool { return true }
	roomStopped := make(chan struct{})
	start := w.m.deps.StartNetboot
	w.m.deps.StartNetboot = func(ctx context.Context, dir, image string, srv *server.Server, o room.Options) (func(), error) {
		o.Say("network boot on eth0 (10.0.0.5): proxyDHCP (addresses from the LAN's DHCP server), TFTP, http://10.0.0.5:6969/netboot/")
		if _, err := start(ctx, dir, image, srv, o); err != nil {
			return nil, err
		}
		return func() { close(roomStopped) }, nil
	}
	v := ServeValues{Torrent: testDiskImageDir(t), Host: "127.0.0.1", Port: "0", NoAnnounce: true, Netboot: NetbootValues{On: true}}
	s := NewServeFlow(c, w.m.deps, &v)
	msg := s.startDisk()().(serveStartedMsg)
	if msg.err != nil {
		t.Fatal(msg.err)
	}
	d := msg.dash.(*DiskSeedDashboard)
	if !d.netboot || w.got.Then != room.ThenReboot || w.got.DHCPRange != "" || w.got.ListenHost != "127.0.0.1" {
		t.Errorf("netboot %v, options %+v", d.netboot, w.got)
	}
	how := strings.Join(d.howTo, "\n")
	for _, want := range []string{"power the machines on (network boot first): they deploy pc1, reboot", "or: ezio deploy http://", "network boot on eth0"} {
		if !strings.Contains(how, want) {
			t.Errorf("instructions lack %q:\n%s", want, how)
		}
	}
	if !strings.Contains(d.View(), "[Machines]") && !strings.Contains(d.View(), "Machines") {
		t.Errorf("no machines pane:\n%s", d.View())
	}
	// No partition is served here: the run ends at once, the room with it.
	select {
	case <-roomStopped:
	case <-time.After(10 * time.Second):
		t.Error("the room was not stopped with the serving")
	}
}

// sampleRoom is a room in every state: booting, deploying at 45%,
// verified, rebooted, failed with its reason.
func sampleRoom() []server.Machine {
	const gib = int64(1) << 30
	return []server.Machine{
		{MAC: "52:54:00:12:34:01", State: netboot.StateRebooted, Arch: "bios", IP: "10.0.0.101", BytesDone: 13 * gib, BytesTotal: 13 * gib},
		{MAC: "52:54:00:12:34:02", State: netboot.StateDeploying, Arch: "bios", Target: "/dev/sda", BytesDone: 13 * gib * 45 / 100, BytesTotal: 13 * gib},
		{MAC: "52:54:00:12:34:03", State: netboot.StateFailed, Arch: "efi", Reason: "disk too small: the image needs 16.0 GiB and this machine has only vda (8.0 GiB); nothing was written"},
		{MAC: "52:54:00:12:34:04", State: netboot.StateVerified, Arch: "efi", BytesDone: 13 * gib, BytesTotal: 13 * gib},
		{MAC: "52:54:00:12:34:05", State: netboot.StateBooting, Arch: "efi"},
	}
}

// TestDiskSeedDashboardMachines: one row per machine by MAC in its
// state, the deploying one with its progress, the failed one with its
// reason; the title counts them; each change of state is logged; a room
// larger than the pane scrolls with the count kept; 80x25 holds it all.
func TestDiskSeedDashboardMachines(t *testing.T) {
	c := testCommon(80, 25, "linux")
	src := &fakeDiskSeed{parts: diskSeedSnaps(10), fleet: diskSeedFleet(), doneC: make(chan struct{})}
	d := newDiskSeedDashboard(c, sampleDiskManifest(), src, 5, true)
	d.howTo = netbootHowTo("pc1", room.ThenReboot, diskInstructions("http://0.0.0.0:6969", "10.0.0.5", "pc1", ""), nil)
	d.Init()
	v := d.View()
	if !strings.Contains(v, "no machine has booted yet") {
		t.Errorf("an empty room:\n%s", v)
	}
	src.room = sampleRoom()
	d.Update(diskSeedTickMsg{d.id})
	v = d.View()
	checkSize(t, v, 80, 25)
	golden(t, "dashboard-disk-netboot-80x25-linux", v)
	for _, want := range []string{"Machines: 5, 1 booting, 1 deploying, 1 verified, 1 rebooted, 1 failed",
		"52:54:00:12:34:02 deploying", "45.0% of 13.0 GiB  /dev/sda", "52:54:00:12:34:03 failed    disk too small",
		"rebooted into its system", "booting from the network (efi)", "clients: power the machines on"} {
		if !strings.Contains(v, want) {
			t.Errorf("the dashboard lacks %q:\n%s", want, v)
		}
	}
	logged := strings.Join(d.logLinesOf(d.logs), "\n")
	if !strings.Contains(logged, "52:54:00:12:34:03 failed: disk too small: the image needs 16.0 GiB") || strings.Count(logged, "52:54:00:12:34:0") != 5 {
		t.Errorf("log:\n%s", logged)
	}
	// A change is logged once.
	src.room[4].State = netboot.StateDeploying
	d.Update(diskSeedTickMsg{d.id})
	d.Update(diskSeedTickMsg{d.id})
	if logged := strings.Join(d.logLinesOf(d.logs), "\n"); strings.Count(logged, "52:54:00:12:34:05") != 2 {
		t.Errorf("log after a change:\n%s", logged)
	}

	// A room of 30: the pane scrolls, the title counts them all.
	var many []server.Machine
	for i := range 30 {
		m := sampleRoom()[i%5]
		m.MAC = fmt.Sprintf("52:54:00:00:00:%02x", i)
		many = append(many, m)
	}
	src.room = many
	d.Update(diskSeedTickMsg{d.id})
	v = d.View()
	checkSize(t, v, 80, 25)
	golden(t, "dashboard-disk-netboot-many-80x25-linux", v)
	if !strings.Contains(v, "Machines: 30, 6 booting, 6 deploying, 6 verified, 6 rebooted, 6 failed") || !strings.Contains(v, "|52:54:00:00:00:00 ") || strings.Contains(v, "|52:54:00:00:00:1d ") {
		t.Errorf("30 machines:\n%s", v)
	}
	for d.focus != paneMachines {
		d.Update(tea.KeyMsg{Type: tea.KeyTab})
	}
	for range 40 {
		d.Update(down)
	}
	if v := d.View(); !strings.Contains(v, "|52:54:00:00:00:1d ") || strings.Contains(v, "|52:54:00:00:00:00 ") {
		t.Errorf("scrolled to the end:\n%s", v)
	}
	checkSize(t, d.View(), 80, 25)
}

// TestServeNetbootRedeploy: with machines deployed before on record beside
// the image, the wizard asks whether to deploy them again (no by
// default), saying how many; yes reaches the room as Redeploy.
func TestServeNetbootRedeploy(t *testing.T) {
	c := testCommon(80, 25, "linux")
	w := newNetbootWorld(t, c)
	defer func(f func() bool) { isRoot = f }(isRoot)
	isRoot = func() bool { return true }
	dir := testDiskImageDir(t)
	recs, err := netboot.OpenRecords(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range []string{netboot.StateVerified, netboot.StateRebooted, netboot.StateFailed} {
		mac, _ := net.ParseMAC(fmt.Sprintf("52:54:00:00:00:%02x", i))
		if _, err := recs.Update(mac, func(m *server.Machine) {
			m.State = st
			if st != netboot.StateFailed {
				m.Verified = t0
			}
		}); err != nil {
			t.Fatal(err)
		}
	}
	m := w.m
	toNetbootQuestion(t, m, dir)
	drive(t, m, key1("y"))
	drive(t, m, enter) // proxyDHCP
	v := m.View()
	if !strings.Contains(v, "Deploy the machines deployed before again?") || !strings.Contains(v, "2 machines have a verified deploy on record") {
		t.Fatalf("no redeploy question:\n%s", v)
	}
	checkSize(t, v, 80, 25)
	golden(t, "serve-netboot-redeploy-80x25-linux", v)
	drive(t, m, key1("y"))
	drive(t, m, enter)     // reboot
	drive(t, m, key1("n")) // not announced
	settle(t, m, 10*time.Second, "StartNetboot", func() bool { return w.got != nil })
	if !w.got.Redeploy || w.got.DHCPRange != "" {
		t.Errorf("options %+v", w.got)
	}
}
