package partclone

import (
	"bufio"
	"bytes"
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseProgress(t *testing.T) {
	tests := []struct {
		line string
		want Progress
		ok   bool
	}{
		{"Elapsed: 00:00:02, Remaining: 00:00:00, Completed: 100.00%, Rate: 399.94MB/min,",
			Progress{Percent: 100, Elapsed: 2 * time.Second, Rate: "399.94MB/min", BytesPerSec: 399.94e6 / 60}, true},
		{"         Elapsed: 01:02:03, Remaining: 10:00:00, Completed:  1.50%, Rate:   9.44GB/min,",
			Progress{Percent: 1.5, Elapsed: time.Hour + 2*time.Minute + 3*time.Second, Remaining: 10 * time.Hour, Rate: "9.44GB/min", BytesPerSec: 9.44e9 / 60}, true},
		{"Elapsed: 00:00:01, Remaining: 00:01:39, Completed: 1.00%, 0.00byte/min,",
			Progress{Percent: 1, Elapsed: time.Second, Remaining: 99 * time.Second, Rate: "0.00byte/min"}, true},
		{"Elapsed: 00:00:01, Remaining: 00:00:00, Completed: 100.00%",
			Progress{Percent: 100, Elapsed: time.Second}, true},
		{"Elapsed: 00:00:05, Remaining: 00:00:01, Completed: 99.99%, Seeking...,",
			Progress{Percent: 99.99, Elapsed: 5 * time.Second, Remaining: time.Second}, true},
		{"\x1b[A Elapsed: 00:00:01, Remaining: 00:00:00, Completed: 50.00%, Rate: 12.00KB/min,",
			Progress{Percent: 50, Elapsed: time.Second, Rate: "12.00KB/min", BytesPerSec: 200}, true},
		{"Total Time: 00:00:02, Ave. Rate: 399.9MB/min, 100.00% completed!",
			Progress{Percent: 100, Elapsed: 2 * time.Second, Rate: "399.9MB/min", BytesPerSec: 399.9e6 / 60, Done: true}, true},
		{"Total Time: 00:00:01, 100.00% completed!",
			Progress{Percent: 100, Elapsed: time.Second, Done: true}, true},
		{"current block: 0, total block: 65536, Complete: 0.00%\x1b[A", Progress{}, false},
		{"Block size:   1024 Byte", Progress{}, false},
		{"Elapsed: 00:00:01, Remaining: 00:00:00, Completed: 101.00%", Progress{}, false},
		{"Elapsed: 00:00:01, Remaining: 00:00:00, Completed: NaN%", Progress{}, false},
		{"Elapsed: 00:00:01, Remaining: 00:00:00, Completed: -1%", Progress{}, false},
		{"Elapsed: 00:61:01, Remaining: 00:00:00, Completed: 1%", Progress{}, false},
		{"Elapsed: 00:00:01, Remaining: 00:00:00", Progress{}, false},
		{"Elapsed: soon, Completed: 1.00%", Progress{}, false},
		{"", Progress{}, false},
	}
	for _, tt := range tests {
		got, ok := ParseProgress(tt.line)
		if ok != tt.ok {
			t.Errorf("ParseProgress(%q) ok = %v, want %v", tt.line, ok, tt.ok)
			continue
		}
		if math.Abs(got.BytesPerSec-tt.want.BytesPerSec) > 1e-6*math.Max(1, tt.want.BytesPerSec) {
			t.Errorf("ParseProgress(%q).BytesPerSec = %v, want %v", tt.line, got.BytesPerSec, tt.want.BytesPerSec)
		}
		got.BytesPerSec = tt.want.BytesPerSec
		if got != tt.want {
			t.Errorf("ParseProgress(%q) = %+v, want %+v", tt.line, got, tt.want)
		}
	}
}

// The captured stderr of real runs: every run reports progress, ends with
// a Done line, and its percentages only move forward in the copy pass.
func TestParseProgressRealStderr(t *testing.T) {
	for _, name := range []string{"ext4.stderr", "dd.stderr", "fat32.stderr", "ntfs.stderr"} {
		t.Run(name, func(t *testing.T) {
			sc := bufio.NewScanner(bytes.NewReader(readTestdata(t, name)))
			sc.Split(SplitCRLF)
			var reports []Progress
			for sc.Scan() {
				if p, ok := ParseProgress(sc.Text()); ok {
					reports = append(reports, p)
				}
			}
			if len(reports) < 2 {
				t.Fatalf("%d progress reports", len(reports))
			}
			last := reports[len(reports)-1]
			if !last.Done || last.Percent != 100 || last.Rate == "" || last.BytesPerSec <= 0 {
				t.Errorf("last report %+v, want Done with a rate", last)
			}
		})
	}
}

func TestSplitCRLF(t *testing.T) {
	sc := bufio.NewScanner(strings.NewReader("a\rb\nc\r\n\rd"))
	sc.Split(SplitCRLF)
	var got []string
	for sc.Scan() {
		got = append(got, sc.Text())
	}
	want := []string{"a", "b", "c", "", "", "d"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("tokens %q, want %q", got, want)
	}
	if adv, tok, err := SplitCRLF([]byte("partial"), false); adv != 0 || tok != nil || err != nil {
		t.Errorf("SplitCRLF on a partial line = %d, %q, %v", adv, tok, err)
	}
}
