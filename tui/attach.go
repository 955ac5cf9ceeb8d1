package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/huh"

	"ezio/engine"
	"ezio/engine/daemon/client"
	"ezio/tui/format"
)

// Daemon is a running control daemon as the wizard uses it (ezio daemon,
// or EZIO's): *client.Conn has it; tests may use a fake.
type Daemon interface {
	// Torrents lists the torrents asked for, every one when none is.
	Torrents(ctx context.Context, hashes ...string) ([]client.Torrent, error)
	SetPaused(ctx context.Context, hash string, paused bool) error
	Close() error
}

// AttachValues are what the attach screen asks; kept between visits.
type AttachValues struct {
	Addr string
}

// How often the attached dashboard asks the daemon, how long one call may
// take, and how long the daemon may stay silent before the dashboard
// gives up on it.
var (
	attachPoll    = 500 * time.Millisecond
	attachCallMax = 5 * time.Second
	attachLostMax = 30 * time.Second
)

// AttachFlow asks for a daemon's address, lists its torrents and opens
// the dashboard on the one chosen.
type AttachFlow struct {
	c      *Common
	deps   *Deps
	v      *AttachValues
	conn   Daemon
	connTo string // the address conn is for

	listing  bool // the torrent list is shown (else the address form)
	torrents []client.Torrent
	choice   int
	form     *huh.Form
	formID   int
	busy     string
}

type attachListMsg struct {
	flow     *AttachFlow
	conn     Daemon
	addr     string
	torrents []client.Torrent
	err      error
}

// NewAttachFlow starts at the address, the daemon's default the first time.
func NewAttachFlow(c *Common, deps *Deps, v *AttachValues) *AttachFlow {
	if v.Addr == "" {
		v.Addr = deps.DaemonAddr
	}
	if v.Addr == "" {
		v.Addr = client.DefaultAddr
	}
	return &AttachFlow{c: c, deps: deps, v: v}
}

// Init rebuilds the current step's form; back from a dashboard the list
// is asked for again, so it shows what the daemon does now.
func (f *AttachFlow) Init() tea.Cmd {
	f.busy = ""
	if f.listing {
		return f.list()
	}
	f.build()
	return f.form.Init()
}

func (f *AttachFlow) build() {
	if !f.listing {
		f.form, f.formID = newForm(f.c, huh.NewGroup(
			huh.NewInput().Title("Address of the daemon").
				Description("HOST:PORT, or unix:/PATH for a local socket.\nezio daemon listens on "+client.DefaultAddr+" unless told otherwise.").
				Value(&f.v.Addr).
				Validate(func(s string) error {
					if strings.TrimSpace(s) == "" {
						return fmt.Errorf("type the daemon's address")
					}
					return nil
				}),
		))
		return
	}
	var opts []huh.Option[int]
	for i, t := range f.torrents {
		opts = append(opts, huh.NewOption(torrentRow(t), i))
	}
	f.choice = min(f.choice, max(0, len(f.torrents)-1))
	f.form, f.formID = newForm(f.c, huh.NewGroup(
		huh.NewSelect[int]().Title("Which torrent?").
			Description(fmt.Sprintf("%d in the daemon at %s", len(f.torrents), f.connTo)).
			Options(opts...).Value(&f.choice),
	))
}

// torrentRow is one torrent in the list: name, progress, state, rates.
func torrentRow(t client.Torrent) string {
	s := t.Snapshot
	state := t.State
	if s.Paused {
		state += ", paused"
	}
	return fmt.Sprintf("%-12s %6s  %-18s down %s  up %s", format.Name(t.Name), format.Percent(s.BytesDone, s.BytesTotal),
		state, format.Rate(s.DownloadRate), format.Rate(s.UploadRate))
}

