package disks

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Refusal names the rule a refused target broke, for callers that act on
// the kind (the wizard offers "choose another disk" for most, nothing for
// a mounted one).
type Refusal string

const (
	RefusedMounted  Refusal = "mounted"
	RefusedSwap     Refusal = "swap"
	RefusedHolder   Refusal = "holder"    // in use by LVM, dm-crypt, md RAID, a loop device
	RefusedMember   Refusal = "member"    // carries an LVM or RAID member signature
	RefusedSystem   Refusal = "system"    // the running system or live medium is on it
	RefusedReadOnly Refusal = "read-only" // kernel read-only flag
	RefusedTooSmall Refusal = "too-small"
	RefusedNoMedium Refusal = "no-medium"
	RefusedBusy     Refusal = "busy" // the kernel refused an exclusive open
	RefusedNotFound Refusal = "not-found"
	RefusedNotBlock Refusal = "not-block" // a character device, fifo, socket
)

// RefusedError says why ezio will not write to a target and what the user
// can do about it. No flag overrides it.
type RefusedError struct {
	Target string
	Reason string // what is wrong, starting with "it ...", no final period
	Hint   string // what to do, a sentence without a final period
	Kind   Refusal
}

func (e *RefusedError) Error() string {
	s := "refusing to write to " + e.Target + ": " + e.Reason
	if e.Hint != "" {
		s += ". " + e.Hint
	}
	return s
}

// CheckWritable returns nil if ezio may write needBytes to target, a
// *RefusedError if it must not, or another error if the target cannot be
// inspected. It only reads: /proc, /sys and a few kilobytes of the devices.
// A regular file or a directory (an extent-dir target) may be written; a
// path that does not exist yet may be created, unless it is under /dev or
// its directory is missing.
func CheckWritable(target string, needBytes int64) error {
	s, err := loadState()
	if err != nil {
		return err
	}
	return s.check(target, needBytes)
}

func (s *state) check(target string, need int64) error {
	refuse := func(kind Refusal, reason, hint string) error {
		return &RefusedError{Target: target, Reason: reason, Hint: hint, Kind: kind}
	}
	if target == "" {
		return refuse(RefusedNotFound, "no target was given", "Name a disk, a partition or an image file")
	}
	// Judge where the path really leads: a symlink (even a dangling one)
	// into /dev, /proc or /sys is refused like the place it points to.
	abs := resolvePath(cleanPath(target))
	if kernelPath(abs) {
		return refuse(RefusedNotBlock, "it is a kernel interface, not a disk or an image file",
			"Run `ezio disks` to see the disks")
	}
	var st unix.Stat_t
	if err := unix.Stat(target, &st); err != nil {
		if !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("inspecting %s: %w", target, err)
		}
		if underDev(abs) {
			return refuse(RefusedNotFound, "there is no such device",
				"Run `ezio disks` to see the disks, and check the name or the cable")
		}
		dir := filepath.Dir(abs)
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return refuse(RefusedNotFound, "its directory "+dir+" does not exist",
				"Create it first: mkdir -p "+shellQuote(dir))
		}
		return nil // a new image file
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		return s.checkDevice(target, st.Rdev, need, false)
	case unix.S_IFREG, unix.S_IFDIR:
		if underDev(abs) {
			// A typo such as /dev/sdz1 for a disk that is not there must
			// not become an image file filling the RAM-backed /dev.
			return refuse(RefusedNotBlock, "it is not a block device",
				"Run `ezio disks` to see the disks, and check the name")
		}
		if st.Mode&unix.S_IFMT == unix.S_IFREG {
			return s.checkFile(target, &st)
		}
		return nil // an extent-directory target
	}
	return refuse(RefusedNotBlock, "it is not a block device, a regular file or a directory",
		"Run `ezio disks` to see the disks")
}

