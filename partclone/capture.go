package partclone

import (
	"bufio"
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

// BufferSize is passed as --buffer_size. With -T it also caps the length of
// each extent file; it does not change the 16 MiB piece hashes.
const BufferSize = 16 << 20

// CaptureOptions says what to capture and where to.
type CaptureOptions struct {
	Source      string // /dev/sdX1 or a loop device
	FSType      string // "" = detect with blkid
	OutDir      string // directory for the extent files (created), or for torrent.info only when TorrentOnly
	TorrentOnly bool   // -t: write torrent.info only, no extent files
	LogFile     string // partclone -L target; "" = a temp file removed afterwards
}

// Result describes a finished capture.
type Result struct {
	Program  string // e.g. "partclone.extfs"
	Fallback bool   // partclone.dd was used because the filesystem is unknown
	FSType   string // as given or detected; "" when none was found
	InfoPath string // OutDir/torrent.info
	Info     *Info
	Elapsed  time.Duration
}

// Args is the partclone command line Capture runs for opts with program
// prog, without the program name. partclone.dd takes no -c (it rejects it
// and, like every usage error of 0.3.23, still exits 0).
func Args(prog string, opts CaptureOptions, logFile string) []string {
	var args []string
	if prog != FallbackProgram {
		args = append(args, "-c")
	}
	if opts.TorrentOnly {
		args = append(args, "-t")
	} else {
		args = append(args, "-T")
	}
	return append(args,
		"-s", opts.Source,
		"-O", opts.OutDir,
		"--buffer_size", strconv.Itoa(BufferSize),
		"-L", logFile,
	)
}

// Capture runs partclone on opts.Source and writes an image directory (or
// only torrent.info) to opts.OutDir. partclone's output never reaches the
// terminal: it is parsed, and progress is called (from one goroutine, in
// order) for each progress line of the copy pass. A mounted source is
// refused before anything runs, with the umount command to run. OutDir must
// be missing or empty: partclone empties the directory it writes to. When
// ctx is cancelled or partclone fails, partclone's process group is killed
// and everything it wrote is removed; an OutDir that Capture created is
// removed whole.
func Capture(ctx context.Context, opts CaptureOptions, progress func(Progress)) (*Result, error) {
	if opts.Source == "" {
		return nil, errors.New("capture: no source device")
	}
	if opts.OutDir == "" {
		return nil, errors.New("capture: no output directory")
	}
	opts.OutDir = filepath.Clean(opts.OutDir)
	if _, err := os.Stat(opts.Source); err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	if err := checkNotMounted(opts.Source); err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	fstype := opts.FSType
	if fstype == "" {
		var err error
		if fstype, err = DetectFS(opts.Source); err != nil {
			return nil, fmt.Errorf("capture: %w", err)
		}
	}
	prog, fallback, err := ProgramFor(fstype)
	if err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("capture of %s: %w", opts.Source, err)
	}

	out, err := prepareOutDir(opts.OutDir)
	if err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	logFile := opts.LogFile
	if logFile == "" {
		f, err := os.CreateTemp("", "ezio-partclone-*.log")
		if err != nil {
			out.cleanup()
			return nil, fmt.Errorf("capture: log file: %w", err)
		}
		f.Close()
		logFile = f.Name()
		defer os.Remove(logFile)
	}

	res := &Result{Program: prog, Fallback: fallback, FSType: fstype, InfoPath: filepath.Join(opts.OutDir, InfoFileName)}
	start := time.Now()
	tail, runErr := run(ctx, prog, Args(prog, opts, logFile), nil, progress)
	res.Elapsed = time.Since(start)
	command := prog + " " + strings.Join(Args(prog, opts, logFile), " ")
	fail := func(err error) (*Result, error) {
		out.cleanup()
		return nil, err
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fail(fmt.Errorf("capture of %s cancelled, %s removed: %w", opts.Source, opts.OutDir, ctxErr))
	}
	if runErr != nil {
		return fail(fmt.Errorf("%s: %w%s", command, runErr, explain(tail, logFile)))
	}
	f, err := os.Open(res.InfoPath)
	if err != nil {
		// 0.3.23 exits 0 after a usage error; a missing torrent.info is how
		// that shows.
		return fail(fmt.Errorf("%s wrote no %s%s", command, InfoFileName, explain(tail, logFile)))
	}
	info, err := ParseInfo(f)
	f.Close()
	if err == nil {
		err = info.Check()
	}
	if err == nil && !opts.TorrentOnly {
		err = checkExtentFiles(info, opts.OutDir)
	}
	if err != nil {
		return fail(fmt.Errorf("%s: %w", command, err))
	}
	res.Info = info
	return res, nil
}

