package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"ezio/disks/disktest"
	"ezio/engine/server"
	"ezio/engine/server/servertest"
	"ezio/engine/torrentfile"
)

func TestFetchImageDisk(t *testing.T) {
	ls := servertest.NewLab(t)
	im, err := FetchImage(context.Background(), ls.S.BaseURL()+"/images/lab")
	if err != nil {
		t.Fatal(err)
	}
	if im.Name != "lab" || im.Kind != server.KindDisk || len(im.Parts) != 3 {
		t.Fatalf("fetched %+v", im)
	}
	if !bytes.Equal(bytes.Join(bytes.Fields(im.Manifest), nil), bytes.Join(bytes.Fields(ls.Manifest), nil)) {
		t.Errorf("manifest %s, want %s", im.Manifest, ls.Manifest)
	}
	for i, want := range []string{ls.ESP.HashInfoBytes().HexString(), ls.Root.HashInfoBytes().HexString()} {
		p := im.Parts[i]
		if p.Torrent == nil || p.Torrent.MetaInfo.HashInfoBytes().HexString() != want {
			t.Errorf("partition %s: torrent %+v, want infohash %s", p.Name, p.Torrent, want)
		}
	}
	if p := im.Parts[2]; p.Name != "sdb3" || p.FS != "swap" || p.Torrent != nil || p.Start != 200<<20 {
		t.Errorf("swap partition %+v", p)
	}
	if len(im.Seeders) != 1 || im.Seeders[0] != "127.0.0.1:6881" {
		t.Errorf("seeders %v", im.Seeders)
	}
	// FetchTorrent is for partition images.
	var de *DiskImageError
	if _, err := FetchTorrent(context.Background(), ls.S.BaseURL()+"/images/lab"); !errors.As(err, &de) {
		t.Errorf("FetchTorrent of a disk image: %v, want a DiskImageError", err)
	}
}

func TestFetchImagePartitionByEveryURL(t *testing.T) {
	ls := servertest.NewLab(t)
	want := ls.Part.HashInfoBytes()
	for _, u := range []string{ls.S.BaseURL() + "/images/sda1", ls.S.BaseURL() + "/torrents/sda1.torrent"} {
		im, err := FetchImage(context.Background(), u)
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		if im.Kind != server.KindPartition || im.Name != "sda1" || len(im.Parts) != 1 || im.Parts[0].Torrent.MetaInfo.HashInfoBytes() != want {
			t.Errorf("%s: %+v", u, im)
		}
		ft, err := FetchTorrent(context.Background(), u)
		if err != nil || ft.MetaInfo.HashInfoBytes() != want || len(ft.Seeders) != 1 {
			t.Errorf("FetchTorrent(%s): %+v %v", u, ft, err)
		}
	}
	es, err := ListImages(context.Background(), strings.TrimPrefix(ls.S.BaseURL(), "http://"))
	if err != nil || len(es) != 2 {
		t.Fatalf("ListImages: %v %v", es, err)
	}
	if u := ImageURL(ls.S.BaseURL(), es[0]); u != ls.S.BaseURL()+"/images/lab" {
		t.Errorf("ImageURL %s", u)
	}
	if u := TorrentURL(ls.S.BaseURL(), es[1]); u != ls.S.BaseURL()+"/torrents/sda1.torrent" {
		t.Errorf("TorrentURL %s", u)
	}
	if u := TorrentURL(ls.S.BaseURL(), es[0]); u != "" {
		t.Errorf("TorrentURL of a disk image %q, want empty", u)
	}
}

