package engine

import (
	"bytes"
	"context"
	"crypto/sha1"
	"ezio/engine/atomicfile"
	"ezio/engine/extent"
	"ezio/engine/torrentfile"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
)

// CreateOptions shape a new image torrent.
type CreateOptions struct {
	Name        string   // info.name; default: the source's base name
	PieceLength int64    // default DefaultPieceLength
	Trackers    []string // announce URLs
	Threads     int      // hashing goroutines; default all cores
	// Progress is called from time to time with hashed and total bytes.
	Progress func(done, total int64)
}

// ScanSource finds the extents a source holds: a directory of extent files
// (partclone -T), or the whole range of an image file or block device as
// one extent at offset 0.
func ScanSource(source string) ([]metainfo.FileInfo, error) {
	kind, err := KindOf(source)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(source); err != nil {
		return nil, err
	}
	if kind != TargetDir {
		size, err := SizeOf(source)
		if err != nil {
			return nil, err
		}
		if size == 0 {
			return nil, fmt.Errorf("%s is empty", source)
		}
		return []metainfo.FileInfo{{Path: []string{torrentfile.FormatOffset(0)}, Length: size}}, nil
	}
	entries, err := os.ReadDir(source)
	if err != nil {
		return nil, err
	}
	type ext struct {
		name string
		off  int64
		n    int64
	}
	var exts []ext
	for _, e := range entries {
		name := e.Name()
		if name == "torrent.info" || strings.HasPrefix(name, ".") {
			continue
		}
		off, err := torrentfile.ParseOffset(name)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not an extent file (names must be hex disk offsets): %w", source, name, err)
		}
		if !e.Type().IsRegular() {
			return nil, fmt.Errorf("%s: %q is not a regular file", source, name)
		}
		fi, err := e.Info()
		if err != nil {
			return nil, err
		}
		exts = append(exts, ext{name, off, fi.Size()})
	}
	if len(exts) == 0 {
		return nil, fmt.Errorf("%s holds no extent files", source)
	}
	sort.Slice(exts, func(a, b int) bool { return exts[a].off < exts[b].off })
	files := make([]metainfo.FileInfo, len(exts))
	for i, e := range exts {
		files[i] = metainfo.FileInfo{Path: []string{e.name}, Length: e.n}
	}
	return files, nil
}

// CreateTorrent hashes a source and returns an image torrent for it.
func CreateTorrent(ctx context.Context, source string, opts CreateOptions) (*metainfo.MetaInfo, error) {
	files, err := ScanSource(source)
	if err != nil {
		return nil, err
	}
	if opts.PieceLength == 0 {
		opts.PieceLength = torrentfile.DefaultPieceLength
	}
	if opts.Name == "" {
		opts.Name = filepath.Base(filepath.Clean(source))
	}
	info := &metainfo.Info{Name: opts.Name, PieceLength: opts.PieceLength, Files: files}
	var total int64
	for _, f := range files {
		total += f.Length
	}
	n := (total + opts.PieceLength - 1) / opts.PieceLength
	info.Pieces = make([]byte, 20*n) // placeholder so the layout validates
	l, err := torrentfile.NewLayout(info)
	if err != nil {
		return nil, err
	}
	xio, _, err := extent.Open(source, l, false)
	if err != nil {
		return nil, err
	}
	defer xio.Close()
	if err := hashPieces(ctx, l, xio, info.Pieces, opts.Threads, opts.Progress); err != nil {
		return nil, err
	}
	return newMetaInfo(info, opts.Trackers)
}

// hashReadSize is the smallest read when hashing a source.
const hashReadSize = 8 << 20

