package disks

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Signature is what sits at the start of a device: a filesystem, swap, or a
// member of a volume group or RAID array. Types use blkid's names.
type Signature struct {
	Type  string // "ext4", "vfat", "LVM2_member", "" when nothing is known
	Label string
	UUID  string
}

// probeHead is how much of the start of a device the prober reads: enough
// for the btrfs superblock at 64 KiB and the ISO 9660 descriptor at 32 KiB.
const probeHead = 64*1024 + 4096

// Probe reads the signature of a device or image file. It reads a few
// kilobytes at the start and near the end, and never writes. Reading
// ourselves rather than asking udev keeps it right on systems without udev
// and on devices udev has not seen yet.
func Probe(path string) (Signature, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return Signature{}, err
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return Signature{}, err
	}
	head := make([]byte, probeHead)
	n, err := f.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return Signature{}, err
	}
	head = head[:n]
	tail := func(off int64, n int) []byte {
		if off < 0 || off+int64(n) > size {
			return nil
		}
		b := make([]byte, n)
		if _, err := f.ReadAt(b, off); err != nil {
			return nil
		}
		return b
	}
	return probeBytes(head, size, tail), nil
}

// probeBytes recognises a signature from the first bytes of a device; tail
// reads elsewhere (for RAID superblocks kept at the end).
func probeBytes(b []byte, size int64, tail func(off int64, n int) []byte) Signature {
	at := func(off int, s string) bool {
		return off >= 0 && off+len(s) <= len(b) && string(b[off:off+len(s)]) == s
	}
	le32 := func(off int) uint32 {
		if off < 0 || off+4 > len(b) {
			return 0
		}
		return binary.LittleEndian.Uint32(b[off:])
	}
	const mdMagic = 0xa92b4efc

	// RAID and LVM first: their members may also look like a filesystem.
	for _, off := range []int{0, 4096} { // md metadata 1.1 and 1.2
		if le32(off) == mdMagic && le32(off+4) == 1 {
			return Signature{Type: "linux_raid_member", UUID: hexUUID(b[off+16 : off+32]), Label: cString(b[off+32 : off+64])}
		}
	}
	if tail != nil && size >= 128*1024 {
		// md metadata 0.90: 64 KiB block at the last 64 KiB boundary.
		if t := tail((size&^(64*1024-1))-64*1024, 8); len(t) == 8 &&
			(binary.LittleEndian.Uint32(t) == mdMagic || binary.BigEndian.Uint32(t) == mdMagic) {
			return Signature{Type: "linux_raid_member"}
		}
		// md metadata 1.0: 8 KiB from the end, 4 KiB aligned.
		if t := tail((size-8*1024)&^(4*1024-1), 64); len(t) == 64 &&
			binary.LittleEndian.Uint32(t) == mdMagic && binary.LittleEndian.Uint32(t[4:]) == 1 {
			return Signature{Type: "linux_raid_member", UUID: hexUUID(t[16:32]), Label: cString(t[32:64])}
		}
	}
	for sector := 0; sector < 4; sector++ {
		off := sector * 512
		if at(off, "LABELONE") && at(off+24, "LVM2 001") && len(b) >= off+64 {
			return Signature{Type: "LVM2_member", UUID: lvmUUID(b[off+32 : off+64])}
		}
	}
	if at(0, "LUKS\xba\xbe") && len(b) >= 208 {
		return Signature{Type: "crypto_LUKS", UUID: cString(b[168:208])}
	}
	for _, page := range []int{4096, 8192, 16384, 65536} {
		if at(page-10, "SWAPSPACE2") || at(page-10, "SWAP-SPACE") {
			sig := Signature{Type: "swap"}
			if len(b) >= 1024+44 {
				sig.UUID = dashedUUID(b[1024+12 : 1024+28])
				sig.Label = cString(b[1024+28 : 1024+44])
			}
			return sig
		}
	}
	if len(b) >= 1024+136 && b[1024+56] == 0x53 && b[1024+57] == 0xef {
		sb := b[1024:]
		compat := binary.LittleEndian.Uint32(sb[92:])
		incompat := binary.LittleEndian.Uint32(sb[96:])
		roCompat := binary.LittleEndian.Uint32(sb[100:])
		typ := "ext2"
		switch {
		case incompat&0x8 != 0:
			typ = "jbd"
		case incompat&^0x1e != 0 || roCompat&^0x7 != 0:
			// Features ext3 does not know: extents, 64bit, flex_bg, ...
			typ = "ext4"
		case compat&0x4 != 0: // has_journal
			typ = "ext3"
		}
		return Signature{Type: typ, UUID: dashedUUID(sb[104:120]), Label: cString(sb[120:136])}
	}
	if at(0, "XFSB") && len(b) >= 120 {
		return Signature{Type: "xfs", UUID: dashedUUID(b[32:48]), Label: cString(b[108:120])}
	}
	if at(65536+64, "_BHRfS_M") && len(b) >= 65536+299+256 {
		return Signature{Type: "btrfs", UUID: dashedUUID(b[65536+32 : 65536+48]), Label: cString(b[65536+299 : 65536+299+256])}
	}
	if at(32769, "CD001") && len(b) >= 32768+72 {
		return Signature{Type: "iso9660", Label: strings.TrimSpace(string(b[32768+40 : 32768+72]))}
	}
	if at(0, "hsqs") {
		return Signature{Type: "squashfs"}
	}
	if le32(1024) == 0xf2f52010 {
		return Signature{Type: "f2fs"}
	}
	if at(3, "NTFS    ") && len(b) >= 0x50 {
		return Signature{Type: "ntfs", UUID: fmt.Sprintf("%016X", binary.LittleEndian.Uint64(b[0x48:]))}
	}
	if at(3, "EXFAT   ") && len(b) >= 104 {
		return Signature{Type: "exfat", UUID: fatSerial(b[100:104])}
	}
	if len(b) >= 512 && b[510] == 0x55 && b[511] == 0xaa {
		bps := binary.LittleEndian.Uint16(b[11:])
		sane := bps >= 512 && bps <= 4096 && bps&(bps-1) == 0 && b[13] != 0
		switch {
		case sane && at(82, "FAT32"):
			return Signature{Type: "vfat", UUID: fatSerial(b[67:71]), Label: fatLabel(b[71:82])}
		case sane && (at(54, "FAT12") || at(54, "FAT16") || at(54, "FAT     ")):
			return Signature{Type: "vfat", UUID: fatSerial(b[39:43]), Label: fatLabel(b[43:54])}
		}
	}
	return Signature{}
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimSpace(string(b))
}

func dashedUUID(b []byte) string {
	if len(b) != 16 || bytes.Equal(b, make([]byte, 16)) {
		return ""
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// hexUUID is how mdadm shows array UUIDs: four colon-separated groups.
func hexUUID(b []byte) string {
	return fmt.Sprintf("%x:%x:%x:%x", b[0:4], b[4:8], b[8:12], b[12:16])
}

// lvmUUID formats a PV UUID the way LVM prints it: 6-4-4-4-4-4-6.
func lvmUUID(b []byte) string {
	s := string(b)
	if len(s) != 32 {
		return s
	}
	return s[0:6] + "-" + s[6:10] + "-" + s[10:14] + "-" + s[14:18] + "-" + s[18:22] + "-" + s[22:26] + "-" + s[26:32]
}

func fatSerial(b []byte) string {
	v := binary.LittleEndian.Uint32(b)
	return fmt.Sprintf("%04X-%04X", v>>16, v&0xffff)
}

func fatLabel(b []byte) string {
	l := strings.TrimRight(cString(b), " ")
	if l == "NO NAME" {
		return ""
	}
	return l
}
