package cli

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"ezio/disks"
	"ezio/disks/diskdeploy"
	"ezio/engine"
	"ezio/engine/discover"
	"ezio/engine/netboot"
	"ezio/engine/netboot/bootenv"
	"ezio/engine/netboot/initramfs"
	"ezio/tui/format"
)

func newNetbootCmd(a *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "netboot",
		Short: "Build the deploy environment that machines boot over the network",
	}
	var kernel, out string
	build := &cobra.Command{
		Use:   "build -o DIR",
		Short: "Build the network deploy environment (kernel and initramfs) ahead of time",
		Long: `Build the kernel and initramfs that ezio seed IMAGE-DIR --netboot hands
to machines booting from the network: this ezio binary as /init, the
kernel's modules for disks and network cards, and the programs a whole-disk
deploy runs with their libraries. Prints what went in.`,
		Example: `  ezio netboot build -o /srv/netboot
  ezio netboot build --kernel /boot/vmlinuz-6.1.0-57-amd64 -o /srv/netboot`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return refused(errors.New("name the output directory with -o DIR"))
			}
			res, err := initramfs.Build(initramfs.Options{Kernel: kernel}, out)
			if err != nil {
				return refused(err)
			}
			printEnv(a.Stdout, res)
			return nil
		},
	}
	build.Flags().StringVar(&kernel, "kernel", "", "the kernel to boot (default: the newest /boot/vmlinuz-*)")
	build.Flags().StringVarP(&out, "output", "o", "", "directory to write vmlinuz and initrd.gz to")
	cmd.AddCommand(build, newNetbootStickCmd(a))
	return cmd
}

func printEnv(w io.Writer, res *initramfs.Result) {
	fmt.Fprintf(w, "kernel     %s (%s) -> %s\n", res.Kernel, res.Version, filepath.Join(res.Dir, initramfs.KernelFile))
	fmt.Fprintf(w, "initramfs  %s, %s\n", filepath.Join(res.Dir, initramfs.InitrdFile), format.Bytes(res.InitrdBytes))
	fmt.Fprintf(w, "init       this ezio binary (ezio boot-init)\n")
	fmt.Fprintf(w, "modules    %d (disks and network cards, with what they need)\n", len(res.Modules))
	fmt.Fprintf(w, "tools      %s\n", strings.Join(res.Tools, " "))
	if len(res.Missing) > 0 {
		fmt.Fprintf(w, "not found  %s\n", strings.Join(res.Missing, " "))
	}
	fmt.Fprintf(w, "libraries  %d\n", len(res.Libraries))
}

func newBootInitCmd(a *App) *cobra.Command {
	return &cobra.Command{
		Use:    "boot-init",
		Short:  "Run as PID 1 of the network deploy environment",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.BootInit(cmd.Context())
		},
	}
}

