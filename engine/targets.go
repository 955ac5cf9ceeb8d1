package engine

import (
	"github.com/anacrolix/torrent/metainfo"

	"ezio/engine/extent"
)

// The extent storage lives in engine/extent; these names are the ones the
// engine's callers have always used for what it tells them.

// TargetKind says how extents are stored (device, file, directory).
type TargetKind = extent.TargetKind

const (
	TargetDevice = extent.TargetDevice
	TargetFile   = extent.TargetFile
	TargetDir    = extent.TargetDir
)

type (
	// DiskError: a target or source that cannot be opened or used.
	DiskError = extent.DiskError
	// BusyError: another process holds the target.
	BusyError = extent.BusyError
	// BadPiece is a piece whose data on a source does not match the torrent.
	BadPiece = extent.BadPiece
	// BadPieceError is what a seeder's read of a bad piece returns.
	BadPieceError = extent.BadPieceError
)

// KindOf tells what sort of target path is; a missing path is a file.
func KindOf(path string) (TargetKind, error) { return extent.KindOf(path) }

// SizeOf is the size of a device or file.
func SizeOf(path string) (int64, error) { return extent.SizeOf(path) }

// ResumePath is where a deploy to target keeps its resume record.
func ResumePath(target string, kind TargetKind, ih metainfo.Hash) string {
	return extent.ResumePath(target, kind, ih)
}

// ResumeRecordPieces counts the pieces a resume record claims.
func ResumeRecordPieces(path string) (int, error) { return extent.ResumeRecordPieces(path) }
