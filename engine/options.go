package engine

import (
	"log/slog"
	"time"

	"github.com/anacrolix/torrent/metainfo"
)

// Tuning holds the knobs shared by seeders and clients. Zero values pick
// defaults sized for a LAN.
type Tuning struct {
	// ListenAddr is the BitTorrent listen address (host:port). Empty means
	// all IPv4 addresses on DefaultPeerPort; port 0 picks a free port.
	ListenAddr string
	// CacheSizeMiB bounds the bytes of piece data held in memory (read-ahead
	// on a seeder, unverified pieces in flight on a client).
	CacheSizeMiB int
	// AIOThreads is the number of concurrent disk I/O operations allowed.
	AIOThreads int
	// HashingThreads is the number of pieces hashed at once.
	HashingThreads int
	// ChunkSize is the BitTorrent request size; 0 means 16 KiB.
	ChunkSize int
	// MaxDownloadRate and MaxUploadRate cap transfer in bytes/s (0: none).
	// For sharing a link with other traffic, for demos and tests.
	MaxDownloadRate int64
	MaxUploadRate   int64
}

const (
	DefaultPeerPort     = 6881
	DefaultTrackerPort  = 6969
	DefaultCacheSizeMiB = 256
)

// SeedOptions describe a seeder.
type SeedOptions struct {
	Torrent *metainfo.MetaInfo
	// Source is a block device, an image file or a directory of extent
	// files (partclone -T layout) holding the data.
	Source string
	// TrackerListen is where the embedded tracker and torrent server
	// listen (host:port). Empty means ":6969".
	TrackerListen string
	NoTracker     bool
	Tuning
	Logger *slog.Logger
}

// DeployOptions describe a client writing an image onto a target.
type DeployOptions struct {
	Torrent *metainfo.MetaInfo
	// Target is a block device, a regular file (created if missing) or an
	// existing directory (partclone -T layout).
	Target string
	// Peers are added directly (host:port), in addition to the tracker.
	Peers []string
	// Trackers override the torrent's announce list when not empty.
	Trackers []string
	// SeedAfter keeps serving others this long after completion.
	SeedAfter time.Duration
	// Recheck re-verifies every piece from the target instead of trusting
	// the saved completion state.
	Recheck bool
	// SkipSafetyChecks is for tests that write into regular files only;
	// block devices are always checked.
	SkipSafetyChecks bool
	// Seeders are peers known to be seeders (host:port); they are added
	// as trusted so that one bad read never gets them banned.
	Seeders []string
	Tuning
	Logger *slog.Logger
}

func (t Tuning) withDefaults() Tuning {
	if t.CacheSizeMiB <= 0 {
		t.CacheSizeMiB = DefaultCacheSizeMiB
	}
	if t.AIOThreads <= 0 {
		t.AIOThreads = 4
	}
	if t.HashingThreads <= 0 {
		t.HashingThreads = 2
	}
	if t.ChunkSize <= 0 {
		t.ChunkSize = 16 << 10
	}
	return t
}
