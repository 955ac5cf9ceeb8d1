package daemon

import (
	"context"
	"log/slog"

	"ezio/engine"
)

// host runs the daemon's torrents: one engine.Session, that is one
// BitTorrent client on one port for every torrent, as EZIO's daemon has
// one libtorrent session. Kept an interface so the service can be tested
// against the method set alone.
type host interface {
	Seed(ctx context.Context, o engine.SeedOptions) (*engine.Job, error)
	Deploy(ctx context.Context, o engine.DeployOptions) (*engine.Job, error)
	Close() error
	// SetUploadLimit changes the session-wide upload cap (bytes/s, 0: none)
	// while torrents run: --slow-start.
	SetUploadLimit(bytesPerSec int64)
	// Jobs lists the torrents the session holds (GetDiagnostics).
	Jobs() []*engine.Job
}

func newHost(tu engine.Tuning, log *slog.Logger) (host, error) {
	return engine.NewSession(engine.SessionOptions{Tuning: tu, Logger: log})
}
