package disks

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// mount is one line of /proc/self/mountinfo.
type mount struct {
	dev        uint64
	mountPoint string
	fsType     string
	source     string
	superOpts  string
}

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
	mounts, err := parseMountinfo(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("reading mount table: %w", err)
	}
	s := &state{mounts: mounts, byDev: map[uint64][]mount{}, system: map[uint64]string{}}
	for _, m := range mounts {
		s.byDev[m.dev] = append(s.byDev[m.dev], m)
		// btrfs and a few others report an anonymous device number; the
		// source names the real one.
		if unix.Major(m.dev) == 0 && strings.HasPrefix(m.source, "/dev/") {
			if d, err := statDev(m.source); err == nil && d != m.dev {
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
			if m.mountPoint != mp {
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
	if _, err := nodeByDev(m.dev); err == nil {
		return s.disksOfDev(m.dev, depth+1)
	}
	var out []node
	if strings.HasPrefix(m.source, "/dev/") {
		if d, err := statDev(m.source); err == nil {
			out = append(out, s.disksOfDev(d, depth+1)...)
		}
	}
	if m.fsType == "overlay" {
		for _, dir := range overlayDirs(m.superOpts) {
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

// parseMountinfo reads the format of proc(5) /proc/[pid]/mountinfo:
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
func parseMountinfo(r io.Reader) ([]mount, error) {
	var out []mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 7 {
			continue
		}
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+2 >= len(f) {
			continue
		}
		dev, err := parseMajMin(f[2])
		if err != nil {
			continue
		}
		m := mount{
			dev:        dev,
			mountPoint: unescapeOctal(f[4]),
			fsType:     f[sep+1],
			source:     unescapeOctal(f[sep+2]),
		}
		if sep+3 < len(f) {
			m.superOpts = f[sep+3]
		}
		out = append(out, m)
	}
	return out, sc.Err()
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
		sw := swap{path: unescapeOctal(f[0]), isFile: f[1] == "file"}
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

// unescapeOctal undoes the kernel's \040-style escaping of spaces, tabs,
// newlines and backslashes in /proc paths.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// mountsOf lists the mounts of a device, each mount point once.
func (s *state) mountsOf(dev uint64) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range s.byDev[dev] {
		if !seen[m.mountPoint] {
			seen[m.mountPoint] = true
			out = append(out, m.mountPoint)
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
