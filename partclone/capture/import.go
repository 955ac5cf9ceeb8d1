package capture

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"ezio/disks/diskimage"
	"ezio/disks/table"
	"ezio/engine"
	"ezio/partclone"
)

// ImportOptions describe the import of a Clonezilla image directory.
type ImportOptions struct {
	Source   string // the Clonezilla image directory (what ocs-sr savedisk wrote)
	OutDir   string // the disk image goes to OutDir/Name
	Name     string // default: Source's base name
	Trackers []string
	Logger   *slog.Logger
}

// imageFileRE matches Clonezilla's partclone image names:
// <part>.<fs>-ptcl-img[.<compression>][.aa].
var imageFileRE = regexp.MustCompile(`^(.+)\.([A-Za-z0-9+]+)-ptcl-img(?:\.([a-z0-9]+))?(?:\.([a-z]{2,}))?$`)

// clonezillaImage is one partition's image files.
type clonezillaImage struct {
	fs, compression string
	files           []string // in order
	bytes           int64
}

// ImportClonezilla turns a Clonezilla disk image (ocs-sr savedisk) into
// ezio's disk image: the disk files are copied, and each partition's
// partclone image is streamed through its decompressor into partclone,
// which writes the extent files and torrent.info (as Clonezilla's
// ocs-gen-bt-slices does). Encrypted and LVM images are refused, naming the
// partition and why.
func ImportClonezilla(ctx context.Context, o ImportOptions, progress func(DiskProgress)) (_ *DiskResult, err error) {
	start := time.Now()
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	src := filepath.Clean(o.Source)
	if o.Name == "" {
		o.Name = filepath.Base(src)
	}
	if err := CheckName(o.Name); err != nil {
		return nil, refused(err)
	}
	cz, err := readClonezilla(ctx, src)
	if err != nil {
		return nil, err
	}
	defer cz.cleanup()
	dir := filepath.Join(o.OutDir, o.Name)
	if _, err := os.Lstat(dir); err == nil {
		return nil, refused(fmt.Errorf("%s already exists: choose another name or another output directory, or remove it", dir))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, refused(fmt.Errorf("output directory: %w", err))
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	m := newDiskManifest(o.Name, cz.disk, cz.t, 0)
	m.ImportedFrom = src
	swaps, err := cz.copyTableFiles(dir, m)
	if err != nil {
		return nil, err
	}
	out, volumes, err := cz.importPartitions(ctx, dir, swaps, o, progress, log)
	if err != nil {
		return nil, err
	}
	m.Partitions = append(out, volumes...)
	m.Date, m.CreatedBy = start.Format(time.RFC3339), "ezio "+engine.Version
	if err := writeManifest(dir, m); err != nil {
		return nil, err
	}
	return &DiskResult{Manifest: m, Dir: dir}, nil
}

// czImage is a Clonezilla disk image directory, read and checked.
type czImage struct {
	src, disk            string
	parts                []string         // partitions saved by partclone (PVs apart)
	pvOf                 map[string]*czVG // LVM PVs by partition name
	pt, mbr, hidden, gpt string           // its table and boot area files
	t                    *table.Table
	images               map[string]clonezillaImage
	cleanup              func()
}

// readClonezilla reads what an import needs of the image directory src
// and refuses, before anything is written, what ezio cannot import: not
// one disk, ecryptfs, a table it cannot parse, missing partition or LV
// images, a program (partclone or a decompressor) it would need.
func readClonezilla(ctx context.Context, src string) (*czImage, error) {
	cz := &czImage{src: src, cleanup: func() {}}
	read := func(name string) (string, error) {
		b, err := os.ReadFile(filepath.Join(src, name))
		return string(b), err
	}
	diskText, err := read("disk")
	if err != nil {
		return nil, refused(fmt.Errorf("%s is not a Clonezilla disk image (ocs-sr savedisk): %w", src, err))
	}
	diskNames := strings.Fields(diskText)
	if len(diskNames) != 1 {
		return nil, refused(fmt.Errorf("%s holds %d disks (%s); ezio imports an image of one disk", src, len(diskNames), strings.Join(diskNames, ", ")))
	}
	cz.disk = diskNames[0]
	partsText, _ := read("parts")
	cz.parts = strings.Fields(partsText)
	if _, err := os.Stat(filepath.Join(src, "ecryptfs.info")); err == nil {
		return nil, refused(fmt.Errorf("%s is encrypted (ecryptfs.info): every partition (%s) is inside an ecryptfs volume; decrypt it with Clonezilla first (ocs-sr restores it, then save it again without -senc)", src, strings.Join(cz.parts, ", ")))
	}
	vgs, err := readClonezillaPVs(src)
	if err != nil {
		return nil, refused(err)
	}
	cz.pvOf = map[string]*czVG{}
	for _, vg := range vgs {
		cz.pvOf[vg.Part] = vg
	}
	cz.parts = slices.DeleteFunc(cz.parts, func(p string) bool { return cz.pvOf[p] != nil })
	cz.pt, cz.mbr, cz.hidden, cz.gpt = diskimage.Files(cz.disk)
	ptText, err := read(cz.pt)
	if err != nil {
		return nil, refused(fmt.Errorf("%s has no partition table file %s: %w", src, cz.pt, err))
	}
	if cz.t, err = table.ParseDump(ptText); err != nil {
		return nil, refused(fmt.Errorf("%s: %s: %w", src, cz.pt, err))
	}
	if cz.images, err = findImages(src, cz.parts); err != nil {
		return nil, refused(err)
	}
	if len(vgs) > 0 {
		cleanup, err := prepareLVM(ctx, src, cz.t, cz.disk, vgs, cz.images)
		if err != nil {
			return nil, refused(err)
		}
		cz.cleanup = cleanup
	}
	// Every program before the first byte is written.
	for _, part := range cz.parts {
		im := cz.images[part]
		if _, err := partclone.ExtractProgram(im.fs); err != nil {
			cz.cleanup()
			return nil, refused(fmt.Errorf("partition %s: %w", part, err))
		}
		if _, err := partclone.Decompressor(im.compression); err != nil {
			cz.cleanup()
			return nil, refused(fmt.Errorf("partition %s: %w", part, err))
		}
	}
	return cz, nil
}

// copyTableFiles copies the table and boot area files into dir, records
// them and the disk's size in m, and copies each swap partition's info
// file; it returns those swap facts by partition name.
func (cz *czImage) copyTableFiles(dir string, m *diskimage.Manifest) (map[string]map[string]string, error) {
	src, t := cz.src, cz.t
	m.HiddenAfterMBR, m.GPTBackup = "", ""
	copied := []string{"disk", cz.pt, cz.mbr}
	if exists(filepath.Join(src, cz.hidden)) && t.Label == table.LabelDOS {
		m.HiddenAfterMBR = cz.hidden
		copied = append(copied, cz.hidden)
	}
	if exists(filepath.Join(src, cz.gpt)) && t.Label == table.LabelGPT {
		m.GPTBackup = cz.gpt
		copied = append(copied, cz.gpt)
	}
	for _, f := range copied {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			return nil, refused(fmt.Errorf("%s: %w", src, err))
		}
		if err := WriteFileAtomic(filepath.Join(dir, f), b); err != nil {
			return nil, err
		}
	}
	// The disk's size: the source's size is not saved by Clonezilla; its
	// last usable sector (GPT) or the end of the last partition bounds it.
	m.SizeBytes = t.End()
	if t.Label == table.LabelGPT && t.LastLBA > 0 {
		m.SizeBytes = max(m.SizeBytes, (t.LastLBA+34)*t.SectorSize)
	}
	swaps := map[string]map[string]string{}
	if entries, err := os.ReadDir(src); err == nil {
		for _, e := range entries {
			if n, ok := strings.CutPrefix(e.Name(), "swappt-"); ok && strings.HasSuffix(n, ".info") {
				swaps[strings.TrimSuffix(n, ".info")] = parseShellVars(filepath.Join(src, e.Name()))
				b, _ := os.ReadFile(filepath.Join(src, e.Name()))
				if err := WriteFileAtomic(filepath.Join(dir, e.Name()), b); err != nil {
					return nil, err
				}
			}
		}
	}
	return swaps, nil
}

