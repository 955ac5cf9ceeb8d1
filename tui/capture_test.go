package tui

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"ezio/disks/disktest"
	"ezio/engine"
)

func TestTrackerURLFromWhatIsTyped(t *testing.T) {
	for in, want := range map[string]string{
		"":                               "",
		"10.0.0.1":                       "http://10.0.0.1:6969/announce",
		"10.0.0.1:7000":                  "http://10.0.0.1:7000/announce",
		"http://10.0.0.1:7000/":          "http://10.0.0.1:7000/announce",
		"http://10.0.0.1:7000/announce":  "http://10.0.0.1:7000/announce",
		"http://tracker.lan:80/announce": "http://tracker.lan:80/announce",
		" 10.0.0.2:6969 ":                "http://10.0.0.2:6969/announce",
	} {
		if got, err := trackerURL(in); err != nil || got != want {
			t.Errorf("trackerURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"ftp://x/", "http://10.0.0.1:7000/torrents/a.torrent", "::"} {
		if _, err := trackerURL(bad); err == nil {
			t.Errorf("trackerURL(%q) accepted", bad)
		}
	}
	// The wizard's guess: the Serve form's address, else this machine's
	// first LAN address (pinned to 10.0.0.5 in tests), default port.
	if got := servingAddr(&ServeValues{}); got != "10.0.0.5:6969" {
		t.Errorf("servingAddr() = %q", got)
	}
	if got := servingAddr(&ServeValues{Host: "127.0.0.1", Port: "7070"}); got != "127.0.0.1:7070" {
		t.Errorf("servingAddr(127.0.0.1:7070) = %q", got)
	}
}

// The wizard's Capture of a real ext4 partition (a loop device) writes a
// torrent that names the serving machine's tracker, as
// `ezio capture --tracker` does, and the Serve form it offers serves
// from that port.
func TestCaptureTorrentNamesTheServersTracker(t *testing.T) {
	need(t, true, "partclone.extfs", "mkfs.ext4", "losetup")
	dev := disktest.NewLoop(t, 24<<20, nil)
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", dev).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	m := newApp(t, &fakeWorld{})
	m.serve.Port = "7070" // the Serve form was opened with this port
	out := filepath.Join(t.TempDir(), "out")
	drive(t, m, key1("c"))
	if m.capture.Tracker != "10.0.0.5:7070" {
		t.Fatalf("the form does not offer this machine's serving address: %q", m.capture.Tracker)
	}
	drive(t, m, keys(dev)...)
	drive(t, m, enter)
	drive(t, m, keys(out)...)
	drive(t, m, enter) // output directory
	drive(t, m, enter) // an image
	drive(t, m, keys("sdc7")...)
	drive(t, m, enter) // name
	drive(t, m, enter) // server: the guess
	// Follow the task to its end (every message, none dropped).
	ts, ok := m.Current().(*TaskScreen)
	if !ok {
		t.Fatalf("no task started:\n%s", m.View())
	}
	deadline := time.After(60 * time.Second)
	for ts.res == nil {
		msgc := make(chan tea.Msg, 1)
		go func() { msgc <- ts.wait()() }()
		select {
		case msg := <-msgc:
			m.Update(msg)
		case <-deadline:
			t.Fatalf("the capture did not end in 60 s:\n%s", m.View())
		}
	}
	if v := m.View(); !strings.Contains(v, "http://10.0.0.5:7070/announce") {
		t.Fatalf("the result does not name the tracker:\n%s", v)
	}
	mi, err := engine.LoadTorrent(bg, filepath.Join(out, "sdc7.torrent"))
	if err != nil {
		t.Fatal(err)
	}
	if mi.Announce != "http://10.0.0.5:7070/announce" {
		t.Errorf("the torrent announces to %q (list %v)", mi.Announce, mi.AnnounceList)
	}
	if sv := ts.res.serve; sv == nil || sv.Host != "10.0.0.5" || sv.Port != "7070" || sv.Torrent != filepath.Join(out, "sdc7.torrent") {
		t.Errorf("serve values after the capture: %+v", sv)
	}
	if _, err := os.Stat(filepath.Join(out, "sdc7")); err != nil {
		t.Error(err)
	}
}
