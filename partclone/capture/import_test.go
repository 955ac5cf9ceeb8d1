package capture

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestImageFileNames(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"sda1.ext4-ptcl-img.zst.aa", "sda1.ext4-ptcl-img.zst.ab", "sda2.vfat-ptcl-img.gz", "sda3.dd-ptcl-img.aa", "sda5.ntfs-ptcl-img.uncomp", "sda-pt.sf", "Info-dmi.txt"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ims, err := findImages(dir, []string{"sda1", "sda2", "sda3", "sda5"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"sda1": "ext4 zst 2", "sda2": "vfat gz 1", "sda3": "dd  1", "sda5": "ntfs uncomp 1"}
	for part, w := range want {
		im := ims[part]
		got := strings.Join([]string{im.fs, im.compression, string(rune('0' + len(im.files)))}, " ")
		if got != w {
			t.Errorf("%s: %q, want %q", part, got, w)
		}
	}
	if ims["sda1"].files[0] != "sda1.ext4-ptcl-img.zst.aa" {
		t.Errorf("pieces out of order: %v", ims["sda1"].files)
	}
	if _, err := findImages(dir, []string{"sda9"}); err == nil {
		t.Error("a listed partition without an image was accepted")
	}
}

func TestParsePairs(t *testing.T) {
	m := parsePairs(` UUID="a-b" TYPE="ext4" LABEL="my disk" PARTUUID=x`)
	if m["UUID"] != "a-b" || m["TYPE"] != "ext4" || m["LABEL"] != "my disk" || m["PARTUUID"] != "x" {
		t.Errorf("%v", m)
	}
}

// clonezillaDir writes the files of a Clonezilla image that the refusals
// look at.
func clonezillaDir(t *testing.T, extra map[string]string) string {
	dir := filepath.Join(t.TempDir(), "img")
	files := map[string]string{"disk": "sda\n", "parts": "sda1 sda2\n", "sda-pt.sf": "label: dos\nunit: sectors\n\n/dev/sda1 : start=2048, size=2048, type=83\n/dev/sda2 : start=4096, size=2048, type=8e\n"}
	for k, v := range extra {
		files[k] = v
	}
	os.MkdirAll(dir, 0o755)
	for k, v := range files {
		if err := os.WriteFile(filepath.Join(dir, k), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestImportRefusals(t *testing.T) {
	cases := []struct {
		name  string
		extra map[string]string
		words []string
	}{
		// LVM is imported now (TestDiskImportClonezillaLVM); its PV is no
		// partition image to look for, the other partitions still are.
		{"lvm", map[string]string{"lvm_vg_dev.list": "vg0 /dev/sda2 abc-uuid\n"}, []string{"lists partition sda1 but"}},
		{"encrypted", map[string]string{"ecryptfs.info": "x\n"}, []string{"encrypted", "sda1", "sda2"}},
		{"two disks", map[string]string{"disk": "sda sdb\n"}, []string{"2 disks", "sda, sdb"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := clonezillaDir(t, c.extra)
			out := t.TempDir()
			_, err := ImportClonezilla(context.Background(), ImportOptions{Source: src, OutDir: out}, nil)
			var re *RefusedError
			if !errors.As(err, &re) {
				t.Fatalf("got %v, want a refusal", err)
			}
			for _, w := range c.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("refusal does not say %q: %v", w, err)
				}
			}
			if entries, _ := os.ReadDir(out); len(entries) != 0 {
				t.Errorf("a refused import wrote %v", entries)
			}
		})
	}
	if _, err := ImportClonezilla(context.Background(), ImportOptions{Source: t.TempDir(), OutDir: t.TempDir()}, nil); err == nil || !strings.Contains(err.Error(), "not a Clonezilla disk image") {
		t.Errorf("a directory without disk: %v", err)
	}
}
