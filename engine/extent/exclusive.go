package extent

// One writer per target: the exclusive open of a device, file or extent
// directory, the error that names who holds it when that fails, and the
// error of a failed read or write with where it happened.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"ezio/disks"
	"ezio/disks/mountinfo"
	"ezio/engine/torrentfile"
)

// DiskError is a failed read, write or flush on a target or source, with
// where it happened. Offset is the disk offset (-1 when the kernel does
// not say, as for a failed flush); File the extent file of a directory.
type DiskError struct {
	Op     string // "reading", "writing", "flushing", "opening"
	Path   string
	File   string
	Offset int64
	Err    error
}

func (e *DiskError) Error() string {
	s := e.Op + " " + e.Path
	if e.Offset >= 0 {
		s += fmt.Sprintf(" at disk offset %d", e.Offset)
	}
	cause := e.Err
	var pe *os.PathError
	if errors.As(cause, &pe) {
		cause = pe.Err // the path is said already
	}
	return s + ": " + cause.Error()
}

func (e *DiskError) Unwrap() error { return e.Err }

// BusyError says another writer holds the target: a second deploy, a
// mount, or any other exclusive user. It is a refusal (nothing written).
type BusyError struct {
	Target string
	Holder string // who holds it, as far as can be found; "" if unknown
}

func (e *BusyError) Error() string {
	s := "refusing to write to " + e.Target + ": another writer holds it"
	if e.Holder != "" {
		s += " (" + e.Holder + ")"
	}
	return s + "; wait for it to finish or stop it first"
}

// openExclusive opens a device or image file for writing as its only
// writer. A device gets O_EXCL, so the kernel refuses mounts and other
// exclusive opens while ezio writes; a file gets a non-blocking flock.
// A new or empty file is created at its full size (the layout's end), so
// an interrupted deploy into it can resume.
func openExclusive(path string, l *torrentfile.Layout) (*os.File, error) {
	fi, err := os.Stat(path)
	isDev := err == nil && fi.Mode()&os.ModeDevice != 0
	if isDev {
		f, err := os.OpenFile(path, os.O_RDWR|unix.O_EXCL, 0)
		if errors.Is(err, unix.EBUSY) {
			return nil, &BusyError{Target: path, Holder: findHolder(path)}
		}
		return f, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, &BusyError{Target: path, Holder: findHolder(path)}
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() < l.End {
		if err := f.Truncate(l.End); err != nil {
			f.Close()
			return nil, &DiskError{Op: "sizing", Path: path, Offset: l.End, Err: err}
		}
	}
	return f, nil
}

// lockFile is the lock an extent directory's writer holds.
const lockFile = ".ezio-lock"

func lockDir(dir string) (*os.File, error) {
	p := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, &BusyError{Target: dir, Holder: findHolder(p)}
		}
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	return f, nil
}

// findHolder names who has path open: stacked devices from sysfs, a
// mount, or processes found by scanning /proc/*/fd.
func findHolder(path string) string {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return ""
	}
	isDev := st.Mode&unix.S_IFMT == unix.S_IFBLK
	var parts []string
	if isDev {
		if sys, err := filepath.EvalSymlinks(fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))); err == nil {
			if es, err := os.ReadDir(filepath.Join(sys, "holders")); err == nil {
				for _, e := range es {
					parts = append(parts, "held by /dev/"+e.Name())
				}
			}
		}
		if ms, err := mountinfo.Read(mountinfo.Path); err == nil {
			for _, m := range ms {
				if m.Dev == st.Rdev {
					parts = append(parts, "mounted on "+m.MountPoint)
					break
				}
			}
		}
	}
	self := os.Getpid()
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == self {
			continue
		}
		fdDir := filepath.Join("/proc", p.Name(), "fd")
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			var fst unix.Stat_t
			if unix.Stat(filepath.Join(fdDir, fd.Name()), &fst) != nil {
				continue
			}
			same := fst.Dev == st.Dev && fst.Ino == st.Ino
			if isDev {
				same = fst.Mode&unix.S_IFMT == unix.S_IFBLK && fst.Rdev == st.Rdev
			}
			if same {
				cmd, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
				c := strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))
				if len(c) > 80 {
					c = c[:80] + "..."
				}
				parts = append(parts, fmt.Sprintf("open by pid %d: %s", pid, c))
				break
			}
		}
		if len(parts) >= 4 {
			break
		}
	}
	return strings.Join(parts, "; ")
}

// identityOf describes what an open target is, so that a resume record
// written for one disk is never applied to another found at the same
// path. A block device: its serial or WWN from sysfs (a loop device: its
// backing file and that file's inode) and its size; a file or directory:
// its filesystem device, inode and size.
func identityOf(f *os.File, path string) string {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return ""
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		// A directory's size changes as extent files appear: not part of it.
		return fmt.Sprintf("dir dev=%d ino=%d", st.Dev, st.Ino)
	case unix.S_IFREG:
		return fmt.Sprintf("file dev=%d ino=%d size=%d", st.Dev, st.Ino, st.Size)
	case unix.S_IFBLK:
	default:
		return ""
	}
	size, _ := unix.IoctlGetUint64(int(f.Fd()), unix.BLKGETSIZE64)
	id := fmt.Sprintf("block size=%d", size)
	sys, err := filepath.EvalSymlinks(fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev)))
	if err != nil {
		return id + fmt.Sprintf(" rdev=%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	disk := sys
	if _, err := os.Stat(filepath.Join(sys, "partition")); err == nil {
		// A partition: the whole disk says what it is, plus where it starts.
		disk = filepath.Dir(sys)
		start, _ := os.ReadFile(filepath.Join(sys, "start"))
		id += " part" + strings.TrimSpace(string(start))
	}
	read := func(rel string) string {
		b, err := os.ReadFile(filepath.Join(disk, rel))
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	if bf := read("loop/backing_file"); bf != "" {
		id += " loop=" + bf
		var bst unix.Stat_t
		if unix.Stat(strings.TrimSuffix(bf, " (deleted)"), &bst) == nil {
			id += fmt.Sprintf(" dev=%d ino=%d", bst.Dev, bst.Ino)
		}
		id += " offset=" + read("loop/offset")
		return id
	}
	found := false
	for _, rel := range []string{"wwid", "device/wwid", "device/serial", "serial"} {
		if v := read(rel); v != "" {
			id += " " + rel + "=" + v
			found = true
			break
		}
	}
	if !found {
		// Nothing identifies the medium: the device number at least.
		id += fmt.Sprintf(" name=%s rdev=%d:%d", filepath.Base(disk), unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	return id
}

// NameHolder adds who holds a device to the safety check's "busy"
// refusal (another deploy, a mount, a program), where it can be found.
func NameHolder(target string, err error) error {
	var re *disks.RefusedError
	if !errors.As(err, &re) || re.Kind != disks.RefusedBusy {
		return err
	}
	if h := findHolder(target); h != "" {
		re.Reason += " (" + h + ")"
	}
	return err
}
