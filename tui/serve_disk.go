package tui

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"ezio/disks/diskimage"
	"ezio/engine"
	"ezio/engine/netboot/room"
	"ezio/engine/server"
	"ezio/tui/format"
)

// DiskSeedOptions describe the serving of a disk image directory from the
// wizard: always with the tracker and image server, which is where a
// client reads the disk's table and torrents (/images/NAME).
type DiskSeedOptions struct {
	TrackerListen string // HOST:PORT of the tracker and image server
	Tuning        engine.Tuning
	Logger        *slog.Logger
}

// DiskSeeding is a disk image being served, as the command line's
// SeedDiskImage starts it: one session, one seed job per partition that
// has data (in the manifest's order), one server for them all.
type DiskSeeding struct {
	Manifest *diskimage.Manifest
	Jobs     []*engine.Job
	Server   *server.Server
	// Stop ends every job, the client and the server, and returns once
	// they have ended.
	Stop func()
}

// served is the manifest's partitions that have a seed job, in order.
func (sd *DiskSeeding) served() []diskimage.Partition {
	var out []diskimage.Partition
	for _, p := range sd.Manifest.Partitions {
		if p.HasData() {
			out = append(out, p)
		}
	}
	return out
}

// diskSeedSource is what the disk seeder's dashboard follows: each served
// partition's latest snapshot (in the order of served) and the image's
// fleet; *diskSeedRun has it, tests a fake.
type diskSeedSource interface {
	JobControl
	sample() (parts []engine.Snapshot, fleet []server.FleetMember)
	events() <-chan engine.Event // nil: none
	// machines is the network-booted room, by MAC (nil: none).
	machines() []server.Machine
	done() <-chan struct{}
	err() error
}

// diskSeedRun follows a DiskSeeding: it merges its jobs' events, and once
// every job has ended it closes the session (the ports with it) before
// saying it is done.
type diskSeedRun struct {
	sd       *DiskSeeding
	netboot  bool // the room boots from the network: the server has machines
	stopOnce sync.Once
	doneC    chan struct{}
	evs      chan engine.Event
}

func newDiskSeedRun(ctx context.Context, sd *DiskSeeding) *diskSeedRun {
	r := &diskSeedRun{sd: sd, doneC: make(chan struct{}), evs: make(chan engine.Event, 256)}
	served := sd.served()
	var wg sync.WaitGroup
	for i, j := range sd.Jobs {
		name := fmt.Sprint(i + 1)
		if i < len(served) {
			name = served[i].Name
		}
		_, evs := j.Subscribe(ctx)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range evs {
				select {
				case r.evs <- partEvent(name, e):
				default: // the screen is not reading (it has ended): dropped
				}
			}
		}()
	}
	go func() { wg.Wait(); close(r.evs) }()
	go func() {
		for _, j := range sd.Jobs {
			<-j.Done()
		}
		sd.Stop()
		close(r.doneC)
	}()
	return r
}

// partEvent names the partition in an event of its job, for the one log.
func partEvent(part string, e engine.Event) engine.Event {
	switch e.Kind {
	case engine.EventLog, engine.EventFailed:
		e.Message = part + ": " + e.Message
	case engine.EventPeerJoined:
		e.Message += " (" + part + ")"
	case engine.EventPeerLeft:
		e.Peer += " (" + part + ")"
	case engine.EventPieceFailed:
		e = engine.Event{Time: e.Time, Kind: engine.EventLog, Level: "warn", Message: fmt.Sprintf("%s: piece %d failed its hash check", part, e.Piece)}
	}
	return e
}

// Stop ends the serving in the background: closing the session waits for
// every job, and the screen must not.
func (r *diskSeedRun) Stop() { r.stopOnce.Do(func() { go r.sd.Stop() }) }

func (r *diskSeedRun) SetPaused(p bool) {
	for _, j := range r.sd.Jobs {
		j.SetPaused(p)
	}
}

func (r *diskSeedRun) Paused() bool {
	for _, j := range r.sd.Jobs {
		if j.Paused() {
			return true
		}
	}
	return false
}

