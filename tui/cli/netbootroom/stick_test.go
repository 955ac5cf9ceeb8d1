package netbootroom

// The deploy environment on a stick, for a room whose network cannot boot
// machines: `ezio netboot stick` writes two loop disks; in a namespace LAN
// whose DHCP server is dnsmasq (no boot files from anyone), `ezio seed
// IMAGE-DIR` serves the image. A BIOS machine boots its stick as an
// internal virtio disk that is large enough for the image, so only the
// stick's disk ID on the kernel command line keeps the deploy off it; a
// UEFI machine boots its stick as a USB drive and finds the server by
// mDNS. Each writes the image onto its blank disk and powers off.

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ezio/disks/disktest"
	"ezio/engine/discover/lantest"
	"ezio/engine/netboot/stick"
)

func TestNetbootStick(t *testing.T) {
	needRoom(t)
	lantest.Need(t, "dnsmasq:dnsmasq-base", "grub-mkimage:grub-common", "mmd:mtools")
	if err := stick.Check(""); err != nil {
		disktest.SkipOrFail(t, "%v", err)
	}
	start := time.Now()
	bin := roomEzio(t)
	image, src := bootableImage(t, bin)
	lan := newRoomLAN(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// The LAN's own DHCP server, which knows nothing of booting.
	work := t.TempDir()
	dns := lan.ns.Command(ctx, "dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--port=0", "--user=root", "--bind-interfaces",
		"--interface=br0", "--dhcp-range=10.78.0.50,10.78.0.99,255.255.255.0,10m", "--dhcp-leasefile="+filepath.Join(work, "leases"),
		"--pid-file="+filepath.Join(work, "pid"))
	var dnsLog bytes.Buffer
	dns.Stdout, dns.Stderr = &dnsLog, &dnsLog
	if err := dns.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dns.Process.Kill(); dns.Wait() })

	// The seeder as any room has it: no --netboot, announced on the LAN.
	seed := startSeedRoom(t, ctx, lan, bin, image, "--tracker-listen", "10.78.0.1:6969", "--listen", "10.78.0.1:6881", "--json")
	waitImages(t, ctx, lan, seed)

	// The sticks: 256 MiB, more than the image needs, as a real stick is.
	cache := t.TempDir()
	writeStick := func(server string) (dev, file string) {
		dev = disktest.NewLoop(t, 256<<20, nil)
		file = strings.TrimSpace(disktest.Run(t, "losetup", "-n", "-O", "BACK-FILE", dev))
		cmd := ezioCmd(exec.CommandContext(ctx, bin, "netboot", "stick", dev, "--server", server, "--yes", "--json"))
		cmd.Env = append(cmd.Env, "XDG_CACHE_HOME="+cache)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		var r map[string]any
		if err != nil || json.Unmarshal(out, &r) != nil {
			t.Fatalf("netboot stick %s: %v\n%s\n%s", dev, err, out, stderr.String())
		}
		id, _ := r["disk_id"].(string)
		line, _ := r["cmdline"].(string)
		if r["result"] != "ok" || r["usb"] != false || id == "" || !strings.Contains(line, "ezio.stick="+id) {
			t.Fatalf("netboot stick result: %s", out)
		}
		if !strings.Contains(stderr.String(), "is not a USB stick") {
			t.Errorf("no warning for a loop disk that is not removable: %s", stderr.String())
		}
		return dev, file
	}
	t0 := time.Now()
	_, biosStick := writeStick("10.78.0.1:6969")
	_, uefiStick := writeStick("auto")
	t.Logf("two sticks written in %s", time.Since(t0).Round(time.Second))
	sums := map[string][32]byte{biosStick: disktest.Sum(t, biosStick), uefiStick: disktest.Sum(t, uefiStick)}

	machines := []*vm{
		{name: "stick-bios", mac: "52:54:00:78:02:01", tap: "tap0", disk: biosStick},
		{name: "stick-uefi", mac: "52:54:00:78:02:02", tap: "tap1", uefi: true, disk: uefiStick},
	}
	// One after the other, as a technician with sticks goes round, and
	// so that a failure belongs to one machine. (Seen twice in the first
	// eight runs, once with both machines at once and once alone: a
	// deploy went silent on the network, no announce for minutes, ping
	// answered, while its progress kept printing "waiting for the
	// server". Not seen in the runs since the deploy's log reaches the
	// serial console; the engine's to explain.)
	targets := map[string]string{}
	for _, m := range machines {
		t1 := time.Now()
		targets[m.name] = startStickVM(t, ctx, lan, m, 80<<20)
		select {
		case err := <-m.done:
			if err != nil {
				t.Errorf("%s: qemu: %v", m.name, err)
			}
		case <-ctx.Done():
			keepConsoles(machines, seed)
			status, _ := lan.ns.Command(context.Background(), "busybox", "wget", "-qO-", "http://10.78.0.1:6969/status.json").Output()
			t.Fatalf("%s did not finish; its ezio lines:\n%s\nconsole:\n%s\nseeder:\n%s\nstatus:\n%s", m.name, ezioLines(m.console()), tail(m.console(), 3000), tail(seed.Log(), 2000), tail(string(status), 2000))
		}
		con := m.console()
		if !strings.Contains(con, "ezio: deploy verified; poweroff") {
			t.Errorf("%s: no verified deploy on its console:\n%s", m.name, tail(con, 3000))
		}
		if !strings.Contains(con, "ezio.stick=") {
			t.Errorf("%s: the kernel did not get the stick's command line:\n%s", m.name, tail(con, 3000))
		}
		sameDisk(t, src, targets[m.name])
		if disktest.Sum(t, m.disk) != sums[m.disk] {
			t.Errorf("%s: the stick was written to", m.name)
		}
		t.Logf("%s: booted the stick, deployed and powered off in %s", m.name, time.Since(t1).Round(time.Second))
	}
	keepConsoles(machines, seed)
	bios, uefi := machines[0].console(), machines[1].console()
	// The BIOS machine's stick is an internal disk that fits the image:
	// the deploy saw it and left it alone.
	if !strings.Contains(bios, "/dev/vda is the stick this machine booted from; it is never written") || !strings.Contains(bios, "onto /dev/vdb") {
		t.Errorf("the BIOS machine did not set its stick aside:\n%s", tail(bios, 3000))
	}
	if !strings.Contains(uefi, "ezio: found http://10.78.0.1:6969 on the LAN") {
		t.Errorf("the UEFI machine did not find the server by mDNS:\n%s", tail(uefi, 3000))
	}
	t.Logf("stick room (BIOS and UEFI): %s", time.Since(start).Round(time.Second))
}

