package cli

// Tests of `ezio capture` and `ezio torrent from-partclone` that drive the
// real command tree in-process, with real partclone on real loop devices:
// capture, seed, deploy into a blank device, fsck and compare every file.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"ezio/disks/disktest"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"ezio/partclone"
)

// capSkipOrFail skips a test that cannot run here, except in CI (CI=true),
// where a missing prerequisite is a failure.
func capSkipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	disktest.SkipOrFail(t, format, args...)
}

// capNeed skips (or, in CI, fails) unless the named programs are on PATH;
// each entry is "program:debian-package". root adds the need for root and
// loop devices.
func capNeed(t *testing.T, root bool, tools ...string) {
	t.Helper()
	if root {
		if os.Geteuid() != 0 {
			capSkipOrFail(t, "needs root for loop devices")
		}
		tools = append([]string{"losetup:mount", "mount:mount", "blkid:util-linux", "partclone.dd:partclone"}, tools...)
	}
	for _, tool := range tools {
		prog, pkg, _ := strings.Cut(tool, ":")
		if _, err := exec.LookPath(prog); err != nil {
			capSkipOrFail(t, "needs %s: apt-get install %s", prog, pkg)
		}
	}
}

// refPython is Debian's interpreter, the one python3-libtorrent imports
// under (the python3 on PATH may be another).
const refPython = "/usr/bin/python3"

func capNeedLibtorrent(t *testing.T) {
	t.Helper()
	if out, err := exec.Command(refPython, "-c", "import libtorrent").CombinedOutput(); err != nil {
		capSkipOrFail(t, "needs %s with libtorrent: apt-get install python3-libtorrent (%v: %s)", refPython, err, bytes.TrimSpace(out))
	}
}

// capMount mounts dev on a new directory; it is unmounted when the test
// ends (before the loop device is detached), or earlier by the returned
// function.
func capMount(t *testing.T, dev string, opts ...string) (string, func()) {
	t.Helper()
	mnt := t.TempDir()
	disktest.Run(t, "mount", append(opts, dev, mnt)...)
	var once sync.Once
	umount := func() {
		once.Do(func() {
			if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
				t.Errorf("umount %s: %v %s", mnt, err, out)
			}
		})
	}
	t.Cleanup(umount)
	return mnt, umount
}

func capRandom(seed uint64, n int64) io.Reader {
	var s [32]byte
	s[0], s[1] = byte(seed), 0xe2
	return io.LimitReader(rand.NewChaCha8(s), n)
}

// capSampleFiles writes the files to put on a test filesystem into a new
// directory: random data for several 16 MiB pieces, and text. With flat,
// all are at the top level.
func capSampleFiles(t *testing.T, flat bool, sizes ...int64) (dir string, sums map[string]string) {
	t.Helper()
	dir = t.TempDir()
	sums = map[string]string{}
	for i, size := range sizes {
		rel := fmt.Sprintf("file%d.bin", i)
		if i%2 == 1 && !flat {
			rel = "sub/" + rel
		}
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(capRandom(uint64(i+1), size))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		sums[rel] = capSum(data)
	}
	text := bytes.Repeat([]byte("ezio capture test\n"), 5000)
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), text, 0o644); err != nil {
		t.Fatal(err)
	}
	sums["notes.txt"] = capSum(text)
	return dir, sums
}

