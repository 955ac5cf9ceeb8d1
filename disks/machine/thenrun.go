package machine

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// Env are the facts a finishing script gets in its environment.
type Env struct {
	Target   string // the whole disk, /dev/sdb
	Image    string // the image's name
	Hostname string // "" without --hostname
	Facts    Facts
	Mounts   *Mounts
	Root     string // the Linux root's mount point, if one was found
}

// Vars is the environment, as NAME=value lines: EZIO_TARGET, EZIO_IMAGE,
// EZIO_HOSTNAME, EZIO_MAC, EZIO_IP, EZIO_SERIAL, EZIO_NUMBER, EZIO_MOUNTS
// (the directory holding p1, p2, ...), EZIO_ROOT, EZIO_PARTITIONS
// ("NUMBER:NODE:FILESYSTEM:MOUNTPOINT" separated by spaces, the mount
// point empty for a partition not mounted) and EZIO_PART<N> (the mount
// point of partition N).
func (e Env) Vars() []string {
	v := []string{
		"EZIO_TARGET=" + e.Target, "EZIO_IMAGE=" + e.Image, "EZIO_HOSTNAME=" + e.Hostname,
		"EZIO_MAC=" + e.Facts.MAC, "EZIO_IP=" + e.Facts.IP, "EZIO_SERIAL=" + e.Facts.Serial,
		"EZIO_ROOT=" + e.Root,
	}
	if e.Facts.Number > 0 {
		v = append(v, fmt.Sprintf("EZIO_NUMBER=%d", e.Facts.Number))
	}
	if e.Mounts != nil {
		v = append(v, "EZIO_MOUNTS="+e.Mounts.Dir)
		var parts []string
		for _, p := range e.Mounts.Parts {
			parts = append(parts, fmt.Sprintf("%d:%s:%s:%s", p.Number, p.Node, p.Filesystem, p.Dir))
			v = append(v, fmt.Sprintf("EZIO_PART%d=%s", p.Number, p.Dir))
		}
		for n := range e.Mounts.Skipped {
			parts = append(parts, fmt.Sprintf("%d:::", n))
		}
		sort.Strings(parts)
		v = append(v, "EZIO_PARTITIONS="+strings.Join(parts, " "))
	}
	return v
}

// ScriptResult is how the finishing script ended.
type ScriptResult struct {
	Script string `json:"script"`
	Exit   int    `json:"exit"`
	Output string `json:"output"` // its last lines
}

// ScriptError is a finishing script that failed.
type ScriptError struct{ ScriptResult }

func (e *ScriptError) Error() string {
	return fmt.Sprintf("the finishing script %s failed (exit %d); the deployed data stays verified. Its output:\n%s", e.Script, e.Exit, e.Output)
}

// RunScript runs the script (its bytes, named name) with the
// environment of e, in the mounts' directory, each line of its output
// logged as it comes. A script without #! runs under /bin/sh.
func RunScript(ctx context.Context, name string, script []byte, e Env, log *slog.Logger) (*ScriptResult, error) {
	dir, err := os.MkdirTemp("", "ezio-script-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, filepath.Base(name))
	if err := os.WriteFile(path, script, 0o700); err != nil {
		return nil, err
	}
	argv := []string{path}
	if !bytes.HasPrefix(script, []byte("#!")) {
		argv = []string{"/bin/sh", path}
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), e.Vars()...)
	if e.Mounts != nil {
		cmd.Dir = e.Mounts.Dir
	}
	out := &lineLog{log: log.With("script", name)}
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Run()
	out.flush()
	r := &ScriptResult{Script: name, Output: lastLines(out.all.String(), 40)}
	if err != nil {
		r.Exit = -1
		if ee, ok := err.(*exec.ExitError); ok {
			r.Exit = ee.ExitCode()
		}
		return r, &ScriptError{*r}
	}
	return r, nil
}

// lineLog logs each line written to it and keeps them all.
type lineLog struct {
	mu   sync.Mutex
	log  *slog.Logger
	all  bytes.Buffer
	part []byte
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all.Write(p)
	l.part = append(l.part, p...)
	for {
		i := bytes.IndexByte(l.part, '\n')
		if i < 0 {
			break
		}
		l.log.Info("then-run: " + string(l.part[:i]))
		l.part = l.part[i+1:]
	}
	return len(p), nil
}

func (l *lineLog) flush() {
	if len(l.part) > 0 {
		l.log.Info("then-run: " + string(l.part))
		l.part = nil
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
