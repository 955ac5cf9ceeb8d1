package stick

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"ezio/disks/disktest"
)

// TestStickLayout writes a stick into a file and reads it back with the
// tools a technician would use: sfdisk for the table, mtools for the FAT,
// fsck.vfat for its consistency.
func TestStickLayout(t *testing.T) {
	disktest.Need(t, false, "grub-mkimage", "mkfs.vfat", "mcopy", "mdir", "sfdisk", "fsck.vfat")
	if err := Check(""); err != nil {
		disktest.SkipOrFail(t, "%v", err)
	}
	dir := t.TempDir()
	kernel, initrd := filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd.gz")
	kb, ib := make([]byte, 3<<20+17), make([]byte, 5<<20+3)
	rand.Read(kb)
	rand.Read(ib)
	os.WriteFile(kernel, kb, 0o644)
	os.WriteFile(initrd, ib, 0o644)
	size := Need(int64(len(kb)), int64(len(ib))) + 3<<20
	img := filepath.Join(dir, "stick.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Truncate(size)
	// Old signatures the stick must not keep: a backup GPT header at the
	// end, and something in the gap.
	f.WriteAt([]byte("EFI PART"), size-512)
	f.WriteAt([]byte("CD001"), 32769)
	work := filepath.Join(dir, "work")
	os.Mkdir(work, 0o755)
	res, err := Write(f, size, work, Options{Kernel: kernel, Initrd: initrd, Cmdline: "ezio.server=http://10.0.0.1:6969 ezio.target=auto", StickArg: "ezio.stick", DiskID: 0x1234abcd})
	if err != nil {
		t.Fatal(err)
	}
	f.Close()

	// The table.
	var tab struct {
		PartitionTable struct {
			Label      string `json:"label"`
			ID         string `json:"id"`
			Partitions []struct {
				Start, Size int64
				Type        string
				Bootable    bool
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal([]byte(disktest.Run(t, "sfdisk", "-J", img)), &tab); err != nil {
		t.Fatal(err)
	}
	pt := tab.PartitionTable
	if pt.Label != "dos" || pt.ID != "0x1234abcd" || len(pt.Partitions) != 1 {
		t.Fatalf("table %+v", pt)
	}
	p := pt.Partitions[0]
	if p.Start != PartStart || p.Size*512 != res.PartBytes || p.Type != "c" || !p.Bootable {
		t.Errorf("partition %+v, want start %d, %d bytes, type c, bootable", p, PartStart, res.PartBytes)
	}
	if p.Size*512 < int64(len(kb)+len(ib)) || (p.Start+p.Size)*512 > size {
		t.Errorf("partition of %d sectors for %d bytes of files on a %d-byte device", p.Size, len(kb)+len(ib), size)
	}

	// The BIOS boot code: GRUB's boot.img and, from sector 1, core.img.
	b, _ := os.ReadFile(img)
	boot, _ := os.ReadFile(filepath.Join(DefaultGrubDir, "i386-pc", "boot.img"))
	if !bytes.Equal(b[:0x66], boot[:0x66]) || !bytes.Equal(b[0x68:440], boot[0x68:440]) || b[0x66] != 0x90 {
		t.Error("sector 0 does not hold GRUB's boot code")
	}
	if lba := binary.LittleEndian.Uint64(b[0x5c:]); lba != 1 {
		t.Errorf("the boot code loads its core from sector %d, want 1", lba)
	}
	core, _ := os.ReadFile(filepath.Join(work, "core.img"))
	if len(core) == 0 || !bytes.Equal(b[512:512+len(core)], core) {
		t.Error("core.img is not at sector 1")
	}
	if !bytes.Equal(b[512+len(core):PartStart*512], make([]byte, PartStart*512-512-len(core))) {
		t.Error("the gap after core.img is not cleared")
	}
	if bytes.Contains(b[size-1<<20:], []byte("EFI PART")) {
		t.Error("the old backup GPT header is still at the end")
	}

	// The FAT: the files, the config naming the server and the stick.
	at := img + "@@" + "1M"
	mt := func(args ...string) string {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	list := mt("mdir", "-/", "-b", "-i", at, "::/")
	for _, want := range []string{"::/boot/vmlinuz", "::/boot/initrd.gz", "::/boot/grub/grub.cfg", "::/EFI/BOOT/BOOTX64.EFI"} {
		if !strings.Contains(strings.ToLower(list), strings.ToLower(want)) {
			t.Errorf("the FAT lacks %s:\n%s", want, list)
		}
	}
	cfg := mt("mtype", "-i", at, "::/boot/grub/grub.cfg")
	for _, want := range []string{"linux /boot/vmlinuz ezio.server=http://10.0.0.1:6969 ezio.target=auto ezio.stick=1234abcd", "initrd /boot/initrd.gz"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("grub.cfg lacks %q:\n%s", want, cfg)
		}
	}
	back := filepath.Join(dir, "back")
	mt("mcopy", "-i", at, "::/boot/initrd.gz", back)
	if got, _ := os.ReadFile(back); !bytes.Equal(got, ib) {
		t.Error("the initramfs read back differs")
	}
	efi := filepath.Join(dir, "efi")
	mt("mcopy", "-i", at, "::/EFI/BOOT/BOOTX64.EFI", efi)
	if e, _ := os.ReadFile(efi); len(e) < 2 || string(e[:2]) != "MZ" {
		t.Error("BOOTX64.EFI is not a PE image")
	}
	part := filepath.Join(dir, "part")
	os.WriteFile(part, b[PartStart*512:PartStart*512+res.PartBytes], 0o644)
	if out, err := exec.Command("fsck.vfat", "-n", part).CombinedOutput(); err != nil {
		t.Errorf("fsck.vfat: %v\n%s", err, out)
	}
	if lbl := strings.TrimSpace(disktest.Run(t, "blkid", "-o", "value", "-s", "LABEL", part)); lbl != Label {
		t.Errorf("label %q", lbl)
	}
}

func TestCHS(t *testing.T) {
	for _, tc := range []struct {
		lba  int64
		want []byte
	}{
		{2048, []byte{32, 33, 0}},
		{63, []byte{1, 1, 0}},
		{1024*255*63 + 5, []byte{0xfe, 0xff, 0xff}},
		{1023*255*63 + 254*63 + 62, []byte{254, 63 | 3<<6, 0xff}},
	} {
		if got := chs(tc.lba); !bytes.Equal(got, tc.want) {
			t.Errorf("chs(%d) = % x, want % x", tc.lba, got, tc.want)
		}
	}
}
