package tui

import (
	"fmt"

	"ezio/engine"
)

// stuckLines are the seeder dashboard's warning when its source has bad
// pieces: how many, how many clients cannot finish because of them, and
// what to do (none while the source is fine so far).
func stuckLines(s engine.Snapshot) []string {
	if len(s.BadPieces) == 0 {
		return nil
	}
	return []string{
		fmt.Sprintf("%d damaged piece(s) on the source, %d client(s) stuck on them", len(s.BadPieces), len(s.Stuck)),
		"re-capture the image, or fix the source and check it with ezio torrent verify",
	}
}
