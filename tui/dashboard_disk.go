package tui

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"ezio/disks/diskdeploy"
	"ezio/disks/diskimage"
	"ezio/tui/format"
)

// DiskDashboard is the live view of a whole-disk deploy: the disk's
// totals and one row per partition, then, once every job has ended, the
// per-partition report (bytes verified, fsck) and the action chosen for
// after.
type DiskDashboard struct {
	c     *Common
	deps  *Deps
	id    int
	label string
	run   DiskRun
	then  string

	pr       diskdeploy.Progress
	verified bool // every partition's data verified (serving may go on)
	finished bool
	stopped  bool
	report   *diskimage.Report
	err      error
	thenErr  error
	thenDone bool
}

type (
	diskTickMsg struct{ id int }
	diskDoneMsg struct {
		id  int
		rep *diskimage.Report
		err error
	}
)

// NewDiskDashboard follows run.
func NewDiskDashboard(c *Common, deps *Deps, label string, run DiskRun) *DiskDashboard {
	d := &DiskDashboard{c: c, deps: deps, id: newID(), label: label, run: run, then: thenExit}
	d.pr = run.Progress()
	return d
}

func (d *DiskDashboard) tick() tea.Cmd {
	id := d.id
	return tea.Tick(250*time.Millisecond, func(time.Time) tea.Msg { return diskTickMsg{id} })
}

// Init starts the ticker and waits, in the background, for the deploy's
// end and its finishing checks.
func (d *DiskDashboard) Init() tea.Cmd {
	id, run := d.id, d.run
	ctx := context.Background()
	if d.deps != nil && d.deps.Ctx != nil {
		ctx = d.deps.Ctx
	}
	return tea.Batch(d.tick(), func() tea.Msg {
		rep, err := run.Finish(ctx)
		return diskDoneMsg{id, rep, err}
	})
}

func (d *DiskDashboard) Running() bool { return !d.finished }

// Stop ends the deploy; once the disk is verified it only ends serving
// the others, and the deploy still counts as done.
func (d *DiskDashboard) Stop() {
	if !d.verified {
		d.stopped = true
	}
	d.run.Stop()
}
func (d *DiskDashboard) StopQuestion() (string, string) {
	if d.verified {
		return "Stop serving the others?", "This disk is verified; clients still downloading lose this source."
	}
	return "Stop the deploy?", "What is written is kept; deploy again to resume."
}

func (d *DiskDashboard) keys() []key.Binding {
	k := d.c.Keys
	if d.finished {
		return []key.Binding{as(k.Enter, "menu"), k.Quit}
	}
	return []key.Binding{as(k.ForceQuit, "stop")}
}

func (d *DiskDashboard) ShortHelp() []key.Binding  { return d.keys() }
func (d *DiskDashboard) FullHelp() [][]key.Binding { return [][]key.Binding{d.keys()} }

func (d *DiskDashboard) Update(msg tea.Msg) (Screen, tea.Cmd) {
	switch msg := msg.(type) {
	case diskTickMsg:
		if msg.id != d.id || d.finished {
			return d, nil
		}
		d.sample()
		return d, d.tick()
	case diskDoneMsg:
		if msg.id != d.id {
			return d, nil
		}
		d.sample()
		d.finished, d.report, d.err = true, msg.rep, msg.err
		if d.stopped && d.err != nil && errors.Is(d.err, context.Canceled) {
			d.err = nil
		}
		// Only a verified disk goes on to reboot or power off; a failed
		// or stopped one stays on screen with its reason.
		if d.err == nil && !d.stopped && d.then != thenExit {
			id, action := d.id, d.then
			return d, thenCmd(d.deps, action, func(err error) tea.Msg { return thenDoneMsg{id, action, err} })
		}
		return d, nil
	case thenDoneMsg:
		if msg.id != d.id {
			return d, nil
		}
		d.thenDone, d.thenErr = true, msg.err
		return d, nil
	case tea.KeyMsg:
		if d.finished && (key.Matches(msg, d.c.Keys.Enter) || key.Matches(msg, d.c.Keys.Back)) {
			return d, func() tea.Msg { return backToMenuMsg{} }
		}
		if d.finished && key.Matches(msg, d.c.Keys.Quit) {
			return d, tea.Quit
		}
	}
	return d, nil
}

func (d *DiskDashboard) sample() {
	d.pr = d.run.Progress()
	select {
	case <-d.run.Verified():
		d.verified = true
	default:
	}
}

// phase is the disk's state in a few words.
func (d *DiskDashboard) phase() string {
	switch {
	case d.finished && d.err != nil:
		return "failed"
	case d.finished && d.stopped:
		return "stopped"
	case d.finished:
		return "done"
	case d.pr.Seeding:
		return "verified, serving others"
	case d.pr.Lost > 0:
		return "waiting"
	case d.verified:
		return "checking"
	}
	return "writing"
}

