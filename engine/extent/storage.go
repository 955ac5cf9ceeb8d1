package extent

import (
	"context"
	"ezio/engine/torrentfile"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	g "github.com/anacrolix/generics"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"
	"golang.org/x/time/rate"
)

// Storage is the raw-extent storage backend: pieces are read and
// written straight on the target through the Layout, nothing is copied.
// Data I/O goes through io (extentio.go); what is known of each piece and
// what the resume record may claim lives in book (resume.go); a seeder's
// check-before-serve in serve (servecheck.go).
type Storage struct {
	l      *torrentfile.Layout
	io     IO
	seeder bool // every piece is complete by definition

	book   *completionBook // client side
	hashes *pieceHashes    // client side: pieces hashed as they are written
	serve  *serveCheck     // seeder side: hash a piece before serving it

	flushMu      sync.Mutex // one flush (sync + record write) at a time
	bytesWritten atomic.Int64
	bytesRead    atomic.Int64
	pieceReads   []atomic.Int64 // bytes read per piece (uploads and hashing)
	stopFlush    chan struct{}
	flushDone    chan struct{}
	closeOnce    sync.Once
	closeErr     error
	log          atomic.Pointer[slog.Logger]
	// aio bounds the disk operations in flight (--aio-threads).
	aio chan struct{}
	// Rate caps (nil: none), shared by the session's jobs: uploads are
	// paced where pieces are read for serving, downloads where received
	// data is written, so the library never sees a limiter.
	upLim, downLim *rate.Limiter
	limCtx         context.Context
	limStop        context.CancelFunc

	// Fatal errors (a failed flush, a failed write): the first is kept,
	// sent on errc and handed to onFatal once it is set.
	fatalMu  sync.Mutex
	fatalErr error
	errc     chan error
	onFatal  func(error)
}

// New makes the storage of one torrent on xio: a seeder's (every piece
// complete, each checked before it is first served) or a client's, which
// trusts nothing of state (the resume record) until it is hashed again.
func New(l *torrentfile.Layout, xio IO, seeder bool, state *Resume, recheck bool, aioThreads int) *Storage {
	s := &Storage{
		aio: make(chan struct{}, max(1, aioThreads)),
		l:   l, io: xio, seeder: seeder,
		pieceReads: make([]atomic.Int64, l.NumPieces),
		stopFlush:  make(chan struct{}),
		flushDone:  make(chan struct{}),
		errc:       make(chan error, 1),
	}
	s.limCtx, s.limStop = context.WithCancel(context.Background())
	if seeder {
		if !ServeUncheckedForTest.Load() {
			s.serve = newServeCheck(l, xio, &s.log)
		}
		close(s.flushDone)
		return s
	}
	s.book = newCompletionBook(l.NumPieces, state, recheck)
	s.hashes = newPieceHashes(l, xio, s.aio)
	s.hashes.wroteOut = func(n int) { s.bytesWritten.Add(int64(n)) }
	s.hashes.failed = func(i int, err error) {
		s.fatal(fmt.Errorf("writing piece %d to the target: %w", i, err))
	}
	s.book.onSettled = func(rv, rf int) {
		if lg := s.log.Load(); lg != nil {
			lg.Info(fmt.Sprintf("re-verified the %d recorded pieces from the target: %d good, %d did not match and are fetched again", rv+rf, rv, rf),
				"pieces_reverified", rv, "pieces_refetched", rf)
		}
	}
	go s.flushLoop()
	return s
}

// SetLimits caps the bytes/s read for serving and written from peers.
func (s *Storage) SetLimits(up, down *rate.Limiter) {
	s.upLim, s.downLim = up, down
}

// pace waits until lim allows n more bytes. After Close it no longer
// waits: a read in flight must complete, never fail (the library cannot
// handle a failed read of a closing torrent).
func (s *Storage) pace(lim *rate.Limiter, n int) {
	if lim == nil || lim.Limit() == rate.Inf {
		return
	}
	for n > 0 {
		k := min(n, lim.Burst())
		if lim.WaitN(s.limCtx, k) != nil {
			return
		}
		n -= k
	}
}

// Attach connects the storage to its job: where to log, and what to call
// on a fatal error (see OnFatal).
func (s *Storage) Attach(log *slog.Logger, fail func(error)) {
	s.log.Store(log)
	s.OnFatal(fail)
}

// Err delivers the storage's first fatal error (a failed flush or write).
func (s *Storage) Err() <-chan error { return s.errc }

// OnFatal sets what to call with the first fatal error; if one already
// happened, f is called at once. Jobs pass their fail method.
func (s *Storage) OnFatal(f func(error)) {
	s.fatalMu.Lock()
	s.onFatal = f
	err := s.fatalErr
	s.fatalMu.Unlock()
	if err != nil && f != nil {
		f(err)
	}
}

