package tui

import (
	"fmt"
	"net"
	"sort"
	"strings"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/lipgloss"

	"ezio/engine"
	"ezio/tui/format"
)

// bar draws a progress bar of w cells for frac 0..1.
func (c *Common) bar(frac float64, w int) string {
	if w <= 0 {
		return ""
	}
	frac = max(0, min(1, frac))
	full := int(frac * float64(w))
	if frac < 1 && full == w {
		full = w - 1
	}
	g := c.Styles.Glyphs
	return c.Styles.BarFull.Render(strings.Repeat(g.BarFull, full)) + c.Styles.BarEmpty.Render(strings.Repeat(g.BarEmpty, w-full))
}

// sparkline squeezes samples into w cells, each the mean of its bucket,
// scaled to the highest; it returns the line and that peak.
func (c *Common) sparkline(samples []float64, w int) (string, float64) {
	if w <= 0 {
		return "", 0
	}
	levels := c.Styles.Glyphs.Spark
	buckets := make([]float64, 0, w)
	if len(samples) <= w {
		buckets = append(buckets, samples...)
	} else {
		for i := 0; i < w; i++ {
			lo, hi := i*len(samples)/w, (i+1)*len(samples)/w
			sum := 0.0
			for _, v := range samples[lo:hi] {
				sum += v
			}
			buckets = append(buckets, sum/float64(hi-lo))
		}
	}
	peak := 0.0
	for _, v := range buckets {
		peak = max(peak, v)
	}
	var b strings.Builder
	for _, v := range buckets {
		i := 0
		if peak > 0 {
			i = int(v / peak * float64(len(levels)-1))
		}
		b.WriteString(levels[i])
	}
	return c.Styles.Accent.Render(b.String()) + strings.Repeat(" ", w-len(buckets)), peak
}

// fleetFrac is the room's progress: n is the clients expected when the
// technician said how many, else the ones that announced.
func (d *Dashboard) fleetFrac() (frac float64, done, n int) {
	f := d.snap.Fleet
	n = max(len(f), d.expect)
	if n == 0 {
		return 0, 0, 0
	}
	sum := 0.0
	for _, m := range f {
		sum += m.Done
	}
	return sum / float64(n), d.snap.FleetDone, n
}

// header is the four lines at the top: title, bar, totals, rates.
func (d *Dashboard) header() []string {
	c, st, s := d.c, d.c.Styles, d.snap
	w := c.Width
	dot := " " + st.Muted.Render(st.Glyphs.Dot) + " "
	phase := string(s.Phase)
	if phase == "" {
		phase = "starting"
	}
	ph := st.Accent.Render(phase)
	switch {
	case s.Paused:
		ph = st.Warn.Render("paused")
	case s.Phase == phaseWaiting || !d.lostSeen.IsZero():
		ph = st.Warn.Render("waiting for the server")
		if !d.lostSeen.IsZero() && !s.Time.IsZero() {
			ph = st.Warn.Render(fmt.Sprintf("waiting for the server, lost %s ago", lostFor(s.Time.Sub(d.lostSeen))))
		}
	case s.Phase == engine.PhaseFailed:
		ph = st.Bad.Render(phase)
	case s.Phase == engine.PhaseDone:
		ph = st.Good.Render(phase)
	}
	lines := []string{c.titleBar(d.label, ph+dot+st.Muted.Render("elapsed ")+format.Duration(s.Elapsed))}
	label := func(k, v string) string { return st.Muted.Render(k+" ") + st.Text.Render(v) }
	if d.role == engine.RoleSeed {
		frac, done, n := d.fleetFrac()
		tail := fmt.Sprintf(" %3.0f%%  %d of %d done", frac*100, done, n)
		switch {
		case n == 0:
			tail = "  waiting for clients"
		case d.expect > 0:
			tail = fmt.Sprintf(" %3.0f%%  %d of %d clients done", frac*100, done, n)
		}
		lines = append(lines, " "+st.Muted.Render("fleet ")+c.bar(frac, w-8-lipgloss.Width(tail)-1)+tail)
		lines = append(lines, " "+label("serving", format.Bytes(s.BytesTotal))+dot+
			label("pieces", fmt.Sprint(s.PiecesTotal))+dot+label("sent", format.Bytes(s.BytesUploaded))+dot+
			label("peers", fmt.Sprint(s.NumPeers)))
		for _, l := range stuckLines(s) {
			lines = append(lines, " "+st.Bad.Render(l))
		}
	} else {
		frac := 0.0
		if s.BytesTotal > 0 {
			frac = float64(d.got) / float64(s.BytesTotal)
		}
		pct := " " + format.Percent(d.got, s.BytesTotal)
		lines = append(lines, " "+c.bar(frac, w-2-lipgloss.Width(pct))+pct)
		hf := label("hash failures", fmt.Sprint(s.HashFailures))
		if s.HashFailures > 0 {
			hf = st.Muted.Render("hash failures ") + st.Bad.Render(fmt.Sprint(s.HashFailures))
		}
		lines = append(lines, " "+st.Text.Render(format.Bytes(d.got)+" / "+format.Bytes(s.BytesTotal))+dot+
			label("pieces", fmt.Sprintf("%d/%d", s.PiecesDone, s.PiecesTotal))+dot+hf+dot+label("peers", fmt.Sprint(s.NumPeers)))
	}
	var rates string
	if s.Paused {
		// Nothing moves while paused, whatever the smoothed rates say.
		s.DownloadRate, s.UploadRate = 0, 0
	}
	if d.role == engine.RoleSeed {
		rates = " " + label("up", format.Rate(s.UploadRate)) + dot + label("down", format.Rate(s.DownloadRate))
	} else {
		eta := format.ETA(d.eta)
		if s.Paused {
			eta = "paused"
		}
		rates = " " + label("down", format.Rate(s.DownloadRate)) + dot + label("up", format.Rate(s.UploadRate)) + dot + label("ETA", eta)
	}
	// The sparkline takes what is left of the line.
	sw := min(sparkSeconds, w-lipgloss.Width(rates)-22)
	if sw >= 8 && len(d.spark) > 0 {
		sp, peak := c.sparkline(d.spark, sw)
		rates += "  " + sp + st.Muted.Render(" 60s peak "+format.Rate(peak))
	}
	lines = append(lines, rates)
	for i, h := range d.howTo[:min(len(d.howTo), max(1, d.howToRows))] {
		if i == 0 {
			lines = append(lines, " "+st.Muted.Render("clients: ")+st.Text.Render(strings.TrimPrefix(h, "on each client: ")))
		} else {
			lines = append(lines, "          "+st.Text.Render(h))
		}
	}
	return lines
}

