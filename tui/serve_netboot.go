package tui

// Serve's "Boot the room's machines over the network?": for a disk image,
// what `ezio seed IMAGE-DIR --netboot` does, asked as a technician would
// answer it, and its refusals in the wizard's words.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/charmbracelet/huh"

	"ezio/engine"
	"ezio/engine/netboot"
	"ezio/engine/netboot/room"
)

// NetbootValues are Serve's network-boot answers (a disk image only).
type NetbootValues struct {
	// On boots the room's machines from the network into the deploy.
	On bool
	// FullDHCP makes this server the DHCP server, leasing Range
	// ("FROM-TO"); no: proxyDHCP beside the LAN's own server.
	FullDHCP bool
	Range    string
	// Then is what a machine does after its verified deploy: "reboot"
	// ("" too) or "poweroff".
	Then string
	// Redeploy forgets the machines deployed before (kept beside the
	// image), so that they deploy again instead of booting their disks.
	Redeploy bool
}

// deployedOnRecord is how many machines have a verified deploy on record
// beside the disk image dir (their next network boot goes to their own
// disk unless Redeploy); read once per directory.
func (s *ServeFlow) deployedOnRecord() int {
	dir := trimmed(s.v.Torrent)
	if dir != s.onRecord.dir {
		s.onRecord.dir, s.onRecord.n = dir, 0
		if recs, err := netboot.OpenRecords(dir, false); err == nil {
			for _, m := range recs.List() {
				if !m.Verified.IsZero() {
					s.onRecord.n++
				}
			}
		}
	}
	return s.onRecord.n
}

// then is the answer, reboot unless power-off was chosen.
func (n NetbootValues) then() string {
	if n.Then == room.ThenPoweroff {
		return room.ThenPoweroff
	}
	return room.ThenReboot
}

// isRoot says whether this process may answer DHCP (port 67) and TFTP
// (port 69); tests pin it.
var isRoot = func() bool { return os.Geteuid() == 0 }

// netbootGroups are the questions, each shown only when it applies: for a
// disk image, when this wizard can boot a room (StartNetboot), and after
// a yes.
func (s *ServeFlow) netbootGroups(disk func() bool) []*huh.Group {
	n := &s.v.Netboot
	asked := func() bool { return disk() && s.deps.StartNetboot != nil }
	on := func() bool { return asked() && n.On }
	return []*huh.Group{
		huh.NewGroup(
			huh.NewConfirm().Title("Boot the room's machines over the network?").
				Description("yes: power the machines on with network boot first; each deploys this image by itself, no USB stick").
				Affirmative("Yes").Negative("No").Value(&n.On),
		).WithHideFunc(func() bool { return !asked() }),
		huh.NewGroup(
			huh.NewSelect[bool]().Title("Addresses for the machines").
				Description("proxyDHCP leaves addresses to the LAN's DHCP server; an isolated switch has none").
				Options(huh.NewOption("from the LAN's DHCP server (proxyDHCP)", false),
					huh.NewOption("from this server (an isolated switch)", true)).Value(&n.FullDHCP),
		).WithHideFunc(func() bool { return !on() }),
		huh.NewGroup(
			huh.NewInput().Title("Addresses to lease").Description("FROM-TO on this server's network, e.g. 192.168.50.100-192.168.50.199").
				Value(&n.Range).Validate(func(r string) error {
				if _, err := netboot.ParseRange(strings.TrimSpace(r)); err != nil {
					return errors.New("FROM-TO: two IPv4 addresses, the lower first")
				}
				return nil
			}),
		).WithHideFunc(func() bool { return !on() || !n.FullDHCP }),
		huh.NewGroup(
			huh.NewConfirm().Title("Deploy the machines deployed before again?").
				DescriptionFunc(func() string {
					return fmt.Sprintf("%d machines have a verified deploy on record; no: they boot their own disks", s.deployedOnRecord())
				}, &s.v.Torrent).
				Affirmative("Yes").Negative("No").Value(&n.Redeploy),
		).WithHideFunc(func() bool { return !on() || s.deployedOnRecord() == 0 }),
		huh.NewGroup(
			huh.NewSelect[string]().Title("After its deploy, each machine").
				Description("reboot: it comes up in its new system (its next network boot goes to its disk)").
				Options(huh.NewOption("reboots", room.ThenReboot), huh.NewOption("powers off", room.ThenPoweroff)).Value(&n.Then),
		).WithHideFunc(func() bool { return !on() }),
	}
}

