package torrentfile

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/anacrolix/torrent/metainfo"
)

// DefaultPieceLength is the piece length partclone hashes with and the one
// ezio uses unless told otherwise.
const DefaultPieceLength = 16 << 20

// Extent is a run of bytes on the disk: the data of one torrent file.
type Extent struct {
	Offset int64 // byte offset on the disk
	Length int64
}

// End is the first byte past the extent.
func (e Extent) End() int64 { return e.Offset + e.Length }

// Layout maps the torrent's byte stream onto disk extents. It is built only
// from a validated info dictionary, so every mapping it yields stays inside
// the extents the torrent declares.
type Layout struct {
	Name        string
	PieceLength int64
	NumPieces   int
	Total       int64    // sum of extent lengths: the torrent's length
	Extents     []Extent // in torrent file order
	FileNames   []string // the path component as written in the torrent
	start       []int64  // torrent offset where each extent's data begins
	End         int64    // highest extent end: the smallest target that fits
}

// ValidationError says which part of a torrent is unacceptable.
type ValidationError struct {
	File   string // the torrent file path involved, if any
	Reason string
}

func (e *ValidationError) Error() string {
	if e.File != "" {
		return fmt.Sprintf("invalid image torrent: file %q: %s", e.File, e.Reason)
	}
	return "invalid image torrent: " + e.Reason
}

// ParseOffset reads an extent file name: up to 32 hex digits, either case.
func ParseOffset(name string) (int64, error) {
	if name == "" || len(name) > 32 {
		return 0, errors.New("name is not 1 to 32 hex digits")
	}
	for _, c := range name {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return 0, errors.New("name is not a hex disk offset")
		}
	}
	trimmed := strings.TrimLeft(name, "0")
	if trimmed == "" {
		return 0, nil
	}
	if len(trimmed) > 16 {
		return 0, errors.New("offset does not fit in 63 bits")
	}
	v, err := strconv.ParseUint(trimmed, 16, 64)
	if err != nil || v > math.MaxInt64 {
		return 0, errors.New("offset does not fit in 63 bits")
	}
	return int64(v), nil
}

// FormatOffset writes a disk offset the way partclone names extent files.
func FormatOffset(off int64) string { return fmt.Sprintf("%032x", off) }