// list (re)connects when the address changed and asks for the torrents.
func (f *AttachFlow) list() tea.Cmd {
	addr := trimmed(f.v.Addr)
	f.busy = "asking the daemon at " + addr + " for its torrents"
	conn, connTo := f.conn, f.connTo
	ctx, deps, flow := f.deps.Ctx, f.deps, f
	return func() tea.Msg {
		if conn == nil || connTo != addr {
			if conn != nil {
				conn.Close()
			}
			var err error
			if conn, err = deps.AttachDaemon(addr); err != nil {
				return attachListMsg{flow: flow, addr: addr, err: err}
			}
		}
		cctx, cancel := context.WithTimeout(ctx, attachCallMax)
		defer cancel()
		ts, err := conn.Torrents(cctx)
		return attachListMsg{flow: flow, conn: conn, addr: addr, torrents: ts, err: err}
	}
}

func (f *AttachFlow) Update(msg tea.Msg) (Screen, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyMsg:
		if key.Matches(msg, f.c.Keys.Back) {
			if f.listing {
				f.listing = false
				return f, f.Init()
			}
			f.close()
			return f, func() tea.Msg { return backToMenuMsg{} }
		}
		if f.busy != "" {
			return f, nil
		}
		if f.listing && key.Matches(msg, refreshKey) {
			return f, f.list()
		}
	case attachListMsg:
		if msg.flow != f {
			return f, nil
		}
		f.busy = ""
		f.conn, f.connTo = msg.conn, msg.addr
		if msg.err != nil {
			f.listing = false
			return f, errorScreen(attachProblem(msg.addr, msg.err), f)
		}
		f.listing, f.torrents = true, msg.torrents
		f.build()
		return f, f.form.Init()
	case formDoneMsg:
		if msg.id != f.formID {
			return f, nil
		}
		if !f.listing {
			return f, f.list()
		}
		if len(f.torrents) == 0 {
			return f, f.list()
		}
		t := f.torrents[f.choice]
		return f, show(newAttachDashboard(f.c, f.deps.Ctx, f.conn, f.connTo, t, f))
	}
	if f.form == nil {
		return f, nil
	}
	_, cmd := f.form.Update(msg)
	return f, cmd
}

func (f *AttachFlow) close() {
	if f.conn != nil {
		f.conn.Close()
		f.conn, f.connTo = nil, ""
	}
}

var refreshKey = key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "refresh"))

// attachProblem words why the daemon could not be asked.
func attachProblem(addr string, err error) problem {
	var ue *engine.UnreachableError
	if errors.As(err, &ue) || errors.Is(err, context.DeadlineExceeded) {
		what := "Nothing answered at " + addr + "."
		if ue != nil && ue.Err != nil {
			what = "Nothing answered at " + addr + ": " + ue.Err.Error() + "."
		}
		return problem{
			title: "No daemon answers at " + addr,
			what:  what,
			hint:  "Check that ezio daemon runs on that machine and listens on that address (it listens on " + client.DefaultAddr + ", this machine only, unless told otherwise), then try again.",
		}
	}
	return problem{title: "Could not ask the daemon at " + addr, what: err.Error(),
		hint: "Check the address; it must be a daemon that speaks EZIO's API (ezio daemon, or EZIO's own)."}
}

func (f *AttachFlow) keys() []key.Binding {
	k := f.c.Keys
	if f.busy != "" {
		return []key.Binding{as(k.Back, "menu"), as(k.ForceQuit, "quit")}
	}
	if f.listing {
		bs := []key.Binding{as(k.Back, "address")}
		if f.form != nil {
			bs = append(bs, f.form.KeyBinds()...)
		}
		return append(bs, refreshKey, as(k.ForceQuit, "quit"))
	}
	return formKeys(f.c, f.form, "menu")
}

func (f *AttachFlow) ShortHelp() []key.Binding  { return f.keys() }
func (f *AttachFlow) FullHelp() [][]key.Binding { return [][]key.Binding{f.keys()} }

func (f *AttachFlow) View() string {
	c, st := f.c, f.c.Styles
	lines := []string{c.titleBar("attach to a daemon", ""), ""}
	if f.busy != "" {
		lines = append(lines, "  "+st.Accent.Render(st.Glyphs.Spinner[0])+" "+st.Text.Render(f.busy+"..."))
		return c.page(lines, f)
	}
	if f.listing && len(f.torrents) == 0 {
		lines = append(lines, "  "+st.Text.Render("The daemon at "+f.connTo+" has no torrents yet."),
			"  "+st.Muted.Render("Press r to ask again once one is added."))
		return c.page(lines, keyList{as(c.Keys.Back, "address"), refreshKey, as(c.Keys.ForceQuit, "quit")})
	}
	if !f.listing {
		lines[1] = "  " + st.Muted.Render("watch the torrents a running ezio daemon serves or writes")
		lines = append(lines, "")
	}
	lines = append(lines, indent(strings.Split(f.form.View(), "\n"), 1)...)
	return c.page(lines, f)
}

