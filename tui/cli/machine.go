package cli

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"ezio/disks/diskdeploy"
	"ezio/disks/diskimage"
	"ezio/disks/lvm"
	"ezio/disks/machine"
	"ezio/engine/server"
)

// machineResult is what --hostname and --then-run did, in the JSON
// result and the report.
type machineResult struct {
	Hostname string         `json:"hostname,omitempty"`
	Number   int            `json:"number,omitempty"` // the room counter
	Roots    []machine.Root `json:"roots,omitempty"`
	Note     string         `json:"note,omitempty"`
	// NotMounted says why a partition was not mounted, by number.
	NotMounted map[int]string        `json:"not_mounted,omitempty"`
	ThenRun    *machine.ScriptResult `json:"then_run,omitempty"`
}

// checkMachine refuses, before anything is written, a hostname pattern
// with an unknown placeholder or that needs a server's counter without a
// server, and a --then-run script the image does not have.
func checkMachine(fsys fs.FS, o *DiskDeployOptions) (script []byte, err error) {
	if o.Hostname != "" {
		needsNumber, err := machine.CheckPattern(o.Hostname)
		if err != nil {
			return nil, refused(err)
		}
		if needsNumber && !diskdeploy.IsRemote(o.Source) {
			return nil, refused(fmt.Errorf("--hostname %q uses {n}, the room counter a server hands out; deploy from the server (http://SERVER/images/NAME or auto) or drop {n}", o.Hostname))
		}
	}
	if o.ThenRun == "" {
		return nil, nil
	}
	if !fs.ValidPath(o.ThenRun) || strings.Contains(o.ThenRun, "/") {
		return nil, refused(fmt.Errorf("--then-run %q: name a script at the top of the image directory (e.g. post.sh)", o.ThenRun))
	}
	f, err := fsys.Open(o.ThenRun)
	if err != nil {
		return nil, refused(fmt.Errorf("--then-run %s: the image has no such script (a server serves the *.sh files at the top of the image directory): %w", o.ThenRun, err))
	}
	defer f.Close()
	script, err = io.ReadAll(io.LimitReader(f, diskimage.MaxScript+1))
	if err != nil {
		return nil, err
	}
	if len(script) > diskimage.MaxScript {
		return nil, refused(fmt.Errorf("--then-run %s is larger than %d bytes", o.ThenRun, diskimage.MaxScript))
	}
	return script, nil
}

// finishMachine runs after the data is verified and the disk finished:
// the partitions are mounted under a temporary directory, a Linux root
// gets its hostname and an empty machine-id, then the script runs. A
// failure here leaves the data verified; a failing script is exit 1.
func (a *App) finishMachine(ctx context.Context, plan *diskimage.Plan, rep *diskimage.Report, script []byte, o DiskDeployOptions) (*machineResult, error) {
	res := &machineResult{}
	facts := machine.LocalFacts(serverHostOf(o.Source), plan.Target)
	if o.Hostname != "" {
		if needsNumber, _ := machine.CheckPattern(o.Hostname); needsNumber {
			// The same machine asking again (a deploy run twice) keeps
			// its number: the client is its MAC and target disk.
			n, err := roomNumber(ctx, o.Source, cmp.Or(facts.MAC, facts.IP)+" "+plan.Target)
			if err != nil {
				return res, &ExitError{Code: ExitFailed, Err: fmt.Errorf("deployed and verified, but the room number for --hostname: %w", err)}
			}
			facts.Number, res.Number = n, n
		}
		name, err := machine.Expand(o.Hostname, facts)
		if err != nil {
			return res, &ExitError{Code: ExitFailed, Err: fmt.Errorf("deployed and verified, but %w", err)}
		}
		res.Hostname = name
	}
	parts, notMounted, detach := machineParts(ctx, plan, rep)
	defer detach() // after the unmount below: defers run last first
	mounts, err := machine.MountAll(ctx, parts)
	if err != nil {
		return res, &ExitError{Code: ExitFailed, Err: fmt.Errorf("deployed and verified, but mounting its partitions: %w", err)}
	}
	maps.Copy(notMounted, mounts.Skipped)
	if len(notMounted) > 0 {
		res.NotMounted = notMounted
	}
	unmounted := false
	defer func() {
		if !unmounted {
			mounts.Unmount()
		}
	}()
	env := machine.Env{Target: plan.Target, Image: plan.Manifest.Name, Hostname: res.Hostname, Facts: facts, Mounts: mounts}
	for _, m := range mounts.Parts {
		kind, name := machine.Identify(m.Dir)
		if kind == "" {
			continue
		}
		r := machine.Root{Dir: m.Dir, Node: m.Node, OS: kind, Name: name}
		for _, p := range rep.Partitions {
			if p.Number == m.Number && p.Node != m.Node {
				r.Node = p.Node // an LV, named rather than by its loop device, gone after
			}
		}
		switch {
		case kind == "windows":
			r.Done = "left alone: ezio names Linux systems only"
		case res.Hostname == "":
			r.Done = "found"
		default:
			if err := machine.SetHostname(m.Dir, res.Hostname); err != nil {
				return res, &ExitError{Code: ExitFailed, Err: fmt.Errorf("deployed and verified, but naming %s: %w", m.Node, err)}
			}
			r.Done = "hostname " + res.Hostname + ", machine-id emptied"
		}
		if kind == "linux" && env.Root == "" {
			env.Root = m.Dir
		}
		res.Roots = append(res.Roots, r)
	}
	if o.Hostname != "" && env.Root == "" {
		res.Note = "no Linux root (/etc/os-release) on the deployed disk: no hostname written"
	}
	var scriptErr error
	if script != nil {
		res.ThenRun, scriptErr = machine.RunScript(ctx, o.ThenRun, script, env, o.Logger)
		if res.ThenRun != nil && diskdeploy.IsRemote(o.Source) {
			rep := server.ScriptReport{Hostname: res.Hostname, Script: res.ThenRun.Script, Exit: res.ThenRun.Exit, Output: res.ThenRun.Output}
			if err := reportScript(ctx, o.Source, cmp.Or(facts.MAC, facts.IP)+" "+plan.Target, rep); err != nil && o.Logger != nil {
				o.Logger.Warn("the server did not get the finishing script's output (it is in this log)", "err", err)
			}
		}
	}
	unmounted = true
	if err := mounts.Unmount(); err != nil {
		return res, &ExitError{Code: ExitFailed, Err: fmt.Errorf("deployed and verified, but %w", err)}
	}
	if scriptErr != nil {
		var se *machine.ScriptError
		if !errors.As(scriptErr, &se) {
			scriptErr = fmt.Errorf("deployed and verified, but the finishing script could not run: %w", scriptErr)
		}
		return res, &ExitError{Code: ExitFailed, Err: scriptErr}
	}
	return res, nil
}