// netbootOptions are the answers as the room's use case takes them:
// every machine's target is the one internal disk that fits.
func netbootOptions(v ServeValues, tu engine.Tuning, deps *Deps, say func(string)) room.Options {
	o := room.Options{Then: v.Netboot.then(), TargetDisk: "auto", Redeploy: v.Netboot.Redeploy,
		ListenHost: room.ListenHost(v.listen(), tu.ListenAddr), Logger: deps.Logger, Say: say}
	if v.Netboot.FullDHCP {
		o.DHCPRange = strings.TrimSpace(v.Netboot.Range)
	}
	return o
}

// startNetboot boots the room beside the disk image served by sd; the
// lines it says for the technician come back for the dashboard. On a
// refusal nothing of it runs (the caller stops the serving).
func startNetboot(ctx context.Context, deps *Deps, v ServeValues, tu engine.Tuning, dir string, sd *DiskSeeding) (stop func(), said []string, err error) {
	o := netbootOptions(v, tu, deps, func(l string) { said = append(said, l) })
	stop, err = deps.StartNetboot(ctx, dir, sd.Manifest.Name, sd.Server, o)
	return stop, said, err
}

var errNotRoot = errors.New("network boot answers DHCP (port 67) and TFTP (port 69), which only root may do")

// netbootProblem words a refusal of network boot: what happened and what
// to do, no flag named.
func netbootProblem(err error) problem {
	what := err.Error()
	p := problem{title: "Could not boot the room over the network", what: what}
	var re *room.RefusedError
	errors.As(err, &re)
	kind := room.RefusedOther
	if re != nil {
		kind = re.Kind
	}
	switch {
	case errors.Is(err, errNotRoot):
		p.hint = "Run the wizard as root (sudo ezio), or answer no to network boot and deploy each machine from the wizard or a USB stick."
	case kind == room.RefusedOtherDHCP:
		p.what = what + "."
		p.hint = "This network already has a DHCP server: answer \"from the LAN's DHCP server (proxyDHCP)\"; ezio then answers only the machines' network boot."
	case kind == room.RefusedNoIPXE:
		p.hint = "Install Debian's ipxe package (apt-get install ipxe): the machines load its first stage over TFTP."
	case kind == room.RefusedNoEnv:
		p.hint = "The machines boot this server's newest kernel: install one (apt-get install linux-image-amd64) and its modules."
	case kind == room.RefusedRangeOff:
		p.what = "The addresses to lease (" + re.Range + ") are on no network this server serves on."
		p.hint = "Give a range on the network of the address chosen in \"Serve on\", or serve on every interface."
	case kind == room.RefusedNoIPv4:
		p.what = "No network interface with an IPv4 address to answer the machines on."
		p.hint = "Connect this server to the room's switch and give it an address, then serve again."
	default:
		p.hint = "Check this server's network: it answers the machines' DHCP on the interface it serves on, TFTP on port 69."
	}
	return p
}

// netbootHowTo is the dashboard's first instruction for a room that boots
// from the network, then the client commands for machines that do not.
func netbootHowTo(name, then string, inst, said []string) []string {
	does := "reboot"
	if then == room.ThenPoweroff {
		does = "power off"
	}
	first := fmt.Sprintf("power the machines on (network boot first): they deploy %s, %s", name, does)
	out := []string{first, "or: " + strings.TrimPrefix(inst[0], "on each client: ")}
	out = append(out, inst[1:]...)
	return append(out, said...)
}