// importPartitions turns each partition of the table into the manifest's
// entry: extended and swap recorded, a PV imported LV by LV, a saved
// partition extracted from its partclone image into extents; one
// Clonezilla did not save is left to the table. It returns the
// partitions and, apart, the LVs.
func (cz *czImage) importPartitions(ctx context.Context, dir string, swaps map[string]map[string]string, o ImportOptions, progress func(DiskProgress), log *slog.Logger) (out, volumes []diskimage.Partition, err error) {
	t, images := cz.t, cz.images
	blkid := parseBlkidList(filepath.Join(cz.src, "blkid.list"))
	saved := map[string]bool{}
	var total, done int64
	for _, p := range cz.parts {
		saved[p] = true
		total += images[p].bytes
	}
	index := 0
	for _, tp := range t.Partitions {
		name := table.PartitionName(cz.disk, tp.Number)
		p := diskimage.Partition{
			Number: tp.Number, Name: name, Start: tp.Start * t.SectorSize, Size: tp.Size * t.SectorSize,
			Type: tp.Type, PartUUID: tp.UUID, PartLabel: tp.Name,
		}
		if b, ok := blkid[name]; ok {
			p.Filesystem, p.UUID, p.Label = b["TYPE"], b["UUID"], b["LABEL"]
		}
		switch {
		case table.IsExtended(t.Label, tp.Type):
			p.Saved = diskimage.SavedExtended
		case swaps[name] != nil:
			p.Saved, p.Filesystem = diskimage.SavedSwap, "swap"
			p.UUID, p.Label = swaps[name]["UUID"], swaps[name]["LABEL"]
		case cz.pvOf[name] != nil:
			vols, err := importPV(ctx, cz.src, dir, &p, cz.pvOf[name], images, o, diskimage.VolumeNumbers+len(volumes), log)
			if err != nil {
				return nil, nil, fmt.Errorf("partition %s: %w", name, err)
			}
			volumes = append(volumes, vols...)
		case saved[name]:
			index++
			im := images[name]
			if p.Filesystem == "" && im.fs != "dd" {
				p.Filesystem = im.fs
			}
			log.Info("importing partition", "partition", name, "fs", im.fs, "compression", im.compression, "files", len(im.files))
			mm, err := extractOne(ctx, cz.src, dir, name, im, o.Trackers, func(pr partclone.Progress) {
				if progress != nil {
					progress(DiskProgress{Partition: name, Index: index, Count: len(cz.parts), Percent: pr.Percent,
						Overall: overall(done, im.bytes, pr.Percent, total), Progress: pr})
				}
			})
			if err != nil {
				return nil, nil, fmt.Errorf("partition %s: %w", name, err)
			}
			done += im.bytes
			fillSaved(&p, mm)
			if im.fs == "dd" {
				p.Saved = diskimage.SavedDD
			}
		default:
			// Clonezilla saved nothing of it (an unformatted partition):
			// the table recreates it, its bytes stay as the target has them.
			log.Warn("partition not in the Clonezilla image", "partition", name)
			continue
		}
		out = append(out, p)
	}
	for _, part := range cz.parts {
		if !containsName(out, part) {
			return nil, nil, refused(fmt.Errorf("%s lists partition %s, which %s does not have", filepath.Join(cz.src, "parts"), part, cz.pt))
		}
	}
	return out, volumes, nil
}

