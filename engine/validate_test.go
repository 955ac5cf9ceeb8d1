package engine

import (
	"bytes"
	"context"
	"errors"
	"ezio/disks/disktest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"

	"ezio/disks"
)

func infoWith(files []metainfo.FileInfo, pieceLength int64) *metainfo.Info {
	var total int64
	for _, f := range files {
		total += f.Length
	}
	n := (total + pieceLength - 1) / pieceLength
	return &metainfo.Info{Name: "sda1", PieceLength: pieceLength, Files: files, Pieces: make([]byte, 20*n)}
}

func fi(name string, n int64) metainfo.FileInfo {
	return metainfo.FileInfo{Path: []string{name}, Length: n}
}

func TestParseOffset(t *testing.T) {
	for in, want := range map[string]int64{
		"00000000000000000000000000001000": 0x1000,
		"0000000000001000":                 0x1000,
		"ABCDEF":                           0xabcdef,
		"0":                                0,
		"7fffffffffffffff":                 1<<63 - 1,
	} {
		got, err := ParseOffset(in)
		if err != nil || got != want {
			t.Errorf("ParseOffset(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "xyz", "0x10", "-1", "8000000000000000", "000000000000000000000000000000001", "1 2", "１"} {
		if _, err := ParseOffset(bad); err == nil {
			t.Errorf("ParseOffset(%q) accepted", bad)
		}
	}
}

func TestLayoutRejects(t *testing.T) {
	cases := map[string]struct {
		info *metainfo.Info
		want string
	}{
		"not hex":      {infoWith([]metainfo.FileInfo{fi("0000000000001000", 10), fi("zz", 10)}, 16), `file "zz"`},
		"nested path":  {infoWith([]metainfo.FileInfo{{Path: []string{"a", "1000"}, Length: 5}}, 16), "directly under"},
		"overlap":      {infoWith([]metainfo.FileInfo{fi("1000", 0x100), fi("10ff", 0x10)}, 16), "overlaps"},
		"overlap back": {infoWith([]metainfo.FileInfo{fi("2000", 0x100), fi("1000", 0x1001)}, 16), "overlaps"},
		"no files":     {&metainfo.Info{Name: "x", PieceLength: 16, Length: 100, Pieces: make([]byte, 140)}, "no extent files"},
		"zero length":  {infoWith([]metainfo.FileInfo{fi("1000", 0)}, 16), "no data"},
		"overflow":     {infoWith([]metainfo.FileInfo{fi("7ffffffffffffff0", 0x100)}, 16), "overflows"},
	}
	for name, c := range cases {
		_, err := NewLayout(c.info)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", name, err, c.want)
		}
	}
	// Piece table that does not match the length.
	info := infoWith([]metainfo.FileInfo{fi("1000", 100)}, 16)
	info.Pieces = info.Pieces[:len(info.Pieces)-20]
	if _, err := NewLayout(info); err == nil || !strings.Contains(err.Error(), "piece table") {
		t.Errorf("short piece table: %v", err)
	}
}

func TestLayoutMapsAcrossExtents(t *testing.T) {
	l, err := NewLayout(infoWith([]metainfo.FileInfo{fi("10", 5), fi("100", 3), fi("20", 8)}, 4))
	if err != nil {
		t.Fatal(err)
	}
	var got []segment
	l.mapRange(3, 7, func(s segment) bool { got = append(got, s); return true })
	want := []segment{{ext: 0, within: 3, disk: 0x13, n: 2, buf: 0}, {ext: 1, within: 0, disk: 0x100, n: 3, buf: 2}, {ext: 2, within: 0, disk: 0x20, n: 2, buf: 5}}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("segment %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if err := l.CheckFits(0x103); err != nil {
		t.Errorf("exact fit refused: %v", err)
	}
	if err := l.CheckFits(0x102); err == nil {
		t.Error("a target one byte short was accepted")
	}
}

// FuzzLayout feeds arbitrary info dictionaries: NewLayout must never panic,
// and whatever it accepts must map only inside declared extents.
func FuzzLayout(f *testing.F) {
	seed, _ := bencode.Marshal(infoWith([]metainfo.FileInfo{fi("00000000000000000000000000001000", 100), fi("2000", 50)}, 32))
	f.Add(seed)
	f.Add([]byte("d4:name4:sda112:piece lengthi16e6:pieces0:e"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var info metainfo.Info
		if err := bencode.Unmarshal(data, &info); err != nil {
			return
		}
		l, err := NewLayout(&info)
		if err != nil {
			return
		}
		for p := range min(l.NumPieces, 64) {
			off, n := l.PieceSpan(p)
			var sum int64
			l.mapRange(off, n, func(s segment) bool {
				e := l.Extents[s.ext]
				if s.disk < e.Offset || s.disk+s.n > e.End() || s.n <= 0 {
					t.Fatalf("segment %+v outside extent %+v", s, e)
				}
				sum += s.n
				return true
			})
			if sum != n {
				t.Fatalf("piece %d maps %d bytes, want %d", p, sum, n)
			}
		}
	})
}

// craft builds a torrent whose files are as given, hashes zeroed.
func craft(t *testing.T, files []metainfo.FileInfo) *metainfo.MetaInfo {
	t.Helper()
	ib, err := bencode.Marshal(infoWith(files, 16<<10))
	if err != nil {
		t.Fatal(err)
	}
	return &metainfo.MetaInfo{InfoBytes: ib, Announce: "http://127.0.0.1:1/announce"}
}

func TestDeployRefusesBadTorrentsAndLeavesTargetUntouched(t *testing.T) {
	const size = 1 << 20
	target := makeTargetFile(t, size)
	before := disktest.Sum(t, target)
	for name, mi := range map[string]*metainfo.MetaInfo{
		"not hex":      craft(t, []metainfo.FileInfo{fi("1000", 100), fi("hello", 100)}),
		"past the end": craft(t, []metainfo.FileInfo{fi("1000", 100), fi("fff00", 0x200)}),
		"overlapping":  craft(t, []metainfo.FileInfo{fi("1000", 0x200), fi("1100", 0x200)}),
		"piece mismatch": func() *metainfo.MetaInfo {
			info := infoWith([]metainfo.FileInfo{fi("1000", 100)}, 16<<10)
			info.Pieces = append(info.Pieces, make([]byte, 20)...)
			ib, _ := bencode.Marshal(info)
			return &metainfo.MetaInfo{InfoBytes: ib}
		}(),
	} {
		_, err := Deploy(context.Background(), DeployOptions{Torrent: mi, Target: target, SkipSafetyChecks: true, Tuning: Tuning{ListenAddr: "127.0.0.1:0"}})
		var ve *ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("%s: got %v, want a ValidationError", name, err)
			continue
		}
		t.Logf("%s: %v", name, err)
	}
	if disktest.Sum(t, target) != before {
		t.Fatal("a refused deploy changed the target")
	}
	if _, err := os.Stat(target + ".ezio-resume"); err == nil {
		t.Fatal("a refused deploy left a resume record")
	}
}