// keepConsoles copies the consoles and the seeder's log into
// $EZIO_KEEP_CONSOLES, when set, to read after a failure.
func keepConsoles(machines []*vm, seed *seedRoom) {
	keep := os.Getenv("EZIO_KEEP_CONSOLES")
	if keep == "" {
		return
	}
	for _, m := range machines {
		os.WriteFile(filepath.Join(keep, m.name+".serial"), []byte(m.console()), 0o644)
	}
	os.WriteFile(filepath.Join(keep, "seeder.log"), []byte(seed.Log()), 0o644)
}

// ezioLines are what ezio said on a console, its progress lines left out.
func ezioLines(con string) string {
	var b strings.Builder
	for _, l := range strings.Split(con, "\n") {
		if i := strings.Index(l, "ezio: "); i >= 0 && !strings.Contains(l, "%  ") || strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
			i = max(i, 0)
			b.WriteString(l[i:] + "\n")
		}
	}
	return b.String()
}

// waitImages waits until the seeder serves its image list in the room.
func waitImages(t *testing.T, ctx context.Context, lan *roomLAN, s *seedRoom) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		out, err := lan.ns.Command(ctx, "busybox", "wget", "-qO-", "http://10.78.0.1:6969/images.json").Output()
		if err == nil && bytes.Contains(out, []byte(`"room"`)) {
			return
		}
		select {
		case <-s.done:
			t.Fatalf("the seeder ended: %v\n%s", s.err, s.Log())
		case <-time.After(500 * time.Millisecond):
		}
	}
	t.Fatalf("the seeder does not serve its image\n%s", s.Log())
}

// startStickVM boots m from its stick (m.disk): under BIOS as a virtio
// disk, under UEFI as a USB drive; a blank target disk of diskSize beside
// it, a NIC without boot ROM on the room's LAN. It returns the target's
// file.
func startStickVM(t *testing.T, ctx context.Context, lan *roomLAN, m *vm, diskSize int64) string {
	t.Helper()
	dir := t.TempDir()
	target := filepath.Join(dir, m.name+".img")
	m.serial = filepath.Join(dir, m.name+".serial")
	if err := os.WriteFile(target, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Truncate(target, diskSize)
	args := []string{"-m", "640", "-smp", "1", "-display", "none", "-serial", "file:" + m.serial,
		"-netdev", "tap,id=n0,ifname=" + m.tap + ",script=no,downscript=no",
		"-device", "virtio-net-pci,netdev=n0,romfile=,mac=" + m.mac}
	if m.uefi {
		vars := filepath.Join(dir, "vars.fd")
		disktest.Run(t, "cp", "/usr/share/OVMF/OVMF_VARS_4M.fd", vars)
		args = append(args, "-machine", "q35",
			"-drive", "if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
			"-drive", "if=pflash,format=raw,file="+vars,
			"-device", "qemu-xhci",
			"-drive", "file="+m.disk+",format=raw,if=none,id=s0", "-device", "usb-storage,drive=s0,bootindex=1",
			"-drive", "file="+target+",format=raw,if=none,id=d0", "-device", "virtio-blk-pci,drive=d0,bootindex=2")
	} else {
		args = append(args,
			"-drive", "file="+m.disk+",format=raw,if=none,id=s0", "-device", "virtio-blk-pci,drive=s0,bootindex=1",
			"-drive", "file="+target+",format=raw,if=none,id=d0", "-device", "virtio-blk-pci,drive=d0,bootindex=2")
	}
	m.launch(t, ctx, lan, args)
	return target
}
