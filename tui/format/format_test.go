package format

import (
	"testing"
	"time"
)

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 900: "900 B", 1536: "1.5 KiB", 512 << 20: "512 MiB", 3 << 30: "3.0 GiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestPercentNeverRoundsUpToDone(t *testing.T) {
	if got := Percent(999999, 1000000); got != "99.9%" {
		t.Errorf("got %q", got)
	}
	if got := Percent(10, 10); got != "100.0%" {
		t.Errorf("got %q", got)
	}
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{-1: "--", 42 * time.Second: "42s", 187 * time.Second: "3m07s", 3720 * time.Second: "1h02m"} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestNameEscapesControls(t *testing.T) {
	for in, want := range map[string]string{
		"sda1":                   "sda1",
		"evil\x1b[2J\rfake line": `evil\x1b[2J\x0dfake line`,
		"bad\xffutf8":            `bad\xffutf8`,
		"rtl\u202eexe":           `rtl\u{202e}exe`,
		"é ok":                   "é ok",
		`back\slash`:             `back\\slash`,
	} {
		if got := Name(in); got != want {
			t.Errorf("Name(%q) = %q, want %q", in, got, want)
		}
	}
}
