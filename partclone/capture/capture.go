// Package capture turns a partition into a servable image: it runs partclone
// and writes the layout of Clonezilla's BitTorrent mode, so images move
// between the tools:
//
//	OUTDIR/NAME/               extent files named by hex disk offset
//	OUTDIR/NAME.torrent        the image torrent, from partclone's own SHA-1s
//	OUTDIR/NAME.torrent.info   partclone's description of extents and hashes
//	OUTDIR/NAME.json           a manifest: source, filesystem, sizes, infohash
//
// The command line and the wizard both capture through Capture.
package capture

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"ezio/engine/atomicfile"
	"ezio/engine/torrentfile"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"ezio/engine"
	"ezio/partclone"
)

// Capture modes, as written in the manifest.
const (
	ModeImage       = "image"
	ModeTorrentOnly = "torrent-only"
)

// Manifest is OUTDIR/<name>.json: what was captured, from where and how,
// so that an image directory explains itself. File names in it are
// relative to the manifest's directory, so the directory can be moved.
type Manifest struct {
	Name             string   `json:"name"`
	Mode             string   `json:"mode"` // "image" or "torrent-only"
	SourceDevice     string   `json:"source_device"`
	Filesystem       string   `json:"filesystem"` // as detected or given; "" when none was found
	Program          string   `json:"program"`    // e.g. partclone.extfs
	Fallback         bool     `json:"fallback"`   // partclone.dd copied every block
	PartcloneVersion string   `json:"partclone_version"`
	BlockSize        int64    `json:"block_size"`
	BlocksTotal      int64    `json:"blocks_total"`
	DeviceSize       int64    `json:"device_size"`     // bytes of SOURCE
	FilesystemSize   int64    `json:"filesystem_size"` // block_size * blocks_total, as partclone saw it
	UsedBytes        int64    `json:"used_bytes"`
	Extents          int      `json:"extents"`
	Pieces           int      `json:"pieces"`
	PieceLength      int64    `json:"piece_length"`
	InfoHash         string   `json:"infohash"`
	Torrent          string   `json:"torrent"`      // <name>.torrent
	TorrentInfo      string   `json:"torrent_info"` // <name>.torrent.info
	ImageDir         string   `json:"image_dir"`    // <name>, or "" in torrent-only mode
	SeedFrom         string   `json:"seed_from"`    // the SOURCE to give `ezio seed`
	Trackers         []string `json:"trackers"`
	Date             string   `json:"date"` // RFC 3339
	CaptureSeconds   float64  `json:"capture_seconds"`
	CreatedBy        string   `json:"created_by"`
}

// Paths are the files a capture named name writes into outDir.
type Paths struct {
	ImageDir, Torrent, Info, Manifest string
}

// PathsFor lays out an image named name in outDir.
func PathsFor(outDir, name string) Paths {
	return Paths{
		ImageDir: filepath.Join(outDir, name),
		Torrent:  filepath.Join(outDir, name+".torrent"),
		Info:     filepath.Join(outDir, name+".torrent.info"),
		Manifest: filepath.Join(outDir, name+".json"),
	}
}

// RefusedError is a capture refused before partclone ran: a bad name, an
// image already there, a mounted source, a missing program.
type RefusedError struct{ Err error }

func (e *RefusedError) Error() string { return e.Err.Error() }
func (e *RefusedError) Unwrap() error { return e.Err }

func refused(err error) error { return &RefusedError{Err: err} }

// CheckName refuses names that are not one plain path component:
// info.name becomes a directory name on every client.
func CheckName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("image name %q: give it a plain name such as sda1", name)
	case strings.ContainsAny(name, "/\\\x00"):
		return fmt.Errorf("image name %q must not contain a slash", name)
	case strings.HasPrefix(name, "."):
		return fmt.Errorf("image name %q must not start with a dot", name)
	}
	return nil
}

