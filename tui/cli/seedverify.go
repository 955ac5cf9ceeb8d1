package cli

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"ezio/disks/diskdeploy"
	"ezio/engine"
	"ezio/engine/server"
	"ezio/engine/torrentfile"
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
	var ve *torrentfile.ValidationError
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
	return &ExitError{Code: ExitFailed, Err: fmt.Errorf("not serving %s: %d of %d pieces do not match the torrent; %s", source, len(r.Bad), r.Pieces, server.StuckAdvice)}
}

// verifyDiskBeforeSeeding is `ezio seed IMAGE-DIR --verify`: every
// partition's extents are hashed against its torrent on all cores, under
// one progress line for the whole disk, before anything is served. Bad
// pieces are listed per partition (partition, piece, offsets in the
// partition and on the disk, extent file) and the seeder refuses to start
// (exit 1); an image whose manifest, torrents or extent files are missing
// or wrong is refused (exit 2), as serving it would be.
func verifyDiskBeforeSeeding(ctx context.Context, a *App, dir string) error {
	progress, end := verifyProgress(a)
	r, err := diskdeploy.Verify(ctx, dir, 0, progress)
	end()
	var ie *diskdeploy.ImageError
	var ve *torrentfile.ValidationError
	var se *engine.SourceError
	if errors.As(err, &ie) || errors.As(err, &ve) || errors.As(err, &se) {
		return refused(err)
	}
	if err != nil {
		return err
	}
	if len(r.Bad) == 0 {
		fmt.Fprintf(a.Stderr, "%s: all %d pieces of %d partitions match their torrents (%s in %s)\n", dir, r.Pieces, r.Partitions, format.Bytes(r.Bytes), r.Elapsed.Round(10*time.Millisecond))
		return nil
	}
	for _, b := range r.Bad {
		fmt.Fprintf(a.Stderr, "bad: %s\n", b)
	}
	return &ExitError{Code: ExitFailed, Err: fmt.Errorf("not serving %s: %d of %d pieces do not match their torrents (%s); %s", dir, len(r.Bad), r.Pieces, r.BadCounts(), server.StuckAdvice)}
}