// errorServer answers every request with h.
func errorServer(t *testing.T, h http.HandlerFunc) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestFetchErrorsAreTyped(t *testing.T) {
	ctx := context.Background()
	old := fetchTimeout
	fetchTimeout = 500 * time.Millisecond
	t.Cleanup(func() { fetchTimeout = old })

	var unreachable *UnreachableError
	// Nobody listens on that port.
	dead := fmt.Sprintf("http://127.0.0.1:%d", disktest.FreePort(t))
	if _, err := FetchImage(ctx, dead+"/images/lab"); !errors.As(err, &unreachable) {
		t.Errorf("connection refused: %T %v, want UnreachableError", err, err)
	}
	if _, err := ListImages(ctx, dead); !errors.As(err, &unreachable) {
		t.Errorf("ListImages, connection refused: %T %v, want UnreachableError", err, err)
	}
	// A server that accepts and never answers.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	start := time.Now()
	if _, err := FetchTorrent(ctx, "http://"+ln.Addr().String()+"/torrents/x.torrent"); !errors.As(err, &unreachable) {
		t.Errorf("silent server: %T %v, want UnreachableError", err, err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the timeout took %v", d)
	}
	// 503 is a server not ready yet.
	u := errorServer(t, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "starting", http.StatusServiceUnavailable) })
	if _, err := FetchImage(ctx, u+"/images/x"); !errors.As(err, &unreachable) {
		t.Errorf("503: %T %v, want UnreachableError", err, err)
	}

	// An interrupt is not an outage.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := FetchImage(cctx, "http://"+ln.Addr().String()+"/images/x"); !errors.Is(err, context.Canceled) || errors.As(err, &unreachable) {
		t.Errorf("cancelled: %T %v, want context.Canceled", err, err)
	}

	// 404, with a name full of terminal escapes in the server's message.
	ls := servertest.NewLab(t)
	var nf *NotFoundError
	_, err = FetchImage(ctx, ls.S.BaseURL()+"/images/%1B%5B31mred")
	if !errors.As(err, &nf) {
		t.Fatalf("404: %T %v, want NotFoundError", err, err)
	}
	if strings.ContainsRune(err.Error(), 0x1b) || !strings.Contains(nf.Message, "no image named") {
		t.Errorf("404 message %q: want the server's words without escapes", err.Error())
	}
	raw := errorServer(t, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "gone \x1b[2J\x1b]0;pwned\x07", 404) })
	if _, err := FetchImage(ctx, raw+"/images/x"); !errors.As(err, &nf) || strings.ContainsAny(err.Error(), "\x1b\x07") {
		t.Errorf("404 with raw escapes: %q", err)
	}
	if _, err := FetchTorrent(ctx, ls.S.BaseURL()+"/torrents/nope.torrent"); !errors.As(err, &nf) {
		t.Errorf("404 torrent: %T %v", err, err)
	}

	// 403 from a server that does not serve loopback.
	other := servertest.NewLab(t, server.WithAllow(server.AllowList{netip.MustParsePrefix("10.0.0.0/8")}))
	var fb *ForbiddenError
	if _, err := FetchImage(ctx, other.S.BaseURL()+"/images/lab"); !errors.As(err, &fb) {
		t.Errorf("403: %T %v, want ForbiddenError", err, err)
	}
	if _, err := ListImages(ctx, other.S.BaseURL()); !errors.As(err, &fb) {
		t.Errorf("ListImages 403: %T %v, want ForbiddenError", err, err)
	}

	// Bodies that are not what was asked for.
	var bad *BadResponseError
	for name, h := range map[string]http.HandlerFunc{
		"html page": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte("<html>router login</html>"))
		},
		"broken json": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"name": "lab", "kind": `))
		},
		"unknown kind": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"name": "lab", "kind": "tape"}`))
		},
		"500": func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) },
	} {
		if _, err := FetchImage(ctx, errorServer(t, h)+"/images/lab"); !errors.As(err, &bad) {
			t.Errorf("%s: %T %v, want BadResponseError", name, err, err)
		}
	}
	if _, err := ListImages(ctx, errorServer(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("[{")) })); !errors.As(err, &bad) {
		t.Errorf("ListImages of garbage: %T %v, want BadResponseError", err, err)
	}
}

func TestFetchTorrentTooLarge(t *testing.T) {
	ctx := context.Background()
	var bad *BadResponseError
	// Declared too large: refused before reading.
	declared := errorServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(torrentfile.MaxTorrentBytes+10))
		w.Write([]byte("d4:infod"))
	})
	_, err := FetchTorrent(ctx, declared+"/torrents/big.torrent")
	if !errors.As(err, &bad) || !strings.Contains(err.Error(), fmt.Sprintf("torrent too large (%d bytes, limit %d)", torrentfile.MaxTorrentBytes+10, torrentfile.MaxTorrentBytes)) {
		t.Errorf("declared size: %v", err)
	}
	// Streamed without a length: cut at the limit, and said so.
	streamed := errorServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-bittorrent")
		chunk := make([]byte, 1<<20)
		for range torrentfile.MaxTorrentBytes>>20 + 2 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	})
	_, err = FetchTorrent(ctx, streamed+"/torrents/big.torrent")
	if !errors.As(err, &bad) || !strings.Contains(err.Error(), "torrent too large") {
		t.Errorf("streamed body over the limit: %v", err)
	}
}

func TestTorrentURLUsesParseServer(t *testing.T) {
	e := server.ImageEntry{Torrent: "/torrents/sda1.torrent"}
	for _, base := range []string{"10.0.0.1", "10.0.0.1:6969", "http://10.0.0.1:6969/"} {
		if got := TorrentURL(base, e); got != "http://10.0.0.1:6969/torrents/sda1.torrent" {
			t.Errorf("TorrentURL(%q) = %q", base, got)
		}
	}
}