// remoteJob is a daemon's torrent seen through polling: it feeds the
// dashboard the snapshots and log lines a local job would, and maps
// pause to the daemon's PauseTorrent/ResumeTorrent.
type remoteJob struct {
	d    Daemon
	hash string
	name string
	addr string

	snaps  *engine.Latest[engine.Snapshot]
	events chan engine.Event
	done   chan struct{}
	cancel context.CancelFunc

	// The timing, taken from attachPoll and friends when it starts.
	poll, callMax, lostMax time.Duration

	mu     sync.Mutex
	paused bool
	err    error
	closed bool // events is closed: log lines go nowhere
}

// errDetached: the technician left the dashboard; the daemon goes on.
var errDetached = errors.New("detached from the daemon")

func startRemoteJob(ctx context.Context, d Daemon, addr string, t client.Torrent) *remoteJob {
	ctx, cancel := context.WithCancel(ctx)
	j := &remoteJob{
		d: d, hash: t.Hash, name: t.Name, addr: addr, paused: t.Snapshot.Paused,
		snaps: engine.NewLatest[engine.Snapshot](), events: make(chan engine.Event, 64),
		done: make(chan struct{}), cancel: cancel,
		poll: attachPoll, callMax: attachCallMax, lostMax: attachLostMax,
	}
	j.snaps.Put(t.Snapshot)
	go j.run(ctx, t)
	return j
}

// log hands the dashboard a line; one the dashboard has no room for
// (it reads them as they come) is dropped rather than stalling the poll.
func (j *remoteJob) log(level, msg string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return
	}
	select {
	case j.events <- engine.Event{Kind: engine.EventLog, Time: time.Now(), Level: level, Message: msg}:
	default:
	}
}

func (j *remoteJob) run(ctx context.Context, first client.Torrent) {
	defer close(j.done)
	defer func() {
		j.mu.Lock()
		j.closed = true
		close(j.events)
		j.mu.Unlock()
	}()
	j.log("info", fmt.Sprintf("attached to the daemon at %s: %s (%s), %s", j.addr, j.name, j.hash, first.State))
	j.log("info", "the daemon's API gives no peer list and no piece map: peers are counted, not named")
	state, last := first.State, first.Snapshot
	var lostAt time.Time
	tick := time.NewTicker(j.poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			j.end(errDetached)
			return
		case <-tick.C:
		}
		cctx, cancel := context.WithTimeout(ctx, j.callMax)
		ts, err := j.d.Torrents(cctx, j.hash)
		cancel()
		if ctx.Err() != nil {
			j.end(errDetached)
			return
		}
		var t *client.Torrent
		for i := range ts {
			if strings.EqualFold(ts[i].Hash, j.hash) {
				t = &ts[i]
			}
		}
		switch {
		case err != nil:
			if lostAt.IsZero() {
				lostAt = time.Now()
				j.log("warn", "the daemon does not answer: "+err.Error())
			}
			// The dashboard says it waits, with nothing moving.
			w := last
			w.Time, w.Phase, w.LostSeconds = time.Now(), engine.PhaseWaiting, max(0.001, time.Since(lostAt).Seconds())
			w.DownloadRate, w.UploadRate = 0, 0
			j.snaps.Put(w)
			if time.Since(lostAt) >= j.lostMax {
				j.end(fmt.Errorf("the daemon at %s has not answered for %s: %w", j.addr, format.Duration(j.lostMax), err))
				return
			}
			continue
		case t == nil:
			j.end(fmt.Errorf("%s: %w", j.name, client.ErrGone))
			return
		}
		if !lostAt.IsZero() {
			j.log("info", "the daemon answers again")
			lostAt = time.Time{}
		}
		if t.State != state {
			j.log("info", fmt.Sprintf("%s is now %s", j.name, t.State))
			state = t.State
		}
		j.mu.Lock()
		j.paused = t.Snapshot.Paused
		j.mu.Unlock()
		last = t.Snapshot
		j.snaps.Put(last)
	}
}

