package diskboot

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ezio/disks/diskimage"
	"ezio/disks/disktest"
	"ezio/disks/disktest/vmtest"
	"ezio/disks/table"
)

// TestDiskBoot: deployed disks boot in QEMU. One kernel and initramfs
// (mkinitramfs, with lvm2's hook) serve every subtest.
func TestDiskBoot(t *testing.T) {
	need(t)
	start := time.Now()
	kit := vmtest.NewKit(t, t.TempDir())
	t.Run("lvm", func(t *testing.T) { testLVMBoot(t, kit) })
	t.Run("clonezilla-lvm", func(t *testing.T) { testClonezillaLVMBoot(t, kit) })
	t.Run("grow-gpt-uefi", func(t *testing.T) { testGrowBoot(t, kit, "gpt") })
	t.Run("grow-mbr-bios", func(t *testing.T) { testGrowBoot(t, kit, "dos") })
	t.Logf("all boots: %s", time.Since(start).Round(time.Second))
}

// checkLVMBoot checks the facts of a booted LVM disk: the initramfs's
// lvm activated the VG (root is the LV, home is there and its file
// reads), with home's device and filesystem of homeBytes.
func checkLVMBoot(t *testing.T, facts map[string]string, homeBytes int64) {
	t.Helper()
	if got := fact(t, facts, "home_file"); got != homeText {
		t.Errorf("home's file reads %q in the booted system, want %q", got, homeText)
	}
	if got := fact(t, facts, "mapper"); !strings.Contains(got, "vgez-root") || !strings.Contains(got, "vgez-home") {
		t.Errorf("/dev/mapper in the booted system: %q", got)
	}
	if got := factBytes(t, facts, "root_dev"); got != 8*lvmExtent {
		t.Errorf("the booted root LV is %d bytes, want %d", got, 8*lvmExtent)
	}
	if got := factBytes(t, facts, "home_dev"); got != homeBytes {
		t.Errorf("the booted home LV is %d bytes, want %d", got, homeBytes)
	}
	// statfs counts the blocks left after ext4's own overhead: a little
	// less than the filesystem, more than three quarters of it.
	if got := factBytes(t, facts, "home_fs"); got > homeBytes || got < homeBytes/4*3 {
		t.Errorf("the booted system sees home's ext4 as %d bytes in a %d-byte LV", got, homeBytes)
	}
}

