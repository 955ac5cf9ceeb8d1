package cli

// Tests of LVM disks on real loop devices without device-mapper: a VG
// made by vgcfgrestore from a metadata file, the LVs' filesystems made
// through loop devices at their offsets, captured used blocks only,
// deployed onto a blank disk, the same VG and LVs found there.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"ezio/disks/diskimage"
	"ezio/disks/disktest"
	"ezio/disks/table"
)

const lvmPVType = "E6D6D379-F507-44C2-A23C-238F2A3DF928"

// lvLV is one LV of a test VG: its extents on pv0 (or another PV), and
// what goes in it.
type lvLV struct {
	name  string
	segs  [][2]int // {first PE, extents}
	pv    string   // "pv0" unless said
	files map[string][]byte
	extra string // more metadata lines for the LV (type changes)
	raw   []byte // bytes written at the LV's start instead of a filesystem
}

// lvMetadata is the logical_volumes section of a VG's metadata.
func lvMetadata(lvs []lvLV) string {
	var b strings.Builder
	b.WriteString("\n\tlogical_volumes {\n")
	for i, lv := range lvs {
		fmt.Fprintf(&b, "\t\t%s {\n\t\t\tid = \"ezioLV-0000-0000-0000-0000-0000-%06d\"\n\t\t\tstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\n\t\t\tflags = []\n", lv.name, i+1)
		if lv.extra != "" {
			b.WriteString(lv.extra)
			b.WriteString("\t\t}\n")
			continue
		}
		fmt.Fprintf(&b, "\t\t\tsegment_count = %d\n", len(lv.segs))
		le := 0
		pv := lv.pv
		if pv == "" {
			pv = "pv0"
		}
		for j, s := range lv.segs {
			fmt.Fprintf(&b, "\t\t\tsegment%d {\n\t\t\t\tstart_extent = %d\n\t\t\t\textent_count = %d\n\t\t\t\ttype = \"striped\"\n\t\t\t\tstripe_count = 1\n\t\t\t\tstripes = [\"%s\", %d]\n\t\t\t}\n", j+1, le, s[1], pv, s[0])
			le += s[1]
		}
		b.WriteString("\t\t}\n")
	}
	b.WriteString("\t}\n")
	return b.String()
}

