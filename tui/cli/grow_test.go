package cli

// Tests of `ezio deploy --grow` on real loop disks: a master captured,
// deployed onto a disk twice its size, the last partition and its
// filesystem grown, the filesystem's own tool asked for its size.

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"ezio/disks"
	"ezio/disks/diskimage"
	"ezio/disks/disktest"
	"ezio/disks/table"
)

// grResult is the result line of `ezio deploy --json` for a disk.
type grResult struct {
	Type   string            `json:"type"`
	Result string            `json:"result"`
	Report *diskimage.Report `json:"report"`
}

func grDeploy(t *testing.T, args ...string) (int, grResult, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, errb capBuffer
	code, err := capExec(ctx, t, &out, &errb, append([]string{"deploy", "--yes", "--json", "--listen", "127.0.0.1:0"}, args...)...)
	var res grResult
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.Contains(line, `"type":"result"`) {
			if err := json.Unmarshal([]byte(line), &res); err != nil {
				t.Fatalf("result line %s: %v", line, err)
			}
		}
	}
	return code, res, fmt.Sprintf("%v\n%s\n%s", err, capTail(out.String()), capTail(errb.String()))
}

// grFSSize is the filesystem's size in bytes as its own tool reports it.
func grFSSize(t *testing.T, node, fstype string) int64 {
	t.Helper()
	num := func(out, re string) int64 {
		m := regexp.MustCompile(re).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("%q not in:\n%s", re, out)
		}
		n, _ := strconv.ParseInt(m[1], 10, 64)
		return n
	}
	switch fstype {
	case "ext4":
		out := disktest.Run(t, "dumpe2fs", "-h", node)
		return num(out, `Block count:\s+(\d+)`) * num(out, `Block size:\s+(\d+)`)
	case "xfs":
		out := disktest.Run(t, "xfs_db", "-r", "-c", "sb 0", "-c", "p dblocks blocksize", node)
		return num(out, `dblocks = (\d+)`) * num(out, `blocksize = (\d+)`)
	case "btrfs":
		return num(disktest.Run(t, "btrfs", "inspect-internal", "dump-super", node), `(?m)^total_bytes\s+(\d+)`)
	case "ntfs":
		out, _ := exec.Command("ntfsresize", "--info", "--force", "--no-progress-bar", node).CombinedOutput()
		return num(string(out), `Current volume size: (\d+) bytes`)
	}
	t.Fatalf("no size for %s", fstype)
	return 0
}

// TestDiskGrow: a GPT master (a small ext2, then ext4, xfs, btrfs or
// NTFS to the end) deployed with --grow onto a disk twice its size: the
// last partition reaches the end of the disk, its filesystem fills it
// (by the filesystem's own tool), fsck is clean, the files are equal,
// the first partition and the GPT are intact, and the JSON result says
// what grew and to what size. The four forms of the flag are used.
func TestDiskGrow(t *testing.T) {
	dkNeed(t, "debugfs:e2fsprogs", "resize2fs:e2fsprogs", "dumpe2fs:e2fsprogs")
	sizes := map[string]int64{"btrfs": 192 << 20, "xfs": 352 << 20}
	flags := map[string][]string{"ext4": {"--grow"}, "xfs": {"--grow=last"}, "btrfs": {"--grow=2"}, "ntfs": {"--grow", "2"}, "ext4-mbr": {"--grow"}}
	tools := map[string][]string{"xfs": {"xfs_growfs:xfsprogs", "xfs_db:xfsprogs"}, "ntfs": {"ntfsresize:ntfs-3g"}}
	for _, sub := range []string{"ext4", "xfs", "btrfs", "ntfs", "ext4-mbr"} {
		name, label := strings.TrimSuffix(sub, "-mbr"), "gpt"
		if strings.HasSuffix(sub, "-mbr") {
			label = "dos"
		}
		t.Run(sub, func(t *testing.T) {
			capNeed(t, false, append(dkFilesystems[name].tools, tools[name]...)...)
			size := sizes[name]
			if size == 0 {
				size = 64 << 20
			}
			typ := "0FC63DAF-8483-4772-8E79-3D69E4C47D47"
			if label == "dos" {
				typ = "83"
			}
			parts := []dkPart{
				{size: "8MiB", typ: typ, fs: "ext2", files: map[string][]byte{"boot.txt": []byte("first\n")}},
				{typ: typ, fs: name, files: map[string][]byte{"a.bin": dkRandom(21, 1<<20+9), "b.txt": []byte("grow " + name + "\n")}},
			}
			src, _ := dkDisk(t, size, label, parts)
			dir := dkCaptureDisk(t, src, t.TempDir(), "grow-"+name)
			target := dkBlank(t, 2*size)
			code, res, out := grDeploy(t, append([]string{dir, target}, flags[sub]...)...)
			if code != 0 || res.Report == nil {
				t.Fatalf("deploy --grow: exit %d, want 0\n%s", code, out)
			}
			tb, err := table.Dump(context.Background(), target)
			if err != nil {
				t.Fatal(err)
			}
			p1, p2 := tb.Partitions[0], tb.Partitions[1]
			// The end of the table's usable space: sgdisk -e keeps it
			// aligned, up to 1 MiB before the backup GPT.
			// aligned, up to 1 MiB before the backup GPT; MBR: the disk's end.
			end := (p2.Start + p2.Size) * tb.SectorSize
			want := (tb.LastLBA + 1) * tb.SectorSize
			if label == "dos" {
				want = 2 * size
			}
			if end != want || end < 2*size-(1<<20)-34*512 {
				t.Errorf("partition 2 ends at byte %d, want the last usable byte %d, near the disk's end %d", end, want, 2*size)
			}
			if p1.Size*tb.SectorSize != 8<<20 {
				t.Errorf("partition 1 is %d bytes, want the image's 8 MiB", p1.Size*tb.SectorSize)
			}
			if label == "gpt" {
				dkSgdiskClean(t, target)
			}
			node, _ := table.PartitionNode(target, 2)
			partBytes := p2.Size * tb.SectorSize
			fsBytes := grFSSize(t, node, name)
			// A filesystem fills its partition to its block size (xfs and
			// btrfs to a few of them): within 1 MiB.
			if fsBytes > partBytes || partBytes-fsBytes > 1<<20 {
				t.Errorf("%s is %d bytes in a %d-byte partition", name, fsBytes, partBytes)
			}
			rep := res.Report.Partitions[1]
			if rep.Grew == nil || rep.Grew.To != partBytes || rep.Grew.From >= partBytes/3*2 || rep.Grew.FSBytes != fsBytes {
				t.Errorf("the result's partition 2: grew %+v, want to %d bytes (filesystem %d)", rep.Grew, partBytes, fsBytes)
			}
			if res.Report.Partitions[0].Grew != nil {
				t.Errorf("partition 1 grew: %+v", res.Report.Partitions[0].Grew)
			}
			dkCheckReport(t, res.Report, 2)
			c, err := table.Fsck(context.Background(), node, name)
			if err != nil || !c.OK {
				t.Errorf("%s after growing: %v %+v", name, err, c)
			}
			dkCheckFiles(t, target, parts)
		})
	}
}

