package table

import (
	"strings"
	"testing"
)

const gptDump = `label: gpt
label-id: 6EE56F36-BD77-D043-94F5-7079ED1DDAAF
device: /dev/loop0
unit: sectors
first-lba: 2048
last-lba: 524254
sector-size: 512

/dev/loop0p1 : start=        2048, size=      131072, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=5EAEFA43-FF12-F340-867C-F36FF0188502, name="EFI, system"
/dev/loop0p2 : start=      133120, size=      163840, type=0FC63DAF-8483-4772-8E79-3D69E4C47D47, uuid=AA8D1AB5-01BD-8F41-A8AD-B81E60139E3B
`

const dosDump = `label: dos
label-id: 0x1234abcd
device: /dev/sda
unit: sectors
sector-size: 512

/dev/sda1 : start=        2048, size=       81920, type=83, bootable
/dev/sda2 : start=       83968, size=       32768, type=82
/dev/sda3 : start=      116736, size=       79872, type=5
/dev/sda5 : start=      118784, size=       77824, type=83
`

func TestParseDump(t *testing.T) {
	g, err := ParseDump(gptDump)
	if err != nil {
		t.Fatal(err)
	}
	if g.Label != LabelGPT || g.ID != "6EE56F36-BD77-D043-94F5-7079ED1DDAAF" || g.LastLBA != 524254 || len(g.Partitions) != 2 {
		t.Fatalf("%+v", g)
	}
	if p := g.Partitions[0]; p.Number != 1 || p.Start != 2048 || p.Size != 131072 || p.Name != "EFI, system" || p.UUID != "5EAEFA43-FF12-F340-867C-F36FF0188502" {
		t.Errorf("partition 1: %+v", p)
	}
	if g.End() != (133120+163840)*512 || g.Need() != g.End()+33*512 || g.FirstStart() != 2048 {
		t.Errorf("end %d need %d first %d", g.End(), g.Need(), g.FirstStart())
	}
	d, err := ParseDump(dosDump)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Partitions[0].Bootable || d.Partitions[3].Number != 5 || !IsExtended(d.Label, d.Partitions[2].Type) || IsExtended(d.Label, "83") || IsExtended(LabelGPT, "5") {
		t.Errorf("%+v", d.Partitions)
	}
	if d.Need() != d.End() {
		t.Error("an MBR disk needs no backup table")
	}
	for _, bad := range []string{"", "label: sun\n", "label: gpt\nunit: bytes\n", "label: dos\n/dev/sda : start=1, size=2\n", "label: dos\ngarbage\n"} {
		if _, err := ParseDump(bad); err == nil {
			t.Errorf("ParseDump(%q) accepted", bad)
		}
	}
}

func TestNames(t *testing.T) {
	for node, n := range map[string]int{"/dev/sda1": 1, "/dev/nvme0n1p12": 12, "/dev/loop3p2": 2, "/dev/sda": 0} {
		if got := NumberOf(node); got != n {
			t.Errorf("NumberOf(%s) = %d, want %d", node, got, n)
		}
	}
	for disk, want := range map[string]string{"sda": "sda3", "nvme0n1": "nvme0n1p3", "loop0": "loop0p3", "mmcblk0": "mmcblk0p3"} {
		if got := PartitionName(disk, 3); got != want {
			t.Errorf("PartitionName(%s, 3) = %s, want %s", disk, got, want)
		}
	}
}

func TestRestoreScript(t *testing.T) {
	same := restoreScript(gptDump, true)
	if strings.Contains(same, "device:") || !strings.Contains(same, "last-lba: 524254") {
		t.Errorf("same size:\n%s", same)
	}
	other := restoreScript(gptDump, false)
	if strings.Contains(other, "last-lba") || !strings.Contains(other, "first-lba: 2048") || !strings.Contains(other, `name="EFI, system"`) {
		t.Errorf("other size:\n%s", other)
	}
}
