package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
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
	if err := s.AddImage(fakeTorrent(t, evilName, 3, 1<<20), 6881); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStatusPageEscapesNames(t *testing.T) {
	s := evilServer(t)
	resp, body := getBody(t, s.BaseURL()+"/")
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
	_, b := getBody(t, s.BaseURL()+"/status.json")
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
	mi := fakeTorrent(t, "sda1", 3, 1<<20)
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

// dumpDOM loads url in headless Chromium, lets its scripts run for a few
// seconds of virtual time, and returns the DOM as serialised HTML.
func dumpDOM(t *testing.T, url string) string {
	t.Helper()
	bin := requireTool(t, "chromium")
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu",
		"--user-data-dir="+dir, "--disable-background-networking", "--disable-component-update",
		"--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage",
		"--virtual-time-budget=5000", "--dump-dom", url)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	return string(out)
}

func TestStatusPageInBrowserEscapes(t *testing.T) {
	s := evilServer(t)
	dom := dumpDOM(t, s.BaseURL()+"/")
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

// TestStatusPageInBrowserDuringSwarm loads the page in Chromium while two
// clients deploy from a real seeder over loopback, and once they are done.
func TestStatusPageInBrowserDuringSwarm(t *testing.T) {
	requireTool(t, "chromium")
	im := makeImage(t, 24<<20, 4, 256<<10, 21)
	seed := startSeed(t, im, im.dir)
	// The seeder wires in the witness itself (Session.Seed); the room
	// size is what `ezio seed --expect 2` would set.
	seed.server().SetExpect(2)
	page := seed.ServerURL() + "/"

	var jobs []*Job
	var targets []string
	for range 2 {
		target := makeTargetFile(t, im.size)
		j, err := Deploy(context.Background(), DeployOptions{
			Torrent: im.mi, Target: target, Trackers: []string{seed.TrackerURL()},
			Seeders: []string{seed.PeerAddr()}, SkipSafetyChecks: true, SeedAfter: 2 * time.Second,
			// Slow enough for the browser to see the swarm at work.
			Tuning: Tuning{ListenAddr: "127.0.0.1:0", MaxDownloadRate: 3 << 20},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { j.Stop(); <-j.Done() })
		jobs = append(jobs, j)
		targets = append(targets, target)
	}
	// Wait for both clients to have announced, then look.
	deadline := time.Now().Add(60 * time.Second)
	for len(seed.Fleet()) < 2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	during := dumpDOM(t, page)
	if !strings.Contains(during, `data-live="1"`) || !strings.Contains(during, "of 2 clients done") || strings.Count(during, `<td>127.0.0.1:`) != 2 {
		t.Errorf("during the swarm the page does not show two clients:\n%s", during)
	}
	for i, j := range jobs {
		if err := waitJob(t, j, 2*time.Minute); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		checkTarget(t, im, targets[i])
	}
	// The last announces and the witness's second looks take a moment.
	var st Status
	deadline = time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if st = seed.server().Status("x"); st.Done == 2 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	after := dumpDOM(t, page)
	// The seeder confirms a completion from what its own connections saw
	// (its periodic look, and each connection's last have count as it
	// closes): both clients are done, and the browser shows it.
	st = seed.server().Status("x")
	if !strings.Contains(after, "2 of 2 clients done") || strings.Count(after, ">100%<") != 2 {
		t.Errorf("after the swarm the page does not show \"2 of 2 clients done\" and both clients at 100%%:\n%s", after)
	}
	if n := strings.Count(after, `<td class="state">done</td>`); n != 2 {
		t.Errorf("after the swarm %d clients show done, want 2:\n%s", n, after)
	}
	if st.Done != 2 {
		t.Errorf("the seeder confirmed %d clients, want 2: %+v", st.Done, st.Images[0].Fleet)
	}
}
