package partclone

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// InfoPieceLength is the piece length of the sha1: lines partclone writes to
// torrent.info. It does not depend on --buffer_size.
const InfoPieceLength = 16 << 20

// InfoFileName is the name partclone gives the description it writes beside
// the extent files.
const InfoFileName = "torrent.info"

// maxInfoLine bounds one torrent.info line; real lines are under 50 bytes.
const maxInfoLine = 4096

// Extent is one run of used bytes on the source device. In image mode
// partclone stores it as a file named by its offset in hex.
type Extent struct{ Offset, Length int64 }

// End is the offset just past the extent.
func (e Extent) End() int64 { return e.Offset + e.Length }

// Info is a parsed torrent.info.
//
// partclone 0.3.23 writes, one per line and in this order of first
// appearance:
//
//	block_size: 1024                                    (decimal)
//	blocks_total: 65536                                 (decimal)
//	offset: 00000000000000000000000000800400            (32 lowercase hex digits)
//	length: 000000000000000000000000001ad000            (32 lowercase hex digits)
//	sha1: 9745f60e913319c19b9afe23ba277426573fdbcb      (40 lowercase hex digits)
//
// offset:/length: pairs come in disk order; sha1: lines are interleaved with
// them wherever a 16 MiB piece of the concatenated extents was completed, and
// the hash of the short last piece follows the last length: line.
type Info struct {
	BlockSize   int64
	BlocksTotal int64
	Extents     []Extent   // in file order
	Hashes      [][20]byte // sha1 piece hashes, InfoPieceLength pieces
}

// ParseInfo reads a torrent.info as written by partclone -T or -t.
// Every error names the line it was found on.
func ParseInfo(r io.Reader) (*Info, error) {
	info := &Info{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256), maxInfoLine)
	var (
		line                     int
		haveBlockSize, haveTotal bool
		pending                  bool // an offset: waits for its length:
		pendingLine              int
		pendingOffset            int64
	)
	fail := func(n int, format string, args ...any) error {
		return fmt.Errorf("%s line %d: %s", InfoFileName, n, fmt.Sprintf(format, args...))
	}
	for sc.Scan() {
		line++
		text := strings.TrimRight(sc.Text(), " \t\r")
		if text == "" {
			continue
		}
		key, value, ok := strings.Cut(text, ":")
		if !ok {
			return nil, fail(line, "%q is not a \"key: value\" line", clip(text))
		}
		value = strings.TrimLeft(value, " \t")
		switch key {
		case "block_size", "blocks_total":
			n, err := parseDecimal(value)
			if err != nil {
				return nil, fail(line, "%s: %v", key, err)
			}
			if key == "block_size" {
				if haveBlockSize {
					return nil, fail(line, "second block_size")
				}
				if n == 0 {
					return nil, fail(line, "block_size is 0")
				}
				info.BlockSize, haveBlockSize = n, true
			} else {
				if haveTotal {
					return nil, fail(line, "second blocks_total")
				}
				info.BlocksTotal, haveTotal = n, true
			}
		case "offset":
			if pending {
				return nil, fail(pendingLine, "offset: without a length:")
			}
			n, err := parseHex64(value)
			if err != nil {
				return nil, fail(line, "offset: %v", err)
			}
			pending, pendingLine, pendingOffset = true, line, n
		case "length":
			if !pending {
				return nil, fail(line, "length: without an offset: before it")
			}
			n, err := parseHex64(value)
			if err != nil {
				return nil, fail(line, "length: %v", err)
			}
			if n > math.MaxInt64-pendingOffset {
				return nil, fail(line, "extent at %#x of length %#x ends past the largest offset", pendingOffset, n)
			}
			info.Extents = append(info.Extents, Extent{Offset: pendingOffset, Length: n})
			pending = false
		case "sha1":
			if len(value) != 40 {
				return nil, fail(line, "sha1: want 40 hex digits, got %d characters", len(value))
			}
			var h [20]byte
			if _, err := hex.Decode(h[:], []byte(value)); err != nil {
				return nil, fail(line, "sha1: %v", err)
			}
			info.Hashes = append(info.Hashes, h)
		default:
			return nil, fail(line, "unknown key %q", clip(key))
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fail(line+1, "line longer than %d bytes", maxInfoLine)
		}
		return nil, fmt.Errorf("%s line %d: %w", InfoFileName, line+1, err)
	}
	if pending {
		return nil, fail(pendingLine, "offset: without a length: (file ends)")
	}
	if !haveBlockSize {
		return nil, fail(max(line, 1), "no block_size: line")
	}
	if !haveTotal {
		return nil, fail(max(line, 1), "no blocks_total: line")
	}
	return info, nil
}

// clip keeps quoted garbage in error messages short.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

func parseDecimal(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("no value")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q is not a decimal number", clip(s))
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is too large", clip(s))
	}
	return n, nil
}

// parseHex64 reads partclone's zero-padded hex (32 digits from 0.3.23, 16
// from older versions) into a non-negative int64.
func parseHex64(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("no value")
	}
	digits := strings.TrimLeft(s, "0")
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return 0, fmt.Errorf("%q is not hex", clip(s))
		}
	}
	if digits == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(digits, 16, 64)
	if err != nil || n > math.MaxInt64 {
		return 0, fmt.Errorf("%q does not fit in a signed 64-bit offset", clip(s))
	}
	return int64(n), nil
}

