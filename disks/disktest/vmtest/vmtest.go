// Package vmtest boots test disks in QEMU (TCG: this machine has no KVM)
// with Debian's own kernel and an initramfs that initramfs-tools builds
// for it, so that a test can show a deployed disk really starts: its
// firmware path (SeaBIOS and GRUB, or OVMF), its partitions, its LVM.
package vmtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ezio/disks/disktest"
	"ezio/engine/netboot/initramfs"
)

// OVMF's firmware and the template of its variable store.
const (
	OVMFCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	OVMFVars = "/usr/share/OVMF/OVMF_VARS_4M.fd"
)

// Need stops the test (skip, or fail under CI=true) unless QEMU, the
// tools that make an initramfs and a Debian kernel with its modules are
// here, as root.
func Need(t testing.TB) {
	t.Helper()
	disktest.Need(t, true, "qemu-system-x86_64", "mkinitramfs", "lsinitramfs", "lvm", "busybox")
	if _, err := os.Stat(OVMFCode); err != nil {
		disktest.SkipOrFail(t, "no UEFI firmware (the ovmf package): %v", err)
	}
	if _, _, err := kernel(); err != nil {
		disktest.SkipOrFail(t, "no kernel to boot (the linux-image-amd64 package): %v", err)
	}
}

// kernel is the newest /boot/vmlinuz-* whose modules are installed.
func kernel() (path, version string, err error) {
	path, err = initramfs.NewestKernel("/")
	if err != nil {
		return "", "", err
	}
	version = strings.TrimPrefix(filepath.Base(path), "vmlinuz-")
	if _, err := os.Stat(filepath.Join("/lib/modules", version, "modules.dep")); err != nil {
		return "", "", fmt.Errorf("%s has no modules: %w", path, err)
	}
	return path, version, nil
}

// Kit is a kernel and the initramfs built for it.
type Kit struct {
	Kernel, Version, Initrd string
}

// Modules the initramfs loads at once: the disk (virtio), the root's
// filesystem, and device-mapper before udev asks lvm to activate a VG.
var Modules = []string{"virtio_pci", "virtio_blk", "ext4", "dm_mod"}

// NewKit builds, in dir, the initramfs Debian would give this kernel
// (mkinitramfs, with the hooks of the installed packages: lvm2's brings
// lvm, dm-mod and the udev rules that activate a VG whose PV appears)
// from a configuration of its own, so that the machine's
// /etc/initramfs-tools is not read. Only Modules are listed
// (MODULES=list): a third of the size of MODULES=most, which SeaBIOS and
// GRUB load noticeably faster under TCG.
func NewKit(t testing.TB, dir string) *Kit {
	t.Helper()
	path, version, err := kernel()
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "initramfs-tools")
	for _, d := range []string{"conf.d", "hooks", "scripts"} {
		if err := os.MkdirAll(filepath.Join(conf, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"initramfs.conf": "MODULES=list\nBUSYBOX=auto\nCOMPRESS=zstd\nFSTYPE=ext4\nRUNSIZE=10%\n",
		"modules":        strings.Join(Modules, "\n") + "\n",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(conf, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	k := &Kit{Kernel: path, Version: version, Initrd: filepath.Join(dir, "initrd.img")}
	start := time.Now()
	disktest.Run(t, "mkinitramfs", "-d", conf, "-o", k.Initrd, version)
	list := disktest.Run(t, "lsinitramfs", k.Initrd)
	for _, want := range []string{"sbin/lvm", "/dm-mod.ko", "rules.d/69-lvm.rules", "/virtio_blk.ko"} {
		if !strings.Contains(list, want) {
			t.Fatalf("mkinitramfs made an initramfs without %s", want)
		}
	}
	t.Logf("initramfs for %s: mkinitramfs took %s", version, time.Since(start).Round(100*time.Millisecond))
	return k
}

// Boot describes one boot of a disk image.
type Boot struct {
	Disk  string        // a raw disk image file, booted with snapshot=on (never written)
	UEFI  bool          // OVMF on q35; else SeaBIOS on pc
	Limit time.Duration // at most this long (default 4 minutes)
}

// Run boots b.Disk until the guest powers off (QEMU runs with
// -no-reboot, so a panic with panic=-1 ends it too) or the limit, and
// returns the serial console.
func (b Boot) Run(t testing.TB) (console string, err error) {
	t.Helper()
	dir := t.TempDir()
	serial := filepath.Join(dir, "serial.log")
	args := []string{"-m", "512", "-smp", "1", "-display", "none", "-no-reboot", "-monitor", "none",
		"-serial", "file:" + serial, "-nic", "none"}
	if b.UEFI {
		vars := filepath.Join(dir, "vars.fd")
		disktest.Run(t, "cp", OVMFVars, vars)
		args = append(args, "-machine", "q35",
			"-drive", "if=pflash,format=raw,readonly=on,file="+OVMFCode,
			"-drive", "if=pflash,format=raw,file="+vars)
	}
	args = append(args, "-drive", "file="+b.Disk+",format=raw,if=virtio,snapshot=on")
	limit := b.Limit
	if limit == 0 {
		limit = 4 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	out, err := cmd.CombinedOutput()
	con, _ := os.ReadFile(serial)
	switch {
	case ctx.Err() != nil:
		return string(con), fmt.Errorf("the machine was still running after %s", limit)
	case err != nil:
		return string(con), fmt.Errorf("qemu: %v\n%s", err, out)
	}
	return string(con), nil
}

// Tail is the end of a console, for a failure message.
func Tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