func capSum(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// capTreeSums hashes every regular file under dir, by slash path.
func capTreeSums(t *testing.T, dir string, skip ...string) map[string]string {
	t.Helper()
	sums := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if slices.Contains(skip, rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sums[filepath.ToSlash(rel)] = capSum(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sums
}

// capDevSum hashes a whole device or file.
func capDevSum(t *testing.T, path string) string {
	t.Helper()
	sum := disktest.Sum(t, path)
	return hex.EncodeToString(sum[:])
}

func capDevSize(t *testing.T, dev string) int64 {
	t.Helper()
	f, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// capBuffer is a bytes.Buffer safe for a command writing while the test
// reads. onWrite, if set, sees every write.
type capBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	onWrite func([]byte)
}

func (b *capBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.onWrite != nil {
		b.onWrite(p)
	}
	return b.b.Write(p)
}

func (b *capBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// capExec runs ezio's command tree in-process the way Main does and
// returns the exit status Main would give, with the error.
func capExec(ctx context.Context, t *testing.T, stdout, stderr io.Writer, args ...string) (int, error) {
	a := &App{Stdin: strings.NewReader(""), Stdout: stdout, Stderr: stderr}
	root := NewRoot(a)
	root.SetArgs(append(args, "--log-file", filepath.Join(t.TempDir(), "ezio.log")))
	err := root.ExecuteContext(ctx)
	if a.logCloser != nil {
		a.logCloser.Close()
	}
	return ExitCode(ctx, err), err
}

// capCLI runs one command to its end (bounded) and returns its output.
func capCLI(t *testing.T, args ...string) (code int, stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var out, errb capBuffer
	code, err = capExec(ctx, t, &out, &errb, args...)
	return code, out.String(), errb.String(), err
}

// capJSONLines decodes JSON-lines output.
func capJSONLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("output line %q is not JSON: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	return lines
}

// capSeed runs `ezio seed TORRENT SOURCE` on loopback with free ports
// until the test ends, and returns the URL of the torrent it serves.
func capSeed(t *testing.T, torrent, source string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb capBuffer
	done := make(chan int, 1)
	go func() {
		code, err := capExec(ctx, t, &out, &errb, "seed", torrent, source,
			"--tracker-listen", "127.0.0.1:0", "--listen", "127.0.0.1:0")
		if err != nil && ctx.Err() == nil {
			fmt.Fprintf(&errb, "\nseed: %v\n", err)
		}
		done <- code
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("seeder ended with status %d: %s", code, errb.String())
			}
		case <-time.After(30 * time.Second):
			t.Errorf("seeder did not stop within 30s")
		}
	})
	re := regexp.MustCompile(`clients: ezio deploy (\S+) TARGET`)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := re.FindStringSubmatch(errb.String()); m != nil {
			return m[1]
		}
		select {
		case code := <-done:
			done <- code
			t.Fatalf("seeder exited with status %d: %s", code, errb.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("seeder gave no URL within 30s: %s", errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// capDeploy runs `ezio deploy URL TARGET --yes --json` and checks that it
// reports success.
func capDeploy(t *testing.T, url, target string) {
	t.Helper()
	start := time.Now()
	code, out, stderr, err := capCLI(t, "deploy", url, target, "--yes", "--json", "--listen", "127.0.0.1:0")
	if code != 0 {
		t.Fatalf("deploy %s %s: status %d, %v\nstdout: %s\nstderr: %s", url, target, code, err, capTail(out), stderr)
	}
	lines := capJSONLines(t, out)
	if len(lines) == 0 || lines[len(lines)-1]["type"] != "result" || lines[len(lines)-1]["result"] != "ok" {
		t.Fatalf("deploy output does not end in an ok result: %s", capTail(out))
	}
	t.Logf("deployed into %s in %s", target, time.Since(start).Round(time.Millisecond))
}

func capTail(s string) string {
	if len(s) > 3000 {
		return "..." + s[len(s)-3000:]
	}
	return s
}

// captured is what one `ezio capture --json` made.
type captured struct {
	out, name string
	result    map[string]any
	manifest  CaptureManifest
	mi        *metainfo.MetaInfo
	info      *partclone.Info
	torrent   string // OUT/<name>.torrent
	infoPath  string // OUT/<name>.torrent.info
	imageDir  string // OUT/<name>
}

// capCapture runs `ezio capture SOURCE OUT --json [extra...]` and checks
// everything it promises: the progress lines and result object, the
// layout, the manifest, and that the torrent is partclone's torrent.info
// converted.
func capCapture(t *testing.T, dev, out, name string, extra ...string) *captured {
	t.Helper()
	args := append([]string{"capture", dev, out, "--json"}, extra...)
	if name != "" {
		args = append(args, "--name", name)
	} else {
		name = filepath.Base(dev)
	}
	code, stdout, stderr, err := capCLI(t, args...)
	if code != 0 {
		t.Fatalf("ezio %s: status %d, %v\n%s\n%s", strings.Join(args, " "), code, err, stdout, stderr)
	}
	torrentOnly := slices.Contains(extra, "--torrent-only")
	c := &captured{
		out: out, name: name,
		torrent:  filepath.Join(out, name+".torrent"),
		infoPath: filepath.Join(out, name+".torrent.info"),
		imageDir: filepath.Join(out, name),
	}

	// JSON lines: progress of the capturing phase, then one ok result.
	lines := capJSONLines(t, stdout)
	if len(lines) < 2 {
		t.Fatalf("want progress lines and a result, got %q", stdout)
	}
	for _, l := range lines[:len(lines)-1] {
		if l["type"] != "progress" || l["phase"] != "capturing" {
			t.Errorf("not a capturing progress line: %v", l)
		}
		for _, k := range []string{"percent", "bytes_per_sec", "elapsed_seconds", "remaining_seconds"} {
			if _, ok := l[k].(float64); !ok {
				t.Errorf("progress line lacks %s: %v", k, l)
			}
		}
	}
	if p := lines[len(lines)-2]["percent"]; p != 100.0 {
		t.Errorf("last progress at %v%%, want 100", p)
	}
	c.result = lines[len(lines)-1]
	if c.result["type"] != "result" || c.result["result"] != "ok" {
		t.Fatalf("final line is not an ok result: %v", c.result)
	}
	if c.result["torrent"] != c.torrent || c.result["manifest"] != filepath.Join(out, name+".json") {
		t.Errorf("result names %v and %v", c.result["torrent"], c.result["manifest"])
	}

	// Layout: the torrent, partclone's torrent.info, the manifest, and in
	// image mode the extent directory; nothing else (no scratch left).
	want := []string{name + ".json", name + ".torrent", name + ".torrent.info"}
	if !torrentOnly {
		want = append(want, name)
	}
	slices.Sort(want)
	if got := disktest.DirNames(t, out); !slices.Equal(got, want) {
		t.Errorf("%s holds %v, want %v", out, got, want)
	}

	c.info = capParseInfo(t, c.infoPath)
	if err := c.info.Check(); err != nil {
		t.Fatal(err)
	}
	if len(c.info.Hashes) < 2 {
		t.Errorf("only %d pieces: too small to test a swarm", len(c.info.Hashes))
	}
	if !torrentOnly {
		// Exactly one file per extent, equal to the device's bytes there.
		var names []string
		for _, e := range c.info.Extents {
			names = append(names, partclone.ExtentFileName(e.Offset))
		}
		if got := disktest.DirNames(t, c.imageDir); !slices.Equal(got, names) {
			t.Errorf("image dir holds %v, want the extent files %v", got, names)
		}
		if bad, err := partclone.VerifyDir(context.Background(), c.info, c.imageDir, nil); err != nil || len(bad) > 0 {
			t.Errorf("image dir does not verify: %v %v", bad, err)
		}
	}

	// The torrent: partclone's extents and hashes, unchanged, 16 MiB pieces.
	c.mi, err = metainfo.LoadFromFile(c.torrent)
	if err != nil {
		t.Fatal(err)
	}
	ti, err := c.mi.UnmarshalInfo()
	if err != nil {
		t.Fatal(err)
	}
	if ti.Name != name || ti.PieceLength != 16<<20 || len(ti.Files) != len(c.info.Extents) {
		t.Fatalf("torrent: name %q, piece length %d, %d files; want %q, 16 MiB, %d", ti.Name, ti.PieceLength, len(ti.Files), name, len(c.info.Extents))
	}
	for i, e := range c.info.Extents {
		if p := ti.Files[i].Path; len(p) != 1 || p[0] != partclone.ExtentFileName(e.Offset) || ti.Files[i].Length != e.Length {
			t.Errorf("torrent file %d is %v (%d bytes), want %s (%d)", i, p, ti.Files[i].Length, partclone.ExtentFileName(e.Offset), e.Length)
		}
	}
	var hashes []byte
	for _, h := range c.info.Hashes {
		hashes = append(hashes, h[:]...)
	}
	if !bytes.Equal(ti.Pieces, hashes) {
		t.Error("torrent piece hashes are not partclone's sha1: lines")
	}
	ih := c.mi.HashInfoBytes().HexString()
	if c.result["infohash"] != ih {
		t.Errorf("result infohash %v, torrent's %s", c.result["infohash"], ih)
	}

	// The manifest.
	data, err := os.ReadFile(filepath.Join(out, name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c.manifest); err != nil {
		t.Fatalf("manifest: %v\n%s", err, data)
	}
	m := c.manifest
	wantMode, wantImageDir, wantSeed := ModeImage, name, name
	if torrentOnly {
		wantMode, wantImageDir, wantSeed = ModeTorrentOnly, "", dev
	}
	if m.Name != name || m.Mode != wantMode || m.ImageDir != wantImageDir || m.SeedFrom != wantSeed || m.SourceDevice != dev {
		t.Errorf("manifest name %q mode %q image_dir %q seed_from %q source %q", m.Name, m.Mode, m.ImageDir, m.SeedFrom, m.SourceDevice)
	}
	if m.InfoHash != ih || m.Pieces != len(c.info.Hashes) || m.Extents != len(c.info.Extents) || m.UsedBytes != c.info.TotalLength() ||
		m.BlockSize != c.info.BlockSize || m.BlocksTotal != c.info.BlocksTotal || m.FilesystemSize != c.info.DeviceSize() || m.PieceLength != 16<<20 {
		t.Errorf("manifest numbers disagree with torrent.info and the torrent: %+v", m)
	}
	if m.DeviceSize != capDevSize(t, dev) {
		t.Errorf("manifest device size %d, device has %d", m.DeviceSize, capDevSize(t, dev))
	}
	if m.Torrent != name+".torrent" || m.TorrentInfo != name+".torrent.info" {
		t.Errorf("manifest files %q %q", m.Torrent, m.TorrentInfo)
	}
	if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(m.PartcloneVersion) {
		t.Errorf("manifest partclone version %q", m.PartcloneVersion)
	}
	if d, err := time.Parse(time.RFC3339, m.Date); err != nil || time.Since(d) > time.Hour || time.Since(d) < -time.Minute {
		t.Errorf("manifest date %q: %v", m.Date, err)
	}
	t.Logf("%s: %s via %s (fallback %v): %d extents, %d bytes used of %d, %d pieces, infohash %s",
		name, m.Filesystem, m.Program, m.Fallback, m.Extents, m.UsedBytes, m.DeviceSize, m.Pieces, m.InfoHash)

	// The reference conversion, and `ezio torrent from-partclone` (with
	// --verify in image mode), make the same info dictionary.
	capCheckReference(t, c.infoPath, name, c.mi.InfoBytes)
	conv := filepath.Join(t.TempDir(), name+".torrent")
	fp := []string{"torrent", "from-partclone", c.infoPath, "-o", conv, "--name", name}
	if !torrentOnly {
		fp = append(fp, "--verify", c.imageDir)
	}
	if code, stdout, stderr, err := capCLI(t, fp...); code != 0 {
		t.Fatalf("ezio %s: status %d, %v\n%s%s", strings.Join(fp, " "), code, err, stdout, stderr)
	}
	mi2, err := metainfo.LoadFromFile(conv)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mi2.InfoBytes, c.mi.InfoBytes) {
		t.Error("from-partclone made another info dictionary than capture")
	}
	return c
}

// capReference converts torrent.info with python3-libtorrent and returns
// the bencoded info dictionary and its infohash.
func capReference(t *testing.T, infoPath, name string) ([]byte, string) {
	t.Helper()
	capNeedLibtorrent(t)
	out := filepath.Join(t.TempDir(), "ref.info")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, refPython, filepath.Join("..", "..", "testdata", "capture", "ref_torrent.py"), infoPath, name, out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("ref_torrent.py %s: %v\n%s", infoPath, err, stderr.Bytes())
	}
	var res struct {
		InfoHash string `json:"infohash"`
	}
	if err := json.Unmarshal(stdout, &res); err != nil {
		t.Fatalf("ref_torrent.py printed %q: %v", stdout, err)
	}
	info, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return info, res.InfoHash
}

// capCheckReference insists that ours is byte for byte the info
// dictionary libtorrent builds from the same torrent.info.
func capCheckReference(t *testing.T, infoPath, name string, ours []byte) {
	t.Helper()
	ref, refHash := capReference(t, infoPath, name)
	if !bytes.Equal(ours, ref) {
		t.Errorf("info dictionary differs from libtorrent's for %s:\nours: %s\nref:  %s", infoPath, capBencodeShape(ours), capBencodeShape(ref))
	}
	if h := metainfo.HashBytes(ours).HexString(); h != refHash {
		t.Errorf("infohash %s, libtorrent's %s", h, refHash)
	}
}

// capBencodeShape shows a bencoded value with the piece hashes elided,
// to see which keys differ.
func capBencodeShape(b []byte) string {
	s := string(b)
	if i := strings.Index(s, "6:pieces"); i >= 0 {
		s = s[:i+8] + "<...>"
	}
	if len(s) > 600 {
		s = s[:600] + "..."
	}
	return s
}

// A filesystem under test: how to make it and how to read its files.
type capFS struct {
	name   string
	tools  []string
	size   int64
	flat   bool // no subdirectories (ntfscp cannot make them)
	sizes  []int64
	mkfs   func(t *testing.T, dev, files string)
	files  func(t *testing.T, dev string) map[string]string // path -> sha256
	fsck   func(t *testing.T, dev string, c *captured)
	fstype string
	prog   string
	dd     bool
}

var capFilesystems = []capFS{
	{
		name: "ext4", tools: []string{"mkfs.ext4:e2fsprogs", "fsck.ext4:e2fsprogs"}, size: 96 << 20,
		sizes: []int64{20 << 20, 3<<20 + 123, 7777},
		mkfs: func(t *testing.T, dev, files string) {
			if !capHasFS("ext4") {
				capSkipOrFail(t, "the kernel has no ext4 driver (/proc/filesystems)")
			}
			// No lazy init: nothing writes to the device after mkfs.
			disktest.Run(t, "mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", dev)
			mnt, umount := capMount(t, dev, "-t", "ext4")
			disktest.Run(t, "cp", "-a", files+"/.", mnt)
			umount()
		},
		files: func(t *testing.T, dev string) map[string]string {
			mnt, umount := capMount(t, dev, "-t", "ext4", "-o", "ro,noload")
			defer umount()
			return capTreeSums(t, mnt, "lost+found")
		},
		fsck:   capFsck("fsck.ext4", "-fn"),
		fstype: "ext4", prog: "partclone.extfs",
	},
	{
		// The kernel here has no vfat driver: mtools works unmounted.
		name: "fat32", tools: []string{"mkfs.vfat:dosfstools", "fsck.vfat:dosfstools", "mcopy:mtools"}, size: 96 << 20,
		sizes: []int64{20 << 20, 3<<20 + 123, 7777},
		mkfs: func(t *testing.T, dev, files string) {
			disktest.Run(t, "mkfs.vfat", "-F", "32", dev)
			disktest.Run(t, "mcopy", "-s", "-i", dev, files+"/file0.bin", files+"/file2.bin", files+"/notes.txt", files+"/sub", "::/")
		},
		files: func(t *testing.T, dev string) map[string]string {
			dir := t.TempDir()
			disktest.Run(t, "mcopy", "-s", "-n", "-i", dev, "::/*", dir+"/")
			return capTreeSums(t, dir)
		},
		fsck:   capFsck("fsck.vfat", "-n"),
		fstype: "vfat", prog: "partclone.fat",
	},
	{
		// ntfscp and ntfscat work without a FUSE mount.
		name: "ntfs", tools: []string{"mkntfs:ntfs-3g", "ntfscp:ntfs-3g", "ntfscat:ntfs-3g", "ntfsls:ntfs-3g", "ntfsfix:ntfs-3g"}, size: 96 << 20,
		flat: true, sizes: []int64{20 << 20, 3<<20 + 123, 7777},
		mkfs: func(t *testing.T, dev, files string) {
			disktest.Run(t, "mkntfs", "-Q", "-F", "-q", dev)
			for _, n := range []string{"file0.bin", "file1.bin", "file2.bin", "notes.txt"} {
				disktest.Run(t, "ntfscp", "-q", dev, filepath.Join(files, n), n)
			}
		},
		files: func(t *testing.T, dev string) map[string]string {
			sums := map[string]string{}
			for _, n := range strings.Split(disktest.Run(t, "ntfsls", dev), "\n") {
				if n = strings.TrimSpace(n); n == "" {
					continue
				}
				data, err := exec.Command("ntfscat", dev, n).Output()
				if err != nil {
					t.Fatalf("ntfscat %s %s: %v", dev, n, err)
				}
				sums[n] = capSum(data)
			}
			return sums
		},
		fsck:   capFsckNTFS,
		fstype: "ntfs", prog: "partclone.ntfs",
	},
	{
		// cramfs: a filesystem partclone has no program for, so
		// partclone.dd copies every block of the device.
		name: "cramfs-dd", tools: []string{"mkfs.cramfs:util-linux-extra", "fsck.cramfs:util-linux-extra"}, size: 64 << 20,
		sizes: []int64{12 << 20, 9<<20 + 77, 4321},
		files: func(t *testing.T, dev string) map[string]string {
			dir := filepath.Join(t.TempDir(), "x")
			disktest.Run(t, "fsck.cramfs", "--extract="+dir, dev)
			return capTreeSums(t, dir)
		},
		fsck:   capFsck("fsck.cramfs"),
		fstype: "cramfs", prog: "partclone.dd", dd: true,
	},
}

// capFsck checks a device with a command that must succeed.
func capFsck(cmd string, args ...string) func(t *testing.T, dev string, c *captured) {
	return func(t *testing.T, dev string, c *captured) {
		t.Helper()
		disktest.Run(t, cmd, append(args, dev)...)
	}
}

// capFsckNTFS checks a deployed NTFS volume with ntfsfix -n. NTFS keeps a
// backup boot sector in the last sector of the partition, outside the
// volume size that partclone.ntfs reports (blocks_total clusters), so it
// is in no extent of torrent.info and not on the target: partclone's own
// restore leaves it out the same way. That one finding is accepted when
// the sector lies past what partclone captured; then the volume must pass
// in full once ntfsfix has rebuilt the backup from the target's own
// primary boot sector (on a copy, not on the target).
func capFsckNTFS(t *testing.T, dev string, c *captured) {
	t.Helper()
	out, err := exec.Command("ntfsfix", "-n", dev).CombinedOutput()
	if err == nil {
		return
	}
	s := string(out)
	if !strings.Contains(s, "Processing of $MFT and $MFTMirr completed successfully") ||
		!strings.Contains(s, "Checking the alternate boot sector... BAD") || strings.Count(s, "BAD") != 1 {
		t.Fatalf("ntfsfix -n %s: %v\n%s", dev, err, out)
	}
	if size := capDevSize(t, dev); c.info.DeviceSize() > size-512 {
		t.Fatalf("ntfsfix -n %s: the backup boot sector (last sector of %d bytes) was inside the captured %d bytes, yet it is bad:\n%s", dev, size, c.info.DeviceSize(), out)
	}
	t.Logf("target lacks NTFS's backup boot sector, which lies past partclone's volume size %d; checking a copy with it rebuilt", c.info.DeviceSize())
	cp := filepath.Join(t.TempDir(), "ntfs-copy.img")
	disktest.Run(t, "dd", "if="+dev, "of="+cp, "bs=1M", "status=none")
	disktest.Run(t, "ntfsfix", cp) // rewrites the backup boot sector from the primary
	disktest.Run(t, "ntfsfix", "-n", cp)
}

func capHasFS(name string) bool {
	data, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[len(f)-1] == name {
			return true
		}
	}
	return false
}

// TestCaptureDeployFilesystems is the whole path on real devices: make a
// filesystem with files, `ezio capture` it, `ezio seed` the image
// directory, `ezio deploy` into a blank device of the same size, then fsck
// the target and compare every file with the source's.
func TestCaptureDeployFilesystems(t *testing.T) {
	for _, fsys := range capFilesystems {
		t.Run(fsys.name, func(t *testing.T) {
			capNeed(t, true, append([]string{fsys.prog + ":partclone"}, fsys.tools...)...)
			files, want := capSampleFiles(t, fsys.flat, fsys.sizes...)
			var src string
			if fsys.dd {
				img := filepath.Join(t.TempDir(), "cramfs.img")
				disktest.Run(t, "mkfs.cramfs", files, img)
				if err := os.Truncate(img, fsys.size); err != nil {
					t.Fatal(err)
				}
				src = disktest.Attach(t, img)
			} else {
				src = disktest.NewLoop(t, fsys.size, nil)
				fsys.mkfs(t, src, files)
			}
			if got := fsys.files(t, src); !maps.Equal(got, want) {
				t.Fatalf("the source holds %v, want %v", got, want)
			}
			srcSum := capDevSum(t, src)

			out := filepath.Join(t.TempDir(), "images")
			c := capCapture(t, src, out, "")
			if c.manifest.Filesystem != fsys.fstype || c.manifest.Program != fsys.prog || c.manifest.Fallback != fsys.dd {
				t.Errorf("manifest says %q via %s (fallback %v); want %q via %s (%v)",
					c.manifest.Filesystem, c.manifest.Program, c.manifest.Fallback, fsys.fstype, fsys.prog, fsys.dd)
			}
			if fsys.dd && c.info.TotalLength() != fsys.size {
				t.Errorf("partclone.dd captured %d bytes of %d", c.info.TotalLength(), fsys.size)
			}

			target := disktest.NewLoop(t, fsys.size, nil)
			url := capSeed(t, c.torrent, c.imageDir)
			capDeploy(t, url, target)

			fsys.fsck(t, target, c)
			if got := fsys.files(t, target); !maps.Equal(got, want) {
				t.Errorf("the target holds %v, want %v", got, want)
			}
			if fsys.dd {
				// partclone.dd uses every byte: the target is the source.
				if capDevSum(t, target) != srcSum {
					t.Error("target differs from the source")
				}
			} else {
				capCompareExtents(t, c.info, src, target)
			}
			if capDevSum(t, src) != srcSum {
				t.Error("the source changed")
			}
		})
	}
}

// capCompareExtents checks that target holds source's bytes in every
// extent torrent.info lists.
func capCompareExtents(t *testing.T, info *partclone.Info, source, target string) {
	t.Helper()
	sf, err := os.Open(source)
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	tf, err := os.Open(target)
	if err != nil {
		t.Fatal(err)
	}
	defer tf.Close()
	for _, e := range info.Extents {
		a, b := make([]byte, e.Length), make([]byte, e.Length)
		if _, err := sf.ReadAt(a, e.Offset); err != nil {
			t.Fatal(err)
		}
		if _, err := tf.ReadAt(b, e.Offset); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("extent at %#x (%d bytes) differs between source and target", e.Offset, e.Length)
		}
	}
}

// TestCaptureTorrentOnlyDeploy: --torrent-only writes no extent files; the
// seeder serves straight from the source device, and the deployed target
// equals the source in every used block.
func TestCaptureTorrentOnlyDeploy(t *testing.T) {
	fsys := capFilesystems[0] // ext4
	capNeed(t, true, append([]string{fsys.prog + ":partclone"}, fsys.tools...)...)
	files, want := capSampleFiles(t, false, fsys.sizes...)
	src := disktest.NewLoop(t, fsys.size, nil)
	fsys.mkfs(t, src, files)
	srcSum := capDevSum(t, src)

	out := t.TempDir() // an existing, empty OUTDIR
	c := capCapture(t, src, out, "golden", "--torrent-only")
	if _, err := os.Stat(c.imageDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("torrent-only made %s: %v", c.imageDir, err)
	}
	if c.result["seed_from"] != src {
		t.Errorf("result says to seed from %v, want %s", c.result["seed_from"], src)
	}

	target := disktest.NewLoop(t, fsys.size, nil)
	url := capSeed(t, c.torrent, src)
	capDeploy(t, url, target)
	capCompareExtents(t, c.info, src, target)
	disktest.Run(t, "fsck.ext4", "-fn", target)
	if got := fsys.files(t, target); !maps.Equal(got, want) {
		t.Errorf("the target holds %v, want %v", got, want)
	}
	if capDevSum(t, src) != srcSum {
		t.Error("the source changed")
	}

	// Without --json: a plain report that says how to seed.
	code, stdout, stderr, err := capCLI(t, "capture", src, out, "--torrent-only", "--name", "again")
	if code != 0 {
		t.Fatalf("capture: %d %v %s", code, err, stderr)
	}
	if !strings.Contains(stdout, "seed it:  ezio seed "+filepath.Join(out, "again.torrent")+" "+src) {
		t.Errorf("plain output lacks the seed command:\n%s", stdout)
	}
	// The same name again is refused: nothing is overwritten.
	before := capTreeSums(t, out)
	code, _, _, err = capCLI(t, "capture", src, out, "--torrent-only", "--name", "again")
	if code != ExitRefused || !strings.Contains(fmt.Sprint(err), "already exists") {
		t.Errorf("second capture under one name: status %d, %v", code, err)
	}
	if after := capTreeSums(t, out); !maps.Equal(before, after) {
		t.Error("a refused capture changed OUTDIR")
	}
}

// TestCaptureRefusesMounted: a mounted source is refused with status 2
// and the umount hint, and nothing is written.
func TestCaptureRefusesMounted(t *testing.T) {
	capNeed(t, true, "mkfs.ext4:e2fsprogs", "partclone.extfs:partclone")
	if !capHasFS("ext4") {
		capSkipOrFail(t, "the kernel has no ext4 driver (/proc/filesystems)")
	}
	dev := disktest.NewLoop(t, 32<<20, nil)
	disktest.Run(t, "mkfs.ext4", "-q", "-F", dev)
	mnt, _ := capMount(t, dev, "-t", "ext4")

	out := filepath.Join(t.TempDir(), "images")
	code, _, _, err := capCLI(t, "capture", dev, out)
	if code != ExitRefused {
		t.Errorf("capture of a mounted device: status %d, want %d (%v)", code, ExitRefused, err)
	}
	for _, want := range []string{"mounted read-write", "unmount it first: umount " + mnt} {
		if !strings.Contains(fmt.Sprint(err), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if _, statErr := os.Stat(out); !errors.Is(statErr, os.ErrNotExist) {
		t.Errorf("OUTDIR was created: %v", statErr)
	}

	// With --json and an existing OUTDIR: a refused result, OUTDIR empty.
	out = t.TempDir()
	code, stdout, _, _ := capCLI(t, "capture", dev, out, "--json", "--torrent-only")
	lines := capJSONLines(t, stdout)
	if code != ExitRefused || len(lines) != 1 || lines[0]["result"] != "refused" || !strings.Contains(fmt.Sprint(lines[0]["error"]), "umount") {
		t.Errorf("--json capture of a mounted device: status %d, %s", code, stdout)
	}
	if got := disktest.DirNames(t, out); len(got) != 0 {
		t.Errorf("OUTDIR holds %v after a refusal", got)
	}
}

// TestCaptureCancel: a capture stopped while partclone runs (Ctrl-C)
// exits 130 and leaves no torrent, manifest, extent files or scratch.
func TestCaptureCancel(t *testing.T) {
	capNeed(t, true)
	// Zeros, no filesystem: partclone.dd has a whole GiB to copy (about
	// 8 s here), far longer than the half second before the cancel.
	dev := disktest.NewLoop(t, 1<<30, nil)
	for _, tc := range []struct {
		name     string
		existing bool
		extra    []string
	}{
		{"image-new-outdir", false, nil},
		{"image-existing-outdir", true, nil},
		{"torrent-only", true, []string{"--torrent-only"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "images")
			if tc.existing {
				if err := os.Mkdir(out, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			// Half a second after the first progress line, partclone has
			// written part of the image; then stop it, as Ctrl-C does
			// through signal.NotifyContext.
			var progress bool
			partial := make(chan []string, 1)
			stdout := &capBuffer{onWrite: func(p []byte) {
				if bytes.Contains(p, []byte(`"type":"progress"`)) && !progress {
					progress = true
					time.AfterFunc(500*time.Millisecond, func() {
						var found []string
						filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
							if err == nil && p != out {
								found = append(found, strings.TrimPrefix(p, out+"/"))
							}
							return nil
						})
						partial <- found
						cancel()
					})
				}
			}}
			var stderr capBuffer
			code, err := capExec(ctx, t, stdout, &stderr, append([]string{"capture", dev, out, "--json"}, tc.extra...)...)
			if !progress {
				t.Fatalf("no progress line before the end: %d %v %s", code, err, stdout.String())
			}
			if code != ExitInterrupted {
				t.Errorf("status %d (%v), want %d", code, err, ExitInterrupted)
			}
			select {
			case found := <-partial:
				if len(found) == 0 {
					t.Error("nothing was written before the cancel: the test proves nothing")
				}
				t.Logf("at the cancel %s held %d entries, e.g. %s", out, len(found), found[0])
			case <-time.After(5 * time.Second):
				t.Error("the cancel did not happen")
			}
			lines := capJSONLines(t, stdout.String())
			if last := lines[len(lines)-1]; last["type"] != "result" || last["result"] != "interrupted" {
				t.Errorf("last line %v, want an interrupted result", last)
			}
			if tc.existing {
				if got := disktest.DirNames(t, out); len(got) != 0 {
					t.Errorf("after cancel OUTDIR holds %v", got)
				}
			} else if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the OUTDIR capture made is still there: %v", err)
			}
		})
	}
}

// TestCaptureMissingProgram: without partclone on PATH the refusal names
// the Debian package, before anything is written.
func TestCaptureMissingProgram(t *testing.T) {
	capNeed(t, false, "blkid:util-linux", "mkfs.ext4:e2fsprogs")
	blkid, _ := exec.LookPath("blkid")
	img := filepath.Join(t.TempDir(), "fs.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 8<<20); err != nil {
		t.Fatal(err)
	}
	disktest.Run(t, "mkfs.ext4", "-q", "-F", img)
	bin := t.TempDir()
	if err := os.Symlink(blkid, filepath.Join(bin, "blkid")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)
	for _, tc := range []struct{ fs, prog string }{{"", "partclone.extfs"}, {"cramfs", "partclone.dd"}} {
		out := filepath.Join(t.TempDir(), "images")
		args := []string{"capture", img, out}
		if tc.fs != "" {
			args = append(args, "--fs", tc.fs)
		}
		code, _, _, err := capCLI(t, args...)
		if code != ExitRefused || !strings.Contains(fmt.Sprint(err), tc.prog+" is needed") || !strings.Contains(fmt.Sprint(err), "apt-get install partclone") {
			t.Errorf("capture without partclone (--fs %q): status %d, %v", tc.fs, code, err)
		}
		if _, statErr := os.Stat(out); !errors.Is(statErr, os.ErrNotExist) {
			t.Errorf("OUTDIR was created: %v", statErr)
		}
	}
}

// TestCaptureBadArgs: names that are not one path component, a missing
// source, and an OUTDIR that is a file are refused.
func TestCaptureBadArgs(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"capture", file, t.TempDir(), "--name", "a/b"},
		{"capture", file, t.TempDir(), "--name", ".."},
		{"capture", file, t.TempDir(), "--name", ".hidden"},
		{"capture", "/nonexistent/sdz1", t.TempDir()},
		{"capture", file, file},
		{"capture", file},
	} {
		if code, _, _, err := capCLI(t, args...); code != ExitRefused && !(len(args) == 2 && code == ExitFailed) {
			t.Errorf("ezio %s: status %d (%v), want %d", strings.Join(args, " "), code, err, ExitRefused)
		}
	}
}

