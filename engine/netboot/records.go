package netboot

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"ezio/engine/atomicfile"
	"ezio/engine/server"
)

// Machine states, in the order a machine goes through them.
const (
	StateBooting   = "booting"   // asked for its boot file
	StateDeploying = "deploying" // the deploy environment runs
	StateVerified  = "verified"  // every piece written and checked
	StateRebooted  = "rebooted"  // came back and was sent to its disk
	StateFailed    = "failed"    // stopped with a reason, nothing booted
)

// RecordsFile and TargetsFile live beside the image: the machines'
// records, and per-MAC target disks ("MAC /dev/sdX" a line).
const (
	RecordsFile = "ezio-netboot.json"
	TargetsFile = "ezio-netboot-targets"
)

// Machine is one row of the room, by MAC, from its first DHCP request.
type Machine = server.Machine

// deployed says whether the machine's next network boot goes to its disk:
// it has a verified deploy on record.
func deployed(m Machine) bool { return !m.Verified.IsZero() }

// Records are the room's machines, kept in a file so that a restarted
// server still sends deployed machines to their disks.
type Records struct {
	path string
	now  func() time.Time

	mu       sync.Mutex
	machines map[string]*Machine
}

// OpenRecords reads the records in dir (none yet is fine). forget drops
// them first (`--redeploy`).
func OpenRecords(dir string, forget bool) (*Records, error) {
	r := &Records{path: filepath.Join(dir, RecordsFile), now: time.Now, machines: map[string]*Machine{}}
	if forget {
		if err := os.Remove(r.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return r, nil
	}
	b, err := os.ReadFile(r.path)
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return nil, err
	}
	var list []Machine
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("%s: %w", r.path, err)
	}
	for i := range list {
		m := list[i]
		r.machines[m.MAC] = &m
	}
	return r, nil
}

// Get is the machine's row (ok false if never seen).
func (r *Records) Get(mac net.HardwareAddr) (Machine, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.machines[mac.String()]
	if !ok {
		return Machine{}, false
	}
	return *m, true
}

// Deployed says whether the machine has a verified deploy on record.
func (r *Records) Deployed(mac net.HardwareAddr) bool {
	m, ok := r.Get(mac)
	return ok && deployed(m)
}

// Update changes the machine's row with f and saves the records when
// the row's state changed (progress alone stays in memory).
func (r *Records) Update(mac net.HardwareAddr, f func(m *Machine)) (Machine, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := mac.String()
	m := r.machines[key]
	if m == nil {
		m = &Machine{MAC: key}
		r.machines[key] = m
	}
	before := *m
	f(m)
	m.MAC = key
	m.Updated = r.now().UTC().Truncate(time.Second)
	if m.State == StateVerified && m.Verified.IsZero() {
		m.Verified = m.Updated
	}
	if before.State == m.State && before.Verified.Equal(m.Verified) && before.Reason == m.Reason {
		return *m, nil
	}
	return *m, r.saveLocked()
}

func (r *Records) saveLocked() error {
	list := r.listLocked()
	b, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(r.path, append(b, '\n'), 0o644)
}

func (r *Records) listLocked() []Machine {
	list := make([]Machine, 0, len(r.machines))
	for _, m := range r.machines {
		list = append(list, *m)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].MAC < list[j].MAC })
	return list
}

// List is every machine, by MAC.
func (r *Records) List() []Machine {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.listLocked()
}

// Targets reads the per-MAC target disks in dir/TargetsFile: lines of
// "MAC DEVICE", "#" comments. No file: no overrides.
func Targets(dir string) (map[string]string, error) {
	f, err := os.Open(filepath.Join(dir, TargetsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("%s line %d: want \"MAC DEVICE\", got %q", TargetsFile, n, line)
		}
		mac, err := net.ParseMAC(fields[0])
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", TargetsFile, n, err)
		}
		if fields[1] != "auto" && !strings.HasPrefix(fields[1], "/dev/") {
			return nil, fmt.Errorf("%s line %d: the target is \"auto\" or a /dev/ path, not %q", TargetsFile, n, fields[1])
		}
		out[mac.String()] = fields[1]
	}
	return out, sc.Err()
}
