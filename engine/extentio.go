package engine

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"ezio/disks"
	"ezio/disks/mountinfo"
)

// extentIO reads and writes the data of one extent. Every call is already
// clamped by the Layout to lie inside the extent.
type extentIO interface {
	readExtent(ext int, p []byte, within int64) (int, error)
	writeExtent(ext int, p []byte, within int64) (int, error)
	sync() error
	close() error
	// identity describes the target for the resume record ("" if unknown).
	identity() string
}

// TargetKind says how extents are stored.
type TargetKind string

const (
	TargetDevice TargetKind = "device" // block device, extents at their offsets
	TargetFile   TargetKind = "file"   // regular image file, same offsets, sparse
	TargetDir    TargetKind = "dir"    // directory of extent files (partclone -T)
)

// KindOf tells what sort of target path is; a missing path is a file.
func KindOf(path string) (TargetKind, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return TargetFile, nil
	}
	if err != nil {
		return "", err
	}
	switch {
	case fi.IsDir():
		return TargetDir, nil
	case fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0:
		return TargetDevice, nil
	case fi.Mode().IsRegular():
		return TargetFile, nil
	}
	return "", fmt.Errorf("%s is neither a block device, a regular file nor a directory", path)
}

// SizeOf returns the byte size of a block device or regular file.
func SizeOf(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if fi.Mode()&os.ModeDevice != 0 {
		sz, err := unix.IoctlGetUint64(int(f.Fd()), unix.BLKGETSIZE64)
		if err != nil {
			// Fall back to seeking, which works for block devices too.
			end, serr := f.Seek(0, io.SeekEnd)
			if serr != nil {
				return 0, fmt.Errorf("size of %s: %w", path, err)
			}
			return end, nil
		}
		return int64(sz), nil
	}
	return fi.Size(), nil
}

// rawIO stores extents at their disk offsets in one file or device, with
// pread/pwrite on a single descriptor shared by all connections. Opened
// for writing, it is the target's only writer until close: a device is
// held with O_EXCL, a file with an flock.
type rawIO struct {
	f    *os.File
	path string
	l    *Layout
}

func openRaw(path string, l *Layout, write bool) (*rawIO, error) {
	if !write {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		return &rawIO{f: f, path: path, l: l}, nil
	}
	f, err := openExclusive(path, l)
	if err != nil {
		return nil, err
	}
	return &rawIO{f: f, path: path, l: l}, nil
}

func (r *rawIO) readExtent(ext int, p []byte, within int64) (int, error) {
	n, err := r.f.ReadAt(p, r.l.Extents[ext].Offset+within)
	if err != nil && err != io.EOF {
		err = &DiskError{Op: "reading", Path: r.path, Offset: r.l.Extents[ext].Offset + within, Err: err}
	}
	return n, err
}

func (r *rawIO) writeExtent(ext int, p []byte, within int64) (int, error) {
	n, err := r.f.WriteAt(p, r.l.Extents[ext].Offset+within)
	if err != nil {
		err = &DiskError{Op: "writing", Path: r.path, Offset: r.l.Extents[ext].Offset + within + int64(n), Err: err}
	}
	return n, err
}

// sync makes everything written durable. It runs whenever pieces wait
// for the record, even if this process wrote none of them (a --recheck
// may have found data a crashed run left in the page cache).
func (r *rawIO) sync() error {
	if err := unix.Fdatasync(int(r.f.Fd())); err != nil {
		return &DiskError{Op: "flushing", Path: r.path, Offset: -1, Err: err}
	}
	return nil
}

func (r *rawIO) close() error { return r.f.Close() }

func (r *rawIO) identity() string { return identityOf(r.f, r.path) }

// dirIO stores each extent as its own file named as in the torrent
// (partclone's -T layout). Files are opened on first use and kept open up
// to a limit; past it, each call opens and closes its file.
type dirIO struct {
	dir   string
	l     *Layout
	write bool
	mu    sync.Mutex
	open  map[int]*os.File
	dirty map[int]bool
	lock  *os.File // the held .ezio-lock, when writing
}

const dirIOMaxOpen = 512