// TestDiskGrowRefusals: --grow of a FAT partition and of a partition the
// image lacks are refused before anything is written, naming why; a
// target smaller than the image stays refused with the size it needs; a
// target of the image's own size deploys and says nothing grew.
func TestDiskGrowRefusals(t *testing.T) {
	dkNeed(t, "mkfs.vfat:dosfstools", "mcopy:mtools", "debugfs:e2fsprogs")
	parts := []dkPart{
		{size: "40MiB", typ: "0FC63DAF-8483-4772-8E79-3D69E4C47D47", fs: "ext4", files: map[string][]byte{"x": []byte("x\n")}},
		{typ: "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", fs: "fat32", files: map[string][]byte{"y": []byte("y\n")}},
	}
	_, dir, m := dkImage(t, 80<<20, "gpt", parts, "nogrow")
	need := m.End() + 33*512 // and the backup GPT
	for _, c := range []struct {
		name  string
		size  int64
		args  []string
		words []string
	}{
		{"FAT", 160 << 20, []string{"--grow"}, []string{"partition 2", "FAT, which is not grown"}},
		{"no such partition", 160 << 20, []string{"--grow=7"}, []string{`no partition "7"`, "1 (", "2 ("}},
		{"too small", 60 << 20, []string{"--grow"}, []string{fmt.Sprintf("needs %s (%d bytes)", disks.HumanBytes(need), need)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			target := dkBlank(t, c.size)
			before := disktest.Sum(t, target)
			code, _, out := grDeploy(t, append([]string{dir, target}, c.args...)...)
			if code != ExitRefused {
				t.Fatalf("exit %d, want %d\n%s", code, ExitRefused, out)
			}
			for _, w := range c.words {
				if !strings.Contains(out, w) {
					t.Errorf("the refusal does not say %q:\n%s", w, out)
				}
			}
			if disktest.Sum(t, target) != before {
				t.Errorf("%s was written", target)
			}
		})
	}
	t.Run("same size", func(t *testing.T) {
		target := dkBlank(t, 80<<20)
		code, res, out := grDeploy(t, dir, target, "--grow=1")
		if code != 0 || res.Report == nil {
			t.Fatalf("exit %d, want 0\n%s", code, out)
		}
		g := res.Report.Partitions[0].Grew
		if g == nil || g.To != g.From || !strings.Contains(g.Note, "no free space") {
			t.Errorf("partition 1 grew %+v, want nothing, said", g)
		}
		dkCheckFiles(t, target, parts)
	})
}
