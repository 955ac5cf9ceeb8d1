package disktest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// BrowserDOM loads url in headless Chromium, lets its scripts run for a
// few seconds of virtual time, and returns the DOM as serialised HTML.
// Without chromium the test is skipped, or fails in CI.
func BrowserDOM(t testing.TB, url string) string {
	t.Helper()
	Need(t, false, "chromium")
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "chromium", "--headless", "--no-sandbox", "--disable-gpu",
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
