package server

import (
	"bytes"
	"encoding/json"
	"ezio/disks/disktest"
	"ezio/engine/torrentfile/torrentfiletest"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// evilName is an image name that tries HTML, script and terminal control.
const evilName = "<script>alert(1)</script><img src=x onerror=alert(2)>\x1b[31mred\x1b]0;title\x07"

func evilServer(t *testing.T) *Server {
	t.Helper()
	s, err := NewServer("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.AddImage(torrentfiletest.Fake(t, evilName, 3, 1<<20), 6881); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStatusPageEscapesNames(t *testing.T) {
	s := evilServer(t)
	resp, body := disktest.HTTPGet(t, s.BaseURL()+"/")
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("content type %q", ct)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	page := string(body)
	for _, bad := range []string{"<script>alert", "<img", "\x1b", "\x07"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page contains %q raw", bad)
		}
	}
	for _, want := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;\\x1b[31mred\\x1b]0;title\\x07", "no clients yet"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	// No resource from elsewhere: the only script is the server's own.
	for _, ext := range []string{"http://", "https://", "//"} {
		if strings.Contains(strings.ReplaceAll(page, "ezio deploy http://", ""), "src=\""+ext) || strings.Contains(page, "href=\""+ext) {
			t.Errorf("the page loads something from %s", ext)
		}
	}
	_, b := disktest.HTTPGet(t, s.BaseURL()+"/status.json")
	var st Status
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Images) != 1 || st.Images[0].Name != evilName || st.Images[0].Health != "not checked" || st.Summary != "no clients yet" {
		t.Errorf("status.json %+v", st)
	}
	if bytes.ContainsAny(b, "\x1b\x07") {
		t.Error("status.json carries raw control characters")
	}
}

func TestStatusHealth(t *testing.T) {
	s := newServer(discardLog())
	mi := torrentfiletest.Fake(t, "sda1", 3, 1<<20)
	s.AddImage(mi, 6881)
	s.SetExpect(3)
	bad := []BadPieceInfo{{Piece: 2, Offset: 2 << 20, Length: 1 << 20, Reason: "read error"}}
	s.SetHealth(mi.HashInfoBytes(), func() []BadPieceInfo { return bad })
	st := s.Status("h")
	if im := st.Images[0]; im.Health != "1 bad piece" || len(im.BadPieces) != 1 || im.BadPieces[0].Piece != 2 {
		t.Errorf("health %+v", im)
	}
	if st.Summary != "0 of 3 clients done" || st.Images[0].URL != "http://h/images/sda1" {
		t.Errorf("summary %q url %q", st.Summary, st.Images[0].URL)
	}
	bad = nil
	if h := s.Status("h").Images[0].Health; h != "ok" {
		t.Errorf("health %q with no bad piece", h)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.RemoteAddr = "127.0.0.1:1"
	s.Handler().ServeHTTP(rec, req)
	if !strings.Contains(rec.Body.String(), "0 of 3 clients done") {
		t.Errorf("page lacks the summary: %s", rec.Body.String())
	}
}

func TestStatusPageInBrowserEscapes(t *testing.T) {
	s := evilServer(t)
	dom := disktest.BrowserDOM(t, s.BaseURL()+"/")
	if !strings.Contains(dom, `data-live="1"`) {
		t.Errorf("status.js did not render the page from /status.json:\n%s", dom)
	}
	if strings.Contains(dom, "<img") || strings.Contains(dom, "<script>alert") || strings.ContainsAny(dom, "\x1b\x07") {
		t.Errorf("the name became markup or raw control characters in the browser:\n%s", dom)
	}
	want := `&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;\x1b[31mred\x1b]0;title\x07`
	if !strings.Contains(dom, want) {
		t.Errorf("the browser does not show the name as text %q:\n%s", want, dom)
	}
}
