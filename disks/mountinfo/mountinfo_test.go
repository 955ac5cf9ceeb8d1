package mountinfo

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

const sample = `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
40 35 7:3 / /mnt/with\040space ro,relatime shared:5 - ext4 /dev/loop3 ro
41 27 0:45 / /data rw,relatime - btrfs /dev/sdc rw,space_cache
garbage line
1 2 x:y / /bad rw - ext4 /dev/x rw
`

func TestParse(t *testing.T) {
	ms, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 {
		t.Fatalf("%d mounts, want 3: %+v", len(ms), ms)
	}
	if m := ms[0]; m.Dev != unix.Mkdev(98, 0) || m.MajorMinor != "98:0" || m.MountPoint != "/mnt2" || m.FSType != "ext3" ||
		m.Source != "/dev/root" || m.SuperOptions != "rw,errors=continue" || !m.ReadWrite() {
		t.Errorf("first mount: %+v", m)
	}
	if m := ms[1]; m.MountPoint != "/mnt/with space" || m.ReadWrite() || m.Dev != unix.Mkdev(7, 3) {
		t.Errorf("escapes, optional fields or ro mishandled: %+v", m)
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{`a\040b`: "a b", `tab\011`: "tab\t", `back\134slash`: `back\slash`, `short\04`: `short\04`, `\999`: `\999`} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(sample)
	f.Add("1 2 3:4 / / - - -\n")
	f.Add(`1 2 0:1 / /a\ rw - x y z`)
	f.Fuzz(func(t *testing.T, s string) {
		ms, _ := Parse(strings.NewReader(s))
		for _, m := range ms {
			m.ReadWrite()
		}
	})
}
