// Package stick writes the network deploy environment onto a USB stick for
// rooms whose network cannot boot machines: one MBR partition table, one
// FAT32 partition holding the kernel, the initramfs and GRUB's config, and
// GRUB as the boot loader for both firmwares: its i386-pc boot sector in
// the MBR with its core image in the gap before the partition (BIOS), and
// its x86_64-efi image as \EFI\BOOT\BOOTX64.EFI (UEFI).
//
// Why MBR and not GPT: BIOS firmware that boots USB sticks expects an MBR
// with an active partition (many refuse or misdetect a GPT's protective
// MBR), and UEFI firmware reads any FAT partition of removable media for
// \EFI\BOOT\BOOTX64.EFI, so one MBR partition of type 0x0C serves both.
// Why GRUB for UEFI too: one grub.cfg, a text file on the FAT that any
// computer can edit, holds the kernel command line (the server's address)
// for both firmwares; the kernel's own EFI stub would need its command
// line from a loader anyway, since firmware passes none to the removable
// media path. GRUB images are built here unsigned: machines must boot with
// Secure Boot off.
//
// The FAT is built in a file with mkfs.vfat and mtools (the host may have
// no vfat driver, and mounting is never needed) and then copied onto the
// device through the one descriptor the caller holds exclusively.
package stick

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

const (
	sectorSize = 512
	// PartStart is the partition's first sector: 1 MiB, the usual
	// alignment; the sectors before it hold GRUB's core image.
	PartStart = 2048
	// PartType is FAT32 with LBA addressing.
	PartType = 0x0c
	// Label is the FAT volume's label.
	Label = "EZIO"
	// loaderSlack is room for the EFI image and grub.cfg.
	loaderSlack  = 4 << 20
	minPartBytes = 64 << 20 // FAT32 wants at least 65525 clusters
)

// Files on the stick's FAT.
const (
	KernelPath = "/boot/vmlinuz"
	InitrdPath = "/boot/initrd.gz"
	ConfigPath = "/boot/grub/grub.cfg"
	EFIPath    = "/EFI/BOOT/BOOTX64.EFI"
)

// DefaultGrubDir is where Debian's grub-pc-bin and grub-efi-amd64-bin put
// their module directories.
const DefaultGrubDir = "/usr/lib/grub"

// Options describe a stick to write.
type Options struct {
	Kernel, Initrd string // the deploy environment's files
	// Cmdline is the kernel command line; the stick's own word
	// (ArgStick=DISKID, so the deploy never picks the stick) is added.
	Cmdline string
	// StickArg is the command line word that carries the disk ID.
	StickArg string
	Title    string // the boot menu entry's title
	DiskID   uint32 // MBR disk signature; 0 = random
	GrubDir  string // "" = DefaultGrubDir
}

// Result says what was written.
type Result struct {
	DiskID     uint32   `json:"disk_id"`
	PartStart  int64    `json:"partition_start"` // bytes
	PartBytes  int64    `json:"partition_bytes"`
	Files      []string `json:"files"`
	Cmdline    string   `json:"cmdline"`
	CoreSecs   int      `json:"-"`
	DeviceSize int64    `json:"device_size"`
}

// PartitionBytes is the FAT partition's size for a kernel and an initramfs
// of these sizes: the files, a tenth more for the file system, the boot
// loaders, rounded up to a MiB.
func PartitionBytes(kernel, initrd int64) int64 {
	n := (kernel+initrd)*11/10 + loaderSlack + 8<<20
	n = (n + 1<<20 - 1) &^ (1<<20 - 1)
	return max(n, minPartBytes)
}

// Need is the smallest device that holds such a stick.
func Need(kernel, initrd int64) int64 {
	return PartStart*sectorSize + PartitionBytes(kernel, initrd)
}

// Tools are the programs Write runs, with the packages that have them.
var Tools = []string{"grub-mkimage:grub-common", "mkfs.vfat:dosfstools", "mcopy:mtools", "mmd:mtools"}

