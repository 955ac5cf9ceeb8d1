// Package format turns engine numbers into the short strings shown on
// progress lines and in the wizard.
package format

import (
	"ezio/disks"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// Bytes is a size in binary units, the same everywhere ezio prints one
// (the dashboard, ezio disks, refusals): "900 B", "1.5 GiB", "512 MiB".
func Bytes(n int64) string { return disks.HumanBytes(n) }

// Rate is bytes per second in decimal megabytes, as network people read
// it, plus Mbit/s: "11.9 MB/s".
func Rate(bps float64) string {
	switch {
	case bps < 0 || math.IsNaN(bps):
		return "-"
	case bps >= 1e9:
		return fmt.Sprintf("%.2f GB/s", bps/1e9)
	case bps >= 1e6:
		return fmt.Sprintf("%.1f MB/s", bps/1e6)
	case bps >= 1e3:
		return fmt.Sprintf("%.0f kB/s", bps/1e3)
	}
	return fmt.Sprintf("%.0f B/s", bps)
}

// Duration is a compact clock: "42s", "3m07s", "1h02m".
func Duration(d time.Duration) string {
	if d < 0 {
		return "--"
	}
	s := int64(d.Round(time.Second) / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	}
	return fmt.Sprintf("%dh%02dm", s/3600, (s%3600)/60)
}

// ETA is Duration, or "--" while unknown.
func ETA(d time.Duration) string {
	if d < 0 {
		return "--"
	}
	return Duration(d)
}

// Percent of done over total, with one decimal, never 100.0 before the end.
func Percent(done, total int64) string {
	if total <= 0 {
		return "0.0%"
	}
	p := float64(done) * 100 / float64(total)
	if done < total && p > 99.9 {
		p = 99.9
	}
	return fmt.Sprintf("%.1f%%", p)
}

// Name shows a name that came from outside (a torrent's name, a file name,
// a disk label) as data: control characters, escape sequences and invalid
// UTF-8 are written as \xNN or \u{NNNN}, so a crafted name can never clear
// the screen or fake a line.
func Name(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r >= 0x80 && r < 0xa0, r == 0x2028, r == 0x2029, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
			// C1 controls, line separators, bidirectional overrides.
			fmt.Fprintf(&b, `\u{%04x}`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}
