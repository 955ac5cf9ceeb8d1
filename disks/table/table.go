// Package table reads and writes what sits on a disk besides its
// partitions' data: the partition table (through sfdisk and sgdisk), the
// boot code in the first sector, the sectors BIOS boot loaders hide between
// the MBR and the first partition, and the chores that follow a restore
// (telling the kernel about the new table, recreating swap, the NTFS
// alternate boot sector, a read-only fsck). It runs the util-linux and
// gdisk tools; it never relies on the kernel parsing a table by itself.
package table

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Label types, as sfdisk names them.
const (
	LabelGPT = "gpt"
	LabelDOS = "dos"
)

// Partition is one line of an sfdisk dump. Start and Size are in sectors.
type Partition struct {
	Node     string // the device name the dump gives, e.g. /dev/sda1
	Number   int
	Start    int64
	Size     int64
	Type     string // GPT type GUID, or the MBR type in hex ("83", "5")
	UUID     string // GPT partition GUID
	Name     string // GPT partition name
	Attrs    string
	Bootable bool
}

// Table is a parsed `sfdisk --dump`.
type Table struct {
	Label      string // "gpt" or "dos"
	ID         string // disk GUID or MBR disk identifier
	Device     string
	FirstLBA   int64
	LastLBA    int64
	SectorSize int64
	Partitions []Partition
	// Text is the dump as sfdisk wrote it: what Clonezilla saves as
	// <disk>-pt.sf.
	Text string
}

// ErrNoTable is returned by Dump for a device without a partition table.
var ErrNoTable = errors.New("no partition table")

// Dump reads the partition table of dev with sfdisk --dump.
func Dump(ctx context.Context, dev string) (*Table, error) {
	out, stderr, err := run(ctx, nil, "sfdisk", "--dump", dev)
	if err != nil {
		if strings.Contains(stderr, "does not contain a recognized partition table") {
			return nil, fmt.Errorf("%s: %w", dev, ErrNoTable)
		}
		return nil, fmt.Errorf("sfdisk --dump %s: %w: %s", dev, err, stderr)
	}
	return ParseDump(out)
}

// ParseDump parses the text of `sfdisk --dump`.
func ParseDump(text string) (*Table, error) {
	t := &Table{Text: text, SectorSize: 512}
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if node, rest, ok := strings.Cut(line, " : "); ok {
			p, err := parsePartitionLine(strings.TrimSpace(node), rest)
			if err != nil {
				return nil, fmt.Errorf("sfdisk dump line %d: %w", n, err)
			}
			t.Partitions = append(t.Partitions, p)
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("sfdisk dump line %d: %q is neither a header nor a partition", n, line)
		}
		v = strings.TrimSpace(v)
		var err error
		switch strings.TrimSpace(k) {
		case "label":
			t.Label = v
		case "label-id":
			t.ID = v
		case "device":
			t.Device = v
		case "unit":
			if v != "sectors" {
				return nil, fmt.Errorf("sfdisk dump line %d: unit %q, want sectors", n, v)
			}
		case "first-lba":
			t.FirstLBA, err = strconv.ParseInt(v, 10, 64)
		case "last-lba":
			t.LastLBA, err = strconv.ParseInt(v, 10, 64)
		case "sector-size":
			t.SectorSize, err = strconv.ParseInt(v, 10, 64)
		}
		if err != nil {
			return nil, fmt.Errorf("sfdisk dump line %d: %w", n, err)
		}
	}
	if t.Label != LabelGPT && t.Label != LabelDOS {
		return nil, fmt.Errorf("sfdisk dump: label %q, want gpt or dos", t.Label)
	}
	if t.SectorSize <= 0 {
		return nil, fmt.Errorf("sfdisk dump: sector size %d", t.SectorSize)
	}
	return t, nil
}

func parsePartitionLine(node, rest string) (Partition, error) {
	p := Partition{Node: node, Number: NumberOf(node)}
	for _, f := range splitFields(rest) {
		k, v, _ := strings.Cut(f, "=")
		k, v = strings.TrimSpace(k), strings.Trim(strings.TrimSpace(v), `"`)
		var err error
		switch k {
		case "start":
			p.Start, err = strconv.ParseInt(v, 10, 64)
		case "size":
			p.Size, err = strconv.ParseInt(v, 10, 64)
		case "type", "Id":
			p.Type = v
		case "uuid":
			p.UUID = v
		case "name":
			p.Name = v
		case "attrs":
			p.Attrs = v
		case "bootable":
			p.Bootable = true
		}
		if err != nil {
			return p, fmt.Errorf("%s: %s: %w", node, k, err)
		}
	}
	if p.Number <= 0 {
		return p, fmt.Errorf("%s: no partition number at the end of the name", node)
	}
	if p.Size < 0 || p.Start < 0 {
		return p, fmt.Errorf("%s: negative start or size", node)
	}
	return p, nil
}

