package torrentfile

import (
	"ezio/engine/torrentfile/torrentfiletest"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
)

func TestParseOffset(t *testing.T) {
	for in, want := range map[string]int64{
		"00000000000000000000000000001000": 0x1000,
		"0000000000001000":                 0x1000,
		"ABCDEF":                           0xabcdef,
		"0":                                0,
		"7fffffffffffffff":                 1<<63 - 1,
	} {
		got, err := ParseOffset(in)
		if err != nil || got != want {
			t.Errorf("ParseOffset(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "xyz", "0x10", "-1", "8000000000000000", "000000000000000000000000000000001", "1 2", "１"} {
		if _, err := ParseOffset(bad); err == nil {
			t.Errorf("ParseOffset(%q) accepted", bad)
		}
	}
}

func TestLayoutRejects(t *testing.T) {
	cases := map[string]struct {
		info *metainfo.Info
		want string
	}{
		"not hex":      {torrentfiletest.Info([]metainfo.FileInfo{torrentfiletest.File("0000000000001000", 10), torrentfiletest.File("zz", 10)}, 16), `file "zz"`},
		"nested path":  {torrentfiletest.Info([]metainfo.FileInfo{{Path: []string{"a", "1000"}, Length: 5}}, 16), "directly under"},
		"overlap":      {torrentfiletest.Info([]metainfo.FileInfo{torrentfiletest.File("1000", 0x100), torrentfiletest.File("10ff", 0x10)}, 16), "overlaps"},
		"overlap back": {torrentfiletest.Info([]metainfo.FileInfo{torrentfiletest.File("2000", 0x100), torrentfiletest.File("1000", 0x1001)}, 16), "overlaps"},
		"no files":     {&metainfo.Info{Name: "x", PieceLength: 16, Length: 100, Pieces: make([]byte, 140)}, "no extent files"},
		"zero length":  {torrentfiletest.Info([]metainfo.FileInfo{torrentfiletest.File("1000", 0)}, 16), "no data"},
		"overflow":     {torrentfiletest.Info([]metainfo.FileInfo{torrentfiletest.File("7ffffffffffffff0", 0x100)}, 16), "overflows"},
	}
	for name, c := range cases {
		_, err := NewLayout(c.info)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", name, err, c.want)
		}
	}
	// Piece table that does not match the length.
	info := torrentfiletest.Info([]metainfo.FileInfo{torrentfiletest.File("1000", 100)}, 16)
	info.Pieces = info.Pieces[:len(info.Pieces)-20]
	if _, err := NewLayout(info); err == nil || !strings.Contains(err.Error(), "piece table") {
		t.Errorf("short piece table: %v", err)
	}
}

func TestLayoutMapsAcrossExtents(t *testing.T) {
	l, err := NewLayout(torrentfiletest.Info([]metainfo.FileInfo{torrentfiletest.File("10", 5), torrentfiletest.File("100", 3), torrentfiletest.File("20", 8)}, 4))
	if err != nil {
		t.Fatal(err)
	}
	var got []Segment
	l.MapRange(3, 7, func(s Segment) bool { got = append(got, s); return true })
	want := []Segment{{Ext: 0, Within: 3, Disk: 0x13, N: 2, Buf: 0}, {Ext: 1, Within: 0, Disk: 0x100, N: 3, Buf: 2}, {Ext: 2, Within: 0, Disk: 0x20, N: 2, Buf: 5}}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("segment %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if err := l.CheckFits(0x103); err != nil {
		t.Errorf("exact fit refused: %v", err)
	}
	if err := l.CheckFits(0x102); err == nil {
		t.Error("a target one byte short was accepted")
	}
}

// FuzzLayout feeds arbitrary info dictionaries: NewLayout must never panic,
// and whatever it accepts must map only inside declared extents.
func FuzzLayout(f *testing.F) {
	seed, _ := bencode.Marshal(torrentfiletest.Info([]metainfo.FileInfo{torrentfiletest.File("00000000000000000000000000001000", 100), torrentfiletest.File("2000", 50)}, 32))
	f.Add(seed)
	f.Add([]byte("d4:name4:sda112:piece lengthi16e6:pieces0:e"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var info metainfo.Info
		if err := bencode.Unmarshal(data, &info); err != nil {
			return
		}
		l, err := NewLayout(&info)
		if err != nil {
			return
		}
		for p := range min(l.NumPieces, 64) {
			off, n := l.PieceSpan(p)
			var sum int64
			l.MapRange(off, n, func(s Segment) bool {
				e := l.Extents[s.Ext]
				if s.Disk < e.Offset || s.Disk+s.N > e.End() || s.N <= 0 {
					t.Fatalf("segment %+v outside extent %+v", s, e)
				}
				sum += s.N
				return true
			})
			if sum != n {
				t.Fatalf("piece %d maps %d bytes, want %d", p, sum, n)
			}
		}
	})
}