// TorrentFromInfo turns a partclone description into an image torrent,
// reusing its piece hashes: nothing is read or hashed again. The extents
// become files <name>/<offset as 32 hex digits> in the order listed, with
// partclone's 16 MiB pieces.
func TorrentFromInfo(info *partclone.Info, name string, trackers []string) (*metainfo.MetaInfo, *torrentfile.TorrentSummary, error) {
	if err := CheckName(name); err != nil {
		return nil, nil, err
	}
	if err := info.Check(); err != nil {
		return nil, nil, err
	}
	if len(info.Extents) == 0 {
		return nil, nil, fmt.Errorf("%s lists no extents: nothing to make a torrent of", partclone.InfoFileName)
	}
	exts := make([]torrentfile.Extent, len(info.Extents))
	for i, e := range info.Extents {
		exts[i] = torrentfile.Extent{Offset: e.Offset, Length: e.Length}
	}
	mi, err := engine.BuildFromExtents(name, partclone.InfoPieceLength, exts, info.Hashes, trackers)
	if err != nil {
		return nil, nil, err
	}
	sum, l, err := torrentfile.Summarize(mi)
	if err != nil {
		return nil, nil, err
	}
	if l.NumPieces != len(info.Hashes) || l.Total != info.TotalLength() {
		return nil, nil, fmt.Errorf("%d sha1 hashes for %d pieces (%d bytes): %s does not match its extents", len(info.Hashes), l.NumPieces, l.Total, partclone.InfoFileName)
	}
	return mi, sum, nil
}

// Options describe one capture.
type Options struct {
	Source      string
	OutDir      string
	Name        string // default: Source's base name
	FSType      string // default: detected
	TorrentOnly bool
	Trackers    []string
	Logger      *slog.Logger
	// PieceLength is the torrent's piece size. 0 (or partclone's 16 MiB)
	// reuses partclone's hashes and reads nothing again; any other size
	// reads the extent files once more and hashes them (not in
	// torrent-only mode). Smaller pieces start a room sooner: a client
	// passes a piece on only once it holds all of it (docs/benchmarks.md).
	PieceLength int64
	// HashProgress, when set, follows that second read (Percent of the
	// bytes, their rate, the time left).
	HashProgress func(partclone.Progress)
}

// CheckPieceLength refuses piece sizes a capture cannot make: a power of
// two from 256 KiB to 64 MiB, or 0 for partclone's own.
func CheckPieceLength(n int64) error {
	if n == 0 || n >= 256<<10 && n <= 64<<20 && n&(n-1) == 0 {
		return nil
	}
	return fmt.Errorf("piece size %d bytes: give a power of two from 256 KiB to 64 MiB", n)
}

// Result is a finished capture.
type Result struct {
	Manifest *Manifest
	Paths    Paths
	// SeedFrom is what to serve the image from: the image directory, or
	// the source device in torrent-only mode.
	SeedFrom string
	// ImageDir is the extent directory, "" in torrent-only mode.
	ImageDir string
	Started  time.Time
}

// Capture runs partclone on o.Source and writes the image, torrent and
// manifest into o.OutDir. A capture that does not finish leaves nothing
// behind: files appear whole (temporary file and rename), the manifest
// last, so a manifest means a complete capture.
func Capture(ctx context.Context, o Options, progress func(partclone.Progress)) (_ *Result, err error) {
	start := time.Now()
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Name == "" {
		o.Name = filepath.Base(filepath.Clean(o.Source))
	}
	p, imageDirExisted, fstype, err := preflight(o)
	if err != nil {
		return nil, err
	}
	version, verr := partclone.Version()
	if verr != nil {
		log.Warn("partclone version unknown", "err", verr)
	}

	if _, err := os.Stat(o.OutDir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
			return nil, refused(fmt.Errorf("output directory: %w", err))
		}
		// A capture that does not finish leaves no OUTDIR it made.
		defer func() {
			if err != nil {
				os.Remove(o.OutDir)
			}
		}()
	}
	// partclone writes into work; in torrent-only mode that is a hidden
	// scratch directory, removed at the end.
	work := p.ImageDir
	if o.TorrentOnly {
		work, err = os.MkdirTemp(o.OutDir, "."+o.Name+".capture-")
		if err != nil {
			return nil, fmt.Errorf("output directory: %w", err)
		}
		defer os.RemoveAll(work)
	}
	defer func() {
		if err != nil && !o.TorrentOnly {
			removeImageDir(p.ImageDir, imageDirExisted)
		}
	}()

	log.Info("capturing", "source", o.Source, "fs", fstype, "out", o.OutDir, "name", o.Name, "torrent_only", o.TorrentOnly)
	res, err := partclone.Capture(ctx, partclone.CaptureOptions{
		Source: o.Source, FSType: fstype, OutDir: work, TorrentOnly: o.TorrentOnly,
	}, progress)
	if err != nil {
		var me *partclone.MountedError
		if errors.As(err, &me) {
			return nil, refused(err)
		}
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	infoBytes, err := os.ReadFile(res.InfoPath)
	if err != nil {
		return nil, err
	}
	mi, sum, err := imageTorrent(ctx, res, work, o, log)
	if err != nil {
		return nil, err
	}
	var tb bytes.Buffer
	if err := mi.Write(&tb); err != nil {
		return nil, err
	}
	m := partitionManifest(o, res, sum, p, version, start)
	r := &Result{Manifest: m, Paths: p, SeedFrom: p.ImageDir, ImageDir: p.ImageDir, Started: start}
	if o.TorrentOnly {
		m.Mode, m.ImageDir, m.SeedFrom = ModeTorrentOnly, "", o.Source
		r.SeedFrom, r.ImageDir = o.Source, ""
	}
	mj, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	mj = append(mj, '\n')
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := writeAll([]namedBytes{{p.Info, infoBytes}, {p.Torrent, tb.Bytes()}, {p.Manifest, mj}}); err != nil {
		return nil, err
	}
	if !o.TorrentOnly {
		// The image directory holds exactly the torrent's files.
		if err := os.Remove(res.InfoPath); err != nil {
			log.Warn("could not remove partclone's torrent.info from the image directory", "err", err)
		}
	}
	log.Info("captured", "source", o.Source, "torrent", p.Torrent, "infohash", sum.InfoHash, "pieces", sum.Pieces, "bytes", sum.TotalBytes)
	return r, nil
}

