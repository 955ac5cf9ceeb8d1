package extent

// The storage's hashing of pieces as they are written (piecehash.go):
// whatever the order and concurrency of the writes, SelfHash must equal
// the SHA-1 of what the target holds, and a piece whose downloaded data
// failed goes back to the library's read-back (smart ban).

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"ezio/engine/torrentfile"
	"io"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"

	g "github.com/anacrolix/generics"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"
	"golang.org/x/sys/unix"
)

const phChunk = 16 << 10

// Each test runs with pieces written through (no buffer budget) and with
// pieces held in memory until their check.
var phModes = []struct {
	name   string
	budget int64
}{{"through", 0}, {"held", 64 << 20}}

func forModes(t *testing.T, f func(t *testing.T, held bool, s *Storage, ti storage.TorrentImpl, info *metainfo.Info, data []byte)) {
	for _, m := range phModes {
		t.Run(m.name, func(t *testing.T) {
			s, ti, info, data := phSetup(t, m.budget)
			f(t, m.budget > 0, s, ti, info, data)
		})
	}
}

// phSetup makes a client storage on a real image file: two extents with a
// gap between them, 64 KiB pieces (the last one short, one piece across
// the gap), and returns it with the torrent's data and info.
func phSetup(t *testing.T, budget int64) (*Storage, storage.TorrentImpl, *metainfo.Info, []byte) {
	t.Helper()
	const pl = 64 << 10
	lens := []int64{3*pl + 20<<10, 2*pl + 8<<10} // 5 full pieces and 28 KiB
	var total int64
	for _, n := range lens {
		total += n
	}
	data := make([]byte, total)
	rng := rand.New(rand.NewPCG(7, 7))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	info := &metainfo.Info{Name: "sda1", PieceLength: pl, Files: []metainfo.FileInfo{
		{Path: []string{torrentfile.FormatOffset(4096)}, Length: lens[0]},
		{Path: []string{torrentfile.FormatOffset(1 << 20)}, Length: lens[1]},
	}}
	for off := int64(0); off < total; off += pl {
		s := sha1.Sum(data[off:min(off+pl, total)])
		info.Pieces = append(info.Pieces, s[:]...)
	}
	l, err := torrentfile.NewLayout(info)
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "target.img")
	xio, _, err := Open(target, l, true)
	if err != nil {
		t.Fatal(err)
	}
	s := New(l, xio, false, nil, false, 4)
	s.hashes.setBudget(budget)
	t.Cleanup(func() { s.Close() })
	ti, err := s.OpenTorrent(context.Background(), info, testIH)
	if err != nil {
		t.Fatal(err)
	}
	return s, ti, info, data
}

// libPiece is what the library gets for piece i.
func libPiece(ti storage.TorrentImpl, info *metainfo.Info, i int) storage.PieceImpl {
	return ti.PieceWithHash(info.Piece(i), g.Some(info.Pieces[i*20:i*20+20]))
}

// chunks lists piece i's chunk offsets (within the piece) and lengths.
func chunks(info *metainfo.Info, i int) (offs []int64, lens []int64) {
	n := info.Piece(i).Length()
	for off := int64(0); off < n; off += phChunk {
		offs = append(offs, off)
		lens = append(lens, min(phChunk, n-off))
	}
	return
}

func writeChunk(t *testing.T, p storage.PieceImpl, b []byte, off int64) {
	t.Helper()
	if n, err := p.WriteAt(b, off); err != nil || n != len(b) {
		t.Fatalf("WriteAt(%d bytes at %d) = %d, %v", len(b), off, n, err)
	}
}

// selfHash checks that the library would self-hash piece i and returns
// the sum.
func selfHash(t *testing.T, ti storage.TorrentImpl, info *metainfo.Info, i int) metainfo.Hash {
	t.Helper()
	sh, ok := libPiece(ti, info, i).(storage.SelfHashing)
	if !ok {
		t.Fatalf("piece %d: the library gets no SelfHashing piece", i)
	}
	sum, err := sh.SelfHash()
	if err != nil {
		t.Fatalf("piece %d: SelfHash: %v", i, err)
	}
	return sum
}

// onTarget is the SHA-1 of piece i as the target holds it.
func onTarget(t *testing.T, s *Storage, i int) metainfo.Hash {
	t.Helper()
	off, n := s.l.PieceSpan(i)
	b := make([]byte, n)
	if _, err := ReadRange(s.l, s.io, b, off); err != nil {
		t.Fatal(err)
	}
	return sha1.Sum(b)
}

