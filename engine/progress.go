package engine

import (
	"context"
	"ezio/engine/server"
	"sync"
	"time"
)

// Phase is where a job is in its life.
type Phase string

const (
	PhaseStarting    Phase = "starting"
	PhaseChecking    Phase = "checking"    // re-verifying pieces already on the target
	PhaseConnecting  Phase = "connecting"  // waiting for the first peer
	PhaseDownloading Phase = "downloading" // receiving pieces
	PhaseWaiting     Phase = "waiting"     // every source was lost; redialling
	PhaseFlushing    Phase = "flushing"    // fdatasync of the target
	PhaseSeeding     Phase = "seeding"     // complete, serving others
	PhaseDone        Phase = "done"
	PhaseFailed      Phase = "failed"
)

// Role says which side of the swarm a job is on.
type Role string

const (
	RoleSeed   Role = "seed"
	RoleDeploy Role = "deploy"
)

// PieceState is the state of one piece in a Snapshot's piece map.
type PieceState uint8

const (
	PieceMissing PieceState = iota
	PieceDownloading
	PieceHashing
	PieceVerified
	PieceFailed // failed its last hash check and is being fetched again
)

// PeerSnapshot describes one connected peer.
type PeerSnapshot struct {
	Addr            string  `json:"addr"`
	Client          string  `json:"client"`
	DownloadRate    float64 `json:"download_rate"` // bytes/s we receive from it
	UploadRate      float64 `json:"upload_rate"`   // bytes/s we send to it
	BytesDownloaded int64   `json:"bytes_downloaded"`
	BytesUploaded   int64   `json:"bytes_uploaded"`
	PiecesHave      int     `json:"pieces_have"`
	Share           float64 `json:"share"` // 0..1 of the torrent's pieces it has
	Seeder          bool    `json:"seeder"`
	IdleSeconds     float64 `json:"idle_seconds"` // since data last moved either way
}

// Snapshot is a consistent view of a job, published about four times a second.
type Snapshot struct {
	Time            time.Time      `json:"-"`
	Role            Role           `json:"role"`
	Name            string         `json:"name"`
	InfoHash        string         `json:"infohash"`
	Phase           Phase          `json:"phase"`
	Paused          bool           `json:"paused,omitempty"`
	BytesDone       int64          `json:"bytes_done"`
	BytesTotal      int64          `json:"bytes_total"`
	PiecesDone      int            `json:"pieces_done"`
	PiecesTotal     int            `json:"pieces_total"`
	HashFailures    int            `json:"hash_failures"`
	DownloadRate    float64        `json:"download_rate"` // bytes/s of piece data
	UploadRate      float64        `json:"upload_rate"`
	BytesDownloaded int64          `json:"bytes_downloaded"` // piece data received this session
	BytesUploaded   int64          `json:"bytes_uploaded"`   // piece data sent this session
	BytesWritten    int64          `json:"bytes_written"`    // piece data written to the target this run (verified or not yet)
	ETA             time.Duration  `json:"-"`                // negative when unknown
	ETASeconds      float64        `json:"eta_seconds"`      // -1 when unknown
	Elapsed         time.Duration  `json:"-"`
	ElapsedSeconds  float64        `json:"elapsed_seconds"`
	Peers           []PeerSnapshot `json:"peers_detail,omitempty"`
	NumPeers        int            `json:"peers"`
	Pieces          []PieceState   `json:"-"`
	// Client: pieces the resume record claimed, hashed good from the
	// target in this run, and those that failed and are fetched again.
	PiecesReverified int `json:"pieces_reverified,omitempty"`
	PiecesRefetched  int `json:"pieces_refetched,omitempty"`
	// Seeder: pieces of the source that fail their hash and are never
	// served.
	BadPieces []BadPiece `json:"bad_pieces,omitempty"`
	// Seeder: clients that lack a bad piece and cannot finish from it.
	Stuck []server.StuckClient `json:"stuck_clients,omitempty"`
	// LostSeconds is how long ago the last source was lost, in phase
	// "waiting".
	LostSeconds float64 `json:"lost_seconds,omitempty"`
	// Seeder only, from its tracker: every client that announced.
	Fleet     []server.FleetMember `json:"fleet,omitempty"`
	FleetDone int                  `json:"fleet_done,omitempty"`
	Expected  int                  `json:"expected,omitempty"` // clients the room expects

}

