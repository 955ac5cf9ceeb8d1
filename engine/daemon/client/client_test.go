package client

import (
	"testing"
	"time"

	"ezio/engine"
	"ezio/engine/ezioapi"
)

func TestPiecesTotalFromWhatTheAPIGives(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		done, total int64
		pieces      int
		want        int
	}{
		{0, 100 * mib, 0, 0},
		{16 * mib, 100 * mib, 1, 0},                 // one piece: could be the short last one
		{32 * mib, 100 * mib, 2, 7},                 // 16 MiB pieces: 6 whole and a 4 MiB one
		{16*mib + 4*mib, 100 * mib, 2, 7},           // a whole one and the short last one
		{100 * mib, 100 * mib, 7, 7},                // complete: the count is known
		{3*256<<10 + 1000, 9*256<<10 + 1000, 4, 10}, // 256 KiB pieces, the last of 1000 bytes
		{5 * 256 << 10, 10*256<<10 + 17, 5, 11},     // a 17-byte last piece still missing
		{256 << 10, 256 << 10, 1, 1},                // one piece, all there
		{100 * mib, 100 * mib, 0, 0},                // no verified piece count: unknown
		{2 * 16 * mib, 0, 2, 0},                     // no total: unknown
		{48 * mib, 1024 * mib, 3, 64},               // a 1 GiB image
		{16*mib + 1, 32*mib + 1, 2, 3},              // the 1-byte last piece is verified
		{mib/2 + 1, 10*mib + 1, 2, 21},              // 512 KiB pieces
		{4 * 16 * mib, 5000 * 16 * mib, 4, 5000},    // a big disk
	} {
		if got := piecesTotal(c.done, c.total, c.pieces); got != c.want {
			t.Errorf("piecesTotal(%d, %d, %d) = %d, want %d", c.done, c.total, c.pieces, got, c.want)
		}
	}
}

func TestToSnapshotMapsEveryField(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := ToSnapshot(&ezioapi.Torrent{
		Hash: "ab12", Name: "sda1", Progress: 0.5, DownloadRate: 1000, UploadRate: 200, ActiveTime: 42,
		NumPeers: 3, State: 3, TotalDone: 32 << 20, Total: 64 << 20, NumPieces: 2,
		TotalPayloadDownload: 33 << 20, TotalPayloadUpload: 5 << 20, IsPaused: true,
	}, now)
	want := engine.Snapshot{
		Time: now, Role: engine.RoleDeploy, Name: "sda1", InfoHash: "ab12", Phase: engine.PhaseDownloading, Paused: true,
		BytesDone: 32 << 20, BytesTotal: 64 << 20, PiecesDone: 2, PiecesTotal: 4, DownloadRate: 1000, UploadRate: 200,
		BytesDownloaded: 33 << 20, BytesUploaded: 5 << 20, NumPeers: 3, Elapsed: 42 * time.Second, ElapsedSeconds: 42,
		ETA: -1, ETASeconds: -1,
	}
	if s.Time != want.Time || s.Name != want.Name || s.InfoHash != want.InfoHash || s.Phase != want.Phase || s.Paused != want.Paused ||
		s.BytesDone != want.BytesDone || s.BytesTotal != want.BytesTotal || s.PiecesDone != want.PiecesDone ||
		s.PiecesTotal != want.PiecesTotal || s.DownloadRate != want.DownloadRate || s.UploadRate != want.UploadRate ||
		s.BytesDownloaded != want.BytesDownloaded || s.BytesUploaded != want.BytesUploaded || s.NumPeers != want.NumPeers ||
		s.Elapsed != want.Elapsed || s.ElapsedSeconds != want.ElapsedSeconds || s.ETA != want.ETA || s.Role != want.Role {
		t.Errorf("ToSnapshot = %+v\nwant        %+v", s, want)
	}
	for state, p := range map[int64]engine.Phase{0: engine.PhaseFailed, 1: engine.PhaseChecking, 3: engine.PhaseDownloading, 4: engine.PhaseDone, 5: engine.PhaseSeeding} {
		if got := ToSnapshot(&ezioapi.Torrent{State: state}, now).Phase; got != p {
			t.Errorf("state %d: phase %s, want %s", state, got, p)
		}
	}
}