// splitFields splits on commas outside double quotes.
func splitFields(s string) []string {
	var out []string
	var b strings.Builder
	quoted := false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			b.WriteRune(r)
		case r == ',' && !quoted:
			out = append(out, b.String())
			b.Reset()
		default:
			b.WriteRune(r)
		}
	}
	if strings.TrimSpace(b.String()) != "" {
		out = append(out, b.String())
	}
	return out
}

// NumberOf is the partition number at the end of a device name: 1 for
// sda1, nvme0n1p1 and loop0p1; 0 when there is none.
func NumberOf(node string) int {
	i := len(node)
	for i > 0 && node[i-1] >= '0' && node[i-1] <= '9' {
		i--
	}
	n, err := strconv.Atoi(node[i:])
	if err != nil {
		return 0
	}
	return n
}

// PartitionName is the kernel's name for partition n of disk: sda1, but
// nvme0n1p1 and loop0p1 when the disk's name ends in a digit.
func PartitionName(disk string, n int) string {
	if disk != "" && disk[len(disk)-1] >= '0' && disk[len(disk)-1] <= '9' {
		return fmt.Sprintf("%sp%d", disk, n)
	}
	return fmt.Sprintf("%s%d", disk, n)
}

// IsExtended reports whether an MBR type is an extended partition, the
// container of logical partitions: it holds the EBR chain, no filesystem.
func IsExtended(label, typ string) bool {
	if label != LabelDOS {
		return false
	}
	switch strings.ToLower(strings.TrimPrefix(typ, "0x")) {
	case "5", "f", "85":
		return true
	}
	return false
}

// End is the byte just past the last partition.
func (t *Table) End() int64 {
	var end int64
	for _, p := range t.Partitions {
		end = max(end, (p.Start+p.Size)*t.SectorSize)
	}
	return end
}

// FirstStart is the first sector of the lowest partition, 0 without any.
func (t *Table) FirstStart() int64 {
	first := int64(0)
	for _, p := range t.Partitions {
		if first == 0 || p.Start < first {
			first = p.Start
		}
	}
	return first
}

// Need is how many bytes a disk must hold for this table: the end of the
// last partition, plus the backup GPT (33 sectors) on a GPT disk.
func (t *Table) Need() int64 {
	end := t.End()
	if t.Label == LabelGPT {
		end += 33 * t.SectorSize
	}
	return end
}

// run runs a tool with LC_ALL=C and returns stdout and stderr.
func run(ctx context.Context, stdin []byte, name string, args ...string) (string, string, error) {
	if _, err := exec.LookPath(name); err != nil {
		return "", "", fmt.Errorf("%s is not on PATH: install the Debian package %s", name, packageOf(name))
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), strings.TrimSpace(errb.String()), err
}

func packageOf(tool string) string {
	switch tool {
	case "sfdisk":
		return "fdisk"
	case "sgdisk":
		return "gdisk"
	case "partx", "mkswap", "blkid", "fsck.minix":
		return "util-linux"
	case "e2fsck":
		return "e2fsprogs"
	case "xfs_repair", "xfs_info":
		return "xfsprogs"
	case "btrfs":
		return "btrfs-progs"
	case "fsck.f2fs":
		return "f2fs-tools"
	case "fsck.exfat":
		return "exfatprogs"
	case "fsck.vfat":
		return "dosfstools"
	case "ntfsfix", "ntfsresize":
		return "ntfs-3g"
	case "resize2fs", "dumpe2fs":
		return "e2fsprogs"
	case "xfs_growfs":
		return "xfsprogs"
	case "pvresize", "pvs", "lvs", "vgcfgrestore", "vgcfgbackup":
		return "lvm2"
	case "fsck.hfsplus":
		return "hfsprogs"
	}
	return tool
}

// Filesystem is what blkid finds in a byte range of a device.
type Filesystem struct {
	Type, UUID, Label string
}

// ProbeRange runs blkid's low-level probe on size bytes at off of dev, so
// a partition can be identified without its device node.
func ProbeRange(ctx context.Context, dev string, off, size int64) (Filesystem, error) {
	out, stderr, err := run(ctx, nil, "blkid", "-p", "-o", "export", "-O", strconv.FormatInt(off, 10), "-S", strconv.FormatInt(size, 10), dev)
	var fs Filesystem
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.ExitCode() == 2 {
			return fs, nil // nothing recognised
		}
		return fs, fmt.Errorf("blkid -p %s at %d: %w: %s", dev, off, err, stderr)
	}
	for _, line := range strings.Split(out, "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "TYPE":
			fs.Type = v
		case "UUID":
			fs.UUID = v
		case "LABEL":
			fs.Label = v
		}
	}
	return fs, nil
}
