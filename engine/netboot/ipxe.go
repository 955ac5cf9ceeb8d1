package netboot

import (
	"fmt"
	"net"
	"strings"
)

// Kernel command line words the deploy environment reads (boot-init).
const (
	ArgServer = "ezio.server" // http://HOST:PORT of the seeder
	ArgImage  = "ezio.image"  // the disk image's name on it
	ArgMAC    = "ezio.mac"    // the booting NIC
	ArgTarget = "ezio.target" // "auto" or /dev/...
	ArgThen   = "ezio.then"   // "reboot" or "poweroff"
	ArgStick  = "ezio.stick"  // the MBR disk ID of the stick booted from
)

// ScriptOptions describe the machine an iPXE script is for.
type ScriptOptions struct {
	Base   string // http://HOST:PORT as the machine reaches the server
	Image  string
	MAC    net.HardwareAddr
	Target string // "" = auto
	Then   string // "" = reboot
	Local  bool   // deployed: boot the disk instead
}

// Script is the iPXE script of one machine: the deploy environment's
// kernel and initramfs over HTTP, or, for a deployed machine, "exit" so
// that the firmware boots the next device (its disk); a failure status,
// since a UEFI boot manager goes back to its menu when an option succeeds.
func Script(o ScriptOptions) string {
	if o.Local {
		return "#!ipxe\necho ezio: this machine is deployed; booting its disk\nexit 1\n"
	}
	target := o.Target
	if target == "" {
		target = "auto"
	}
	then := o.Then
	if then == "" {
		then = "reboot"
	}
	args := []string{
		// Under EFI the kernel finds its initramfs only when named here.
		"initrd=initrd.gz",
		"console=tty0", "console=ttyS0,115200",
		ArgServer + "=" + o.Base,
		ArgImage + "=" + o.Image,
		ArgMAC + "=" + o.MAC.String(),
		ArgTarget + "=" + target,
		ArgThen + "=" + then,
		"panic=0",
	}
	var b strings.Builder
	b.WriteString("#!ipxe\n")
	b.WriteString("echo ezio: loading the deploy environment\n")
	fmt.Fprintf(&b, "kernel %s/netboot/vmlinuz %s\n", o.Base, strings.Join(args, " "))
	fmt.Fprintf(&b, "initrd --name initrd.gz %s/netboot/initrd.gz\n", o.Base)
	b.WriteString("boot\n")
	return b.String()
}

// ParseCmdline reads the ezio.* words of a kernel command line.
func ParseCmdline(cmdline string) map[string]string {
	out := map[string]string{}
	for _, w := range strings.Fields(cmdline) {
		k, v, ok := strings.Cut(w, "=")
		if ok && strings.HasPrefix(k, "ezio.") {
			out[k] = v
		}
	}
	return out
}
