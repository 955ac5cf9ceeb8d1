package lvm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"ezio/disks/table"
)

// Extended is an LV that GrowLastLV made longer.
type Extended struct {
	VG, LV     string
	Offset     int64 // of its last segment, from the start of the PV
	Bytes      int64 // the last segment's length now
	From, To   int64 // the LV's size before and after
	Filesystem string
}

// GrowLastLV gives the LV that ends last on the PV at node the free
// extents after it, up to the PV's end (after a pvresize): the last
// segment's extent_count is raised in the VG's metadata (vgcfgbackup,
// edited, vgcfgrestore), nothing activated. It returns nil when no LV
// ends there or no extent is free after it.
func GrowLastLV(ctx context.Context, node string) (*Extended, error) {
	l, err := Read(ctx, node)
	if err != nil {
		return nil, err
	}
	if l.PV.VG == "" || len(l.LVs) == 0 {
		return nil, nil
	}
	b, err := lvmTool(ctx, node, "pvs", "-o", "pv_pe_count", node)
	if err != nil {
		return nil, err
	}
	pvs, err := rows(b, "pv")
	if err != nil || len(pvs) != 1 {
		return nil, fmt.Errorf("pvs %s: no extent count (%v)", node, err)
	}
	peCount := num(pvs[0]["pv_pe_count"])
	var last *LV
	var seg Segment
	var end int64
	for i := range l.LVs {
		lv := &l.LVs[i]
		for _, s := range lv.Segments {
			if s.PE+s.Extents > end {
				last, seg, end = lv, s, s.PE+s.Extents
			}
		}
	}
	// One segment only: its filesystem is then reachable at one offset.
	if last == nil || last.Problem != "" || end >= peCount || len(last.Segments) != 1 {
		return nil, nil
	}
	free := peCount - end
	tmp, err := os.MkdirTemp("", "ezio-vg-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	file := filepath.Join(tmp, l.PV.VG+".txt")
	dev := "--devices=" + node
	if _, err := table.Tool(ctx, "vgcfgbackup", dev, "-f", file, l.PV.VG); err != nil {
		return nil, err
	}
	text, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	edited, err := extendSegment(string(text), last.Name, seg.StartLE, seg.Extents+free)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(file, []byte(edited), 0o600); err != nil {
		return nil, err
	}
	if _, err := table.Tool(ctx, "vgcfgrestore", "--force", dev, "-f", file, l.PV.VG); err != nil {
		return nil, err
	}
	return &Extended{VG: l.PV.VG, LV: last.Name, Offset: l.Offset(seg), Bytes: (seg.Extents + free) * l.PV.ExtentSize,
		From: last.Size, To: last.Size + free*l.PV.ExtentSize}, nil
}

// extendSegment sets extent_count of LV lv's segment starting at startLE
// in a VG's metadata text.
func extendSegment(text, lv string, startLE, count int64) (string, error) {
	lvs := strings.Index(text, "logical_volumes {")
	if lvs < 0 {
		return "", fmt.Errorf("the VG's metadata has no logical volumes")
	}
	at := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(lv) + ` \{`).FindStringIndex(text[lvs:])
	if at == nil {
		return "", fmt.Errorf("LV %s is not in the VG's metadata", lv)
	}
	base := lvs + at[1]
	seg := regexp.MustCompile(`start_extent = ` + strconv.FormatInt(startLE, 10) + `\s+extent_count = (\d+)`)
	m := seg.FindStringSubmatchIndex(text[base:])
	if m == nil {
		return "", fmt.Errorf("LV %s has no segment at extent %d in the VG's metadata", lv, startLE)
	}
	return text[:base+m[2]] + strconv.FormatInt(count, 10) + text[base+m[3]:], nil
}