// imageTorrent is the torrent of what partclone captured into work:
// partclone's own hashes, or the extents hashed again in o.PieceLength.
func imageTorrent(ctx context.Context, res *partclone.Result, work string, o Options, log *slog.Logger) (*metainfo.MetaInfo, *torrentfile.TorrentSummary, error) {
	mi, sum, err := TorrentFromInfo(res.Info, o.Name, o.Trackers)
	if err != nil {
		return nil, nil, fmt.Errorf("converting %s: %w", res.InfoPath, err)
	}
	if o.PieceLength == 0 || o.PieceLength == partclone.InfoPieceLength {
		return mi, sum, nil
	}
	return rehash(ctx, work, o, sum, log)
}

// rehash makes the torrent of the extent files in dir again in pieces of
// o.PieceLength; want is partclone's, whose files and sizes it must keep.
func rehash(ctx context.Context, dir string, o Options, want *torrentfile.TorrentSummary, log *slog.Logger) (*metainfo.MetaInfo, *torrentfile.TorrentSummary, error) {
	log.Info("hashing the extents again", "piece_length", o.PieceLength, "bytes", want.TotalBytes)
	mi, err := engine.CreateTorrent(ctx, dir, engine.CreateOptions{
		Name: o.Name, PieceLength: o.PieceLength, Trackers: o.Trackers, Progress: hashProgress(o.HashProgress),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("hashing the extents in pieces of %d bytes: %w", o.PieceLength, err)
	}
	sum, _, err := torrentfile.Summarize(mi)
	if err != nil {
		return nil, nil, err
	}
	if sum.TotalBytes != want.TotalBytes || sum.Extents != want.Extents {
		return nil, nil, fmt.Errorf("the extent files hold %d bytes in %d files, partclone listed %d in %d", sum.TotalBytes, sum.Extents, want.TotalBytes, want.Extents)
	}
	return mi, sum, nil
}

// hashProgress turns the hashing's byte counts into progress reports
// from its first one on; nil stays nil.
func hashProgress(report func(partclone.Progress)) func(done, total int64) {
	if report == nil {
		return nil
	}
	var start time.Time
	return func(done, total int64) {
		if start.IsZero() {
			start = time.Now()
		}
		p := partclone.Progress{Percent: 100, Elapsed: time.Since(start), Done: done == total}
		if total > 0 {
			p.Percent = 100 * float64(done) / float64(total)
		}
		if s := p.Elapsed.Seconds(); s > 0 && done > 0 {
			p.BytesPerSec = float64(done) / s
			p.Remaining = time.Duration(float64(total-done) / p.BytesPerSec * float64(time.Second))
		}
		report(p)
	}
}

// partitionManifest is the manifest of a partition image that partclone
// captured (res) and ezio made a torrent of (sum).
func partitionManifest(o Options, res *partclone.Result, sum *torrentfile.TorrentSummary, p Paths, version string, start time.Time) *Manifest {
	devSize, _ := engine.SizeOf(o.Source)
	return &Manifest{
		Name: o.Name, Mode: ModeImage, SourceDevice: o.Source, Filesystem: res.FSType,
		Program: res.Program, Fallback: res.Fallback, PartcloneVersion: version,
		BlockSize: res.Info.BlockSize, BlocksTotal: res.Info.BlocksTotal, DeviceSize: devSize, FilesystemSize: res.Info.DeviceSize(),
		UsedBytes: sum.TotalBytes, Extents: sum.Extents, Pieces: sum.Pieces, PieceLength: sum.PieceLength,
		InfoHash: sum.InfoHash, Torrent: filepath.Base(p.Torrent), TorrentInfo: filepath.Base(p.Info),
		ImageDir: filepath.Base(p.ImageDir), SeedFrom: filepath.Base(p.ImageDir), Trackers: sum.Trackers,
		Date: start.Format(time.RFC3339), CaptureSeconds: res.Elapsed.Seconds(), CreatedBy: "ezio " + engine.Version,
	}
}

// removeImageDir takes back the image directory of a capture that did
// not finish: its contents when it was there (empty) before, else all.
func removeImageDir(dir string, existed bool) {
	if !existed {
		os.RemoveAll(dir)
		return
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}

// preflight refuses a capture before anything is created: a bad name,
// a missing source, an output that is not a directory, an image of that
// name already there, a filesystem without a partclone program (naming
// its package). It returns where the image goes, whether its (empty)
// image directory already existed, and the filesystem type.
func preflight(o Options) (p Paths, imageDirExisted bool, fstype string, err error) {
	if err := CheckName(o.Name); err != nil {
		return p, false, "", refused(err)
	}
	if err := CheckPieceLength(o.PieceLength); err != nil {
		return p, false, "", refused(err)
	}
	if o.TorrentOnly && o.PieceLength != 0 && o.PieceLength != partclone.InfoPieceLength {
		return p, false, "", refused(fmt.Errorf("a torrent-only capture keeps partclone's %d MiB pieces: its hashes are all it has", partclone.InfoPieceLength>>20))
	}
	if _, err := os.Stat(o.Source); err != nil {
		return p, false, "", refused(fmt.Errorf("source %s: %w", o.Source, err))
	}
	if st, err := os.Stat(o.OutDir); err == nil && !st.IsDir() {
		return p, false, "", refused(fmt.Errorf("%s is not a directory", o.OutDir))
	}
	p = PathsFor(o.OutDir, o.Name)
	for _, f := range []string{p.Torrent, p.Info, p.Manifest} {
		if _, err := os.Lstat(f); err == nil {
			return p, false, "", refused(fmt.Errorf("%s already exists: an image named %s is in %s; choose another name or output directory, or remove it", f, o.Name, o.OutDir))
		}
	}
	if entries, err := os.ReadDir(p.ImageDir); err == nil {
		if len(entries) > 0 {
			return p, false, "", refused(fmt.Errorf("%s already holds files (%s...); choose another name or output directory, or remove it", p.ImageDir, entries[0].Name()))
		}
		imageDirExisted = true
	} else if _, statErr := os.Lstat(p.ImageDir); statErr == nil {
		return p, false, "", refused(fmt.Errorf("%s exists and is not a directory", p.ImageDir))
	}
	// Choose the program first, so that a missing one is a refusal that
	// names the package, before anything is created.
	fstype = o.FSType
	if fstype == "" {
		if fstype, err = partclone.DetectFS(o.Source); err != nil {
			return p, false, "", refused(err)
		}
	}
	if _, _, err := partclone.ProgramFor(fstype); err != nil {
		return p, false, "", refused(err)
	}
	return p, imageDirExisted, fstype, nil
}

// namedBytes is a file's path and its whole content.
type namedBytes struct {
	path string
	data []byte
}

// writeAll writes each file atomically, in order; on a failure it
// removes the ones it wrote, so an image's files appear all or none.
func writeAll(files []namedBytes) error {
	var written []string
	for _, f := range files {
		if err := WriteFileAtomic(f.path, f.data); err != nil {
			for _, w := range written {
				os.Remove(w)
			}
			return err
		}
		written = append(written, f.path)
	}
	return nil
}

// WriteFileAtomic writes data to a temporary file beside path, flushes it
// and renames it into place: path is either absent or whole.
func WriteFileAtomic(path string, data []byte) error {
	return atomicfile.Write(path, data, 0o644)
}