// hashPieces fills pieces with the SHA-1 of every piece, on all cores.
func hashPieces(ctx context.Context, l *torrentfile.Layout, xio extent.IO, pieces []byte, threads int, progress func(done, total int64)) error {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Workers claim runs of consecutive pieces and read each run with one
	// large sequential read (at least hashReadSize), so small pieces do not
	// cost a read call each; every worker reuses its own buffer.
	batch := max(1, int(hashReadSize/l.PieceLength))
	var next atomic.Int64
	var done atomic.Int64
	var once sync.Once
	var firstErr error
	var wg sync.WaitGroup
	for range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, int64(batch)*l.PieceLength)
			for ctx.Err() == nil {
				first := int(next.Add(int64(batch)) - int64(batch))
				if first >= l.NumPieces {
					return
				}
				last := min(first+batch, l.NumPieces) // exclusive
				off, _ := l.PieceSpan(first)
				lo, ln := l.PieceSpan(last - 1)
				span := lo + ln - off
				if _, err := extent.ReadRange(l, xio, buf[:span], off); err != nil {
					once.Do(func() { firstErr = fmt.Errorf("reading pieces %d-%d: %w", first, last-1, err); cancel() })
					return
				}
				for i := first; i < last; i++ {
					po, pn := l.PieceSpan(i)
					sum := sha1.Sum(buf[po-off : po-off+pn])
					copy(pieces[i*20:], sum[:])
				}
				done.Add(span)
			}
		}()
	}
	if progress != nil {
		stop := make(chan struct{})
		go func() {
			t := time.NewTicker(250 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					progress(done.Load(), l.Total)
				}
			}
		}()
		defer func() { close(stop); progress(done.Load(), l.Total) }()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// BuildFromExtents makes an image torrent from extents and piece hashes
// computed elsewhere (partclone's torrent.info), without reading any data.
// Files are named by 32-digit hex offsets, in the order given.
func BuildFromExtents(name string, pieceLength int64, extents []torrentfile.Extent, hashes [][20]byte, trackers []string) (*metainfo.MetaInfo, error) {
	info := &metainfo.Info{Name: name, PieceLength: pieceLength}
	for _, e := range extents {
		info.Files = append(info.Files, metainfo.FileInfo{Path: []string{torrentfile.FormatOffset(e.Offset)}, Length: e.Length})
	}
	for _, h := range hashes {
		info.Pieces = append(info.Pieces, h[:]...)
	}
	if _, err := torrentfile.NewLayout(info); err != nil {
		return nil, err
	}
	return newMetaInfo(info, trackers)
}

func newMetaInfo(info *metainfo.Info, trackers []string) (*metainfo.MetaInfo, error) {
	ib, err := bencode.Marshal(info)
	if err != nil {
		return nil, err
	}
	mi := &metainfo.MetaInfo{InfoBytes: ib, CreatedBy: "ezio", CreationDate: time.Now().Unix()}
	if len(trackers) > 0 {
		mi.Announce = trackers[0]
		if len(trackers) > 1 {
			mi.AnnounceList = metainfo.AnnounceList{trackers}
		}
	}
	return mi, nil
}

// WriteTorrent saves a torrent atomically.
func WriteTorrent(mi *metainfo.MetaInfo, path string) error {
	var buf bytes.Buffer
	if err := mi.Write(&buf); err != nil {
		return err
	}
	return atomicfile.Write(path, buf.Bytes(), 0o644)
}

// LoadTorrent reads a torrent from a file or an http(s) URL (the seeder's
// /torrents/<name>.torrent).
func LoadTorrent(ctx context.Context, src string) (*metainfo.MetaInfo, error) {
	ft, err := FetchTorrent(ctx, src)
	if err != nil {
		return nil, err
	}
	return ft.MetaInfo, nil
}

func loadTorrentFile(path string) (*metainfo.MetaInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := ReadTorrentLimited(f, -1)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	mi, err := torrentfile.ParseTorrent(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return mi, nil
}

// ReadTorrentLimited reads a torrent body of at most MaxTorrentBytes; a
// longer one (or a declared length over the limit) is a TooLargeError,
// never a silently cut torrent.
func ReadTorrentLimited(r io.Reader, declared int64) ([]byte, error) {
	if declared > torrentfile.MaxTorrentBytes {
		return nil, &torrentfile.TooLargeError{Size: declared, Limit: torrentfile.MaxTorrentBytes}
	}
	b, err := io.ReadAll(io.LimitReader(r, torrentfile.MaxTorrentBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > torrentfile.MaxTorrentBytes {
		return nil, &torrentfile.TooLargeError{Size: int64(len(b)), Limit: torrentfile.MaxTorrentBytes, AtLeast: true}
	}
	return b, nil
}

func limitReader(r io.Reader) io.Reader { return io.LimitReader(r, torrentfile.MaxTorrentBytes) }