func containsName(ps []diskimage.Partition, name string) bool {
	for _, p := range ps {
		if p.Name == name {
			return true
		}
	}
	return false
}

// findImages finds each listed partition's image files.
func findImages(src string, parts []string) (map[string]clonezillaImage, error) {
	entries, err := os.ReadDir(src)
	if err != nil {
		return nil, err
	}
	out := map[string]clonezillaImage{}
	for _, e := range entries {
		m := imageFileRE.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		part, fs, comp, split := m[1], m[2], m[3], m[4]
		if comp != "" && len(comp) == 2 && split == "" && comp >= "aa" && comp <= "zz" && !knownCompression(comp) {
			comp, split = "", comp
		}
		im := out[part]
		if im.fs != "" && (im.fs != fs || im.compression != comp) {
			return nil, fmt.Errorf("partition %s has images of two kinds (%s.%s and %s.%s)", part, im.fs, im.compression, fs, comp)
		}
		im.fs, im.compression = fs, comp
		im.files = append(im.files, e.Name())
		if info, err := e.Info(); err == nil {
			im.bytes += info.Size()
		}
		out[part] = im
	}
	for _, p := range parts {
		im, ok := out[p]
		if !ok {
			if exists(filepath.Join(src, p+".dd-img")) || len(globOf(src, p+".*-img*")) > 0 {
				return nil, fmt.Errorf("partition %s is saved in an old Clonezilla format (not partclone's): save it again with a current Clonezilla", p)
			}
			return nil, fmt.Errorf("%s lists partition %s but it has no <part>.<fs>-ptcl-img file", filepath.Join(src, "parts"), p)
		}
		if ms, _ := filepath.Glob(filepath.Join(src, p+".*ecryptfs*")); len(ms) > 0 {
			return nil, fmt.Errorf("partition %s is encrypted; ezio cannot read it", p)
		}
		sort.Strings(im.files)
		out[p] = im
	}
	return out, nil
}

