package extent

import (
	"bytes"
	"crypto/sha1"
	"ezio/engine/torrentfile"
	"fmt"
	"log/slog"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
)

// BadPiece is a piece whose data on a source does not match the torrent.
type BadPiece struct {
	Index  int    `json:"index"`
	Offset int64  `json:"offset"`         // disk offset of the piece's first byte
	File   string `json:"file,omitempty"` // extent file holding that byte
	Reason string `json:"reason,omitempty"`
}

// String describes a bad piece for people.
func (b BadPiece) String() string {
	s := fmt.Sprintf("piece %d at disk offset %d", b.Index, b.Offset)
	if b.File != "" {
		s += " (extent file " + b.File + ")"
	}
	return s
}

// BadPieceError is what a read of a bad piece returns on a seeder, so the
// library rejects the request instead of sending the data.
type BadPieceError struct{ BadPiece }

func (e *BadPieceError) Error() string {
	s := fmt.Sprintf("piece %d at disk offset %d", e.Index, e.Offset)
	if e.File != "" {
		s += " (extent file " + e.File + ")"
	}
	return s + " does not match the torrent: " + e.Reason
}

// ServeUncheckedForTest makes seeders created while it is set serve their
// source unchecked: tests use it to build a lying peer.
var ServeUncheckedForTest atomic.Bool

// serveCheck hashes each piece of a seeder's source the first time it is
// read for serving and remembers the verdict (one byte per piece). The
// read that finds a piece bad and every later one return a BadPieceError.
// At most NumCPU pieces are hashed at once, each with one piece of memory.
type serveCheck struct {
	l      *torrentfile.Layout
	io     IO
	hashes atomic.Pointer[[]byte]

	mu       sync.Mutex
	verdict  []uint8 // 0 unknown, 1 good, 2 bad
	inflight map[int]chan struct{}
	bad      map[int]BadPiece
	sem      chan struct{}
	log      *atomic.Pointer[slog.Logger] // the storage's

	// The last pieces checked stay in memory for the reads that follow
	// (a peer asks for a piece's chunks right after the check): each
	// chunk is then a copy instead of a pread.
	keepMu  sync.Mutex
	kept    map[int]*keptPiece
	order   []int // kept pieces, oldest first
	keepMax int   // pieces kept at most (0: none)
	bufs    sync.Pool
}

type keptPiece struct {
	buf  []byte
	refs int  // readers copying from buf
	gone bool // evicted while read: the last reader recycles buf
}

const (
	verdictUnknown uint8 = iota
	verdictGood
	verdictBad
)

func newServeCheck(l *torrentfile.Layout, xio IO, log *atomic.Pointer[slog.Logger]) *serveCheck {
	c := &serveCheck{
		l: l, io: xio, log: log, verdict: make([]uint8, l.NumPieces),
		inflight: map[int]chan struct{}{}, bad: map[int]BadPiece{},
		sem:  make(chan struct{}, max(1, runtime.NumCPU())),
		kept: map[int]*keptPiece{},
	}
	c.bufs.New = func() any { b := make([]byte, l.PieceLength); return &b }
	return c
}

// setKeep sets how many bytes of checked pieces stay in memory (at least
// one piece, at most 32).
func (c *serveCheck) setKeep(n int64) {
	c.keepMu.Lock()
	c.keepMax = max(1, min(int(n/c.l.PieceLength), 32))
	c.keepMu.Unlock()
}

// keep holds piece i's checked data; the oldest kept pieces go.
func (c *serveCheck) keep(i int, buf []byte) {
	c.keepMu.Lock()
	defer c.keepMu.Unlock()
	if c.keepMax == 0 || c.kept[i] != nil {
		c.recycle(buf)
		return
	}
	c.kept[i] = &keptPiece{buf: buf}
	c.order = append(c.order, i)
	for len(c.order) > c.keepMax {
		old := c.order[0]
		c.order = c.order[1:]
		e := c.kept[old]
		delete(c.kept, old)
		if e.refs > 0 {
			e.gone = true
		} else {
			c.recycle(e.buf)
		}
	}
}

func (c *serveCheck) recycle(buf []byte) {
	b := buf[:cap(buf)]
	c.bufs.Put(&b)
}

// read copies piece i's bytes at off into b if the piece is kept.
func (c *serveCheck) read(i int, b []byte, off int64) bool {
	c.keepMu.Lock()
	e := c.kept[i]
	if e == nil || off+int64(len(b)) > int64(len(e.buf)) {
		c.keepMu.Unlock()
		return false
	}
	e.refs++
	c.keepMu.Unlock()
	copy(b, e.buf[off:])
	c.keepMu.Lock()
	e.refs--
	if e.gone && e.refs == 0 {
		c.recycle(e.buf)
	}
	c.keepMu.Unlock()
	return true
}

func (c *serveCheck) setHashes(p []byte) {
	if len(p) == 20*c.l.NumPieces {
		c.hashes.Store(&p)
	}
}

// check returns nil if piece i matches its hash.
func (c *serveCheck) check(i int) error {
	hp := c.hashes.Load()
	if hp == nil {
		return nil // no hashes known: nothing to check against
	}
	for {
		c.mu.Lock()
		switch c.verdict[i] {
		case verdictGood:
			c.mu.Unlock()
			return nil
		case verdictBad:
			bp := c.bad[i]
			c.mu.Unlock()
			return &BadPieceError{bp}
		}
		if ch, ok := c.inflight[i]; ok {
			c.mu.Unlock()
			<-ch
			continue
		}
		ch := make(chan struct{})
		c.inflight[i] = ch
		c.mu.Unlock()

		v, reason := c.hash(i, (*hp)[i*20:i*20+20])
		c.mu.Lock()
		c.verdict[i] = v
		delete(c.inflight, i)
		if v == verdictBad {
			off, file := c.l.PieceWhere(i)
			c.bad[i] = BadPiece{Index: i, Offset: off, File: file, Reason: reason}
		}
		c.mu.Unlock()
		close(ch)
		if v == verdictBad {
			if lg := c.log.Load(); lg != nil {
				bp := c.bad[i]
				lg.Error("a piece on the source does not match the torrent; it is not served", "piece", i, "offset", bp.Offset, "file", bp.File, "reason", reason)
			}
		}
	}
}

func (c *serveCheck) hash(i int, want []byte) (uint8, string) {
	c.sem <- struct{}{}
	defer func() { <-c.sem }()
	off, n := c.l.PieceSpan(i)
	buf := (*c.bufs.Get().(*[]byte))[:n]
	if _, err := ReadRange(c.l, c.io, buf, off); err != nil {
		c.recycle(buf)
		return verdictBad, "unreadable: " + err.Error()
	}
	sum := sha1.Sum(buf)
	if !bytes.Equal(sum[:], want) {
		c.recycle(buf)
		return verdictBad, "SHA-1 mismatch"
	}
	c.keep(i, buf)
	return verdictGood, ""
}

func (c *serveCheck) badPieces() []BadPiece {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]BadPiece, 0, len(c.bad))
	for _, b := range c.bad {
		out = append(out, b)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Index < out[b].Index })
	return out
}

// badDataSeen counts a hash failure of downloaded data for piece i and
// returns how many there have been.
func (b *completionBook) badDataSeen(i int) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.badData == nil {
		b.badData = map[int]int{}
	}
	b.badData[i]++
	return b.badData[i]
}
