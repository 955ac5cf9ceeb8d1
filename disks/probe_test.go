package disks

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Probe agrees with blkid on images that the real mkfs tools made. Regular
// files need no root.
func TestProbeAgreesWithBlkid(t *testing.T) {
	requireTool(t, "blkid")
	cases := []struct {
		tool string
		args []string
		typ  string
	}{
		{"mkfs.ext4", []string{"-q", "-F", "-L", "lab4"}, "ext4"},
		{"mkfs.ext2", []string{"-q", "-F", "-L", "lab2"}, "ext2"},
		{"mkfs.ext3", []string{"-q", "-F", "-L", "lab3"}, "ext3"},
		{"mkfs.vfat", []string{"-n", "FATLAB"}, "vfat"},
		{"mkfs.vfat", []string{"-F", "32", "-n", "FAT32LAB"}, "vfat"},
		{"mkswap", []string{"-q", "-L", "swaplab"}, "swap"},
	}
	for _, c := range cases {
		t.Run(c.tool+strings.Join(c.args, ""), func(t *testing.T) {
			requireTool(t, c.tool)
			file := imageFile(t, 64*mib)
			run(t, c.tool, append(c.args, file)...)
			got, err := Probe(file)
			if err != nil {
				t.Fatal(err)
			}
			if got.Type != c.typ {
				t.Fatalf("Probe type = %q, want %q", got.Type, c.typ)
			}
			for _, tag := range []struct{ name, got string }{{"LABEL", got.Label}, {"UUID", got.UUID}} {
				want, _ := exec.Command("blkid", "-p", "-s", tag.name, "-o", "value", file).Output()
				if tag.got != strings.TrimSpace(string(want)) {
					t.Errorf("Probe %s = %q, blkid says %q", tag.name, tag.got, strings.TrimSpace(string(want)))
				}
			}
		})
	}
}

func TestProbeBlankAndShort(t *testing.T) {
	file := imageFile(t, 1*mib)
	if sig, err := Probe(file); err != nil || sig != (Signature{}) {
		t.Fatalf("Probe(blank) = %+v, %v", sig, err)
	}
	short := imageFile(t, 0)
	if err := os.WriteFile(short, []byte("LABELONE"), 0o600); err != nil {
		t.Fatal(err)
	}
	if sig, err := Probe(short); err != nil || sig.Type != "" {
		t.Fatalf("Probe(short) = %+v, %v", sig, err)
	}
}

func FuzzProbeBytes(f *testing.F) {
	lvm := make([]byte, 1024)
	copy(lvm[512:], "LABELONE")
	copy(lvm[512+24:], "LVM2 001")
	f.Add(lvm)
	ext := make([]byte, 2048)
	ext[1024+56], ext[1024+57] = 0x53, 0xef
	f.Add(ext)
	fat := make([]byte, 512)
	fat[510], fat[511], fat[12], fat[13] = 0x55, 0xaa, 2, 1
	copy(fat[82:], "FAT32")
	f.Add(fat)
	f.Add([]byte("XFSB"))
	f.Fuzz(func(t *testing.T, b []byte) {
		tail := func(off int64, n int) []byte {
			if off < 0 || off+int64(n) > int64(len(b)) {
				return nil
			}
			return b[off : off+int64(n)]
		}
		probeBytes(b, int64(len(b)), tail)
	})
}
