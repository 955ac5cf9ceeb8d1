// Package mountinfo reads the kernel's table of mounts,
// /proc/self/mountinfo (proc(5)), for every package that must know what is
// mounted: the safety checks in disks, partclone's refusal of a mounted
// source, and the engine's explanation of a busy target. It imports the
// standard library only, so any package may use it.
package mountinfo

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Path is the running process's view of the mount table.
const Path = "/proc/self/mountinfo"

// Mount is one line of mountinfo:
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
type Mount struct {
	Dev          uint64 // the filesystem's device number (field 3)
	MajorMinor   string // the same as written, "98:0"
	MountPoint   string // unescaped
	Options      string // per-mount options, "rw,noatime"
	FSType       string
	Source       string // unescaped; "/dev/root", "overlay", ...
	SuperOptions string // per-superblock options
}

// ReadWrite says whether the mount may be written through.
func (m Mount) ReadWrite() bool {
	for _, o := range strings.Split(m.Options, ",") {
		if o == "rw" {
			return true
		}
	}
	return false
}

// Parse reads the mountinfo format; lines it cannot read are skipped.
func Parse(r io.Reader) ([]Mount, error) {
	var out []Mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
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
		dev, err := ParseDevice(f[2])
		if err != nil {
			continue
		}
		m := Mount{
			Dev:        dev,
			MajorMinor: f[2],
			MountPoint: Unescape(f[4]),
			Options:    f[5],
			FSType:     f[sep+1],
			Source:     Unescape(f[sep+2]),
		}
		if sep+3 < len(f) {
			m.SuperOptions = f[sep+3]
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

// Read parses the mount table at path (Path for this process's own).
func Read(path string) ([]Mount, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the mount table: %w", err)
	}
	defer f.Close()
	ms, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return ms, nil
}

// ParseDevice reads a device number written "MAJOR:MINOR".
func ParseDevice(s string) (uint64, error) {
	maj, min, ok := strings.Cut(s, ":")
	if !ok {
		return 0, fmt.Errorf("bad device number %q", s)
	}
	a, err := strconv.ParseUint(maj, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("bad device number %q", s)
	}
	b, err := strconv.ParseUint(min, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("bad device number %q", s)
	}
	return unix.Mkdev(uint32(a), uint32(b)), nil
}

// Unescape undoes the kernel's \040-style escaping of spaces, tabs,
// newlines and backslashes in /proc paths.
func Unescape(s string) string {
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