// checkFile refuses an image file that is swap or that backs a loop device
// in use; any other file may be written.
func (s *state) checkFile(target string, st *unix.Stat_t) error {
	for _, sw := range s.swaps {
		if sw.isFile && sw.dev == st.Dev && sw.ino == st.Ino {
			return &RefusedError{Target: target, Kind: RefusedSwap,
				Reason: "it is an active swap file",
				Hint:   "Turn the swap off first: swapoff " + shellQuote(sw.path)}
		}
	}
	same := func(b *unix.Stat_t) bool {
		return b.Mode&unix.S_IFMT == unix.S_IFREG && b.Dev == st.Dev && b.Ino == st.Ino
	}
	for _, l := range s.loopsBackedBy(same) {
		err := s.checkDevice(l.path(), l.dev, 0, true)
		var re *RefusedError
		if errors.As(err, &re) {
			reason := "it backs " + l.path() + ", and " + re.Reason
			if rest, ok := strings.CutPrefix(re.Reason, "it "); ok {
				reason = "it backs " + l.path() + ", which " + rest
			}
			return &RefusedError{Target: target, Reason: reason, Hint: re.Hint, Kind: re.Kind}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// checkDevice applies the rules to a block device. A whole disk conflicts
// with each of its partitions, and a partition with its disk. asBacking
// checks only whether the device is in use (for a loop whose file is the
// target). The rules run in the order of deviceRules: the first that
// objects gives the refusal, so the most telling reason is named.
func (s *state) checkDevice(target string, dev uint64, need int64, asBacking bool) error {
	n, err := nodeByDev(dev)
	if err != nil {
		return fmt.Errorf("inspecting %s: %w", target, err)
	}
	c := &deviceCheck{s: s, target: target, n: n, disk: n.whole(), need: need, asBacking: asBacking}
	c.related = []node{n}
	if c.disk.dev != n.dev {
		c.related = append(c.related, c.disk)
	} else {
		c.related = append(c.related, n.partitions()...)
	}
	for _, rule := range deviceRules {
		if err := rule(c); err != nil {
			return err
		}
	}
	return nil
}

// deviceCheck is one block device under checkDevice's rules.
type deviceCheck struct {
	s         *state
	target    string
	n, disk   node   // the device, and its whole disk (the same for a disk)
	related   []node // the device, then its disk or its partitions
	need      int64
	asBacking bool
	size      int64 // read by checkSize
}

// deviceRules, in the order they are asked.
var deviceRules = []func(*deviceCheck) error{
	(*deviceCheck).checkSystem,
	(*deviceCheck).checkMounted,
	(*deviceCheck).checkSwap,
	(*deviceCheck).checkHolders,
	(*deviceCheck).checkLoopBacking,
	(*deviceCheck).checkMember,
	(*deviceCheck).checkReadOnly,
	(*deviceCheck).checkMedium,
	(*deviceCheck).checkBusy,
	(*deviceCheck).checkSize,
}

func (c *deviceCheck) refuse(kind Refusal, reason, hint string) error {
	return &RefusedError{Target: c.target, Reason: reason, Hint: hint, Kind: kind}
}

// which says which related device a finding is about, if not the target.
func (c *deviceCheck) which(r node) string {
	switch {
	case r.dev == c.n.dev:
		return ""
	case r.dev == c.disk.dev:
		return " (its disk " + r.path() + ")"
	}
	return " (partition " + r.path() + ")"
}

func (c *deviceCheck) checkSystem() error {
	mp, ok := c.s.system[c.disk.dev]
	if !ok {
		return nil
	}
	reason := "it is the disk the running system is on (" + mp + " is mounted from it)"
	if c.disk.dev != c.n.dev {
		reason = "it is on " + c.disk.path() + ", the disk the running system is on (" + mp + " is mounted from it)"
	}
	return c.refuse(RefusedSystem, reason, "Choose another disk: ezio never writes to the disk it runs from")
}

func (c *deviceCheck) checkMounted() error {
	var mps []string
	first := ""
	for _, r := range c.related {
		for _, mp := range c.s.mountsOf(r.dev) {
			if first == "" {
				first = "it is mounted at " + mp + c.which(r)
			}
			mps = append(mps, shellQuote(mp))
		}
	}
	if first == "" {
		return nil
	}
	if len(mps) > 1 {
		first += fmt.Sprintf(" and %d more place", len(mps)-1)
		if len(mps) > 2 {
			first += "s"
		}
	}
	return c.refuse(RefusedMounted, first, "Unmount it first: umount "+strings.Join(mps, " "))
}

func (c *deviceCheck) checkSwap() error {
	for _, r := range c.related {
		for _, sw := range c.s.swaps {
			if !sw.isFile && sw.dev == r.dev {
				return c.refuse(RefusedSwap, "it is in use as swap"+c.which(r),
					"Turn the swap off first: swapoff "+shellQuote(sw.path))
			}
		}
	}
	return nil
}

func (c *deviceCheck) checkHolders() error {
	for _, r := range c.related {
		if hs := r.holders(); len(hs) > 0 {
			what, hint := describeHolder(hs[0])
			return c.refuse(RefusedHolder, "it is in use by "+what+c.which(r), hint)
		}
	}
	return nil
}

func (c *deviceCheck) checkLoopBacking() error {
	for _, r := range c.related {
		isR := func(b *unix.Stat_t) bool { return b.Mode&unix.S_IFMT == unix.S_IFBLK && b.Rdev == r.dev }
		if ls := c.s.loopsBackedBy(isR); len(ls) > 0 {
			return c.refuse(RefusedHolder, "it is the backing device of loop device "+ls[0].path()+c.which(r),
				"Detach the loop device first: losetup -d "+ls[0].path())
		}
	}
	return nil
}

// checkMember refuses LVM and RAID members, in use or not: their data
// belongs to a volume that may be assembled elsewhere.
func (c *deviceCheck) checkMember() error {
	if c.asBacking {
		return nil
	}
	for _, r := range c.related {
		p := r.path()
		if r.dev == c.n.dev {
			p = c.target
		}
		sig, err := Probe(p)
		if err != nil {
			continue // an unreadable partition is not evidence of a member
		}
		switch sig.Type {
		case "LVM2_member":
			return c.refuse(RefusedMember, "it carries an LVM physical volume"+c.which(r),
				"If its volume group is no longer needed, remove the volume first: pvremove "+r.path())
		case "linux_raid_member":
			return c.refuse(RefusedMember, "it is a member of a RAID array"+c.which(r),
				"If the array is no longer needed, clear the member first: mdadm --zero-superblock "+r.path())
		}
	}
	return nil
}

func (c *deviceCheck) checkReadOnly() error {
	if c.asBacking || !(c.n.readOnly() || c.disk.readOnly()) {
		return nil
	}
	hint := "Check the write-protect switch, or clear the flag: blockdev --setrw " + c.target
	if bf := c.disk.backingFile(); bf != "" {
		hint = "Attach the file again without -r: losetup -d " + c.disk.path() + " && losetup -f " + shellQuote(bf)
	}
	return c.refuse(RefusedReadOnly, "it is read-only", hint)
}

func (c *deviceCheck) checkMedium() error {
	size, err := c.n.size()
	if err != nil {
		return fmt.Errorf("inspecting %s: %w", c.target, err)
	}
	c.size = size
	if size == 0 && !c.asBacking {
		return c.refuse(RefusedNoMedium, "it has no medium (its size is 0)", "Insert the medium and look again")
	}
	return nil
}

// checkBusy asks the kernel, which knows users we cannot see from here
// (mounts in other namespaces, other programs' exclusive opens).
func (c *deviceCheck) checkBusy() error {
	fd, err := unix.Open(c.target, unix.O_RDONLY|unix.O_EXCL|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	switch {
	case err == nil:
		unix.Close(fd)
		return nil
	case errors.Is(err, unix.EBUSY):
		return c.refuse(RefusedBusy, "it is in use (the kernel reports it busy)",
			"Find what holds it, for example with: lsblk "+c.target+"; fuser -vm "+c.target)
	case errors.Is(err, unix.ENOMEDIUM):
		return c.refuse(RefusedNoMedium, "it has no medium", "Insert the medium and look again")
	}
	return fmt.Errorf("inspecting %s: %w", c.target, err)
}

func (c *deviceCheck) checkSize() error {
	if c.asBacking || c.size >= c.need {
		return nil
	}
	return c.refuse(RefusedTooSmall,
		fmt.Sprintf("it holds %s (%d bytes) but the image needs %s (%d bytes)", HumanBytes(c.size), c.size, HumanBytes(c.need), c.need),
		"Choose a target of at least "+HumanBytes(c.need))
}

// resolvePath follows symlinks as far as they lead, dangling ones
// included (the link's target is what a write would create), and returns
// the absolute path reached.
func resolvePath(abs string) string {
	for range 40 {
		fi, err := os.Lstat(abs)
		if err != nil {
			// Missing: resolve its directory, keep the last element.
			dir, base := filepath.Split(abs)
			if d, err := filepath.EvalSymlinks(dir); err == nil {
				return filepath.Join(d, base)
			}
			return abs
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			if r, err := filepath.EvalSymlinks(abs); err == nil {
				return r
			}
			return abs
		}
		to, err := os.Readlink(abs)
		if err != nil {
			return abs
		}
		if !filepath.IsAbs(to) {
			to = filepath.Join(filepath.Dir(abs), to)
		}
		abs = filepath.Clean(to)
	}
	return abs
}

// underDev says whether a path is in /dev, where only block devices are
// targets. /dev/shm is ordinary shared memory and holds image files fine.
func underDev(abs string) bool {
	if abs == "/dev/shm" || strings.HasPrefix(abs, "/dev/shm/") {
		return false
	}
	return abs == "/dev" || strings.HasPrefix(abs, "/dev/")
}

func kernelPath(abs string) bool {
	for _, p := range []string{"/proc", "/sys"} {
		if abs == p || strings.HasPrefix(abs, p+"/") {
			return true
		}
	}
	return false
}

// shellQuote quotes a path for a command the user can paste.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:@=,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
