// Package kmod loads kernel modules by the devices' modalias, as udev's
// coldplug does, from a modules tree with modules.dep and modules.alias.
package kmod

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// Index is one kernel's modules: their dependencies and aliases.
type Index struct {
	Dir     string              // /lib/modules/VERSION
	deps    map[string][]string // module name -> paths of its deps
	paths   map[string]string   // module name -> path under Dir
	aliases []alias
}

type alias struct{ pattern, module string }

// Open reads dir/modules.dep and dir/modules.alias.
func Open(dir string) (*Index, error) {
	ix := &Index{Dir: dir, deps: map[string][]string{}, paths: map[string]string{}}
	err := eachLine(filepath.Join(dir, "modules.dep"), func(line string) {
		m, rest, ok := strings.Cut(line, ":")
		if !ok {
			return
		}
		name := Name(m)
		ix.paths[name] = m
		ix.deps[name] = strings.Fields(rest)
	})
	if err != nil {
		return nil, err
	}
	err = eachLine(filepath.Join(dir, "modules.alias"), func(line string) {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "alias" {
			ix.aliases = append(ix.aliases, alias{f[1], f[2]})
		}
	})
	return ix, err
}

func eachLine(file string, f func(string)) error {
	fh, err := os.Open(file)
	if err != nil {
		return err
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f(sc.Text())
	}
	return sc.Err()
}

// Name is a module's name from its file path.
func Name(p string) string {
	n := path.Base(p)
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		n = strings.TrimSuffix(n, ext)
	}
	return strings.ReplaceAll(strings.TrimSuffix(n, ".ko"), "-", "_")
}

// Match is the modules whose alias patterns (shell globs) match a
// device's modalias, sorted and without repeats.
func (ix *Index) Match(modalias string) []string {
	seen := map[string]bool{}
	var out []string
	for _, a := range ix.aliases {
		if ok, _ := path.Match(a.pattern, modalias); ok && !seen[a.module] {
			if _, have := ix.paths[a.module]; have {
				seen[a.module] = true
				out = append(out, a.module)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Order is the paths to load for module name, dependencies first.
func (ix *Index) Order(name string) ([]string, error) {
	p, ok := ix.paths[name]
	if !ok {
		return nil, fmt.Errorf("module %s: not in modules.dep", name)
	}
	deps := ix.deps[name]
	// modules.dep lists every dependency, direct or not, the deepest last.
	out := make([]string, 0, len(deps)+1)
	for i := len(deps) - 1; i >= 0; i-- {
		out = append(out, deps[i])
	}
	return append(out, p), nil
}

// Modaliases walks a sysfs devices tree (/sys/devices) for modalias files.
func Modaliases(sysDevices string) []string {
	var out []string
	filepath.WalkDir(sysDevices, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		if d.Name() == "modalias" && d.Type().IsRegular() {
			if b, err := os.ReadFile(p); err == nil {
				if s := strings.TrimSpace(string(b)); s != "" {
					out = append(out, s)
				}
			}
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// Loader loads modules into the running kernel, each once.
type Loader struct {
	Ix     *Index
	loaded map[string]bool
}

// Coldplug loads the modules of every device in sysDevices, over and over
// while loading makes new devices appear (a PCI driver adds virtio
// devices, a SCSI host adds disks); it returns the modules loaded.
func (l *Loader) Coldplug(sysDevices string, rounds int) ([]string, error) {
	if l.loaded == nil {
		l.loaded = map[string]bool{}
	}
	var all []string
	var errs []error
	for r := 0; r < rounds; r++ {
		n := 0
		for _, ma := range Modaliases(sysDevices) {
			for _, m := range l.Ix.Match(ma) {
				if l.loaded[m] {
					continue
				}
				if err := l.Load(m); err != nil {
					errs = append(errs, err)
					continue
				}
				all = append(all, m)
				n++
			}
		}
		if n == 0 {
			break
		}
	}
	return all, errors.Join(errs...)
}

// Load loads module name and what it needs.
func (l *Loader) Load(name string) error {
	if l.loaded == nil {
		l.loaded = map[string]bool{}
	}
	order, err := l.Ix.Order(name)
	if err != nil {
		return err
	}
	for _, p := range order {
		n := Name(p)
		if l.loaded[n] {
			continue
		}
		if err := insmod(filepath.Join(l.Ix.Dir, p)); err != nil {
			return fmt.Errorf("loading %s: %w", n, err)
		}
		l.loaded[n] = true
	}
	return nil
}

func insmod(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	err = unix.FinitModule(int(f.Fd()), "", 0)
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	return err
}