func (r *diskSeedRun) sample() ([]engine.Snapshot, []server.FleetMember) {
	snaps := make([]engine.Snapshot, len(r.sd.Jobs))
	for i, j := range r.sd.Jobs {
		snaps[i] = j.Snapshot()
	}
	var fleet []server.FleetMember
	if r.sd.Server != nil {
		fleet = r.sd.Server.ImageFleet(r.sd.Manifest.Name)
	}
	return snaps, fleet
}

func (r *diskSeedRun) events() <-chan engine.Event { return r.evs }

func (r *diskSeedRun) machines() []server.Machine {
	if !r.netboot || r.sd.Server == nil {
		return nil
	}
	return r.sd.Server.Machines()
}

func (r *diskSeedRun) done() <-chan struct{} { return r.doneC }

// err is the first partition's failure, nil when every job ended as a
// seeder does when it is stopped.
func (r *diskSeedRun) err() error {
	for _, j := range r.sd.Jobs {
		if err := j.Err(); err != nil {
			return err
		}
	}
	return nil
}

// DiskSeedDashboard is the live view of a disk image being served: the
// seeder's dashboard (totals, fleet, log, keys, stop question, result)
// fed with the sum of every partition's job and the image's fleet from
// the server, with a row per partition where a partition's seeder has
// its peers.
type DiskSeedDashboard struct {
	*Dashboard
	src   diskSeedSource
	parts []diskimage.Partition // every partition of the manifest
	snaps []engine.Snapshot     // the served ones' latest, in order
	name  string
	// netboot: the room boots from the network; machines are its rows,
	// machineState each MAC's last state logged.
	netboot      bool
	machines     []server.Machine
	machineState map[string]string
}

type (
	diskSeedTickMsg struct{ id int }
	diskSeedDoneMsg struct {
		id    int
		parts []engine.Snapshot
		fleet []server.FleetMember
		err   error
	}
)

func newDiskSeedDashboard(c *Common, m *diskimage.Manifest, src diskSeedSource, expect int, netboot bool) *DiskSeedDashboard {
	d := &DiskSeedDashboard{Dashboard: newDashboard(c, engine.RoleSeed, "seed disk "+format.Name(m.Name), src), src: src, parts: m.Partitions, name: m.Name, netboot: netboot}
	d.expect = expect
	d.events = src.events()
	d.top, d.noPieces = d.topBoxes, true
	d.paneSet, d.focus = []pane{paneParts, paneFleet, paneLog}, paneParts
	if netboot {
		d.paneSet, d.focus = []pane{paneMachines, paneParts, paneFleet, paneLog}, paneMachines
	}
	d.howToRows = 2
	return d
}

func (d *DiskSeedDashboard) tick() tea.Cmd {
	id := d.id
	return tea.Tick(250*time.Millisecond, func(time.Time) tea.Msg { return diskSeedTickMsg{id} })
}

// Init samples at once, then four times a second; the log streams in;
// the end is waited for in the background.
func (d *DiskSeedDashboard) Init() tea.Cmd {
	d.sample()
	id, src := d.id, d.src
	cmds := []tea.Cmd{d.tick(), func() tea.Msg {
		<-src.done()
		parts, fleet := src.sample()
		return diskSeedDoneMsg{id, parts, fleet, src.err()}
	}}
	if d.events != nil {
		cmds = append(cmds, watchEvents(d.id, d.events))
	}
	return tea.Batch(cmds...)
}

// Update samples on its ticks and hands the end, as one seeder's, to the
// dashboard (which turns it into the result); keys and the log go there
// too.
func (d *DiskSeedDashboard) Update(msg tea.Msg) (Screen, tea.Cmd) {
	var cmd tea.Cmd
	switch msg := msg.(type) {
	case diskSeedTickMsg:
		if msg.id != d.id || d.finished {
			return d, nil
		}
		d.sample()
		return d, d.tick()
	case diskSeedDoneMsg:
		if msg.id != d.id {
			return d, nil
		}
		d.snaps = msg.parts
		_, cmd = d.Dashboard.Update(jobDoneMsg{id: d.id, final: sumSnapshots(d.name, d.expect, msg.parts, msg.fleet), err: msg.err})
	default:
		_, cmd = d.Dashboard.Update(msg)
	}
	return d, cmd
}

