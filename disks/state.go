package disks

import (
	"bufio"
	"ezio/disks/mountinfo"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// mount is one line of /proc/self/mountinfo.
type mount = mountinfo.Mount

// swap is one line of /proc/swaps. For a swap partition dev is the
// partition's device number; for a swap file it is the device holding the
// file, and ino identifies the file.
type swap struct {
	path   string
	isFile bool
	dev    uint64
	ino    uint64
}

// systemMountPoints are where the running system and a live medium live.
// The disks behind them are never written.
var systemMountPoints = []string{
	"/", "/boot", "/boot/efi", "/usr",
	"/run/live/medium", "/lib/live/mount/medium", "/cdrom",
	"/run/initramfs/live", "/run/archiso/bootmnt",
}

// state is what the kernel says about device use at one moment. It is read
// once per CheckWritable or List, so that a table of disks costs one read of
// each /proc file.
type state struct {
	mounts []mount
	byDev  map[uint64][]mount
	swaps  []swap
	// system maps the device number of each whole disk that the running
	// system depends on to the mount point that makes it so.
	system map[uint64]string
	loops  []node
}

func loadState() (*state, error) {
	f, err := os.Open(procMountinfo)
	if err != nil {
		return nil, fmt.Errorf("reading mount table: %w", err)
	}
	mounts, err := mountinfo.Parse(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("reading mount table: %w", err)
	}
	s := &state{mounts: mounts, byDev: map[uint64][]mount{}, system: map[uint64]string{}}
	for _, m := range mounts {
		s.byDev[m.Dev] = append(s.byDev[m.Dev], m)
		// btrfs and a few others report an anonymous device number; the
		// source names the real one.
		if unix.Major(m.Dev) == 0 && strings.HasPrefix(m.Source, "/dev/") {
			if d, err := statDev(m.Source); err == nil && d != m.Dev {
				s.byDev[d] = append(s.byDev[d], m)
			}
		}
	}
	if f, err := os.Open(procSwaps); err == nil {
		s.swaps = parseSwaps(f)
		f.Close()
	}
	s.loops = loopNodes()
	for _, mp := range systemMountPoints {
		for _, m := range mounts {
			if m.MountPoint != mp {
				continue
			}
			for _, d := range s.disksBehind(m, 0) {
				if _, ok := s.system[d.dev]; !ok {
					s.system[d.dev] = mp
				}
			}
		}
	}
	return s, nil
}

// disksBehind resolves a mount to the whole disks its data lives on,
// through loop devices, device-mapper, md RAID, partitions and overlayfs.
func (s *state) disksBehind(m mount, depth int) []node {
	if depth > 8 {
		return nil
	}
	if _, err := nodeByDev(m.Dev); err == nil {
		return s.disksOfDev(m.Dev, depth+1)
	}
	var out []node
	if strings.HasPrefix(m.Source, "/dev/") {
		if d, err := statDev(m.Source); err == nil {
			out = append(out, s.disksOfDev(d, depth+1)...)
		}
	}
	if m.FSType == "overlay" {
		for _, dir := range overlayDirs(m.SuperOptions) {
			out = append(out, s.disksOfPath(dir, depth+1)...)
		}
	}
	return out
}

// disksOfPath resolves the filesystem holding path.
func (s *state) disksOfPath(path string, depth int) []node {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nil
	}
	if st.Mode&unix.S_IFMT == unix.S_IFBLK {
		return s.disksOfDev(st.Rdev, depth+1)
	}
	if _, err := nodeByDev(st.Dev); err == nil {
		return s.disksOfDev(st.Dev, depth+1)
	}
	var out []node
	for _, m := range s.byDev[st.Dev] {
		out = append(out, s.disksBehind(m, depth+1)...)
	}
	return out
}

// disksOfDev resolves a block device to whole disks. Devices met on the way
// (a loop, a dm device) are included too: they hold the system as well.
func (s *state) disksOfDev(dev uint64, depth int) []node {
	if depth > 8 {
		return nil
	}
	n, err := nodeByDev(dev)
	if err != nil {
		return nil
	}
	out := []node{n.whole()}
	if bf := n.backingFile(); bf != "" {
		out = append(out, s.disksOfPath(bf, depth+1)...)
	}
	// A partition of an md array or dm device: the array's slaves count.
	for _, sl := range n.whole().slaves() {
		out = append(out, s.disksOfDev(sl.dev, depth+1)...)
	}
	return out
}

// overlayDirs picks the layer directories out of overlayfs mount options.
func overlayDirs(opts string) []string {
	var out []string
	for _, o := range splitOpts(opts) {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			continue
		}
		switch k {
		case "lowerdir", "upperdir", "lowerdir+", "datadir+":
			for _, d := range strings.Split(v, ":") {
				if d != "" {
					out = append(out, d)
				}
			}
		}
	}
	return out
}

// splitOpts splits mount options on commas not escaped with a backslash.
func splitOpts(s string) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s):
			cur.WriteByte(s[i+1])
			i++
		case s[i] == ',':
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(s[i])
		}
	}
	return append(out, cur.String())
}

// parseSwaps reads /proc/swaps:
//
//	Filename	Type		Size	Used	Priority
//	/dev/sda2	partition	999420	0	-2
func parseSwaps(r io.Reader) []swap {
	var out []swap
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] == "Filename" {
			continue
		}
		sw := swap{path: mountinfo.Unescape(f[0]), isFile: f[1] == "file"}
		var st unix.Stat_t
		if err := unix.Stat(sw.path, &st); err == nil {
			if st.Mode&unix.S_IFMT == unix.S_IFBLK {
				sw.dev = st.Rdev
			} else {
				sw.dev, sw.ino, sw.isFile = st.Dev, st.Ino, true
			}
		}
		out = append(out, sw)
	}
	return out
}

// mountsOf lists the mounts of a device, each mount point once.
func (s *state) mountsOf(dev uint64) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range s.byDev[dev] {
		if !seen[m.MountPoint] {
			seen[m.MountPoint] = true
			out = append(out, m.MountPoint)
		}
	}
	return out
}

// mountPointOf is the first mount point of a device, "" if none.
func (s *state) mountPointOf(dev uint64) string {
	if mps := s.mountsOf(dev); len(mps) > 0 {
		return mps[0]
	}
	return ""
}

// loopsBackedBy lists attached loop devices whose backing file is path's
// block device (dev) or regular file (dev, ino).
func (s *state) loopsBackedBy(match func(st *unix.Stat_t) bool) []node {
	var out []node
	for _, l := range s.loops {
		var st unix.Stat_t
		if err := unix.Stat(l.backingFile(), &st); err != nil {
			continue
		}
		if match(&st) {
			out = append(out, l)
		}
	}
	return out
}

// cleanPath makes target absolute for messages and the /dev/ test.
func cleanPath(target string) string {
	if abs, err := filepath.Abs(target); err == nil {
		return abs
	}
	return filepath.Clean(target)
}
