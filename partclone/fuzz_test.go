package partclone

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// testdataFiles returns the real partclone outputs kept under testdata.
func testdataFiles(f *testing.F, pattern string) [][]byte {
	names, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil || len(names) == 0 {
		f.Fatalf("no testdata/%s: %v", pattern, err)
	}
	var out [][]byte
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, data)
	}
	return out
}

func FuzzParseInfo(f *testing.F) {
	for _, data := range testdataFiles(f, "*.torrent.info") {
		f.Add(data)
		f.Add(data[:len(data)/2]) // truncated mid-line
	}
	f.Add([]byte("block_size: 512\nblocks_total: 1\noffset: 7fffffffffffffff\nlength: 1\n"))
	f.Add([]byte("block_size: 512\nblocks_total: 1\noffset: 0000000000000000\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := ParseInfo(bytes.NewReader(data))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "torrent.info line ") {
				t.Fatalf("error without a line number: %v", err)
			}
			return
		}
		for _, e := range info.Extents {
			if e.Offset < 0 || e.Length < 0 || e.Length > math.MaxInt64-e.Offset {
				t.Fatalf("parsed a bad extent %+v", e)
			}
		}
		checkErr := info.Check()
		text, err := info.MarshalText()
		if err != nil {
			t.Fatalf("MarshalText of a parsed Info: %v", err)
		}
		again, err := ParseInfo(bytes.NewReader(text))
		if err != nil {
			t.Fatalf("re-parsing our own text: %v\n%s", err, text)
		}
		if !reflect.DeepEqual(normalize(info), normalize(again)) {
			t.Fatalf("round trip changed the Info:\n%+v\n%+v", info, again)
		}
		if (checkErr == nil) != (again.Check() == nil) {
			t.Fatalf("Check differs after a round trip: %v", checkErr)
		}
		if checkErr == nil {
			_ = info.NumPieces()
			starts := info.streamStarts()
			var covered int64
			for p := range info.NumPieces() {
				for _, s := range info.pieceSpans(starts, p) {
					covered += s.length
				}
			}
			if covered != info.TotalLength() {
				t.Fatalf("pieces cover %d bytes of %d", covered, info.TotalLength())
			}
		}
	})
}

// normalize makes nil and empty slices compare equal.
func normalize(i *Info) Info {
	c := *i
	if len(c.Extents) == 0 {
		c.Extents = nil
	}
	if len(c.Hashes) == 0 {
		c.Hashes = nil
	}
	return c
}

func FuzzParseProgress(f *testing.F) {
	for _, data := range testdataFiles(f, "*.stderr") {
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Split(SplitCRLF)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" {
				f.Add(line)
			}
		}
	}
	f.Add("Elapsed: 99:59:60, Remaining: 00:00:00, Completed: 100.%, Rate: 1e9GB/min,")
	f.Fuzz(func(t *testing.T, line string) {
		p, ok := ParseProgress(line)
		if !ok {
			if p != (Progress{}) {
				t.Fatalf("not a progress line but returned %+v", p)
			}
			return
		}
		if math.IsNaN(p.Percent) || p.Percent < 0 || p.Percent > 100 {
			t.Fatalf("percent %v", p.Percent)
		}
		if p.Elapsed < 0 || p.Remaining < 0 {
			t.Fatalf("negative durations %+v", p)
		}
		if math.IsNaN(p.BytesPerSec) || math.IsInf(p.BytesPerSec, 0) || p.BytesPerSec < 0 {
			t.Fatalf("rate %v", p.BytesPerSec)
		}
		// Splitting the same text into lines never panics either.
		sc := bufio.NewScanner(strings.NewReader(line))
		sc.Split(SplitCRLF)
		for sc.Scan() {
		}
	})
}
