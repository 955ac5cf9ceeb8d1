package partclone

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"time"
)

// Progress is one progress report of a running partclone.
type Progress struct {
	Percent     float64
	Elapsed     time.Duration
	Remaining   time.Duration
	Rate        string  // as printed, e.g. "1.23GB/min"; "" when none is shown
	BytesPerSec float64 // parsed from Rate when possible, else 0
	Done        bool    // the final "Total Time:" line
}

// ParseProgress reads one line of partclone's stderr, split at carriage
// returns and newlines. partclone 0.3.23 (text mode, LC_ALL=C) prints:
//
//	Elapsed: 00:00:01, Remaining: 00:01:39, Completed:  1.00%, 0.00byte/min,
//	Elapsed: 00:00:02, Remaining: 00:00:00, Completed:100.00%, Rate:   9.44GB/min,
//	Elapsed: 00:00:01, Remaining: 00:00:00, Completed:100.00%          (bitmap pass, no rate)
//	Total Time: 00:00:02, Ave. Rate:   9.4GB/min, 100.00% completed!
//
// often after padding blanks or a cursor-up escape. Other lines, including
// the "current block: ..." detail, give false.
func ParseProgress(line string) (Progress, bool) {
	s := strings.TrimSpace(stripEscapes(line))
	switch {
	case strings.HasPrefix(s, "Elapsed:"):
		return parseElapsedLine(s)
	case strings.HasPrefix(s, "Total Time:"):
		return parseTotalLine(s)
	}
	return Progress{}, false
}

func parseElapsedLine(s string) (Progress, bool) {
	var p Progress
	var haveElapsed, havePercent bool
	for i, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		key, value, hasColon := strings.Cut(f, ":")
		value = strings.TrimSpace(value)
		switch {
		case i == 0:
			d, ok := parseClock(value)
			if !ok {
				return Progress{}, false
			}
			p.Elapsed, haveElapsed = d, true
		case hasColon && key == "Remaining":
			d, ok := parseClock(value)
			if !ok {
				return Progress{}, false
			}
			p.Remaining = d
		case hasColon && key == "Completed":
			pct, ok := parsePercent(value)
			if !ok {
				return Progress{}, false
			}
			p.Percent, havePercent = pct, true
		case hasColon && key == "Rate":
			p.Rate, p.BytesPerSec = value, parseRate(value)
		case !hasColon && strings.HasSuffix(f, "/min"):
			// 0.3.23 prints its first report's rate without the label.
			p.Rate, p.BytesPerSec = f, parseRate(f)
		case !hasColon && strings.HasPrefix(f, "Seeking"):
			// the last block is being looked for; no rate to show
		default:
			return Progress{}, false
		}
	}
	if !haveElapsed || !havePercent {
		return Progress{}, false
	}
	return p, true
}

func parseTotalLine(s string) (Progress, bool) {
	p := Progress{Done: true, Percent: 100}
	fields := strings.Split(s, ",")
	d, ok := parseClock(strings.TrimSpace(strings.TrimPrefix(fields[0], "Total Time:")))
	if !ok {
		return Progress{}, false
	}
	p.Elapsed = d
	for _, f := range fields[1:] {
		f = strings.TrimSpace(f)
		switch {
		case f == "":
		case strings.HasPrefix(f, "Ave. Rate:"):
			p.Rate = strings.TrimSpace(strings.TrimPrefix(f, "Ave. Rate:"))
			p.BytesPerSec = parseRate(p.Rate)
		case strings.HasSuffix(f, "completed!"):
		default:
			return Progress{}, false
		}
	}
	return p, true
}

// parseClock reads strftime's %H:%M:%S. partclone formats with gmtime, so
// hours wrap after a day; nothing can be done about that here.
func parseClock(s string) (time.Duration, bool) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return 0, false
	}
	var n [3]int64
	for i, part := range parts {
		if part == "" || len(part) > 6 {
			return 0, false
		}
		for j := 0; j < len(part); j++ {
			if part[j] < '0' || part[j] > '9' {
				return 0, false
			}
		}
		v, err := strconv.ParseInt(part, 10, 64)
		if err != nil {
			return 0, false
		}
		n[i] = v
	}
	if n[1] > 59 || n[2] > 60 {
		return 0, false
	}
	return time.Duration(n[0])*time.Hour + time.Duration(n[1])*time.Minute + time.Duration(n[2])*time.Second, true
}

func parsePercent(s string) (float64, bool) {
	num, ok := strings.CutSuffix(s, "%")
	if !ok {
		return 0, false
	}
	v, ok := parseUnsignedFloat(strings.TrimSpace(num))
	if !ok || v > 100 {
		return 0, false
	}
	return v, true
}

// parseUnsignedFloat accepts only what printf's %f makes: digits with at
// most one point. It keeps out NaN, Inf, signs and exponents.
func parseUnsignedFloat(s string) (float64, bool) {
	if s == "" || len(s) > 32 {
		return 0, false
	}
	dots := 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '.':
			dots++
		case s[i] < '0' || s[i] > '9':
			return 0, false
		}
	}
	if dots > 1 || s == "." {
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, false
	}
	return v, true
}

// rateUnits are partclone's decimal units per minute.
var rateUnits = []struct {
	name string
	mult float64
}{
	{"byte", 1}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
}

// parseRate turns "9.44GB/min" into bytes per second, or 0.
func parseRate(s string) float64 {
	s, ok := strings.CutSuffix(strings.TrimSpace(s), "/min")
	if !ok {
		return 0
	}
	for _, u := range rateUnits {
		if num, ok := strings.CutSuffix(s, u.name); ok {
			v, ok := parseUnsignedFloat(strings.TrimSpace(num))
			if !ok {
				return 0
			}
			return v * u.mult / 60
		}
	}
	return 0
}

// stripEscapes drops ANSI CSI sequences such as the cursor-up partclone
// writes after its block detail line.
func stripEscapes(s string) string {
	if !strings.Contains(s, "\x1b") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != 0x1b {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '[' {
			j := i + 2
			for j < len(s) && (s[j] < 0x40 || s[j] > 0x7e) {
				j++
			}
			i = j // skip the final byte too
			continue
		}
	}
	return b.String()
}

// SplitCRLF is a bufio.SplitFunc that ends a token at each '\r' or '\n', so
// that every progress update partclone redraws in place is its own token.
// Empty tokens (between "\r\n", say) are returned like any other.
func SplitCRLF(data []byte, atEOF bool) (advance int, token []byte, err error) {
	if atEOF && len(data) == 0 {
		return 0, nil, nil
	}
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF {
		return len(data), data, nil
	}
	return 0, nil, nil
}