func wantHash(info *metainfo.Info, i int) metainfo.Hash {
	var h metainfo.Hash
	copy(h[:], info.Pieces[i*20:])
	return h
}

func TestPieceHashInOrderNeedsNoReadBack(t *testing.T) {
	forModes(t, func(t *testing.T, held bool, s *Storage, ti storage.TorrentImpl, info *metainfo.Info, data []byte) {
		var total int64
		for i := range info.NumPieces() {
			p := libPiece(ti, info, i)
			base := info.Piece(i).Offset()
			offs, lens := chunks(info, i)
			for k := range offs {
				writeChunk(t, p, data[base+offs[k]:base+offs[k]+lens[k]], offs[k])
			}
			if got := selfHash(t, ti, info, i); got != wantHash(info, i) {
				t.Fatalf("piece %d: SelfHash %x, want %x", i, got, wantHash(info, i))
			}
			p.MarkComplete()
			total += info.Piece(i).Length()
		}
		w, r := s.hashes.counts()
		if w != total || r != 0 {
			t.Errorf("hashed %d bytes from writes and read back %d; want %d and 0", w, r, total)
		}
		if len(s.hashes.m) != 0 {
			t.Errorf("%d piece states left after every piece completed", len(s.hashes.m))
		}
	})
}

func TestPieceHashOutOfOrder(t *testing.T) {
	forModes(t, func(t *testing.T, held bool, s *Storage, ti storage.TorrentImpl, info *metainfo.Info, data []byte) {
		i := 1
		base := info.Piece(i).Offset()
		offs, lens := chunks(info, i)
		put := func(k int) {
			writeChunk(t, libPiece(ti, info, i), data[base+offs[k]:base+offs[k]+lens[k]], offs[k])
		}
		// 1, 2, 3 come early; 0 completes the prefix and they are read back
		// and hashed at once.
		put(1)
		put(2)
		put(3)
		if w, r := s.hashes.counts(); w != 0 || r != 0 {
			t.Fatalf("early chunks were hashed (%d from writes, %d read back)", w, r)
		}
		put(0)
		// Held: the early chunks are hashed from the buffer; written
		// through: they are read back from the target.
		wantW, wantR := int64(phChunk), int64(3*phChunk)
		if held {
			wantW, wantR = 4*phChunk, 0
		}
		if w, r := s.hashes.counts(); w != wantW || r != wantR {
			t.Fatalf("after the first chunk: %d hashed from writes, %d read back; want %d and %d", w, r, wantW, wantR)
		}
		if got := selfHash(t, ti, info, i); got != wantHash(info, i) {
			t.Fatalf("SelfHash %x, want %x", got, wantHash(info, i))
		}
		libPiece(ti, info, i).MarkComplete()

		// Every other piece in a random order, including the short last one
		// and the one across the gap.
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range info.NumPieces() {
			if i == 1 {
				continue
			}
			base := info.Piece(i).Offset()
			offs, lens := chunks(info, i)
			for _, k := range rng.Perm(len(offs)) {
				writeChunk(t, libPiece(ti, info, i), data[base+offs[k]:base+offs[k]+lens[k]], offs[k])
			}
			if got := selfHash(t, ti, info, i); got != wantHash(info, i) {
				t.Fatalf("piece %d: SelfHash %x, want %x", i, got, wantHash(info, i))
			}
			libPiece(ti, info, i).MarkComplete()
		}
	})
}