func (s *Storage) fatal(err error) {
	s.fatalMu.Lock()
	if s.fatalErr != nil {
		s.fatalMu.Unlock()
		return
	}
	s.fatalErr = err
	f := s.onFatal
	s.fatalMu.Unlock()
	s.errc <- err
	if f != nil {
		f(err)
	}
}

// ResumeCounts tells how many pieces the resume record claimed that were
// hashed good from the target in this run, and how many failed and are
// fetched again.
func (s *Storage) ResumeCounts() (reverified, refetched int) {
	if s.book == nil {
		return 0, 0
	}
	return s.book.counts()
}

// DiskCheckFailed tells whether piece i's last hash failure was a check
// of data already on the target (a recorded piece or --recheck) rather
// than of downloaded data: not a peer's fault, and for --recheck not even
// news.
func (s *Storage) DiskCheckFailed(i int) bool {
	if s.book == nil {
		return false
	}
	s.book.mu.Lock()
	defer s.book.mu.Unlock()
	return s.book.diskMiss[i]
}

// BadPieces lists the pieces a seeder found bad on its source.
func (s *Storage) BadPieces() []BadPiece {
	if s.serve == nil {
		return nil
	}
	return s.serve.badPieces()
}

// FlushInterval bounds how much verified work a crash can lose.
const FlushInterval = 2 * time.Second

func (s *Storage) flushLoop() {
	defer close(s.flushDone)
	t := time.NewTicker(FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopFlush:
			return
		case <-t.C:
			if err := s.Flush(); err != nil {
				if l := s.log.Load(); l != nil {
					l.Error("recording progress failed", "err", err)
				}
				s.fatal(err)
				return
			}
		}
	}
}

// Flush makes verified pieces durable: data first (fdatasync), then the
// completion record that claims it. Never the other way round. Neither
// runs under the book's mutex, so Completion and MarkComplete never wait
// for a disk.
func (s *Storage) Flush() error {
	if s.seeder {
		return nil
	}
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	pending, recDirty := s.book.takePending()
	if len(pending) == 0 && !recDirty {
		return nil
	}
	if len(pending) > 0 {
		if err := s.io.sync(); err != nil {
			s.book.putBack(pending)
			return err
		}
	}
	rec, bits := s.book.synced(pending)
	if rec == nil {
		return nil
	}
	if err := rec.save(bits); err != nil {
		s.book.saveFailed()
		return err
	}
	return nil
}

// DropState removes the resume record and stops recording completion.
func (s *Storage) DropState() {
	if s.book == nil {
		return
	}
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.book.mu.Lock()
	rec := s.book.rec
	s.book.rec = nil
	s.book.mu.Unlock()
	if rec != nil {
		if err := rec.Remove(); err != nil {
			if l := s.log.Load(); l != nil {
				l.Warn("could not remove the resume record", "path", rec.path, "err", err)
			}
		}
	}
}

// Close stops the flusher, makes everything verified durable and closes
// the target (releasing its exclusive hold). It may be called any number
// of times; every call returns the first call's result.
func (s *Storage) Close() error {
	s.closeOnce.Do(func() {
		s.limStop()
		close(s.stopFlush)
		<-s.flushDone
		err := s.Flush()
		if cerr := s.io.Close(); err == nil {
			err = cerr
		}
		s.closeErr = err
		if s.hashes != nil {
			s.hashes.releaseAll()
			if lg := s.log.Load(); lg != nil {
				w, r := s.hashes.counts()
				lg.Debug("piece hashing", "hashed_from_writes", w, "hashed_from_target", r)
			}
		}
	})
	return s.closeErr
}

// Durable reports whether every piece is verified and recorded after a sync.
func (s *Storage) Durable() bool {
	if s.seeder {
		return true
	}
	return s.book.durable()
}

func (s *Storage) OpenTorrent(_ context.Context, info *metainfo.Info, _ metainfo.Hash) (storage.TorrentImpl, error) {
	if s.serve != nil && info != nil {
		s.serve.setHashes(info.Pieces)
	}
	return storage.TorrentImpl{
		PieceWithHash: func(p metainfo.Piece, _ g.Option[[]byte]) storage.PieceImpl {
			ep := &extentPiece{s: s, index: p.Index(), off: p.Offset(), n: p.Length()}
			if s.hashes != nil && s.hashes.selfHashing(ep.index) {
				return selfHashedPiece{ep}
			}
			// A seeder's pieces are never checked by the library; a
			// client's piece whose downloaded data failed is checked by
			// the library's read-back, which also finds the peer that
			// lied (see pieceHashes).
			return ep
		},
		// The client owns the storage's lifetime: it is closed after the
		// torrent is dropped, with a final flush.
		Close: func() error { return nil },
	}, nil
}

