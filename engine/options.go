package engine

import (
	"log/slog"
	"net/netip"
	"os"
	"strconv"
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
	// on a seeder, unverified pieces in flight on a client: half of it,
	// shared by the session's deploys; LimitMemory keeps a deploying
	// process near it as a whole, see memory.go).
	CacheSizeMiB int
	// AIOThreads is the number of concurrent disk I/O operations allowed.
	AIOThreads int
	// HashingThreads is the number of pieces hashed at once.
	HashingThreads int
	// ChunkSize is the BitTorrent request size. 0 chooses: RoomChunkSize
	// for a deploy whose torrent an ezio server handed out with its
	// seeder (DeployOptions.EzioRoom), else 16 KiB, the most other clients
	// accept (chunkSize).
	ChunkSize int
	// TraceRequests prints each connection's requests once a second on
	// stderr (EZIO_TRACE_REQUESTS=1, reqtrace.go): for the benchmarks.
	TraceRequests bool
	// MaxDownloadRate and MaxUploadRate cap transfer in bytes/s (0: none).
	// For sharing a link with other traffic, for demos and tests.
	MaxDownloadRate int64
	MaxUploadRate   int64

	// Swarm strategy, for experiments; the defaults are the best measured
	// (docs/benchmarks.md).
	Strategy Strategy
}

// Strategy holds the piece picker's and the piece reveal's settings.
type Strategy struct {
	PickerOff         bool // let the library order pieces (baseline for benchmarks)
	RevealOff         bool // seeders serve every piece to everyone
	PickerNoRarest    bool // among pieces peers hold, ignore how many hold them
	PickerSeedMiB     int  // MiB of seeder-only pieces a client asks for at once (default 2)
	PickerPeerDiv     int  // a client wants cache/PeerDiv of pieces peers hold (default 2)
	RevealWindowMiB   int  // MiB revealed and not yet fetched per client at first (default 2)
	RevealFirstOneOff bool // a client holding nothing gets a whole window, not one piece
	RevealOnceOff     bool // second copies even while the seeder's uplink is busy (the old rule)
}

// StrategyFromEnv reads the benchmark's environment variables
// (EZIO_PICKER=off, EZIO_REVEAL=off, EZIO_PICKER_RAREST=0,
// EZIO_PICKER_SEED_MIB, EZIO_PICKER_PEER_DIV, EZIO_REVEAL_WINDOW_MIB,
// EZIO_REVEAL_FIRST_ONE=off, EZIO_REVEAL_ONCE=off).
// Only the command line calls it; the engine never reads the environment.
func StrategyFromEnv() Strategy {
	num := func(k string) int {
		v, _ := strconv.Atoi(os.Getenv(k))
		return v
	}
	return Strategy{
		PickerOff:         os.Getenv("EZIO_PICKER") == "off",
		RevealOff:         os.Getenv("EZIO_REVEAL") == "off",
		PickerNoRarest:    os.Getenv("EZIO_PICKER_RAREST") == "0",
		PickerSeedMiB:     num("EZIO_PICKER_SEED_MIB"),
		PickerPeerDiv:     num("EZIO_PICKER_PEER_DIV"),
		RevealWindowMiB:   num("EZIO_REVEAL_WINDOW_MIB"),
		RevealFirstOneOff: os.Getenv("EZIO_REVEAL_FIRST_ONE") == "off",
		RevealOnceOff:     os.Getenv("EZIO_REVEAL_ONCE") == "off",
	}
}

const (
	DefaultPeerPort     = 6881
	DefaultCacheSizeMiB = 256
	// DefaultTimeout is how long a deploy waits with no source before it
	// gives up.
	DefaultTimeout = 10 * time.Minute
)