// lvDisk makes a GPT loop disk of size bytes: an 8 MiB ext2, then an LVM
// PV with VG vgez holding lvs (4 MiB extents, data from 1 MiB into the
// PV), each LV's filesystem made through a loop device at its offset.
// more are other PVs' nodes to put in the VG (pv1, ...).
func lvDisk(t *testing.T, size int64, lvs []lvLV, more ...string) (disk, pv string) {
	t.Helper()
	parts := []dkPart{
		{size: "8MiB", typ: "0FC63DAF-8483-4772-8E79-3D69E4C47D47", fs: "ext2", files: map[string][]byte{"vmlinuz": []byte("kernel\n")}},
		{typ: lvmPVType},
	}
	disk, nodes := dkDisk(t, size, "gpt", parts)
	pv = nodes[1]
	devs := append([]string{pv}, more...)
	dflag := "--devices=" + strings.Join(devs, ",")
	disktest.Run(t, "pvcreate", "-ff", "-y", dflag, pv)
	for _, d := range more {
		disktest.Run(t, "pvcreate", "-ff", "-y", dflag, d)
	}
	disktest.Run(t, "vgcreate", append([]string{"-s", "4m", dflag, "vgez"}, devs...)...)
	meta := filepath.Join(t.TempDir(), "vgez.txt")
	disktest.Run(t, "vgcfgbackup", dflag, "-f", meta, "vgez")
	b, err := os.ReadFile(meta)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	at := strings.LastIndex(s, "\n}")
	if err := os.WriteFile(meta, []byte(s[:at]+lvMetadata(lvs)+s[at:]), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("vgcfgrestore", "--force", dflag, "-f", meta, "vgez").CombinedOutput(); err != nil {
		t.Fatalf("vgcfgrestore: %v\n%s", err, out)
	}
	for _, lv := range lvs {
		if len(lv.segs) == 0 || (lv.pv != "" && lv.pv != "pv0") {
			continue
		}
		loop := lvLoop(t, pv, lv.segs[0])
		switch {
		case lv.raw != nil:
			if err := table.WriteAt(loop, 0, lv.raw[:min(len(lv.raw), lv.segs[0][1]*4<<20)]); err != nil {
				t.Fatal(err)
			}
		case lv.files != nil:
			disktest.Run(t, "mkfs.ext4", "-q", "-F", "-d", dkFilesDir(t, lv.files), loop)
		}
	}
	return disk, pv
}

// lvLoop is a loop device over one segment ({first PE, extents}) of the
// PV on node (the test's layout: 1 MiB before the first extent, 4 MiB
// extents), detached at the end.
func lvLoop(t *testing.T, node string, seg [2]int) string {
	t.Helper()
	out := disktest.Run(t, "losetup", "-f", "--show", "-o", fmt.Sprint(1<<20+seg[0]*4<<20), "--sizelimit", fmt.Sprint(seg[1]*4<<20), node)
	t.Cleanup(func() { exec.Command("losetup", "-d", out).Run() })
	return out
}

// lvUUIDs is "vg_uuid lv_name lv_uuid" of every LV lvm finds on node.
func lvUUIDs(t *testing.T, node string) string {
	t.Helper()
	out, err := exec.Command("lvs", "--devices", node, "--noheadings", "-o", "vg_uuid,lv_name,lv_uuid", "--sort", "lv_name").Output()
	if err != nil {
		t.Fatalf("lvs on %s: %v", node, err)
	}
	return strings.ReplaceAll(strings.TrimSpace(string(out)), node, "PV")
}

func lvNeed(t *testing.T) {
	t.Helper()
	dkNeed(t, "debugfs:e2fsprogs", "mkfs.ext4:e2fsprogs", "pvcreate:lvm2", "vgcfgrestore:lvm2", "lvs:lvm2")
}

// TestDiskLVM: a PV whose VG holds root and home (ext4, one segment
// each) and a raw LV in two segments, with free extents between them, is
// captured as the PV's header plus each LV's used blocks (the image is
// far smaller than the PV), deployed with --grow onto a blank disk twice
// the size: the PV fills its grown partition (pvs), the same VG and LV
// UUIDs and extents, each LV's ext4 checks clean with the same files,
// the raw LV's bytes are equal.
func TestDiskLVM(t *testing.T) {
	lvNeed(t)
	raw := dkRandom(31, 8<<20)
	lvs := []lvLV{
		{name: "root", segs: [][2]int{{0, 8}}, files: map[string][]byte{"os-release": []byte("ID=debian\n"), "big.bin": dkRandom(32, 2<<20+3)}},
		{name: "swapish", segs: [][2]int{{12, 1}, {20, 1}}, raw: raw},
		{name: "home", segs: [][2]int{{28, 4}}, files: map[string][]byte{"notes.txt": []byte("home\n")}},
	}
	src, pv := lvDisk(t, 160<<20, lvs)
	// the raw LV's second segment
	if err := table.WriteAt(lvLoop(t, pv, [2]int{20, 1}), 0, raw[4<<20:]); err != nil {
		t.Fatal(err)
	}
	dir := dkCaptureDisk(t, src, t.TempDir(), "lvm")
	m, err := diskimage.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range m.Partitions {
		names = append(names, fmt.Sprintf("%s:%s:%s", p.Name, p.Saved, p.Filesystem))
	}
	want := []string{src[5:] + "p1:partclone:ext2", src[5:] + "p2:lvm-pv:LVM2_member", "vgez-root:partclone:ext4", "vgez-swapish-seg1:dd:", "vgez-swapish-seg2:dd:", "vgez-home:partclone:ext4"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("manifest entries %v, want %v", names, want)
	}
	// The image: the PV's 1 MiB header, the ext4s' used blocks (their
	// journals too), the raw LV's 8 MiB: not the PV's 150 MiB, nor the
	// 56 MiB of its LVs.
	var image int64
	filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			image += info.Size()
		}
		return nil
	})
	if pvBytes := m.Partitions[1].Size; image > 28<<20 || image < m.DataBytes() || pvBytes < 140<<20 {
		t.Errorf("the image is %d bytes (%d of data) for a %d-byte PV: want the used blocks and metadata only", image, m.DataBytes(), pvBytes)
	}
	// Onto a disk twice the size, with --grow: the PV fills the rest,
	// its last LV (home) takes the new extents, its ext4 fills it.
	target := dkBlank(t, 320<<20)
	code, res, out := grDeploy(t, dir, target, "--grow")
	if code != 0 || res.Report == nil {
		t.Fatalf("deploy: exit %d\n%s", code, out)
	}
	dkCheckReport(t, res.Report, 3) // ext2, root, home
	b, _ := json.Marshal(res.Report.Partitions[1])
	t.Logf("the PV's report: %s", b)
	tpv, err := table.PartitionNode(target, 2)
	if err != nil {
		t.Fatal(err)
	}
	pvSize := disktest.Run(t, "pvs", "--devices", tpv, "--noheadings", "--nosuffix", "--units", "b", "-o", "pv_size", tpv)
	pvSize = strings.TrimSpace(pvSize[strings.LastIndex(pvSize, "\n")+1:])
	g := res.Report.Partitions[1].Grew
	if g == nil || g.To < 300<<20 || fmt.Sprint(g.FSBytes) != pvSize || g.FSBytes < g.To-8<<20 {
		t.Fatalf("the PV grew %+v; pvs says %s bytes", g, pvSize)
	}
	homeBytes := disktest.Run(t, "lvs", "--devices", tpv, "--noheadings", "--nosuffix", "--units", "b", "-o", "lv_size", "vgez/home")
	homeBytes = strings.TrimSpace(homeBytes[strings.LastIndex(homeBytes, "\n")+1:])
	if g.LV == nil || g.LV.Name != "vgez/home" || g.LV.From != 16<<20 || fmt.Sprint(g.LV.To) != homeBytes || g.LV.FSBytes != g.LV.To {
		t.Errorf("the last LV grew %+v; lvs says home is %s bytes", g.LV, homeBytes)
	} else {
		lvs[2].segs[0][1] = int(g.LV.To >> 22) // home's extents now
		loop := lvLoop(t, tpv, lvs[2].segs[0])
		if got := grFSSize(t, loop, "ext4"); got != g.LV.To {
			t.Errorf("home's ext4 is %d bytes, want the LV's %d", got, g.LV.To)
		}
		// Checked here too, not only by the deploy's own report.
		if c, err := table.Fsck(context.Background(), loop, "ext4"); err != nil || !c.OK {
			t.Errorf("home's ext4 after growing: %v %+v", err, c)
		}
	}
	if got, want := lvUUIDs(t, tpv), lvUUIDs(t, pv); got != want || !strings.Contains(got, "root") {
		t.Errorf("on the target, lvs says:\n%s\nwant (the source's):\n%s", got, want)
	}
	for _, lv := range []lvLV{lvs[0], lvs[2]} {
		loop := lvLoop(t, tpv, lv.segs[0])
		for name, data := range lv.files {
			if got := dkOut(t, "debugfs", "-R", "cat /"+name, loop); !bytes.Equal(got, data) {
				t.Errorf("LV %s file %s differs", lv.name, name)
			}
		}
	}
	for i, seg := range lvs[1].segs {
		got, _ := table.ReadAt(lvLoop(t, tpv, seg), 0, 4<<20)
		if !bytes.Equal(got, raw[i*4<<20:(i+1)*4<<20]) {
			t.Errorf("segment %d of the raw LV differs", i+1)
		}
	}
	b, _ = json.Marshal(res.Report.Partitions[2])
	if !strings.Contains(string(b), `"fsck":{"tool":"e2fsck -fn`) {
		t.Errorf("the root LV's report: %s", b)
	}
}

