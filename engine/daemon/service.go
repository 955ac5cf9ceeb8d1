package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"ezio/disks"
	"ezio/engine"
	"ezio/engine/ezioapi"
	"ezio/engine/torrentfile"
)

// EZIO's defaults for a torrent's upload slots and connections.
const (
	defaultMaxUploads     = 3
	defaultMaxConnections = 5
)

// forever keeps a finished deploy serving the others until Shutdown, as a
// torrent in EZIO's daemon does.
const forever = 100 * 365 * 24 * time.Hour

// AddTorrent starts serving (seeding_mode) or receiving one torrent.
func (d *Daemon) AddTorrent(_ context.Context, req *ezioapi.AddRequest) (*ezioapi.AddResponse, error) {
	mi, err := torrentfile.ParseTorrent(req.GetTorrent())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	_, l, err := torrentfile.Summarize(mi)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if req.GetSavePath() == "" {
		return nil, status.Error(codes.InvalidArgument, "no save_path given: name a disk, a partition, an image file or (with -F) a directory")
	}
	ih := mi.HashInfoBytes().HexString()
	d.mu.Lock()
	switch {
	case d.closing:
		d.mu.Unlock()
		return nil, status.Error(codes.Unavailable, "the daemon is shutting down")
	case d.torrents[ih] != nil || d.pending[ih]:
		d.mu.Unlock()
		return nil, status.Errorf(codes.AlreadyExists, "torrent %s (%s) is already added", l.Name, ih)
	}
	d.pending[ih] = true
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.pending, ih)
		d.mu.Unlock()
	}()

	path := req.GetSavePath()
	if d.o.FileMode {
		// libtorrent's layout: <save_path>/<name>/<offset> files.
		path = filepath.Join(path, l.Name)
	}
	uploads, conns := int(req.GetMaxUploads()), int(req.GetMaxConnections())
	if uploads <= 0 {
		uploads = defaultMaxUploads
	}
	if conns <= 0 {
		conns = defaultMaxConnections
	}
	log := d.o.Logger
	var j *engine.Job
	if req.GetSeedingMode() {
		j, err = d.h.Seed(d.ctx, engine.SeedOptions{Torrent: mi, Source: path, Logger: log})
	} else {
		if d.o.FileMode {
			if _, serr := os.Stat(path); errors.Is(serr, os.ErrNotExist) {
				if err := os.MkdirAll(path, 0o755); err != nil {
					return nil, status.Error(codes.FailedPrecondition, err.Error())
				}
			}
		}
		j, err = d.h.Deploy(d.ctx, engine.DeployOptions{Torrent: mi, Target: path, SeedAfter: forever, Timeout: -1, Logger: log})
	}
	if err != nil {
		d.log.Warn("torrent refused", "name", l.Name, "infohash", ih, "save_path", path, "err", err)
		return nil, addError(err)
	}
	e := newEntry(j, req.GetSavePath(), time.Now())
	go e.watch(d.ctx)
	d.mu.Lock()
	d.torrents[ih] = e
	d.order = append(d.order, ih)
	closing := d.closing
	d.mu.Unlock()
	if closing {
		// Shutdown began while this torrent started: it is in no list yet.
		e.markStopping()
		j.Stop()
		<-j.Done()
	}
	role := "deploy"
	if req.GetSeedingMode() {
		role = "seed"
	}
	d.log.Info("torrent added", "name", l.Name, "infohash", ih, "role", role, "save_path", path,
		"max_uploads", uploads, "max_connections", conns, "sequential", req.GetSequentialDownload())
	return &ezioapi.AddResponse{Result: true}, nil
}

// addError turns an engine refusal into a gRPC status carrying the very
// sentence `ezio deploy` / `ezio seed` print for it.
func addError(err error) error {
	var ve *torrentfile.ValidationError
	var re *disks.RefusedError
	switch {
	case errors.As(err, &ve):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.As(err, &re):
		return status.Error(codes.FailedPrecondition, err.Error())
	}
	return status.Error(codes.FailedPrecondition, err.Error())
}

// GetTorrentStatus reports every torrent, or those asked for. Unknown
// hashes are left out (EZIO ignores the filter and reports everything).
func (d *Daemon) GetTorrentStatus(_ context.Context, req *ezioapi.UpdateRequest) (*ezioapi.UpdateStatus, error) {
	want := map[string]bool{}
	for _, h := range req.GetHashes() {
		want[strings.ToLower(h)] = true
	}
	d.mu.Lock()
	var list []*entry
	for _, h := range d.order {
		if len(want) == 0 || want[h] {
			list = append(list, d.torrents[h])
		}
	}
	d.mu.Unlock()
	now := time.Now()
	out := &ezioapi.UpdateStatus{Torrents: map[string]*ezioapi.Torrent{}}
	for _, e := range list {
		t := e.status(now)
		out.Hashes = append(out.Hashes, t.Hash)
		out.Torrents[t.Hash] = t
	}
	return out, nil
}

func (d *Daemon) lookup(hash string) (*entry, error) {
	h := strings.ToLower(hash)
	d.mu.Lock()
	e := d.torrents[h]
	d.mu.Unlock()
	if e == nil {
		return nil, status.Errorf(codes.NotFound, "no torrent with infohash %q in this daemon", hash)
	}
	return e, nil
}

// PauseTorrent stops data transfer of one torrent, keeping its peers.
func (d *Daemon) PauseTorrent(_ context.Context, req *ezioapi.PauseTorrentRequest) (*ezioapi.PauseTorrentResponse, error) {
	e, err := d.lookup(req.GetHash())
	if err != nil {
		return nil, err
	}
	e.job.SetPaused(true)
	return &ezioapi.PauseTorrentResponse{}, nil
}

// ResumeTorrent restarts data transfer of a paused torrent.
func (d *Daemon) ResumeTorrent(_ context.Context, req *ezioapi.ResumeTorrentRequest) (*ezioapi.ResumeTorrentResponse, error) {
	e, err := d.lookup(req.GetHash())
	if err != nil {
		return nil, err
	}
	e.job.SetPaused(false)
	return &ezioapi.ResumeTorrentResponse{}, nil
}

// Shutdown stops every torrent, waits until each deploy has flushed its
// data and written its resume record, answers, and then the process ends.
func (d *Daemon) Shutdown(context.Context, *ezioapi.Empty) (*ezioapi.Empty, error) {
	d.log.Info("shutdown requested")
	err := d.shutdown()
	d.reqOnce.Do(func() { close(d.requested) })
	if err != nil {
		return nil, status.Error(codes.Internal, fmt.Sprintf("shutdown: %v", err))
	}
	return &ezioapi.Empty{}, nil
}

// GetVersion reports ezio's version number (EZIO's tools print "ezio "
// before it).
func (d *Daemon) GetVersion(context.Context, *ezioapi.Empty) (*ezioapi.VersionResponse, error) {
	return &ezioapi.VersionResponse{Version: engine.Version}, nil
}
