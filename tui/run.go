package tui

import (
	"context"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"ezio/engine"
	"ezio/themes"
)

// RunOptions start the wizard.
type RunOptions struct {
	Theme  string
	Deps   *Deps
	Config *Config
	// Start, when set, is the first screen instead of the menu (the demo
	// opens on its dashboard); Esc/Enter on its result goes to the menu.
	Start func(c *Common) Screen
}

// jobTracker remembers the jobs the wizard started, so that quitting
// stops them and waits for a deploy to flush what it wrote.
type jobTracker struct {
	mu   sync.Mutex
	jobs []*engine.Job
}

func (t *jobTracker) add(j *engine.Job) {
	t.mu.Lock()
	t.jobs = append(t.jobs, j)
	t.mu.Unlock()
}

func (t *jobTracker) stopAll(wait time.Duration) {
	t.mu.Lock()
	js := t.jobs
	t.mu.Unlock()
	deadline := time.After(wait)
	for _, j := range js {
		j.Stop()
	}
	for _, j := range js {
		select {
		case <-j.Done():
		case <-deadline:
			return
		}
	}
}

// Track wraps deps' Deploy, Seed and SeedDisk so that Run stops their
// jobs on exit.
func (d *Deps) track() *jobTracker {
	t := &jobTracker{}
	deploy, seed := d.Deploy, d.Seed
	d.Deploy = func(ctx context.Context, o engine.DeployOptions) (*engine.Job, error) {
		j, err := deploy(ctx, o)
		if j != nil {
			t.add(j)
		}
		return j, err
	}
	d.Seed = func(ctx context.Context, o engine.SeedOptions) (*engine.Job, error) {
		j, err := seed(ctx, o)
		if j != nil {
			t.add(j)
		}
		return j, err
	}
	if seedDisk := d.SeedDisk; seedDisk != nil {
		d.SeedDisk = func(ctx context.Context, dir string, o DiskSeedOptions) (*DiskSeeding, error) {
			sd, err := seedDisk(ctx, dir, o)
			if sd != nil {
				for _, j := range sd.Jobs {
					t.add(j)
				}
			}
			return sd, err
		}
	}
	return t
}

// Run shows the wizard until the user quits or ctx ends.
func Run(ctx context.Context, o RunOptions) error {
	st, err := themes.Load(o.Theme, themes.FromEnviron())
	if err != nil {
		return err
	}
	c := NewCommon(st)
	tracker := o.Deps.track()
	m := New(c, o.Deps, o.Config)
	if o.Start != nil {
		m.Start(o.Start(c))
	}
	p := tea.NewProgram(m, tea.WithAltScreen(), tea.WithContext(ctx))
	_, err = p.Run()
	tracker.stopAll(time.Minute)
	if err == tea.ErrProgramKilled && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
