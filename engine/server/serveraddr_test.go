package server

import "testing"

func TestParseServer(t *testing.T) {
	ok := map[string]string{
		"10.0.0.1":                "http://10.0.0.1:6969",
		" 10.0.0.1:7000 ":         "http://10.0.0.1:7000",
		"http://10.0.0.1:7000/":   "http://10.0.0.1:7000",
		"http://10.0.0.1":         "http://10.0.0.1:6969",
		"https://seeder.lan:8443": "https://seeder.lan:8443",
		"seeder":                  "http://seeder:6969",
		"[fe80::1]:7000":          "http://[fe80::1]:7000",
		"http://[::1]/":           "http://[::1]:6969",
	}
	for in, want := range ok {
		got, err := ParseServer(in)
		if err != nil || got != want {
			t.Errorf("ParseServer(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "  ", "http://10.0.0.1:6969/torrents/sda1.torrent", "ftp://10.0.0.1", "10.0.0.1:0", "10.0.0.1:99999", "10.0.0.1:x", "10.0.0.1:", "http:///", "http://h/?a=1"} {
		if got, err := ParseServer(in); err == nil {
			t.Errorf("ParseServer(%q) = %q, want an error", in, got)
		}
	}
}

func TestIsTorrentURL(t *testing.T) {
	for in, want := range map[string]bool{
		"http://10.0.0.1:6969/torrents/sda1.torrent": true,
		"https://h/x":          true,
		"http://10.0.0.1:6969": false,
		"http://10.0.0.1/":     false,
		"10.0.0.1/x.torrent":   false,
		"sda1.torrent":         false,
	} {
		if got := IsTorrentURL(in); got != want {
			t.Errorf("IsTorrentURL(%q) = %v, want %v", in, got, want)
		}
	}
}
