package tui

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"syscall"

	tea "github.com/charmbracelet/bubbletea"

	"ezio/disks"
	"ezio/engine"
	"ezio/engine/torrentfile"
)

// problem is an error as the wizard words it: a title that names what
// happened, the engine's account of it, and what the technician can do.
// The wording belongs here, not in the engine; no command-line flag is
// ever named (the wizard's users cannot type one).
type problem struct {
	title, what, hint string
}

// errKind is what happened, as far as the wizard can tell.
type errKind int

const (
	errOther errKind = iota
	errRefused
	errNotImage
	errPortBusy
	errUnreachable
	errNoPeerSource
	errNotFound
	errPermission
)

// classify looks at typed errors first (disks.RefusedError,
// torrentfile.ValidationError, the net and syscall errors the standard library
// wraps); the engine still returns a few conditions as text only, and
// those are matched on the engine's own words, narrowly.
func classify(err error) errKind {
	var re *disks.RefusedError
	var ve *torrentfile.ValidationError
	var dns *net.DNSError
	var ne net.Error
	var ue *url.Error
	var unreach *engine.UnreachableError
	var nf *engine.NotFoundError
	var le *engine.ListenError
	switch {
	case err == nil:
		return errOther
	case errors.As(err, &unreach):
		return errUnreachable
	case errors.As(err, &nf):
		return errNotFound
	case errors.As(err, &le):
		return errPortBusy
	case errors.Is(err, engine.ErrNoPeerSource):
		return errNoPeerSource
	case errors.As(err, &re):
		return errRefused
	case errors.As(err, &ve):
		return errNotImage
	case errors.Is(err, syscall.EADDRINUSE), errors.Is(err, syscall.EADDRNOTAVAIL):
		return errPortBusy
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.ETIMEDOUT),
		errors.Is(err, context.DeadlineExceeded), errors.As(err, &dns):
		return errUnreachable
	case errors.As(err, &ne) && ne.Timeout():
		return errUnreachable
	case errors.As(err, &ue) && ue.Op != "" && isNetFailure(ue.Err):
		return errUnreachable
	case errors.Is(err, syscall.ENOENT):
		return errNotFound
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return errPermission
	}
	return errOther
}

// opAddr is the address a network operation failed on, if err says.
func opAddr(err error) string {
	var oe *net.OpError
	if errors.As(err, &oe) {
		switch {
		case oe.Addr != nil:
			return oe.Addr.String()
		case oe.Source != nil:
			return oe.Source.String()
		}
	}
	return ""
}

// rootCause is the innermost error's text ("connection refused").
func rootCause(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}

func isNetFailure(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// describe words err for the wizard. title says what failed ("Could not
// list the server's images"), for errors of no more precise kind;
// fallback is their hint.
func describe(title string, err error, fallback string) problem {
	what := err.Error()
	p := problem{title: title, what: what, hint: fallback}
	switch classify(err) {
	case errRefused:
		var re *disks.RefusedError
		errors.As(err, &re)
		p.title = "Refused: " + re.Target
		p.what = "ezio will not write to " + re.Target + ": " + re.Reason + "."
		p.hint = hintFor(err)
	case errNotImage:
		p.title = "This torrent is not an ezio disk image"
		p.hint = "Its files must be extents named by hex disk offsets (the partclone -T layout). Use a torrent made by Capture or Build a torrent."
	case errPortBusy:
		p.title = "A port is already in use"
		p.what = "Another program on this machine already listens on the address ezio needs: " + what
		if a := opAddr(err); a != "" {
			p.what = "Another program on this machine already listens on " + a + ", where ezio needs to listen."
		}
		p.hint = "Stop the other program (perhaps another ezio), or choose another port: in Settings for BitTorrent, on the Serve screen for the image server."
	case errUnreachable:
		p.title = "Cannot reach the server"
		var dns *net.DNSError
		switch a := opAddr(err); {
		case errors.As(err, &dns):
			p.what = "The name " + dns.Name + " is not known on this network."
		case a != "":
			p.what = "No answer from " + a + ": " + rootCause(err) + "."
		}
		p.hint = "Check the address and the port, that the server is serving (Serve an image on it) and that this machine is on its network (cable, same LAN)."
	case errNoPeerSource:
		p.title = "The torrent names no way to find the server"
		p.what = "The torrent has no tracker, so ezio cannot find a machine that has the image."
		p.hint = "Deploy from the server's address instead (it hands out the torrent and the peers), or serve the image with the tracker on."
	case errNotFound:
		if p.hint == "" {
			p.hint = "Check the path: the file or device does not exist on this machine."
		}
	case errPermission:
		p.hint = "ezio needs root to read disks and to write to them: run it as root."
	}
	return p
}

// hintFor gives the "what to do" of a refusal, in the wizard's words.
func hintFor(err error) string {
	var re *disks.RefusedError
	if errors.As(err, &re) {
		if re.Hint != "" {
			h := strings.ReplaceAll(re.Hint, "Run `ezio disks` to see the disks", "The Disks screen of the menu lists them")
			return h + "."
		}
		return "Choose another target. ezio never writes to a disk that is mounted, in use, too small or the one this system runs from."
	}
	return ""
}

// errorScreen is the command that shows a problem; Esc returns to back
// (nil: the menu).
func errorScreen(p problem, back Screen) tea.Cmd {
	return func() tea.Msg { return errorMsg{title: p.title, what: p.what, hint: p.hint, back: back} }
}