// machineParts are the deployed partitions finishMachine mounts. An
// LV (the root of most installs on LVM) has no device node here, as
// nothing is activated: it is reached through a read-write loop device
// over the target at its offset, at its size after --grow, detached by
// detach once it is unmounted. An LV in several segments is not mounted.
func machineParts(ctx context.Context, plan *diskimage.Plan, rep *diskimage.Report) (parts []machine.Part, notMounted map[int]string, detach func()) {
	notMounted = map[int]string{}
	var loops []func()
	grown := map[string]int64{} // VG/LV: its size after --grow
	for _, p := range rep.Partitions {
		if p.Grew != nil && p.Grew.LV != nil {
			grown[p.Grew.LV.Name] = p.Grew.LV.To
		}
	}
	for _, p := range rep.Partitions {
		if p.Saved != diskimage.SavedPartclone && p.Saved != diskimage.SavedDD {
			continue
		}
		node := p.Node
		if mp, ok := plan.Manifest.Partition(p.Number); ok && mp.Volume != nil {
			v := mp.Volume
			if v.Segments > 1 {
				notMounted[p.Number] = fmt.Sprintf("segment %d of %d of LV %s/%s", v.Segment, v.Segments, v.VG, v.LV)
				continue
			}
			loop, undo, err := lvm.Loop(ctx, plan.Target, mp.Start, cmp.Or(grown[v.VG+"/"+v.LV], mp.Size), true)
			if err != nil {
				notMounted[p.Number] = fmt.Sprintf("LV %s/%s: %v", v.VG, v.LV, err)
				continue
			}
			loops = append(loops, undo)
			node = loop
		}
		parts = append(parts, machine.Part{Number: p.Number, Node: node, Filesystem: p.Filesystem})
	}
	return parts, notMounted, func() {
		for _, undo := range loops {
			undo()
		}
	}
}

// serverHostOf is the host of a seeder's URL, "" for a local directory.
func serverHostOf(src string) string {
	if !diskdeploy.IsRemote(src) {
		return ""
	}
	u, err := url.Parse(src)
	if err != nil {
		return ""
	}
	return u.Host
}

// roomNumber asks the seeder of src (http://HOST/images/NAME) for this
// client's number in the room.
func roomNumber(ctx context.Context, src, client string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	u := strings.TrimRight(src, "/") + "/" + server.RoomNumberPath + "?client=" + url.QueryEscape(client)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: HTTP %s: %s", u, resp.Status, bytes.TrimSpace(b))
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// reportScript tells the seeder of src (http://HOST/images/NAME) how the
// finishing script ended, so that its log holds every machine's output.
func reportScript(ctx context.Context, src, client string, rep server.ScriptReport) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	body, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	u := strings.TrimRight(src, "/") + "/" + server.ScriptReportPath + "?client=" + url.QueryEscape(client)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		return fmt.Errorf("%s: HTTP %s: %s", u, resp.Status, bytes.TrimSpace(b))
	}
	return nil
}

// printMachine words a machineResult for a terminal or a log.
func printMachine(w io.Writer, m *machineResult) {
	if m == nil {
		return
	}
	for _, r := range m.Roots {
		fmt.Fprintf(w, "%s root on %s (%s): %s\n", r.OS, r.Node, r.Name, r.Done)
	}
	if m.Note != "" {
		fmt.Fprintln(w, m.Note)
	}
	if m.ThenRun != nil {
		fmt.Fprintf(w, "then-run %s: exit %d\n", m.ThenRun.Script, m.ThenRun.Exit)
	}
}
