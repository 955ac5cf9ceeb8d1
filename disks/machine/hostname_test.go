package machine

import "testing"

func TestExpand(t *testing.T) {
	f := Facts{MAC: "52:54:00:AB:cd:01", IP: "10.0.0.7", Serial: "WD-WX11_A", Number: 12}
	for pattern, want := range map[string]string{
		"lab-{n}":         "lab-12",
		"pc-{mac}":        "pc-525400abcd01",
		"{ip}":            "10-0-0-7",
		"Room 4 {serial}": "room-4-wd-wx11-a",
	} {
		if got, err := Expand(pattern, f); err != nil || got != want {
			t.Errorf("Expand(%q) = %q, %v; want %q", pattern, got, err, want)
		}
	}
	if _, err := Expand("x-{serial}", Facts{}); err == nil {
		t.Error("a missing serial was not an error")
	}
	if _, err := CheckPattern("x-{colour}"); err == nil {
		t.Error("an unknown placeholder was accepted")
	}
}

func TestHostsWith(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1 localhost\n127.0.1.1 master.lan master\n::1 localhost\n": "127.0.0.1 localhost\n127.0.1.1\tpc\n::1 localhost\n",
		"127.0.0.1 localhost\n::1 localhost\n":                              "127.0.0.1 localhost\n127.0.1.1\tpc\n::1 localhost\n",
		"":                                                                  "127.0.0.1\tlocalhost\n127.0.1.1\tpc\n",
	} {
		if got := hostsWith(in, "pc"); got != want {
			t.Errorf("hostsWith(%q) = %q, want %q", in, got, want)
		}
	}
}