// TotalLength is the number of bytes in all extents, the length of the data
// the piece hashes cover.
func (i *Info) TotalLength() int64 {
	var n int64
	for _, e := range i.Extents {
		n += e.Length
	}
	return n
}

// NumPieces is the number of InfoPieceLength pieces the extents make.
func (i *Info) NumPieces() int {
	return int((i.TotalLength() + InfoPieceLength - 1) / InfoPieceLength)
}

// DeviceSize is BlockSize*BlocksTotal, the size of the captured device as
// partclone saw it, or -1 if it does not fit in an int64.
func (i *Info) DeviceSize() int64 {
	if i.BlockSize <= 0 || i.BlocksTotal < 0 || i.BlocksTotal > math.MaxInt64/i.BlockSize {
		return -1
	}
	return i.BlockSize * i.BlocksTotal
}

// Check reports whether the description is consistent: positive extents,
// sorted and not overlapping, inside the device, and one hash per piece.
func (i *Info) Check() error {
	if i.BlockSize <= 0 {
		return fmt.Errorf("%s: block size %d", InfoFileName, i.BlockSize)
	}
	if i.BlocksTotal < 0 {
		return fmt.Errorf("%s: blocks total %d", InfoFileName, i.BlocksTotal)
	}
	size := i.DeviceSize()
	if size < 0 {
		return fmt.Errorf("%s: %d blocks of %d bytes overflow", InfoFileName, i.BlocksTotal, i.BlockSize)
	}
	var total, end int64
	for k, e := range i.Extents {
		if e.Offset < 0 || e.Length <= 0 || e.Length > math.MaxInt64-e.Offset {
			return fmt.Errorf("%s: extent %d (offset %#x, length %#x) is invalid", InfoFileName, k, e.Offset, e.Length)
		}
		if k > 0 && e.Offset < end {
			return fmt.Errorf("%s: extent %d at %#x starts before the end %#x of the one before it", InfoFileName, k, e.Offset, end)
		}
		end = e.End()
		if end > size {
			return fmt.Errorf("%s: extent %d ends at %#x, past the device size %#x", InfoFileName, k, end, size)
		}
		total += e.Length
	}
	want := (total + InfoPieceLength - 1) / InfoPieceLength
	if int64(len(i.Hashes)) != want {
		return fmt.Errorf("%s: %d sha1 hashes for %d bytes of extents, want %d (16 MiB pieces)", InfoFileName, len(i.Hashes), total, want)
	}
	return nil
}

// MarshalText writes the description in partclone's syntax: the header,
// then every offset:/length: pair, then every sha1: line. partclone itself
// interleaves the sha1: lines; ParseInfo reads both.
func (i *Info) MarshalText() ([]byte, error) {
	if i.BlockSize <= 0 || i.BlocksTotal < 0 {
		return nil, fmt.Errorf("%s: block size %d, blocks total %d", InfoFileName, i.BlockSize, i.BlocksTotal)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "block_size: %d\nblocks_total: %d\n", i.BlockSize, i.BlocksTotal)
	for _, e := range i.Extents {
		if e.Offset < 0 || e.Length < 0 {
			return nil, fmt.Errorf("%s: negative extent %+v", InfoFileName, e)
		}
		fmt.Fprintf(&b, "offset: %032x\nlength: %032x\n", e.Offset, e.Length)
	}
	for _, h := range i.Hashes {
		fmt.Fprintf(&b, "sha1: %x\n", h)
	}
	return b.Bytes(), nil
}

// ExtentFileName is the name partclone gives the file of the extent at
// offset: 32 lowercase hex digits.
func ExtentFileName(offset int64) string { return fmt.Sprintf("%032x", offset) }

// ParseExtentFileName reads an extent file name: 32 hex digits as partclone
// 0.3.23 writes, or 16 as older tools do.
func ParseExtentFileName(name string) (int64, bool) {
	if len(name) != 32 && len(name) != 16 {
		return 0, false
	}
	n, err := parseHex64(name)
	if err != nil {
		return 0, false
	}
	return n, true
}

// pieceSpan is the part of one extent a piece covers.
type pieceSpan struct {
	extent int   // index in Info.Extents
	skip   int64 // bytes into the extent
	length int64
}

// pieceSpans lists, for piece p, which extent bytes it is made of.
func (i *Info) pieceSpans(starts []int64, p int) []pieceSpan {
	total := i.TotalLength()
	from := int64(p) * InfoPieceLength
	to := min(from+InfoPieceLength, total)
	// The first extent whose end passes from.
	k, _ := slices.BinarySearchFunc(starts, from, func(start, target int64) int {
		if start <= target {
			return -1
		}
		return 1
	})
	k-- // last extent starting at or before from
	var spans []pieceSpan
	for pos := from; pos < to && k < len(i.Extents); k++ {
		e := i.Extents[k]
		skip := pos - starts[k]
		n := min(e.Length-skip, to-pos)
		if n > 0 {
			spans = append(spans, pieceSpan{extent: k, skip: skip, length: n})
			pos += n
		}
	}
	return spans
}

// streamStarts gives each extent's position in the concatenated stream.
func (i *Info) streamStarts() []int64 {
	starts := make([]int64, len(i.Extents))
	var pos int64
	for k, e := range i.Extents {
		starts[k] = pos
		pos += e.Length
	}
	return starts
}
