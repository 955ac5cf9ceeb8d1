package engine

import (
	"bytes"
	"context"
	"ezio/engine/extent"
	"ezio/engine/torrentfile"
	"time"

	"github.com/anacrolix/torrent/metainfo"
)

// VerifyResult is what VerifySource found.
type VerifyResult struct {
	Name     string        `json:"name"`
	InfoHash string        `json:"infohash"`
	Source   string        `json:"source"`
	Kind     TargetKind    `json:"kind"`
	Pieces   int           `json:"pieces"`
	Bytes    int64         `json:"bytes"`
	Bad      []BadPiece    `json:"bad_pieces"`
	Elapsed  time.Duration `json:"-"`
	Seconds  float64       `json:"elapsed_seconds"`
}

// SourceError says a source cannot be verified at all (missing, too short,
// an extent file absent): a refusal, not a verdict on its data.
type SourceError struct{ Err error }

func (e *SourceError) Error() string { return e.Err.Error() }
func (e *SourceError) Unwrap() error { return e.Err }

// VerifySource hashes every piece of a source (a device, an image file or
// an extent directory) on all cores, with the same hasher torrent create
// uses, and lists the pieces that do not match the torrent. A torrent
// that does not validate is a *ValidationError; a source that lacks data
// the torrent declares is a *SourceError.
func VerifySource(ctx context.Context, mi *metainfo.MetaInfo, source string, threads int, progress func(done, total int64)) (*VerifyResult, error) {
	sum, l, err := torrentfile.Summarize(mi)
	if err != nil {
		return nil, err
	}
	info, err := mi.UnmarshalInfo()
	if err != nil {
		return nil, err
	}
	kind, err := CheckSource(l, source)
	if err != nil {
		return nil, &SourceError{err}
	}
	xio, _, err := extent.Open(source, l, false)
	if err != nil {
		return nil, &SourceError{err}
	}
	defer xio.Close()
	start := time.Now()
	got := make([]byte, len(info.Pieces))
	if err := hashPieces(ctx, l, xio, got, threads, progress); err != nil {
		return nil, err
	}
	r := &VerifyResult{Name: sum.Name, InfoHash: sum.InfoHash, Source: source, Kind: kind, Pieces: l.NumPieces, Bytes: l.Total, Bad: []BadPiece{}}
	for i := range l.NumPieces {
		if !bytes.Equal(got[i*20:i*20+20], info.Pieces[i*20:i*20+20]) {
			off, file := l.PieceWhere(i)
			r.Bad = append(r.Bad, BadPiece{Index: i, Offset: off, File: file, Reason: "SHA-1 mismatch"})
		}
	}
	r.Elapsed = time.Since(start)
	r.Seconds = r.Elapsed.Seconds()
	return r, nil
}
