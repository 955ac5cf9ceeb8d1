package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"ezio/disks"
	"ezio/engine"
	"ezio/engine/netboot"
	"ezio/engine/netboot/initramfs"
	"ezio/engine/netboot/stick"
	"ezio/engine/server"
	"ezio/tui/format"
)

// stickOptions are the flags of `ezio netboot stick`.
type stickOptions struct {
	server, image, kernel, then string
	yes, asJSON                 bool
}

// stickResult is the --json result of `ezio netboot stick`.
type stickResult struct {
	Type           string   `json:"type"`   // "result"
	Result         string   `json:"result"` // "ok", "failed", "refused", "interrupted"
	Error          string   `json:"error,omitempty"`
	Device         string   `json:"device"`
	USB            bool     `json:"usb"` // USB or removable: the expected kind of target
	Server         string   `json:"server,omitempty"`
	Image          string   `json:"image,omitempty"` // "" = the server's only image
	Then           string   `json:"then,omitempty"`
	Kernel         string   `json:"kernel,omitempty"`
	KernelVersion  string   `json:"kernel_version,omitempty"`
	DiskID         string   `json:"disk_id,omitempty"`
	PartitionStart int64    `json:"partition_start,omitempty"`
	PartitionBytes int64    `json:"partition_bytes,omitempty"`
	DeviceSize     int64    `json:"device_size,omitempty"`
	Files          []string `json:"files,omitempty"`
	Cmdline        string   `json:"cmdline,omitempty"`
	Seconds        float64  `json:"seconds"`
}

