package initramfs

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// fakeRoot is a file system with a kernel, three modules (a NIC driver,
// its dependency, a sound driver) and one tool, /usr/bin/true of this
// machine with its real libraries.
func fakeRoot(t *testing.T) string {
	root := t.TempDir()
	kernel := make([]byte, 0x400)
	copy(kernel[0x202:], "HdrS")
	kernel[0x20E] = 0x00
	kernel[0x20F] = 0x01 // version at 0x100+0x200
	copy(kernel[0x300:], "9.9.9-test (builder@lab) #1")
	write(t, filepath.Join(root, "boot/vmlinuz-9.9.9-test"), kernel)
	write(t, filepath.Join(root, "boot/vmlinuz-9.9.10-test"), kernel)
	mods := filepath.Join(root, "lib/modules/9.9.10-test")
	write(t, filepath.Join(mods, "modules.dep"), []byte(
		"kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko\n"+
			"kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko\n"+
			"kernel/net/core/failover.ko:\n"+
			"kernel/sound/core/snd.ko:\n"))
	write(t, filepath.Join(mods, "modules.alias"), []byte(
		"alias virtio:d00000001v* virtio_net\nalias snd-card-* snd\nalias pci:v00001AF4d00001000sv*sd*bc*sc*i* virtio_pci\n"))
	for _, m := range []string{"kernel/drivers/net/virtio_net.ko", "kernel/drivers/net/net_failover.ko", "kernel/net/core/failover.ko", "kernel/sound/core/snd.ko"} {
		write(t, filepath.Join(mods, m), []byte("module "+m))
	}
	truePath := "/usr/bin/true"
	b, err := os.ReadFile(truePath)
	if err != nil {
		t.Skip("no /usr/bin/true to stand in for a tool")
	}
	write(t, filepath.Join(root, "usr/sbin/sgdisk"), b)
	// Libraries come from the real machine through the same paths.
	for _, d := range []string{"lib/x86_64-linux-gnu", "lib64"} {
		if _, err := os.Stat("/" + d); err == nil {
			os.MkdirAll(filepath.Dir(filepath.Join(root, d)), 0o755)
			os.Symlink("/"+d, filepath.Join(root, d))
		}
	}
	return root
}

func TestBuildListsWhatWentIn(t *testing.T) {
	root := fakeRoot(t)
	exe := filepath.Join(t.TempDir(), "ezio")
	exeBody := []byte("#!not elf: the ezio binary stand-in\n")
	write(t, exe, exeBody)
	out := t.TempDir()
	res, err := Build(Options{Root: root, Exe: exe, Tools: []string{"sgdisk", "no-such-tool"}}, out)
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != "9.9.10-test" {
		t.Errorf("kernel %s %s, want the newest 9.9.10-test", res.Kernel, res.Version)
	}
	if len(res.Missing) != 1 || res.Missing[0] != "no-such-tool" {
		t.Errorf("missing tools %v", res.Missing)
	}
	f, err := os.Open(filepath.Join(out, InitrdFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := List(zr)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Entry{}
	for _, e := range entries {
		byName[e.Name] = e
	}
	want := []string{
		"init", "bin/sgdisk", "dev", "proc", "sys",
		"lib/modules/9.9.10-test/kernel/drivers/net/virtio_net.ko",
		"lib/modules/9.9.10-test/kernel/drivers/net/net_failover.ko",
		"lib/modules/9.9.10-test/kernel/net/core/failover.ko",
		"lib/modules/9.9.10-test/modules.dep", "lib/modules/9.9.10-test/modules.alias",
		"lib/x86_64-linux-gnu/libc.so.6",
	}
	for _, w := range want {
		if _, ok := byName[w]; !ok {
			t.Errorf("initramfs lacks %s", w)
		}
	}
	if e := byName["init"]; e.Mode&0o111 == 0 || e.Size != int64(len(exeBody)) {
		t.Errorf("/init: mode %o size %d", e.Mode, e.Size)
	}
	if _, ok := byName["lib/modules/9.9.10-test/kernel/sound/core/snd.ko"]; ok {
		t.Error("a sound module went into the deploy environment")
	}
	hasInterp := false
	for n := range byName {
		if strings.HasPrefix(n, "lib64/ld-linux") || strings.Contains(n, "/ld-linux") {
			hasInterp = true
		}
	}
	if !hasInterp {
		t.Error("the tools' ELF interpreter is missing")
	}
	k, _ := os.ReadFile(filepath.Join(out, KernelFile))
	if !bytes.Contains(k, []byte("9.9.9-test (builder")) {
		t.Error("vmlinuz is not the kernel")
	}
}

func TestCachedBuildsOnce(t *testing.T) {
	root := fakeRoot(t)
	exe := filepath.Join(t.TempDir(), "ezio")
	write(t, exe, []byte("one"))
	cache := t.TempDir()
	o := Options{Root: root, Exe: exe, Tools: []string{"sgdisk"}}
	r1, hit, err := Cached(o, cache)
	if err != nil || hit {
		t.Fatalf("first build: hit %v err %v", hit, err)
	}
	r2, hit, err := Cached(o, cache)
	if err != nil || !hit || r2.Dir != r1.Dir {
		t.Fatalf("second build: hit %v dir %s vs %s err %v", hit, r2.Dir, r1.Dir, err)
	}
	write(t, exe, []byte("two"))
	r3, hit, err := Cached(o, cache)
	if err != nil || hit || r3.Dir == r1.Dir {
		t.Fatalf("a changed binary reused the old build: hit %v err %v", hit, err)
	}
}

func TestCpioRoundTripSymlink(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b)
	w.File("a/b/c.txt", 0o644, 3, strings.NewReader("abc"))
	w.Symlink("bin/sh", "busybox")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	es, err := List(&b)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, e := range es {
		got = append(got, e.Name+">"+e.Link)
	}
	if strings.Join(got, ",") != "a>,a/b>,a/b/c.txt>,bin>,bin/sh>busybox" {
		t.Fatalf("entries %v", got)
	}
}

func TestVersionLess(t *testing.T) {
	if !versionLess("vmlinuz-6.1.0-9-amd64", "vmlinuz-6.1.0-10-amd64") || versionLess("vmlinuz-6.10.0", "vmlinuz-6.9.0") {
		t.Fatal("kernel versions compared as text")
	}
}
