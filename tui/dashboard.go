package tui

import (
	"context"
	"fmt"
	"time"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"

	"ezio/engine"
)

// JobControl is what the dashboard asks of a running job; *engine.Job has
// it, tests use a fake.
type JobControl interface {
	Stop()
	SetPaused(bool)
	Paused() bool
}

// Messages that carry a job's life into the program. id tells which
// dashboard they are for, so a late message from an old job is ignored.
type (
	snapMsg struct {
		id int
		s  engine.Snapshot
	}
	eventMsg struct {
		id int
		e  engine.Event
	}
	jobDoneMsg struct {
		id    int
		final engine.Snapshot
		err   error
	}
	eventsClosedMsg struct{ id int }
)

// watchSnapshots waits for the next snapshot, or for the end of the job.
// The dashboard re-issues it after each message: one read in flight.
func watchSnapshots(id int, l *engine.Latest[engine.Snapshot], done <-chan struct{}, errf func() error) tea.Cmd {
	return func() tea.Msg {
		select {
		case s := <-l.C():
			return snapMsg{id, s}
		case <-done:
			// The job publishes a last snapshot as it ends.
			var final engine.Snapshot
			select {
			case final = <-l.C():
			default:
			}
			return jobDoneMsg{id: id, final: final, err: errf()}
		}
	}
}

func watchEvents(id int, ch <-chan engine.Event) tea.Cmd {
	return func() tea.Msg {
		e, ok := <-ch
		if !ok {
			return eventsClosedMsg{id}
		}
		return eventMsg{id, e}
	}
}

type pane int

const (
	panePeers pane = iota
	paneFleet
	panePieces
	paneLog
	paneParts
	paneMachines
)

func (p pane) String() string {
	return [...]string{"Peers", "Fleet", "Pieces", "Log", "Partitions", "Machines"}[p]
}

type logLine struct {
	at    time.Time
	level string
	msg   string
}

// contribution is what one peer gave and took over the whole job; peers
// vanish from snapshots when they disconnect, the result screen keeps them.
// A peer that reconnects from the same address starts its connection's
// counters at zero again: what the old connection moved is kept in
// base, so the column adds up to what was received.
type contribution struct {
	addr, client     string
	down, up         int64 // totals over every connection
	baseDown, baseUp int64 // of the connections that ended
	curDown, curUp   int64 // of the current connection
	unsampled        bool  // the "not sampled" row of the result
}

func (c *contribution) sample(p engine.PeerSnapshot) {
	if p.BytesDownloaded < c.curDown || p.BytesUploaded < c.curUp {
		c.baseDown += c.curDown
		c.baseUp += c.curUp
	}
	c.curDown, c.curUp = p.BytesDownloaded, p.BytesUploaded
	c.down, c.up = c.baseDown+c.curDown, c.baseUp+c.curUp
}

const (
	maxLogLines  = 200    // in the pane
	maxLogKept   = 100000 // for the full-screen log and its file
	sparkSeconds = 60
)

// Dashboard is the live view of a seed or deploy.
type Dashboard struct {
	c      *Common
	id     int
	role   engine.Role
	label  string // "deploy sda1 -> /dev/sdb1"
	job    JobControl
	snaps  *engine.Latest[engine.Snapshot] // nil in tests
	events <-chan engine.Event
	done   <-chan struct{}
	errf   func() error

	snap     engine.Snapshot
	haveSnap bool
	logs     []logLine // the whole log (up to maxLogKept lines)
	spark    []float64 // one sample a second, newest last
	sparkAt  time.Time
	contrib  map[string]*contribution
	fleetAt  map[string]fleetSample
	pm       pieceMap

	focus    pane
	scroll   map[pane]int
	fullHelp bool
	help     help.Model

	// Progress as bytes received, not only verified.
	recv     engine.Received
	got      int64
	eta      time.Duration // <0 unknown
	etaAt    time.Time
	lostSeen time.Time // LostSince of the last snapshot, zero when not lost

	// Seeder: the room's size when the technician said it, and what to
	// do on each client.
	expect int
	howTo  []string
	// howToRows is how many of howTo the header shows (0: the first).
	howToRows int

	// A seeder of several torrents (a disk image, serve_disk.go) puts its
	// own box where the peers are, has no piece map, and its own panes.
	top      func(w, body int) []string
	noPieces bool
	paneSet  []pane

	// The log, full screen, and saving it to a file.
	logFull   bool
	logWrap   bool
	logOff    int // lines up from the newest
	saving    bool
	savePath  textinput.Model
	logStatus string

	finished bool
	err      error

	// then is what to do after a verified deploy (and the seeding
	// policy): exit, reboot, poweroff, shell; deps carries it out.
	then string
	deps *Deps
	// A dashboard attached to a daemon (attach.go): its own keys for the
	// footer, and what to say in place of the peer rows it cannot have.
	keyMap    help.KeyMap
	peersNote string
}

