package partclone

import (
	"errors"
	"ezio/disks/disktest"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

func TestProgramFor(t *testing.T) {
	orig := lookPath
	t.Cleanup(func() { lookPath = orig })
	lookPath = func(string) (string, error) { return "/usr/sbin/x", nil }
	tests := []struct {
		fstype, prog string
		fallback     bool
	}{
		{"ext2", "partclone.extfs", false}, {"ext3", "partclone.extfs", false}, {"ext4", "partclone.extfs", false},
		{"vfat", "partclone.fat", false}, {"fat12", "partclone.fat", false}, {"fat16", "partclone.fat", false},
		{"fat32", "partclone.fat", false}, {"msdos", "partclone.fat", false},
		{"ntfs", "partclone.ntfs", false}, {"xfs", "partclone.xfs", false}, {"btrfs", "partclone.btrfs", false},
		{"exfat", "partclone.exfat", false}, {"f2fs", "partclone.f2fs", false}, {"hfsplus", "partclone.hfsp", false},
		{"reiserfs", "partclone.reiserfs", false}, {"nilfs2", "partclone.nilfs2", false}, {"minix", "partclone.minix", false},
		{"ufs", "partclone.ufs", false}, {"VMFS", "partclone.vmfs", false}, {"jfs", "partclone.jfs", false},
		{"", "partclone.dd", true}, {"swap", "partclone.dd", true}, {"zfs_member", "partclone.dd", true},
	}
	for _, tt := range tests {
		prog, fallback, err := ProgramFor(tt.fstype)
		if err != nil || prog != tt.prog || fallback != tt.fallback {
			t.Errorf("ProgramFor(%q) = %s, %v, %v; want %s, %v", tt.fstype, prog, fallback, err, tt.prog, tt.fallback)
		}
	}

	lookPath = func(string) (string, error) { return "", exec.ErrNotFound }
	_, _, err := ProgramFor("jfs")
	if err == nil || !strings.Contains(err.Error(), "partclone.jfs") ||
		!strings.Contains(err.Error(), "install the Debian package partclone (apt-get install partclone)") {
		t.Errorf("missing program error: %v", err)
	}
}

func TestProgramForInstalled(t *testing.T) {
	if _, err := exec.LookPath("partclone.extfs"); err != nil {
		skipOrFail(t, "needs partclone: apt-get install partclone")
	}
	if prog, _, err := ProgramFor("ext4"); err != nil || prog != "partclone.extfs" {
		t.Errorf("ProgramFor(ext4) = %s, %v", prog, err)
	}
	// Debian's 0.3.23 has no partclone.jfs; the error must say so.
	if _, err := exec.LookPath("partclone.jfs"); errors.Is(err, exec.ErrNotFound) {
		if _, _, err := ProgramFor("jfs"); err == nil || !strings.Contains(err.Error(), "apt-get install partclone") {
			t.Errorf("ProgramFor(jfs) = %v", err)
		}
	}
}

func TestVersion(t *testing.T) {
	if _, err := exec.LookPath("partclone.dd"); err != nil {
		skipOrFail(t, "needs partclone: apt-get install partclone")
	}
	v, err := Version()
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(v) {
		t.Errorf("Version() = %q", v)
	}
	t.Logf("partclone %s", v)
}

func TestDetectFSNone(t *testing.T) {
	needRootAndTools(t)
	dev := disktest.NewLoop(t, 4<<20, nil)
	fs, err := DetectFS(dev)
	if err != nil || fs != "" {
		t.Errorf("DetectFS(empty device) = %q, %v", fs, err)
	}
	if _, err := DetectFS("/nonexistent/device"); err == nil {
		t.Error("DetectFS of a missing device succeeded")
	}
}
