package engine

import (
	"crypto/sha1"
	"hash"
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
// Memory: a SHA-1 state and at most one offset per chunk for each piece
// being written, which the unverified-bytes budget already bounds.
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
	l   *Layout
	io  extentIO
	aio chan struct{} // the storage's bound on disk operations in flight

	mu       sync.Mutex
	m        map[int]*pieceHash
	readBack map[int]bool // downloaded data failed: the library hashes (smart ban)

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
}

func newPieceHashes(l *Layout, xio extentIO, aio chan struct{}) *pieceHashes {
	return &pieceHashes{l: l, io: xio, aio: aio, m: map[int]*pieceHash{}, readBack: map[int]bool{}}
}

// hashBuf is the buffer for reading back what was not hashed on the way in.
var hashBuf = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

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
		ph.m[i] = st
	}
	return st
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
		k, err := readRange(ph.l, ph.io, b, off+st.next)
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
	if st.spoiled {
		st.h.Reset()
		st.next = 0
		st.spoiled = false
	}
	st.early = nil
	_, n := ph.l.PieceSpan(i)
	var out metainfo.Hash
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
	_, written := ph.m[i]
	delete(ph.m, i)
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
