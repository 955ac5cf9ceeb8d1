package tui

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"ezio/engine"
	"ezio/tui/format"
)

// Result is the screen after a job ends: how long it took, how fast, what
// was verified, and what each peer gave or took.
type Result struct {
	c        *Common
	Role     engine.Role
	Label    string
	Err      error
	Stopped  bool // ended by the user, not by failure
	Elapsed  time.Duration
	Moved    int64 // bytes received (deploy) or sent (seed) this session
	Verified int64
	Pieces   int
	Total    int
	Failures int
	Fleet    string // "3 of 4 done" for a seeder
	Peers    []contribution
	// The action after a verified deploy, and how it went.
	Then     string
	ThenErr  error
	ThenDone bool
}

func (d *Dashboard) result() *Result {
	s := d.snap
	r := &Result{
		c: d.c, Role: d.role, Label: d.label, Err: d.err, Elapsed: s.Elapsed,
		Verified: s.BytesDone, Pieces: s.PiecesDone, Total: s.PiecesTotal, Failures: s.HashFailures,
		Moved: s.BytesDownloaded,
	}
	if d.err != nil && errors.Is(d.err, context.Canceled) {
		r.Stopped, r.Err = true, nil
	}
	if d.role == engine.RoleSeed {
		r.Moved = s.BytesUploaded
		_, done, n := d.fleetFrac()
		r.Fleet = fmt.Sprintf("%d of %d clients done", done, n)
	}
	var sumDown, sumUp int64
	for _, c := range d.contrib {
		r.Peers = append(r.Peers, *c)
		sumDown += c.down
		sumUp += c.up
	}
	sort.Slice(r.Peers, func(a, b int) bool {
		x, y := r.Peers[a].down+r.Peers[a].up, r.Peers[b].down+r.Peers[b].up
		if x != y {
			return x > y
		}
		return r.Peers[a].addr < r.Peers[b].addr
	})
	// Peers sampled at 4 Hz miss what a connection moved in its last
	// moments: that remainder gets its own row, so that the column adds
	// up to the totals above it.
	if rd, ru := s.BytesDownloaded-sumDown, s.BytesUploaded-sumUp; len(r.Peers) > 0 && (rd > 0 || ru > 0) {
		r.Peers = append(r.Peers, contribution{addr: "not sampled", client: "(left between samples)", down: max(0, rd), up: max(0, ru), unsampled: true})
	}
	return r
}

// Update: Enter or Esc goes back to the menu, q quits.
func (r *Result) Init() tea.Cmd { return nil }

func (r *Result) Update(msg tea.Msg) (Screen, tea.Cmd) {
	if k, ok := msg.(tea.KeyMsg); ok {
		switch {
		case key.Matches(k, r.c.Keys.Enter), key.Matches(k, r.c.Keys.Back):
			return r, func() tea.Msg { return backToMenuMsg{} }
		case key.Matches(k, r.c.Keys.Quit):
			return r, tea.Quit
		}
	}
	return r, nil
}

func (r *Result) headline() string {
	st := r.c.Styles
	switch {
	case r.Err != nil:
		p := describe("Failed", r.Err, "")
		return st.Bad.Render(p.title+": ") + st.Text.Render(p.what)
	case r.Stopped && r.Role == engine.RoleSeed:
		return st.Good.Render("Stopped serving.")
	case r.Stopped:
		return st.Warn.Render("Stopped. ") + st.Text.Render("What was written is kept; deploy again to resume.")
	case r.Role == engine.RoleSeed:
		return st.Good.Render("Completed: seeder finished serving.")
	}
	return st.Good.Render("Completed: every piece verified and flushed to the target.")
}

func (r *Result) View() string {
	c, st := r.c, r.c.Styles
	lines := []string{c.titleBar("result "+r.Label, ""), "", " " + r.headline(), ""}
	if r.Err != nil {
		if p := describe("Failed", r.Err, ""); p.hint != "" {
			for _, l := range wrap(p.hint, c.Width-4) {
				lines = append(lines[:len(lines)-1], "   "+st.Warn.Render(l), "")
			}
		}
	}
	row := func(k, v string) string {
		return fmt.Sprintf("   %s %s", st.Muted.Render(fmt.Sprintf("%-14s", k)), st.Text.Render(v))
	}
	avg := "--"
	if r.Elapsed > 0 {
		avg = format.Rate(float64(r.Moved) / r.Elapsed.Seconds())
	}
	el := format.Duration(r.Elapsed)
	if r.Elapsed < 10*time.Second {
		el = r.Elapsed.Round(100 * time.Millisecond).String()
	}
	lines = append(lines, row("time", el))
	if r.Role == engine.RoleSeed {
		lines = append(lines, row("sent", format.Bytes(r.Moved)), row("average rate", avg), row("fleet", r.Fleet))
	} else {
		lines = append(lines, row("received", format.Bytes(r.Moved)), row("average rate", avg),
			row("verified", fmt.Sprintf("%s, %d of %d pieces", format.Bytes(r.Verified), r.Pieces, r.Total)),
			row("hash failures", fmt.Sprint(r.Failures)))
	}
	if r.Then != "" && r.Then != thenExit {
		switch {
		case r.ThenErr != nil:
			lines = append(lines, row("then", "could not "+thenLabel(r.Then)+": "+r.ThenErr.Error()))
		case r.ThenDone:
			lines = append(lines, row("then", thenLabel(r.Then)+": done"))
		}
	}
	lines = append(lines, "", " "+st.Heading.Render("Contribution per peer"))
	lines = append(lines, st.Muted.Render(fmt.Sprintf("   %-21s %-14s %11s %11s", "ADDRESS", "CLIENT", "GAVE US", "WE SENT")))
	room := c.Height - len(lines) - 3
	var addrs []string
	for _, p := range r.Peers {
		addrs = append(addrs, p.addr)
	}
	shared := hostCounts(addrs)
	for i, p := range r.Peers {
		if i >= room && len(r.Peers) > room {
			lines = append(lines, st.Muted.Render(fmt.Sprintf("   ... and %d more", len(r.Peers)-i)))
			break
		}
		client := p.client
		if len(client) > 14 {
			client = client[:14]
		}
		addr := p.addr
		if !p.unsampled {
			addr = peerLabel(p.addr, shared)
		}
		lines = append(lines, st.Text.Render(fmt.Sprintf("   %-21s %-14s %11s %11s", addr, client, format.Bytes(p.down), format.Bytes(p.up))))
	}
	if len(r.Peers) == 0 {
		msg := "   no peer exchanged data"
		if r.Moved > 0 {
			msg = "   none sampled: the transfer ended before the first per-peer sample"
		}
		lines = append(lines, st.Muted.Render(msg))
	}
	return c.page(lines, r)
}

func (r *Result) ShortHelp() []key.Binding {
	return []key.Binding{as(r.c.Keys.Enter, "back to the menu"), r.c.Keys.Quit}
}
func (r *Result) FullHelp() [][]key.Binding { return [][]key.Binding{r.ShortHelp()} }
