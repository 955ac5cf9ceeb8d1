package extent

import (
	"errors"
	"ezio/engine/torrentfile"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// IO reads and writes the data of one extent. Every call is already
// clamped by the Layout to lie inside the extent.
type IO interface {
	readExtent(ext int, p []byte, within int64) (int, error)
	writeExtent(ext int, p []byte, within int64) (int, error)
	sync() error
	Close() error
	// Identity describes the target for the resume record ("" if unknown).
	Identity() string
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
	l    *torrentfile.Layout
}

func openRaw(path string, l *torrentfile.Layout, write bool) (*rawIO, error) {
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

func (r *rawIO) Close() error { return r.f.Close() }

func (r *rawIO) Identity() string { return identityOf(r.f, r.path) }

// dirIO stores each extent as its own file named as in the torrent
// (partclone's -T layout). Files are opened on first use and kept open up
// to a limit; past it, each call opens and closes its file.
type dirIO struct {
	dir   string
	l     *torrentfile.Layout
	write bool
	mu    sync.Mutex
	open  map[int]*os.File
	dirty map[int]bool
	lock  *os.File // the held .ezio-lock, when writing
}

const dirIOMaxOpen = 512

func openDir(dir string, l *torrentfile.Layout, write bool) (*dirIO, error) {
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

// FilePath is the file of extent ext in a directory source (see path).
func FilePath(dir string, l *torrentfile.Layout, ext int) string {
	return (&dirIO{dir: dir, l: l}).path(ext)
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

func (d *dirIO) Identity() string {
	f, err := os.Open(d.dir)
	if err != nil {
		return ""
	}
	defer f.Close()
	return identityOf(f, d.dir)
}

func (d *dirIO) Close() error {
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

// Open opens a target or source of any kind.
func Open(path string, l *torrentfile.Layout, write bool) (IO, TargetKind, error) {
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

// ReadRange reads torrent bytes [off, off+len(p)) through the layout.
func ReadRange(l *torrentfile.Layout, xio IO, p []byte, off int64) (int, error) {
	return mapIO(l, p, off, xio.readExtent, io.ErrUnexpectedEOF)
}

// writeRange writes torrent bytes [off, off+len(p)) through the layout.
func writeRange(l *torrentfile.Layout, xio IO, p []byte, off int64) (int, error) {
	n, err := mapIO(l, p, off, xio.writeExtent, io.ErrShortWrite)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	return n, err
}

// mapIO runs do on each extent's part of torrent bytes [off,
// off+len(p)), in order, and stops at the first error or at a part done
// short (short is then the error).
func mapIO(l *torrentfile.Layout, p []byte, off int64, do func(ext int, b []byte, within int64) (int, error), short error) (int, error) {
	var n int
	var ferr error
	l.MapRange(off, int64(len(p)), func(s torrentfile.Segment) bool {
		k, err := do(s.Ext, p[s.Buf:s.Buf+s.N], s.Within)
		n += k
		if err == nil && int64(k) < s.N {
			err = short
		}
		ferr = err
		return err == nil
	})
	return n, ferr
}