// TestDiskLVMRefusals: a snapshot, a thin pool, an LV with extents on a
// second disk and an LV holding LUKS are each refused at capture, naming
// the LV and why; no image is left.
func TestDiskLVMRefusals(t *testing.T) {
	lvNeed(t)
	luks := make([]byte, 4096)
	copy(luks, "LUKS\xba\xbe\x00\x01aes")
	copy(luks[168:], "0b7f7f53-1111-4222-8333-944455556666")
	other := func(t *testing.T) string {
		_, nodes := dkDisk(t, 48<<20, "gpt", []dkPart{{typ: lvmPVType}})
		return nodes[0]
	}
	for _, c := range []struct {
		name  string
		lvs   []lvLV
		other bool
		words []string
	}{
		{"snapshot", []lvLV{
			{name: "root", segs: [][2]int{{0, 4}}, files: map[string][]byte{"a": []byte("a")}},
			{name: "snap", segs: [][2]int{{8, 2}}},
			{name: "snapshot0", extra: "\t\t\tsegment_count = 1\n\t\t\tsegment1 {\n\t\t\t\tstart_extent = 0\n\t\t\t\textent_count = 4\n\t\t\t\ttype = \"snapshot\"\n\t\t\t\tchunk_size = 8\n\t\t\t\torigin = \"root\"\n\t\t\t\tcow_store = \"snap\"\n\t\t\t}\n"},
		}, false, []string{"vgez/snap is a snapshot"}},
		{"thin pool", []lvLV{
			{name: "pool0", extra: "\t\t\tsegment_count = 1\n\t\t\tsegment1 {\n\t\t\t\tstart_extent = 0\n\t\t\t\textent_count = 4\n\t\t\t\ttype = \"thin-pool\"\n\t\t\t\tmetadata = \"pool0_tmeta\"\n\t\t\t\tpool = \"pool0_tdata\"\n\t\t\t\ttransaction_id = 0\n\t\t\t\tchunk_size = 128\n\t\t\t\tdiscards = \"passdown\"\n\t\t\t\tzero_new_blocks = 1\n\t\t\t}\n"},
			{name: "pool0_tmeta", segs: [][2]int{{0, 1}}},
			{name: "pool0_tdata", segs: [][2]int{{1, 4}}},
		}, false, []string{"vgez/pool0 is a thin pool"}},
		{"second disk", []lvLV{
			{name: "root", segs: [][2]int{{0, 4}}, files: map[string][]byte{"a": []byte("a")}},
			{name: "spread", segs: [][2]int{{0, 2}}, pv: "pv1"},
		}, true, []string{"vgez/spread is extents on another disk"}},
		{"LUKS", []lvLV{
			{name: "root", segs: [][2]int{{0, 4}}, files: map[string][]byte{"a": []byte("a")}},
			{name: "secret", segs: [][2]int{{6, 2}}, raw: luks},
		}, false, []string{"vgez/secret is encrypted (crypto_LUKS)"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var more []string
			if c.other {
				more = append(more, other(t))
			}
			src, _ := lvDisk(t, 96<<20, c.lvs, more...)
			out := t.TempDir()
			code, stdout, stderr, err := capCLI(t, "capture", src, out, "--name", "refused")
			if code != ExitRefused {
				t.Fatalf("capture: exit %d, want %d: %v\n%s\n%s", code, ExitRefused, err, stdout, stderr)
			}
			for _, w := range c.words {
				if !strings.Contains(fmt.Sprint(err), w) {
					t.Errorf("the refusal does not say %q: %v", w, err)
				}
			}
			if _, serr := os.Stat(filepath.Join(out, "refused")); serr == nil {
				t.Errorf("a refused capture left %s", filepath.Join(out, "refused"))
			}
		})
	}
}