type fleetSample struct {
	done     float64
	seen     time.Time // when that Done was announced
	rate     float64   // bytes/s between its last two announces; <0 unknown
	lastSeen float64
}

// NewDashboard watches job. label says what it is doing.
func NewDashboard(c *Common, role engine.Role, label string, job *engine.Job) *Dashboard {
	d := newDashboard(c, role, label, job)
	d.snaps, d.events = job.Subscribe(context.Background())
	d.done, d.errf = job.Done(), job.Err
	return d
}

func newDashboard(c *Common, role engine.Role, label string, job JobControl) *Dashboard {
	d := &Dashboard{
		c: c, id: newID(), role: role, label: label, job: job,
		contrib: map[string]*contribution{}, fleetAt: map[string]fleetSample{},
		scroll: map[pane]int{}, help: c.helpModel(), eta: -1,
	}
	return d
}

// typing tells whether keys go to the save-as prompt (q is a letter then).
func (d *Dashboard) typing() bool { return d.saving }

// Init starts listening to the job.
func (d *Dashboard) Init() tea.Cmd {
	if d.snaps == nil {
		return nil
	}
	return tea.Batch(watchSnapshots(d.id, d.snaps, d.done, d.errf), watchEvents(d.id, d.events))
}

// Running tells whether the job is still going (Ctrl-C must ask).
func (d *Dashboard) Running() bool { return !d.finished }

// StopQuestion: a seeder stops serving, a deploy stops writing.
func (d *Dashboard) StopQuestion() (string, string) {
	if d.role == engine.RoleSeed {
		return "Stop serving?", "Clients still downloading lose this source."
	}
	return "Stop the deploy?", "What is written is kept; deploy again to resume."
}

// Stop asks the job to end; the dashboard turns into a result when it has.
func (d *Dashboard) Stop() {
	if d.job != nil {
		d.job.Stop()
	}
}

func (d *Dashboard) panes() []pane {
	if d.paneSet != nil {
		return d.paneSet
	}
	if d.role == engine.RoleSeed {
		if d.c.Width >= 110 {
			return []pane{panePeers, paneFleet, panePieces, paneLog}
		}
		return []pane{panePeers, paneFleet, paneLog}
	}
	return []pane{panePeers, panePieces, paneLog}
}

// jobFinishedMsg tells the root that a dashboard's job has ended, with
// the result screen to show.
type jobFinishedMsg struct {
	result *Result
}

// Update handles job messages and keys.
func (d *Dashboard) Update(msg tea.Msg) (Screen, tea.Cmd) {
	switch msg := msg.(type) {
	case snapMsg:
		if msg.id != d.id {
			return d, nil
		}
		d.apply(msg.s)
		return d, watchSnapshots(d.id, d.snaps, d.done, d.errf)
	case eventMsg:
		if msg.id != d.id {
			return d, nil
		}
		d.event(msg.e)
		return d, watchEvents(d.id, d.events)
	case jobDoneMsg:
		if msg.id != d.id {
			return d, nil
		}
		if !msg.final.Time.IsZero() {
			d.apply(msg.final)
		}
		d.finished, d.err = true, msg.err
		r := d.result()
		// Only a verified deploy goes on to reboot or power off.
		if d.role == engine.RoleDeploy && r.Err == nil && !r.Stopped && d.then != "" && d.then != thenExit {
			id, action := d.id, d.then
			r.Then = action
			return d, thenCmd(d.deps, action, func(err error) tea.Msg { return thenDoneMsg{id, action, err} })
		}
		return d, func() tea.Msg { return jobFinishedMsg{r} }
	case thenDoneMsg:
		if msg.id != d.id {
			return d, nil
		}
		r := d.result()
		r.Then, r.ThenErr, r.ThenDone = msg.action, msg.err, true
		return d, func() tea.Msg { return jobFinishedMsg{r} }
	case logSavedMsg:
		if msg.id != d.id {
			return d, nil
		}
		if msg.err != nil {
			d.logStatus = "not saved: " + msg.err.Error()
		} else {
			d.logStatus = fmt.Sprintf("%d lines saved to %s", msg.lines, msg.path)
		}
		return d, nil
	case tea.KeyMsg:
		k := d.c.Keys
		if d.saving {
			return d, d.saveKey(msg)
		}
		if d.logFull {
			return d, d.logKey(msg)
		}
		switch {
		case key.Matches(msg, k.Log):
			d.logFull, d.logOff = true, 0
		case key.Matches(msg, k.SaveLog):
			return d, d.askSavePath()
		case key.Matches(msg, k.Help):
			d.fullHelp = !d.fullHelp
		case key.Matches(msg, k.Pause):
			return d, d.togglePause()
		case key.Matches(msg, k.Tab), key.Matches(msg, k.ShiftTab):
			ps := d.panes()
			i := 0
			for j, p := range ps {
				if p == d.focus {
					i = j
				}
			}
			if key.Matches(msg, k.Tab) {
				i = (i + 1) % len(ps)
			} else {
				i = (i + len(ps) - 1) % len(ps)
			}
			d.focus = ps[i]
		case key.Matches(msg, k.Up):
			d.scroll[d.focus] = max(0, d.scroll[d.focus]-1)
		case key.Matches(msg, k.Down):
			d.scroll[d.focus]++
		}
	}
	return d, nil
}

