package table

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ReadAt reads n bytes at off of a device or file.
func ReadAt(dev string, off int64, n int) ([]byte, error) {
	f, err := os.Open(dev)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("reading %d bytes at %d of %s: %w", n, off, dev, err)
	}
	return b, nil
}

// WriteAt writes data at off of a device or file and flushes it.
func WriteAt(dev string, off int64, data []byte) error {
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(data, off)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %d bytes at %d of %s: %w", len(data), off, dev, err)
	}
	return nil
}

// Boot areas a disk capture saves beside its table, under Clonezilla's
// names.
type BootAreas struct {
	MBR    []byte // the first sector: <disk>-mbr
	Hidden []byte // MBR disks: sectors 1 .. first partition - 1, <disk>-hidden-data-after-mbr
	GPT    []byte // GPT disks: sgdisk --backup, <disk>-gpt.gdisk
}

// MaxHidden caps the gap saved after the MBR: boot loaders use the first
// MiB; a disk whose first partition starts far later keeps the rest unsaved.
const MaxHidden = 32 << 20

// ReadBootAreas reads the boot areas of dev for its table t.
func ReadBootAreas(ctx context.Context, dev string, t *Table) (*BootAreas, error) {
	var b BootAreas
	var err error
	if b.MBR, err = ReadAt(dev, 0, int(t.SectorSize)); err != nil {
		return nil, err
	}
	switch t.Label {
	case LabelDOS:
		if first := t.FirstStart(); first > 1 {
			n := min((first-1)*t.SectorSize, MaxHidden)
			if b.Hidden, err = ReadAt(dev, t.SectorSize, int(n)); err != nil {
				return nil, err
			}
		}
	case LabelGPT:
		tmp, err := os.MkdirTemp("", "ezio-gpt-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		file := filepath.Join(tmp, "gpt.gdisk")
		if _, stderr, err := run(ctx, nil, "sgdisk", "--backup="+file, dev); err != nil {
			return nil, fmt.Errorf("sgdisk --backup %s: %w: %s", dev, err, stderr)
		}
		if b.GPT, err = os.ReadFile(file); err != nil {
			return nil, err
		}
	}
	return &b, nil
}

// zapTables zeroes an old MBR and GPT (header and a 128-entry table) at
// both ends of the disk.
func zapTables(target string, size, sectorSize int64) error {
	if sectorSize <= 0 {
		sectorSize = 512
	}
	n := 2*sectorSize + 128*128 // MBR, GPT header, its entries
	if size < 2*n {
		return fmt.Errorf("%s holds only %d bytes", target, size)
	}
	zero := make([]byte, n)
	if err := WriteAt(target, 0, zero); err != nil {
		return err
	}
	// the backup: its entries, then its header in the last sector
	return WriteAt(target, size-(n-sectorSize), zero[:n-sectorSize])
}

// Restore writes table t and the boot areas onto the whole disk target,
// whose size is targetSize bytes and whose old table, if any, goes. On a
// GPT disk larger than the source the backup header and table move to the
// new end (sgdisk -e). The kernel is not told: call TellKernel.
func Restore(ctx context.Context, target string, targetSize int64, t *Table, b *BootAreas) error {
	if need := t.Need(); targetSize < need {
		return fmt.Errorf("%s holds %d bytes, the partition table needs %d", target, targetSize, need)
	}
	// The last LBA of the source says where its backup GPT was; on another
	// size of disk it is recomputed.
	sameSize := t.Label != LabelGPT || t.LastLBA == 0 || (t.LastLBA+34)*t.SectorSize == targetSize
	switch {
	case t.Label == LabelGPT && b != nil && len(b.GPT) > 0:
		tmp, err := os.MkdirTemp("", "ezio-gpt-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		file := filepath.Join(tmp, "gpt.gdisk")
		if err := os.WriteFile(file, b.GPT, 0o600); err != nil {
			return err
		}
		// The old table goes first (what sgdisk --zap-all does, without
		// its run: every sgdisk run syncs and sleeps a second, and the
		// clients of a disk deploy wait on it before any data moves).
		if err := zapTables(target, targetSize, t.SectorSize); err != nil {
			return err
		}
		args := []string{"--load-backup=" + file}
		if !sameSize {
			args = append(args, "-e") // in the same run: applied after the load
		}
		if out, stderr, err := run(ctx, nil, "sgdisk", append(args, target)...); err != nil {
			return fmt.Errorf("sgdisk %s %s: %w: %s %s", strings.Join(args, " "), target, err, out, stderr)
		}
	default:
		script := restoreScript(t.Text, sameSize)
		if out, stderr, err := run(ctx, []byte(script), "sfdisk", "--no-reread", "--no-tell-kernel", "--wipe", "always", "--wipe-partitions", "never", "-q", target); err != nil {
			return fmt.Errorf("sfdisk %s: %w: %s %s", target, err, out, stderr)
		}
	}
	if b == nil {
		return nil
	}
	// Boot code, as the source had it; the partition entries and disk
	// signature stay as the table tools wrote them.
	if len(b.MBR) >= 440 && !allZero(b.MBR[:440]) {
		if err := WriteAt(target, 0, b.MBR[:440]); err != nil {
			return err
		}
	}
	if t.Label == LabelDOS && len(b.Hidden) > 0 {
		if max := (t.FirstStart() - 1) * t.SectorSize; int64(len(b.Hidden)) > max {
			return fmt.Errorf("the saved data after the MBR is %d bytes, but the first partition starts at byte %d", len(b.Hidden), max+t.SectorSize)
		}
		if err := WriteAt(target, t.SectorSize, b.Hidden); err != nil {
			return err
		}
	}
	return nil
}

// restoreScript is the dump for sfdisk to write elsewhere: without the
// source's device name, and without its last usable LBA when the disk size
// differs (sfdisk then uses the whole new disk).
func restoreScript(text string, sameSize bool) string {
	var b strings.Builder
	for _, line := range strings.Split(text, "\n") {
		k, _, _ := strings.Cut(strings.TrimSpace(line), ":")
		if k == "device" || (!sameSize && k == "last-lba") {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// TellKernel makes the kernel's partitions of disk match its table, as
// partx does (the BLKPG ioctl): the old ones are removed and the table's
// added. It waits until every partition of t has its device node.
func TellKernel(ctx context.Context, disk string, t *Table) error {
	// A partition that something has open for a moment (udev or a blkid
	// probing new nodes) cannot be deleted: try again for a few seconds.
	for attempt := 1; len(existing(disk)) > 0; attempt++ {
		_, stderr, err := run(ctx, nil, "partx", "-d", disk)
		if err == nil || len(existing(disk)) == 0 {
			break
		}
		if attempt == 15 || ctx.Err() != nil {
			return fmt.Errorf("partx -d %s: %w: %s (is a partition of it open?)", disk, err, stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if t == nil || len(t.Partitions) == 0 {
		return nil
	}
	if _, stderr, err := run(ctx, nil, "partx", "-a", disk); err != nil {
		return fmt.Errorf("partx -a %s: %w: %s", disk, err, stderr)
	}
	for _, p := range t.Partitions {
		if _, err := PartitionNode(disk, p.Number); err != nil {
			return err
		}
	}
	return nil
}

// Forget removes the kernel's partitions of disk (partx -d).
func Forget(ctx context.Context, disk string) error {
	return TellKernel(ctx, disk, nil)
}

// existing lists the partition numbers the kernel knows on disk.
func existing(disk string) map[int]string {
	out := map[int]string{}
	real, err := filepath.EvalSymlinks(disk)
	if err != nil {
		return out
	}
	dir := filepath.Join("/sys/class/block", filepath.Base(real))
	entries, err := os.ReadDir(dir)
	if err != nil {
		return out
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "partition"))
		if err != nil {
			continue
		}
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			out[n] = "/dev/" + e.Name()
		}
	}
	return out
}

// PartitionNode is the device node of partition n of disk, as the kernel
// knows it.
func PartitionNode(disk string, n int) (string, error) {
	node, ok := existing(disk)[n]
	if !ok {
		return "", fmt.Errorf("the kernel knows no partition %d of %s (run partx -a %s)", n, disk, disk)
	}
	var st unix.Stat_t
	if err := unix.Stat(node, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return "", fmt.Errorf("partition %d of %s has no device node %s", n, disk, node)
	}
	return node, nil
}

// Known reports the partitions of disk the kernel has nodes for.
func Known(disk string) map[int]string { return existing(disk) }

// MkSwap recreates swap on node with the given UUID and label.
func MkSwap(ctx context.Context, node, uuid, label string) error {
	args := []string{"-f"}
	if uuid != "" {
		args = append(args, "-U", uuid)
	}
	if label != "" {
		args = append(args, "-L", label)
	}
	args = append(args, node)
	if out, stderr, err := run(ctx, nil, "mkswap", args...); err != nil {
		return fmt.Errorf("mkswap %s: %w: %s %s", node, err, out, stderr)
	}
	return nil
}

// FixNTFSBackupBoot copies an NTFS volume's boot sector to where its
// alternate lives (the sector after the volume's last, normally the
// partition's last sector). partclone leaves that sector out of its image.
// start and size locate the partition on dev in bytes. It reports whether
// it wrote anything: not when the partition holds no NTFS boot sector.
func FixNTFSBackupBoot(dev string, start, size int64) (bool, error) {
	boot, err := ReadAt(dev, start, 512)
	if err != nil {
		return false, err
	}
	if string(boot[3:11]) != "NTFS    " {
		return false, nil
	}
	bps := int64(boot[11]) | int64(boot[12])<<8
	if bps < 256 || bps > 4096 || bps&(bps-1) != 0 {
		return false, fmt.Errorf("NTFS boot sector at byte %d of %s: %d bytes per sector", start, dev, bps)
	}
	var sectors int64
	for i := 7; i >= 0; i-- {
		sectors = sectors<<8 | int64(boot[0x28+i])
	}
	off := sectors * bps
	if off <= 0 || off+bps > size {
		// A volume that fills its partition to the last sector has its
		// alternate at the middle: nothing beyond the image to restore.
		return false, nil
	}
	full, err := ReadAt(dev, start, int(bps))
	if err != nil {
		return false, err
	}
	return true, WriteAt(dev, start+off, full)
}

// ErrNoChecker says no read-only checker is installed for a filesystem.
var ErrNoChecker = errors.New("no checker")

// checkers are the read-only fsck command lines by blkid type.
var checkers = map[string][]string{
	"ext2": {"e2fsck", "-fn"}, "ext3": {"e2fsck", "-fn"}, "ext4": {"e2fsck", "-fn"},
	"xfs":     {"xfs_repair", "-n"},
	"btrfs":   {"btrfs", "check", "--readonly"},
	"f2fs":    {"fsck.f2fs", "-f", "--dry-run"},
	"exfat":   {"fsck.exfat", "-n"},
	"vfat":    {"fsck.vfat", "-n"},
	"ntfs":    {"ntfsfix", "-n"},
	"minix":   {"fsck.minix", "-f"},
	"hfsplus": {"fsck.hfsplus", "-n"},
}

// Check is a read-only fsck of one partition.
type Check struct {
	Tool   string `json:"tool"`             // the command line run
	OK     bool   `json:"ok"`               // exit status 0 and, for ntfsfix, nothing BAD
	Output string `json:"output,omitempty"` // its last lines
}

// Fsck runs the read-only checker for fstype on node. It returns
// ErrNoChecker when there is none for the type or it is not installed.
func Fsck(ctx context.Context, node, fstype string) (*Check, error) {
	argv, ok := checkers[strings.ToLower(fstype)]
	if !ok {
		return nil, fmt.Errorf("%s: %w for %q", node, ErrNoChecker, fstype)
	}
	if _, err := lookPath(argv[0]); err != nil {
		return nil, fmt.Errorf("%s: %w: %s is not installed (Debian package %s)", node, ErrNoChecker, argv[0], packageOf(argv[0]))
	}
	out, stderr, err := run(ctx, nil, argv[0], append(argv[1:], node)...)
	all := strings.TrimSpace(out + "\n" + stderr)
	c := &Check{Tool: strings.Join(append(argv, node), " "), OK: err == nil, Output: lastLines(all, 6)}
	if argv[0] == "ntfsfix" && strings.Contains(all, "BAD") {
		c.OK = false
		c.Output = lastLines(all, 12)
	}
	var exit interface{ ExitCode() int }
	if err != nil && !errors.As(err, &exit) {
		return nil, fmt.Errorf("%s: %w", c.Tool, err)
	}
	return c, nil
}

var lookPath = exec.LookPath

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