// lvClonezillaDir writes the Clonezilla image directory of disk (ocs-sr
// savedisk's files and names) by hand: disk, parts, the table and boot
// areas, the first partition's partclone image, and the VG's metadata
// (lvm_vg_dev.list, lvm_vgez.conf, lvm_logv.list), with no LV image, as
// Clonezilla leaves it when it cannot activate the LVs. (Debian's ocs-sr
// hung here for over 5 minutes reading this PV, so it is not run.)
func lvClonezillaDir(t *testing.T, disk, pv string, lvs []lvLV) string {
	t.Helper()
	img := t.TempDir()
	name := filepath.Base(disk)
	write := func(f, data string) {
		if err := os.WriteFile(filepath.Join(img, f), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("disk", name+"\n")
	write("parts", name+"p1 "+name+"p2\n")
	write(name+"-pt.sf", disktest.Run(t, "sfdisk", "--dump", disk)+"\n")
	mbr, _ := table.ReadAt(disk, 0, 512)
	write(name+"-mbr", string(mbr))
	disktest.Run(t, "sgdisk", "--backup="+filepath.Join(img, name+"-gpt.gdisk"), disk)
	disktest.Run(t, "sh", "-c", fmt.Sprintf("partclone.ext2 -c -s %sp1 -o - -L /dev/null | zstd -q -c > %s", disk, filepath.Join(img, name+"p1.ext2-ptcl-img.zst")))
	uuid := disktest.Run(t, "pvs", "--devices", pv, "--noheadings", "-o", "pv_uuid", pv)
	uuid = uuid[strings.LastIndex(uuid, "\n")+1:] // after lvm's warnings
	write("lvm_vg_dev.list", fmt.Sprintf("vgez /dev/%sp2 %s\n", name, strings.TrimSpace(uuid)))
	disktest.Run(t, "vgcfgbackup", "--devices", pv, "-f", filepath.Join(img, "lvm_vgez.conf"), "vgez")
	var logv strings.Builder
	for _, lv := range lvs {
		fmt.Fprintf(&logv, "/dev/vgez/%s  Linux rev 1.0 ext4 filesystem data\n", lv.name)
	}
	write("lvm_logv.list", logv.String())
	return img
}

// TestDiskImportClonezillaLVM: a Clonezilla image directory of the LVM
// disk, as Clonezilla writes it when it cannot activate the LVs (the
// VG's metadata, no LV image): ezio import refuses, naming the missing
// LVs. With the LV images added as Clonezilla names them (partclone
// through a loop device at the LV's offset, zstd), it imports and
// deploys: the same VG and LV UUIDs, each LV's files.
func TestDiskImportClonezillaLVM(t *testing.T) {
	lvNeed(t)
	dkNeed(t, "zstd:zstd")
	lvs := []lvLV{
		{name: "root", segs: [][2]int{{0, 8}}, files: map[string][]byte{"os-release": []byte("ID=debian\n"), "big.bin": dkRandom(41, 1<<20+3)}},
		{name: "home", segs: [][2]int{{12, 4}}, files: map[string][]byte{"notes.txt": []byte("home\n")}},
	}
	src, pv := lvDisk(t, 128<<20, lvs)
	img := lvClonezillaDir(t, src, pv, lvs)
	code, stdout, stderr, err := capCLI(t, "import", img, t.TempDir(), "--name", "nolv")
	if code != ExitRefused || !strings.Contains(fmt.Sprint(err), "vgez/root") || !strings.Contains(fmt.Sprint(err), "vgez/home") {
		t.Fatalf("import without LV images: exit %d, %v, want a refusal naming vgez/root and vgez/home\n%s\n%s", code, err, stdout, stderr)
	}
	for _, lv := range lvs {
		loop := lvLoop(t, pv, lv.segs[0])
		sh := fmt.Sprintf("partclone.ext4 -c -s %s -o - -L /dev/null | zstd -q -c > %s", loop, filepath.Join(img, "vgez-"+lv.name+".ext4-ptcl-img.zst"))
		disktest.Run(t, "sh", "-c", sh)
	}
	out := t.TempDir()
	code, stdout, stderr, err = capCLI(t, "import", img, out, "--name", "czlvm")
	if code != 0 {
		t.Fatalf("ezio import: exit %d %v\n%s\n%s", code, err, capTail(stdout), stderr)
	}
	target := dkBlank(t, 128<<20)
	code, res, log := grDeploy(t, filepath.Join(out, "czlvm"), target)
	if code != 0 || res.Report == nil {
		t.Fatalf("deploy: exit %d\n%s", code, log)
	}
	dkCheckReport(t, res.Report, 3)
	tpv, err := table.PartitionNode(target, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := lvUUIDs(t, tpv), lvUUIDs(t, pv); got != want || !strings.Contains(got, "home") {
		t.Errorf("on the target, lvs says:\n%s\nwant (the source's):\n%s", got, want)
	}
	for _, lv := range lvs {
		loop := lvLoop(t, tpv, lv.segs[0])
		for name, data := range lv.files {
			if got := dkOut(t, "debugfs", "-R", "cat /"+name, loop); !bytes.Equal(got, data) {
				t.Errorf("LV %s file %s differs", lv.name, name)
			}
		}
	}
}
