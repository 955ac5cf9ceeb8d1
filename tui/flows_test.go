package tui

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ezio/engine"
	"ezio/engine/torrentfile"
)

// TestBuildFlowWritesTorrent walks Build a torrent with real data: an
// extent directory becomes a valid image torrent beside it.
func TestBuildFlowWritesTorrent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sda7")
	os.Mkdir(dir, 0o755)
	os.WriteFile(filepath.Join(dir, torrentfile.FormatOffset(4096)), bytes.Repeat([]byte{7}, 300000), 0o644)
	os.WriteFile(filepath.Join(dir, torrentfile.FormatOffset(1<<20)), bytes.Repeat([]byte{9}, 5000), 0o644)

	m := newApp(t, &fakeWorld{})
	drive(t, m, key1("b"))
	drive(t, m, keys(dir)...)
	drive(t, m, enter) // data
	drive(t, m, enter) // torrent path: default
	drive(t, m, enter) // name: default
	drive(t, m, enter) // tracker: none
	out := filepath.Join(filepath.Dir(dir), "sda7.torrent")
	settle(t, m, 30*time.Second, "the build's result on screen", func() bool { return strings.Contains(m.View(), "wrote") })
	mi, err := engine.LoadTorrent(context.Background(), out)
	if err != nil {
		t.Fatalf("the built torrent: %v", err)
	}
	sum, _, err := torrentfile.Summarize(mi)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Name != "sda7" || sum.Extents != 2 || sum.TotalBytes != 305000 {
		t.Errorf("built torrent: %+v", sum)
	}
	// Esc returns to the menu, and the values are still there next time.
	drive(t, m, esc)
	drive(t, m, key1("b"))
	if m.build.Source != dir {
		t.Errorf("Build forgot its data path: %q", m.build.Source)
	}
}

// TestCaptureFlowShowsRefusal: a capture that cannot start says what
// happened and what to do, on its own screen.
func TestCaptureFlowShowsRefusal(t *testing.T) {
	m := newApp(t, &fakeWorld{})
	drive(t, m, key1("c"))
	drive(t, m, keys("/dev/ezio-no-such-disk")...)
	drive(t, m, enter)
	drive(t, m, keys(filepath.Join(t.TempDir(), "out"))...)
	drive(t, m, enter) // output dir
	drive(t, m, enter) // mode: image
	drive(t, m, enter) // name: default
	drive(t, m, enter) // server: this machine
	v := m.View()
	if !strings.Contains(v, "ezio-no-such-disk") {
		t.Fatalf("the refusal does not name the source:\n%s", v)
	}
	if strings.Contains(v, "goroutine") || strings.Contains(v, "panic") {
		t.Fatalf("a stack trace on screen:\n%s", v)
	}
}

// TestDisksScreen lists what the machine has, with the reason a device may
// not be written, and goes back with Esc.
func TestDisksScreen(t *testing.T) {
	m := newApp(t, &fakeWorld{})
	drive(t, m, key1("i"))
	v := m.View()
	for _, want := range []string{"sdb", "fakeloop", "mounted"} {
		if !strings.Contains(v, want) {
			t.Errorf("disks screen lacks %q:\n%s", want, v)
		}
	}
	drive(t, m, esc)
	if !strings.Contains(m.View(), "Deploy this machine") {
		t.Errorf("Esc did not return to the menu:\n%s", m.View())
	}
}
