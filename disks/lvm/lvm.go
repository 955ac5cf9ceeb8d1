// Package lvm reads the layout of an LVM physical volume without
// activating anything (this kernel may have no device-mapper): lvm's own
// reports (pvs, lvs --reportformat json) restricted to the one device,
// and loop devices over the PV at each segment's offset, where partclone
// sees an LV's filesystem. It writes nothing to the PV.
package lvm

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"sort"
	"strconv"
	"strings"

	"ezio/disks/table"
)

// PV is a physical volume and its volume group, as pvs reports them.
type PV struct {
	Node       string
	UUID       string
	PEStart    int64 // bytes from the start of the PV to its first extent
	ExtentSize int64 // bytes
	VG, VGUUID string
	MDACount   int // metadata areas on this PV
	PVCount    int // PVs in the VG
}

// Segment is a run of an LV's extents on the PV.
type Segment struct {
	StartLE int64 // the LV's extent where it starts
	PE      int64 // the PV's extent where it lies
	Extents int64
}

// LV is a logical volume of the PV's VG.
type LV struct {
	Name, UUID string
	Size       int64 // bytes
	Attr       string
	Layout     string // lvs lv_layout: linear, striped, thin,pool, raid,raid1...
	Role       string
	Pool       string
	Origin     string
	Segments   []Segment
	// Problem, when not "", is why ezio cannot capture it.
	Problem string
}

// Layout is a PV with the LVs of its VG.
type Layout struct {
	PV  PV
	LVs []LV
}

// Offset is the byte offset of a segment from the start of the PV.
func (l *Layout) Offset(s Segment) int64 { return l.PV.PEStart + s.PE*l.PV.ExtentSize }

// Bytes is the length of a segment in bytes.
func (l *Layout) Bytes(s Segment) int64 { return s.Extents * l.PV.ExtentSize }

// lvmTool runs an lvm report command on node.
func lvmTool(ctx context.Context, node string, cmd string, args ...string) ([]byte, error) {
	// --devices: lvm looks at this device only, never at the machine's
	// own VGs; a VG with PVs elsewhere shows them missing.
	out, err := table.Tool(ctx, cmd, append([]string{"--devices", node, "--reportformat", "json", "--units", "b", "--nosuffix"}, args...)...)
	return []byte(out), err
}

type report struct {
	Report []map[string][]map[string]string `json:"report"`
}

func rows(b []byte, kind string) ([]map[string]string, error) {
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("lvm's JSON report: %w", err)
	}
	var out []map[string]string
	for _, part := range r.Report {
		out = append(out, part[kind]...)
	}
	return out, nil
}

func num(s string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	return n
}

// Read reports the PV on node and its VG's LVs. An LV ezio cannot
// capture has its Problem set (Check turns them into one error).
func Read(ctx context.Context, node string) (*Layout, error) {
	if _, err := exec.LookPath("pvs"); err != nil {
		return nil, fmt.Errorf("%s is an LVM physical volume; reading it needs lvm2 (pvs, lvs)", node)
	}
	b, err := lvmTool(ctx, node, "pvs", "-o", "pv_name,pv_uuid,pe_start,vg_extent_size,vg_name,vg_uuid,pv_mda_count,pv_count", node)
	if err != nil {
		return nil, err
	}
	pvs, err := rows(b, "pv")
	if err != nil || len(pvs) != 1 {
		return nil, fmt.Errorf("pvs %s: %d physical volumes reported, want 1 (%v)", node, len(pvs), err)
	}
	p := pvs[0]
	l := &Layout{PV: PV{Node: node, UUID: p["pv_uuid"], PEStart: num(p["pe_start"]), ExtentSize: num(p["vg_extent_size"]),
		VG: p["vg_name"], VGUUID: p["vg_uuid"], MDACount: int(num(p["pv_mda_count"])), PVCount: int(num(p["pv_count"]))}}
	if l.PV.VG == "" {
		return l, nil // a PV in no VG: its header only
	}
	b, err = lvmTool(ctx, node, "lvs", "-a", "-o", "lv_name,lv_uuid,lv_size,lv_attr,lv_layout,lv_role,pool_lv,origin,segtype,seg_start_pe,seg_size_pe,seg_pe_ranges", l.PV.VG)
	if err != nil {
		return nil, err
	}
	lvs, err := rows(b, "lv")
	if err != nil {
		return nil, err
	}
	byName := map[string]*LV{}
	var order []string
	for _, r := range lvs {
		name := strings.Trim(r["lv_name"], "[]")
		lv := byName[name]
		if lv == nil {
			lv = &LV{Name: name, UUID: r["lv_uuid"], Size: num(r["lv_size"]), Attr: r["lv_attr"], Layout: r["lv_layout"],
				Role: r["lv_role"], Pool: r["pool_lv"], Origin: r["origin"]}
			byName[name] = lv
			order = append(order, name)
		}
		lv.addSegment(node, r)
	}
	for _, name := range order {
		lv := byName[name]
		lv.judge()
		l.LVs = append(l.LVs, *lv)
	}
	// In the order they lie on the disk.
	sort.SliceStable(l.LVs, func(i, j int) bool { return l.LVs[i].firstPE() < l.LVs[j].firstPE() })
	return l, nil
}