// peerName is how a peer is named in every table: its client program and
// the host it runs on. The port is left out: a peer that connected to us
// shows a random one, the tracker knows it by its listening one, and the
// two would not match.
func peerHost(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// peerLabel names a peer's address for a table: the host, and the port
// only when two peers share that host (a demo on loopback).
func peerLabel(addr string, shared map[string]int) string {
	h := peerHost(addr)
	if shared[h] > 1 {
		return addr
	}
	return h
}

func hostCounts(addrs []string) map[string]int {
	n := map[string]int{}
	for _, a := range addrs {
		n[peerHost(a)]++
	}
	return n
}

func (d *Dashboard) peerLines(w int) []string {
	st := d.c.Styles
	ps := append([]engine.PeerSnapshot(nil), d.snap.Peers...)
	sort.SliceStable(ps, func(a, b int) bool {
		return ps[a].DownloadRate+ps[a].UploadRate > ps[b].DownloadRate+ps[b].UploadRate
	})
	showClient := w >= 64
	row := func(addr, client, down, up, share string) string {
		if showClient {
			return fmt.Sprintf("%-21s %-14s %10s %10s %5s", addr, client, down, up, share)
		}
		return fmt.Sprintf("%-21s %10s %10s %5s", addr, down, up, share)
	}
	lines := []string{st.Muted.Render(row("ADDRESS", "CLIENT", "DOWN", "UP", "HAS"))}
	if len(ps) == 0 && d.peersNote != "" {
		return append(lines, st.Muted.Render(d.peersNote))
	}
	if len(ps) == 0 {
		return append(lines, st.Muted.Render("no peers connected"))
	}
	var addrs []string
	for _, p := range ps {
		addrs = append(addrs, p.Addr)
	}
	shared := hostCounts(addrs)
	for _, p := range ps {
		client := p.Client
		if len(client) > 14 {
			client = client[:14]
		}
		share := fmt.Sprintf("%.0f%%", p.Share*100)
		if d.snap.Paused {
			p.DownloadRate, p.UploadRate = 0, 0
		}
		lines = append(lines, st.Text.Render(row(peerLabel(p.Addr, shared), client, format.Rate(p.DownloadRate), format.Rate(p.UploadRate), share)))
	}
	return lines
}

func (d *Dashboard) fleetLines(w int) []string {
	st := d.c.Styles
	_, done, n := d.fleetFrac()
	lines := []string{st.Muted.Render(fmt.Sprintf("%d of %d done", done, n))}
	if n == 0 {
		return append(lines, st.Muted.Render("no client has announced yet"))
	}
	bw := max(4, w-21-1-5-1-10-1)
	var addrs []string
	for _, m := range d.snap.Fleet {
		addrs = append(addrs, m.Addr)
	}
	shared := hostCounts(addrs)
	for _, m := range d.snap.Fleet {
		fs := d.fleetAt[m.Addr]
		rate := "--"
		switch {
		case m.Completed:
			rate = st.Good.Render("done")
		case !m.Active:
			rate = st.Warn.Render("gone")
		case fs.rate >= 0 && fs.lastSeen < 30:
			rate = format.Rate(fs.rate)
		}
		addr := peerLabel(m.Addr, shared)
		if len(addr) > 21 {
			addr = addr[:21]
		}
		lines = append(lines, fmt.Sprintf("%-21s ", addr)+d.c.bar(m.Done, bw)+fmt.Sprintf(" %4.0f%% ", m.Done*100)+fit(rate, 9))
	}
	return lines
}

// logLines is the pane's tail of the log.
func (d *Dashboard) logLines() []string {
	ls := d.logs
	if len(ls) > maxLogLines {
		ls = ls[len(ls)-maxLogLines:]
	}
	return d.logLinesOf(ls)
}

func (d *Dashboard) logLinesOf(ls []logLine) []string {
	st := d.c.Styles
	var out []string
	for _, l := range ls {
		stamp := l.at.Format("15:04:05")
		msg := l.msg
		switch l.level {
		case "warn":
			msg = st.Warn.Render(msg)
		case "error":
			msg = st.Bad.Render(msg)
		default:
			msg = st.Text.Render(msg)
		}
		out = append(out, st.Muted.Render(stamp)+" "+msg)
	}
	if len(out) == 0 {
		out = append(out, st.Muted.Render("no log lines yet"))
	}
	return out
}

// window shows the part of lines a pane of n rows can hold: the top
// (header) line stays, the rest scrolls. follow keeps the newest in view
// until the user scrolls.
func (d *Dashboard) window(p pane, lines []string, n int, keepHead, follow bool) []string {
	if len(lines) <= n || n <= 0 {
		return lines
	}
	head := []string{}
	if keepHead {
		head, lines = lines[:1], lines[1:]
		n--
	}
	maxOff := len(lines) - n
	off := d.scroll[p]
	if follow {
		// scroll counts up from the newest line.
		off = maxOff - min(d.scroll[p], maxOff)
	}
	off = max(0, min(off, maxOff))
	if !follow {
		d.scroll[p] = off
	}
	return append(head, lines[off:off+n]...)
}

// View draws the dashboard for the terminal's size.
func (d *Dashboard) View() string {
	if d.logFull {
		return d.logView()
	}
	c := d.c
	w, h := c.Width, c.Height
	lines := d.header()
	foot := d.footer()
	body := h - len(lines) - len(foot)
	if body < 6 {
		lines = append(lines, foot...)
		return c.screen(lines)
	}
	top := d.peersBox
	if d.top != nil {
		top = d.top
	}
	box := top(w, body)
	lines = append(lines, box...)
	lines = append(lines, d.lowerRow(w, body-len(box))...)
	lines = append(lines, foot...)
	return c.screen(lines)
}

// peersBox is the table of connected peers at the top of the body.
func (d *Dashboard) peersBox(w, body int) []string {
	peersH := min(max(5, len(d.snap.Peers)+3), max(5, body*2/5))
	return d.c.box("Peers", d.window(panePeers, d.peerLines(w-2), peersH-2, true, false), w, peersH, d.focus == panePeers)
}

// lowerRow is the boxes below the top one, rest lines high: a seeder's
// fleet and log (and piece map when wide), a client's piece map and log.
func (d *Dashboard) lowerRow(w, rest int) []string {
	c := d.c
	focused := func(p pane) bool { return d.focus == p }
	var row [][]string
	if d.role == engine.RoleSeed {
		if w >= 110 && !d.noPieces {
			fw, pw := w*2/5, w/4
			lw := w - fw - pw
			row = append(row,
				c.box("Fleet", d.window(paneFleet, d.fleetLines(fw-2), rest-2, true, false), fw, rest, focused(paneFleet)),
				d.piecesBox(pw, rest, focused(panePieces)),
				c.box("Log", d.window(paneLog, d.logLines(), rest-2, false, true), lw, rest, focused(paneLog)))
		} else {
			fw := w / 2
			row = append(row,
				c.box("Fleet", d.window(paneFleet, d.fleetLines(fw-2), rest-2, true, false), fw, rest, focused(paneFleet)),
				c.box("Log", d.window(paneLog, d.logLines(), rest-2, false, true), w-fw, rest, focused(paneLog)))
		}
	} else {
		pw := w / 2
		row = append(row,
			d.piecesBox(pw, rest, focused(panePieces)),
			c.box("Log", d.window(paneLog, d.logLines(), rest-2, false, true), w-pw, rest, focused(paneLog)))
	}
	return joinH(row...)
}

// piecesBox draws the map; its title says how many pieces a cell holds.
func (d *Dashboard) piecesBox(w, h int, focused bool) []string {
	lines := d.pm.view(d.c, w-2, h-2)
	title := "Pieces"
	if d.pm.per > 1 {
		title = fmt.Sprintf("Pieces, 1 cell = %d", d.pm.per)
	}
	return d.c.box(title, lines, w, h, focused)
}

// footer is the key help, and above it the save-as prompt or what the
// last save did.
func (d *Dashboard) footer() []string {
	var out []string
	switch {
	case d.saving:
		out = append(out, " "+d.savePath.View())
	case d.logStatus != "":
		out = append(out, " "+d.c.Styles.Muted.Render(d.logStatus))
	}
	d.help.Width = d.c.Width - 1
	d.help.ShowAll = d.fullHelp && !d.saving
	var km help.KeyMap = d
	if d.keyMap != nil {
		km = d.keyMap
	}
	return append(out, strings.Split(" "+strings.ReplaceAll(d.help.View(km), "\n", "\n "), "\n")...)
}
