package disks

import (
	"bytes"
	"ezio/disks/mountinfo"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestHumanBytes(t *testing.T) {
	for _, c := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {900, "900 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"},
		{1536, "1.5 KiB"}, {512 << 20, "512 MiB"}, {8 << 30, "8.0 GiB"},
		{3 << 29, "1.5 GiB"}, {64 << 20, "64.0 MiB"}, {1<<30 - 1, "1.0 GiB"},
		{256 << 30, "256 GiB"}, {2 << 40, "2.0 TiB"}, {-2048, "-2.0 KiB"},
	} {
		if got := HumanBytes(c.n); got != c.want {
			t.Errorf("HumanBytes(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}

func TestNaturalLess(t *testing.T) {
	names := []string{"loop10", "sda", "loop2", "nvme0n1", "loop1", "sdb", "nvme10n1", "nvme2n1"}
	want := []string{"loop1", "loop2", "loop10", "nvme0n1", "nvme2n1", "nvme10n1", "sda", "sdb"}
	got := append([]string(nil), names...)
	for i := range got { // insertion sort keeps the test independent of sort
		for j := i; j > 0 && naturalLess(got[j], got[j-1]); j-- {
			got[j], got[j-1] = got[j-1], got[j]
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

const sampleMountinfo = `22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard
40 27 8:17 / /mnt/my\040disk rw,relatime shared:5 master:2 - vfat /dev/sdb1 rw,fmask=0022
41 27 0:45 / /data rw,relatime - btrfs /dev/sdc rw,space_cache
42 27 0:46 / /merged rw - overlay overlay rw,lowerdir=/run/live/rootfs/a.squashfs:/lower2,upperdir=/run/live/overlay/rw,workdir=/run/live/overlay/work
garbage line
`

func TestParseMountinfo(t *testing.T) {
	ms, err := mountinfo.Parse(strings.NewReader(sampleMountinfo))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 5 {
		t.Fatalf("got %d mounts, want 5: %+v", len(ms), ms)
	}
	if m := ms[1]; m.Dev != unix.Mkdev(254, 0) || m.MountPoint != "/" || m.FSType != "ext4" || m.Source != "/dev/vda" {
		t.Errorf("root mount = %+v", m)
	}
	if m := ms[2]; m.MountPoint != "/mnt/my disk" || m.Dev != unix.Mkdev(8, 17) || m.Source != "/dev/sdb1" {
		t.Errorf("optional fields or escapes mishandled: %+v", m)
	}
	want := []string{"/run/live/rootfs/a.squashfs", "/lower2", "/run/live/overlay/rw"}
	if got := overlayDirs(ms[4].SuperOptions); !reflect.DeepEqual(got, want) {
		t.Errorf("overlayDirs = %v, want %v", got, want)
	}
}

func TestParseSwaps(t *testing.T) {
	in := "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n" +
		"/nonexistent/swap\\040file                              file\t\t32764\t\t0\t\t-2\n" +
		"/dev/ezio-none                              partition\t32764\t\t0\t\t-3\n"
	sw := parseSwaps(strings.NewReader(in))
	if len(sw) != 2 || sw[0].path != "/nonexistent/swap file" || !sw[0].isFile || sw[1].isFile {
		t.Fatalf("parseSwaps = %+v", sw)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/mnt/x": "/mnt/x", "/mnt/my disk": "'/mnt/my disk'", "/a'b": `'/a'\''b'`, "": "''",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFormatTable(t *testing.T) {
	ds := []Disk{
		{Name: "loop3", Size: 8 << 30, Type: "loop", BackingFile: "/tmp/a.img", Partitions: []Partition{
			{Name: "loop3p1", Size: 512 << 20, FSType: "vfat", MountPoint: "/mnt/x", Problem: "it is mounted at /mnt/x"},
			{Name: "loop3p2", Size: 900, FSType: "ext4"},
		}, Problem: "it is mounted at /mnt/x (partition /dev/loop3p1)"},
		{Name: "sda", Size: 3 << 29, Type: "disk", Model: "Samsung SSD", Partitions: []Partition{}},
	}
	var b bytes.Buffer
	FormatTable(&b, ds)
	want := "" +
		"NAME       SIZE     TYPE  MODEL        FS    MOUNTPOINT  PROBLEM\n" +
		"loop3      8.0 GiB  loop  /tmp/a.img                     it is mounted at /mnt/x (partition /dev/loop3p1)\n" +
		"|-loop3p1  512 MiB  part               vfat  /mnt/x      it is mounted at /mnt/x\n" +
		"`-loop3p2  900 B    part               ext4\n" +
		"sda        1.5 GiB  disk  Samsung SSD\n"
	if b.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

// The holder and system-disk rules need device-mapper or md to test for
// real; where the kernel has neither, a sysfs fixture shows the rules read
// the right files.
func TestHolderAndStackedRootOnSysfsFixture(t *testing.T) {
	root := t.TempDir()
	write := func(p, s string) {
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, p string) {
		p = filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	// sdx with partition sdx1, the one PV behind LVM volume dm-7.
	write("devices/sdx/dev", "8:96")
	write("devices/sdx/size", "2048")
	write("devices/sdx/sdx1/dev", "8:97")
	write("devices/sdx/sdx1/partition", "1")
	write("devices/sdx/sdx1/size", "1024")
	os.MkdirAll(filepath.Join(root, "devices/sdx/sdx1/holders/dm-7"), 0o755)
	write("devices/dm-7/dev", "253:7")
	write("devices/dm-7/dm/name", "vg0-root")
	write("devices/dm-7/dm/uuid", "LVM-abc")
	link("../../sdx/sdx1", "devices/dm-7/slaves/sdx1")
	link("../devices/sdx", "block/sdx")
	link("../devices/dm-7", "block/dm-7")
	link("../../devices/sdx", "dev/block/8:96")
	link("../../devices/sdx/sdx1", "dev/block/8:97")
	link("../../devices/dm-7", "dev/block/253:7")

	oldDev, oldBlock := sysDevBlock, sysBlock
	sysDevBlock, sysBlock = filepath.Join(root, "dev/block"), filepath.Join(root, "block")
	t.Cleanup(func() { sysDevBlock, sysBlock = oldDev, oldBlock })

	s := &state{byDev: map[uint64][]mount{}, system: map[uint64]string{}}
	err := s.checkDevice("/dev/sdx", unix.Mkdev(8, 96), 0, false)
	re, ok := err.(*RefusedError)
	if !ok || re.Kind != RefusedHolder || !strings.Contains(re.Reason, "LVM volume vg0-root") ||
		!strings.Contains(re.Reason, "partition /dev/sdx1") || !strings.Contains(re.Hint, "vgchange -an") {
		t.Fatalf("checkDevice = %v, want an LVM holder refusal naming sdx1", err)
	}

	// / on the LVM volume makes sdx the system disk.
	var names []string
	for _, n := range s.disksOfDev(unix.Mkdev(253, 7), 0) {
		names = append(names, n.name)
	}
	if !reflect.DeepEqual(names, []string{"dm-7", "sdx"}) {
		t.Fatalf("disks behind dm-7 = %v, want [dm-7 sdx]", names)
	}
}

func FuzzParseMountinfo(f *testing.F) {
	f.Add(sampleMountinfo)
	f.Add("1 2 3:4 / / - - -\n")
	f.Add(`1 2 0:1 / /a\ rw - x y z`)
	f.Fuzz(func(t *testing.T, s string) {
		ms, _ := mountinfo.Parse(strings.NewReader(s))
		for _, m := range ms {
			overlayDirs(m.SuperOptions)
		}
	})
}
