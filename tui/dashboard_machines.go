package tui

// The network-booted room on a disk image's seeder dashboard: one row per
// machine by MAC, from its first DHCP request (Serve's "Boot the room's
// machines over the network?").

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/lipgloss"

	"ezio/engine/netboot"
	"ezio/engine/netboot/room"
	"ezio/engine/server"
	"ezio/tui/format"
)

// setMachines takes the room's latest records and logs each machine's
// change of state, so that the log tells the room's story too.
func (d *DiskSeedDashboard) setMachines(ms []server.Machine) {
	if d.machineState == nil {
		d.machineState = map[string]string{}
	}
	for _, m := range ms {
		if d.machineState[m.MAC] == m.State {
			continue
		}
		d.machineState[m.MAC] = m.State
		level, msg := "info", m.MAC+" "+machineStateText(m)
		if m.State == netboot.StateFailed {
			level = "error"
		}
		d.addLog(logLine{d.snap.Time, level, msg})
	}
	d.machines = ms
}

// machineStateText is a machine's state in words, without progress.
func machineStateText(m server.Machine) string {
	switch m.State {
	case netboot.StateBooting:
		return "booting from the network"
	case netboot.StateDeploying:
		if m.Target != "" {
			return "deploying to " + m.Target
		}
		return "deploying"
	case netboot.StateVerified:
		return "verified"
	case netboot.StateRebooted:
		return "rebooted into its system"
	case netboot.StateFailed:
		if m.Reason != "" {
			return "failed: " + m.Reason
		}
		return "failed"
	}
	return m.State
}

// topBoxes are the partitions, and when the room boots from the network
// its machines above them: the machines come first (what the technician
// watches), the partitions keep at least a row, the fleet and log at
// least three.
func (d *DiskSeedDashboard) topBoxes(w, body int) []string {
	if !d.netboot {
		return d.partsBox(w, body)
	}
	mh := min(max(1, len(d.machines))+3, max(4, body-5-4))
	ph := max(4, min(len(d.parts)+3, body-mh-5))
	return append(d.machinesBox(w, mh), d.partsBoxH(w, ph)...)
}

// machinesBox is one row per machine; its title counts them by state,
// and the rows scroll when the room has more than fit.
func (d *DiskSeedDashboard) machinesBox(w, h int) []string {
	title := "Machines"
	if n := len(d.machines); n > 0 {
		title = fmt.Sprintf("Machines: %d, %s", n, room.Counts(d.machines))
	}
	return d.c.box(title, d.window(paneMachines, d.machineLines(w-2), h-2, true, false), w, h, d.focus == paneMachines)
}

// machineLines is the table: MAC, state, and for a deploying machine its
// progress bar, for a failed one its reason.
func (d *DiskSeedDashboard) machineLines(w int) []string {
	st := d.c.Styles
	const head = "%-17s %-9s %s"
	lines := []string{st.Muted.Render(fmt.Sprintf(head, "MAC", "STATE", "PROGRESS"))}
	if len(d.machines) == 0 {
		return append(lines, st.Muted.Render("no machine has booted yet: power them on, network boot first"))
	}
	rest := max(10, w-28)
	for _, m := range d.machines {
		state := fmt.Sprintf("%-17s %-9s ", m.MAC, m.State)
		switch m.State {
		case netboot.StateDeploying:
			frac := 0.0
			if m.BytesTotal > 0 {
				frac = float64(m.BytesDone) / float64(m.BytesTotal)
			}
			tail := fmt.Sprintf(" %6s of %s", format.Percent(m.BytesDone, m.BytesTotal), format.Bytes(m.BytesTotal))
			if m.Target != "" {
				tail += "  " + m.Target
			}
			if lipgloss.Width(tail) > rest-10 {
				tail = fit(tail, rest-10)
			}
			lines = append(lines, st.Text.Render(state)+d.c.bar(frac, rest-len(tail))+st.Text.Render(tail))
		case netboot.StateFailed:
			lines = append(lines, st.Bad.Render(state+fit(strings.TrimPrefix(machineStateText(m), "failed: "), rest)))
		case netboot.StateVerified, netboot.StateRebooted:
			lines = append(lines, st.Good.Render(state+fit(machineStateText(m), rest)))
		default:
			what := machineStateText(m)
			if m.Arch != "" {
				what += " (" + m.Arch + ")"
			}
			lines = append(lines, st.Text.Render(state+fit(what, rest)))
		}
	}
	return lines
}