func (d *DiskSeedDashboard) sample() {
	parts, fleet := d.src.sample()
	d.snaps = parts
	d.apply(sumSnapshots(d.name, d.expect, parts, fleet))
	if d.netboot {
		d.setMachines(d.src.machines())
	}
}

// sumSnapshots is a disk as one seeder: its partitions' totals and rates
// added up, their peers side by side (a client has a connection for each
// partition), the image's fleet.
func sumSnapshots(name string, expect int, parts []engine.Snapshot, fleet []server.FleetMember) engine.Snapshot {
	s := engine.Snapshot{Role: engine.RoleSeed, Name: name, Phase: engine.PhaseStarting, Fleet: fleet, Expected: expect}
	phases := map[engine.Phase]int{}
	for _, p := range parts {
		if p.Time.After(s.Time) {
			s.Time = p.Time
		}
		s.Elapsed = max(s.Elapsed, p.Elapsed)
		s.Paused = s.Paused || p.Paused
		s.BytesDone += p.BytesDone
		s.BytesTotal += p.BytesTotal
		s.PiecesDone += p.PiecesDone
		s.PiecesTotal += p.PiecesTotal
		s.HashFailures += p.HashFailures
		s.UploadRate += p.UploadRate
		s.DownloadRate += p.DownloadRate
		s.BytesUploaded += p.BytesUploaded
		s.BytesDownloaded += p.BytesDownloaded
		s.Peers = append(s.Peers, p.Peers...)
		phases[p.Phase]++
	}
	if s.Time.IsZero() {
		s.Time = time.Now()
	}
	s.NumPeers = len(s.Peers)
	switch {
	case phases[engine.PhaseFailed] > 0:
		s.Phase = engine.PhaseFailed
	case len(parts) > 0 && phases[engine.PhaseDone] == len(parts):
		s.Phase = engine.PhaseDone
	case phases[engine.PhaseSeeding] > 0:
		s.Phase = engine.PhaseSeeding
	case len(parts) > 0:
		s.Phase = parts[0].Phase
	}
	s.FleetDone = server.DoneCount(fleet)
	return s
}

// partsBox is one row per partition of the disk, at the top of the body.
func (d *DiskSeedDashboard) partsBox(w, body int) []string {
	return d.partsBoxH(w, min(len(d.parts)+3, max(4, body/2)))
}

// partsBoxH is the partitions' box, h rows high.
func (d *DiskSeedDashboard) partsBoxH(w, h int) []string {
	return d.c.box("Partitions", d.window(paneParts, d.partLines(), h-2, true, false), w, h, d.focus == paneParts)
}

func (d *DiskSeedDashboard) partLines() []string {
	st := d.c.Styles
	row := "%2s %-10.10s %-6.6s %9s %9s %6s %10s %5s  %s"
	lines := []string{st.Muted.Render(fmt.Sprintf(row, "#", "PARTITION", "FS", "SIZE", "DATA", "PIECES", "UP", "PEERS", "STATE"))}
	i := 0
	for _, p := range d.parts {
		fs := cmp.Or(p.Filesystem, "-")
		if !p.HasData() {
			lines = append(lines, st.Muted.Render(fmt.Sprintf(row, fmt.Sprint(p.Number), p.Name, fs, format.Bytes(p.Size), "-", "-", "-", "-", "no data")))
			continue
		}
		var s engine.Snapshot
		if i < len(d.snaps) {
			s = d.snaps[i]
		}
		i++
		state := string(s.Phase)
		if state == "" {
			state = "starting"
		}
		up := s.UploadRate
		if s.Paused {
			up, state = 0, "paused"
		}
		line := fmt.Sprintf(row, fmt.Sprint(p.Number), p.Name, fs, format.Bytes(p.Size), format.Bytes(s.BytesTotal), fmt.Sprint(s.PiecesTotal), format.Rate(up), fmt.Sprint(s.NumPeers), state)
		if s.Phase == engine.PhaseFailed {
			lines = append(lines, st.Bad.Render(line))
		} else {
			lines = append(lines, st.Text.Render(line))
		}
	}
	return lines
}

// diskTarget is how a client command names the disk it writes.
const diskTarget = "TARGET-DISK"