func TestDeployRefusesUnsafeDevices(t *testing.T) {
	requireRoot(t)
	requireTool(t, "losetup")
	mkfs := requireTool(t, "mkfs.ext4")
	im := makeImage(t, 2<<20, 2, 256<<10, 9)

	t.Run("too small", func(t *testing.T) {
		f := makeTargetFile(t, im.size/2&^4095)
		dev := disktest.Attach(t, f)
		before := disktest.Sum(t, f)
		_, err := Deploy(context.Background(), DeployOptions{Torrent: im.mi, Target: dev, Peers: []string{"127.0.0.1:1"}, Tuning: Tuning{ListenAddr: "127.0.0.1:0"}})
		// The safety check speaks first, in MiB, as everywhere.
		var re *disks.RefusedError
		if !errors.As(err, &re) || re.Kind != disks.RefusedTooSmall || !strings.Contains(err.Error(), "MiB") {
			t.Fatalf("got %v, want a too-small refusal", err)
		}
		if disktest.Sum(t, f) != before {
			t.Fatal("target changed")
		}
	})

	t.Run("mounted", func(t *testing.T) {
		f := makeTargetFile(t, 64<<20)
		dev := disktest.Attach(t, f)
		if out, err := exec.Command(mkfs, "-q", "-F", dev).CombinedOutput(); err != nil {
			t.Fatalf("mkfs: %v %s", err, out)
		}
		mnt := t.TempDir()
		if out, err := exec.Command("mount", dev, mnt).CombinedOutput(); err != nil {
			skipOrFail(t, "cannot mount ext4 here: "+string(out))
		}
		t.Cleanup(func() { exec.Command("umount", mnt).Run() })
		os.WriteFile(filepath.Join(mnt, "keep"), []byte("precious"), 0o644)
		exec.Command("sync").Run()
		before := disktest.Sum(t, f)
		_, err := Deploy(context.Background(), DeployOptions{Torrent: im.mi, Target: dev, Peers: []string{"127.0.0.1:1"}, Tuning: Tuning{ListenAddr: "127.0.0.1:0"}})
		var re *disks.RefusedError
		if !errors.As(err, &re) || !strings.Contains(err.Error(), "mounted") {
			t.Fatalf("got %v, want a mounted refusal", err)
		}
		t.Logf("refusal: %v", err)
		if disktest.Sum(t, f) != before {
			t.Fatal("target changed")
		}
		// SkipSafetyChecks never applies to block devices.
		_, err = Deploy(context.Background(), DeployOptions{Torrent: im.mi, Target: dev, SkipSafetyChecks: true, Peers: []string{"127.0.0.1:1"}, Tuning: Tuning{ListenAddr: "127.0.0.1:0"}})
		if !errors.As(err, &re) {
			t.Fatalf("SkipSafetyChecks let a mounted device through: %v", err)
		}
		got, _ := os.ReadFile(filepath.Join(mnt, "keep"))
		if !bytes.Equal(got, []byte("precious")) {
			t.Fatal("file on the mounted filesystem changed")
		}
	})
}
