package partclone

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// mountInfoPath is read to find where a device is mounted; tests point it
// at a fixture.
var mountInfoPath = "/proc/self/mountinfo"

// mount is one line of mountinfo.
type mount struct {
	majorMinor string // "7:0"
	point      string
	readWrite  bool
	source     string
}

// parseMountInfo reads the proc(5) mountinfo format:
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
func parseMountInfo(r io.Reader) ([]mount, error) {
	var mounts []mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if len(f) < 6 || sep < 0 || sep+2 >= len(f) {
			continue
		}
		rw := false
		for _, o := range strings.Split(f[5], ",") {
			if o == "rw" {
				rw = true
			}
		}
		mounts = append(mounts, mount{
			majorMinor: f[2],
			point:      unescapeMount(f[4]),
			readWrite:  rw,
			source:     unescapeMount(f[sep+2]),
		})
	}
	return mounts, sc.Err()
}

// unescapeMount undoes the kernel's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mountsOf lists where device is mounted. A block device is matched by
// its major:minor, anything else (and btrfs, whose mounts carry an
// anonymous device number) by the mount source path.
func mountsOf(device string) ([]mount, error) {
	f, err := os.Open(mountInfoPath)
	if err != nil {
		return nil, fmt.Errorf("reading mounts: %w", err)
	}
	defer f.Close()
	mounts, err := parseMountInfo(f)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", mountInfoPath, err)
	}
	majorMinor := ""
	var st syscall.Stat_t
	if err := syscall.Stat(device, &st); err == nil && st.Mode&syscall.S_IFMT == syscall.S_IFBLK {
		majorMinor = fmt.Sprintf("%d:%d", unixMajor(st.Rdev), unixMinor(st.Rdev))
	}
	path := device
	if p, err := filepath.EvalSymlinks(device); err == nil {
		path = p
	}
	var found []mount
	for _, m := range mounts {
		same := majorMinor != "" && m.majorMinor == majorMinor
		if !same && strings.HasPrefix(m.source, "/") {
			src := m.source
			if p, err := filepath.EvalSymlinks(src); err == nil {
				src = p
			}
			same = src == path
		}
		if same {
			found = append(found, m)
		}
	}
	return found, nil
}

// checkNotMounted refuses a mounted source. Read-write is the real danger:
// blocks change under partclone and the image is inconsistent. partclone
// 0.3.23 also refuses read-only mounts (unless forced with -F, which skips
// other checks too), so those are refused here, with the same hint, before
// anything runs.
func checkNotMounted(device string) error {
	mounts, err := mountsOf(device)
	if err != nil {
		return err
	}
	if len(mounts) == 0 {
		return nil
	}
	var points, cmds []string
	how := "read-only"
	for _, m := range mounts {
		points = append(points, m.point)
		cmds = append(cmds, "umount "+shellQuote(m.point))
		if m.readWrite {
			how = "read-write"
		}
	}
	return &MountedError{Device: device, How: how, Points: points, Commands: cmds}
}

// MountedError refuses a source that is mounted; it says how to unmount.
type MountedError struct {
	Device   string
	How      string   // "read-write" or "read-only"
	Points   []string // mount points
	Commands []string // umount commands
}

func (e *MountedError) Error() string {
	return fmt.Sprintf("%s is mounted %s on %s; unmount it first: %s",
		e.Device, e.How, strings.Join(e.Points, ", "), strings.Join(e.Commands, "; "))
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '/' || r == '-' || r == '_' || r == '.' || r == '+' || r == ':' || r == '@' ||
			'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// unixMajor and unixMinor decode Linux's dev_t.
func unixMajor(dev uint64) uint64 { return (dev>>8)&0xfff | (dev>>32)&^0xfff }
func unixMinor(dev uint64) uint64 { return dev&0xff | (dev>>12)&^0xff }
