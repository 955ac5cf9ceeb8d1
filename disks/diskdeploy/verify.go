package diskdeploy

// Checking a whole disk image's data before serving it: `ezio seed
// IMAGE-DIR --verify` and the wizard's Serve.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"ezio/disks/diskimage"
	"ezio/engine"
	"ezio/engine/torrentfile"
)

// PartBad is a piece of one partition whose data does not match the
// partition's torrent.
type PartBad struct {
	Partition diskimage.Partition
	Piece     engine.BadPiece
}

// DiskOffset is where the piece's first byte lies on the whole disk.
func (b PartBad) DiskOffset() int64 { return b.Partition.Start + b.Piece.Offset }

func (b PartBad) String() string {
	s := fmt.Sprintf("partition %s: piece %d at partition offset %d, disk offset %d", b.Partition.Name, b.Piece.Index, b.Piece.Offset, b.DiskOffset())
	if b.Piece.File != "" {
		s += " (extent file " + b.Piece.File + ")"
	}
	return s
}

// VerifyResult is the verdict on a disk image's data.
type VerifyResult struct {
	Partitions int // partitions with data, all checked
	Pieces     int
	Bytes      int64
	Bad        []PartBad // in partition order, then piece order
	Elapsed    time.Duration
}

// Verify hashes every partition's extents against its torrent, threads at
// a time (0: one per core), reporting progress over the whole disk's data.
// A manifest or torrent that cannot be read is an *ImageError; a
// partition's data that cannot be read as its torrent says (an extent file
// missing or short) is an *engine.SourceError naming the partition.
func Verify(ctx context.Context, dir string, threads int, progress func(done, total int64)) (*VerifyResult, error) {
	m, err := diskimage.LoadDir(dir)
	if err != nil {
		return nil, &ImageError{Dir: dir, Err: err}
	}
	type part struct {
		p  diskimage.Partition
		mi *metainfo.MetaInfo
		n  int64
	}
	var parts []part
	r := &VerifyResult{Bad: []PartBad{}}
	fsys := os.DirFS(dir)
	for _, p := range m.Partitions {
		if !p.HasData() {
			continue
		}
		mi, err := LoadPartitionTorrent(fsys, p)
		if err != nil {
			return nil, &ImageError{Dir: dir, Err: fmt.Errorf("partition %s: %w", p.Name, err)}
		}
		_, l, err := torrentfile.Summarize(mi)
		if err != nil {
			return nil, &ImageError{Dir: dir, Err: fmt.Errorf("partition %s: %w", p.Name, err)}
		}
		parts = append(parts, part{p, mi, l.Total})
		r.Bytes += l.Total
	}
	start := time.Now()
	var base int64
	for _, pt := range parts {
		var each func(done, total int64)
		if progress != nil {
			each = func(done, _ int64) { progress(base+done, r.Bytes) }
		}
		pr, err := engine.VerifySource(ctx, pt.mi, filepath.Join(dir, pt.p.ImageDir), threads, each)
		if err != nil {
			var se *engine.SourceError
			if errors.As(err, &se) {
				return nil, &engine.SourceError{Err: fmt.Errorf("partition %s: %w", pt.p.Name, se.Err)}
			}
			return nil, err
		}
		base += pt.n
		r.Partitions++
		r.Pieces += pr.Pieces
		for _, b := range pr.Bad {
			r.Bad = append(r.Bad, PartBad{Partition: pt.p, Piece: b})
		}
	}
	r.Elapsed = time.Since(start)
	return r, nil
}

// BadCounts is how many bad pieces each partition has, as "sda1: 2, sda3:
// 1", in partition order.
func (r *VerifyResult) BadCounts() string {
	s := ""
	for i := 0; i < len(r.Bad); {
		j := i
		for j < len(r.Bad) && r.Bad[j].Partition.Name == r.Bad[i].Partition.Name {
			j++
		}
		if s != "" {
			s += ", "
		}
		s += fmt.Sprintf("%s: %d", r.Bad[i].Partition.Name, j-i)
		i = j
	}
	return s
}