// run starts prog in its own session (so it has no controlling terminal and
// Ctrl-C reaches only us), feeds its output to the progress parser and waits.
// It returns the last lines that were not progress.
func run(ctx context.Context, prog string, args []string, stdin io.Reader, progress func(Progress)) ([]string, error) {
	cmd := exec.Command(prog, args...)
	cmd.Env = childEnv()
	cmd.Stdin = stdin
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return nil, err
	}
	pw.Close()

	tail := newLineTail(12)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		copying := false
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 0, 4096), 1<<20)
		sc.Split(SplitCRLF)
		for sc.Scan() {
			line := strings.TrimSpace(stripEscapes(sc.Text()))
			if line == "" {
				continue
			}
			if p, ok := ParseProgress(line); ok {
				// The bitmap pass reports its own 0-100% first; only the
				// copy pass, after the "Block size:" summary, is ours.
				if (copying || p.Rate != "") && progress != nil {
					progress(p)
				}
				continue
			}
			if strings.HasPrefix(line, "Block size:") {
				copying = true
			}
			if !strings.HasPrefix(line, "current block:") {
				tail.add(line)
			}
		}
		// Drain so partclone never blocks on a full pipe.
		_, _ = pr.WriteTo(discard{})
	}()

	waitDone := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			// Negative pid: the whole process group, led by partclone.
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		case <-waitDone:
		}
	}()
	err = cmd.Wait()
	close(waitDone)
	<-readDone
	pr.Close()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.ExitCode() >= 0 {
			err = fmt.Errorf("exit status %d", exit.ExitCode())
		}
	}
	return tail.lines(), err
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// childEnv pins partclone's messages to English so they can be parsed.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG=") || strings.HasPrefix(kv, "LANGUAGE=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C", "LANG=C")
}

// explain formats partclone's last words (and those of its log) for an
// error message.
func explain(tail []string, logFile string) string {
	var b strings.Builder
	if len(tail) > 0 {
		b.WriteString("; partclone said:\n  ")
		b.WriteString(strings.Join(tail, "\n  "))
	}
	if data, err := os.ReadFile(logFile); err == nil {
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if n := len(lines); n > 5 {
			lines = lines[n-5:]
		}
		if len(lines) > 0 && lines[0] != "" {
			b.WriteString("\nits log ends:\n  ")
			b.WriteString(strings.Join(lines, "\n  "))
		}
	}
	return b.String()
}

// lineTail keeps the last n lines.
type lineTail struct {
	n   int
	buf []string
}

func newLineTail(n int) *lineTail { return &lineTail{n: n} }

func (t *lineTail) add(s string) {
	if len(t.buf) == t.n {
		copy(t.buf, t.buf[1:])
		t.buf = t.buf[:t.n-1]
	}
	t.buf = append(t.buf, s)
}

func (t *lineTail) lines() []string { return append([]string(nil), t.buf...) }

// outDir is the output directory; a failed or cancelled capture leaves it
// as it was: missing, or empty.
type outDir struct {
	path    string
	created bool
}

func prepareOutDir(dir string) (*outDir, error) {
	st, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		return &outDir{path: dir, created: true}, nil
	}
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	if len(entries) > 0 {
		what := "files"
		for _, e := range entries {
			if _, isExtent := ParseExtentFileName(e.Name()); isExtent || e.Name() == InfoFileName {
				what = "an image"
			}
		}
		// partclone -T/-t deletes whatever the directory holds.
		return nil, fmt.Errorf("%s already holds %s (%s...); partclone would delete them: remove them or choose an empty or new directory", dir, what, entries[0].Name())
	}
	return &outDir{path: dir}, nil
}

func (o *outDir) cleanup() {
	if o.created {
		_ = os.RemoveAll(o.path)
		return
	}
	entries, err := os.ReadDir(o.path)
	if err != nil {
		return
	}
	for _, e := range entries {
		_ = os.RemoveAll(filepath.Join(o.path, e.Name()))
	}
}

// checkExtentFiles makes sure every extent has its file, of its length.
func checkExtentFiles(info *Info, dir string) error {
	for _, e := range info.Extents {
		name := filepath.Join(dir, ExtentFileName(e.Offset))
		st, err := os.Stat(name)
		if err != nil {
			return fmt.Errorf("extent file missing: %w", err)
		}
		if st.Size() != e.Length {
			return fmt.Errorf("extent file %s has %d bytes, %s says %d", name, st.Size(), InfoFileName, e.Length)
		}
	}
	return nil
}