// imageBytes is the size of the files under an image directory's entry.
func imageBytes(t *testing.T, dir, sub string) int64 {
	t.Helper()
	var n int64
	err := filepath.Walk(filepath.Join(dir, sub), func(_ string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			n += info.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// testLVMBoot: the LVM disk captured (used blocks only: the PV's label
// and metadata area, each LV's used blocks), seeded and deployed onto a
// blank disk of its size boots: GRUB, the initramfs's lvm activates the
// VG, the root LV's init reads home; the same VG and LV UUIDs; the
// --hostname given reached the root LV (its name, hosts line, empty
// machine-id). Deployed with --grow onto a disk twice the size, the PV
// fills the partition, home (the VG's last LV) takes the new extents,
// and the grown disk boots with home grown, named too.
func testLVMBoot(t *testing.T, kit *vmtest.Kit) {
	m := newLVMMaster(t, kit)
	want := lvUUIDs(t, m.pv)
	used := map[string]int64{}
	for _, lv := range m.lvs {
		_, used["vgez-"+lv.name] = ext4Bytes(t, m.lvLoop(t, m.pv, lv))
	}
	dir := capture(t, m.dev, "lvmboot")
	man, err := diskimage.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The PV's entry holds its label and metadata area (the bytes before
	// the first extent), each LV's entry its ext4's used blocks: not the
	// PV's free extents, nor the LVs' free blocks.
	var pvImage, lvImage, lvBytes int64
	for _, p := range man.Partitions {
		switch {
		case p.Saved == diskimage.SavedLVM:
			pvImage = imageBytes(t, dir, p.ImageDir)
			if pvImage != m.peStart {
				t.Errorf("the PV's entry holds %d bytes, want its %d bytes before the first extent", pvImage, m.peStart)
			}
		case p.Volume != nil:
			n := imageBytes(t, dir, p.ImageDir)
			if p.Saved != diskimage.SavedPartclone || n != used[p.Name] {
				t.Errorf("LV entry %s: saved by %s, %d bytes; want partclone, the ext4's %d used bytes", p.Name, p.Saved, n, used[p.Name])
			}
			lvImage += n
			lvBytes += p.Size
		}
	}
	pvSize := int64(0)
	if p, ok := man.Partition(2); ok {
		pvSize = p.Size
	}
	if pvImage == 0 || lvImage == 0 || pvImage+lvImage > pvSize/4 || lvImage >= lvBytes/2 {
		t.Errorf("the image holds %d bytes of LVM header and %d of LVs (%d bytes of LVs) for a %d-byte PV", pvImage, lvImage, lvBytes, pvSize)
	}
	t.Logf("LVM image: %d bytes of PV header and %d of LV data for a %d-byte PV", pvImage, lvImage, pvSize)

	url := seed(t, dir)
	target := blank(t, 128<<20)
	// The root is an LV: --hostname must reach it without device-mapper.
	deploy(t, url, target.dev, "--hostname", "lvm-{n}")
	tpv, err := table.PartitionNode(target.dev, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got := lvUUIDs(t, tpv); got != want || !strings.Contains(got, "home") {
		t.Errorf("on the deployed disk lvs says %q, want the master's %q", got, want)
	}
	facts := boot(t, target, false)
	checkLVMBoot(t, facts, 4*lvmExtent)
	checkName(t, facts, "lvm-1", "")

	grown := blank(t, 256<<20)
	// Named too: the root LV is then reached at its place on a PV that grew.
	rep := deploy(t, url, grown.dev, "--grow", "--hostname", "lvm-grown")
	var g *diskimage.Growth
	for _, p := range rep.Partitions {
		if p.Number == 2 {
			g = p.Grew
		}
	}
	if g == nil || g.LV == nil || g.LV.Name != "vgez/home" || g.LV.To < 30*lvmExtent {
		t.Fatalf("--grow: the PV grew %+v, want home to take the new extents", g)
	}
	gpv, err := table.PartitionNode(grown.dev, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got := lvUUIDs(t, gpv); got != want {
		t.Errorf("on the grown disk lvs says %q, want the master's %q", got, want)
	}
	home := m.lvs[1]
	home.extents = int(g.LV.To / lvmExtent)
	homeLoop := m.lvLoop(t, gpv, home)
	if size, _ := ext4Bytes(t, homeLoop); size != g.LV.To {
		t.Errorf("home's ext4 is %d bytes in its %d-byte LV", size, g.LV.To)
	}
	fsckClean(t, homeLoop)
	facts = boot(t, grown, false)
	checkLVMBoot(t, facts, g.LV.To)
	checkName(t, facts, "lvm-grown", "")
}

// checkName checks the booted system's hostname, its 127.0.1.1 line in
// /etc/hosts, and its machine-id.
func checkName(t *testing.T, facts map[string]string, name, id string) {
	t.Helper()
	if got := fact(t, facts, "hostname"); got != name {
		t.Errorf("the booted system is named %q, want %q", got, name)
	}
	if got := strings.Fields(fact(t, facts, "hosts")); len(got) != 2 || got[1] != name {
		t.Errorf("the booted system's 127.0.1.1 line is %q, want it to name %s", got, name)
	}
	if got := fact(t, facts, "machine_id"); got != id {
		t.Errorf("the booted system's machine-id is %q, want %q", got, id)
	}
}

// testClonezillaLVMBoot: the LVM disk saved by Debian's Clonezilla. This
// kernel has no device-mapper: ocs-sr saves the VG's metadata but no LV
// image and says it saved the disk; ezio import refuses the directory,
// naming both LVs. With the LV images added the way Clonezilla names
// them (partclone through a loop device at the LV's offset, zstd), it
// imports, deploys, and the disk boots with the master's VG and LVs.
func testClonezillaLVMBoot(t *testing.T, kit *vmtest.Kit) {
	disktest.Need(t, true, "ocs-sr", "parted", "zstd", "flock", "partclone.ext4")
	m := newLVMMaster(t, kit)
	want := lvUUIDs(t, m.pv)
	root := t.TempDir()
	start := time.Now()
	// ocs-sr keeps its device caches in one place for the whole machine
	// (/tmp/ocs-cache): the ocs-sr runs of every test take turns.
	cmd := exec.Command("flock", filepath.Join(os.TempDir(), "ezio-test-ocs-sr.lock"),
		"timeout", "300", "ocs-sr", "-b", "-nogui", "--ocsroot", root, "-q2", "-j2", "-z9p", "-i", "0", "-sfsck", "-senc", "-scs", "-p", "true", "savedisk", "IMG", filepath.Base(m.dev))
	cmd.Env = append(os.Environ(), "TERM=xterm")
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "saved successfully") {
		t.Fatalf("ocs-sr savedisk: %v\n%s", err, vmtest.Tail(string(out), 3000))
	}
	t.Logf("ocs-sr savedisk: %s", time.Since(start).Round(100*time.Millisecond))
	img := filepath.Join(root, "IMG")
	for _, f := range []string{"lvm_vgez.conf", "lvm_vg_dev.list", "lvm_logv.list"} {
		if _, err := os.Stat(filepath.Join(img, f)); err != nil {
			t.Errorf("Clonezilla wrote no %s: %v", f, err)
		}
	}
	if lv, _ := filepath.Glob(filepath.Join(img, "vgez-*")); len(lv) > 0 {
		t.Fatalf("Clonezilla imaged LVs on a kernel without device-mapper: %v", lv)
	}
	out1 := t.TempDir()
	code, stdout, stderr := ezio(t, "import", img, out1, "--name", "nolv")
	if code != 2 || !strings.Contains(stderr, "vgez/root") || !strings.Contains(stderr, "vgez/home") {
		t.Errorf("ezio import of Clonezilla's directory without LV images: exit %d, want 2 naming vgez/root and vgez/home\n%s\n%s", code, vmtest.Tail(stdout, 1000), stderr)
	}
	if _, err := os.Stat(filepath.Join(out1, "nolv")); err == nil {
		t.Errorf("the refused import left %s", filepath.Join(out1, "nolv"))
	}
	for _, lv := range m.lvs {
		sh := "partclone.ext4 -c -s \"$1\" -o - -L /dev/null | zstd -q -c > \"$2\""
		disktest.Run(t, "sh", "-c", sh, "sh", m.lvLoop(t, m.pv, lv), filepath.Join(img, "vgez-"+lv.name+".ext4-ptcl-img.zst"))
	}
	out2 := t.TempDir()
	if code, stdout, stderr := ezio(t, "import", img, out2, "--name", "czlvm"); code != 0 {
		t.Fatalf("ezio import: exit %d\n%s\n%s", code, vmtest.Tail(stdout, 1000), vmtest.Tail(stderr, 2000))
	}
	target := blank(t, 128<<20)
	deploy(t, filepath.Join(out2, "czlvm"), target.dev)
	tpv, err := table.PartitionNode(target.dev, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got := lvUUIDs(t, tpv); got != want || !strings.Contains(got, "home") {
		t.Errorf("on the deployed disk lvs says %q, want the master's %q", got, want)
	}
	checkLVMBoot(t, boot(t, target, false), 4*lvmExtent)
}

// testGrowBoot: a master whose last partition is an ext4 root (after an
// EFI system partition on GPT, booted by OVMF; after a /boot with GRUB
// on MBR, booted by SeaBIOS) deployed with --grow onto a disk twice its
// size: the root partition reaches the end of the disk, its ext4 fills
// it, and the disk boots into that root, whose kernel sees the grown
// partition and filesystem.
func testGrowBoot(t *testing.T, kit *vmtest.Kit, label string) {
	const size = 96 << 20
	uefi := label == "gpt"
	disktest.Need(t, true, "sgdisk")
	var m loopDisk
	if uefi {
		m = partitioned(t, size, "label: gpt\nstart=2048, size=32MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\ntype=0FC63DAF-8483-4772-8E79-3D69E4C47D47\n")
		uefiBoot(t, kit, node(m, 1), cmdline("/dev/vda2"))
	} else {
		m = partitioned(t, size, "label: dos\nstart=2048, size=40MiB, type=83, bootable\ntype=83\n")
		biosBoot(t, kit, m.dev, node(m, 1), cmdline("/dev/vda2"))
	}
	disktest.Run(t, "mkfs.ext4", "-q", "-F", "-L", "root", "-d", rootDir(t, rootFacts("/dev/vda2")), node(m, 2))
	from, _ := ext4Bytes(t, node(m, 2))
	dir := capture(t, m.dev, "grow-"+label)
	target := blank(t, 2*size)
	rep := deploy(t, dir, target.dev, "--grow")
	tb, err := table.Dump(t.Context(), target.dev)
	if err != nil {
		t.Fatal(err)
	}
	p2 := tb.Partitions[1]
	partBytes := p2.Size * tb.SectorSize
	if end := (p2.Start + p2.Size) * tb.SectorSize; end < 2*size-(1<<20)-34*512 {
		t.Errorf("the root partition ends at byte %d of the %d-byte disk", end, 2*size)
	}
	tnode, err := table.PartitionNode(target.dev, 2)
	if err != nil {
		t.Fatal(err)
	}
	fsBytes, _ := ext4Bytes(t, tnode)
	if g := rep.Partitions[1].Grew; g == nil || g.To != partBytes || g.FSBytes != fsBytes || fsBytes > partBytes || partBytes-fsBytes > 1<<20 {
		t.Errorf("partition 2 grew %+v; the table says %d bytes, dumpe2fs %d", g, partBytes, fsBytes)
	}
	fsckClean(t, tnode)
	facts := boot(t, target, uefi)
	if got := factBytes(t, facts, "root_dev"); got != partBytes {
		t.Errorf("the booted system's root partition is %d bytes, want the grown %d", got, partBytes)
	}
	if got := factBytes(t, facts, "root_fs"); got > fsBytes || got <= from {
		t.Errorf("the booted system sees its root ext4 as %d bytes: want more than the master's %d, at most the grown %d", got, from, fsBytes)
	}
	checkName(t, facts, "master", masterID) // no --hostname: left as it was
}
