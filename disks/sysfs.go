package disks

import (
	"errors"
	"ezio/disks/mountinfo"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Paths of the kernel interfaces this package reads. They are variables so
// that parser tests can point them at fixtures; nothing else changes them.
var (
	sysDevBlock   = "/sys/dev/block"
	sysBlock      = "/sys/block"
	procMountinfo = "/proc/self/mountinfo"
	procSwaps     = "/proc/swaps"
	runUdevData   = "/run/udev/data"
)

// node is one block device as the kernel's sysfs shows it.
type node struct {
	name string // "sda1"
	dir  string // resolved sysfs directory
	dev  uint64 // device number, as in stat's st_rdev
}

func (n node) path() string { return "/dev/" + n.name }

func devString(dev uint64) string {
	return fmt.Sprintf("%d:%d", unix.Major(dev), unix.Minor(dev))
}

// nodeByDev finds the sysfs entry of a block device number.
func nodeByDev(dev uint64) (node, error) {
	dir, err := filepath.EvalSymlinks(filepath.Join(sysDevBlock, devString(dev)))
	if err != nil {
		return node{}, fmt.Errorf("no block device %s in sysfs: %w", devString(dev), err)
	}
	return node{name: filepath.Base(dir), dir: dir, dev: dev}, nil
}

// nodeByDir reads the device number of a sysfs block directory.
func nodeByDir(dir string) (node, error) {
	b, err := os.ReadFile(filepath.Join(dir, "dev"))
	if err != nil {
		return node{}, err
	}
	dev, err := mountinfo.ParseDevice(strings.TrimSpace(string(b)))
	if err != nil {
		return node{}, err
	}
	return node{name: filepath.Base(dir), dir: dir, dev: dev}, nil
}

func (n node) isPartition() bool {
	_, err := os.Stat(filepath.Join(n.dir, "partition"))
	return err == nil
}

// whole returns the disk a partition belongs to, or n itself.
func (n node) whole() node {
	if !n.isPartition() {
		return n
	}
	if p, err := nodeByDir(filepath.Dir(n.dir)); err == nil {
		return p
	}
	return n
}

// partitions lists a disk's partitions in partition-number order.
func (n node) partitions() []node {
	ents, err := os.ReadDir(n.dir)
	if err != nil {
		return nil
	}
	type numbered struct {
		node
		num int
	}
	var ps []numbered
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), n.name) {
			continue
		}
		dir := filepath.Join(n.dir, e.Name())
		num, err := readInt(filepath.Join(dir, "partition"))
		if err != nil {
			continue
		}
		p, err := nodeByDir(dir)
		if err != nil {
			continue
		}
		ps = append(ps, numbered{p, int(num)})
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].num < ps[j].num })
	out := make([]node, len(ps))
	for i, p := range ps {
		out[i] = p.node
	}
	return out
}

func (n node) attr(name string) string {
	b, err := os.ReadFile(filepath.Join(n.dir, name))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// size is in bytes; sysfs counts 512-byte sectors whatever the device's
// logical block size.
func (n node) size() (int64, error) {
	s, err := readInt(filepath.Join(n.dir, "size"))
	if err != nil {
		return 0, err
	}
	return s * 512, nil
}

func (n node) readOnly() bool { return n.attr("ro") == "1" }

// holders are the devices stacked on n: dm (LVM, dm-crypt), md RAID, bcache.
func (n node) holders() []string {
	return dirNames(filepath.Join(n.dir, "holders"))
}

// slaves are the devices n is stacked on.
func (n node) slaves() []node {
	var out []node
	for _, s := range dirNames(filepath.Join(n.dir, "slaves")) {
		dir, err := filepath.EvalSymlinks(filepath.Join(n.dir, "slaves", s))
		if err != nil {
			continue
		}
		if sn, err := nodeByDir(dir); err == nil {
			out = append(out, sn)
		}
	}
	return out
}

// backingFile is the file (or device) behind an attached loop device, "" if
// n is not an attached loop.
func (n node) backingFile() string {
	s := n.attr("loop/backing_file")
	return strings.TrimSuffix(s, " (deleted)")
}

// kind names the device type the way lsblk does.
func (n node) kind() string {
	switch {
	case n.isPartition():
		return "part"
	case strings.HasPrefix(n.name, "loop"):
		return "loop"
	case strings.HasPrefix(n.name, "dm-"):
		if strings.HasPrefix(n.attr("dm/uuid"), "CRYPT-") {
			return "crypt"
		}
		if strings.HasPrefix(n.attr("dm/uuid"), "LVM-") {
			return "lvm"
		}
		return "dm"
	case strings.HasPrefix(n.name, "md"):
		if l := n.attr("md/level"); l != "" {
			return l
		}
		return "raid"
	case strings.HasPrefix(n.name, "sr"):
		return "rom"
	case strings.HasPrefix(n.name, "zram"):
		return "zram"
	case strings.HasPrefix(n.name, "nbd"):
		return "nbd"
	case strings.HasPrefix(n.name, "ram"):
		return "ram"
	}
	return "disk"
}

// describeHolder says what a holder device is, for refusal messages.
func describeHolder(name string) (what, hint string) {
	n, err := nodeByDir(filepath.Join(sysBlock, name))
	if err != nil {
		return name, "Stop whatever uses it first"
	}
	dmName := n.attr("dm/name")
	switch n.kind() {
	case "lvm":
		return fmt.Sprintf("LVM volume %s (/dev/%s)", dmName, name),
			"Deactivate its volume group first: vgchange -an VGNAME (see: lvs -o vg_name /dev/mapper/" + dmName + ")"
	case "crypt":
		return fmt.Sprintf("dm-crypt mapping %s (/dev/%s)", dmName, name),
			"Close it first: cryptsetup close " + dmName
	case "dm":
		return fmt.Sprintf("device-mapper device %s (/dev/%s)", dmName, name),
			"Remove it first: dmsetup remove " + dmName
	}
	if strings.HasPrefix(name, "md") {
		return "RAID array /dev/" + name, "Stop the array first: mdadm --stop /dev/" + name
	}
	return "/dev/" + name, "Stop whatever uses /dev/" + name + " first"
}

// loopNodes lists attached loop devices with their backing files.
func loopNodes() []node {
	var out []node
	for _, name := range dirNames(sysBlock) {
		if !strings.HasPrefix(name, "loop") {
			continue
		}
		n, err := nodeByDir(filepath.Join(sysBlock, name))
		if err != nil || n.backingFile() == "" {
			continue
		}
		out = append(out, n)
	}
	return out
}

func dirNames(dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(ents))
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// udevProps reads what udev recorded about a device (ID_FS_TYPE and so on);
// empty when udev is not running, as on minimal live systems.
func udevProps(dev uint64) map[string]string {
	b, err := os.ReadFile(filepath.Join(runUdevData, "b"+devString(dev)))
	if err != nil {
		return nil
	}
	m := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if kv, ok := strings.CutPrefix(line, "E:"); ok {
			if k, v, ok := strings.Cut(kv, "="); ok {
				m[k] = v
			}
		}
	}
	return m
}

// statDev returns the device number of a block special file.
func statDev(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return 0, errNotBlock
	}
	return st.Rdev, nil
}

var errNotBlock = errors.New("not a block device")
