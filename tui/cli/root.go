// Package cli is ezio's composition root: the command line (every wizard
// action as a subcommand with machine-readable output and exit codes, for
// scripts and unattended rooms) and the wiring of the engine, the disks
// and the wizard (package tui) behind it.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"ezio/engine"
	"ezio/engine/torrentfile"
)

// App is what every command shares: flags, logger, streams.
type App struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer

	LogLevel string
	LogFile  string
	Theme    string
	Tuning   engine.Tuning

	logCloser io.Closer

	downLimit, upLimit string
	profileDir         string
	stopProfile        func()
	globalFlags        interface{ Changed(string) bool }
}

// flagChanged tells whether a global flag was given on the command line
// (it then wins over the wizard's saved settings).
func (a *App) flagChanged(name string) bool {
	return a.globalFlags != nil && a.globalFlags.Changed(name)
}

// ExitError carries a process exit code with its message.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Exit codes scripts can rely on.
const (
	ExitOK          = 0   // done, and every byte verified
	ExitFailed      = 1   // the job failed (bad data, write error)
	ExitRefused     = 2   // bad usage, bad torrent, unsafe target, no confirmation
	ExitUnreachable = 3   // no server reachable, or none for too long: worth retrying
	ExitInterrupted = 130 // stopped by a signal
)

func refused(err error) error { return &ExitError{Code: ExitRefused, Err: err} }

// ExitCode is the process status for a command's error; Main and the
// tests use this one mapping.
func ExitCode(ctx context.Context, err error) int {
	if err == nil {
		return ExitOK
	}
	var ee *ExitError
	var ue *engine.UnreachableError
	switch {
	case errors.As(err, &ee):
		return ee.Code
	case errors.As(err, &ue):
		return ExitUnreachable
	case errors.Is(err, context.Canceled) || ctx.Err() != nil:
		return ExitInterrupted
	}
	return ExitFailed
}

// ResultWord names an exit code in JSON results.
func ResultWord(code int) string {
	switch code {
	case ExitOK:
		return "ok"
	case ExitRefused:
		return "refused"
	case ExitUnreachable:
		return "unreachable"
	case ExitInterrupted:
		return "interrupted"
	}
	return "failed"
}

// Logger returns the logger for this run. While the wizard owns the
// terminal, logs go to a file only.
func (a *App) Logger(toTerminal bool) (*slog.Logger, error) {
	spec := a.LogLevel
	if spec == "" {
		spec = os.Getenv("EZIO_LOG")
	}
	ls, err := engine.ParseLevelSpec(spec)
	if err != nil {
		return nil, refused(err)
	}
	var w io.Writer = a.Stderr
	if a.LogFile != "" || !toTerminal {
		path := a.LogFile
		if path == "" {
			path = DefaultLogPath()
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("opening log file: %w", err)
		}
		a.logCloser = f
		w = f
	}
	return engine.NewLogger(w, ls), nil
}

// DefaultLogPath is where the wizard logs when no --log-file is given.
func DefaultLogPath() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "ezio", "ezio.log")
	}
	return filepath.Join(os.TempDir(), "ezio.log")
}

