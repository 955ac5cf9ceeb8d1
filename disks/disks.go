// Package disks lists disks and partitions and decides whether ezio may
// write to a target. Its first rule is ezio's: never write to the wrong
// disk. Every path that opens a target for writing calls CheckWritable.
package disks

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/jaypipes/ghw"
	"golang.org/x/sys/unix"
)

// Partition is one partition of a Disk.
type Partition struct {
	Name       string `json:"name"` // "sda1", "loop0p1"
	Path       string `json:"path"` // "/dev/sda1"
	Size       int64  `json:"size"` // bytes
	FSType     string `json:"fstype"`
	Label      string `json:"label"`
	UUID       string `json:"uuid"`
	MountPoint string `json:"mountpoint"`        // "" if not mounted
	Problem    string `json:"problem,omitempty"` // why it cannot be written, from CheckWritable
	// Volumes are the LVs of an LVM PV's volume group.
	Volumes []LogicalVolume `json:"volumes,omitempty"`
}

// Disk is a whole block device: a disk, an attached loop device, a RAID
// array, a device-mapper volume.
type Disk struct {
	Name        string      `json:"name"` // "sda", "loop3", "nvme0n1"
	Path        string      `json:"path"`
	Size        int64       `json:"size"`
	Model       string      `json:"model"`
	Serial      string      `json:"serial"`
	Removable   bool        `json:"removable"`
	Rotational  bool        `json:"rotational"`
	Type        string      `json:"type"` // "disk", "loop", "rom", "lvm", "raid1", ...
	BackingFile string      `json:"backing_file,omitempty"`
	Partitions  []Partition `json:"partitions"`
	Problem     string      `json:"problem,omitempty"`
	// A filesystem written on the whole device, without a partition table.
	FSType     string `json:"fstype,omitempty"`
	Label      string `json:"label,omitempty"`
	UUID       string `json:"uuid,omitempty"`
	MountPoint string `json:"mountpoint,omitempty"`
}

// ErrNotFound is returned by Lookup for a block device that List does not
// show (for instance an empty card reader).
var ErrNotFound = errors.New("no such disk or partition")

// List returns the block devices of this machine with a size, and the
// attached loop devices, sorted by name (loop2 before loop10). Each Problem
// field says why CheckWritable would refuse it.
func List() ([]Disk, error) {
	s, err := loadState()
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	type extra struct{ model, serial string }
	info := map[string]extra{}
	if bi, err := ghw.Block(ghw.WithDisableWarnings()); err == nil {
		for _, d := range bi.Disks {
			names[d.Name] = true
			info[d.Name] = extra{known(d.Model), known(d.SerialNumber)}
		}
	}
	// ghw may skip loop devices and others; sysfs has them all.
	for _, name := range dirNames(sysBlock) {
		names[name] = true
	}
	var out []Disk
	for name := range names {
		n, err := nodeByDir(filepath.Join(sysBlock, name))
		if err != nil {
			continue
		}
		size, err := n.size()
		if err != nil || size == 0 {
			continue // unattached loops, empty drives
		}
		d := Disk{
			Name:        name,
			Path:        n.path(),
			Size:        size,
			Model:       info[name].model,
			Serial:      info[name].serial,
			Removable:   n.attr("removable") == "1",
			Rotational:  n.attr("queue/rotational") == "1",
			Type:        n.kind(),
			BackingFile: n.backingFile(),
			MountPoint:  s.mountPointOf(n.dev),
			Partitions:  []Partition{},
		}
		if d.Model == "" {
			d.Model = n.attr("device/model")
		}
		if d.Serial == "" {
			d.Serial = cmp.Or(n.attr("device/serial"), n.attr("serial"))
		}
		sig := signatureOf(n)
		d.FSType, d.Label, d.UUID = sig.Type, sig.Label, sig.UUID
		d.Problem = problem(s.check(d.Path, 0))
		for _, pn := range n.partitions() {
			psize, _ := pn.size()
			sig := signatureOf(pn)
			p := Partition{
				Name:       pn.name,
				Path:       pn.path(),
				Size:       psize,
				FSType:     sig.Type,
				Label:      sig.Label,
				UUID:       sig.UUID,
				MountPoint: s.mountPointOf(pn.dev),
			}
			p.Problem = problem(s.check(p.Path, 0))
			if p.FSType == "LVM2_member" {
				p.Volumes = volumesOn(p.Path)
			}
			d.Partitions = append(d.Partitions, p)
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return naturalLess(out[i].Name, out[j].Name) })
	return out, nil
}

