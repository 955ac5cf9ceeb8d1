package engine

import (
	"bytes"
	"context"
	"errors"
	"ezio/disks/disktest"
	"ezio/engine/torrentfile"
	"ezio/engine/torrentfile/torrentfiletest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"

	"ezio/disks"
)

// craft builds a torrent whose files are as given, hashes zeroed.
func craft(t *testing.T, files []metainfo.FileInfo) *metainfo.MetaInfo {
	t.Helper()
	ib, err := bencode.Marshal(torrentfiletest.Info(files, 16<<10))
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
		"not hex":      craft(t, []metainfo.FileInfo{torrentfiletest.File("1000", 100), torrentfiletest.File("hello", 100)}),
		"past the end": craft(t, []metainfo.FileInfo{torrentfiletest.File("1000", 100), torrentfiletest.File("fff00", 0x200)}),
		"overlapping":  craft(t, []metainfo.FileInfo{torrentfiletest.File("1000", 0x200), torrentfiletest.File("1100", 0x200)}),
		"piece mismatch": func() *metainfo.MetaInfo {
			info := torrentfiletest.Info([]metainfo.FileInfo{torrentfiletest.File("1000", 100)}, 16<<10)
			info.Pieces = append(info.Pieces, make([]byte, 20)...)
			ib, _ := bencode.Marshal(info)
			return &metainfo.MetaInfo{InfoBytes: ib}
		}(),
	} {
		_, err := Deploy(context.Background(), DeployOptions{Torrent: mi, Target: target, SkipSafetyChecks: true, Tuning: Tuning{ListenAddr: "127.0.0.1:0"}})
		var ve *torrentfile.ValidationError
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
	disktest.Need(t, true, "losetup")
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
			disktest.SkipOrFail(t, "cannot mount ext4 here: %s", out)
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
