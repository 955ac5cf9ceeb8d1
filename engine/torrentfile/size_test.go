package torrentfile

import "testing"

func TestParseSizeOneBinaryRule(t *testing.T) {
	for in, want := range map[string]int64{
		"4096": 4096, "16MiB": 16 << 20, "16M": 16 << 20, "16MB": 16 << 20, "16mb": 16 << 20,
		"1.5G": 3 << 29, "512k": 512 << 10, "20MiB/s": 20 << 20, "2TiB": 2 << 40, "0": 0, "100B": 100,
	} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "MiB", "-1M", "lots", "1e300G"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
}
