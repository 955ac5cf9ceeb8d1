package machine

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Part is a deployed partition to mount.
type Part struct {
	Number     int
	Node       string
	Filesystem string // blkid's type
}

// Mounted is a partition mounted under a Mounts' directory.
type Mounted struct {
	Part
	Dir string
}

// Mounts are the deployed partitions mounted under one temporary
// directory (DIR/p1, DIR/p2, ...), private to this process's mount
// namespace propagation.
type Mounts struct {
	Dir   string
	Parts []Mounted
	// Skipped says why a partition was not mounted, by number.
	Skipped map[int]string
}

// kernelTypes are the filesystems mounted by the kernel here; NTFS goes
// through ntfs-3g (FUSE). FAT is not mounted: this kernel has no vfat.
var kernelTypes = map[string]bool{"ext2": true, "ext3": true, "ext4": true, "xfs": true, "btrfs": true}

// MountAll mounts each partition it can, read-write, under a new
// temporary directory. Unmount undoes it.
func MountAll(ctx context.Context, parts []Part) (*Mounts, error) {
	dir, err := os.MkdirTemp("", "ezio-target-")
	if err != nil {
		return nil, err
	}
	m := &Mounts{Dir: dir, Skipped: map[int]string{}}
	for _, p := range parts {
		mnt := filepath.Join(dir, fmt.Sprintf("p%d", p.Number))
		if err := os.Mkdir(mnt, 0o755); err != nil {
			m.Unmount()
			return nil, err
		}
		err := mount(ctx, p, mnt)
		if err != nil {
			os.Remove(mnt)
			m.Skipped[p.Number] = err.Error()
			continue
		}
		m.Parts = append(m.Parts, Mounted{Part: p, Dir: mnt})
	}
	return m, nil
}

func mount(ctx context.Context, p Part, mnt string) error {
	switch {
	case kernelTypes[p.Filesystem]:
		if err := unix.Mount(p.Node, mnt, p.Filesystem, unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
			return fmt.Errorf("mount %s (%s): %w", p.Node, p.Filesystem, err)
		}
		_ = unix.Mount("", mnt, "", unix.MS_PRIVATE, "")
		return nil
	case p.Filesystem == "ntfs":
		if _, err := exec.LookPath("ntfs-3g"); err != nil {
			return fmt.Errorf("NTFS is mounted with ntfs-3g, which is not installed")
		}
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "ntfs-3g", p.Node, mnt).CombinedOutput(); err != nil {
			return fmt.Errorf("ntfs-3g %s: %w: %s", p.Node, err, strings.TrimSpace(string(out)))
		}
		return nil
	case p.Filesystem == "":
		return fmt.Errorf("no filesystem")
	}
	return fmt.Errorf("%s is not mounted here", p.Filesystem)
}

// Unmount unmounts every partition (syncing first) and removes the
// directories.
func (m *Mounts) Unmount() error {
	var first error
	for i := len(m.Parts) - 1; i >= 0; i-- {
		p := m.Parts[i]
		unix.Sync()
		var err error
		for attempt := 0; attempt < 20; attempt++ {
			if err = unix.Unmount(p.Dir, 0); err == nil || err == unix.EINVAL {
				err = nil
				break
			}
			time.Sleep(100 * time.Millisecond) // a script's process may still hold it a moment
		}
		if err != nil && first == nil {
			first = fmt.Errorf("unmounting %s (%s): %w", p.Dir, p.Node, err)
			continue
		}
		os.Remove(p.Dir)
	}
	m.Parts = nil
	if first == nil {
		os.Remove(m.Dir)
	}
	return first
}
