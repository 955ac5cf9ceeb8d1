package extent

import (
	"crypto/sha1"
	"ezio/engine/torrentfile"
	"hash"
	"slices"
	"sync"

	"github.com/anacrolix/torrent/metainfo"
)

// Hashing pieces as they are written.
//
// The library hashes a piece once all its chunks are written, by reading
// it back from the storage. A client on a fast link spent a good part of
// its CPU on that read-back (a second copy of every byte through the
// kernel). Instead, the storage feeds each chunk it writes into a SHA-1
// state kept for its piece, as long as the chunks come in order; when the
// library asks for the piece's hash (storage.SelfHashing), only what was
// not hashed on the way in is read back from the target.
//
//   - A chunk written in order (at the end of the hashed prefix) is hashed
//     from the buffer just written; then any chunks already written right
//     after it (they came early) are read back and hashed, so one early
//     chunk does not send the rest of the piece to the read-back.
//   - A chunk written beyond the prefix is remembered (offset and length
//     only: no data is kept) until the prefix reaches it.
//   - A write over bytes already hashed (the same chunk twice) spoils the
//     state: the piece is then hashed from the target in full, as before.
//   - MarkComplete and MarkNotComplete drop the state: a piece written
//     again after a failed check starts from nothing.
//
// Pieces held in memory. The library asks for a piece's chunks in a random
// order, so few chunks extend the prefix when they arrive. While the
// buffer budget allows (--cache-size: the memory meant for unverified
// pieces in flight), a piece's chunks are therefore copied into a buffer
// of the piece's size instead of being written one by one: an early chunk
// is hashed from there once the prefix reaches it, and at the check the
// whole piece goes to the target in one write (one pwrite per piece and
// extent instead of one per 16 KiB), before the sum is returned, so a
// piece is on the target before the library marks it complete. Anything
// that reads a held piece first writes it out. Past the budget, chunks are
// written through and early ones are read back as above.
//
// Memory: a SHA-1 state and at most one offset per chunk for each piece
// being written, which the unverified-bytes budget already bounds, plus
// the held buffers (at most the budget, reused).
//
// Smart ban. The library's own hashing also compares each block with what
// every peer sent for it (hashes of blocks it keeps), and bans a peer whose
// block differed once the piece passes; a self-hashed piece skips that. A
// lying peer that was the only contributor to a piece is still banned by
// the library on the failed check (that does not need the data). For the
// rest, a piece whose downloaded data failed its check is hashed by the
// library again (no SelfHash) until it passes: that passing check is the
// one that finds and bans the peer whose blocks differ, exactly as before.
type pieceHashes struct {
	l   *torrentfile.Layout
	io  IO
	aio chan struct{} // the storage's bound on disk operations in flight

	// wroteOut counts bytes written to the target; failed reports a failed
	// write (fatal to the job).
	wroteOut func(n int)
	failed   func(i int, err error)

	mu       sync.Mutex
	m        map[int]*pieceHash
	readBack map[int]bool // downloaded data failed: the library hashes (smart ban)
	budget   *Budget      // bytes of piece buffers allowed and in use, and the buffers

	// Counters for tests and profiles: bytes hashed from written buffers,
	// and bytes read back from the target to hash.
	fromWrites, fromTarget int64
}

type pieceHash struct {
	mu      sync.Mutex
	h       hash.Hash
	next    int64           // bytes [0, next) of the piece are hashed
	early   map[int64]int64 // written beyond next, not hashed yet: offset -> length
	spoiled bool            // bytes already hashed were written again
	// buf holds the piece until its check (nil: chunks are written
	// through); held lists the chunks in it (offset -> length).
	buf  []byte
	held map[int64]int64
}

func newPieceHashes(l *torrentfile.Layout, xio IO, aio chan struct{}) *pieceHashes {
	ph := &pieceHashes{l: l, io: xio, aio: aio, m: map[int]*pieceHash{}, readBack: map[int]bool{},
		wroteOut: func(int) {}, failed: func(int, error) {}}
	return ph
}

// selfHashing tells whether piece i's next check may use SelfHash.
func (ph *pieceHashes) selfHashing(i int) bool {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	return !ph.readBack[i]
}

// state returns piece i's state, creating it; nil while the library hashes
// the piece itself.
func (ph *pieceHashes) state(i int) *pieceHash {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	if ph.readBack[i] {
		return nil
	}
	st := ph.m[i]
	if st == nil {
		st = &pieceHash{h: sha1.New()}
		if _, n := ph.l.PieceSpan(i); ph.budget.take(n) {
			st.buf = ph.budget.buf(n, ph.l.PieceLength)
			st.held = map[int64]int64{}
		}
		ph.m[i] = st
	}
	return st
}