func TestPieceHashRewriteAfterFailure(t *testing.T) {
	forModes(t, func(t *testing.T, held bool, s *Storage, ti storage.TorrentImpl, info *metainfo.Info, data []byte) {
		i := 2
		base := info.Piece(i).Offset()
		offs, lens := chunks(info, i)
		good := func(k int) []byte { return data[base+offs[k] : base+offs[k]+lens[k]] }

		// A peer sends a bad chunk among good ones: the check fails.
		for k := range offs {
			b := good(k)
			if k == 2 {
				b = bytes.Repeat([]byte{0xAA}, len(b))
			}
			writeChunk(t, libPiece(ti, info, i), b, offs[k])
		}
		if got := selfHash(t, ti, info, i); got == wantHash(info, i) {
			t.Fatal("a piece with a bad chunk passed")
		}
		libPiece(ti, info, i).MarkNotComplete()

		// Downloaded data failed: the next check is the library's own
		// read-back (its smart ban compares each peer's blocks there).
		p := libPiece(ti, info, i)
		if _, ok := p.(storage.SelfHashing); ok {
			t.Fatal("a piece whose downloaded data failed is still self-hashed: the liar would never be found")
		}
		wt, ok := p.(io.WriterTo)
		if !ok {
			t.Fatal("the piece offers no WriterTo for the library's read-back")
		}
		for k := range offs {
			writeChunk(t, libPiece(ti, info, i), good(k), offs[k])
		}
		h := sha1.New()
		if _, err := wt.WriteTo(h); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(h.Sum(nil), wantHash(info, i).Bytes()) {
			t.Fatalf("read-back after the rewrite: %x, want %x", h.Sum(nil), wantHash(info, i))
		}
		libPiece(ti, info, i).MarkComplete()
		if _, ok := libPiece(ti, info, i).(storage.SelfHashing); !ok {
			t.Fatal("a piece that passed is not self-hashed again")
		}

		// A piece that fails its check from the target alone (a resume
		// record's claim, nothing downloaded) stays self-hashed: no peer to
		// blame, so no read-back is needed for the ban.
		j := 3
		if got := selfHash(t, ti, info, j); got == wantHash(info, j) {
			t.Fatal("a piece never written passed its check")
		}
		libPiece(ti, info, j).MarkNotComplete()
		if _, ok := libPiece(ti, info, j).(storage.SelfHashing); !ok {
			t.Fatal("a failed check of the target alone turned self-hashing off")
		}

		// The same chunk written twice (after being hashed): the state is
		// spoiled and the sum comes from the target, right either way.
		j = 4
		base = info.Piece(j).Offset()
		offs, lens = chunks(info, j)
		for k := range offs {
			writeChunk(t, libPiece(ti, info, j), bytes.Repeat([]byte{1}, int(lens[k])), offs[k])
		}
		for k := range offs {
			writeChunk(t, libPiece(ti, info, j), data[base+offs[k]:base+offs[k]+lens[k]], offs[k])
		}
		if st := s.hashes.m[j]; st == nil || !st.spoiled {
			t.Fatal("chunks written twice did not spoil the piece's state")
		}
		if got := selfHash(t, ti, info, j); got != wantHash(info, j) {
			t.Fatalf("rewritten piece: SelfHash %x, want %x", got, wantHash(info, j))
		}
	})
}

// Many writers at once, chunks of one piece in any order, some chunks
// written twice with different data by racing writers: SelfHash always
// equals the SHA-1 of what the target ends up holding.
func TestPieceHashConcurrentWrites(t *testing.T) {
	forModes(t, func(t *testing.T, held bool, s *Storage, ti storage.TorrentImpl, info *metainfo.Info, data []byte) {
		for round := range 20 {
			i := round % info.NumPieces()
			base := info.Piece(i).Offset()
			offs, lens := chunks(info, i)
			rng := rand.New(rand.NewPCG(uint64(round), 9))
			dup := round%2 == 1 // odd rounds: two racing writers per chunk
			var wg sync.WaitGroup
			errs := make(chan error, 2*len(offs))
			for _, k := range rng.Perm(len(offs)) {
				good := data[base+offs[k] : base+offs[k]+lens[k]]
				writers := [][]byte{good}
				if dup {
					writers = append(writers, bytes.Repeat([]byte{byte(round)}, len(good)))
				}
				for _, b := range writers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if _, err := libPiece(ti, info, i).WriteAt(b, offs[k]); err != nil {
							errs <- err
						}
					}()
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			got, want := selfHash(t, ti, info, i), onTarget(t, s, i)
			if got != want {
				t.Fatalf("round %d, piece %d: SelfHash %x, target holds %x", round, i, got, want)
			}
			if !dup && got != wantHash(info, i) {
				t.Fatalf("round %d, piece %d: good data hashed to %x, want %x", round, i, got, wantHash(info, i))
			}
			if got == wantHash(info, i) {
				libPiece(ti, info, i).MarkComplete()
			} else {
				libPiece(ti, info, i).MarkNotComplete()
				// Written again in order after the failure: right again.
				for k := range offs {
					writeChunk(t, libPiece(ti, info, i), data[base+offs[k]:base+offs[k]+lens[k]], offs[k])
				}
				p := libPiece(ti, info, i)
				h := sha1.New()
				p.(io.WriterTo).WriteTo(h)
				if !bytes.Equal(h.Sum(nil), wantHash(info, i).Bytes()) {
					t.Fatalf("round %d: rewrite after failure hashed %x", round, h.Sum(nil))
				}
				p.MarkComplete()
			}
		}
		if len(s.hashes.m) != 0 {
			t.Errorf("%d piece states left", len(s.hashes.m))
		}
	})
}

