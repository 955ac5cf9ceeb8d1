package extent

// The memory a client's pieces in flight may hold, shared by a session's
// deploys.

import (
	"sync"
)

// Budget bounds the bytes of pieces held in memory; a session's
// deploy jobs share one, and its buffers: a buffer given back is kept for
// the next piece of any job (of the same piece length) as long as the
// buffers in use and kept stay within the limit, so the session never has
// more than limit bytes of piece buffers, whatever its number of jobs.
type Budget struct {
	mu          sync.Mutex
	limit, used int64
	free        [][]byte // kept for reuse, each at full capacity
	freeBytes   int64
}

// NewBudget is a budget of limit bytes.
func NewBudget(limit int64) *Budget { return &Budget{limit: limit} }

func (b *Budget) take(n int64) bool {
	if b == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.limit {
		return false
	}
	b.used += n
	return true
}

func (b *Budget) give(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

// buf returns a buffer of length n and capacity size (a piece length),
// reused when one is kept; the caller has taken n.
func (b *Budget) buf(n, size int64) []byte {
	b.mu.Lock()
	for k, f := range b.free {
		if int64(cap(f)) == size {
			b.free[k] = b.free[len(b.free)-1]
			b.free = b.free[:len(b.free)-1]
			b.freeBytes -= size
			b.mu.Unlock()
			return f[:n]
		}
	}
	// None of this size: drop kept buffers of other sizes that would
	// take the new one over the limit (the collector gets them).
	for len(b.free) > 0 && b.used+b.freeBytes+size > b.limit+n {
		last := b.free[len(b.free)-1]
		b.free = b.free[:len(b.free)-1]
		b.freeBytes -= int64(cap(last))
	}
	b.mu.Unlock()
	return make([]byte, n, size)
}

// keep takes a buffer back for reuse if the buffers in use and kept stay
// within the limit.
func (b *Budget) keep(buf []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c := int64(cap(buf)); b.used+b.freeBytes+c <= b.limit {
		b.free = append(b.free, buf[:cap(buf)])
		b.freeBytes += c
	}
}

func (b *Budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// setBudget sets how many bytes of pieces may be held in memory (a
// budget of its own; useBudget shares one).
func (ph *pieceHashes) setBudget(n int64) { ph.useBudget(&Budget{limit: n}) }

func (ph *pieceHashes) useBudget(b *Budget) {
	ph.mu.Lock()
	ph.budget = b
	ph.mu.Unlock()
}

// hashBuf is the buffer for reading back what was not hashed on the way in.
var hashBuf = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}