func (d *DiskDashboard) View() string {
	c, st := d.c, d.c.Styles
	pr := d.pr
	lines := []string{c.titleBar(d.label, d.phase()), ""}
	frac := 0.0
	// Bytes received count (verified or not): the bar moves while a 16
	// MiB piece arrives; the rows' pieces say what is verified.
	if pr.BytesTotal > 0 {
		frac = float64(pr.BytesGot) / float64(pr.BytesTotal)
	}
	bw := max(10, c.Width-12)
	lines = append(lines, " "+c.bar(frac, bw)+" "+st.Text.Render(fmt.Sprintf("%6s", format.Percent(pr.BytesGot, pr.BytesTotal))))
	lines = append(lines, " "+st.Text.Render(fmt.Sprintf("%s of %s   down %s   up %s   peers %d   ETA %s",
		format.Bytes(pr.BytesGot), format.Bytes(pr.BytesTotal), format.Rate(pr.Rate), format.Rate(pr.UpRate), pr.Peers, format.ETA(pr.ETA))))
	if pr.Lost > 0 && !d.finished {
		lines = append(lines, " "+st.Warn.Render("waiting for the server, lost "+lostFor(pr.Lost)+" ago; it resumes when the server is back"))
	}
	lines = append(lines, "")
	lines = append(lines, st.Muted.Render(fmt.Sprintf(" %3s %-12s %-8s %13s %21s  %s", "#", "PARTITION", "FS", "PIECES", "BYTES", "STATE")))
	for _, p := range pr.Parts {
		pieces := fmt.Sprintf("%d/%d", p.PiecesDone, p.PiecesTotal)
		bytes := fmt.Sprintf("%s/%s", format.Bytes(p.BytesGot), format.Bytes(p.BytesTotal))
		if p.State == diskdeploy.StateNoData {
			pieces, bytes = "-", "-"
		}
		line := fmt.Sprintf(" %3d %-12.12s %-8.8s %13s %21s  %s", p.Number, p.Name, cmp.Or(p.FS, "-"), pieces, bytes, p.State)
		switch p.State {
		case diskdeploy.StateVerified:
			line = st.Good.Render(line)
		case diskdeploy.StateFailed:
			line = st.Bad.Render(line)
		default:
			line = st.Text.Render(line)
		}
		lines = append(lines, line)
	}
	lines = append(lines, "")
	switch {
	case !d.finished && d.pr.Seeding:
		lines = append(lines, " "+st.Good.Render("Every partition verified.")+" "+st.Text.Render("Serving the other clients while they need pieces."))
	case !d.finished && d.verified:
		lines = append(lines, " "+st.Text.Render("Every partition verified; telling the kernel, checking the filesystems..."))
	case d.finished && d.err != nil:
		p := describe("Failed", d.err, "")
		for i, l := range wrap(p.title+": "+p.what, c.Width-3) {
			if i == 0 {
				lines = append(lines, " "+st.Bad.Render(l))
			} else {
				lines = append(lines, " "+st.Text.Render(l))
			}
		}
		if d.then != thenExit {
			lines = append(lines, " "+st.Muted.Render("Not carried out after a failure: "+thenLabel(d.then)+"."))
		}
	case d.finished && d.stopped:
		lines = append(lines, " "+st.Warn.Render("Stopped. ")+st.Text.Render("What was written is kept; deploy again to resume."))
	case d.finished:
		lines = append(lines, " "+st.Good.Render("Completed: every partition verified and written to "+d.targetName()+"."))
	}
	if d.report != nil {
		for _, p := range d.report.Partitions {
			lines = append(lines, "   "+st.Text.Render(fit(reportLine(p), c.Width-4)))
		}
	}
	if d.finished && d.err == nil && !d.stopped && d.then != thenExit {
		switch {
		case !d.thenDone:
			lines = append(lines, " "+st.Accent.Render("Now: "+thenLabel(d.then)+"..."))
		case d.thenErr != nil:
			lines = append(lines, " "+st.Bad.Render("Could not "+thenLabel(d.then)+": ")+st.Text.Render(d.thenErr.Error()))
		default:
			lines = append(lines, " "+st.Good.Render("Done: "+thenLabel(d.then)+"."))
		}
	}
	return c.page(lines, d)
}

func (d *DiskDashboard) targetName() string {
	if d.report != nil {
		return d.report.Target
	}
	if i := strings.LastIndex(d.label, "-> "); i >= 0 {
		return d.label[i+3:]
	}
	return "the disk"
}

// reportLine is one partition of the finishing report.
func reportLine(p diskimage.PartitionReport) string {
	check := "no check"
	switch {
	case p.Fsck != nil && p.Fsck.OK:
		check = "fsck clean"
	case p.Fsck != nil:
		check = "fsck FAILED"
	case p.FsckSkip != "":
		check = "not checked"
	}
	s := fmt.Sprintf("%d %s %s: %s verified, %s", p.Number, p.Node, cmp.Or(p.Filesystem, "-"), format.Bytes(p.Bytes), check)
	if p.Done != "" {
		s += "; " + p.Done
	}
	return s
}