// SeedOptions describe a seeder.
type SeedOptions struct {
	Torrent *metainfo.MetaInfo
	// Source is a block device, an image file or a directory of extent
	// files (partclone -T layout) holding the data.
	Source string
	// Base is added to every extent's offset when reading Source: a
	// partition's torrent served from a whole-disk source.
	Base int64
	// TrackerListen is where the embedded tracker and torrent server
	// listen (host:port) when Seed makes its own session. Empty means
	// ":6969". Ignored by Session.Seed (the session's server is used).
	TrackerListen string
	NoTracker     bool
	// Unlisted keeps the torrent off the server's image list: a partition
	// of a disk image, which the disk image lists (Server.AddDiskImage).
	Unlisted bool
	// Expect is how many clients make the room (0: not said); snapshots
	// carry it beside the number done.
	Expect int
	// Allow limits peers (and, in a session of its own, the tracker and
	// image server) to these networks when not empty.
	Allow []netip.Prefix
	Tuning
	Logger *slog.Logger
}

// SeedUntilIdle, as DeployOptions.SeedAfter, keeps a finished client
// serving while connected peers still lack pieces, until it has uploaded
// nothing for a minute or three times the image.
const SeedUntilIdle time.Duration = -1

// DeployOptions describe a client writing an image onto a target.
type DeployOptions struct {
	Torrent *metainfo.MetaInfo
	// Target is a block device, a regular file (created if missing) or an
	// existing directory (partclone -T layout).
	Target string
	// Base is added to every extent's offset when writing Target: a
	// partition's torrent written inside a whole disk.
	Base int64
	// Peers are added directly (host:port), in addition to the tracker.
	Peers []string
	// Trackers override the torrent's announce list when not empty.
	Trackers []string
	// SeedAfter keeps serving others this long after completion; 0 leaves
	// at once; SeedUntilIdle applies the room policy.
	SeedAfter time.Duration
	// Timeout ends the deploy when no source has been reachable this long
	// (0: DefaultTimeout; negative: never).
	Timeout time.Duration
	// Recheck re-verifies every piece from the target instead of trusting
	// the saved completion state.
	Recheck bool
	// SkipSafetyChecks is for tests that write into regular files only;
	// block devices are always checked.
	SkipSafetyChecks bool
	// Seeders are peers known to be seeders (host:port); they are added
	// as trusted so that one bad read never gets them banned.
	Seeders []string
	// EzioRoom says the torrent came from an ezio server with its
	// seeder's address: the room is ezio's, so the deploy asks for
	// RoomChunkSize at a time unless Tuning.ChunkSize says otherwise.
	EzioRoom bool
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
	s := &t.Strategy
	if s.PickerSeedMiB <= 0 {
		s.PickerSeedMiB = 2
	}
	if s.PickerPeerDiv <= 0 {
		s.PickerPeerDiv = 2
	}
	if s.RevealWindowMiB <= 0 {
		// 2 MiB (at least two pieces): with 8, a room of 16 on 25 Mbit/s
		// links in 80 pieces had half the image revealed at once and the
		// seeder sent 2.2 x the image; with 2, 1.7 x and the room was done
		// in 1.73 x F/B instead of 2.25 (docs/benchmarks.md, round three;
		// bench/swarmsim agreed before the lab did).
		s.RevealWindowMiB = 2
	}
	return t
}

// RoomChunkSize is the request size of a deploy in an ezio room. The
// library (v1.61.0, requesting.go) keeps few requests outstanding on a
// connection to a peer that keeps announcing pieces: it refills a
// connection only once its requests are all answered, and each update
// that a have message starts sets the next refill's size to what that
// update added, often nothing. Measured with EZIO_TRACE_REQUESTS (reqtrace.go), a
// client that falls behind keeps 1-4 requests on most peer connections
// while those peers answer at once. Larger requests carry more bytes per
// round trip through such a shallow pipeline. Other clients
// (Transmission, libtorrent) close a connection that asks for more than
// 16 KiB, so only ezio's own rooms use it.
const RoomChunkSize = 64 << 10

// chunkSize is the request size of a job: the tuning's, or RoomChunkSize
// in an ezio room, or 16 KiB.
func (t Tuning) chunkSize(ezioRoom bool) int {
	switch {
	case t.ChunkSize > 0:
		return t.ChunkSize
	case ezioRoom:
		return RoomChunkSize
	}
	return 16 << 10
}
