package cli

import (
	"strings"
	"testing"

	"ezio/disks"
)

func TestPickNetbootTarget(t *testing.T) {
	const gib = int64(1) << 30
	usb := func(name string) bool { return name == "fakesdu" }
	internal := disks.Disk{Name: "fakevda", Path: "/dev/fakevda", Type: "disk", Size: 64 * gib}
	small := disks.Disk{Name: "fakevdb", Path: "/dev/fakevdb", Type: "disk", Size: 8 * gib}
	stick := disks.Disk{Name: "fakesdu", Path: "/dev/fakesdu", Type: "disk", Size: 128 * gib}
	card := disks.Disk{Name: "fakemmc", Path: "/dev/fakemmc", Type: "disk", Size: 128 * gib, Removable: true}
	loop := disks.Disk{Name: "fakeloop7", Path: "/dev/fakeloop7", Type: "loop", Size: 128 * gib}
	cases := []struct {
		name string
		list []disks.Disk
		want string // a path, or the start of "error: ..."
	}{
		{"the one internal disk", []disks.Disk{internal, stick, card, loop}, "/dev/fakevda"},
		{"the one that fits", []disks.Disk{internal, small}, "/dev/fakevda"},
		{"only a stick", []disks.Disk{stick, loop}, "error: this machine has no internal disk"},
		{"too small", []disks.Disk{small, stick}, "error: disk too small: the image needs 16.0 GiB and this machine has only fakevdb (8.0 GiB)"},
		{"two fit", []disks.Disk{internal, {Name: "fakevdc", Path: "/dev/fakevdc", Type: "disk", Size: 32 * gib}}, "error: several internal disks fit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pickTarget(tc.list, usb, 16*gib)
			if err != nil {
				got = "error: " + err.Error()
			}
			if !strings.HasPrefix(got, tc.want) {
				t.Fatalf("pickTarget = %q, want %q", got, tc.want)
			}
			if err != nil && !strings.Contains(err.Error(), "nothing was written") {
				t.Fatalf("a refusal that does not say nothing was written: %v", err)
			}
		})
	}
}

func TestSeedNetbootFlagsRefused(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"seed", dir, "--dhcp-range", "10.0.0.10-10.0.0.20"}, "need --netboot"},
		{[]string{"seed", dir, "--netboot", "--then", "shell"}, "reboot\" or \"poweroff"},
		{[]string{"seed", dir, "--netboot", "--dhcp-range", "10.0.0.20-10.0.0.10"}, "the lower first"},
		{[]string{"seed", dir, "--netboot", "--target-disk", "sda"}, "a /dev/ path"},
		{[]string{"seed", "x.torrent", dir, "--netboot"}, "whole-disk image"},
	}
	for _, tc := range cases {
		code, _, _, err := capCLI(t, tc.args...)
		if code != ExitRefused || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: exit %d, %v; want a refusal saying %q", tc.args, code, err, tc.want)
		}
	}
}
