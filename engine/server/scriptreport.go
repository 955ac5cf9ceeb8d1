package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// ScriptReportPath is the route under an image where a client reports
// how its finishing script (deploy --then-run) ended: POST
// /images/NAME/then-run?client=ID with a ScriptReport as JSON. The
// seeder logs it, so the technician reads every machine's output in one
// place.
const ScriptReportPath = "then-run"

// ScriptReport is one client's finishing script, as it reports it.
type ScriptReport struct {
	Hostname string `json:"hostname,omitempty"`
	Script   string `json:"script"`
	Exit     int    `json:"exit"`
	Output   string `json:"output"` // its last lines
}

// maxScriptReport bounds a report's body: the output is the script's
// last 40 lines.
const maxScriptReport = 64 << 10

// scriptReport logs a client's finishing script for an image this
// server serves.
func (s *Server) scriptReport(w http.ResponseWriter, r *http.Request) {
	name, client, ok := s.imageClient(w, r)
	if !ok {
		return
	}
	var rep ScriptReport
	body, err := io.ReadAll(io.LimitReader(r.Body, maxScriptReport+1))
	if err == nil && len(body) > maxScriptReport {
		err = fmt.Errorf("over %d bytes", maxScriptReport)
	}
	if err == nil {
		err = json.Unmarshal(body, &rep)
	}
	if err != nil {
		http.Error(w, "bad report: "+err.Error(), http.StatusBadRequest)
		return
	}
	level := "ran"
	if rep.Exit != 0 {
		level = "FAILED"
	}
	s.log.Info("finishing script "+level, "image", name, "client", client, "from", remoteIP(r).String(),
		"hostname", rep.Hostname, "script", rep.Script, "exit", rep.Exit, "output", rep.Output)
	w.WriteHeader(http.StatusNoContent)
}