// etaFor is the time left at the current rate. At a steady rate it never
// rises: a new estimate a little above the last one (the rate's
// sampling noise) is replaced by the last one minus the time passed;
// only a real slowdown (10% or more) makes it grow.
func (d *Dashboard) etaFor(s engine.Snapshot) time.Duration {
	left := s.BytesTotal - d.got
	switch {
	case left <= 0:
		return 0
	case s.Paused || s.DownloadRate < 1024:
		return -1
	}
	eta := time.Duration(float64(left) / s.DownloadRate * float64(time.Second))
	if d.eta > 0 && !d.etaAt.IsZero() {
		prev := max(0, d.eta-s.Time.Sub(d.etaAt))
		if eta > prev && float64(eta) < float64(prev)*1.1 {
			eta = prev
		}
	}
	return eta
}

func (d *Dashboard) togglePause() tea.Cmd {
	if d.job != nil && !d.finished {
		p := !d.job.Paused()
		d.job.SetPaused(p)
		d.snap.Paused = p
	}
	return nil
}

func (d *Dashboard) apply(s engine.Snapshot) {
	if s.Paused {
		// Nothing moves while paused, whatever the smoothed rates say.
		s.DownloadRate, s.UploadRate = 0, 0
		for i := range s.Peers {
			s.Peers[i].DownloadRate, s.Peers[i].UploadRate = 0, 0
		}
	}
	if d.role == engine.RoleDeploy {
		d.got = d.recv.Update(s)
		d.eta, d.etaAt = d.etaFor(s), s.Time
	}
	d.lostSeen = lostSince(s)
	if !d.haveSnap {
		// What to do on the clients opens the log, so that the full log
		// and its file have the exact command.
		for _, h := range d.howTo {
			d.addLog(logLine{s.Time, "info", h})
		}
	}
	// Sparkline: one sample per second of snapshot time.
	rate := s.DownloadRate
	if d.role == engine.RoleSeed {
		rate = s.UploadRate
	}
	// Within a second the newest sample follows the rate, so the line
	// and its peak never lag the numbers beside them.
	if d.sparkAt.IsZero() || s.Time.Sub(d.sparkAt) >= time.Second {
		d.spark = append(d.spark, rate)
		if len(d.spark) > sparkSeconds {
			d.spark = d.spark[len(d.spark)-sparkSeconds:]
		}
		d.sparkAt = s.Time
	} else {
		d.spark[len(d.spark)-1] = rate
	}
	for _, p := range s.Peers {
		c := d.contrib[p.Addr]
		if c == nil {
			c = &contribution{addr: p.Addr}
			d.contrib[p.Addr] = c
		}
		c.client = p.Client
		c.sample(p)
	}
	for _, m := range s.Fleet {
		prev, ok := d.fleetAt[m.Addr]
		seen := s.Time.Add(-time.Duration(m.LastSeen * float64(time.Second)))
		cur := fleetSample{done: m.Done, seen: seen, rate: -1, lastSeen: m.LastSeen}
		if ok {
			cur.rate = prev.rate
			// A new announce: the client reported since the last sample.
			if dt := seen.Sub(prev.seen).Seconds(); dt > 0.5 {
				cur.rate = max(0, (m.Done-prev.done)*float64(s.BytesTotal)/dt)
			} else {
				cur.seen, cur.done = prev.seen, prev.done
			}
		}
		if m.Completed {
			cur.rate = 0
		}
		d.fleetAt[m.Addr] = cur
	}
	d.snap = s
	d.haveSnap = true
	d.pm.set(s.Pieces)
}

func (d *Dashboard) event(e engine.Event) {
	var l logLine
	switch e.Kind {
	case engine.EventLog:
		l = logLine{e.Time, e.Level, e.Message}
	case engine.EventFailed:
		l = logLine{e.Time, "error", e.Message}
	case engine.EventPeerJoined:
		l = logLine{e.Time, "info", "peer joined " + e.Peer + " " + e.Message}
	case engine.EventPeerLeft:
		l = logLine{e.Time, "info", "peer left " + e.Peer}
	case engine.EventPieceFailed:
		l = logLine{e.Time, "warn", fmt.Sprintf("piece %d failed its hash check", e.Piece)}
	default:
		return
	}
	d.addLog(l)
}

func (d *Dashboard) addLog(l logLine) {
	d.logs = append(d.logs, l)
	if len(d.logs) > maxLogKept {
		d.logs = append(d.logs[:0], d.logs[len(d.logs)-maxLogKept:]...)
	}
}