func (a *App) isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// NewRoot builds the command tree.
func NewRoot(a *App) *cobra.Command {
	root := &cobra.Command{
		Use:   "ezio",
		Short: "Image and deploy disks to many machines over BitTorrent",
		Long: `ezio captures a whole disk (or one partition) with partclone, serves it
to a LAN swarm over BitTorrent, and writes it straight onto the target
disks of every machine at once: clients share pieces with each other,
every piece is SHA-1 verified, and nothing is written to a disk that is
mounted, in use, or the one the system runs from.

Without a subcommand, on a terminal, ezio opens the wizard.`,
		Example: `  ezio                                   # the wizard
  ezio demo --clients 4                  # watch a swarm on this machine
  ezio capture /dev/sda /srv/images --name lab
  ezio seed /srv/images/lab --expect 30 --exit-when-done
  ezio deploy auto /dev/sda --yes --then poweroff     # on every client
  ezio disks`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       engine.Version,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !a.isTerminal(a.Stdout) {
				return cmd.Help()
			}
			return runWizard(cmd.Context(), a)
		},
	}
	pf := root.PersistentFlags()
	a.globalFlags = pf
	pf.StringVar(&a.LogLevel, "log-level", "", `log levels, e.g. "info,engine=debug,torrent=warn" (default $EZIO_LOG or info)`)
	pf.StringVar(&a.LogFile, "log-file", "", "write logs to this file instead of standard error")
	pf.StringVar(&a.Theme, "theme", "", "wizard colour theme: default, classic or mono")
	pf.StringVar(&a.Tuning.ListenAddr, "listen", "", fmt.Sprintf("BitTorrent listen address ADDR:PORT (default 0.0.0.0:%d)", engine.DefaultPeerPort))
	pf.IntVar(&a.Tuning.CacheSizeMiB, "cache-size", engine.DefaultCacheSizeMiB, "MiB of memory for piece data: a client holds pieces in flight in half of it and keeps its whole memory near it")
	pf.IntVar(&a.Tuning.AIOThreads, "aio-threads", 4, "concurrent disk operations")
	pf.IntVar(&a.Tuning.HashingThreads, "hashing-threads", 2, "pieces hashed at once")
	pf.IntVar(&a.Tuning.ChunkSize, "chunk-size", 0, "bytes per BitTorrent request (0: 65536 when the image comes from an ezio seeder, else 16384, what other clients accept)")
	pf.StringVar(&a.downLimit, "download-limit", "", "cap download at this many bytes/s, e.g. 10MiB (default: none)")
	pf.StringVar(&a.upLimit, "upload-limit", "", "cap upload at this many bytes/s, e.g. 10MiB (default: none)")
	pf.StringVar(&a.profileDir, "profile", "", "write CPU and blocking profiles (pprof) of this run into DIR")
	pf.MarkHidden("profile")
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if a.profileDir != "" {
			stop, err := startProfiles(a.profileDir)
			if err != nil {
				return err
			}
			a.stopProfile = stop
		}
		a.Tuning.Strategy = engine.StrategyFromEnv()
		a.Tuning.TraceRequests = os.Getenv("EZIO_TRACE_REQUESTS") != ""
		for _, l := range []struct {
			s   string
			dst *int64
		}{{a.downLimit, &a.Tuning.MaxDownloadRate}, {a.upLimit, &a.Tuning.MaxUploadRate}} {
			if l.s == "" {
				continue
			}
			n, err := torrentfile.ParseSize(l.s)
			if err != nil {
				return refused(err)
			}
			*l.dst = n
		}
		return nil
	}
	root.SetIn(a.Stdin)
	root.SetOut(a.Stdout)
	root.SetErr(a.Stderr)
	// Every subcommand, in the order `ezio --help` lists them.
	for _, f := range []func(*App) *cobra.Command{
		newDeployCmd, newSeedCmd, newCaptureCmd, newImportCmd, newServersCmd,
		newTorrentCmd, newDaemonCmd, newStatusCmd, newDisksCmd, newDemoCmd, newVersionCmd,
		newNetbootCmd, newBootInitCmd,
	} {
		root.AddCommand(f(a))
	}
	// Usage mistakes exit 2, like every other refusal.
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return refused(err) })
	var wrap func(*cobra.Command)
	wrap = func(c *cobra.Command) {
		if args := c.Args; args != nil {
			c.Args = func(cmd *cobra.Command, a []string) error {
				if err := args(cmd, a); err != nil {
					return refused(fmt.Errorf("%w (see ezio %s --help)", err, cmd.Name()))
				}
				return nil
			}
		}
		for _, sub := range c.Commands() {
			wrap(sub)
		}
	}
	wrap(root)
	return root
}

// Main runs ezio with the process's arguments and returns the exit code.
func Main() int {
	a := &App{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := NewRoot(a)
	if os.Getpid() == 1 {
		// /init of the network deploy environment (ezio netboot build).
		root.SetArgs([]string{"boot-init"})
	}
	err := execute(ctx, root)
	if a.stopProfile != nil {
		a.stopProfile()
	}
	if a.logCloser != nil {
		a.logCloser.Close()
	}
	if err == nil {
		return 0
	}
	code := ExitCode(ctx, err)
	fmt.Fprintln(a.Stderr, "ezio: "+oneLine(err.Error()))
	return code
}

// execute runs the command tree; a panic on this goroutine is reported as
// the bug it is and exits 1, never 2 (a refusal).
func execute(ctx context.Context, root *cobra.Command) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &ExitError{Code: ExitFailed, Err: fmt.Errorf("internal error (a bug in ezio, please report it): %v\n%s", r, debug.Stack())}
		}
	}()
	return root.ExecuteContext(ctx)
}

// startProfiles starts a CPU profile and block profiling; the returned
// function writes them out.
func startProfiles(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cpu, err := os.Create(filepath.Join(dir, "cpu.pprof"))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(cpu); err != nil {
		cpu.Close()
		return nil, err
	}
	runtime.SetBlockProfileRate(int(time.Millisecond))
	runtime.SetMutexProfileFraction(10)
	return func() {
		pprof.StopCPUProfile()
		cpu.Close()
		for _, name := range []string{"block", "mutex"} {
			if f, err := os.Create(filepath.Join(dir, name+".pprof")); err == nil {
				pprof.Lookup(name).WriteTo(f, 0)
				f.Close()
			}
		}
	}, nil
}

func oneLine(s string) string {
	for i, c := range s {
		if c == '\n' {
			return s[:i]
		}
	}
	return s
}