// NewLayout validates an info dictionary as an ezio image and builds its
// extent map. It rejects anything that could make a client write outside
// the declared extents: bad names, overlaps, lengths that overflow, and a
// piece table that does not match the data length.
func NewLayout(info *metainfo.Info) (*Layout, error) {
	if info.HasV2() && !info.HasV1() {
		return nil, &ValidationError{Reason: "v2-only torrents are not supported; image torrents are v1"}
	}
	if info.PieceLength <= 0 {
		return nil, &ValidationError{Reason: fmt.Sprintf("piece length %d is not positive", info.PieceLength)}
	}
	if info.PieceLength > 256<<20 {
		return nil, &ValidationError{Reason: fmt.Sprintf("piece length %d is larger than 256 MiB", info.PieceLength)}
	}
	if len(info.Files) == 0 {
		return nil, &ValidationError{Reason: "torrent has no extent files (a single-file torrent is not a disk image; name files by hex disk offset)"}
	}
	if len(info.Files) > MaxExtents {
		return nil, &ValidationError{Reason: fmt.Sprintf("%d extents, more than the %d ezio accepts", len(info.Files), MaxExtents)}
	}
	n := len(info.Files)
	l := &Layout{Name: info.Name, PieceLength: info.PieceLength,
		start: make([]int64, 0, n), Extents: make([]Extent, 0, n), FileNames: make([]string, 0, n)}
	var total int64
	for _, f := range info.Files {
		if len(f.Path) != 1 {
			return nil, &ValidationError{File: strings.Join(f.Path, "/"), Reason: "extent files must sit directly under the image name"}
		}
		path := f.Path[0]
		off, err := ParseOffset(f.Path[0])
		if err != nil {
			return nil, &ValidationError{File: path, Reason: err.Error()}
		}
		if f.Length < 0 {
			return nil, &ValidationError{File: path, Reason: "negative length"}
		}
		if off > math.MaxInt64-f.Length {
			return nil, &ValidationError{File: path, Reason: "extent end overflows"}
		}
		if total > math.MaxInt64-f.Length {
			return nil, &ValidationError{File: path, Reason: "total length overflows"}
		}
		l.start = append(l.start, total)
		l.Extents = append(l.Extents, Extent{Offset: off, Length: f.Length})
		l.FileNames = append(l.FileNames, f.Path[0])
		total += f.Length
		l.End = max(l.End, off+f.Length)
	}
	l.Total = total
	if total == 0 {
		return nil, &ValidationError{Reason: "torrent holds no data"}
	}
	// Overlap check on a sorted copy; zero-length extents cannot overlap.
	idx := make([]int, len(l.Extents))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return l.Extents[idx[a]].Offset < l.Extents[idx[b]].Offset })
	var prev = -1
	for _, i := range idx {
		if l.Extents[i].Length == 0 {
			continue
		}
		if prev >= 0 && l.Extents[prev].End() > l.Extents[i].Offset {
			return nil, &ValidationError{
				File:   info.Name + "/" + l.FileNames[i],
				Reason: fmt.Sprintf("overlaps %s/%s (bytes %d-%d and %d-%d)", info.Name, l.FileNames[prev], l.Extents[prev].Offset, l.Extents[prev].End(), l.Extents[i].Offset, l.Extents[i].End()),
			}
		}
		prev = i
	}
	want := (total + info.PieceLength - 1) / info.PieceLength
	if int64(len(info.Pieces)) != want*20 {
		return nil, &ValidationError{Reason: fmt.Sprintf("piece table has %d bytes (%d hashes) but %d bytes of data need %d pieces of %d", len(info.Pieces), len(info.Pieces)/20, total, want, info.PieceLength)}
	}
	l.NumPieces = int(want)
	return l, nil
}

// CheckFits refuses a target too small for the highest extent.
func (l *Layout) CheckFits(targetSize int64) error {
	if l.End > targetSize {
		// Name the extent that sticks out, for the message.
		for i, e := range l.Extents {
			if e.End() > targetSize {
				return &ValidationError{File: l.Name + "/" + l.FileNames[i], Reason: fmt.Sprintf("extent ends at byte %d, past the end of the %d-byte target (the image needs a target of at least %d bytes)", e.End(), targetSize, l.End)}
			}
		}
	}
	return nil
}

// PieceSpan is the torrent byte range of piece i.
func (l *Layout) PieceSpan(i int) (off, n int64) {
	off = int64(i) * l.PieceLength
	n = min(l.PieceLength, l.Total-off)
	return
}

// Segment is a part of a torrent range that lies in one extent.
type Segment struct {
	Ext    int   // extent index
	Within int64 // offset within the extent
	Disk   int64 // disk offset
	N      int64
	Buf    int64 // offset into the caller's buffer
}

// MapRange splits the torrent range [off, off+n) into per-extent segments.
// The range is clamped to the torrent's length.
func (l *Layout) MapRange(off, n int64, fn func(Segment) bool) {
	if off < 0 || off >= l.Total || n <= 0 {
		return
	}
	n = min(n, l.Total-off)
	i := sort.Search(len(l.start), func(i int) bool { return l.start[i] > off }) - 1
	var done int64
	for ; i < len(l.Extents) && done < n; i++ {
		e := l.Extents[i]
		within := off + done - l.start[i]
		if within >= e.Length {
			continue
		}
		k := min(e.Length-within, n-done)
		if !fn(Segment{Ext: i, Within: within, Disk: e.Offset + within, N: k, Buf: done}) {
			return
		}
		done += k
	}
}

// PieceWhere is the disk offset and extent file of piece i's first byte.
func (l *Layout) PieceWhere(i int) (int64, string) {
	off, n := l.PieceSpan(i)
	var disk int64 = -1
	var file string
	l.MapRange(off, n, func(s Segment) bool {
		disk, file = s.Disk, l.FileNames[s.Ext]
		return false
	})
	return disk, file
}