type extentPiece struct {
	s     *Storage
	index int
	off   int64
	n     int64
}

func (p *extentPiece) ReadAt(b []byte, off int64) (int, error) {
	if off >= p.n {
		return 0, nil
	}
	if p.s.serve != nil {
		// Never serve what does not match the torrent.
		if err := p.s.serve.check(p.index); err != nil {
			return 0, err
		}
	}
	if err := p.writeOut(); err != nil {
		return 0, err
	}
	b = b[:min(int64(len(b)), p.n-off)]
	// The library reads through ReadAt only to serve peers (hashing goes
	// through WriteTo), so this is where uploads are paced.
	p.s.pace(p.s.upLim, len(b))
	if p.s.serve != nil && p.s.serve.read(p.index, b, off) {
		p.s.bytesRead.Add(int64(len(b)))
		p.s.pieceReads[p.index].Add(int64(len(b)))
		return len(b), nil
	}
	p.s.aio <- struct{}{}
	n, err := ReadRange(p.s.l, p.s.io, b, p.off+off)
	<-p.s.aio
	p.s.bytesRead.Add(int64(n))
	p.s.pieceReads[p.index].Add(int64(n))
	return n, err
}

func (p *extentPiece) WriteAt(b []byte, off int64) (int, error) {
	if p.s.seeder {
		// A seeder's source is never written to.
		return len(b), nil
	}
	if off < 0 || off+int64(len(b)) > p.n {
		return 0, errOutsidePiece
	}
	p.s.pace(p.s.downLim, len(b))
	if p.s.hashes.hold(p.index, off, b) {
		return len(b), nil // written with the whole piece, at its check
	}
	p.s.aio <- struct{}{}
	n, err := writeRange(p.s.l, p.s.io, b, p.off+off)
	<-p.s.aio
	p.s.bytesWritten.Add(int64(n))
	if err != nil {
		p.s.hashes.spoilPiece(p.index)
		p.s.fatal(fmt.Errorf("writing piece %d to the target: %w", p.index, err))
		return n, err
	}
	p.s.hashes.wrote(p.index, off, b)
	return n, err
}

// writeOut puts a piece held in memory on the target before it is read
// there.
func (p *extentPiece) writeOut() error {
	if p.s.hashes == nil {
		return nil
	}
	return p.s.hashes.writeOut(p.index)
}

// selfHashedPiece is a client's piece whose check uses the hash kept as
// its chunks were written (storage.SelfHashing).
type selfHashedPiece struct{ *extentPiece }

func (p selfHashedPiece) SelfHash() (metainfo.Hash, error) {
	return p.s.hashes.sum(p.index)
}

// WriteTo streams the whole piece to w: the library hashes pieces this
// way, so hashing is never paced as an upload.
func (p *extentPiece) WriteTo(w io.Writer) (int64, error) {
	if err := p.writeOut(); err != nil {
		return 0, err
	}
	buf := make([]byte, min(p.n, 1<<20))
	var done int64
	for done < p.n {
		b := buf[:min(int64(len(buf)), p.n-done)]
		p.s.aio <- struct{}{}
		n, err := ReadRange(p.s.l, p.s.io, b, p.off+done)
		<-p.s.aio
		p.s.bytesRead.Add(int64(n))
		p.s.pieceReads[p.index].Add(int64(n))
		if n > 0 {
			if _, werr := w.Write(b[:n]); werr != nil {
				return done, werr
			}
			done += int64(n)
		}
		if err != nil && done < p.n {
			return done, err
		}
		if n == 0 {
			return done, io.ErrUnexpectedEOF
		}
	}
	return done, nil
}

func (p *extentPiece) MarkComplete() error {
	if p.s.book != nil {
		p.s.hashes.done(p.index, false)
		p.s.book.verified(p.index)
	}
	return nil
}

func (p *extentPiece) MarkNotComplete() error {
	if p.s.book != nil {
		p.s.hashes.done(p.index, true)
		p.s.book.failed(p.index)
	}
	return nil
}

func (p *extentPiece) Completion() storage.Completion {
	if p.s.seeder {
		return storage.Completion{Ok: true, Complete: true}
	}
	switch p.s.book.mark(p.index) {
	case markComplete:
		return storage.Completion{Ok: true, Complete: true}
	case markClaimed, markUnknown:
		// Not known until hashed: the library hashes it from the target
		// (on its hashing threads, while the rest downloads) and then
		// calls MarkComplete or MarkNotComplete.
		return storage.Completion{Ok: false}
	}
	return storage.Completion{Ok: true, Complete: false}
}

type engineError string

func (e engineError) Error() string { return string(e) }

const errOutsidePiece = engineError("write outside the piece")
