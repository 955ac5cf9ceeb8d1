package extent

import (
	"log/slog"
)

// What the engine's job sets on its storage and reads from it, besides
// the library's storage interface.

// SetLogger sets where the storage logs, before it is attached to a job.
func (s *Storage) SetLogger(log *slog.Logger) { s.log.Store(log) }

// UseBudget makes a client's pieces in flight held in memory within b,
// shared with the other storages that use it (a session's deploys).
func (s *Storage) UseBudget(b *Budget) {
	if s.hashes != nil {
		s.hashes.useBudget(b)
	}
}

// SetKeep sets how many bytes of a seeder's checked pieces stay in memory
// for the chunk reads that follow their check (nothing on a client, or a
// seeder that serves unchecked).
func (s *Storage) SetKeep(n int64) {
	if s.serve != nil {
		s.serve.setKeep(n)
	}
}

// Checks tells whether the storage checks each piece before serving it,
// so that BadPieces can name any.
func (s *Storage) Checks() bool { return s.serve != nil }

// BadDataSeen counts a hash failure of downloaded data for piece i and
// returns how many there have been; ok is false on a seeder, which
// downloads nothing.
func (s *Storage) BadDataSeen(i int) (n int, ok bool) {
	if s.book == nil {
		return 0, false
	}
	return s.book.badDataSeen(i), true
}

// Idle tells whether no disk operation is in flight.
func (s *Storage) Idle() bool { return len(s.aio) == 0 }

// Counter is a counter that only its owner moves.
type Counter interface{ Load() int64 }

// Written counts the bytes put on the target.
func (s *Storage) Written() Counter { return &s.bytesWritten }

// PieceReads is the bytes read of piece i so far (uploads and hashing).
func (s *Storage) PieceReads(i int) int64 { return s.pieceReads[i].Load() }