// Check says which program or GRUB directory is missing, naming its
// Debian package.
func Check(grubDir string) error {
	if grubDir == "" {
		grubDir = DefaultGrubDir
	}
	var missing []string
	for _, t := range Tools {
		name, pkg, _ := strings.Cut(t, ":")
		if _, err := exec.LookPath(name); err != nil {
			missing = append(missing, name+" (package "+pkg+")")
		}
	}
	for _, d := range []struct{ dir, pkg string }{{"i386-pc", "grub-pc-bin"}, {"x86_64-efi", "grub-efi-amd64-bin"}} {
		if _, err := os.Stat(filepath.Join(grubDir, d.dir, "moddep.lst")); err != nil {
			missing = append(missing, "GRUB's "+d.dir+" modules (package "+d.pkg+")")
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("writing a boot stick needs %s", strings.Join(missing, ", "))
	}
	return nil
}

// Write writes the stick onto dev, which the caller opened for writing
// (exclusively, for a device); size is its size in bytes. work is a
// scratch directory for the boot loader images and the FAT.
func Write(dev *os.File, size int64, work string, o Options) (*Result, error) {
	if o.GrubDir == "" {
		o.GrubDir = DefaultGrubDir
	}
	if err := Check(o.GrubDir); err != nil {
		return nil, err
	}
	kst, err := os.Stat(o.Kernel)
	if err != nil {
		return nil, err
	}
	ist, err := os.Stat(o.Initrd)
	if err != nil {
		return nil, err
	}
	res := &Result{DiskID: o.DiskID, PartStart: PartStart * sectorSize, PartBytes: PartitionBytes(kst.Size(), ist.Size()), DeviceSize: size}
	if need := res.PartStart + res.PartBytes; size < need {
		return nil, fmt.Errorf("%s holds %d bytes; the stick needs %d", dev.Name(), size, need)
	}
	for res.DiskID == 0 {
		var b [4]byte
		rand.Read(b[:])
		res.DiskID = binary.LittleEndian.Uint32(b[:])
	}
	res.Cmdline = strings.TrimSpace(o.Cmdline + fmt.Sprintf(" %s=%08x", o.StickArg, res.DiskID))
	core, err := grubImage(o.GrubDir, "i386-pc", "(,msdos1)/boot/grub", filepath.Join(work, "core.img"),
		"biosdisk", "part_msdos", "fat", "normal", "linux", "echo", "test")
	if err != nil {
		return nil, err
	}
	if len(core) > (PartStart-1)*sectorSize {
		return nil, fmt.Errorf("GRUB's core image (%d bytes) does not fit before the partition", len(core))
	}
	res.CoreSecs = (len(core) + sectorSize - 1) / sectorSize
	// Under UEFI an empty device in the prefix means the partition GRUB
	// was loaded from.
	efi := filepath.Join(work, "bootx64.efi")
	if _, err := grubImage(o.GrubDir, "x86_64-efi", "/boot/grub", efi,
		"part_msdos", "fat", "normal", "linux", "echo", "test", "all_video"); err != nil {
		return nil, err
	}
	bootImg, err := os.ReadFile(filepath.Join(o.GrubDir, "i386-pc", "boot.img"))
	if err != nil || len(bootImg) != sectorSize {
		return nil, fmt.Errorf("GRUB's boot.img: %v", cmpErr(err, "not one sector"))
	}
	cfg := filepath.Join(work, "grub.cfg")
	if err := os.WriteFile(cfg, []byte(Config(o.Title, res.Cmdline)), 0o644); err != nil {
		return nil, err
	}
	fat := filepath.Join(work, "fat.img")
	if err := makeFAT(fat, res.PartBytes, res.DiskID, []copySpec{
		{o.Kernel, KernelPath}, {o.Initrd, InitrdPath}, {cfg, ConfigPath}, {efi, EFIPath},
	}); err != nil {
		return nil, err
	}
	res.Files = []string{KernelPath, InitrdPath, ConfigPath, EFIPath}
	mbr := MBR(bootImg, res.DiskID, PartStart, res.PartBytes/sectorSize)
	// The boot area: MBR, core image, zeros up to the partition (old
	// signatures there, such as an ISO's, would mislead firmware and
	// blkid).
	head := make([]byte, PartStart*sectorSize)
	copy(head, mbr)
	copy(head[sectorSize:], core)
	if err := copyFAT(dev, fat, res.PartStart); err != nil {
		return nil, err
	}
	// A GPT's backup header at the end of the device would outlive the
	// new table: zero the last MiB beyond the partition.
	if end := res.PartStart + res.PartBytes; size-end > 0 {
		from := max(end, size-1<<20)
		if _, err := dev.WriteAt(make([]byte, size-from), from); err != nil {
			return nil, fmt.Errorf("clearing the end of %s: %w", dev.Name(), err)
		}
	}
	// The table last: a stick cut off half-way has none, rather than
	// one pointing at a half-written file system.
	if _, err := dev.WriteAt(head, 0); err != nil {
		return nil, fmt.Errorf("writing the boot sectors of %s: %w", dev.Name(), err)
	}
	if err := dev.Sync(); err != nil {
		return nil, fmt.Errorf("flushing %s: %w", dev.Name(), err)
	}
	return res, nil
}

func cmpErr(err error, s string) string {
	if err != nil {
		return err.Error()
	}
	return s
}

// Config is the stick's grub.cfg: one entry, chosen after a short wait.
func Config(title, cmdline string) string {
	if title == "" {
		title = "ezio deploy"
	}
	return fmt.Sprintf(`# The ezio deploy environment. The kernel command line names the server
# (ezio.server=http://HOST:PORT, or auto: found on the LAN by mDNS);
# edit it here if the server moves.
set timeout=2
set default=0
menuentry %q {
	echo 'ezio: loading the deploy environment...'
	linux %s %s
	initrd %s
}
`, title, KernelPath, cmdline, InitrdPath)
}

// MBR is the stick's sector 0: GRUB's boot code, the disk signature and
// one active FAT32 partition of sectors sectors from start.
func MBR(bootImg []byte, diskID uint32, start, sectors int64) []byte {
	b := make([]byte, sectorSize)
	copy(b, bootImg[:440])
	// grub-setup does this for hard disks (a USB stick booted by BIOS is
	// one): use drive 0x80 when a buggy BIOS passes another number.
	b[0x66], b[0x67] = 0x90, 0x90
	binary.LittleEndian.PutUint32(b[440:], diskID)
	e := b[446:462]
	e[0] = 0x80
	copy(e[1:4], chs(start))
	e[4] = PartType
	copy(e[5:8], chs(start+sectors-1))
	binary.LittleEndian.PutUint32(e[8:], uint32(start))
	binary.LittleEndian.PutUint32(e[12:], uint32(sectors))
	b[510], b[511] = 0x55, 0xaa
	return b
}

// chs is an LBA in the MBR's cylinder/head/sector form (255 heads, 63
// sectors a track), or the "beyond CHS" marker.
func chs(lba int64) []byte {
	c, rest := lba/(255*63), lba%(255*63)
	h, s := rest/63, rest%63+1
	if c > 1023 {
		return []byte{0xfe, 0xff, 0xff}
	}
	return []byte{byte(h), byte(s) | byte(c>>8)<<6, byte(c)}
}

func grubImage(grubDir, format, prefix, out string, mods ...string) ([]byte, error) {
	args := append([]string{"-d", filepath.Join(grubDir, format), "-O", format, "-p", prefix, "-o", out}, mods...)
	if b, err := exec.Command("grub-mkimage", args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("grub-mkimage -O %s: %v: %s", format, err, strings.TrimSpace(string(b)))
	}
	return os.ReadFile(out)
}

type copySpec struct{ from, to string }

// makeFAT makes a FAT32 file system of size bytes in the file fat and
// copies the files in with mtools.
func makeFAT(fat string, size int64, volID uint32, files []copySpec) error {
	if err := os.WriteFile(fat, nil, 0o644); err != nil {
		return err
	}
	if err := os.Truncate(fat, size); err != nil {
		return err
	}
	// -h: the hidden sectors before the file system, as on the stick.
	if err := run("mkfs.vfat", "-F", "32", "-n", Label, "-i", fmt.Sprintf("%08x", volID), "-h", fmt.Sprint(PartStart), fat); err != nil {
		return err
	}
	dirs := map[string]bool{}
	for _, f := range files {
		for d := filepath.Dir(f.to); d != "/"; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	var mk []string
	for d := range dirs {
		mk = append(mk, d)
	}
	sort.Slice(mk, func(i, j int) bool { return len(mk[i]) < len(mk[j]) }) // parents first
	for _, d := range mk {
		if err := run("mmd", "-i", fat, "::"+d); err != nil {
			return err
		}
	}
	for _, f := range files {
		if err := run("mcopy", "-i", fat, f.from, "::"+f.to); err != nil {
			return err
		}
	}
	return nil
}

func run(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", name, err, strings.TrimSpace(string(b)))
	}
	return nil
}

// copyFAT copies the FAT file onto dev at offset.
func copyFAT(dev *os.File, fat string, offset int64) error {
	f, err := os.Open(fat)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(io.NewOffsetWriter(dev, offset), f)
	if err != nil {
		return fmt.Errorf("writing the file system onto %s: %w", dev.Name(), err)
	}
	return nil
}