// Lookup finds the disk, and the partition if path names one, behind a
// device path or a symlink such as /dev/disk/by-id/...
func Lookup(path string) (*Disk, *Partition, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, nil, fmt.Errorf("looking up %s: %w", path, err)
	}
	dev, err := statDev(real)
	if err != nil {
		return nil, nil, fmt.Errorf("looking up %s: %w", path, err)
	}
	n, err := nodeByDev(dev)
	if err != nil {
		return nil, nil, fmt.Errorf("looking up %s: %w", path, err)
	}
	ds, err := List()
	if err != nil {
		return nil, nil, err
	}
	disk := n.whole()
	for i := range ds {
		if ds[i].Name != disk.name {
			continue
		}
		if disk.dev == n.dev {
			return &ds[i], nil, nil
		}
		for j := range ds[i].Partitions {
			if ds[i].Partitions[j].Name == n.name {
				return &ds[i], &ds[i].Partitions[j], nil
			}
		}
	}
	return nil, nil, fmt.Errorf("looking up %s: %w", path, ErrNotFound)
}

// DeviceSize returns the size in bytes of a block device, or of a regular
// file.
func DeviceSize(path string) (int64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("size of %s: %w", path, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		return st.Size, nil
	case unix.S_IFBLK:
	default:
		return 0, fmt.Errorf("size of %s: %w", path, errNotBlock)
	}
	if n, err := nodeByDev(st.Rdev); err == nil {
		if size, err := n.size(); err == nil {
			return size, nil
		}
	}
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("size of %s: %w", path, err)
	}
	defer f.Close()
	size, err := unix.IoctlGetUint64(int(f.Fd()), unix.BLKGETSIZE64)
	if err != nil {
		return 0, fmt.Errorf("size of %s: BLKGETSIZE64: %w", path, err)
	}
	return int64(size), nil
}

// IsBlockDevice reports whether path is, or links to, a block device.
func IsBlockDevice(path string) bool {
	_, err := statDev(path)
	return err == nil
}

// signatureOf probes a device, falling back to what udev recorded when the
// device cannot be read (not root).
func signatureOf(n node) Signature {
	if sig, err := Probe(n.path()); err == nil {
		return sig
	}
	p := udevProps(n.dev)
	return Signature{Type: p["ID_FS_TYPE"], Label: p["ID_FS_LABEL"], UUID: p["ID_FS_UUID"]}
}

func problem(err error) string {
	var re *RefusedError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &re):
		return re.Reason
	}
	return "cannot inspect it: " + err.Error()
}

// known drops ghw's "unknown" placeholder.
func known(s string) string {
	if s == "unknown" {
		return ""
	}
	return strings.TrimSpace(s)
}

// naturalLess orders names with their digit runs compared as numbers.
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := digitPrefix(a), digitPrefix(b)
		if da != "" && db != "" {
			na, nb := strings.TrimLeft(da, "0"), strings.TrimLeft(db, "0")
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
			a, b = a[len(da):], b[len(db):]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func digitPrefix(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}

// HumanBytes formats a size in binary units: "900 B", "1.5 GiB", and no
// decimal from 100 up ("512 MiB").
func HumanBytes(n int64) string {
	if n < 0 {
		return "-" + HumanBytes(-n)
	}
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v := float64(n) / 1024
	u := 0
	for v >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	s := fmt.Sprintf("%.1f", v)
	if v >= 99.95 {
		s = fmt.Sprintf("%.0f", v)
		if s == "1024" && u < len(units)-1 {
			return "1.0 " + units[u+1]
		}
	}
	return s + " " + units[u]
}

// FormatTable writes the human table of `ezio disks`: one line per disk,
// its partitions indented under it.
func FormatTable(w io.Writer, ds []Disk) {
	rows := [][]string{{"NAME", "SIZE", "TYPE", "MODEL", "FS", "MOUNTPOINT", "PROBLEM"}}
	for _, d := range ds {
		model := d.Model
		if d.BackingFile != "" {
			model = d.BackingFile
		}
		rows = append(rows, []string{d.Name, HumanBytes(d.Size), d.Type, model, d.FSType, d.MountPoint, d.Problem})
		for i, p := range d.Partitions {
			branch := "|-"
			if i == len(d.Partitions)-1 {
				branch = "`-"
			}
			rows = append(rows, []string{branch + p.Name, HumanBytes(p.Size), "part", "", p.FSType, p.MountPoint, p.Problem})
		}
	}
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		for i, c := range r {
			if i == len(r)-1 {
				b.WriteString(c)
				break
			}
			b.WriteString(c)
			b.WriteString(strings.Repeat(" ", widths[i]-len([]rune(c))+2))
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}
