package diskboot

// The masters: a root filesystem whose init prints what the booted
// system sees, a /boot partition with GRUB for BIOS, an EFI system
// partition, and the LVM disk (its VG written without device-mapper).

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"ezio/disks/disktest"
	"ezio/disks/disktest/vmtest"
)

// masterID is the machine-id of every test root.
const masterID = "0123456789abcdef0123456789abcdef"

// rootDir is the tree of a root filesystem: static busybox, the
// directories the initramfs moves its mounts onto, an os-release, a
// hostname, hosts and machine-id, and an init that runs script (busybox sh, $b is busybox), prints the
// marker and powers off.
func rootDir(t *testing.T, script string) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"bin", "sbin", "dev", "proc", "sys", "run", "mnt", "etc"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	disktest.Run(t, "cp", "/bin/busybox", filepath.Join(dir, "bin", "busybox"))
	init := "#!/bin/busybox sh\nb=/bin/busybox\n" +
		"fact() { $b echo \"EZIO-FACT $1 $2\"; }\n" +
		"fsbytes() { set -- $($b stat -f -c '%b %S' \"$1\"); $b echo $(($1 * $2)); }\n" +
		script + "$b echo " + bootMarker + "\n$b poweroff -f\n"
	files := map[string]string{"sbin/init": init, "etc/os-release": "PRETTY_NAME=\"ezio boot test\"\nID=debian\n",
		"etc/hostname": "master\n", "etc/hosts": "127.0.0.1\tlocalhost\n127.0.1.1\tmaster\n", "etc/machine-id": masterID + "\n"}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// rootFacts is the init's script for a root on dev: the size of the
// device and of the mounted filesystem as the booted kernel sees them,
// and the machine's name and machine-id.
func rootFacts(dev string) string {
	return "fact root_dev $($b blockdev --getsize64 " + dev + ")\nfact root_fs $(fsbytes /)\n" +
		"fact hostname \"$($b cat /etc/hostname)\"\nfact hosts \"$($b grep 127.0.1.1 /etc/hosts)\"\nfact machine_id \"$($b cat /etc/machine-id)\"\n"
}

// cmdline is the kernel's command line for a root on dev: the console
// on the serial port QEMU writes to a file, and a panic that ends the
// machine at once (QEMU runs with -no-reboot).
func cmdline(dev string) string {
	return "root=" + dev + " ro console=ttyS0 panic=-1"
}

// biosBoot makes node an ext4 /boot partition holding the kernel, the
// initramfs and GRUB's configuration, and installs GRUB for BIOS on
// disk: boot code in the MBR, core.img in the gap after it.
func biosBoot(t *testing.T, kit *vmtest.Kit, disk, node, cmdline string) {
	t.Helper()
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "grub"), 0o755)
	disktest.Run(t, "cp", kit.Kernel, filepath.Join(dir, "vmlinuz"))
	disktest.Run(t, "cp", kit.Initrd, filepath.Join(dir, "initrd.img"))
	cfg := "set timeout=0\nmenuentry ezio {\n linux /vmlinuz " + cmdline + "\n initrd /initrd.img\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "grub", "grub.cfg"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	disktest.Run(t, "mkfs.ext4", "-q", "-F", "-L", "boot", "-d", dir, node)
	mnt := t.TempDir()
	disktest.Run(t, "mount", node, mnt)
	out, err := exec.Command("grub-install", "--target=i386-pc", "--boot-directory="+mnt, disk).CombinedOutput()
	disktest.Run(t, "umount", mnt)
	if err != nil {
		t.Fatalf("grub-install: %v\n%s", err, out)
	}
}

