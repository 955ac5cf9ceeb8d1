package tui

import (
	"strings"

	"ezio/engine"
)

// pieceMap renders a snapshot's piece states into a grid of w x h cells.
// It keeps the rendered lines and redraws only when the pieces or the size
// change, so a repaint at 4 Hz costs a slice copy, not a re-render.
type pieceMap struct {
	pieces  []engine.PieceState
	w, h    int
	lines   []string
	renders int // how many times the grid was drawn (tests check the cache)
	per     int // pieces per cell in the last render
}

// set stores new piece states; it reports whether they differ.
func (p *pieceMap) set(ps []engine.PieceState) bool {
	if len(ps) == len(p.pieces) {
		same := true
		for i := range ps {
			if ps[i] != p.pieces[i] {
				same = false
				break
			}
		}
		if same {
			return false
		}
	}
	p.pieces = append(p.pieces[:0], ps...)
	p.lines = nil
	return true
}

// perCell is how many pieces share one cell in a w x h grid.
func perCell(n, w, h int) int {
	cells := w * h
	if cells <= 0 || n <= 0 {
		return 1
	}
	return (n + cells - 1) / cells
}

// cellState sums up the pieces of one cell: any failure shows, then any
// hashing, then "in progress" when some but not all are verified, so a
// cell is only drawn verified when every piece in it is.
func cellState(ps []engine.PieceState) engine.PieceState {
	var n [5]int
	for _, s := range ps {
		if int(s) < len(n) {
			n[s]++
		}
	}
	switch {
	case n[engine.PieceFailed] > 0:
		return engine.PieceFailed
	case n[engine.PieceHashing] > 0:
		return engine.PieceHashing
	case n[engine.PieceVerified] == len(ps):
		return engine.PieceVerified
	case n[engine.PieceDownloading] > 0 || n[engine.PieceVerified] > 0:
		return engine.PieceDownloading
	}
	return engine.PieceMissing
}

// view returns the grid (h-1 lines) and a legend (the last line).
func (p *pieceMap) view(c *Common, w, h int) []string {
	if w <= 0 || h <= 0 {
		return nil
	}
	if p.lines != nil && p.w == w && p.h == h {
		return p.lines
	}
	p.w, p.h = w, h
	p.renders++
	st := c.Styles
	gh := h - 1 // the legend takes a line
	if gh < 1 {
		gh = 1
	}
	n := len(p.pieces)
	lines := make([]string, 0, h)
	if n == 0 {
		lines = append(lines, st.Muted.Render("no piece data yet"))
		p.lines = lines
		return lines
	}
	per := perCell(n, w, gh)
	p.per = per
	cells := (n + per - 1) / per
	var row strings.Builder
	run, runState := 0, engine.PieceState(255)
	flush := func() {
		if run > 0 {
			row.WriteString(st.Pieces[runState].Render(strings.Repeat(st.Glyphs.Pieces[runState], run)))
		}
		run = 0
	}
	for i := 0; i < cells; i++ {
		lo, hi := i*per, min(n, (i+1)*per)
		s := cellState(p.pieces[lo:hi])
		if s != runState {
			flush()
			runState = s
		}
		run++
		if (i+1)%w == 0 || i == cells-1 {
			flush()
			runState = 255
			lines = append(lines, row.String())
			row.Reset()
		}
	}
	g := st.Glyphs.Pieces
	words := [5]string{"missing", "getting", "hashing", "done", "failed"}
	if w < 56 {
		words = [5]string{"none", "get", "hash", "done", "fail"}
	}
	var legend string
	for _, i := range []int{3, 1, 2, 4, 0} {
		legend += st.Pieces[i].Render(g[i]) + st.Muted.Render(" "+words[i]+" ")
	}
	for len(lines) < gh {
		lines = append(lines, "")
	}
	lines = append(lines, legend)
	p.lines = lines
	return lines
}