// capFixtures are real torrent.info files written by partclone 0.3.23.
var capFixtures = []string{"ext4", "fat32", "ntfs", "dd"}

func capFixture(name string) string {
	return filepath.Join("..", "..", "testdata", "capture", name+".torrent.info")
}

// TestCaptureFromPartcloneReference: `ezio torrent from-partclone` makes
// byte for byte the info dictionary python3-libtorrent makes from the same
// torrent.info, for real partclone output of every kind; trackers go
// outside it.
func TestCaptureFromPartcloneReference(t *testing.T) {
	capNeedLibtorrent(t)
	for _, fx := range capFixtures {
		t.Run(fx, func(t *testing.T) {
			name := "sda1"
			for _, trackers := range [][]string{nil, {"http://10.0.0.1:6969/announce"}, {"http://a/announce", "http://b/announce"}} {
				out := filepath.Join(t.TempDir(), "x.torrent")
				args := []string{"torrent", "from-partclone", capFixture(fx), "-o", out, "--name", name}
				for _, tr := range trackers {
					args = append(args, "--tracker", tr)
				}
				code, stdout, stderr, err := capCLI(t, args...)
				if code != 0 {
					t.Fatalf("status %d, %v\n%s%s", code, err, stdout, stderr)
				}
				mi, err := metainfo.LoadFromFile(out)
				if err != nil {
					t.Fatal(err)
				}
				capCheckReference(t, capFixture(fx), name, mi.InfoBytes)
				var got []string
				for _, tier := range mi.UpvertedAnnounceList() {
					got = append(got, tier...)
				}
				if !slices.Equal(got, trackers) {
					t.Errorf("trackers %v, want %v", got, trackers)
				}
				if !strings.Contains(stdout, "infohash "+mi.HashInfoBytes().HexString()) {
					t.Errorf("output does not give the infohash: %s", stdout)
				}
			}
		})
	}
}

