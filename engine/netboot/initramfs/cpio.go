// Package initramfs builds the deploy environment that network-booted
// machines run: a kernel and a gzip'd cpio (newc) holding the ezio binary
// as /init, the kernel modules for disks and network cards, and the tools
// a whole-disk deploy runs with their shared libraries.
package initramfs

import (
	"bufio"

	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// cpio newc: a 110-byte ASCII header, the NUL-terminated name and the data,
// each padded to 4 bytes; a "TRAILER!!!" entry ends the archive.
const (
	newcMagic   = "070701"
	newcTrailer = "TRAILER!!!"
	modeDir     = 0o040000
	modeFile    = 0o100000
	modeSymlink = 0o120000
)

// Writer writes a cpio newc archive, adding the parent directories of
// every entry once.
type Writer struct {
	w    *bufio.Writer
	off  int64
	ino  uint32
	dirs map[string]bool
	err  error
}

// NewWriter starts an archive on w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: bufio.NewWriterSize(w, 1<<20), dirs: map[string]bool{"": true, ".": true, "/": true}}
}

func (w *Writer) header(name string, mode uint32, size int64) {
	if w.err != nil {
		return
	}
	w.ino++
	nlink := 1
	if mode&0o170000 == modeDir {
		nlink = 2
	}
	h := fmt.Sprintf("%s%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		newcMagic, w.ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(name)+1, 0)
	w.write([]byte(h))
	w.write([]byte(name + "\x00"))
	w.pad()
}

func (w *Writer) write(b []byte) {
	if w.err != nil {
		return
	}
	n, err := w.w.Write(b)
	w.off += int64(n)
	w.err = err
}

func (w *Writer) pad() {
	if r := w.off % 4; r != 0 {
		w.write(make([]byte, 4-r))
	}
}

// mkdirs adds the parents of name that are not in the archive yet.
func (w *Writer) mkdirs(name string) {
	dir := path.Dir(name)
	if w.dirs[dir] {
		return
	}
	w.mkdirs(dir)
	w.dirs[dir] = true
	w.header(dir, modeDir|0o755, 0)
}

func clean(name string) string { return strings.TrimPrefix(path.Clean("/"+name), "/") }

// Dir adds a directory.
func (w *Writer) Dir(name string, perm uint32) error {
	name = clean(name)
	if !w.dirs[name] {
		w.mkdirs(name)
		w.dirs[name] = true
		w.header(name, modeDir|perm, 0)
	}
	return w.err
}

// File adds a regular file of size bytes read from r.
func (w *Writer) File(name string, perm uint32, size int64, r io.Reader) error {
	name = clean(name)
	w.mkdirs(name)
	w.header(name, modeFile|perm, size)
	if w.err != nil {
		return w.err
	}
	n, err := io.Copy(w.w, io.LimitReader(r, size))
	w.off += n
	if err == nil && n != size {
		err = fmt.Errorf("%s: %d bytes, expected %d", name, n, size)
	}
	if err != nil {
		w.err = err
		return err
	}
	w.pad()
	return w.err
}

// Symlink adds a symbolic link name -> target.
func (w *Writer) Symlink(name, target string) error {
	name = clean(name)
	w.mkdirs(name)
	w.header(name, modeSymlink|0o777, int64(len(target)))
	w.write([]byte(target))
	w.pad()
	return w.err
}

// Close writes the trailer and flushes; it does not close the underlying
// writer.
func (w *Writer) Close() error {
	w.header(newcTrailer, 0, 0)
	if w.err != nil {
		return w.err
	}
	return w.w.Flush()
}

// Entry is one member of an archive, as List reads it.
type Entry struct {
	Name string
	Mode uint32
	Size int64
	Link string // a symlink's target
}

// List reads the entries of a newc archive (not compressed).
func List(r io.Reader) ([]Entry, error) {
	br := bufio.NewReader(r)
	var off int64
	read := func(n int64) ([]byte, error) {
		b := make([]byte, n)
		_, err := io.ReadFull(br, b)
		off += n
		return b, err
	}
	skipPad := func() error {
		if p := (4 - off%4) % 4; p > 0 {
			_, err := read(p)
			return err
		}
		return nil
	}
	var out []Entry
	for {
		h, err := read(110)
		if err != nil {
			return nil, fmt.Errorf("cpio header at %d: %w", off, err)
		}
		if string(h[:6]) != newcMagic {
			return nil, fmt.Errorf("cpio: bad magic %q at %d", h[:6], off-110)
		}
		field := func(i int) (v uint64) {
			fmt.Sscanf(string(h[6+8*i:14+8*i]), "%08X", &v)
			return v
		}
		mode, size, namesize := uint32(field(1)), int64(field(6)), int64(field(11))
		nb, err := read(namesize)
		if err != nil {
			return nil, err
		}
		name := strings.TrimRight(string(nb), "\x00")
		if err := skipPad(); err != nil {
			return nil, err
		}
		if name == newcTrailer {
			sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
			return out, nil
		}
		e := Entry{Name: name, Mode: mode, Size: size}
		if mode&0o170000 == modeSymlink {
			b, err := read(size)
			if err != nil {
				return nil, err
			}
			e.Link = string(b)
		} else if _, err := io.CopyN(io.Discard, br, size); err != nil {
			return nil, err
		} else {
			off += size
		}
		if err := skipPad(); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
}
