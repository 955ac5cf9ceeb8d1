package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"ezio/engine"
)

// A room of machines runs by itself: the seeder knows how many clients to
// expect and stops when they are done; each client reboots or powers off
// once its deploy is verified.

// roomWatch is engine.RoomWatch as the seed command's flags set it.
type roomWatch struct {
	expect int
	linger time.Duration // 0: wait for every needy client to leave
	done   atomic.Bool   // the room is done (the seeder's normal end)
}

func (r *roomWatch) run(ctx context.Context, j *engine.Job, log io.Writer) {
	w := engine.RoomWatch{
		Expect:   r.expect,
		Linger:   r.linger,
		Reached:  func(done int) { fmt.Fprintf(log, "%d of %d clients done\n", done, r.expect) },
		Stopping: r.stopping(log),
	}
	w.Run(ctx, j)
}

// stopping is the RoomWatch.Stopping of the seed command: it says why a
// room was left with clients still needing data, and marks the room done.
func (r *roomWatch) stopping(log io.Writer) func(needy int) {
	return func(needy int) {
		if needy > 0 {
			fmt.Fprintf(log, "stopping after %s although %d client(s) still need data\n", r.linger, needy)
		}
		r.done.Store(true)
	}
}

// Then actions after a verified deploy.
const (
	thenExit     = "exit"
	thenReboot   = "reboot"
	thenPoweroff = "poweroff"
	thenShell    = "shell"
)

func checkThen(s string) error {
	switch s {
	case thenExit, thenReboot, thenPoweroff, thenShell:
		return nil
	}
	return fmt.Errorf("--then %q: choose reboot, poweroff, shell or exit", s)
}

// runThen carries out a --then action. EZIO_POWER_COMMAND, when set, names
// the program run instead of the real reboot or power-off (with the action
// as its argument): tests use it, and so can a site with its own shutdown
// procedure.
func (a *App) runThen(action string) error {
	switch action {
	case thenExit, "":
		return nil
	case thenShell:
		sh := os.Getenv("SHELL")
		if sh == "" {
			sh = "/bin/sh"
		}
		fmt.Fprintf(a.Stderr, "deploy verified; starting %s (exit it to end)\n", sh)
		c := exec.Command(sh)
		c.Stdin, c.Stdout, c.Stderr = a.Stdin, a.Stdout, a.Stderr
		return c.Run()
	}
	fmt.Fprintf(a.Stderr, "deploy verified; %s now\n", action)
	return powerAction(action, a.Stderr)
}

// powerAction reboots or powers off (action), or runs EZIO_POWER_COMMAND
// with the action as its last argument when that is set; the command's
// output goes to out. The wizard and the command line share it.
func powerAction(action string, out io.Writer) error {
	if prog := os.Getenv("EZIO_POWER_COMMAND"); prog != "" {
		f := strings.Fields(prog)
		c := exec.Command(f[0], append(f[1:], action)...)
		c.Stdout, c.Stderr = out, out
		return c.Run()
	}
	unix.Sync()
	if p, err := exec.LookPath("systemctl"); err == nil {
		if msg, err := exec.Command(p, action).CombinedOutput(); err == nil {
			return nil
		} else {
			fmt.Fprintf(out, "systemctl %s: %v %s; using the reboot system call\n", action, err, strings.TrimSpace(string(msg)))
		}
	}
	cmd := unix.LINUX_REBOOT_CMD_RESTART
	if action == thenPoweroff {
		cmd = unix.LINUX_REBOOT_CMD_POWER_OFF
	}
	return unix.Reboot(cmd)
}
