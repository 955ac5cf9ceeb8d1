package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"ezio/engine"
	"ezio/engine/torrentfile"
)

// TestTorrentInfoPrintsNamesEscaped: a crafted info.name cannot clear the
// screen or fake lines on `ezio torrent info`.
func TestTorrentInfoPrintsNamesEscaped(t *testing.T) {
	evil := "sda1\x1b[2J\x1b[H\rok: all verified"
	mi, err := engine.BuildFromExtents(evil, 16384, []torrentfile.Extent{{Offset: 0, Length: 4}}, [][20]byte{{}}, []string{"http://10.0.0.1:6969/announce\x1b[31m"})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "evil.torrent")
	if err := engine.WriteTorrent(mi, p); err != nil {
		t.Fatal(err)
	}
	code, out, errOut, err := capCLI(t, "torrent", "info", p)
	if code != 0 {
		t.Fatalf("exit %d: %v %s", code, err, errOut)
	}
	if strings.ContainsAny(out, "\x1b\r") {
		t.Fatalf("control characters reached the terminal: %q", out)
	}
	if !strings.Contains(out, `sda1\x1b[2J\x1b[H\x0dok: all verified`) {
		t.Errorf("the name is not shown escaped:\n%s", out)
	}
}