// EventKind names what happened.
type EventKind string

const (
	EventPhase         EventKind = "phase"
	EventPeerJoined    EventKind = "peer_joined"
	EventPeerLeft      EventKind = "peer_left"
	EventPieceVerified EventKind = "piece_verified"
	EventPieceFailed   EventKind = "piece_failed"
	EventLog           EventKind = "log"
	EventDone          EventKind = "done"
	EventFailed        EventKind = "failed"
)

// Event is one thing that happened in a job.
type Event struct {
	Time    time.Time `json:"time"`
	Kind    EventKind `json:"kind"`
	Phase   Phase     `json:"phase,omitempty"`
	Peer    string    `json:"peer,omitempty"`
	Piece   int       `json:"piece,omitempty"`
	Level   string    `json:"level,omitempty"`
	Message string    `json:"message,omitempty"`
	Err     error     `json:"-"`
}

// Latest is a one-slot mailbox: a writer never blocks and a reader always
// gets the newest value, so a slow screen cannot stall the engine.
type Latest[T any] struct {
	ch chan T
	mu sync.Mutex
}

func NewLatest[T any]() *Latest[T] { return &Latest[T]{ch: make(chan T, 1)} }

// Put replaces whatever is waiting with v.
func (l *Latest[T]) Put(v T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.ch:
	default:
	}
	l.ch <- v
}

// C is the channel to receive from.
func (l *Latest[T]) C() <-chan T { return l.ch }

// broker fans snapshots and events out to subscribers.
type broker struct {
	mu     sync.Mutex
	snaps  []*Latest[Snapshot]
	events []chan Event
	last   Snapshot
	closed bool
}

// subscribe adds a subscriber until ctx ends or the job does.
func (b *broker) subscribe(ctx context.Context) (*Latest[Snapshot], <-chan Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := NewLatest[Snapshot]()
	ev := make(chan Event, 256)
	if b.closed {
		l.Put(b.last)
		close(ev)
		return l, ev
	}
	if !b.last.Time.IsZero() {
		l.Put(b.last)
	}
	b.snaps = append(b.snaps, l)
	b.events = append(b.events, ev)
	if ctx.Done() != nil {
		go func() {
			<-ctx.Done()
			b.unsubscribe(l, ev)
		}()
	}
	return l, ev
}

func (b *broker) unsubscribe(l *Latest[Snapshot], ev chan Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	for i, x := range b.snaps {
		if x == l {
			b.snaps = append(b.snaps[:i], b.snaps[i+1:]...)
			break
		}
	}
	for i, x := range b.events {
		if x == ev {
			b.events = append(b.events[:i], b.events[i+1:]...)
			close(ev)
			break
		}
	}
}

// latest is the most recent snapshot.
func (b *broker) latest() Snapshot {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last
}

func (b *broker) publishSnapshot(s Snapshot) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last = s
	for _, l := range b.snaps {
		l.Put(s)
	}
}

// publishEvent never blocks: a subscriber that does not keep up loses events
// (snapshots still carry the full state).
func (b *broker) publishEvent(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	for _, ch := range b.events {
		select {
		case ch <- e:
		default:
		}
	}
}

func (b *broker) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	for _, ch := range b.events {
		close(ch)
	}
}

// Received follows how much of an image has arrived, for progress bars:
// the verified pieces, or more when bytes received but not yet verified
// are counted (a 16 MiB piece takes a while to complete), never above the
// total and never backwards. What was verified before any byte arrived
// (a resumed deploy) is the base received bytes add to.
type Received struct{ base, got int64 }

// Update takes the job's latest snapshot and returns the bytes arrived.
func (r *Received) Update(s Snapshot) int64 {
	if s.BytesDownloaded == 0 {
		r.base = max(r.base, s.BytesDone)
	}
	r.got = max(r.got, s.BytesDone, min(s.BytesTotal, r.base+s.BytesDownloaded))
	return r.got
}
