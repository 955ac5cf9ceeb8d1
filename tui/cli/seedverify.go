package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"ezio/disks/diskdeploy"
	"ezio/disks/diskimage"
	"ezio/engine"
	"ezio/tui/format"
)

// verifyProgress reports hashing progress on a's stderr: an updating
// line on a terminal, else a line every 2 s and the last one.
func verifyProgress(a *App) (progress func(done, total int64), end func()) {
	tty := a.isTerminal(a.Stderr)
	start := time.Now()
	var mu sync.Mutex
	last := time.Time{}
	progress = func(done, total int64) {
		mu.Lock()
		defer mu.Unlock()
		el := time.Since(start).Seconds()
		rate := 0.0
		if el > 0 {
			rate = float64(done) / el
		}
		line := fmt.Sprintf("verifying %s  %s of %s  %s", format.Percent(done, total), format.Bytes(done), format.Bytes(total), format.Rate(rate))
		switch {
		case tty:
			fmt.Fprintf(a.Stderr, "\r%s   ", line)
		case done == total || time.Since(last) >= 2*time.Second:
			// Not a terminal: a line now and then, and the last one.
			fmt.Fprintln(a.Stderr, line)
			last = time.Now()
		}
	}
	end = func() {
		if tty {
			fmt.Fprintln(a.Stderr)
		}
	}
	return progress, end
}

// verifyShowing hashes source against mi with the progress line, for
// `ezio torrent verify` and `ezio seed --verify`: a torrent that does not
// fit the source, or a source that cannot be read as one, is a refusal.
func verifyShowing(ctx context.Context, a *App, mi *metainfo.MetaInfo, source string, threads int) (*engine.VerifyResult, error) {
	progress, end := verifyProgress(a)
	r, err := engine.VerifySource(ctx, mi, source, threads, progress)
	end()
	var ve *engine.ValidationError
	var se *engine.SourceError
	if errors.As(err, &ve) || errors.As(err, &se) {
		return nil, refused(err)
	}
	return r, err
}

// verifyBeforeSeeding is `ezio seed --verify`: the whole source is hashed
// on all cores before anything is served; a source with a bad piece is
// refused (exit 1) with the pieces listed, so that no client ever waits
// on a piece this seeder cannot give.
func verifyBeforeSeeding(ctx context.Context, a *App, mi *metainfo.MetaInfo, source string) error {
	r, err := verifyShowing(ctx, a, mi, source, 0)
	if err != nil {
		return err
	}
	if len(r.Bad) == 0 {
		fmt.Fprintf(a.Stderr, "%s: all %d pieces match the torrent (%s in %s)\n", source, r.Pieces, format.Bytes(r.Bytes), r.Elapsed.Round(10*time.Millisecond))
		return nil
	}
	for _, b := range r.Bad {
		fmt.Fprintf(a.Stderr, "bad: %s\n", b)
	}
	return &ExitError{Code: ExitFailed, Err: fmt.Errorf("not serving %s: %d of %d pieces do not match the torrent; %s", source, len(r.Bad), r.Pieces, engine.StuckAdvice)}
}

// diskBad is one bad piece of a whole-disk image's partition.
type diskBad struct {
	part  diskimage.Partition
	piece engine.BadPiece
}

func (b diskBad) String() string {
	s := fmt.Sprintf("partition %s: piece %d at partition offset %d, disk offset %d", b.part.Name, b.piece.Index, b.piece.Offset, b.part.Start+b.piece.Offset)
	if b.piece.File != "" {
		s += " (extent file " + b.piece.File + ")"
	}
	return s
}

// verifyDiskBeforeSeeding is `ezio seed IMAGE-DIR --verify`: every
// partition's extents are hashed against its torrent on all cores, under
// one progress line for the whole disk, before anything is served. Bad
// pieces are listed per partition (partition, piece, offsets in the
// partition and on the disk, extent file) and the seeder refuses to start
// (exit 1); an image whose manifest, torrents or extent directories are
// missing or wrong is refused (exit 2) as seeding it would be.
func verifyDiskBeforeSeeding(ctx context.Context, a *App, dir string) error {
	m, err := diskimage.LoadDir(dir)
	if err != nil {
		return refused(err)
	}
	type part struct {
		p  diskimage.Partition
		mi *metainfo.MetaInfo
		n  int64
	}
	var parts []part
	var grand int64
	fsys := os.DirFS(dir)
	for _, p := range m.Partitions {
		if !p.HasData() {
			continue
		}
		mi, err := diskdeploy.LoadPartitionTorrent(fsys, p)
		if err != nil {
			return refused(err)
		}
		_, l, err := engine.Summarize(mi)
		if err != nil {
			return refused(fmt.Errorf("partition %s: %w", p.Name, err))
		}
		parts = append(parts, part{p, mi, l.Total})
		grand += l.Total
	}
	progress, end := verifyProgress(a)
	var bad []diskBad
	var pieces int
	var base int64
	start := time.Now()
	for _, pt := range parts {
		r, err := engine.VerifySource(ctx, pt.mi, filepath.Join(dir, pt.p.ImageDir), 0, func(done, _ int64) { progress(base+done, grand) })
		if err != nil {
			end()
			var ve *engine.ValidationError
			var se *engine.SourceError
			if errors.As(err, &ve) || errors.As(err, &se) {
				return refused(fmt.Errorf("partition %s: %w", pt.p.Name, err))
			}
			return err
		}
		base += pt.n
		pieces += r.Pieces
		for _, b := range r.Bad {
			bad = append(bad, diskBad{pt.p, b})
		}
	}
	end()
	if len(bad) == 0 {
		fmt.Fprintf(a.Stderr, "%s: all %d pieces of %d partitions match their torrents (%s in %s)\n", dir, pieces, len(parts), format.Bytes(grand), time.Since(start).Round(10*time.Millisecond))
		return nil
	}
	perPart := map[string]int{}
	var names []string
	for _, b := range bad {
		fmt.Fprintf(a.Stderr, "bad: %s\n", b)
		if perPart[b.part.Name] == 0 {
			names = append(names, b.part.Name)
		}
		perPart[b.part.Name]++
	}
	var where []string
	for _, n := range names {
		where = append(where, fmt.Sprintf("%s: %d", n, perPart[n]))
	}
	return &ExitError{Code: ExitFailed, Err: fmt.Errorf("not serving %s: %d of %d pieces do not match their torrents (%s); %s", dir, len(bad), pieces, strings.Join(where, ", "), engine.StuckAdvice)}
}
