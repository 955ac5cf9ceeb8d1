package initramfs

import (
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Options describe a deploy environment to build.
type Options struct {
	Kernel string // "" = the newest /boot/vmlinuz-*
	Exe    string // the ezio binary that becomes /init; "" = this one
	// Root is the file system the kernel's modules, the tools and their
	// libraries are taken from ("" = /); tests point it elsewhere.
	Root string
	// Tools are the programs to include when found ("" = DefaultTools).
	Tools []string
}

// DefaultTools are what a whole-disk deploy runs (partition tables, swap,
// the file system checks) and busybox, the shell on a failure.
var DefaultTools = []string{
	"sgdisk", "sfdisk", "partx", "mkswap", "blkid", "e2fsck", "xfs_repair", "btrfs",
	"fsck.f2fs", "fsck.exfat", "fsck.vfat", "ntfsfix", "busybox",
}

// moduleDirs are the parts of a kernel's modules that drive disks and
// network cards (with what they depend on, from modules.dep).
var moduleDirs = []string{
	"kernel/drivers/ata/", "kernel/drivers/virtio/", "kernel/drivers/nvme/host/",
	"kernel/drivers/block/virtio_blk.ko", "kernel/drivers/scsi/sd_mod.ko", "kernel/drivers/scsi/virtio_scsi.ko",
	"kernel/drivers/scsi/vmw_pvscsi.ko", "kernel/drivers/net/virtio_net.ko", "kernel/drivers/net/vmxnet3/",
	"kernel/drivers/net/ethernet/intel/", "kernel/drivers/net/ethernet/realtek/", "kernel/drivers/net/ethernet/broadcom/",
	"kernel/drivers/net/ethernet/amd/",
}

// Result says what went into a build.
type Result struct {
	Kernel, Version string
	Dir             string // holds vmlinuz and initrd.gz
	Modules         []string
	Tools           []string // found and included
	Missing         []string // not on this machine
	Libraries       []string
	InitrdBytes     int64
}

// Files of a built environment.
const (
	KernelFile = "vmlinuz"
	InitrdFile = "initrd.gz"
)

// NewestKernel is the newest /boot/vmlinuz-* under root.
func NewestKernel(root string) (string, error) {
	if root == "" {
		root = "/"
	}
	all, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if len(all) == 0 {
		return "", errors.New("no kernel in /boot (install linux-image-amd64, or name a kernel image to use)")
	}
	sort.Slice(all, func(i, j int) bool { return versionLess(filepath.Base(all[i]), filepath.Base(all[j])) })
	return all[len(all)-1], nil
}

// versionLess compares version strings run by run: digits as numbers,
// the rest as text ("6.1.0-9" before "6.1.0-10").
func versionLess(a, b string) bool {
	ta, tb := versionRuns.FindAllString(a, -1), versionRuns.FindAllString(b, -1)
	for i := 0; i < len(ta) && i < len(tb); i++ {
		if ta[i] == tb[i] {
			continue
		}
		na, ea := strconv.Atoi(ta[i])
		nb, eb := strconv.Atoi(tb[i])
		if ea == nil && eb == nil {
			return na < nb
		}
		return ta[i] < tb[i]
	}
	return len(ta) < len(tb)
}

var versionRuns = regexp.MustCompile(`[0-9]+|[^0-9]+`)

// KernelVersion reads the version a bzImage announces in its setup
// header (the string at 0x200 + the 16-bit offset at 0x20E).
func KernelVersion(kernel string) (string, error) {
	if v, ok := strings.CutPrefix(filepath.Base(kernel), "vmlinuz-"); ok {
		return v, nil
	}
	f, err := os.Open(kernel)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var hdr [0x210]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil || string(hdr[0x202:0x206]) != "HdrS" {
		return "", fmt.Errorf("%s: not a bzImage kernel", kernel)
	}
	off := int64(hdr[0x20E]) | int64(hdr[0x20F])<<8
	buf := make([]byte, 128)
	if _, err := f.ReadAt(buf, off+0x200); err != nil {
		return "", err
	}
	v, _, _ := strings.Cut(string(buf), " ")
	return v, nil
}

// Build writes dir/vmlinuz and dir/initrd.gz.
func Build(o Options, dir string) (*Result, error) {
	if o.Root == "" {
		o.Root = "/"
	}
	if o.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		o.Exe = exe
	}
	if o.Tools == nil {
		o.Tools = DefaultTools
	}
	if o.Kernel == "" {
		k, err := NewestKernel(o.Root)
		if err != nil {
			return nil, err
		}
		o.Kernel = k
	}
	ver, err := KernelVersion(o.Kernel)
	if err != nil {
		return nil, err
	}
	res := &Result{Kernel: o.Kernel, Version: ver, Dir: dir}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := copyFile(o.Kernel, filepath.Join(dir, KernelFile)); err != nil {
		return nil, err
	}
	tmp := filepath.Join(dir, InitrdFile+".tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp)
	zw, _ := gzip.NewWriterLevel(f, gzip.BestSpeed)
	w := NewWriter(zw)
	err = fill(w, o, res)
	if err == nil {
		err = w.Close()
	}
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		if st, serr := f.Stat(); serr == nil {
			res.InitrdBytes = st.Size()
		}
		err = f.Close()
	} else {
		f.Close()
	}
	if err != nil {
		return nil, err
	}
	return res, os.Rename(tmp, filepath.Join(dir, InitrdFile))
}