// BootInit is the network deploy environment: modules, network, the disk
// deploy of the image the server named on the kernel command line, reports
// to the server, then a reboot. On any failure it says why on the console
// and starts a shell; it never reboots into a half-written disk.
func (a *App) BootInit(ctx context.Context) error {
	pid1 := os.Getpid() == 1
	con := a.Stderr
	if pid1 {
		if err := bootenv.MountEarly(); err != nil {
			fmt.Fprintln(con, "ezio: "+err.Error())
		}
		con = bootenv.Consoles(con)
		a.Stderr = con // the deploy's log too
		if a.LogLevel == "" {
			a.LogLevel = "warn"
		}
	}
	args := bootenv.Cmdline()
	rep := &bootenv.Reporter{Server: args[netboot.ArgServer], MAC: args[netboot.ArgMAC]}
	fail := func(err error) error {
		fmt.Fprintf(con, "\nezio: DEPLOY FAILED: %s\nezio: nothing is booted from this disk; a shell follows.\n", oneLine(err.Error()))
		if rep.Server != "" && rep.MAC != "" {
			rep.Send(netboot.Report{State: netboot.StateFailed, Reason: oneLine(err.Error())})
		}
		if pid1 {
			bootenv.Shell()
		}
		return &ExitError{Code: ExitFailed, Err: err}
	}
	// A stick may name no image: the server's only one is meant.
	image := args[netboot.ArgImage]
	fmt.Fprintf(con, "ezio: network deploy of %s from %s\n", cmp.Or(image, "the server's image"), cmp.Or(rep.Server, "a server found on the LAN"))
	if pid1 {
		mods, err := bootenv.LoadModules()
		fmt.Fprintf(con, "ezio: loaded %d modules\n", len(mods))
		if err != nil {
			fmt.Fprintf(con, "ezio: some modules did not load: %v\n", err)
		}
		lease, err := bootenv.BringUp(ctx, rep.MAC)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(con, "ezio: %s has %s\n", lease.Iface, lease.Addr)
		if ifi, err := net.InterfaceByName(lease.Iface); err == nil && rep.MAC == "" {
			rep.MAC = ifi.HardwareAddr.String() // booted from a stick: the server knows it by this
		}
	}
	if rep.Server == "" || rep.Server == "auto" {
		// No server on the command line (a stick made without one):
		// the one the LAN announces with this image.
		base, name, err := findImageServer(ctx, image)
		if err != nil {
			return fail(err)
		}
		rep.Server, image = base, name
		fmt.Fprintf(con, "ezio: found %s on the LAN\n", base)
	} else if image == "" {
		name, err := onlyImage(ctx, rep.Server)
		if err != nil {
			return fail(err)
		}
		image = name
	}
	rep.Send(netboot.Report{State: netboot.StateDeploying, Phase: "starting"})
	src := rep.Server + "/images/" + image
	target, err := netbootTarget(ctx, con, src, args[netboot.ArgTarget], args[netboot.ArgStick])
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(con, "ezio: writing %s onto %s\n", image, target)
	rep.Send(netboot.Report{State: netboot.StateDeploying, Phase: "starting", Target: target})
	fw := &progressForward{rep: rep, con: con, target: target}
	stdout := a.Stdout
	a.Stdout = fw
	err = a.DeployDiskCommand(ctx, src, target, true, DiskDeployOptions{Yes: true, SeedAfter: engine.SeedUntilIdle, Timeout: engine.DefaultTimeout})
	a.Stdout = stdout
	if err != nil {
		return fail(err)
	}
	if err := rep.Send(netboot.Report{State: netboot.StateVerified, Target: target, BytesDone: fw.total, BytesTotal: fw.total}); err != nil {
		fmt.Fprintf(con, "ezio: the server did not hear that this machine is done: %v\n", err)
	}
	then := args[netboot.ArgThen]
	fmt.Fprintf(con, "ezio: deploy verified; %s\n", cmp.Or(then, "reboot"))
	if pid1 {
		if err := bootenv.Finish(then); err != nil {
			return fail(err)
		}
	}
	return nil
}

// findImageServer browses the LAN (DNS-SD) for the one server that offers
// image (any one image, when image is ""), trying for about half a minute
// while the network settles. It returns the server and the image's name.
func findImageServer(ctx context.Context, image string) (string, string, error) {
	var last error = discover.ErrNoServer
	for try := 0; try < 6 && ctx.Err() == nil; try++ {
		ss, err := discover.Browse(ctx, 5*time.Second)
		if err != nil {
			last = err
			continue
		}
		var found, names []string
		for _, sv := range ss {
			if image != "" {
				if sv.Offers(ctx, image) {
					found, names = append(found, sv.BaseURL), append(names, image)
				}
				continue
			}
			name, err := onlyImage(ctx, sv.BaseURL)
			if err != nil {
				last = err
				continue
			}
			found, names = append(found, sv.BaseURL), append(names, name)
		}
		switch len(found) {
		case 1:
			return found[0], names[0], nil
		case 0:
			if image != "" {
				last = fmt.Errorf("no server on the LAN offers the image %s", image)
			}
		default:
			return "", "", fmt.Errorf("several servers offer %s (%s): name one with %s=", cmp.Or(image, "an image"), strings.Join(found, ", "), netboot.ArgServer)
		}
	}
	return "", "", last
}

// onlyImage is the name of the one image base serves; several are a
// refusal naming them.
func onlyImage(ctx context.Context, base string) (string, error) {
	es, err := engine.ListImages(ctx, base)
	if err != nil {
		return "", fmt.Errorf("asking %s for its images: %w", base, err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name)
	}
	switch len(names) {
	case 1:
		return names[0], nil
	case 0:
		return "", fmt.Errorf("%s serves no image yet", base)
	}
	return "", fmt.Errorf("%s serves several images (%s): name one with %s= (ezio netboot stick --image NAME)", base, strings.Join(names, ", "), netboot.ArgImage)
}

