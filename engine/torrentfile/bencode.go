package torrentfile

import (
	"bytes"
	"fmt"

	"github.com/anacrolix/torrent/metainfo"
)

// Torrents come from the network and from USB sticks: every one is checked
// by this strict, bounded reader before the library decodes it, so that no
// input can crash ezio (nesting), make two tools disagree about what it
// says (duplicate keys), or take unbounded time and memory (size, counts).

const (
	// MaxTorrentBytes is the largest .torrent ezio reads (a torrent of 4
	// million extents is about 120 MB; 4 million pieces add 80 MB).
	MaxTorrentBytes = 256 << 20
	// MaxExtents and MaxPieces bound what one image may declare.
	MaxExtents = 4_000_000
	MaxPieces  = 4_000_000
	// maxNesting is far more than any torrent needs (the deepest field,
	// info.files[i].path[j], is at depth 5).
	maxNesting = 64
)

// TooLargeError: a torrent over MaxTorrentBytes.
type TooLargeError struct {
	Size, Limit int64
	AtLeast     bool // Size is a lower bound (the body was cut off there)
}

func (e *TooLargeError) Error() string {
	if e.AtLeast {
		return fmt.Sprintf("torrent too large (over %d bytes, limit %d)", e.Size, e.Limit)
	}
	return fmt.Sprintf("torrent too large (%d bytes, limit %d)", e.Size, e.Limit)
}

// BencodeError says where a torrent breaks the format.
type BencodeError struct {
	Offset int
	Reason string
}

func (e *BencodeError) Error() string {
	return fmt.Sprintf("not a valid torrent: %s at byte %d", e.Reason, e.Offset)
}

// ParseTorrent checks b strictly and decodes it. The infohash is that of
// the exact info bytes.
func ParseTorrent(b []byte) (*metainfo.MetaInfo, error) {
	if len(b) > MaxTorrentBytes {
		return nil, &TooLargeError{Size: int64(len(b)), Limit: MaxTorrentBytes}
	}
	if err := CheckBencode(b); err != nil {
		return nil, err
	}
	mi, err := metainfo.Load(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("not a valid torrent: %w", err)
	}
	return mi, nil
}

// CheckBencode validates a whole torrent: one bencoded dictionary, nested
// at most maxNesting deep, no dictionary with a key twice, the info
// dictionary's keys in the canonical (sorted) order, and no more than
// MaxExtents files and MaxPieces pieces.
func CheckBencode(b []byte) error {
	p := &bparser{b: b}
	if len(b) == 0 || b[0] != 'd' {
		return &BencodeError{0, "the top level is not a dictionary"}
	}
	if err := p.value(0, ""); err != nil {
		return err
	}
	if p.i != len(b) {
		return &BencodeError{p.i, "data after the end of the torrent"}
	}
	return nil
}

type bparser struct {
	b []byte
	i int
}

func (p *bparser) fail(why string) error { return &BencodeError{p.i, why} }

// value reads one value; path names where it is ("" for the top, else as
// fieldPath says), for the rules that apply to some fields only.
func (p *bparser) value(depth int, path string) error {
	if depth > maxNesting {
		return p.fail(fmt.Sprintf("nested more than %d levels deep", maxNesting))
	}
	if p.i >= len(p.b) {
		return p.fail("unexpected end")
	}
	switch c := p.b[p.i]; {
	case c == 'i':
		return p.integer()
	case c >= '0' && c <= '9':
		_, err := p.str()
		return err
	case c == 'l':
		p.i++
		n := 0
		for {
			if p.i >= len(p.b) {
				return p.fail("unterminated list")
			}
			if p.b[p.i] == 'e' {
				p.i++
				break
			}
			if err := p.value(depth+1, "-"); err != nil {
				return err
			}
			n++
		}
		if path == "info.files" && n > MaxExtents {
			return p.fail(fmt.Sprintf("%d extents, more than the %d ezio accepts", n, MaxExtents))
		}
		return nil
	case c == 'd':
		p.i++
		var prev []byte
		var keys [][]byte        // sub-slices of b: no copies
		var seen map[string]bool // built only once keys come out of order
		for {
			if p.i >= len(p.b) {
				return p.fail("unterminated dictionary")
			}
			if p.b[p.i] == 'e' {
				p.i++
				return nil
			}
			at := p.i
			k, err := p.str()
			if err != nil {
				if p.i == at {
					return p.fail("a dictionary key that is not a string")
				}
				return err
			}
			if prev != nil && bytes.Compare(prev, k) >= 0 {
				if bytes.Equal(prev, k) {
					return &BencodeError{at, fmt.Sprintf("key %q appears twice in one dictionary", k)}
				}
				if path == "info" {
					return &BencodeError{at, fmt.Sprintf("the info dictionary's keys are not sorted (%q after %q)", k, prev)}
				}
				if seen == nil {
					seen = make(map[string]bool, len(keys))
					for _, x := range keys {
						seen[string(x)] = true
					}
				}
			}
			if seen != nil {
				if seen[string(k)] {
					return &BencodeError{at, fmt.Sprintf("key %q appears twice in one dictionary", k)}
				}
				seen[string(k)] = true
			} else {
				keys = append(keys, k)
			}
			prev = k
			child := fieldPath(path, k)
			vstart := p.i
			if err := p.value(depth+1, child); err != nil {
				return err
			}
			if child == "info.pieces" {
				if n := (p.i - vstart) / 20; n > MaxPieces {
					return &BencodeError{vstart, fmt.Sprintf("%d pieces, more than the %d ezio accepts", n, MaxPieces)}
				}
			}
		}
	}
	return p.fail(fmt.Sprintf("unexpected byte %q", p.b[p.i]))
}

func (p *bparser) integer() error {
	p.i++ // 'i'
	start := p.i
	if p.i < len(p.b) && p.b[p.i] == '-' {
		p.i++
	}
	digits := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	n := p.i - digits
	switch {
	case p.i >= len(p.b) || p.b[p.i] != 'e':
		return p.fail("unterminated integer")
	case n == 0:
		return p.fail("an integer without digits")
	case n > 19:
		return p.fail("an integer too large")
	case p.b[digits] == '0' && (n > 1 || digits > start):
		return p.fail("an integer with a leading zero or -0")
	}
	p.i++
	return nil
}

func (p *bparser) str() ([]byte, error) {
	start := p.i
	n := 0
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		if p.i-start >= 10 {
			return nil, p.fail("a string length too large")
		}
		n = n*10 + int(p.b[p.i]-'0')
		p.i++
	}
	if p.i == start {
		return nil, p.fail("expected a string")
	}
	if p.i >= len(p.b) || p.b[p.i] != ':' {
		return nil, p.fail("a string length without ':'")
	}
	if p.i-start > 1 && p.b[start] == '0' {
		return nil, &BencodeError{start, "a string length with a leading zero"}
	}
	p.i++
	if n > len(p.b)-p.i {
		return nil, p.fail(fmt.Sprintf("a %d-byte string past the end", n))
	}
	s := p.b[p.i : p.i+n]
	p.i += n
	return s, nil
}

// fieldPath names the fields some rules apply to ("info", "info.files",
// "info.pieces"); every other field is "-".
func fieldPath(parent string, key []byte) string {
	switch {
	case parent == "" && string(key) == "info":
		return "info"
	case parent == "info" && string(key) == "files":
		return "info.files"
	case parent == "info" && string(key) == "pieces":
		return "info.pieces"
	}
	return "-"
}