func (j *remoteJob) end(err error) {
	j.mu.Lock()
	j.err = err
	j.mu.Unlock()
}

func (j *remoteJob) Err() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

// Stop detaches: polling ends, the daemon's torrent goes on.
func (j *remoteJob) Stop() { j.cancel() }

func (j *remoteJob) Paused() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.paused
}

// SetPaused asks the daemon; the next poll shows what it did.
func (j *remoteJob) SetPaused(p bool) {
	j.mu.Lock()
	j.paused = p
	j.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), j.callMax)
		defer cancel()
		what := "resume"
		if p {
			what = "pause"
		}
		if err := j.d.SetPaused(ctx, j.hash, p); err != nil {
			j.log("error", fmt.Sprintf("the daemon did not %s %s: %s", what, j.name, err.Error()))
			return
		}
		j.log("info", fmt.Sprintf("asked the daemon to %s %s", what, j.name))
	}()
}

// AttachDashboard is the usual dashboard on a daemon's torrent. Leaving it
// (Esc, or quitting the wizard) detaches and never stops the torrent:
// the daemon's API stops torrents only all at once, by shutting down.
type AttachDashboard struct {
	*Dashboard
	job  *remoteJob
	back *AttachFlow
}

func newAttachDashboard(c *Common, ctx context.Context, d Daemon, addr string, t client.Torrent, back *AttachFlow) *AttachDashboard {
	j := startRemoteJob(ctx, d, addr, t)
	dash := newDashboard(c, engine.RoleDeploy, format.Name(t.Name)+" on the daemon at "+addr, j)
	dash.snaps, dash.events, dash.done, dash.errf = j.snaps, j.events, j.done, j.Err
	a := &AttachDashboard{Dashboard: dash, job: j, back: back}
	dash.keyMap = a
	dash.peersNote = "the daemon counts its peers but does not name them"
	return a
}

// Running: nothing is lost by leaving, so quitting never asks.
func (a *AttachDashboard) Running() bool { return false }

func (a *AttachDashboard) Update(msg tea.Msg) (Screen, tea.Cmd) {
	switch msg := msg.(type) {
	case jobDoneMsg:
		if msg.id != a.id {
			return a, nil
		}
		a.finished = true
		if errors.Is(msg.err, errDetached) || msg.err == nil {
			return a, show(a.back)
		}
		p := problem{title: "Lost the daemon's torrent", what: msg.err.Error(),
			hint: "The daemon stopped, or the torrent was removed. Esc goes back to the daemon's list."}
		var ue *engine.UnreachableError
		if errors.As(msg.err, &ue) {
			p.title = "The daemon stopped answering"
		}
		return a, errorScreen(p, a.back)
	case tea.KeyMsg:
		if key.Matches(msg, a.c.Keys.Back) && !a.saving && !a.logFull {
			a.job.Stop()
			return a, nil
		}
	}
	_, cmd := a.Dashboard.Update(msg)
	return a, cmd
}

// The keys: the dashboard's, with Esc to detach in place of stop.
func (a *AttachDashboard) ShortHelp() []key.Binding {
	if a.saving || a.logFull {
		return a.Dashboard.ShortHelp()
	}
	k := a.c.Keys
	return []key.Binding{k.Pause, k.Tab, k.Log, k.SaveLog, as(k.Back, "detach"), k.Help}
}

func (a *AttachDashboard) FullHelp() [][]key.Binding {
	if a.saving || a.logFull {
		return a.Dashboard.FullHelp()
	}
	k := a.c.Keys
	return [][]key.Binding{{k.Pause, k.Tab, k.ShiftTab}, {k.Up, k.Down, k.Log, k.SaveLog}, {as(k.Back, "detach"), k.Quit, k.Help}}
}
