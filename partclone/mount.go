package partclone

import (
	"ezio/disks/mountinfo"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
)

// mountInfoPath is read to find where a device is mounted; tests point it
// at a fixture.
var mountInfoPath = "/proc/self/mountinfo"

// mount is one line of mountinfo.
type mount = mountinfo.Mount

// mountsOf lists where device is mounted. A block device is matched by
// its major:minor, anything else (and btrfs, whose mounts carry an
// anonymous device number) by the mount source path.
func mountsOf(device string) ([]mount, error) {
	mounts, err := mountinfo.Read(mountInfoPath)
	if err != nil {
		return nil, err
	}
	isDev := false
	var st syscall.Stat_t
	if err := syscall.Stat(device, &st); err == nil && st.Mode&syscall.S_IFMT == syscall.S_IFBLK {
		isDev = true
	}
	path := device
	if p, err := filepath.EvalSymlinks(device); err == nil {
		path = p
	}
	var found []mount
	for _, m := range mounts {
		same := isDev && m.Dev == st.Rdev
		if !same && strings.HasPrefix(m.Source, "/") {
			src := m.Source
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
		points = append(points, m.MountPoint)
		cmds = append(cmds, "umount "+shellQuote(m.MountPoint))
		if m.ReadWrite() {
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
