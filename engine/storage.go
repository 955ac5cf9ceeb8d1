package engine

import (
	"context"
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

// extentStorage is the raw-extent storage backend: pieces are read and
// written straight on the target through the Layout, nothing is copied.
type extentStorage struct {
	l      *Layout
	io     extentIO
	seeder bool // every piece is complete by definition

	// Client side.
	state   *resumeState // nil: nothing persisted
	recheck bool

	mu       sync.Mutex
	complete []bool // pieces the library verified
	known    []bool // with recheck: pieces whose state was settled by a hash
	pending  []int  // verified but not yet covered by a sync

	bytesWritten atomic.Int64
	bytesRead    atomic.Int64
	pieceReads   []atomic.Int64 // bytes read per piece (uploads and hashing)
	stopFlush    chan struct{}
	flushDone    chan struct{}
	flushErr     atomic.Pointer[error]
	log          atomic.Pointer[slog.Logger]
	// aio bounds the disk operations in flight (--aio-threads).
	aio chan struct{}
	// Rate caps (nil: none), shared by the session's jobs: uploads are
	// paced where pieces are read for serving, downloads where received
	// data is written, so the library never sees a limiter.
	upLim, downLim *rate.Limiter
	limCtx         context.Context
	limStop        context.CancelFunc
}

// setLimits caps the bytes/s read for serving and written from peers.
func (s *extentStorage) setLimits(up, down *rate.Limiter) {
	s.upLim, s.downLim = up, down
}

// pace waits until lim allows n more bytes. After Close it no longer
// waits: a read in flight must complete, never fail (the library cannot
// handle a failed read of a closing torrent).
func (s *extentStorage) pace(lim *rate.Limiter, n int) {
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

func newExtentStorage(l *Layout, xio extentIO, seeder bool, state *resumeState, recheck bool, aioThreads int) *extentStorage {
	s := &extentStorage{
		aio: make(chan struct{}, max(1, aioThreads)),
		l:   l, io: xio, seeder: seeder, state: state, recheck: recheck,
		complete:   make([]bool, l.NumPieces),
		known:      make([]bool, l.NumPieces),
		pieceReads: make([]atomic.Int64, l.NumPieces),
		stopFlush:  make(chan struct{}),
		flushDone:  make(chan struct{}),
	}
	s.limCtx, s.limStop = context.WithCancel(context.Background())
	if seeder {
		for i := range s.complete {
			s.complete[i] = true
		}
	} else if state != nil && !recheck {
		copy(s.complete, state.bits)
	}
	go s.flushLoop()
	return s
}

// flushInterval bounds how much verified work a crash can lose.
const flushInterval = 2 * time.Second

func (s *extentStorage) flushLoop() {
	defer close(s.flushDone)
	t := time.NewTicker(flushInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopFlush:
			return
		case <-t.C:
			if err := s.flush(); err != nil {
				s.flushErr.Store(&err)
				if l := s.log.Load(); l != nil {
					l.Error("recording progress failed", "err", err)
				}
			}
		}
	}
}

// flush makes verified pieces durable: data first (fdatasync), then the
// completion record that claims it. Never the other way round.
func (s *extentStorage) flush() error {
	if s.seeder {
		return nil
	}
	s.mu.Lock()
	pending := s.pending
	s.pending = nil
	s.mu.Unlock()
	if len(pending) == 0 {
		return nil
	}
	if err := s.io.sync(); err != nil {
		s.mu.Lock()
		s.pending = append(pending, s.pending...)
		s.mu.Unlock()
		return err
	}
	s.mu.Lock()
	if s.state == nil {
		s.mu.Unlock()
		return nil
	}
	for _, p := range pending {
		if s.complete[p] {
			s.state.bits[p] = true
		}
	}
	err := s.state.save()
	s.mu.Unlock()
	return err
}

// failed is the error of a failed background flush, or nil: the job
// must end on it.
func (s *extentStorage) failed() error {
	if p := s.flushErr.Load(); p != nil {
		return fmt.Errorf("recording progress on the target: %w", *p)
	}
	return nil
}

// dropState stops recording completion (the record was removed).
func (s *extentStorage) dropState() {
	s.mu.Lock()
	s.state = nil
	s.mu.Unlock()
}

// Close stops the flusher and makes everything verified durable.
func (s *extentStorage) Close() error {
	s.limStop()
	select {
	case <-s.stopFlush:
	default:
		close(s.stopFlush)
	}
	<-s.flushDone
	err := s.flush()
	if cerr := s.io.close(); err == nil {
		err = cerr
	}
	return err
}

// Durable reports whether every piece is verified and recorded after a sync.
func (s *extentStorage) Durable() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) > 0 {
		return false
	}
	for _, c := range s.complete {
		if !c {
			return false
		}
	}
	return true
}

func (s *extentStorage) OpenTorrent(_ context.Context, _ *metainfo.Info, _ metainfo.Hash) (storage.TorrentImpl, error) {
	return storage.TorrentImpl{
		PieceWithHash: func(p metainfo.Piece, _ g.Option[[]byte]) storage.PieceImpl {
			return &extentPiece{s: s, index: p.Index(), off: p.Offset(), n: p.Length()}
		},
		// The client owns the storage's lifetime: it is closed after the
		// torrent is dropped, with a final flush.
		Close: func() error { return nil },
	}, nil
}

type extentPiece struct {
	s     *extentStorage
	index int
	off   int64
	n     int64
}

func (p *extentPiece) ReadAt(b []byte, off int64) (int, error) {
	if off >= p.n {
		return 0, nil
	}
	b = b[:min(int64(len(b)), p.n-off)]
	// The library reads through ReadAt only to serve peers (hashing goes
	// through WriteTo), so this is where uploads are paced.
	p.s.pace(p.s.upLim, len(b))
	p.s.aio <- struct{}{}
	n, err := readRange(p.s.l, p.s.io, b, p.off+off)
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
	p.s.aio <- struct{}{}
	n, err := writeRange(p.s.l, p.s.io, b, p.off+off)
	<-p.s.aio
	p.s.bytesWritten.Add(int64(n))
	return n, err
}

// WriteTo streams the whole piece to w: the library hashes pieces this
// way, so hashing is never paced as an upload.
func (p *extentPiece) WriteTo(w io.Writer) (int64, error) {
	buf := make([]byte, min(p.n, 1<<20))
	var done int64
	for done < p.n {
		b := buf[:min(int64(len(buf)), p.n-done)]
		p.s.aio <- struct{}{}
		n, err := readRange(p.s.l, p.s.io, b, p.off+done)
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
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.known[p.index] = true
	if !s.complete[p.index] {
		s.complete[p.index] = true
		s.pending = append(s.pending, p.index)
	}
	return nil
}

func (p *extentPiece) MarkNotComplete() error {
	s := p.s
	if s.seeder {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.known[p.index] = true
	s.complete[p.index] = false
	if s.state != nil && s.state.bits[p.index] {
		s.state.bits[p.index] = false
		return s.state.save()
	}
	return nil
}

func (p *extentPiece) Completion() storage.Completion {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.complete[p.index] {
		return storage.Completion{Ok: true, Complete: true}
	}
	if s.recheck && !s.known[p.index] {
		// Unknown: the library hashes it from the target.
		return storage.Completion{Ok: false}
	}
	return storage.Completion{Ok: true, Complete: false}
}

type engineError string

func (e engineError) Error() string { return string(e) }

const errOutsidePiece = engineError("write outside the piece")
