package daemon

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"

	"ezio/engine"
)

// host runs the daemon's torrents. It has exactly the method set of
// engine.Session (one BitTorrent client for every torrent); until that
// lands, perJobHost stands in for it, so switching is one line in New.
type host interface {
	Seed(ctx context.Context, o engine.SeedOptions) (*engine.Job, error)
	Deploy(ctx context.Context, o engine.DeployOptions) (*engine.Job, error)
	Close() error
}

// perJobHost gives every torrent a private one-job client of today's
// engine (engine.Seed / engine.Deploy), each on its own port: the next
// port up from the --listen base, or any free port when the base is 0.
type perJobHost struct {
	tuning engine.Tuning

	mu   sync.Mutex
	next int // ports handed out so far
	jobs []*engine.Job
}

func newPerJobHost(tu engine.Tuning) *perJobHost { return &perJobHost{tuning: tu} }

// listenAddr is the BitTorrent address of the next job.
func (h *perJobHost) listenAddr() (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	base := h.tuning.ListenAddr
	if base == "" {
		base = fmt.Sprintf(":%d", engine.DefaultPeerPort)
	}
	host, p, err := net.SplitHostPort(base)
	if err != nil {
		return "", fmt.Errorf("listen address %q: %w", base, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", fmt.Errorf("listen address %q: bad port", base)
	}
	if port != 0 {
		port += h.next
	}
	h.next++
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}

func (h *perJobHost) add(j *engine.Job, err error) (*engine.Job, error) {
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.jobs = append(h.jobs, j)
	h.mu.Unlock()
	return j, nil
}

func (h *perJobHost) Seed(ctx context.Context, o engine.SeedOptions) (*engine.Job, error) {
	addr, err := h.listenAddr()
	if err != nil {
		return nil, err
	}
	o.Tuning = h.tuning
	o.Tuning.ListenAddr = addr
	return h.add(engine.Seed(ctx, o))
}

func (h *perJobHost) Deploy(ctx context.Context, o engine.DeployOptions) (*engine.Job, error) {
	addr, err := h.listenAddr()
	if err != nil {
		return nil, err
	}
	o.Tuning = h.tuning
	o.Tuning.ListenAddr = addr
	return h.add(engine.Deploy(ctx, o))
}

// Close stops every job and waits for each to write its resume record.
func (h *perJobHost) Close() error {
	h.mu.Lock()
	jobs := h.jobs
	h.mu.Unlock()
	for _, j := range jobs {
		j.Stop()
	}
	for _, j := range jobs {
		<-j.Done()
	}
	return nil
}