// netbootTarget is the disk to write: want when it is a /dev path, else
// the one internal disk that fits the image. The stick the machine
// booted from (its MBR disk ID on the command line) is never a target.
func netbootTarget(ctx context.Context, con io.Writer, src, want, stickID string) (string, error) {
	if strings.HasPrefix(want, "/dev/") {
		if isStick(want, stickID) {
			return "", fmt.Errorf("%s is the stick this machine booted from; nothing was written", want)
		}
		return want, nil
	}
	img, err := diskdeploy.Load(diskdeploy.SourceFS(ctx, src))
	if err != nil {
		return "", fmt.Errorf("reading the image from the server: %w", err)
	}
	all, err := disks.List()
	if err != nil {
		return "", err
	}
	var list []disks.Disk
	for _, d := range all {
		if isStick(d.Path, stickID) {
			fmt.Fprintf(con, "ezio: %s is the stick this machine booted from; it is never written\n", d.Path)
			continue
		}
		list = append(list, d)
	}
	return pickTarget(list, isUSB, img.Manifest.End())
}

// isStick says whether the disk at path has the MBR disk ID id (eight hex
// digits, as ezio netboot stick writes it on the command line).
func isStick(path, id string) bool {
	if id == "" {
		return false
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [4]byte
	if _, err := f.ReadAt(b[:], 440); err != nil {
		return false
	}
	return strings.EqualFold(fmt.Sprintf("%08x", binary.LittleEndian.Uint32(b[:])), id)
}

func isUSB(name string) bool {
	p, err := filepath.EvalSymlinks(filepath.Join("/sys/block", name))
	return err == nil && strings.Contains(p, "/usb")
}

// pickTarget chooses among a machine's disks: internal ones only (no
// USB, no removable media, no loop or optical devices); the one that can
// hold need bytes. Several that fit, or none, is a refusal with the
// reason, and nothing is written.
func pickTarget(list []disks.Disk, usb func(string) bool, need int64) (string, error) {
	var internal, fit []disks.Disk
	for _, d := range list {
		if d.Type != "disk" || d.Removable || usb(d.Name) {
			continue
		}
		internal = append(internal, d)
		if d.Size >= need {
			fit = append(fit, d)
		}
	}
	names := func(l []disks.Disk) string {
		var n []string
		for _, d := range l {
			n = append(n, fmt.Sprintf("%s (%s)", d.Name, format.Bytes(d.Size)))
		}
		sort.Strings(n)
		return strings.Join(n, ", ")
	}
	switch {
	case len(internal) == 0:
		return "", errors.New("this machine has no internal disk to write (USB and removable disks are never chosen); nothing was written")
	case len(fit) == 0:
		return "", fmt.Errorf("disk too small: the image needs %s and this machine has only %s; nothing was written", format.Bytes(need), names(internal))
	case len(fit) > 1:
		return "", fmt.Errorf("several internal disks fit the image: %s; name one for this MAC in %s beside the image; nothing was written", names(fit), netboot.TargetsFile)
	}
	return fit[0].Path, nil
}

// progressForward reads the deploy's --json lines and passes them to the
// server (every few seconds) and, shortened, to the console.
type progressForward struct {
	rep    *bootenv.Reporter
	con    io.Writer
	target string

	mu    sync.Mutex
	buf   []byte
	last  time.Time
	total int64
}

func (f *progressForward) Write(b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.buf = append(f.buf, b...)
	for {
		i := strings.IndexByte(string(f.buf), '\n')
		if i < 0 {
			return len(b), nil
		}
		line := f.buf[:i]
		f.buf = f.buf[i+1:]
		f.line(line)
	}
}

func (f *progressForward) line(line []byte) {
	var p diskProgress
	if json.Unmarshal(line, &p) != nil {
		return
	}
	f.total = p.BytesTotal
	if p.Type == "result" {
		if p.Result != "ok" {
			fmt.Fprintf(f.con, "ezio: deploy %s: %s\n", p.Result, p.Error)
		}
		return
	}
	if time.Since(f.last) < 2*time.Second {
		return
	}
	f.last = time.Now()
	fmt.Fprintf(f.con, "ezio: %s %s  %s of %s\n", p.Phase, format.Percent(p.BytesDone, p.BytesTotal), format.Bytes(p.BytesDone), format.Bytes(p.BytesTotal))
	go f.rep.Send(netboot.Report{State: netboot.StateDeploying, Phase: p.Phase, Target: f.target, BytesDone: p.BytesDone, BytesTotal: p.BytesTotal})
}
