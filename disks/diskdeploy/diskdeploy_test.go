package diskdeploy

import (
	"testing"

	"ezio/engine"
)

func TestFitsPrefersTheImagesFilesystemThenTheSmallest(t *testing.T) {
	c := &Current{Label: "dos", Partitions: []CurrentPart{
		{Number: 1, Node: "/dev/sdb1", Size: 100 << 20, FS: "vfat"},
		{Number: 2, Extended: true, Node: "/dev/sdb2", Size: 900 << 20},
		{Number: 5, Node: "/dev/sdb5", Size: 600 << 20, FS: "ext4"},
		{Number: 6, Node: "/dev/sdb6", Size: 300 << 20, FS: "xfs"},
		{Number: 7, Size: 250 << 20, FS: "ext4"}, // no node: cannot be offered
	}}
	for _, tc := range []struct {
		need int64
		fs   string
		want int
	}{
		{50 << 20, "", 1},
		{50 << 20, "ext4", 5},
		{200 << 20, "", 6},
		{700 << 20, "", 0},
	} {
		got := c.Fits(tc.need, tc.fs)
		switch {
		case tc.want == 0 && got != nil:
			t.Errorf("need %d %q: got partition %d, want none", tc.need, tc.fs, got.Number)
		case tc.want != 0 && (got == nil || got.Number != tc.want):
			t.Errorf("need %d %q: got %+v, want partition %d", tc.need, tc.fs, got, tc.want)
		}
	}
	if (&Current{Label: "gpt"}).TableName() != "GPT" || c.TableName() != "MBR" {
		t.Error("table names")
	}
}

func TestPartState(t *testing.T) {
	for _, tc := range []struct {
		s      engine.Snapshot
		failed bool
		want   State
	}{
		{engine.Snapshot{Phase: engine.PhaseConnecting, PiecesTotal: 4}, false, StateWaiting},
		{engine.Snapshot{Phase: engine.PhaseDownloading, PiecesTotal: 4, BytesWritten: 1}, false, StateWriting},
		{engine.Snapshot{Phase: engine.PhaseFlushing, PiecesTotal: 4, PiecesDone: 4}, false, StateWriting},
		{engine.Snapshot{Phase: engine.PhaseSeeding, PiecesTotal: 4, PiecesDone: 4}, false, StateVerified},
		{engine.Snapshot{Phase: engine.PhaseDone, PiecesTotal: 4, PiecesDone: 4}, false, StateVerified},
		{engine.Snapshot{Phase: engine.PhaseDownloading, PiecesTotal: 4, PiecesDone: 2}, true, StateFailed},
		{engine.Snapshot{Phase: engine.PhaseFailed, PiecesTotal: 4}, false, StateFailed},
	} {
		if got := partState(tc.s, tc.failed); got != tc.want {
			t.Errorf("%s %d/%d failed=%v: %s, want %s", tc.s.Phase, tc.s.PiecesDone, tc.s.PiecesTotal, tc.failed, got, tc.want)
		}
	}
}