// startDisk serves the disk image directory typed, every partition in one
// session with the tracker and image server (clients need them for the
// table and torrents), then opens its dashboard.
func (s *ServeFlow) startDisk() tea.Cmd {
	v, tu := *s.v, s.tuning()
	dir, expect := trimmed(v.Torrent), expectOf(v.Expect)
	s.busy = "reading the disk image " + dir + " and starting to serve"
	if v.Verify {
		s.busy = "checking every partition of " + dir + " against its torrent, then serving"
	}
	ctx, deps, c, flow, host := s.deps.Ctx, s.deps, s.c, s, s.clientHost()
	return func() tea.Msg {
		fail := func(doing string, err error) tea.Msg {
			return serveStartedMsg{flow: flow, err: err, doing: doing,
				hint: "Check the disk image directory: Capture writes it whole (ezio-disk.json, the table, each partition's torrent and data)."}
		}
		if v.Netboot.On && !isRoot() {
			// Refused before anything starts.
			p := netbootProblem(errNotRoot)
			return serveStartedMsg{flow: flow, err: errNotRoot, problem: &p}
		}
		if err := verifyDisk(ctx, v, dir); err != nil {
			return serveStartedMsg{flow: flow, err: err, doing: "check the disk image", hint: server.StuckAdvice}
		}
		sd, err := deps.SeedDisk(ctx, dir, DiskSeedOptions{TrackerListen: v.listen(), Tuning: tu, Logger: deps.Logger})
		if err != nil {
			return fail("serve the disk image", err)
		}
		if sd.Server == nil {
			sd.Stop()
			return fail("serve the disk image", errors.New("no image server was started"))
		}
		name, u := sd.Manifest.Name, sd.Server.BaseURL()
		var said []string
		netStop := func() {}
		if v.Netboot.On {
			stop, lines, err := startNetboot(ctx, deps, v, tu, dir, sd)
			if err != nil {
				sd.Stop()
				p := netbootProblem(err)
				return serveStartedMsg{flow: flow, err: err, problem: &p}
			}
			said, netStop = lines, stop
		}
		// The status page counts the room too.
		sd.Server.SetExpect(expect)
		run := newDiskSeedRun(ctx, sd)
		run.netboot = v.Netboot.On
		go func() { <-run.done(); netStop() }()
		d := newDiskSeedDashboard(c, sd.Manifest, run, expect, v.Netboot.On)
		d.howTo = diskInstructions(u, host, name, "")
		if inst, err := announce(ctx, deps, &v, u, name, run.done()); err != nil {
			d.howTo = append(d.howTo, "not announced on the LAN, clients need this address: "+err.Error())
		} else if inst != "" {
			d.howTo = diskInstructions(u, host, name, inst)
		}
		if v.Netboot.On {
			d.howTo = netbootHowTo(name, v.Netboot.then(), d.howTo, said)
		}
		switch {
		case v.ExitWhenDone && expect > 0 && v.Netboot.On:
			// The room is done when its machines are verified (and back
			// in their own system), as `ezio seed --netboot` counts.
			wctx, cancel := context.WithCancel(ctx)
			go func() { <-run.done(); cancel() }()
			go room.Watch{Expect: expect, Then: v.Netboot.then(), Stop: run.Stop}.Run(wctx, sd.Server)
		case v.ExitWhenDone && expect > 0:
			go engine.RoomWatch{Expect: expect}.RunImage(ctx, sd.Server, name, run.done(), run.Stop)
		}
		return serveStartedMsg{flow: flow, dash: d}
	}
}

// diskInstructions is what to do on each client of a disk image, exactly:
// the command by name when announced as inst, by address, and the
// wizard's Deploy.
func diskInstructions(serverURL, host, name, inst string) []string {
	base := clientBase(serverURL, host)
	byAddr := "ezio deploy " + base + "/images/" + name + " " + diskTarget
	wizard := "or in the wizard: Deploy this machine from " + strings.TrimPrefix(base, "http://")
	if inst == "" {
		return []string{"on each client: " + byAddr, wizard, "status page: " + base + "/"}
	}
	return []string{"on each client: ezio deploy auto:" + name + " " + diskTarget, "or: " + byAddr, wizard,
		"announced on the LAN as " + serviceName(inst), "status page: " + base + "/"}
}