// hold takes b, to be written at offset off of piece i, into the piece's
// buffer. It returns false if the piece is not held: the caller writes b
// to the target and then calls wrote.
func (ph *pieceHashes) hold(i int, off int64, b []byte) bool {
	st := ph.state(i)
	if st == nil {
		return false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.buf == nil {
		return false
	}
	n := int64(len(b))
	copy(st.buf[off:], b)
	st.held[off] = n
	switch {
	case st.spoiled:
	case off < st.next:
		st.spoil()
	case off > st.next:
		if old, ok := st.early[off]; ok && old != n {
			st.spoil()
			return true
		}
		if st.early == nil {
			st.early = map[int64]int64{}
		}
		st.early[off] = n
	default:
		start := st.next
		st.h.Write(st.buf[off : off+n])
		st.next += n
		for {
			k, ok := st.early[st.next]
			if !ok {
				break
			}
			delete(st.early, st.next)
			st.h.Write(st.buf[st.next : st.next+k])
			st.next += k
		}
		ph.addFromWrites(st.next - start)
	}
	return true
}

// writeHeld writes a held piece's chunks to the target and returns
// whether they covered the whole piece; the caller then releases the
// buffer. Called with st.mu held.
func (ph *pieceHashes) writeHeld(i int, st *pieceHash) (whole bool, err error) {
	off, n := ph.l.PieceSpan(i)
	offs := make([]int64, 0, len(st.held))
	for o := range st.held {
		offs = append(offs, o)
	}
	slices.Sort(offs)
	// Contiguous runs, each written at once (the whole piece, usually).
	var end int64
	whole = true
	for k := 0; k < len(offs) && err == nil; {
		start := offs[k]
		if start > end {
			whole = false
		}
		stop := start + st.held[start]
		for k++; k < len(offs) && offs[k] <= stop; k++ {
			stop = max(stop, offs[k]+st.held[offs[k]])
		}
		ph.aio <- struct{}{}
		var w int
		w, err = writeRange(ph.l, ph.io, st.buf[start:stop], off+start)
		<-ph.aio
		ph.wroteOut(w)
		end = max(end, stop)
	}
	if end < n {
		whole = false
	}
	if err != nil {
		ph.failed(i, err)
	}
	return whole, err
}

// release returns a held piece's buffer. Called with st.mu held.
func (ph *pieceHashes) release(st *pieceHash) {
	if st.buf == nil {
		return
	}
	n := int64(len(st.buf))
	b := st.buf
	st.buf, st.held = nil, nil
	ph.budget.give(n)
	ph.budget.keep(b)
}

// releaseAll gives back the buffers of pieces still held (never checked)
// when the storage closes, so the session's other deploys may use them.
func (ph *pieceHashes) releaseAll() {
	ph.mu.Lock()
	sts := make([]*pieceHash, 0, len(ph.m))
	for _, st := range ph.m {
		sts = append(sts, st)
	}
	ph.m = map[int]*pieceHash{}
	ph.mu.Unlock()
	for _, st := range sts {
		st.mu.Lock()
		ph.release(st)
		st.mu.Unlock()
	}
}

// writeOut writes piece i to the target if it is held, before anything
// reads it there.
func (ph *pieceHashes) writeOut(i int) error {
	ph.mu.Lock()
	st := ph.m[i]
	ph.mu.Unlock()
	if st == nil {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.buf == nil {
		return nil
	}
	// Early chunks not hashed yet are now on the target, where catchUp
	// and sum find them.
	_, err := ph.writeHeld(i, st)
	ph.release(st)
	if err != nil {
		st.spoil()
	}
	return err
}

// wrote is called after b was written, in full, at offset off of piece i.
func (ph *pieceHashes) wrote(i int, off int64, b []byte) {
	st := ph.state(i)
	if st == nil {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	n := int64(len(b))
	switch {
	case st.buf != nil:
		// Held piece (a state made after this write began): the chunk is
		// on the target only; sum, seeing it missing from the buffer,
		// hashes the target.
	case st.spoiled:
	case off < st.next:
		st.spoil()
	case off > st.next:
		if st.early == nil {
			st.early = map[int64]int64{}
		}
		if old, ok := st.early[off]; ok && old != n {
			st.spoil()
			return
		}
		st.early[off] = n
	default:
		st.h.Write(b)
		st.next += n
		ph.addFromWrites(n)
		ph.catchUp(i, st)
	}
}

func (st *pieceHash) spoil() {
	st.spoiled = true
	st.early = nil
}

// catchUp hashes the chunks that were written early and now follow the
// prefix, reading each contiguous run back at once. Called with st.mu held.
func (ph *pieceHashes) catchUp(i int, st *pieceHash) {
	for len(st.early) > 0 {
		start := st.next
		end := start
		for {
			k, ok := st.early[end]
			if !ok {
				break
			}
			delete(st.early, end)
			end += k
		}
		if end == start {
			return
		}
		if err := ph.hashFromTarget(i, st, end); err != nil {
			// Left to SelfHash, which reads from st.next again.
			st.spoil()
			return
		}
	}
}

// hashFromTarget reads piece i's bytes [st.next, end) back from the
// target into st.h.
func (ph *pieceHashes) hashFromTarget(i int, st *pieceHash, end int64) error {
	off, _ := ph.l.PieceSpan(i)
	bp := hashBuf.Get().(*[]byte)
	defer hashBuf.Put(bp)
	for st.next < end {
		b := (*bp)[:min(int64(len(*bp)), end-st.next)]
		ph.aio <- struct{}{}
		k, err := ReadRange(ph.l, ph.io, b, off+st.next)
		<-ph.aio
		if err != nil {
			return err
		}
		st.h.Write(b[:k])
		st.next += int64(k)
		ph.addFromTarget(int64(k))
	}
	return nil
}

func (ph *pieceHashes) addFromWrites(n int64) {
	ph.mu.Lock()
	ph.fromWrites += n
	ph.mu.Unlock()
}

func (ph *pieceHashes) addFromTarget(n int64) {
	ph.mu.Lock()
	ph.fromTarget += n
	ph.mu.Unlock()
}

// counts returns the bytes hashed from written buffers and read back.
func (ph *pieceHashes) counts() (fromWrites, fromTarget int64) {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	return ph.fromWrites, ph.fromTarget
}

// sum returns piece i's SHA-1: what was hashed as it was written, plus the
// rest read back from the target. The library calls it once no write to
// the piece is in flight.
func (ph *pieceHashes) sum(i int) (metainfo.Hash, error) {
	ph.mu.Lock()
	st := ph.m[i]
	ph.mu.Unlock()
	if st == nil {
		// Nothing written in this run (a resume or --recheck check):
		// hash what the target holds.
		st = &pieceHash{h: sha1.New()}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	_, n := ph.l.PieceSpan(i)
	var out metainfo.Hash
	if st.buf != nil {
		whole, err := ph.writeHeld(i, st)
		if err != nil {
			ph.release(st)
			st.spoil()
			return out, err
		}
		if whole {
			if st.spoiled {
				st.h.Reset()
				st.next = 0
				st.spoiled = false
			}
			st.h.Write(st.buf[st.next:n])
			ph.addFromWrites(n - st.next)
			ph.release(st)
			st.next, st.early = n, nil
			copy(out[:], st.h.Sum(nil))
			return out, nil
		}
		// Not all of it came through this buffer: the target says.
		ph.release(st)
		st.spoil()
	}
	if st.spoiled {
		st.h.Reset()
		st.next = 0
		st.spoiled = false
	}
	st.early = nil
	if err := ph.hashFromTarget(i, st, n); err != nil {
		// Start over next time: part of the state may be missing.
		st.spoil()
		return out, err
	}
	copy(out[:], st.h.Sum(nil))
	return out, nil
}

// done forgets piece i's state once its check is over. failed says the
// check failed; if the piece had been written in this run, the data came
// from peers, and the next check of it is left to the library (smart ban).
func (ph *pieceHashes) done(i int, failed bool) {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	st, written := ph.m[i]
	delete(ph.m, i)
	if st != nil {
		ph.mu.Unlock()
		st.mu.Lock()
		ph.release(st)
		st.mu.Unlock()
		ph.mu.Lock()
	}
	switch {
	case !failed:
		delete(ph.readBack, i)
	case written:
		ph.readBack[i] = true
	}
}

// spoilPiece makes piece i's next check hash the target in full (after a
// failed write, for one).
func (ph *pieceHashes) spoilPiece(i int) {
	if st := ph.state(i); st != nil {
		st.mu.Lock()
		st.spoil()
		st.mu.Unlock()
	}
}