func openDir(dir string, l *Layout, write bool) (*dirIO, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	d := &dirIO{dir: dir, l: l, write: write, open: map[int]*os.File{}, dirty: map[int]bool{}}
	if write {
		if d.lock, err = lockDir(dir); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// path finds an extent's file: the torrent's own name first, then the
// offset in partclone's 32-digit and the older 16-digit forms.
func (d *dirIO) path(ext int) string {
	p := filepath.Join(d.dir, d.l.FileNames[ext])
	if d.write {
		return p
	}
	if _, err := os.Stat(p); err == nil {
		return p
	}
	off := d.l.Extents[ext].Offset
	for _, alt := range []string{fmt.Sprintf("%032x", off), fmt.Sprintf("%016x", off)} {
		q := filepath.Join(d.dir, alt)
		if _, err := os.Stat(q); err == nil {
			return q
		}
	}
	return p
}

// file returns the extent's file and whether the caller must close it.
func (d *dirIO) file(ext int) (*os.File, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if f, ok := d.open[ext]; ok {
		return f, false, nil
	}
	flag := os.O_RDONLY
	if d.write {
		flag = os.O_RDWR | os.O_CREATE
	}
	f, err := os.OpenFile(d.path(ext), flag, 0o644)
	if err != nil {
		return nil, false, err
	}
	if len(d.open) >= dirIOMaxOpen {
		return f, true, nil
	}
	d.open[ext] = f
	return f, false, nil
}

func (d *dirIO) readExtent(ext int, p []byte, within int64) (int, error) {
	f, closeIt, err := d.file(ext)
	if err != nil {
		return 0, err
	}
	if closeIt {
		defer f.Close()
	}
	n, err := f.ReadAt(p, within)
	if err != nil && err != io.EOF {
		err = &DiskError{Op: "reading", Path: f.Name(), File: d.l.FileNames[ext], Offset: d.l.Extents[ext].Offset + within, Err: err}
	}
	return n, err
}

func (d *dirIO) writeExtent(ext int, p []byte, within int64) (int, error) {
	f, closeIt, err := d.file(ext)
	if err != nil {
		return 0, &DiskError{Op: "opening", Path: filepath.Join(d.dir, d.l.FileNames[ext]), File: d.l.FileNames[ext], Offset: d.l.Extents[ext].Offset + within, Err: err}
	}
	n, err := f.WriteAt(p, within)
	if err != nil {
		err = &DiskError{Op: "writing", Path: f.Name(), File: d.l.FileNames[ext], Offset: d.l.Extents[ext].Offset + within + int64(n), Err: err}
	}
	if closeIt {
		// A file we could not keep open is synced now, so a later sync()
		// does not need it.
		if err == nil {
			err = unix.Fdatasync(int(f.Fd()))
		}
		f.Close()
		return n, err
	}
	d.mu.Lock()
	d.dirty[ext] = true
	d.mu.Unlock()
	return n, err
}

func (d *dirIO) sync() error {
	d.mu.Lock()
	exts := make([]int, 0, len(d.dirty))
	files := make([]*os.File, 0, len(d.dirty))
	for ext := range d.dirty {
		exts = append(exts, ext)
		files = append(files, d.open[ext])
	}
	d.dirty = map[int]bool{}
	d.mu.Unlock()
	var first error
	for i, f := range files {
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			d.mu.Lock()
			d.dirty[exts[i]] = true // still not durable
			d.mu.Unlock()
			if first == nil {
				first = &DiskError{Op: "flushing", Path: f.Name(), File: d.l.FileNames[exts[i]], Offset: -1, Err: err}
			}
		}
	}
	return first
}

func (d *dirIO) identity() string {
	f, err := os.Open(d.dir)
	if err != nil {
		return ""
	}
	defer f.Close()
	return identityOf(f, d.dir)
}

func (d *dirIO) close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var first error
	for _, f := range d.open {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	d.open = nil
	if d.lock != nil {
		d.lock.Close() // releases the flock
		d.lock = nil
	}
	return first
}

// openExtentIO opens a target or source of any kind.
func openExtentIO(path string, l *Layout, write bool) (extentIO, TargetKind, error) {
	kind, err := KindOf(path)
	if err != nil {
		return nil, "", err
	}
	switch kind {
	case TargetDir:
		d, err := openDir(path, l, write)
		return d, kind, err
	default:
		if !write {
			if _, err := os.Stat(path); err != nil {
				return nil, kind, err
			}
		}
		r, err := openRaw(path, l, write)
		return r, kind, err
	}
}

// readRange reads torrent bytes [off, off+len(p)) through the layout.
func readRange(l *Layout, xio extentIO, p []byte, off int64) (int, error) {
	var n int
	var rerr error
	l.mapRange(off, int64(len(p)), func(s segment) bool {
		k, err := xio.readExtent(s.ext, p[s.buf:s.buf+s.n], s.within)
		n += k
		if err != nil || int64(k) < s.n {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			rerr = err
			return false
		}
		return true
	})
	return n, rerr
}

// writeRange writes torrent bytes [off, off+len(p)) through the layout.
func writeRange(l *Layout, xio extentIO, p []byte, off int64) (int, error) {
	var n int
	var werr error
	l.mapRange(off, int64(len(p)), func(s segment) bool {
		k, err := xio.writeExtent(s.ext, p[s.buf:s.buf+s.n], s.within)
		n += k
		if err != nil {
			werr = err
			return false
		}
		return true
	})
	if werr == nil && n < len(p) {
		werr = io.ErrShortWrite
	}
	return n, werr
}

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
func openExclusive(path string, l *Layout) (*os.File, error) {
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

// nameHolder adds who holds a device to the safety check's "busy"
// refusal (another deploy, a mount, a program), where it can be found.
func nameHolder(target string, err error) error {
	var re *disks.RefusedError
	if !errors.As(err, &re) || re.Kind != disks.RefusedBusy {
		return err
	}
	if h := findHolder(target); h != "" {
		re.Reason += " (" + h + ")"
	}
	return err
}