// TestCaptureFromPartcloneErrors: a garbled or truncated torrent.info is
// refused with the line at fault, and no torrent is written.
func TestCaptureFromPartcloneErrors(t *testing.T) {
	good, err := os.ReadFile(capFixture("ext4"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(strings.TrimSuffix(string(good), "\n"), "\n")
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	garbled := slices.Clone(lines)
	garbled[4] = "length: 00000000000000000000000zz01ad000\n"
	for _, tc := range []struct {
		name, text, want string
	}{
		{"garbled", strings.Join(garbled, ""), "line 5"},
		{"not-key-value", strings.Join(lines[:3], "") + "hello\n" + strings.Join(lines[3:], ""), "line 4"},
		{"no-sha1", strings.Join(lines[:len(lines)-1], ""), "0 sha1 hashes"},
		{"cut-after-offset", strings.Join(lines[:4], "") + "offset: 0000000000000000000000000000ffff\n", "line 5: offset: without a length: (file ends)"},
		{"empty", "", "no block_size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, tc.name+".torrent")
			code, _, _, err := capCLI(t, "torrent", "from-partclone", write(tc.name+".info", tc.text), "-o", out, "--name", "sda1")
			if code != ExitRefused || !strings.Contains(fmt.Sprint(err), tc.want) {
				t.Errorf("status %d, %v; want %d and %q", code, err, ExitRefused, tc.want)
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a torrent was written: %v", err)
			}
		})
	}
	for _, args := range [][]string{
		{"torrent", "from-partclone", capFixture("ext4"), "--name", "sda1"},
		{"torrent", "from-partclone", capFixture("ext4"), "-o", filepath.Join(dir, "x.torrent")},
		{"torrent", "from-partclone", capFixture("ext4"), "-o", filepath.Join(dir, "x.torrent"), "--name", "a/b"},
		{"torrent", "from-partclone", filepath.Join(dir, "missing.info"), "-o", filepath.Join(dir, "x.torrent"), "--name", "a"},
	} {
		if code, _, _, err := capCLI(t, args...); code != ExitRefused {
			t.Errorf("ezio %s: status %d (%v), want %d", strings.Join(args, " "), code, err, ExitRefused)
		}
	}
}

// TestCaptureFromPartcloneVerify: --verify re-hashes the extent files and
// names every piece that does not match (status 1, no torrent).
func TestCaptureFromPartcloneVerify(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "sda1")
	if err := os.Mkdir(img, 0o755); err != nil {
		t.Fatal(err)
	}
	// Extents of a 128 MiB device; the stream crosses piece boundaries
	// inside and between extents.
	info := &partclone.Info{BlockSize: 4096, BlocksTotal: 32768, Extents: []partclone.Extent{
		{Offset: 0, Length: 5 << 20}, {Offset: 16 << 20, Length: 20 << 20}, {Offset: 64 << 20, Length: 12<<20 + 4096},
	}}
	var stream []byte
	for i, e := range info.Extents {
		data, _ := io.ReadAll(capRandom(uint64(40+i), e.Length))
		if err := os.WriteFile(filepath.Join(img, partclone.ExtentFileName(e.Offset)), data, 0o644); err != nil {
			t.Fatal(err)
		}
		stream = append(stream, data...)
	}
	for off := 0; off < len(stream); off += 16 << 20 {
		info.Hashes = append(info.Hashes, sha1Sum(stream[off:min(off+16<<20, len(stream))]))
	}
	text, err := info.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	infoPath := filepath.Join(dir, "sda1.torrent.info")
	if err := os.WriteFile(infoPath, text, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "sda1.torrent")
	args := []string{"torrent", "from-partclone", infoPath, "-o", out, "--name", "sda1", "--verify", img}
	code, stdout, _, err := capCLI(t, args...)
	if code != 0 || !strings.Contains(stdout, "all 3 pieces match") {
		t.Fatalf("verify of a good image: status %d, %v\n%s", code, err, stdout)
	}
	if _, err := metainfo.LoadFromFile(out); err != nil {
		t.Fatal(err)
	}
	os.Remove(out)

	// One flipped byte in the second extent, 12 MiB in: stream byte 17 MiB,
	// piece 1 (made of the second and third extents). Then the third
	// extent's file goes missing: pieces 1 and 2.
	second := filepath.Join(img, partclone.ExtentFileName(16<<20))
	f, err := os.OpenFile(second, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := []byte{0}
	f.ReadAt(b, 12<<20)
	b[0] ^= 0xff
	f.WriteAt(b, 12<<20)
	f.Close()
	code, stdout, _, err = capCLI(t, args...)
	if code != ExitFailed || !strings.Contains(fmt.Sprint(err), "1 of 3 pieces") {
		t.Errorf("verify with a flipped byte: status %d, %v", code, err)
	}
	if !strings.Contains(stdout, "piece 1 does not match (extent files "+partclone.ExtentFileName(16<<20)+", "+partclone.ExtentFileName(64<<20)+")") {
		t.Errorf("output does not name piece 1 and its file:\n%s", stdout)
	}
	os.Remove(filepath.Join(img, partclone.ExtentFileName(64<<20)))
	code, stdout, _, err = capCLI(t, args...)
	if code != ExitFailed || !strings.Contains(fmt.Sprint(err), "2 of 3 pieces") || !strings.Contains(stdout, "piece 2 does not match (extent files "+partclone.ExtentFileName(64<<20)+")") {
		t.Errorf("verify with a missing file: status %d, %v\n%s", code, err, stdout)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a torrent was written despite mismatches: %v", err)
	}
}

func sha1Sum(b []byte) [20]byte { return sha1.Sum(b) }
