package server

import (
	"net/http"
	"time"
)

// Machine is one network-booted machine of the room, by MAC, as the
// status page, /status.json and `ezio seed --json` show it (package
// engine/netboot keeps them).
type Machine struct {
	MAC        string    `json:"mac"`
	State      string    `json:"state"` // booting, deploying, verified, rebooted, failed
	Arch       string    `json:"arch,omitempty"`
	IP         string    `json:"ip,omitempty"`
	Phase      string    `json:"phase,omitempty"`
	Target     string    `json:"target,omitempty"`
	BytesDone  int64     `json:"bytes_done"`
	BytesTotal int64     `json:"bytes_total"`
	Reason     string    `json:"reason,omitempty"`
	Updated    time.Time `json:"updated"`
	Verified   time.Time `json:"verified,omitzero"`
}

// SetNetboot serves h under /netboot/ and shows machines() on the status
// page (ezio seed IMAGE-DIR --netboot).
func (s *Server) SetNetboot(h http.Handler, machines func() []Machine) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.netboot, s.machines = h, machines
}

func (s *Server) serveNetboot(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	h := s.netboot
	s.mu.Unlock()
	if h == nil {
		http.NotFound(w, r)
		return
	}
	h.ServeHTTP(w, r)
}

// Machines is the room's network-booted machines (nil without netboot).
func (s *Server) Machines() []Machine {
	s.mu.Lock()
	f := s.machines
	s.mu.Unlock()
	if f == nil {
		return nil
	}
	return f()
}
