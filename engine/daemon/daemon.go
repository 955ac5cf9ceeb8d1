// Package daemon is `ezio daemon`: a long-running process that hosts many
// torrents at once and is driven over the gRPC API of EZIO's daemon
// (package ezio, service EZIO, see engine/ezioapi/ezio.proto), so that
// Clonezilla's Lite Server scripts and EZIO's Python utilities work
// against ezio unchanged.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"

	"ezio/engine"
	"ezio/engine/ezioapi"
	"ezio/engine/torrentfile"
)

// DefaultAddr is where EZIO's daemon and utilities meet by default.
const DefaultAddr = "127.0.0.1:50051"

// MaxMessageBytes bounds one gRPC message. A partition torrent made from
// partclone's extents lists every extent as a file: hundreds of thousands
// of them make a .torrent of tens of MB, far over gRPC's 4 MiB default:
// the largest torrent ezio reads, plus room for the other fields.
const MaxMessageBytes = torrentfile.MaxTorrentBytes + 1<<20

// Options configure a daemon.
type Options struct {
	// GRPCListen is host:port or unix:/path (default DefaultAddr).
	GRPCListen string
	// FileMode (-F): a save_path is the directory that holds
	// <name>/<offset> extent files, as libtorrent lays out a multi-file
	// torrent; otherwise it is a disk, a partition or an image file.
	FileMode bool
	// SlowStart ramps the upload limit up from 10 MiB/s by 10 MiB/s every
	// SlowStartPeriod (default 10 s), unlimited from 100 MiB/s on.
	SlowStart       bool
	SlowStartPeriod time.Duration
	// Tuning applies to every torrent; ListenAddr is the BitTorrent address.
	Tuning engine.Tuning
	Logger *slog.Logger
}

// Daemon is one running control daemon.
type Daemon struct {
	o   Options
	h   host
	log *slog.Logger

	ctx    context.Context // the torrents' context: ends at shutdown
	cancel context.CancelFunc

	mu       sync.Mutex
	torrents map[string]*entry // by lowercase hex infohash
	order    []string          // in the order they were added
	pending  map[string]bool   // being added right now
	closing  bool

	shutdownOnce sync.Once
	shutdownDone chan struct{} // closed once every torrent is flushed
	shutdownErr  error
	requested    chan struct{} // closed by the Shutdown RPC
	reqOnce      sync.Once

	ezioapi.UnimplementedEZIOServer
}

// New starts the daemon's BitTorrent session; Serve runs the daemon.
func New(o Options) (*Daemon, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.GRPCListen == "" {
		o.GRPCListen = DefaultAddr
	}
	if o.SlowStartPeriod <= 0 {
		o.SlowStartPeriod = 10 * time.Second
	}
	h, err := newHost(o.Tuning, o.Logger)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Daemon{
		o: o, h: h, log: o.Logger.With("component", "daemon"),
		ctx: ctx, cancel: cancel,
		torrents: map[string]*entry{}, pending: map[string]bool{},
		shutdownDone: make(chan struct{}), requested: make(chan struct{}),
	}, nil
}

// Listen opens a gRPC address: host:port over TCP, or unix:/path (a
// stale socket left by an earlier daemon is replaced; the new one is for
// root only, since whoever reaches it can overwrite disks).
func Listen(addr string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		path = strings.TrimPrefix(path, "//")
		if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
			if c, err := net.Dial("unix", path); err == nil {
				c.Close()
				return nil, fmt.Errorf("gRPC address %s: another daemon is listening there", addr)
			}
			os.Remove(path)
		}
		ln, err := net.Listen("unix", path)
		if err != nil {
			return nil, fmt.Errorf("gRPC address %s: %w", addr, err)
		}
		if err := os.Chmod(path, 0o600); err != nil {
			ln.Close()
			return nil, fmt.Errorf("gRPC address %s: %w", addr, err)
		}
		return ln, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("gRPC address %s: %w (is another daemon running? give this one another address)", addr, err)
	}
	return ln, nil
}

// Serve answers gRPC calls on ln until the Shutdown call or the end of
// ctx, then stops every torrent, writing each deploy's resume record. It
// returns nil when every torrent was flushed cleanly.
func (d *Daemon) Serve(ctx context.Context, ln net.Listener) error {
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(MaxMessageBytes), grpc.MaxSendMsgSize(MaxMessageBytes))
	ezioapi.RegisterEZIOServer(srv, d)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	d.log.Info("daemon listening", "grpc", ln.Addr().String(), "file_mode", d.o.FileMode, "bt_listen", d.o.Tuning.ListenAddr)
	if d.o.SlowStart {
		go d.slowStart()
	}
	var serveErr error
	select {
	case <-ctx.Done():
		d.log.Info("stopping on signal")
	case <-d.requested:
	case serveErr = <-served:
	}
	err := d.shutdown()
	// Let the Shutdown call (and any status call) finish, then close.
	stopped := make(chan struct{})
	go func() { srv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		srv.Stop()
	}
	if serveErr != nil && !errors.Is(serveErr, grpc.ErrServerStopped) {
		return serveErr
	}
	return err
}

// shutdown stops every torrent once and waits until each is flushed.
func (d *Daemon) shutdown() error {
	d.shutdownOnce.Do(func() {
		d.mu.Lock()
		d.closing = true
		var list []*entry
		for _, h := range d.order {
			list = append(list, d.torrents[h])
		}
		d.mu.Unlock()
		for _, e := range list {
			e.markStopping()
			e.job.Stop()
		}
		var errs []error
		for _, e := range list {
			<-e.job.Done()
			err := e.job.Err()
			if err != nil && !errors.Is(err, context.Canceled) && !e.failedBefore() {
				errs = append(errs, fmt.Errorf("%s: %w", e.job.Name(), err))
			}
		}
		if err := d.h.Close(); err != nil {
			errs = append(errs, err)
		}
		d.cancel()
		d.shutdownErr = errors.Join(errs...)
		if d.shutdownErr != nil {
			d.log.Error("shutdown: not every torrent was flushed", "err", d.shutdownErr)
		} else {
			d.log.Info("shutdown: every torrent stopped and flushed", "torrents", len(list))
		}
		close(d.shutdownDone)
	})
	<-d.shutdownDone
	return d.shutdownErr
}

// slowStart ramps the session's upload limit as EZIO's --slow-start does.
func (d *Daemon) slowStart() {
	start := time.Now()
	for {
		limit := SlowStartLimit(time.Since(start), d.o.SlowStartPeriod)
		d.h.SetUploadLimit(limit)
		if limit == 0 {
			d.log.Info("slow start over: uploads unlimited")
			return
		}
		d.log.Info("slow start", "upload_limit_mib_s", limit>>20)
		select {
		case <-time.After(d.o.SlowStartPeriod):
		case <-d.ctx.Done():
			return
		}
	}
}

// SlowStartLimit is the upload limit (bytes/s) after elapsed: 10 MiB/s,
// 10 MiB/s more every period, and 0 (unlimited) once it would reach
// 100 MiB/s, as EZIO ramps it.
func SlowStartLimit(elapsed, period time.Duration) int64 {
	const step = 10 << 20
	if period <= 0 {
		return 0
	}
	limit := int64(1+elapsed/period) * step
	if limit >= 100<<20 {
		return 0
	}
	return limit
}