// uefiBoot makes node an EFI system partition (FAT, made and filled with
// mkfs.vfat and mtools: this kernel has no vfat driver) from which OVMF's
// shell runs startup.nsh: the kernel's EFI stub with the initramfs.
func uefiBoot(t *testing.T, kit *vmtest.Kit, node, cmdline string) {
	t.Helper()
	dir := t.TempDir()
	nsh := filepath.Join(dir, "startup.nsh")
	if err := os.WriteFile(nsh, []byte("fs0:\r\n\\vmlinuz initrd=\\initrd.img "+cmdline+"\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	disktest.Run(t, "cp", kit.Kernel, filepath.Join(dir, "vmlinuz"))
	disktest.Run(t, "cp", kit.Initrd, filepath.Join(dir, "initrd.img"))
	disktest.Run(t, "mkfs.vfat", "-n", "ESP", node)
	mcopy := exec.Command("mcopy", "-i", node, filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd.img"), nsh, "::/")
	mcopy.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	if out, err := mcopy.CombinedOutput(); err != nil {
		t.Fatalf("mcopy: %v\n%s", err, out)
	}
}

// node is partition n of a loop disk.
func node(d loopDisk, n int) string { return fmt.Sprintf("%sp%d", d.dev, n) }

// lvmExtent is the test VG's extent size.
const lvmExtent = 4 << 20

// testLV is an LV of the test VG: one segment on the PV.
type testLV struct {
	name      string
	firstPE   int
	extents   int
	files     map[string]string
	rootFiles string // or: make it from this directory
}

// lvmMaster is the LVM disk the issue describes: MBR, /boot on ext4 with
// GRUB for BIOS, then a PV whose VG vgez holds root (ext4, the root the
// initramfs's lvm activates) and home (ext4, mounted by root's init),
// with free extents between and after them.
type lvmMaster struct {
	loopDisk
	pv      string // the PV's partition node
	peStart int64  // bytes from the PV's start to its first extent
	lvs     []testLV
}

const homeText = "EZIO-HOME-LV-READ"

// lvmScript is the init of the LVM root: root and home as the booted
// kernel sees them (device-mapper's devices, the mounted filesystems)
// and a file read from home.
const lvmScript = `$b mount -t ext4 -o ro /dev/mapper/vgez-home /mnt
fact home_file "$($b cat /mnt/hello.txt)"
fact home_dev $($b blockdev --getsize64 /dev/mapper/vgez-home)
fact home_fs $(fsbytes /mnt)
fact mapper "$($b ls /dev/mapper | $b tr '\n' ' ')"
`

func newLVMMaster(t *testing.T, kit *vmtest.Kit) *lvmMaster {
	t.Helper()
	m := &lvmMaster{loopDisk: partitioned(t, 128<<20, "label: dos\nstart=2048, size=40MiB, type=83, bootable\ntype=8e\n")}
	m.pv = node(m.loopDisk, 2)
	biosBoot(t, kit, m.dev, node(m.loopDisk, 1), cmdline("/dev/mapper/vgez-root"))
	m.lvs = []testLV{
		{name: "root", firstPE: 0, extents: 8, rootFiles: rootDir(t, rootFacts("/dev/mapper/vgez-root")+lvmScript)},
		{name: "home", firstPE: 10, extents: 4, files: map[string]string{"hello.txt": homeText + "\n"}},
	}
	dflag := "--devices=" + m.pv
	disktest.Run(t, "pvcreate", "-ff", "-y", dflag, m.pv)
	disktest.Run(t, "vgcreate", "-s", "4m", dflag, "vgez", m.pv)
	meta := filepath.Join(t.TempDir(), "vgez.txt")
	disktest.Run(t, "vgcfgbackup", dflag, "-f", meta, "vgez")
	b, err := os.ReadFile(meta)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	at := strings.LastIndex(s, "\n}")
	var lvs strings.Builder
	lvs.WriteString("\n\tlogical_volumes {\n")
	for i, lv := range m.lvs {
		fmt.Fprintf(&lvs, "\t\t%s {\n\t\t\tid = \"ezioBT-0000-0000-0000-0000-0000-%06d\"\n\t\t\tstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\n\t\t\tflags = []\n\t\t\tsegment_count = 1\n", lv.name, i+1)
		fmt.Fprintf(&lvs, "\t\t\tsegment1 {\n\t\t\t\tstart_extent = 0\n\t\t\t\textent_count = %d\n\t\t\t\ttype = \"striped\"\n\t\t\t\tstripe_count = 1\n\t\t\t\tstripes = [\"pv0\", %d]\n\t\t\t}\n\t\t}\n", lv.extents, lv.firstPE)
	}
	lvs.WriteString("\t}\n")
	if err := os.WriteFile(meta, []byte(s[:at]+lvs.String()+s[at:]), 0o644); err != nil {
		t.Fatal(err)
	}
	// Without device-mapper: the LVs are written into the metadata, not
	// activated.
	if out, err := exec.Command("vgcfgrestore", "--force", dflag, "-f", meta, "vgez").CombinedOutput(); err != nil {
		t.Fatalf("vgcfgrestore: %v\n%s", err, out)
	}
	m.peStart = lvmNumber(t, disktest.Run(t, "pvs", dflag, "--noheadings", "--nosuffix", "--units", "b", "-o", "pe_start", m.pv))
	for _, lv := range m.lvs {
		dir := lv.rootFiles
		if dir == "" {
			dir = t.TempDir()
			for name, data := range lv.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		disktest.Run(t, "mkfs.ext4", "-q", "-F", "-L", lv.name, "-d", dir, m.lvLoop(t, m.pv, lv))
	}
	return m
}

// lvLoop is a loop device over lv's extents on the PV at pv (this
// disk's, or a deployed copy's), detached at the end: how partclone and
// the ext4 tools reach an LV without device-mapper.
func (m *lvmMaster) lvLoop(t *testing.T, pv string, lv testLV) string {
	t.Helper()
	off := m.peStart + int64(lv.firstPE)*lvmExtent
	dev := disktest.Run(t, "losetup", "-f", "--show", "-o", fmt.Sprint(off), "--sizelimit", fmt.Sprint(int64(lv.extents)*lvmExtent), pv)
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	return dev
}

// lvmNumber is the number on the last line of an lvm report (lvm may
// warn on the lines before).
func lvmNumber(t *testing.T, out string) int64 {
	t.Helper()
	last := strings.TrimSpace(out[strings.LastIndex(out, "\n")+1:])
	n, err := strconv.ParseInt(last, 10, 64)
	if err != nil {
		t.Fatalf("not a number from lvm: %q", out)
	}
	return n
}

// lvUUIDs is "VG-UUID LV LV-UUID" for each LV lvm finds on the PV node.
func lvUUIDs(t *testing.T, pv string) string {
	t.Helper()
	out, err := exec.Command("lvs", "--devices", pv, "--noheadings", "-o", "vg_uuid,lv_name,lv_uuid", "--sort", "lv_name").Output()
	if err != nil {
		t.Fatalf("lvs on %s: %v", pv, err)
	}
	return strings.Join(strings.Fields(string(out)), " ")
}

// ext4Bytes is an ext4's size and the bytes of its used blocks, by
// dumpe2fs.
func ext4Bytes(t *testing.T, dev string) (size, used int64) {
	t.Helper()
	out := disktest.Run(t, "dumpe2fs", "-h", dev)
	num := func(field string) int64 {
		m := regexp.MustCompile(`(?m)^` + field + `:\s+(\d+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("dumpe2fs %s says no %s:\n%s", dev, field, out)
		}
		n, _ := strconv.ParseInt(m[1], 10, 64)
		return n
	}
	bs := num("Block size")
	return num("Block count") * bs, (num("Block count") - num("Free blocks")) * bs
}

// fsckClean: e2fsck, forced and read-only, finds nothing on dev.
func fsckClean(t *testing.T, dev string) {
	t.Helper()
	if out, err := exec.Command("e2fsck", "-fn", dev).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn %s: %v\n%s", dev, err, out)
	}
}
