package cli

// Tests of whole-disk images on real loop devices with the real tools:
// capture (and Clonezilla import), seed, deploy onto a blank disk, then the
// table, the boot areas, every filesystem's fsck and every file compared.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ezio/disks"
	"ezio/disks/diskimage"
	"ezio/disks/disktest"
	"ezio/disks/table"
	"ezio/engine"
	"ezio/engine/server"
	"ezio/partclone/capture"

	"github.com/anacrolix/torrent/metainfo"
)

// dkPart is one partition of a test disk.
type dkPart struct {
	size  string // sfdisk size ("64MiB"), "" for the rest
	typ   string // sfdisk type
	fs    string // a key of dkFilesystems, "swap", "" for none
	files map[string][]byte
}

// dkFS makes one filesystem with files and reads them back, without
// mounting where the kernel has no driver.
type dkFS struct {
	name  string
	tools []string // program:package
	mkfs  func(t *testing.T, node string, files map[string][]byte)
	read  func(t *testing.T, node, name string) []byte // nil: compare the partition's bytes
}

func dkFilesDir(t *testing.T, files map[string][]byte) string {
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func dkMountCopy(t *testing.T, node string, files map[string][]byte) {
	mnt, umount := capMount(t, node)
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(mnt, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	umount()
}

func dkMountRead(t *testing.T, node, name string) []byte {
	mnt, umount := capMount(t, node, "-o", "ro")
	defer umount()
	b, err := os.ReadFile(filepath.Join(mnt, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func dkOut(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return out
}

func dkRunEnv(t *testing.T, env []string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func dkExt(kind string) dkFS {
	return dkFS{name: kind, tools: []string{"mkfs." + kind + ":e2fsprogs", "debugfs:e2fsprogs"},
		mkfs: func(t *testing.T, node string, files map[string][]byte) {
			disktest.Run(t, "mkfs."+kind, "-q", "-F", "-d", dkFilesDir(t, files), node)
		},
		read: func(t *testing.T, node, name string) []byte { return dkOut(t, "debugfs", "-R", "cat /"+name, node) }}
}

func dkFAT(bits string) dkFS {
	return dkFS{name: "fat" + bits, tools: []string{"mkfs.vfat:dosfstools", "mcopy:mtools"},
		mkfs: func(t *testing.T, node string, files map[string][]byte) {
			disktest.Run(t, "mkfs.vfat", "-F", bits, node)
			dir := dkFilesDir(t, files)
			for name := range files {
				dkRunEnv(t, []string{"MTOOLS_SKIP_CHECK=1"}, "mcopy", "-i", node, filepath.Join(dir, name), "::/"+name)
			}
		},
		read: func(t *testing.T, node, name string) []byte { return dkOut(t, "mtype", "-i", node, "::/"+name) }}
}

var dkNTFS = dkFS{name: "ntfs", tools: []string{"mkfs.ntfs:ntfs-3g", "ntfscp:ntfs-3g", "ntfscat:ntfs-3g", "ntfsfix:ntfs-3g"},
	mkfs: func(t *testing.T, node string, files map[string][]byte) {
		disktest.Run(t, "mkfs.ntfs", "-Q", "-q", "-F", node)
		dir := dkFilesDir(t, files)
		for name := range files {
			disktest.Run(t, "ntfscp", "-f", node, filepath.Join(dir, name), "/"+name)
		}
	},
	read: func(t *testing.T, node, name string) []byte { return dkOut(t, "ntfscat", node, "/"+name) }}

// dkFilesystems are the filesystems the table-driven test covers: every
// one Debian's partclone and mkfs tools make here (hfsplus is not: this
// archive has no hfsprogs).
var dkFilesystems = map[string]dkFS{
	"ext2": dkExt("ext2"), "ext3": dkExt("ext3"), "ext4": dkExt("ext4"),
	"fat16": dkFAT("16"), "fat32": dkFAT("32"),
	"ntfs": dkNTFS,
	"xfs": {name: "xfs", tools: []string{"mkfs.xfs:xfsprogs", "xfs_repair:xfsprogs"},
		mkfs: func(t *testing.T, node string, files map[string][]byte) {
			// QA_CHECK_FS lets mkfs.xfs make a volume under its 300 MB floor.
			dkRunEnv(t, []string{"QA_CHECK_FS=1", "TEST_DEV=1", "TEST_DIR=1"}, "mkfs.xfs", "-q", "-f", node)
			dkMountCopy(t, node, files)
		},
		read: dkMountRead},
	"btrfs": {name: "btrfs", tools: []string{"mkfs.btrfs:btrfs-progs", "btrfs:btrfs-progs"},
		mkfs: func(t *testing.T, node string, files map[string][]byte) {
			disktest.Run(t, "mkfs.btrfs", "-q", "-f", "--rootdir", dkFilesDir(t, files), node)
		},
		read: dkMountRead},
	"f2fs": {name: "f2fs", tools: []string{"mkfs.f2fs:f2fs-tools", "sload.f2fs:f2fs-tools", "fsck.f2fs:f2fs-tools"},
		mkfs: func(t *testing.T, node string, files map[string][]byte) {
			disktest.Run(t, "mkfs.f2fs", "-q", "-f", node)
			disktest.Run(t, "sload.f2fs", "-f", dkFilesDir(t, files), node)
		}},
	"exfat": {name: "exfat", tools: []string{"mkfs.exfat:exfatprogs", "fsck.exfat:exfatprogs"},
		mkfs: func(t *testing.T, node string, _ map[string][]byte) { disktest.Run(t, "mkfs.exfat", node) }},
	// No filesystem (as a BIOS boot partition): partclone.dd, every block.
	"none": {name: "none",
		mkfs: func(t *testing.T, node string, _ map[string][]byte) {
			if err := table.WriteAt(node, 0, dkRandom(11, 3<<20+512)); err != nil {
				t.Fatal(err)
			}
		}},
	"minix": {name: "minix", tools: []string{"mkfs.minix:util-linux", "fsck.minix:util-linux"},
		mkfs: func(t *testing.T, node string, _ map[string][]byte) { disktest.Run(t, "mkfs.minix", node) }},
}

// dkNeed skips (fails in CI) without root or the tools of a disk test.
func dkNeed(t *testing.T, tools ...string) {
	t.Helper()
	capNeed(t, true, append([]string{"sfdisk:fdisk", "sgdisk:gdisk", "partx:util-linux", "mkswap:util-linux", "partclone.extfs:partclone"}, tools...)...)
}

// dkDisk makes a loop disk of size bytes with the partitions given, makes
// their filesystems and files, and returns the disk and its partition
// nodes. The nodes are removed (partx -d) before the disk is detached.
func dkDisk(t *testing.T, size int64, label string, parts []dkPart) (string, []string) {
	t.Helper()
	var script strings.Builder
	fmt.Fprintf(&script, "label: %s\n", label)
	for i, p := range parts {
		line := ""
		if i == 0 {
			line = "start=2048, "
		}
		if p.size != "" {
			line += "size=" + p.size + ", "
		}
		line += "type=" + p.typ
		script.WriteString(line + "\n")
	}
	dev := disktest.PartitionedLoop(t, size, script.String())
	tb, err := table.Dump(context.Background(), dev)
	if err != nil {
		t.Fatal(err)
	}
	nodes := make([]string, len(tb.Partitions))
	for i, tp := range tb.Partitions {
		node, err := table.PartitionNode(dev, tp.Number)
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = node
		if i >= len(parts) {
			continue // the logical partitions of an extended one follow
		}
	}
	// Partitions in parts are matched by order of the table's numbering.
	for i, p := range parts {
		if i >= len(nodes) {
			break
		}
		switch p.fs {
		case "":
		case "swap":
			disktest.Run(t, "mkswap", "-L", "ezioswap", nodes[i])
		default:
			dkFilesystems[p.fs].mkfs(t, nodes[i], p.files)
		}
	}
	return dev, nodes
}

// dkBlank is a blank loop disk of size bytes (nodes removed at the end).
func dkBlank(t *testing.T, size int64) string {
	dev := disktest.NewLoop(t, size, nil)
	t.Cleanup(func() { exec.Command("partx", "-d", dev).Run() })
	return dev
}

// dkCaptureDisk runs `ezio capture DISK OUTDIR --name NAME`.
func dkCaptureDisk(t *testing.T, dev, out, name string) string {
	t.Helper()
	code, stdout, stderr, err := capCLI(t, "capture", dev, out, "--name", name)
	if code != 0 {
		t.Fatalf("ezio capture %s: status %d, %v\n%s\n%s", dev, code, err, stdout, stderr)
	}
	// A whole disk's torrents have 4 MiB pieces, hashed again after
	// partclone (a phase of its own in the progress).
	torrents, _ := filepath.Glob(filepath.Join(out, name, "*.torrent"))
	for _, tf := range torrents {
		mi, err := metainfo.LoadFromFile(tf)
		if err != nil {
			t.Fatal(err)
		}
		if info, err := mi.UnmarshalInfo(); err != nil || info.PieceLength != capture.DiskPieceLength {
			t.Errorf("%s: piece length %d (%v), want %d", tf, info.PieceLength, err, capture.DiskPieceLength)
		}
	}
	if len(torrents) == 0 || !strings.Contains(stdout, "hashing ") {
		t.Errorf("capture made %d torrents; its output shows no hashing phase:\n%s", len(torrents), stdout)
	}
	return filepath.Join(out, name)
}

// dkImage makes a disk of size bytes with a label table of parts, captures
// it as name and loads the image's manifest; src is the source disk, dir
// the image directory.
func dkImage(t *testing.T, size int64, label string, parts []dkPart, name string) (src, dir string, m *diskimage.Manifest) {
	t.Helper()
	src, _ = dkDisk(t, size, label, parts)
	dir = dkCaptureDisk(t, src, t.TempDir(), name)
	m, err := diskimage.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return src, dir, m
}

// dkSeed serves the image directory over loopback and returns the seed
// jobs' peer addresses.
func dkSeed(t *testing.T, dir string) dkSwarm {
	t.Helper()
	tu := engine.Tuning{ListenAddr: "127.0.0.1:0"}
	seed, err := SeedDiskImage(context.Background(), dir, DiskSeedOptions{TrackerListen: fmt.Sprintf("127.0.0.1:%d", disktest.FreePort(t)), Tuning: tu, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("seeding %s: %v", dir, err)
	}
	t.Cleanup(seed.Stop)
	var peers []string
	for _, j := range seed.Jobs {
		peers = append(peers, j.PeerAddr())
	}
	return dkSwarm{peers: peers, trackers: []string{seed.Server.AnnounceURL()}}
}

// dkSwarm is where clients find a seeded image: the seed jobs, and the
// tracker through which they also find each other.
type dkSwarm struct{ peers, trackers []string }

// dkDeployFrom deploys the image directory onto target with the command
// line's disk function, from peers.
func dkDeployFrom(t *testing.T, dir, target string, sw dkSwarm) (*diskimage.Report, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	tu := engine.Tuning{ListenAddr: "127.0.0.1:0"}
	var out, errb capBuffer
	a := &App{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb}
	rep, err := a.DeployDiskImage(ctx, os.DirFS(dir), target, true, DiskDeployOptions{Peers: sw.peers, Seeders: sw.peers, Trackers: sw.trackers, Yes: true, Tuning: tu, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, fmt.Errorf("deploying %s onto %s: %w\n%s", dir, target, err, capTail(out.String()))
	}
	if !strings.Contains(out.String(), `"result":"ok"`) || !strings.Contains(out.String(), `"partitions":[{"number":1`) {
		return nil, fmt.Errorf("no ok result line with partitions:\n%s", capTail(out.String()))
	}
	return rep, nil
}

// dkDeploy seeds the image directory and deploys it onto target.
func dkDeploy(t *testing.T, dir, target string) *diskimage.Report {
	t.Helper()
	rep, err := dkDeployFrom(t, dir, target, dkSeed(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// dkDump is `sfdisk --dump` with the device's name replaced by DISK, and
// without last-lba when lastLBA is false.
func dkDump(t *testing.T, dev string, lastLBA bool) string {
	t.Helper()
	out := disktest.Run(t, "sfdisk", "--dump", dev)
	var b strings.Builder
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "device:") || (!lastLBA && strings.HasPrefix(line, "last-lba:")) {
			continue
		}
		b.WriteString(strings.ReplaceAll(line, dev, "DISK") + "\n")
	}
	return b.String()
}

func dkSgdiskClean(t *testing.T, dev string) {
	t.Helper()
	out, err := exec.Command("sgdisk", "-v", dev).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No problems found") {
		t.Errorf("sgdisk -v %s: %v\n%s", dev, err, out)
	}
}

// dkCheckReport asserts every partition with a checker passed it.
func dkCheckReport(t *testing.T, rep *diskimage.Report, wantChecked int) {
	t.Helper()
	checked := 0
	for _, p := range rep.Partitions {
		if p.Fsck != nil {
			checked++
			if !p.Fsck.OK {
				t.Errorf("partition %d (%s): %s failed:\n%s", p.Number, p.Filesystem, p.Fsck.Tool, p.Fsck.Output)
			}
		}
	}
	if checked != wantChecked {
		t.Errorf("%d partitions checked, want %d: %+v", checked, wantChecked, rep.Partitions)
	}
}

func dkNTFSClean(t *testing.T, node string) {
	t.Helper()
	out, err := exec.Command("ntfsfix", "-n", node).CombinedOutput()
	if err != nil || bytes.Contains(out, []byte("BAD")) {
		t.Errorf("ntfsfix -n %s: %v\n%s", node, err, out)
	}
}

func dkRandom(seed uint64, n int64) []byte {
	b, _ := io.ReadAll(capRandom(seed, n))
	return b
}

func dkGPTParts() []dkPart {
	return []dkPart{
		{size: "64MiB", typ: "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", fs: "fat32", files: map[string][]byte{"boot.efi": dkRandom(1, 300<<10), "grub.cfg": []byte("menuentry ezio {}\n")}},
		{size: "96MiB", typ: "0FC63DAF-8483-4772-8E79-3D69E4C47D47", fs: "ext4", files: map[string][]byte{"big.bin": dkRandom(2, 3<<20+123), "etc.txt": []byte("hello ext4\n")}},
		{typ: "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", fs: "ntfs", files: map[string][]byte{"win.bin": dkRandom(3, 1<<20+7), "readme.txt": []byte("hello ntfs\n")}},
	}
}

// dkCheckFiles compares every file of parts on the deployed disk.
func dkCheckFiles(t *testing.T, target string, parts []dkPart) {
	t.Helper()
	for i, p := range parts {
		fsys, ok := dkFilesystems[p.fs]
		if !ok || fsys.read == nil {
			continue
		}
		node, err := table.PartitionNode(target, i+1)
		if err != nil {
			t.Fatal(err)
		}
		for name, want := range p.files {
			if got := fsys.read(t, node, name); !bytes.Equal(got, want) {
				t.Errorf("partition %d (%s) file %s: %d bytes differ from the %d written", i+1, p.fs, name, len(got), len(want))
			}
		}
	}
}

const dkGPTSize = 256 << 20

// TestDiskCaptureDeployGPT: a GPT disk (ESP FAT32, ext4, NTFS) captured
// whole, seeded, deployed onto a blank disk of the same size and one 25 %
// larger: the same table (sgdisk -v clean), every fsck clean, every file.
func TestDiskCaptureDeployGPT(t *testing.T) {
	dkNeed(t, "mkfs.vfat:dosfstools", "mcopy:mtools", "mkfs.ntfs:ntfs-3g", "ntfscp:ntfs-3g", "debugfs:e2fsprogs")
	parts := dkGPTParts()
	src, dir, m := dkImage(t, dkGPTSize, "gpt", parts, "gptdisk")
	for _, f := range []string{"disk", "parts", m.PartitionTable, m.MBR, m.GPTBackup} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("image lacks %s: %v", f, err)
		}
	}
	for _, size := range []int64{dkGPTSize, dkGPTSize * 5 / 4} {
		t.Run(fmt.Sprintf("%dMiB", size>>20), func(t *testing.T) {
			target := dkBlank(t, size)
			rep := dkDeploy(t, dir, target)
			same := size == dkGPTSize
			if got, want := dkDump(t, target, same), dkDump(t, src, same); got != want {
				t.Errorf("sfdisk --dump of the target:\n%s\nwant (the source's):\n%s", got, want)
			}
			dkSgdiskClean(t, target)
			dkCheckReport(t, rep, 3)
			if rep.Partitions[2].Done != "NTFS alternate boot sector restored" {
				t.Errorf("NTFS partition report: %+v", rep.Partitions[2])
			}
			node, _ := table.PartitionNode(target, 3)
			dkNTFSClean(t, node)
			dkCheckFiles(t, target, parts)
		})
	}
}

// TestDiskImportClonezilla: the same disk saved by Clonezilla's ocs-sr
// savedisk (zstd and gzip, split into 1 MB pieces), ezio import, seed,
// deploy: the same checks.
func TestDiskImportClonezilla(t *testing.T) {
	dkNeed(t, "ocs-sr:clonezilla", "parted:parted", "zstd:zstd", "pigz:pigz", "mkfs.vfat:dosfstools", "mcopy:mtools", "mkfs.ntfs:ntfs-3g", "debugfs:e2fsprogs")
	parts := dkGPTParts()
	src, _ := dkDisk(t, dkGPTSize, "gpt", parts)
	for _, z := range []struct{ name, opt string }{{"zstd", "-z9p"}, {"gzip", "-z1p"}} {
		t.Run(z.name, func(t *testing.T) {
			root := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			// ocs-sr keeps its device caches in one place for the whole
			// machine (/tmp/ocs-cache): two at once (this test in two
			// runs of the suite) hung here, so they take turns.
			cmd := exec.CommandContext(ctx, "flock", filepath.Join(os.TempDir(), "ezio-test-ocs-sr.lock"),
				"ocs-sr", "-b", "-nogui", "--ocsroot", root, "-q2", "-j2", z.opt, "-i", "1", "-sfsck", "-senc", "-scs", "-p", "true", "savedisk", "IMG", filepath.Base(src))
			cmd.Env = append(os.Environ(), "TERM=xterm")
			cmd.Stdin = strings.NewReader("")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("ocs-sr savedisk: %v\n%s", err, capTail(string(out)))
			}
			pieces, _ := filepath.Glob(filepath.Join(root, "IMG", "*-ptcl-img.*.ab"))
			if len(pieces) == 0 {
				t.Errorf("ocs-sr split no image into pieces")
			}
			out := t.TempDir()
			code, stdout, stderr, err := capCLI(t, "import", filepath.Join(root, "IMG"), out, "--name", "imported", "--json")
			if code != 0 {
				t.Fatalf("ezio import: %d %v\n%s\n%s", code, err, capTail(stdout), stderr)
			}
			if !strings.Contains(stdout, `"overall_percent"`) {
				t.Errorf("no progress lines from import:\n%s", capTail(stdout))
			}
			target := dkBlank(t, dkGPTSize)
			rep := dkDeploy(t, filepath.Join(out, "imported"), target)
			if got, want := dkDump(t, target, true), dkDump(t, src, true); got != want {
				t.Errorf("sfdisk --dump of the target:\n%s\nwant:\n%s", got, want)
			}
			dkSgdiskClean(t, target)
			dkCheckReport(t, rep, 3)
			node, _ := table.PartitionNode(target, 3)
			dkNTFSClean(t, node)
			dkCheckFiles(t, target, parts)
		})
	}
}

// TestDiskMBRGapSwapExtended: an MBR disk with data in the gap after the
// MBR (as BIOS GRUB leaves it), boot code, a swap partition and an
// extended partition with a logical one: gap and boot code identical,
// swap UUID and label equal, the logical partition's files intact.
func TestDiskMBRGapSwapExtended(t *testing.T) {
	dkNeed(t, "debugfs:e2fsprogs")
	files := map[string][]byte{"kernel": dkRandom(5, 2<<20), "cfg": []byte("root=/dev/sda1\n")}
	logical := map[string][]byte{"data": dkRandom(6, 700<<10)}
	src, nodes := dkDisk(t, 96<<20, "dos", []dkPart{
		{size: "40MiB", typ: "83", fs: "ext4", files: files},
		{size: "16MiB", typ: "82", fs: "swap"},
		{typ: "5"},
	})
	// A logical partition inside the extended one.
	cmd := exec.Command("sfdisk", "-q", "--no-reread", "--no-tell-kernel", "-a", src)
	cmd.Stdin = strings.NewReader("type=83\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk -a: %v %s", err, out)
	}
	disktest.Run(t, "partx", "-d", src)
	disktest.Run(t, "partx", "-a", src)
	logicalNode, err := table.PartitionNode(src, 5)
	if err != nil {
		t.Fatal(err)
	}
	dkFilesystems["ext2"].mkfs(t, logicalNode, logical)
	_ = nodes
	gap := dkRandom(7, 2047*512)
	if err := table.WriteAt(src, 512, gap); err != nil {
		t.Fatal(err)
	}
	bootCode := dkRandom(8, 440)
	if err := table.WriteAt(src, 0, bootCode); err != nil {
		t.Fatal(err)
	}
	swapNode, _ := table.PartitionNode(src, 2)
	wantUUID := disktest.Run(t, "blkid", "-p", "-o", "value", "-s", "UUID", swapNode)

	dir := dkCaptureDisk(t, src, t.TempDir(), "mbrdisk")
	if _, err := os.Stat(filepath.Join(dir, filepath.Base(src)+"-hidden-data-after-mbr")); err != nil {
		t.Fatal(err)
	}
	target := dkBlank(t, 96<<20)
	rep := dkDeploy(t, dir, target)
	if got, want := dkDump(t, target, true), dkDump(t, src, true); got != want {
		t.Errorf("sfdisk --dump of the target:\n%s\nwant:\n%s", got, want)
	}
	head, err := table.ReadAt(target, 0, 2048*512)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(head[:440], bootCode) {
		t.Error("boot code in the MBR differs")
	}
	if !bytes.Equal(head[512:], gap) {
		t.Error("the gap after the MBR differs")
	}
	tSwap, _ := table.PartitionNode(target, 2)
	if got := disktest.Run(t, "blkid", "-p", "-o", "value", "-s", "UUID", tSwap); got != wantUUID {
		t.Errorf("swap UUID %q, want %q", got, wantUUID)
	}
	if got := disktest.Run(t, "blkid", "-p", "-o", "value", "-s", "LABEL", tSwap); got != "ezioswap" {
		t.Errorf("swap label %q", got)
	}
	dkCheckReport(t, rep, 2)
	tLogical, err := table.PartitionNode(target, 5)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range logical {
		if got := dkFilesystems["ext2"].read(t, tLogical, name); !bytes.Equal(got, want) {
			t.Errorf("logical partition file %s differs", name)
		}
	}
	dkCheckFiles(t, target, []dkPart{{fs: "ext4", files: files}})
}

// TestDiskFilesystems: capture → deploy → fsck → files (or, where no
// tool reads files without a kernel driver, the partition's bytes) for
// each filesystem, one partition on a small GPT disk.
func TestDiskFilesystems(t *testing.T) {
	dkNeed(t)
	sizes := map[string]int64{"btrfs": 160 << 20, "xfs": 320 << 20, "f2fs": 128 << 20} // partclone.f2fs needs 100 MiB
	for _, name := range []string{"ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "exfat", "fat16", "fat32", "ntfs", "minix", "none"} {
		fsys := dkFilesystems[name]
		t.Run(name, func(t *testing.T) {
			capNeed(t, false, fsys.tools...)
			size := sizes[name]
			if size == 0 {
				size = 72 << 20
			}
			files := map[string][]byte{"a.bin": dkRandom(9, 1<<20+5), "b.txt": []byte("ezio " + name + "\n")}
			parts := []dkPart{{typ: "0FC63DAF-8483-4772-8E79-3D69E4C47D47", fs: name, files: files}}
			src, nodes := dkDisk(t, size, "gpt", parts)
			dir := dkCaptureDisk(t, src, t.TempDir(), "fs-"+name)
			m, _ := diskimage.LoadDir(dir)
			want := diskimage.SavedPartclone
			if name == "none" {
				want = diskimage.SavedDD
			}
			if m.Partitions[0].Saved != want {
				t.Errorf("saved %q by %s, want %s", m.Partitions[0].Saved, m.Partitions[0].Program, want)
			}
			target := dkBlank(t, size)
			rep := dkDeploy(t, dir, target)
			dkCheckReport(t, rep, map[bool]int{true: 0, false: 1}[name == "none"])
			if fsys.read != nil {
				dkCheckFiles(t, target, parts)
				return
			}
			node, _ := table.PartitionNode(target, 1)
			if disktest.Sum(t, node) != disktest.Sum(t, nodes[0]) {
				t.Errorf("the deployed partition's bytes differ from the source's")
			}
		})
	}
}

// dkRefusal asserts err is a refusal of kind and that target is unchanged.
func dkRefusal(t *testing.T, err error, kind disks.Refusal, target string, before [32]byte, words ...string) {
	t.Helper()
	var re *disks.RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("got %v, want a refusal (%s)", err, kind)
	}
	if re.Kind != kind {
		t.Errorf("refusal kind %q, want %q: %v", re.Kind, kind, err)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("refusal does not say %q: %v", w, err)
		}
	}
	if disktest.Sum(t, target) != before {
		t.Errorf("%s changed", target)
	}
}

// TestDiskRefusals: a disk image onto a disk with a mounted partition, onto
// a disk too small, onto a partition; a partition image onto a partitioned
// disk; a capture of a disk with a mounted partition. Nothing is written.
func TestDiskRefusals(t *testing.T) {
	dkNeed(t, "debugfs:e2fsprogs")
	parts := []dkPart{
		{size: "24MiB", typ: "0FC63DAF-8483-4772-8E79-3D69E4C47D47", fs: "ext4", files: map[string][]byte{"x": []byte("x\n")}},
		{typ: "0FC63DAF-8483-4772-8E79-3D69E4C47D47", fs: "ext2", files: map[string][]byte{"y": []byte("y\n")}},
	}
	_, dir, m := dkImage(t, 48<<20, "gpt", parts, "small")
	ctx := context.Background()
	var out capBuffer
	a := &App{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out}

	t.Run("mounted partition of the target", func(t *testing.T) {
		target, nodes := dkDisk(t, 48<<20, "gpt", parts)
		mnt, umount := capMount(t, nodes[1])
		_, err := a.DeployDiskImage(ctx, os.DirFS(dir), target, false, DiskDeployOptions{Yes: true})
		umount()
		var ee *ExitError
		if !errors.As(err, &ee) || ee.Code != ExitRefused || !strings.Contains(err.Error(), mnt) {
			t.Fatalf("got %v, want a refusal naming %s", err, mnt)
		}
		before := disktest.Sum(t, target)
		_, err = diskimage.PrepareDeploy(ctx, m, os.DirFS(dir), target)
		if err != nil {
			t.Fatalf("after umount: %v", err)
		}
		if disktest.Sum(t, target) != before {
			t.Error("PrepareDeploy wrote")
		}
	})
	t.Run("target too small", func(t *testing.T) {
		target := dkBlank(t, 40<<20)
		before := disktest.Sum(t, target)
		_, err := diskimage.PrepareDeploy(ctx, m, os.DirFS(dir), target)
		dkRefusal(t, err, disks.RefusedTooSmall, target, before)
	})
	t.Run("a partition as target", func(t *testing.T) {
		_, nodes := dkDisk(t, 48<<20, "gpt", parts)
		before := disktest.Sum(t, nodes[0])
		_, err := diskimage.PrepareDeploy(ctx, m, os.DirFS(dir), nodes[0])
		dkRefusal(t, err, diskimage.RefusedNotDisk, nodes[0], before, "whole disk")
	})
	t.Run("partition image onto a partitioned disk", func(t *testing.T) {
		target, _ := dkDisk(t, 48<<20, "gpt", parts)
		before := disktest.Sum(t, target)
		err := diskimage.CheckPartitionImageTarget(ctx, target, 10<<20, "ext4")
		want := fmt.Sprintf("Write it to partition 1 instead: %sp1", target)
		dkRefusal(t, err, diskimage.RefusedPartitioned, target, before, "GPT partition table", "1 (24.0 MiB, ext4", "2 (", "ext2", want)
		// A partition of it is fine, and so is a disk without a table.
		if err := diskimage.CheckPartitionImageTarget(ctx, target+"p1", 10<<20, "ext4"); err != nil {
			t.Errorf("partition target refused: %v", err)
		}
		if err := diskimage.CheckPartitionImageTarget(ctx, dkBlank(t, 8<<20), 4<<20, ""); err != nil {
			t.Errorf("blank disk refused: %v", err)
		}
	})
	t.Run("capture with a mounted partition", func(t *testing.T) {
		disk, nodes := dkDisk(t, 48<<20, "gpt", parts)
		mnt, _ := capMount(t, nodes[0])
		code, stdout, stderr, err := capCLI(t, "capture", disk, t.TempDir(), "--name", "m")
		if code != ExitRefused || !strings.Contains(fmt.Sprint(err), mnt) {
			t.Errorf("capture of a disk with %s mounted: status %d, %v %s %s", mnt, code, err, stdout, stderr)
		}
	})
}

// TestDiskThreeClients: three clients deploy one disk image at once from
// one seeder (and each other): the three disks are byte-identical, with
// every file intact.
func TestDiskThreeClients(t *testing.T) {
	dkNeed(t, "mkfs.vfat:dosfstools", "mcopy:mtools", "mkfs.ntfs:ntfs-3g", "ntfscp:ntfs-3g", "debugfs:e2fsprogs")
	parts := dkGPTParts()
	src, _ := dkDisk(t, dkGPTSize, "gpt", parts)
	dir := dkCaptureDisk(t, src, t.TempDir(), "three")
	sw := dkSeed(t, dir)
	targets := []string{dkBlank(t, dkGPTSize), dkBlank(t, dkGPTSize), dkBlank(t, dkGPTSize)}
	errs := make(chan error, len(targets))
	for _, target := range targets {
		go func() {
			_, err := dkDeployFrom(t, dir, target, sw)
			errs <- err
		}()
	}
	for range targets {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if t.Failed() {
		return
	}
	want := disktest.Sum(t, targets[0])
	for _, target := range targets[1:] {
		if disktest.Sum(t, target) != want {
			t.Errorf("%s differs from %s", target, targets[0])
		}
	}
	dkCheckFiles(t, targets[2], parts)
}

// TestDiskDeployOverHTTP: the image's files (manifest, table, torrents)
// read from an HTTP server at /images/NAME, as from a seeder.
func TestDiskDeployOverHTTP(t *testing.T) {
	dkNeed(t, "debugfs:e2fsprogs")
	files := map[string][]byte{"f": dkRandom(12, 500<<10)}
	parts := []dkPart{{typ: "83", fs: "ext4", files: files}}
	src, _ := dkDisk(t, 32<<20, "dos", parts)
	dir := dkCaptureDisk(t, src, t.TempDir(), "web")
	srv := httptest.NewServer(http.StripPrefix("/images/web/", http.FileServer(http.Dir(dir))))
	defer srv.Close()
	url := srv.URL + "/images/web"
	if !IsDiskImageSource(context.Background(), url) || !IsDiskImageSource(context.Background(), dir) || IsDiskImageSource(context.Background(), t.TempDir()) {
		t.Error("IsDiskImageSource")
	}
	sw := dkSeed(t, dir)
	target := dkBlank(t, 32<<20)
	var out capBuffer
	a := &App{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out, Tuning: engine.Tuning{ListenAddr: "127.0.0.1:0"}, LogFile: filepath.Join(t.TempDir(), "log")}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := a.DeployDiskCommand(ctx, url, target, true, DiskDeployOptions{Peers: sw.peers, Seeders: sw.peers, Yes: true}); err != nil {
		t.Fatalf("%v\n%s", err, capTail(out.String()))
	}
	if got, want := dkDump(t, target, true), dkDump(t, src, true); got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
	dkCheckFiles(t, target, parts)
}

// TestDiskSeedServesImageToURLDeploy: the contract path end to end: a
// disk image served by the real image server (one session for every
// partition), /images.json saying it is a disk with its partitions, and
// `ezio deploy http://SEEDER/images/NAME DISK` reading everything from
// the server alone (no peer given).
func TestDiskSeedServesImageToURLDeploy(t *testing.T) {
	dkNeed(t, "debugfs:e2fsprogs")
	files := map[string][]byte{"f": dkRandom(13, 700<<10)}
	parts := []dkPart{{typ: "83", size: "20MiB", fs: "ext4", files: files}, {typ: "83", fs: "ext4", files: map[string][]byte{"g": dkRandom(14, 300<<10)}}}
	src, _ := dkDisk(t, 48<<20, "dos", parts)
	dir := dkCaptureDisk(t, src, t.TempDir(), "room")
	seed, err := SeedDiskImage(context.Background(), dir, DiskSeedOptions{TrackerListen: fmt.Sprintf("127.0.0.1:%d", disktest.FreePort(t)), Tuning: engine.Tuning{ListenAddr: "127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(seed.Stop)
	if len(seed.Jobs) != 2 || seed.Jobs[0].PeerAddr() != seed.Jobs[1].PeerAddr() {
		t.Fatalf("the partitions are not served by one client: %d jobs", len(seed.Jobs))
	}
	es, err := engine.ListImages(context.Background(), seed.Server.BaseURL())
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].Name != "room" || es[0].Kind != server.KindDisk || len(es[0].Partitions) != 2 {
		t.Fatalf("/images.json: %+v", es)
	}
	url := seed.Server.BaseURL() + "/images/room"
	if !IsDiskImageSource(context.Background(), url) {
		t.Fatal("the served disk image is not recognised")
	}
	target := dkBlank(t, 48<<20)
	code, out, errOut, err := capCLI(t, "deploy", url, target, "--yes", "--json", "--listen", "127.0.0.1:0")
	if code != 0 {
		t.Fatalf("exit %d: %v\n%s\n%s", code, err, capTail(out), capTail(errOut))
	}
	if got, want := dkDump(t, target, true), dkDump(t, src, true); got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
	dkCheckFiles(t, target, parts)
}