// countIO counts the reads and writes that reach the target or source.
type countIO struct {
	IO
	mu            sync.Mutex
	reads, writes int
}

func (c *countIO) readExtent(ext int, p []byte, within int64) (int, error) {
	c.mu.Lock()
	c.reads++
	c.mu.Unlock()
	return c.IO.readExtent(ext, p, within)
}

func (c *countIO) writeExtent(ext int, p []byte, within int64) (int, error) {
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
	return c.IO.writeExtent(ext, p, within)
}

// A held piece reaches the target in one write per extent, at its check
// and before SelfHash returns; a read of a held piece writes it out first;
// past the budget, pieces are written through.
func TestPieceHashHeldPiecesAreWrittenWhole(t *testing.T) {
	s, ti, info, data := phSetup(t, 64<<10) // room for one piece
	cio := &countIO{IO: s.io}
	s.io, s.hashes.io = cio, cio
	write := func(i int, perm []int) {
		base := info.Piece(i).Offset()
		offs, lens := chunks(info, i)
		for _, k := range perm {
			writeChunk(t, libPiece(ti, info, i), data[base+offs[k]:base+offs[k]+lens[k]], offs[k])
		}
	}
	rng := rand.New(rand.NewPCG(3, 3))
	write(0, rng.Perm(4))
	if cio.writes != 0 {
		t.Fatalf("a held piece reached the target chunk by chunk (%d writes)", cio.writes)
	}
	write(1, rng.Perm(4)) // over the budget: written through
	if cio.writes != 4 {
		t.Fatalf("a piece past the budget made %d writes, want 4 (one per chunk)", cio.writes)
	}
	if got := selfHash(t, ti, info, 0); got != wantHash(info, 0) || onTarget(t, s, 0) != got {
		t.Fatalf("held piece: SelfHash %x, target %x, want %x", got, onTarget(t, s, 0), wantHash(info, 0))
	}
	if cio.writes != 5 {
		t.Fatalf("the held piece was written in %d writes, want 1", cio.writes-4)
	}
	if got := selfHash(t, ti, info, 1); got != wantHash(info, 1) {
		t.Fatalf("written-through piece: SelfHash %x", got)
	}
	libPiece(ti, info, 0).MarkComplete()
	libPiece(ti, info, 1).MarkComplete()
	if u := s.hashes.budget.inUse(); u != 0 {
		t.Fatalf("%d bytes of buffers still counted as used", u)
	}
	// Piece 3 lies across the gap between the extents: two writes.
	write(3, []int{3, 2, 1, 0})
	// Reading a held piece (a peer asks before it is checked) writes it
	// out first: the read sees the data.
	got := make([]byte, 100)
	if _, err := libPiece(ti, info, 3).ReadAt(got, 1000); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data[info.Piece(3).Offset()+1000:][:100]) {
		t.Fatal("a read of a held piece did not see its data")
	}
	if cio.writes != 7 {
		t.Fatalf("piece across two extents written in %d writes, want 2", cio.writes-5)
	}
	if got := selfHash(t, ti, info, 3); got != wantHash(info, 3) {
		t.Fatalf("piece written out early: SelfHash %x", got)
	}
	// A piece still held when the storage closes gives its budget back
	// (the session's other deploys share it).
	write(4, []int{1, 0})
	if s.hashes.budget.inUse() == 0 {
		t.Fatal("piece 4 is not held")
	}
	s.Close()
	if u := s.hashes.budget.inUse(); u != 0 {
		t.Fatalf("%d bytes of the budget still in use after Close", u)
	}
}

