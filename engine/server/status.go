package server

import (
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/anacrolix/torrent/metainfo"
)

// The status page: / (HTML, refreshed by status.js from /status.json) for
// a phone or a laptop on the LAN, and /status.json for scripts.

//go:embed status.html
var statusHTML string

//go:embed status.js
var statusJS []byte

var statusTmpl = template.Must(template.New("status").Funcs(template.FuncMap{
	"name": visibleName,
	"mib":  func(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) },
	"pct":  func(f float64) string { return fmt.Sprintf("%.0f%%", 100*f) },
	"rate": func(r float64) string {
		if r <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f MiB/s", r/(1<<20))
	},
}).Parse(statusHTML))

// BadPieceInfo is a piece the seeder found damaged in its own source.
type BadPieceInfo struct {
	Piece  int    `json:"piece"`
	Offset int64  `json:"offset"` // in the torrent's data
	Length int64  `json:"length"`
	Reason string `json:"reason,omitempty"`
}

// SetHealth gives the status page the seeder's list of bad pieces for one
// torrent. It is called without the server's lock held; nil means the
// source has not been checked.
func (s *Server) SetHealth(ih metainfo.Hash, f func() []BadPieceInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.swarmLocked(ih).health = f
}

// Status is /status.json.
type Status struct {
	Version string        `json:"version"`
	Time    time.Time     `json:"time"`
	Expect  int           `json:"expect"`  // clients the room expects, 0 if not said
	Clients int           `json:"clients"` // clients seen, over every image
	Done    int           `json:"done"`    // of those, finished and confirmed
	Failed  int           `json:"failed"`  // of those, gone before they were done
	Summary string        `json:"summary"` // "2 of 3 clients done"
	Images  []StatusImage `json:"images"`
	// Machines: the network-booted room, by MAC (ezio seed --netboot).
	Machines []Machine `json:"machines,omitempty"`
}

// StatusImage is one served image and its clients.
type StatusImage struct {
	Name      string           `json:"name"`
	Kind      string           `json:"kind"`
	URL       string           `json:"url"` // what clients deploy from
	Size      int64            `json:"size"`
	Pieces    int              `json:"pieces"`
	Health    string           `json:"health"` // "ok", "not checked" or "N bad pieces"
	BadPieces []StatusBadPiece `json:"bad_pieces"`
	Clients   int              `json:"clients"`
	Done      int              `json:"done"`
	Fleet     []FleetMember    `json:"fleet"`
	// Stuck are the clients that lack a piece found bad on the source,
	// and Advice what to do about it (both empty while none is).
	Stuck  []StuckClient `json:"stuck_clients"`
	Advice string        `json:"advice,omitempty"`
}

// StatusBadPiece is a bad piece and, in a disk image, its partition.
type StatusBadPiece struct {
	Partition string `json:"partition,omitempty"`
	BadPieceInfo
}

// Status describes the server's images and clients; host is how the
// client reached it (for the deploy URLs).
func (s *Server) Status(host string) Status {
	type hook struct {
		img   int
		part  string
		f     func() []BadPieceInfo
		stuck func() []StuckClient
	}
	var hooks []hook
	s.mu.Lock()
	st := Status{Version: s.version, Time: s.now().UTC().Truncate(time.Second), Expect: s.expect, Images: []StatusImage{}}
	names := make([]string, 0, len(s.images))
	for n := range s.images {
		names = append(names, n)
	}
	sort.Strings(names)
	for i, n := range names {
		im := s.images[n]
		e := s.entryLocked(im, "http://"+host)
		si := StatusImage{Name: im.name, Kind: im.kind, URL: e.URL, Size: e.Size, Pieces: e.Pieces, BadPieces: []StatusBadPiece{}, Fleet: s.imageFleetLocked(im), Stuck: []StuckClient{}}
		for _, p := range im.parts {
			if p.t == nil {
				continue
			}
			if sw := s.swarms[p.t.mi.HashInfoBytes()]; sw != nil && sw.health != nil {
				part := p.Name
				if im.kind == KindPartition {
					part = ""
				}
				hooks = append(hooks, hook{i, part, sw.health, sw.stuck})
			}
		}
		for _, m := range si.Fleet {
			si.Clients++
			switch m.State {
			case FleetDone:
				si.Done++
			case FleetLeft, FleetLost:
				st.Failed++
			}
		}
		st.Clients += si.Clients
		st.Done += si.Done
		st.Images = append(st.Images, si)
	}
	s.mu.Unlock()
	st.Machines = s.Machines()

	checked := make([]bool, len(st.Images))
	for _, h := range hooks {
		checked[h.img] = true
		for _, b := range h.f() {
			st.Images[h.img].BadPieces = append(st.Images[h.img].BadPieces, StatusBadPiece{Partition: h.part, BadPieceInfo: b})
		}
		if h.stuck != nil {
			st.Images[h.img].Stuck = mergeStuck(st.Images[h.img].Stuck, h.stuck())
		}
	}
	stuck := 0
	for i := range st.Images {
		if n := len(st.Images[i].Stuck); n > 0 {
			st.Images[i].Advice = StuckAdvice
			stuck += n
		}
	}
	for i := range st.Images {
		si := &st.Images[i]
		switch {
		case !checked[i]:
			si.Health = "not checked"
		case len(si.BadPieces) == 0:
			si.Health = "ok"
		case len(si.BadPieces) == 1:
			si.Health = "1 bad piece"
		default:
			si.Health = fmt.Sprintf("%d bad pieces", len(si.BadPieces))
		}
	}
	n := st.Expect
	if n <= 0 {
		n = st.Clients
	}
	if n == 0 {
		st.Summary = "no clients yet"
	} else {
		st.Summary = fmt.Sprintf("%d of %d clients done", st.Done, n)
	}
	if line := stuckSummary(stuck); line != "" {
		st.Summary += "; " + line
	}
	return st
}

func (s *Server) statusJSON(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, s.Status(r.Host))
}

// statusCSP allows the page nothing but itself: no external resources,
// and no inline script for an injected name to hide in.
const statusCSP = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func (s *Server) statusPage(w http.ResponseWriter, r *http.Request) {
	st := s.Status(r.Host)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", statusCSP)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	if err := statusTmpl.Execute(w, st); err != nil {
		s.log.Debug("status page", "err", err)
	}
}

func (s *Server) statusScript(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(statusJS)
}

// visibleName shows a name with its control characters spelled out
// (ESC as \x1b), so a name cannot paint a terminal or hide text; the HTML
// template escapes the rest. status.js does the same.
func visibleName(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[0])
		case unicode.IsControl(r):
			if r < 0x100 {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteRune(r)
		}
		s = s[n:]
	}
	return b.String()
}

// StuckClient is a client of the seeder that lacks a piece the seeder
// found bad on its source: it cannot finish from this seeder.
type StuckClient struct {
	Addr      string `json:"addr"`   // its address (listen port when known)
	Client    string `json:"client"` // its software, from its handshake
	Pieces    []int  `json:"pieces"` // bad pieces it lacks
	Connected bool   `json:"connected"`
	Told      bool   `json:"told"` // it was sent the bad-piece notice (an ezio client)
}

// StuckAdvice is what a technician does about a damaged source.
const StuckAdvice = "the source's copy is damaged: re-capture the image, or fix the source and check it with `ezio torrent verify`"