func knownCompression(s string) bool {
	switch s {
	case "gz", "xz", "bz2", "lz4", "zst", "lzo":
		return true
	}
	return false
}

func globOf(dir, pattern string) []string {
	ms, _ := filepath.Glob(filepath.Join(dir, pattern))
	return ms
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// extractOne streams one partition's image files through the decompressor
// into partclone, then writes the torrent and torrent.info beside the
// extent directory.
func extractOne(ctx context.Context, src, dir, name string, im clonezillaImage, trackers []string, progress func(partclone.Progress)) (*Manifest, error) {
	argv, err := partclone.Decompressor(im.compression)
	if err != nil {
		return nil, err
	}
	var readers []io.Reader
	var closers []io.Closer
	for _, f := range im.files {
		fh, err := os.Open(filepath.Join(src, f))
		if err != nil {
			return nil, err
		}
		readers = append(readers, fh)
		closers = append(closers, fh)
	}
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, wait, err := partclone.Decompress(cctx, argv, io.MultiReader(readers...))
	if err != nil {
		return nil, err
	}
	imageDir := filepath.Join(dir, name)
	res, xerr := partclone.Extract(ctx, partclone.ExtractOptions{FSType: im.fs, Input: stream, OutDir: imageDir}, progress)
	stream.Close()
	if xerr != nil {
		cancel()
	}
	werr := wait()
	if xerr != nil {
		return nil, xerr
	}
	if werr != nil {
		os.RemoveAll(imageDir)
		return nil, werr
	}
	info, err := os.ReadFile(res.InfoPath)
	if err != nil {
		return nil, err
	}
	mi, sum, err := TorrentFromInfo(res.Info, name, trackers)
	if err != nil {
		return nil, err
	}
	var tb bytes.Buffer
	if err := mi.Write(&tb); err != nil {
		return nil, err
	}
	p := PathsFor(dir, name)
	if err := WriteFileAtomic(p.Info, info); err != nil {
		return nil, err
	}
	if err := WriteFileAtomic(p.Torrent, tb.Bytes()); err != nil {
		return nil, err
	}
	if err := os.Remove(res.InfoPath); err != nil {
		return nil, err
	}
	return &Manifest{
		Name: name, Mode: ModeImage, Filesystem: im.fs, Program: res.Program, Fallback: res.Fallback,
		UsedBytes: sum.TotalBytes, Extents: sum.Extents, Pieces: sum.Pieces, PieceLength: sum.PieceLength,
		InfoHash: sum.InfoHash, Torrent: filepath.Base(p.Torrent), TorrentInfo: filepath.Base(p.Info),
		ImageDir: filepath.Base(p.ImageDir),
	}, nil
}

// parseBlkidList reads Clonezilla's blkid.list (blkid's output for the
// whole saving host) into name -> KEY -> value.
func parseBlkidList(path string) map[string]map[string]string {
	out := map[string]map[string]string{}
	f, err := os.Open(path)
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		dev, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		out[filepath.Base(strings.TrimSpace(dev))] = parsePairs(rest)
	}
	return out
}

// parsePairs reads KEY="value" pairs.
func parsePairs(s string) map[string]string {
	out := map[string]string{}
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		k, rest, ok := strings.Cut(s, "=")
		if !ok {
			break
		}
		var v string
		if strings.HasPrefix(rest, `"`) {
			if q, err := strconv.QuotedPrefix(rest); err == nil {
				v, _ = strconv.Unquote(q)
				rest = rest[len(q):]
			} else {
				v, rest, _ = strings.Cut(rest[1:], `"`)
			}
		} else {
			v, rest, _ = strings.Cut(rest, " ")
		}
		out[strings.TrimSpace(k)] = v
		s = rest
	}
	return out
}

// parseShellVars reads a file of KEY="value" lines.
func parseShellVars(path string) map[string]string {
	b, err := os.ReadFile(path)
	if err != nil {
		return map[string]string{}
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		for k, v := range parsePairs(line) {
			out[k] = v
		}
	}
	return out
}
