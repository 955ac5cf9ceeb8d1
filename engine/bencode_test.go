package engine

import (
	"bytes"
	"context"
	"errors"
	"ezio/disks/disktest"
	"ezio/engine/torrentfile"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
)

// TestTorrentsFromOtherToolsStillLoad: what mktorrent, transmission-create
// and libtorrent write passes the strict reader.
func TestTorrentsFromOtherToolsStillLoad(t *testing.T) {
	im := makeImage(t, 1<<20, 3, 64<<10, 21)
	dir := t.TempDir()
	var made []string
	if p, err := exec.LookPath("mktorrent"); err == nil {
		out := filepath.Join(dir, "mk.torrent")
		if b, err := exec.Command(p, "-a", "http://10.0.0.1:6969/announce", "-o", out, im.dir).CombinedOutput(); err != nil {
			t.Fatalf("mktorrent: %v %s", err, b)
		}
		made = append(made, out)
	}
	if p, err := exec.LookPath("transmission-create"); err == nil {
		out := filepath.Join(dir, "tr.torrent")
		if b, err := exec.Command(p, "-t", "http://10.0.0.1:6969/announce", "-o", out, im.dir).CombinedOutput(); err != nil {
			t.Fatalf("transmission-create: %v %s", err, b)
		}
		made = append(made, out)
	}
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		out := filepath.Join(dir, "lt.torrent")
		script := fmt.Sprintf(`import libtorrent as lt
fs = lt.file_storage(); lt.add_files(fs, %q)
t = lt.create_torrent(fs, 65536, flags=lt.create_torrent.v1_only); t.add_tracker("http://10.0.0.1:6969/announce")
lt.set_piece_hashes(t, %q)
open(%q, "wb").write(lt.bencode(t.generate()))`, im.dir, filepath.Dir(im.dir), out)
		if b, err := exec.Command("/usr/bin/python3", "-c", script).CombinedOutput(); err == nil {
			made = append(made, out)
		} else if disktest.InCI() {
			t.Fatalf("python3-libtorrent: %v %s", err, b)
		}
	}
	if len(made) == 0 {
		disktest.SkipOrFail(t, "no other torrent maker installed (mktorrent, transmission-cli, python3-libtorrent)")
	}
	for _, p := range made {
		if _, err := loadTorrentFile(p); err != nil {
			t.Errorf("%s refused: %v", filepath.Base(p), err)
		}
	}
}

func TestOversizedTorrentBodySaysSo(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// No Content-Length: the reader must count for itself.
		w.Header().Set("Transfer-Encoding", "chunked")
		chunk := bytes.Repeat([]byte("l"), 1<<20)
		for range torrentfile.MaxTorrentBytes>>20 + 2 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	_, err := LoadTorrent(context.Background(), srv.URL+"/torrents/big.torrent")
	var tl *torrentfile.TooLargeError
	if !errors.As(err, &tl) || !strings.Contains(err.Error(), "torrent too large") {
		t.Fatalf("want a torrent-too-large error, got %v", err)
	}
}

// TestMillionExtentsWithinBudget: a fragmented filesystem's torrent (one
// million one-byte extents) is read and laid out in bounded memory.
func TestMillionExtentsWithinBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 28 MB torrent")
	}
	const n = 1_000_000
	info := metainfo.Info{Name: "sda1", PieceLength: 1 << 20}
	info.Files = make([]metainfo.FileInfo, n)
	for i := range info.Files {
		info.Files[i] = metainfo.FileInfo{Length: 1, Path: []string{torrentfile.FormatOffset(int64(i) * 4096)}}
	}
	info.Pieces = make([]byte, 20)
	ib, err := bencode.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := bencode.Marshal(metainfo.MetaInfo{InfoBytes: ib})
	info.Files = nil
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	mi, err := torrentfile.ParseTorrent(b)
	if err != nil {
		t.Fatal(err)
	}
	var mid runtime.MemStats
	runtime.ReadMemStats(&mid)
	t.Logf("parse: %d MB", (mid.TotalAlloc-before.TotalAlloc)>>20)
	sum, l, err := torrentfile.Summarize(mi)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	live := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d extents: %d MB torrent, %d MB allocated on the way, %d MB held by the torrent and its layout", sum.Extents, len(b)>>20, alloc>>20, live>>20)
	if sum.Extents != n || l.Total != n {
		t.Fatalf("summary %+v", sum)
	}
	// What stays in memory per extent must be small enough that the
	// ceiling (MaxExtents) fits in a few hundred MB: 4x this figure.
	const budget = 200 << 20
	if live > budget {
		t.Errorf("a million extents hold %d MB, over the %d MB budget", live>>20, budget>>20)
	}
	runtime.KeepAlive(mi)
	runtime.KeepAlive(l)
}
