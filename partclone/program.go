// Package partclone finds and runs the right partclone.<fs> program, parses
// its progress output and the torrent.info it writes beside an image, and
// verifies image directories against it. It imports only the standard
// library and never touches the terminal.
package partclone

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

// FallbackProgram copies every block; it is used for filesystems partclone
// does not know.
const FallbackProgram = "partclone.dd"

// programs maps blkid's TYPE values (and common other spellings) to the
// partclone program that understands them.
var programs = map[string]string{
	"ext2": "partclone.extfs", "ext3": "partclone.extfs", "ext4": "partclone.extfs",
	"ext4dev": "partclone.extfs", "extfs": "partclone.extfs",
	"vfat": "partclone.fat", "fat": "partclone.fat", "fat12": "partclone.fat",
	"fat16": "partclone.fat", "fat32": "partclone.fat", "msdos": "partclone.fat",
	"ntfs": "partclone.ntfs", "ntfs3": "partclone.ntfs",
	"xfs":     "partclone.xfs",
	"btrfs":   "partclone.btrfs",
	"exfat":   "partclone.exfat",
	"f2fs":    "partclone.f2fs",
	"hfsplus": "partclone.hfsp", "hfs+": "partclone.hfsp", "hfsp": "partclone.hfsp",
	"reiserfs": "partclone.reiserfs",
	"reiser4":  "partclone.reiser4",
	"nilfs2":   "partclone.nilfs2",
	"minix":    "partclone.minix",
	"ufs":      "partclone.ufs",
	"vmfs":     "partclone.vmfs", "vmfs_volume_member": "partclone.vmfs",
	"jfs":  "partclone.jfs",
	"apfs": "partclone.apfs",
}

// installHint is appended to every "program not found" error.
const installHint = "install the Debian package partclone (apt-get install partclone)"

// lookPath is exec.LookPath, replaceable in tests.
var lookPath = exec.LookPath

// ProgramFor names the partclone program for a filesystem type as blkid
// reports it. Unknown types and "" get partclone.dd, which copies every
// block, with fallback set. A program not on PATH is an error that says
// which one and how to install it.
func ProgramFor(fstype string) (prog string, fallback bool, err error) {
	prog, ok := programs[strings.ToLower(strings.TrimSpace(fstype))]
	if !ok {
		prog, fallback = FallbackProgram, true
	}
	if _, err := lookPath(prog); err != nil {
		what := fmt.Sprintf("filesystem %q", fstype)
		if fallback {
			what = fmt.Sprintf("unknown filesystem %q (copied block by block)", fstype)
		}
		return "", fallback, fmt.Errorf("%s is needed for %s but is not on PATH: %s", prog, what, installHint)
	}
	return prog, fallback, nil
}

// DetectFS asks blkid's low-level probe for the filesystem type on device.
// It returns "" when blkid finds none.
func DetectFS(device string) (string, error) {
	if _, err := lookPath("blkid"); err != nil {
		return "", fmt.Errorf("blkid is not on PATH: install the Debian package util-linux")
	}
	// blkid says "nothing found" (2) for a missing device too.
	if _, err := os.Stat(device); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "blkid", "-p", "-o", "value", "-s", "TYPE", device)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		var exit *exec.ExitError
		// Exit status 2: nothing recognised on the device.
		if errors.As(err, &exit) && exit.ExitCode() == 2 {
			return "", nil
		}
		return "", fmt.Errorf("blkid -p %s: %w: %s", device, err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

var versionRE = regexp.MustCompile(`v?(\d+\.\d+\.\d+)`)

// Version reports the installed partclone's version, e.g. "0.3.23", from
// `partclone.dd --version` ("Partclone : v0.3.23 (cff71700...)").
func Version() (string, error) {
	if _, err := lookPath(FallbackProgram); err != nil {
		return "", fmt.Errorf("%s is not on PATH: %s", FallbackProgram, installHint)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, FallbackProgram, "--version")
	cmd.Env = childEnv()
	out, err := cmd.CombinedOutput()
	m := versionRE.FindSubmatch(out)
	if m == nil {
		if err != nil {
			return "", fmt.Errorf("%s --version: %w", FallbackProgram, err)
		}
		return "", fmt.Errorf("%s --version printed no version: %q", FallbackProgram, clip(string(out)))
	}
	return string(m[1]), nil
}
