// Package client is the caller's side of a control daemon (ezio's, or
// EZIO's own): it lists the daemon's torrents, pauses and resumes them,
// and turns a torrent's status into the engine.Snapshot that ezio's
// dashboards draw. The wizard's "Attach to a running ezio daemon" uses it.
package client

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"sort"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"ezio/engine"
	"ezio/engine/daemon"
	"ezio/engine/ezioapi"
)

// DefaultAddr is where a daemon listens unless told otherwise.
const DefaultAddr = daemon.DefaultAddr

// ErrGone: the daemon answers but no longer has the torrent asked for.
var ErrGone = errors.New("the daemon no longer has this torrent")

// Conn is one connection to a daemon.
type Conn struct {
	Addr string
	api  ezioapi.EZIOClient
	cc   *grpc.ClientConn
}

// Dial prepares a connection to addr (HOST:PORT or unix:/PATH; empty:
// DefaultAddr). gRPC connects lazily: the first call says whether
// anybody answers.
func Dial(addr string) (*Conn, error) {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		addr = DefaultAddr
	}
	api, cc, err := daemon.Dial(addr)
	if err != nil {
		return nil, fmt.Errorf("daemon address %s: %w", addr, err)
	}
	return &Conn{Addr: addr, api: api, cc: cc}, nil
}

// Close ends the connection; the daemon and its torrents go on.
func (c *Conn) Close() error { return c.cc.Close() }

// Torrent is one torrent as the daemon reports it.
type Torrent struct {
	Hash, Name string
	// State is how EZIO's tools name it: downloading, seeding, ...
	State string
	// Snapshot is the status in the engine's terms, for the dashboard.
	Snapshot engine.Snapshot
	// Status is the daemon's answer as it came.
	Status *ezioapi.Torrent
}

// Torrents asks for the given torrents (every one when none is given), in
// the daemon's order. A hash asked for that the daemon lacks is left out.
func (c *Conn) Torrents(ctx context.Context, hashes ...string) ([]Torrent, error) {
	st, err := c.api.GetTorrentStatus(ctx, &ezioapi.UpdateRequest{Hashes: hashes})
	if err != nil {
		return nil, c.callError(err)
	}
	now := time.Now()
	var out []Torrent
	for _, t := range ordered(st) {
		out = append(out, Torrent{Hash: t.GetHash(), Name: t.GetName(), State: StateName(t.GetState()), Snapshot: ToSnapshot(t, now), Status: t})
	}
	return out, nil
}

// Torrent asks for one torrent; ErrGone when the daemon lacks it.
func (c *Conn) Torrent(ctx context.Context, hash string) (Torrent, error) {
	ts, err := c.Torrents(ctx, hash)
	if err != nil {
		return Torrent{}, err
	}
	for _, t := range ts {
		if strings.EqualFold(t.Hash, hash) {
			return t, nil
		}
	}
	return Torrent{}, ErrGone
}

// SetPaused pauses or resumes one torrent's transfers.
func (c *Conn) SetPaused(ctx context.Context, hash string, paused bool) error {
	var err error
	if paused {
		_, err = c.api.PauseTorrent(ctx, &ezioapi.PauseTorrentRequest{Hash: hash})
	} else {
		_, err = c.api.ResumeTorrent(ctx, &ezioapi.ResumeTorrentRequest{Hash: hash})
	}
	if err != nil {
		return c.callError(err)
	}
	return nil
}

// callError names what a failed call means for the caller: nobody
// answering is an *engine.UnreachableError with the daemon's address.
func (c *Conn) callError(err error) error {
	s, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch s.Code() {
	case codes.Unavailable, codes.DeadlineExceeded:
		return &engine.UnreachableError{Addr: c.Addr, Err: errors.New(s.Message())}
	case codes.NotFound:
		return ErrGone
	}
	return fmt.Errorf("the daemon at %s answered: %s", c.Addr, s.Message())
}

// ordered lists a status reply in the daemon's order (its hashes), then
// any torrent only in the map, by name.
func ordered(st *ezioapi.UpdateStatus) []*ezioapi.Torrent {
	var out, rest []*ezioapi.Torrent
	seen := map[string]bool{}
	for _, h := range st.GetHashes() {
		if t := st.GetTorrents()[h]; t != nil && !seen[h] {
			out = append(out, t)
			seen[h] = true
		}
	}
	for h, t := range st.GetTorrents() {
		if !seen[h] {
			rest = append(rest, t)
		}
	}
	sort.Slice(rest, func(i, j int) bool { return rest[i].GetName() < rest[j].GetName() })
	return append(out, rest...)
}

// StateName is how EZIO's tools name libtorrent's state numbers.
func StateName(state int64) string {
	switch state {
	case 0:
		return "error"
	case 1:
		return "checking"
	case 2:
		return "downloading metadata"
	case 3:
		return "downloading"
	case 4:
		return "finished"
	case 5:
		return "seeding"
	}
	return fmt.Sprintf("state %d", state)
}

func phaseOf(state int64) engine.Phase {
	switch state {
	case 0:
		return engine.PhaseFailed
	case 1, 2:
		return engine.PhaseChecking
	case 3:
		return engine.PhaseDownloading
	case 4:
		return engine.PhaseDone
	case 5:
		return engine.PhaseSeeding
	}
	return engine.PhaseStarting
}

// ToSnapshot maps a daemon's status onto a snapshot taken at now. EZIO's
// API has no peer list, no piece map and no piece count: Peers and
// Pieces stay empty and PiecesTotal is worked out (see piecesTotal).
func ToSnapshot(t *ezioapi.Torrent, now time.Time) engine.Snapshot {
	s := engine.Snapshot{
		Time: now, Role: engine.RoleDeploy, Name: t.GetName(), InfoHash: t.GetHash(),
		Phase: phaseOf(t.GetState()), Paused: t.GetIsPaused(),
		BytesDone: t.GetTotalDone(), BytesTotal: t.GetTotal(),
		PiecesDone:   int(t.GetNumPieces()),
		DownloadRate: float64(t.GetDownloadRate()), UploadRate: float64(t.GetUploadRate()),
		BytesDownloaded: t.GetTotalPayloadDownload(), BytesUploaded: t.GetTotalPayloadUpload(),
		NumPeers: int(t.GetNumPeers()),
		Elapsed:  time.Duration(t.GetActiveTime()) * time.Second,
		ETA:      -1, ETASeconds: -1,
	}
	s.ElapsedSeconds = s.Elapsed.Seconds()
	s.PiecesTotal = piecesTotal(s.BytesDone, s.BytesTotal, s.PiecesDone)
	return s
}

// piecesTotal works the piece count out of what the API gives: bytes
// verified, their pieces, and the total. Piece lengths are powers of two
// and every piece but the last is whole, so with two or more verified
// pieces their mean length rounds up to the piece length exactly. Too
// little known: 0 (unknown).
func piecesTotal(done, total int64, pieces int) int {
	switch {
	case pieces <= 0 || done <= 0 || total <= 0:
		return 0
	case done >= total:
		return pieces
	case pieces < 2:
		return 0
	}
	mean := uint64((done + int64(pieces) - 1) / int64(pieces))
	pl := int64(1) << bits.Len64(mean-1)
	return int((total + pl - 1) / pl)
}