func (lv *LV) firstPE() int64 {
	if len(lv.Segments) == 0 {
		return -1
	}
	return lv.Segments[0].PE
}

// addSegment adds one lvs row's segment, or the problem it shows.
func (lv *LV) addSegment(node string, r map[string]string) {
	if r["segtype"] != "linear" && r["segtype"] != "striped" {
		lv.problem(fmt.Sprintf("a %s segment", r["segtype"]))
		return
	}
	ranges := strings.Fields(r["seg_pe_ranges"])
	if len(ranges) != 1 {
		lv.problem(fmt.Sprintf("striped over %d devices", len(ranges)))
		return
	}
	dev, pes, ok := strings.Cut(ranges[0], ":")
	from, to, ok2 := strings.Cut(pes, "-")
	if !ok || !ok2 {
		lv.problem("extents ezio cannot read: " + ranges[0])
		return
	}
	if dev != node {
		lv.problem("extents on another disk (" + dev + "); ezio images one disk")
		return
	}
	lv.Segments = append(lv.Segments, Segment{StartLE: num(r["seg_start_pe"]), PE: num(from), Extents: num(to) - num(from) + 1})
}

func (lv *LV) problem(p string) {
	if lv.Problem == "" {
		lv.Problem = p
	}
}

// judge refuses what is not a plain linear volume; what kind of volume
// it is says more than the segment type that showed it.
func (lv *LV) judge() {
	layout := lv.Layout + "," + lv.Role
	kind := ""
	switch {
	case strings.Contains(layout, "thin") || lv.Pool != "":
		kind = "a thin pool or thin volume"
	case strings.Contains(layout, "snapshot") || lv.Origin != "" || strings.HasPrefix(lv.Attr, "s") || strings.HasPrefix(lv.Attr, "S"):
		kind = "a snapshot"
	case strings.Contains(layout, "raid") || strings.Contains(layout, "mirror"):
		kind = "a RAID or mirrored volume"
	case strings.Contains(layout, "cache") || strings.Contains(layout, "vdo") || strings.Contains(layout, "integrity"):
		kind = "a " + lv.Layout + " volume"
	}
	if kind != "" {
		lv.Problem = kind
	}
	if lv.Problem == "" && len(lv.Segments) == 0 {
		lv.problem("no extents")
	}
}

// Check is the refusal of a layout ezio cannot capture: every LV with a
// problem, named, and a PV with more than one metadata area.
func (l *Layout) Check() error {
	var bad []string
	for _, lv := range l.LVs {
		if lv.Problem != "" {
			bad = append(bad, fmt.Sprintf("%s/%s is %s", l.PV.VG, lv.Name, lv.Problem))
		}
	}
	if l.PV.MDACount > 1 {
		bad = append(bad, fmt.Sprintf("the PV %s keeps %d metadata copies (one at its end); ezio keeps the first", l.PV.Node, l.PV.MDACount))
	}
	if len(bad) > 0 {
		return fmt.Errorf("the LVM volume group %s on %s cannot be captured: %s", l.PV.VG, l.PV.Node, strings.Join(bad, "; "))
	}
	return nil
}

// Loop attaches a loop device over length bytes at off of dev (read-only
// unless rw), where an LV's filesystem is without device-mapper, and
// returns it with the function that detaches it.
func Loop(ctx context.Context, dev string, off, length int64, rw bool) (string, func(), error) {
	args := []string{"-f", "--show", "-o", strconv.FormatInt(off, 10), "--sizelimit", strconv.FormatInt(length, 10)}
	if !rw {
		args = append(args, "-r")
	}
	out, err := table.Tool(ctx, "losetup", append(args, dev)...)
	if err != nil {
		return "", nil, err
	}
	loop := strings.TrimSpace(out)
	if !strings.HasPrefix(loop, "/dev/loop") {
		return "", nil, fmt.Errorf("losetup gave %q", loop)
	}
	return loop, func() { exec.Command("losetup", "-d", loop).Run() }, nil
}
