package partclone

import (
	"bytes"
	"context"
	"crypto/sha1"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseInfoReal(t *testing.T) {
	tests := []struct {
		file                 string
		blockSize, total     int64
		extents, hashes      int
		first                Extent
		totalLength          int64
		firstHashHexPrefixed string
	}{
		{"ext4.torrent.info", 1024, 65536, 7, 1, Extent{0, 0x448400}, 13331456, "9745f60e"},
		{"dd.torrent.info", 512, 614400, 19, 19, Extent{0, 0x1000000}, 300 << 20, "e1852876"},
		{"fat32.torrent.info", 512, 131072, 1, 1, Extent{0, 0x32f600}, 0x32f600, "ddfefd0a"},
		{"ntfs.torrent.info", 4096, 16383, 5, 1, Extent{0, 0x3000}, 0x3000 + 0x13000 + 0x66000 + 0x3ea000 + 0x47000, "1d147391"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			info, err := ParseInfo(bytes.NewReader(readTestdata(t, tt.file)))
			if err != nil {
				t.Fatal(err)
			}
			if info.BlockSize != tt.blockSize || info.BlocksTotal != tt.total {
				t.Errorf("block size %d, total %d; want %d, %d", info.BlockSize, info.BlocksTotal, tt.blockSize, tt.total)
			}
			if len(info.Extents) != tt.extents || len(info.Hashes) != tt.hashes {
				t.Errorf("%d extents, %d hashes; want %d, %d", len(info.Extents), len(info.Hashes), tt.extents, tt.hashes)
			}
			if info.Extents[0] != tt.first {
				t.Errorf("first extent %+v, want %+v", info.Extents[0], tt.first)
			}
			if got := info.TotalLength(); got != tt.totalLength {
				t.Errorf("TotalLength %d, want %d", got, tt.totalLength)
			}
			if got := hexString(info.Hashes[0][:4]); got != tt.firstHashHexPrefixed {
				t.Errorf("first hash starts %s, want %s", got, tt.firstHashHexPrefixed)
			}
			if err := info.Check(); err != nil {
				t.Error(err)
			}
			// Our own rendering reads back the same.
			text, err := info.MarshalText()
			if err != nil {
				t.Fatal(err)
			}
			again, err := ParseInfo(bytes.NewReader(text))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(info, again) {
				t.Error("MarshalText does not round-trip")
			}
		})
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	var s strings.Builder
	for _, c := range b {
		s.WriteByte(digits[c>>4])
		s.WriteByte(digits[c&15])
	}
	return s.String()
}

func TestParseInfoErrors(t *testing.T) {
	const head = "block_size: 512\nblocks_total: 100\n"
	const zero = "00000000000000000000000000000000"
	tests := []struct {
		name, in, want string
	}{
		{"offset without length", head + "offset: " + zero + "\noffset: " + zero + "\n", "line 3: offset: without a length:"},
		{"offset at end", head + "offset: " + zero + "\n", "line 3: offset: without a length: (file ends)"},
		{"length first", head + "length: " + zero + "\n", "line 3: length: without an offset:"},
		{"bad hex", head + "offset: 0000zz\n", "line 3: offset:"},
		{"negative", head + "offset: -1\n", "line 3: offset:"},
		{"overflow", head + "offset: 10000000000000000\n", "line 3: offset: \"10000000000000000\" does not fit"},
		{"sign bit", head + "offset: 8000000000000000\n", "does not fit"},
		{"end overflows", head + "offset: 7fffffffffffffff\nlength: 2\n", "line 4: extent at"},
		{"short sha1", head + "sha1: abcd\n", "line 3: sha1: want 40 hex digits"},
		{"bad sha1", head + "sha1: " + strings.Repeat("g", 40) + "\n", "line 3: sha1:"},
		{"garbled", head + "hello world\n", "line 3: \"hello world\" is not"},
		{"unknown key", head + "colour: blue\n", "line 3: unknown key"},
		{"decimal junk", "block_size: 0x200\n", "line 1: block_size:"},
		{"negative decimal", "block_size: -512\n", "line 1: block_size:"},
		{"huge decimal", "blocks_total: 99999999999999999999\n", "line 1: blocks_total:"},
		{"zero block size", "block_size: 0\n", "line 1: block_size is 0"},
		{"twice", head + "block_size: 512\n", "line 3: second block_size"},
		{"no header", "offset: " + zero + "\nlength: 1\n", "no block_size"},
		{"empty", "", "line 1: no block_size"},
		{"too long", head + strings.Repeat("x", 10000), "line 3: line longer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseInfo(strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.HasPrefix(err.Error(), "torrent.info line ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestParseInfoTolerates(t *testing.T) {
	// 16-digit offsets (older partclone), CRLF, blank lines, a sha1 between
	// offset and length.
	in := "block_size: 512\r\nblocks_total: 100\r\n\r\noffset: 0000000000000200\r\nsha1: " +
		strings.Repeat("ab", 20) + "\r\nlength: 0000000000000400\r\n"
	info, err := ParseInfo(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if want := []Extent{{0x200, 0x400}}; !slices.Equal(info.Extents, want) {
		t.Errorf("extents %v, want %v", info.Extents, want)
	}
	if len(info.Hashes) != 1 || info.Hashes[0][0] != 0xab {
		t.Errorf("hashes %x", info.Hashes)
	}
}

func TestCheck(t *testing.T) {
	h := [20]byte{}
	ok := &Info{BlockSize: 4096, BlocksTotal: 10000, Extents: []Extent{{0, 4096}, {8192, InfoPieceLength}}, Hashes: [][20]byte{h, h}}
	if err := ok.Check(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		modify func(i *Info)
		want   string
	}{
		{"too few hashes", func(i *Info) { i.Hashes = i.Hashes[:1] }, "1 sha1 hashes"},
		{"too many hashes", func(i *Info) { i.Hashes = append(i.Hashes, h) }, "want 2"},
		{"unsorted", func(i *Info) { i.Extents[0], i.Extents[1] = i.Extents[1], i.Extents[0] }, "starts before"},
		{"overlap", func(i *Info) { i.Extents[1].Offset = 4000 }, "starts before"},
		{"empty extent", func(i *Info) { i.Extents[0].Length = 0 }, "invalid"},
		{"past device", func(i *Info) { i.BlocksTotal = 4 }, "past the device size"},
		{"no block size", func(i *Info) { i.BlockSize = 0 }, "block size 0"},
		{"overflowing size", func(i *Info) { i.BlocksTotal = 1 << 62 }, "overflow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i := &Info{BlockSize: ok.BlockSize, BlocksTotal: ok.BlocksTotal, Extents: slices.Clone(ok.Extents), Hashes: slices.Clone(ok.Hashes)}
			tt.modify(i)
			err := i.Check()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Check() = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestExtentFileName(t *testing.T) {
	if got := ExtentFileName(0x800400); got != "00000000000000000000000000800400" {
		t.Errorf("ExtentFileName = %s", got)
	}
	for name, want := range map[string]int64{
		"00000000000000000000000000800400": 0x800400,
		"0000000000800400":                 0x800400,
	} {
		if got, ok := ParseExtentFileName(name); !ok || got != want {
			t.Errorf("ParseExtentFileName(%s) = %#x, %v", name, got, ok)
		}
	}
	for _, name := range []string{"torrent.info", "800400", "0000000000000000000000000080040g", "ffffffffffffffffffffffffffffffff"} {
		if _, ok := ParseExtentFileName(name); ok {
			t.Errorf("ParseExtentFileName(%s) accepted", name)
		}
	}
}

// writeImageDir makes a synthetic image dir with extents of the given
// lengths and returns its Info.
func writeImageDir(t *testing.T, dir string, lengths []int64, nameDigits int) *Info {
	t.Helper()
	info := &Info{BlockSize: 512}
	var stream []byte
	var off int64 = 4096
	for k, n := range lengths {
		data := bytes.Repeat([]byte{byte(k + 1)}, int(n))
		for j := range data {
			data[j] ^= byte(j * 7)
		}
		name := ExtentFileName(off)[32-nameDigits:]
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o400); err != nil {
			t.Fatal(err)
		}
		info.Extents = append(info.Extents, Extent{off, n})
		stream = append(stream, data...)
		off += n + 512*int64(k+1)
	}
	for p := 0; p < len(stream); p += InfoPieceLength {
		info.Hashes = append(info.Hashes, sha1.Sum(stream[p:min(p+InfoPieceLength, len(stream))]))
	}
	info.BlocksTotal = off/512 + 1
	if err := info.Check(); err != nil {
		t.Fatal(err)
	}
	return info
}

func TestVerifyDirSynthetic(t *testing.T) {
	dir := t.TempDir()
	// Pieces that span extents, an extent spanning pieces, a short last piece.
	info := writeImageDir(t, dir, []int64{5 << 20, 20 << 20, 3 << 20, 1 << 20, 12<<20 + 512}, 32)
	if got := info.NumPieces(); got != 3 {
		t.Fatalf("NumPieces = %d", got)
	}
	var last, total int64
	bad, err := VerifyDir(context.Background(), info, dir, func(done, tot int64) { last, total = done, tot })
	if err != nil || len(bad) != 0 {
		t.Fatalf("VerifyDir = %v, %v", bad, err)
	}
	if last != info.TotalLength() || total != info.TotalLength() {
		t.Errorf("progress ended at %d/%d, want %d", last, total, info.TotalLength())
	}

	// A flipped byte in the 4th extent (stream offset 28 MiB + 10) is piece 1.
	corrupt(t, filepath.Join(dir, ExtentFileName(info.Extents[3].Offset)), 10)
	bad, err = VerifyDir(context.Background(), info, dir, nil)
	if err != nil || !slices.Equal(bad, []int{1}) {
		t.Fatalf("after corruption VerifyDir = %v, %v; want [1]", bad, err)
	}
	// A missing file fails the pieces it belongs to, without an error.
	if err := os.Remove(filepath.Join(dir, ExtentFileName(info.Extents[1].Offset))); err != nil {
		t.Fatal(err)
	}
	bad, err = VerifyDir(context.Background(), info, dir, nil)
	if err != nil || !slices.Equal(bad, []int{0, 1}) {
		t.Fatalf("with a missing file VerifyDir = %v, %v; want [0 1]", bad, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := VerifyDir(ctx, info, dir, nil); err == nil {
		t.Error("VerifyDir with a cancelled context succeeded")
	}
	if _, err := VerifyDir(context.Background(), info, filepath.Join(dir, "nope"), nil); err == nil {
		t.Error("VerifyDir of a missing dir succeeded")
	}
}

func TestVerifyDirSixteenDigitNames(t *testing.T) {
	dir := t.TempDir()
	info := writeImageDir(t, dir, []int64{1 << 20, 17 << 20}, 16)
	bad, err := VerifyDir(context.Background(), info, dir, nil)
	if err != nil || len(bad) != 0 {
		t.Fatalf("VerifyDir = %v, %v", bad, err)
	}
}

// corrupt flips the bits of one byte of a (read-only) extent file.
func corrupt(t *testing.T, path string, at int64) {
	t.Helper()
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, at); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
}
