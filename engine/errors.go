package engine

import (
	"errors"
	"fmt"
	"time"
)

// The engine's errors carry what happened, never a command-line flag: the
// CLI and the wizard add the hint their users can act on.

// UnreachableError: no server, peer or control daemon could be reached,
// or none has been reachable for too long. Worth retrying later (exit 3 on
// the CLI). It is the one such type: the daemon's client returns it too.
type UnreachableError struct {
	URL   string    // the URL that could not be fetched, if it was one
	Addr  string    // the control daemon's address nobody answers at, if it was one
	What  string    // what could not be reached ("the server"...)
	Since time.Time // when the last source was lost; zero if never reached
	Err   error
}

func (e *UnreachableError) Error() string {
	if e.URL != "" {
		return fmt.Sprintf("cannot reach %s: %v", e.URL, e.Err)
	}
	if e.Addr != "" {
		return fmt.Sprintf("no daemon answers at %s: %v", e.Addr, e.Err)
	}
	msg := "no server reachable"
	if e.What != "" {
		msg = e.What + " is not reachable"
	}
	if !e.Since.IsZero() {
		msg += " since " + e.Since.Format("15:04:05") + fmt.Sprintf(" (%s)", time.Since(e.Since).Round(time.Second))
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// ListenError: the BitTorrent client could not listen where asked (the
// port is taken, or the address is not on this machine).
type ListenError struct {
	Addr string
	Err  error
}

func (e *ListenError) Error() string {
	return fmt.Sprintf("cannot listen for peers on %s: %v", e.Addr, e.Err)
}
func (e *ListenError) Unwrap() error { return e.Err }

// ErrNoPeerSource: the torrent names no tracker and no peer was given, so
// there is nowhere to get the image from.
var ErrNoPeerSource = errors.New("no way to find peers: the torrent names no tracker and no peer or server was given")

// WriteError: the target refused a write (I/O error, full, read-only,
// gone).
type WriteError struct {
	Offset int64
	Err    error
}

func (e *WriteError) Error() string {
	return fmt.Sprintf("writing to the target at byte %d: %v", e.Offset, e.Err)
}
func (e *WriteError) Unwrap() error { return e.Err }
