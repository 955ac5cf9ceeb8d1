package tui

import "sync/atomic"

// lastID numbers flows, forms and dashboards. Their messages carry the id
// so that a result arriving after its screen was left is dropped. Screens
// are built inside tea.Cmd goroutines too, so the counter is atomic; one
// counter for all kinds keeps ids unique across them.
var lastID atomic.Int64

func newID() int { return int(lastID.Add(1)) }
