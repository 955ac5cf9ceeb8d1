package torrentfile

import (
	"errors"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/bencode"
)

func TestCheckBencodeRefusesHostileInput(t *testing.T) {
	goodInfo := "d6:lengthi4e4:name4:sda112:piece lengthi16384e6:pieces20:" + strings.Repeat("x", 20) + "e"
	cases := map[string]string{
		"deep nesting":       "d4:info" + strings.Repeat("l", 10_000_000) + strings.Repeat("e", 10_000_000) + "e",
		"two info keys":      "d4:info" + goodInfo + "4:info" + goodInfo + "e",
		"two files keys":     "d4:infod5:filesle5:filesle4:name1:xee",
		"unsorted info keys": "d4:infod4:name1:x6:lengthi4eee",
		"leading zero":       "d4:infod6:lengthi04eee",
		"minus zero":         "d4:infod6:lengthi-0eee",
		"string past end":    "d4:infod4:name99:xee",
		"trailing data":      "d4:info" + goodInfo + "egarbage",
		"not a dictionary":   "l4:spame",
		"non-string key":     "di1ei2ee",
		"unterminated":       "d4:infod4:name1:x",
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			err := CheckBencode([]byte(in))
			var be *BencodeError
			if !errors.As(err, &be) {
				t.Fatalf("accepted or wrong error: %v", err)
			}
		})
	}
	if err := CheckBencode([]byte("d4:info" + goodInfo + "e")); err != nil {
		t.Fatalf("a good torrent refused: %v", err)
	}
	// Outside the info dictionary, unsorted keys are tolerated (some
	// tools write them), duplicates never.
	if err := CheckBencode([]byte("d4:info" + goodInfo + "8:announce3:urle")); err != nil {
		t.Errorf("unsorted top-level keys refused: %v", err)
	}
}

func FuzzCheckBencode(f *testing.F) {
	f.Add([]byte("d4:infod6:lengthi4e4:name4:sda1ee"))
	f.Add([]byte("d4:infol" + strings.Repeat("l", 100) + "ee"))
	f.Add([]byte("d1:ai1e1:ai2ee"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if CheckBencode(b) == nil {
			// What the strict reader accepts the library must decode.
			var v any
			if err := bencode.Unmarshal(b, &v); err != nil {
				t.Fatalf("accepted but not decodable: %v", err)
			}
		}
	})
}
