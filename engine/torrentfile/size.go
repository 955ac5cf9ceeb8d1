package torrentfile

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseSize reads a size or a rate as ezio writes them everywhere (flags,
// the wizard, the daemon): a number with an optional binary unit. K, M, G
// and T mean KiB, MiB, GiB and TiB, with or without "iB" or "B": "16MiB",
// "16M" and "16MB" are all 16,777,216 bytes (disk people think in powers
// of two; one rule is better than guessing). A trailing "/s" is allowed
// for rates. A bare number is bytes.
func ParseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSpace(strings.TrimSuffix(t, "/s"))
	mult := 1.0
	for _, u := range []struct {
		suf string
		m   float64
	}{
		{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
		{"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30}, {"tb", 1 << 40},
		{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40}, {"b", 1},
	} {
		if strings.HasSuffix(t, u.suf) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suf)), u.m
			break
		}
	}
	n, err := strconv.ParseFloat(t, 64)
	if err != nil || n < 0 || math.IsInf(n, 0) || math.IsNaN(n) || n*mult > math.MaxInt64/2 {
		return 0, fmt.Errorf("size %q: want a number with an optional unit, like 16MiB (units are binary: 1M = 1MiB)", s)
	}
	return int64(n * mult), nil
}