func newNetbootStickCmd(a *App) *cobra.Command {
	var o stickOptions
	cmd := &cobra.Command{
		Use:   "stick DEVICE",
		Short: "Write a USB stick that boots (BIOS and UEFI) into the deploy environment",
		Long: `Write the network deploy environment (the kernel and initramfs of
ezio netboot build) onto a USB stick, for rooms whose network cannot boot
machines. A machine booted from the stick, under BIOS or UEFI, takes an
address by DHCP, reaches the server (--server, or one found on the LAN),
writes the server's image onto its one internal disk (never onto the
stick), reports to the server, then powers off (--then) so that it does
not boot the stick again.

Everything on DEVICE is lost: the usual safety checks run first, then the
device's name is asked for (--yes skips that question). A disk that is not
USB or removable is written only when named in that confirmation or with
--yes. The kernel command line is in /boot/grub/grub.cfg on the stick's
FAT partition, where any computer can edit it.`,
		Example: `  ezio netboot stick /dev/sdb --server 192.168.1.10
  ezio netboot stick /dev/sdb                    # the server is found on the LAN
  ezio netboot stick /dev/sdb --server 10.0.0.5:6969 --image win11-lab --yes --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.NetbootStickCommand(cmd.Context(), args[0], o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.server, "server", "auto", `the seeder machines deploy from: HOST[:PORT] or http://HOST:PORT, or "auto" (found on the LAN by mDNS)`)
	f.StringVar(&o.image, "image", "", "the image to deploy (default: the server's only image)")
	f.StringVar(&o.kernel, "kernel", "", "the kernel to boot (default: the newest /boot/vmlinuz-*)")
	f.StringVar(&o.then, "then", thenPoweroff, `after a verified deploy: "poweroff" (take the stick out, then power on) or "reboot"`)
	f.BoolVarP(&o.yes, "yes", "y", false, "write without asking for the device's name")
	f.BoolVar(&o.asJSON, "json", false, "print the result as one JSON object")
	return cmd
}

// NetbootStickCommand is `ezio netboot stick DEVICE`.
func (a *App) NetbootStickCommand(ctx context.Context, dev string, o stickOptions) error {
	start := time.Now()
	res := &stickResult{Type: "result", Device: dev, Then: o.then, Image: o.image}
	err := a.writeStick(ctx, dev, o, res)
	if err != nil && ctx.Err() != nil {
		err = &ExitError{Code: ExitInterrupted, Err: err}
	}
	res.Seconds = time.Since(start).Seconds()
	res.Result = ResultWord(ExitCode(ctx, err))
	if o.asJSON {
		if err != nil {
			res.Error = err.Error()
		}
		json.NewEncoder(a.Stdout).Encode(res)
		return err
	}
	if err == nil {
		printStick(a.Stdout, res)
	}
	return err
}

func (a *App) writeStick(ctx context.Context, dev string, o stickOptions, res *stickResult) error {
	srvURL := "auto"
	if o.server != "auto" {
		base, err := server.ParseServer(o.server)
		if err != nil {
			return refused(fmt.Errorf("--server: %w", err))
		}
		srvURL = base
	}
	res.Server = srvURL
	if o.then != thenPoweroff && o.then != thenReboot {
		return refused(fmt.Errorf("--then %q: \"poweroff\" or \"reboot\"", o.then))
	}
	if strings.ContainsAny(o.image, " \t\n/") {
		return refused(fmt.Errorf("--image %q: an image's name has no spaces or slashes", o.image))
	}
	if err := stick.Check(""); err != nil {
		return refused(err)
	}
	if !o.yes && !a.isTerminal(a.Stdin) {
		return refused(errors.New("not confirmed: standard input is not a terminal; add --yes to write without asking"))
	}
	disk, err := stickDisk(dev, stick.Need(0, 0))
	if err != nil {
		return err
	}
	res.USB = disk.Removable || isUSB(disk.Name)
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	if !o.asJSON {
		fmt.Fprintln(a.Stderr, "building the deploy environment (once per ezio binary and kernel)...")
	}
	env, _, err := initramfs.Cached(initramfs.Options{Kernel: o.kernel}, filepath.Join(cache, "ezio", "netboot"))
	if err != nil {
		return refused(fmt.Errorf("building the deploy environment: %w", err))
	}
	res.Kernel, res.KernelVersion = env.Kernel, env.Version
	kernel, initrd := filepath.Join(env.Dir, initramfs.KernelFile), filepath.Join(env.Dir, initramfs.InitrdFile)
	kst, err := os.Stat(kernel)
	if err != nil {
		return err
	}
	ist, err := os.Stat(initrd)
	if err != nil {
		return err
	}
	need := stick.Need(kst.Size(), ist.Size())
	if err := disks.CheckWritable(dev, need); err != nil {
		return refusal(err)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if o.yes && !res.USB {
		fmt.Fprintf(a.Stderr, "warning: %s is not a USB stick or removable disk; writing it because of --yes\n", dev)
	}
	if !o.yes {
		if err := a.confirmTarget(dev, func(w io.Writer) { showStickTarget(w, disk, res.USB, srvURL, env.Version, ist.Size()) }); err != nil {
			return err
		}
	}
	if !o.asJSON {
		fmt.Fprintf(a.Stderr, "writing %s...\n", dev)
	}
	return burnStick(dev, o, srvURL, kernel, initrd, res)
}

// burnStick writes the stick onto dev, held exclusively while it does.
func burnStick(dev string, o stickOptions, server, kernel, initrd string, res *stickResult) error {
	// O_EXCL: the kernel refuses it while anything mounts the device or
	// another writer (a second ezio) holds it, and refuses them while
	// this one writes.
	f, err := os.OpenFile(dev, os.O_RDWR|unix.O_EXCL, 0)
	if errors.Is(err, unix.EBUSY) {
		return refused(&engine.BusyError{Target: dev})
	}
	if err != nil {
		return err
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "ezio-stick-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	// The screen last: /dev/console, where the shell of a failed deploy
	// runs, is the last console named, and a stick's user is at the
	// screen; boot-init writes its lines to the serial port too.
	cmdline := []string{"console=ttyS0,115200", "console=tty0",
		netboot.ArgServer + "=" + server, netboot.ArgTarget + "=auto", netboot.ArgThen + "=" + o.then, "panic=0"}
	if o.image != "" {
		cmdline = append(cmdline, netboot.ArgImage+"="+o.image)
	}
	title := "ezio: deploy " + cmp.Or(o.image, "the server's image") + " from " + server
	r, err := stick.Write(f, size, work, stick.Options{Kernel: kernel, Initrd: initrd, Cmdline: strings.Join(cmdline, " "), StickArg: netboot.ArgStick, Title: title})
	if err != nil {
		return &ExitError{Code: ExitFailed, Err: err}
	}
	// Let the kernel see the new partition (a real stick; a loop device
	// without partition scanning ignores it).
	unix.IoctlSetInt(int(f.Fd()), unix.BLKRRPART, 0)
	res.DiskID, res.PartitionStart, res.PartitionBytes = fmt.Sprintf("%08x", r.DiskID), r.PartStart, r.PartBytes
	res.DeviceSize, res.Files, res.Cmdline = r.DeviceSize, r.Files, r.Cmdline
	return nil
}

// stickDisk is the whole disk dev names, after the safety checks for a
// device of at least need bytes.
func stickDisk(dev string, need int64) (*disks.Disk, error) {
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err == nil && st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return nil, refused(fmt.Errorf("%s is not a block device: name the stick's disk, such as /dev/sdb (see ezio disks)", dev))
	}
	if err := disks.CheckWritable(dev, need); err != nil {
		return nil, refusal(err)
	}
	d, p, err := disks.Lookup(dev)
	if err != nil {
		return nil, refused(err)
	}
	if p != nil {
		return nil, refused(fmt.Errorf("%s is a partition: name the whole stick, %s", dev, d.Path))
	}
	return d, nil
}

// refusal makes a safety check's refusal exit with ExitRefused.
func refusal(err error) error {
	var re *disks.RefusedError
	if errors.As(err, &re) {
		return refused(err)
	}
	return err
}

// showStickTarget is what the confirmation shows: the stick to be, and
// what is on the device now, which will be lost.
func showStickTarget(w io.Writer, d *disks.Disk, usb bool, server, kernel string, initrd int64) {
	fmt.Fprintf(w, "Boot stick (BIOS and UEFI): kernel %s, deploy environment %s, deploying from %s.\n", kernel, format.Bytes(initrd), server)
	kind := "USB/removable"
	if !usb {
		kind = "NOT a USB stick or removable disk: an internal disk"
	}
	fmt.Fprintf(w, "Target %s: %s %s, %s.\n", d.Path, cmp.Or(strings.TrimSpace(d.Model), "disk"), format.Bytes(d.Size), kind)
	if len(d.Partitions) == 0 && d.FSType == "" {
		fmt.Fprintln(w, "Its partition table and everything on it will be lost (the kernel lists no partitions on it).")
		return
	}
	fmt.Fprintln(w, "Everything on it will be lost:")
	if d.FSType != "" {
		fmt.Fprintf(w, "  %s %s %s\n", d.Path, d.FSType, d.Label)
	}
	for _, p := range d.Partitions {
		fmt.Fprintf(w, "  %-12s %10s %-8s %s\n", p.Path, format.Bytes(p.Size), cmp.Or(p.FSType, "-"), p.Label)
	}
}

func printStick(w io.Writer, r *stickResult) {
	kind := "USB/removable"
	if !r.USB {
		kind = "not USB or removable"
	}
	fmt.Fprintf(w, "stick      %s (%s, %s), disk ID %s\n", r.Device, format.Bytes(r.DeviceSize), kind, r.DiskID)
	fmt.Fprintf(w, "boots      BIOS (GRUB in the MBR) and UEFI (\\EFI\\BOOT\\BOOTX64.EFI); Secure Boot must be off\n")
	fmt.Fprintf(w, "kernel     %s (%s)\n", r.Kernel, r.KernelVersion)
	server := r.Server
	if server == "auto" {
		server = "auto (the one found on the LAN by mDNS)"
	}
	fmt.Fprintf(w, "server     %s\n", server)
	fmt.Fprintf(w, "image      %s\n", cmp.Or(r.Image, "the server's only image"))
	fmt.Fprintf(w, "then       %s\n", r.Then)
	then := "powers off (take the stick out before it starts again)"
	if r.Then == thenReboot {
		then = "reboots (take the stick out first, or it deploys again)"
	}
	fmt.Fprintf(w, "Boot a machine from the stick: it writes its one internal disk (never the stick) and %s.\n", then)
	fmt.Fprintf(w, "The kernel command line is in /boot/grub/grub.cfg on the stick.\n")
}