// A held piece's write fails at its check: SelfHash returns the error
// (the library then blames no peer) and the job fails, as a failed write
// of a chunk does.
func TestPieceHashHeldWriteErrorIsFatal(t *testing.T) {
	l := testLayout(t, 4)
	fio := &fakeIO{writeErr: &DiskError{Op: "writing", Path: "/dev/x", Offset: 4096, Err: unix.ENOSPC}}
	s := New(l, fio, false, nil, false, 2)
	defer s.Close()
	s.hashes.setBudget(1 << 20)
	info := &metainfo.Info{PieceLength: l.PieceLength, Pieces: make([]byte, 20*4),
		Files: []metainfo.FileInfo{{Path: []string{torrentfile.FormatOffset(4096)}, Length: 4 * l.PieceLength}}}
	ti, _ := s.OpenTorrent(context.Background(), info, testIH)
	p := libPiece(ti, info, 0)
	if _, err := p.WriteAt(make([]byte, l.PieceLength), 0); err != nil {
		t.Fatalf("a held chunk's write failed at once: %v", err)
	}
	if _, err := p.(storage.SelfHashing).SelfHash(); !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("SelfHash of a piece that could not be written: %v, want ENOSPC", err)
	}
	select {
	case err := <-s.Err():
		if !errors.Is(err, unix.ENOSPC) {
			t.Fatalf("fatal error %v", err)
		}
	default:
		t.Fatal("a failed write of a held piece was not fatal")
	}
}

// A seeder serves the chunks of a piece it has just checked from memory,
// keeps at most its budget of pieces, and serves the right bytes while
// pieces come and go under concurrent readers.
func TestSeederKeepsCheckedPieces(t *testing.T) {
	im := makeImage(t, 1<<20, 3, 64<<10, 12)
	_, l, err := torrentfile.Summarize(im.mi)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := im.mi.UnmarshalInfo()
	xio, _, err := Open(im.dir, l, false)
	if err != nil {
		t.Fatal(err)
	}
	cr := &countIO{IO: xio}
	s := New(l, cr, true, nil, false, 4)
	defer s.Close()
	s.serve.io = cr
	s.serve.setKeep(2 * l.PieceLength)
	s.OpenTorrent(context.Background(), &info, im.mi.HashInfoBytes())
	whole := bytes.Join(im.data, nil) // extents in order: the torrent's bytes
	chunk := make([]byte, phChunk)
	readAll := func(i int) {
		_, n := l.PieceSpan(i)
		for off := int64(0); off < n; off += phChunk {
			b := chunk[:min(phChunk, n-off)]
			if k, err := piece(s, i).ReadAt(b, off); err != nil || k != len(b) {
				t.Fatalf("piece %d at %d: %d, %v", i, off, k, err)
			}
			po, _ := l.PieceSpan(i)
			if !bytes.Equal(b, whole[po+off:po+off+int64(len(b))]) {
				t.Fatalf("piece %d at %d: wrong bytes served", i, off)
			}
		}
	}
	before := cr.reads
	readAll(0)
	// One read for the check (two at most: a piece may span two extents);
	// the chunks came from memory.
	if r := cr.reads - before; r > 2 {
		t.Fatalf("serving a checked piece took %d source reads, want the check's only", r)
	}
	readAll(1)
	readAll(2)
	if len(s.serve.kept) != 2 {
		t.Fatalf("%d pieces kept, budget 2", len(s.serve.kept))
	}
	// Piece 0 was let go: its chunks are read from the source again.
	before = cr.reads
	readAll(0)
	if cr.reads-before < 4 {
		t.Fatalf("an evicted piece was served from memory (%d reads)", cr.reads-before)
	}
	// Many readers while pieces are checked, kept and evicted (a fresh
	// seeder keeping one piece, so every check evicts).
	s = New(l, xio, true, nil, false, 4)
	defer s.Close()
	s.serve.setKeep(1)
	s.OpenTorrent(context.Background(), &info, im.mi.HashInfoBytes())
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := make([]byte, phChunk)
			for k := range 200 {
				i := (g + k) % l.NumPieces
				po, n := l.PieceSpan(i)
				off := int64(k%4) * phChunk % n
				b := b[:min(phChunk, n-off)]
				if _, err := piece(s, i).ReadAt(b, off); err != nil {
					t.Error(err)
					return
				}
				if !bytes.Equal(b, whole[po+off:po+off+int64(len(b))]) {
					t.Errorf("piece %d at %d: wrong bytes under concurrency", i, off)
					return
				}
			}
		}()
	}
	wg.Wait()
}
