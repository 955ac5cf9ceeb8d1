package partclone

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
)

// VerifyDir re-hashes the extent files in dir against info's piece hashes
// and returns the indexes of the pieces that do not match, in increasing
// order. A missing or short extent file makes the pieces it belongs to
// mismatch; it is not an error. Extent files are found by name: 32 hex
// digits (partclone 0.3.23) or 16. Pieces are hashed in parallel, one worker
// per CPU. progress, if not nil, is called with bytes hashed so far and the
// total, from one goroutine at a time.
func VerifyDir(ctx context.Context, info *Info, dir string, progress func(done, total int64)) ([]int, error) {
	if err := info.Check(); err != nil {
		return nil, err
	}
	files, err := extentFiles(dir)
	if err != nil {
		return nil, err
	}
	paths := make([]string, len(info.Extents))
	for k, e := range info.Extents {
		paths[k] = files[e.Offset] // "" when missing
	}
	starts := info.streamStarts()
	total := info.TotalLength()
	pieces := info.NumPieces()

	parent := ctx
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	var (
		mu       sync.Mutex
		bad      []int
		done     int64
		firstErr error
	)
	next := make(chan int)
	workers := min(runtime.NumCPU(), max(pieces, 1))
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1<<20)
			for p := range next {
				ok, n, err := hashPiece(ctx, info, starts, paths, p, buf)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
					cancel()
				}
				if err == nil && !ok {
					bad = append(bad, p)
				}
				done += n
				if progress != nil && err == nil {
					progress(done, total)
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for p := range pieces {
		select {
		case next <- p:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := parent.Err(); err != nil {
		return nil, fmt.Errorf("verifying %s: %w", dir, err)
	}
	if firstErr != nil {
		return nil, firstErr
	}
	sort.Ints(bad)
	return bad, nil
}

// hashPiece hashes piece p from the extent files and compares it with the
// recorded hash. It returns the bytes it covered for progress; a missing or
// short file is a mismatch, other read errors are errors.
func hashPiece(ctx context.Context, info *Info, starts []int64, paths []string, p int, buf []byte) (bool, int64, error) {
	h := sha1.New()
	var covered int64
	match := true
	for _, s := range info.pieceSpans(starts, p) {
		if err := ctx.Err(); err != nil {
			return false, covered, err
		}
		covered += s.length
		if !match {
			continue
		}
		path := paths[s.extent]
		if path == "" {
			match = false
			continue
		}
		ok, err := hashRange(h, path, s.skip, s.length, info.Extents[s.extent].Length, buf)
		if err != nil {
			return false, covered, err
		}
		match = ok
	}
	if !match {
		return false, covered, nil
	}
	var sum [20]byte
	h.Sum(sum[:0])
	return sum == info.Hashes[p], covered, nil
}

// hashRange feeds length bytes from skip in the file at path to h. A file
// whose size is not the extent length counts as a mismatch.
func hashRange(h io.Writer, path string, skip, length, extentLength int64, buf []byte) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return false, err
	}
	if st.Size() != extentLength {
		return false, nil
	}
	if _, err := io.CopyBuffer(h, io.NewSectionReader(f, skip, length), buf); err != nil {
		return false, fmt.Errorf("reading %s: %w", path, err)
	}
	return true, nil
}

// extentFiles maps disk offsets to the extent files in dir.
func extentFiles(dir string) (map[int64]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	files := make(map[int64]string, len(entries))
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if off, ok := ParseExtentFileName(e.Name()); ok {
			// With both a 16- and a 32-digit name for one offset, the
			// 32-digit one is partclone's own.
			if old, dup := files[off]; dup && len(filepath.Base(old)) > len(e.Name()) {
				continue
			}
			files[off] = filepath.Join(dir, e.Name())
		}
	}
	return files, nil
}
