package daemon

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"ezio/engine/ezioapi"
)

// RemoveTorrent (an ezio extension) stops one torrent and forgets it, so
// that a daemon handed torrent after torrent for days holds only the ones
// still wanted. It answers once the job has ended: its torrent dropped
// from the session, its connections and files closed, its goroutines
// joined (engine.Job.finish), a deploy's resume record written if it was
// unfinished. The data on the save_path is left as it is.
func (d *Daemon) RemoveTorrent(ctx context.Context, req *ezioapi.RemoveTorrentRequest) (*ezioapi.RemoveTorrentResponse, error) {
	h := strings.ToLower(req.GetHash())
	d.mu.Lock()
	if d.closing {
		d.mu.Unlock()
		return nil, status.Error(codes.Unavailable, "the daemon is shutting down")
	}
	e := d.torrents[h]
	d.mu.Unlock()
	if e == nil {
		return nil, status.Errorf(codes.NotFound, "no torrent with infohash %q in this daemon", req.GetHash())
	}
	e.markStopping()
	e.job.Stop()
	select {
	case <-e.job.Done():
	case <-ctx.Done():
		// Still ending: it stays listed until it has, and a second call
		// waits again.
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	d.mu.Lock()
	if d.torrents[h] == e {
		delete(d.torrents, h)
		d.order = slices.DeleteFunc(d.order, func(x string) bool { return x == h })
	}
	d.mu.Unlock()
	err := e.job.Err()
	switch {
	case err == nil || errors.Is(err, context.Canceled):
		d.log.Info("torrent removed", "name", e.job.Name(), "infohash", h, "finished", !e.finishedAtTime().IsZero())
	default:
		d.log.Info("torrent removed", "name", e.job.Name(), "infohash", h, "had_failed", err)
	}
	return &ezioapi.RemoveTorrentResponse{}, nil
}

// GetDiagnostics (an ezio extension) reports what the process holds. A
// leak in a long-running daemon shows as one of these growing with the
// number of torrents it was handed; goroutines in particular cannot be
// seen from outside the process. It runs on the gRPC address, which is
// loopback or a root-only socket by default, and it changes nothing but
// (when asked) runs the garbage collector.
func (d *Daemon) GetDiagnostics(_ context.Context, req *ezioapi.DiagnosticsRequest) (*ezioapi.DiagnosticsResponse, error) {
	if req.GetCollectGarbage() {
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	out := &ezioapi.DiagnosticsResponse{
		Goroutines:      int64(runtime.NumGoroutine()),
		OpenFiles:       -1,
		RssBytes:        -1,
		HeapInuseBytes:  int64(ms.HeapInuse),
		SessionTorrents: int64(len(d.h.Jobs())),
	}
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		out.OpenFiles = int64(len(ents))
	}
	if rss, err := ProcRSS("self"); err == nil {
		out.RssBytes = rss
	}
	if req.GetGoroutineProfile() {
		var b strings.Builder
		pprof.Lookup("goroutine").WriteTo(&b, 1)
		out.GoroutineProfile = b.String()
	}
	d.mu.Lock()
	out.Torrents = int64(len(d.torrents))
	d.mu.Unlock()
	return out, nil
}

// ProcRSS reads VmRSS of /proc/PID/status (pid "self" for this process),
// in bytes.
func ProcRSS(pid string) (int64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			f := strings.Fields(v) // "12345 kB"
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, errors.New("/proc/" + pid + "/status has no VmRSS line")
}