func fill(w *Writer, o Options, res *Result) error {
	for _, d := range []string{"dev", "proc", "sys", "tmp", "run", "bin", "etc", "mnt"} {
		w.Dir(d, 0o755)
	}
	libs := map[string]bool{}
	if err := addFile(w, o.Exe, "init", 0o755); err != nil {
		return fmt.Errorf("the ezio binary: %w", err)
	}
	if err := neededLibs(o.Root, o.Exe, libs); err != nil {
		return err
	}
	for _, t := range o.Tools {
		p := lookTool(o.Root, t)
		if p == "" {
			res.Missing = append(res.Missing, t)
			continue
		}
		if err := addFile(w, p, "bin/"+t, 0o755); err != nil {
			return err
		}
		if err := neededLibs(o.Root, p, libs); err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
		res.Tools = append(res.Tools, t)
	}
	if contains(res.Tools, "busybox") {
		w.Symlink("bin/sh", "busybox")
	}
	for l := range libs {
		res.Libraries = append(res.Libraries, l)
	}
	sort.Strings(res.Libraries)
	for _, l := range res.Libraries {
		if err := addFile(w, filepath.Join(o.Root, l), l, 0o755); err != nil {
			return err
		}
	}
	mods, err := addModules(w, o.Root, res.Version)
	res.Modules = mods
	return err
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func lookTool(root, name string) string {
	for _, d := range []string{"usr/sbin", "usr/bin", "sbin", "bin"} {
		p := filepath.Join(root, d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	if root == "/" {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// addFile copies the file at src (symlinks followed) to name.
func addFile(w *Writer, src, name string, perm uint32) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	return w.File(name, perm, st.Size(), f)
}

var libDirs = []string{"lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64", "usr/lib64", "lib", "usr/lib"}

// neededLibs adds the ELF interpreter and the DT_NEEDED libraries of the
// program at p, and theirs, as paths under root ("lib/...", no root).
func neededLibs(root, p string, into map[string]bool) error {
	f, err := elf.Open(p)
	if err != nil {
		return nil // a script or not ELF: nothing to add
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			b, err := io.ReadAll(prog.Open())
			if err == nil {
				into[strings.TrimPrefix(strings.TrimRight(string(b), "\x00"), "/")] = true
			}
		}
	}
	needed, err := f.ImportedLibraries()
	if err != nil {
		return nil
	}
	for _, n := range needed {
		found := ""
		for _, d := range libDirs {
			cand := path.Join(d, n)
			if _, err := os.Stat(filepath.Join(root, cand)); err == nil {
				found = cand
				break
			}
		}
		if found == "" {
			return fmt.Errorf("%s needs %s, not found", p, n)
		}
		if into[found] {
			continue
		}
		into[found] = true
		if err := neededLibs(root, filepath.Join(root, found), into); err != nil {
			return err
		}
	}
	return nil
}

// addModules copies the disk and network modules of kernel version ver
// with everything they depend on, and modules.dep and modules.alias for
// just those.
func addModules(w *Writer, root, ver string) ([]string, error) {
	base := filepath.Join(root, "lib", "modules", ver)
	deps, err := readDeps(filepath.Join(base, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("the modules of kernel %s: %w (install its linux-image package)", ver, err)
	}
	want := map[string]bool{}
	var add func(m string)
	add = func(m string) {
		if want[m] {
			return
		}
		want[m] = true
		for _, d := range deps[m] {
			add(d)
		}
	}
	for m := range deps {
		for _, d := range moduleDirs {
			if m == d || (strings.HasSuffix(d, "/") && strings.HasPrefix(m, d)) {
				add(m)
			}
		}
	}
	var mods []string
	for m := range want {
		mods = append(mods, m)
	}
	sort.Strings(mods)
	dst := path.Join("lib/modules", ver)
	var dep strings.Builder
	for _, m := range mods {
		if err := addFile(w, filepath.Join(base, m), path.Join(dst, m), 0o644); err != nil {
			return nil, err
		}
		fmt.Fprintf(&dep, "%s: %s\n", m, strings.Join(deps[m], " "))
	}
	w.File(path.Join(dst, "modules.dep"), 0o644, int64(dep.Len()), strings.NewReader(dep.String()))
	alias, err := filterAlias(filepath.Join(base, "modules.alias"), mods)
	if err != nil {
		return nil, err
	}
	return mods, w.File(path.Join(dst, "modules.alias"), 0o644, int64(len(alias)), strings.NewReader(alias))
}

// readDeps reads modules.dep: "path: dep dep".
func readDeps(file string) (map[string][]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string][]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m, rest, ok := strings.Cut(sc.Text(), ":")
		if ok {
			out[m] = strings.Fields(rest)
		}
	}
	return out, sc.Err()
}

// ModuleName is a module's name from its path: dashes become
// underscores, as modules.alias writes it.
func ModuleName(p string) string {
	n := path.Base(p)
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		n = strings.TrimSuffix(n, ext)
	}
	return strings.ReplaceAll(strings.TrimSuffix(n, ".ko"), "-", "_")
}

func filterAlias(file string, mods []string) (string, error) {
	names := map[string]bool{}
	for _, m := range mods {
		names[ModuleName(m)] = true
	}
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var b strings.Builder
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) == 3 && fs[0] == "alias" && names[fs[2]] {
			b.WriteString(sc.Text() + "\n")
		}
	}
	return b.String(), sc.Err()
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst + ".tmp")
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(dst+".tmp", dst)
}

