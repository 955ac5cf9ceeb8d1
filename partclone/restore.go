package partclone

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ExtractOptions describe turning a partclone image (a stream, as
// Clonezilla saves it) into an extent directory.
type ExtractOptions struct {
	FSType string    // the filesystem in the image's name: ext4, vfat, ntfs, dd...
	Input  io.Reader // the uncompressed partclone image
	OutDir string    // the extent directory to write (must be missing or empty)
}

// ExtractProgram is the partclone program that reads an image of fstype:
// partclone.<fs> when installed (Clonezilla names images by it), else the
// one ProgramFor picks.
func ExtractProgram(fstype string) (string, error) {
	if fstype == "" || strings.ContainsAny(fstype, "/ \x00") {
		return "", fmt.Errorf("filesystem %q in an image name", fstype)
	}
	if fstype == "dd" {
		if _, err := lookPath(FallbackProgram); err != nil {
			return "", fmt.Errorf("%s is not on PATH: %s", FallbackProgram, installHint)
		}
		return FallbackProgram, nil
	}
	if p := "partclone." + fstype; func() bool { _, err := lookPath(p); return err == nil }() {
		return p, nil
	}
	prog, fallback, err := ProgramFor(fstype)
	if err != nil {
		return "", err
	}
	if fallback {
		return "", fmt.Errorf("no partclone program reads %s images", fstype)
	}
	return prog, nil
}

// ExtractArgs is the command line (without the program) that writes the
// extent files and torrent.info of the image on standard input into dir:
// the pipeline of Clonezilla's ocs-gen-bt-slices.
func ExtractArgs(prog, dir, logFile string) []string {
	args := []string{"-d"}
	if prog != FallbackProgram {
		args = append(args, "-r")
	}
	return append(args, "-s", "-", "-T", "-z", strconv.Itoa(BufferSize), "-o", dir, "-L", logFile)
}

// Extract runs partclone on an image stream and returns the parsed
// torrent.info of the extent directory it wrote. On failure or
// cancellation the directory is left as it was (missing or empty).
func Extract(ctx context.Context, o ExtractOptions, progress func(Progress)) (*Result, error) {
	prog, err := ExtractProgram(o.FSType)
	if err != nil {
		return nil, err
	}
	// partclone's restore makes the directory itself and refuses one that
	// exists.
	o.OutDir = filepath.Clean(o.OutDir)
	if _, err := os.Lstat(o.OutDir); err == nil {
		if err := os.Remove(o.OutDir); err != nil {
			return nil, fmt.Errorf("%s exists and is not an empty directory: remove it or choose another", o.OutDir)
		}
	}
	out := &outDir{path: o.OutDir, created: true}
	lf, err := os.CreateTemp("", "ezio-partclone-*.log")
	if err != nil {
		out.cleanup()
		return nil, err
	}
	lf.Close()
	defer os.Remove(lf.Name())
	args := ExtractArgs(prog, o.OutDir, lf.Name())
	start := time.Now()
	tail, err := run(ctx, prog, args, o.Input, progress)
	res := &Result{Program: prog, Fallback: prog == FallbackProgram, FSType: o.FSType, InfoPath: filepath.Join(o.OutDir, InfoFileName), Elapsed: time.Since(start)}
	command := prog + " " + strings.Join(args, " ")
	fail := func(err error) (*Result, error) { out.cleanup(); return nil, err }
	if ctx.Err() != nil {
		return fail(ctx.Err())
	}
	if err != nil {
		return fail(fmt.Errorf("%s: %w%s", command, err, explain(tail, lf.Name())))
	}
	f, err := os.Open(res.InfoPath)
	if err != nil {
		return fail(fmt.Errorf("%s wrote no %s%s", command, InfoFileName, explain(tail, lf.Name())))
	}
	info, err := ParseInfo(f)
	f.Close()
	if err == nil {
		err = info.Check()
	}
	if err == nil {
		err = checkExtentFiles(info, o.OutDir)
	}
	if err != nil {
		return fail(fmt.Errorf("%s: %w", command, err))
	}
	res.Info = info
	return res, nil
}

// Decompressor is the command that decompresses a Clonezilla image with
// the given suffix to standard output, or nil for an uncompressed one.
func Decompressor(suffix string) ([]string, error) {
	var argv []string
	switch suffix {
	case "", "uncomp":
		return nil, nil
	case "gz":
		argv = []string{"pigz", "-dc"}
		if _, err := exec.LookPath("pigz"); err != nil {
			argv = []string{"gzip", "-dc"}
		}
	case "zst":
		argv = []string{"zstd", "-dc"}
	case "xz":
		argv = []string{"xz", "-dc"}
	case "bz2":
		argv = []string{"bzip2", "-dc"}
	case "lz4":
		argv = []string{"lz4", "-dc"}
	case "lzma":
		argv = []string{"xz", "--format=lzma", "-dc"}
	case "lzo":
		argv = []string{"lzop", "-dc"}
	default:
		return nil, fmt.Errorf("compression %q is not known", suffix)
	}
	if _, err := exec.LookPath(argv[0]); err != nil {
		return nil, fmt.Errorf("%s is needed to read .%s images but is not on PATH: install the Debian package %s", argv[0], suffix, argv[0])
	}
	return argv, nil
}

// Decompress starts argv reading r and returns its output; wait reports
// its exit. With no argv, r is returned as is.
func Decompress(ctx context.Context, argv []string, r io.Reader) (io.ReadCloser, func() error, error) {
	if len(argv) == 0 {
		return io.NopCloser(r), func() error { return nil }, nil
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = r
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	wait := func() error {
		err := cmd.Wait()
		if err != nil {
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				return fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(stderr.String()))
			}
		}
		return err
	}
	return out, wait, nil
}