// CacheKey names a build by its inputs' content: the ezio binary, the
// kernel, and the tools' paths and sizes (a package upgrade changes them).
func CacheKey(o Options) (string, error) {
	h := sha256.New()
	for _, p := range []string{o.Exe, o.Kernel} {
		f, err := os.Open(p)
		if err != nil {
			return "", err
		}
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", err
		}
	}
	root := o.Root
	if root == "" {
		root = "/"
	}
	tools := o.Tools
	if tools == nil {
		tools = DefaultTools
	}
	for _, t := range tools {
		p := lookTool(root, t)
		if st, err := os.Stat(p); err == nil {
			fmt.Fprintf(h, "%s %d %d\n", p, st.Size(), st.ModTime().UnixNano())
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// Cached builds into cacheDir/KEY unless that build is there already.
func Cached(o Options, cacheDir string) (*Result, bool, error) {
	if o.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, false, err
		}
		o.Exe = exe
	}
	if o.Kernel == "" {
		k, err := NewestKernel(o.Root)
		if err != nil {
			return nil, false, err
		}
		o.Kernel = k
	}
	key, err := CacheKey(o)
	if err != nil {
		return nil, false, err
	}
	dir := filepath.Join(cacheDir, key)
	if _, err := os.Stat(filepath.Join(dir, InitrdFile)); err == nil {
		ver, _ := KernelVersion(o.Kernel)
		return &Result{Kernel: o.Kernel, Version: ver, Dir: dir}, true, nil
	}
	res, err := Build(o, dir)
	return res, false, err
}
