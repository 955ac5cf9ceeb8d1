package capture

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"ezio/disks/diskimage"
	"ezio/disks/lvm"
	"ezio/disks/table"
)

// czVG is an LVM physical volume of a Clonezilla image and its volume
// group, rebuilt on a scratch loop device from the image's metadata
// (Clonezilla saves lvm_<vg>.conf, not the PV's bytes) so that lvm's own
// reports give the layout and the PV's header can be imaged.
type czVG struct {
	VG, Part, UUID string // from lvm_vg_dev.list: VG, the PV's partition name, its UUID
	loop           string // the scratch PV
	layout         *lvm.Layout
}

// readClonezillaPVs reads lvm_vg_dev.list ("VG /dev/PART PV-UUID" lines).
func readClonezillaPVs(src string) ([]*czVG, error) {
	b, err := os.ReadFile(filepath.Join(src, "lvm_vg_dev.list"))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*czVG
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		out = append(out, &czVG{VG: f[0], Part: filepath.Base(f[1]), UUID: f[2]})
	}
	return out, nil
}

// prepareLVM rebuilds each PV of a Clonezilla image on a scratch loop
// device, reads its layout and checks that every LV can be imported: one
// segment, and its partclone image present (Clonezilla names them
// VG-LV.<fs>-ptcl-img.<compression>). The refusal names every LV whose
// image is missing. cleanup detaches the scratch devices.
func prepareLVM(ctx context.Context, src string, t *table.Table, disk string, vgs []*czVG, images map[string]clonezillaImage) (cleanup func(), err error) {
	var undo []func()
	clean := func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	defer func() {
		if err != nil {
			clean()
		}
	}()
	tmp, err := os.MkdirTemp("", "ezio-lvm-")
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { os.RemoveAll(tmp) })
	var missing, bad []string
	for _, vg := range vgs {
		var size int64
		for _, tp := range t.Partitions {
			if table.PartitionName(disk, tp.Number) == vg.Part {
				size = tp.Size * t.SectorSize
			}
		}
		if size == 0 {
			return nil, fmt.Errorf("lvm_vg_dev.list names PV %s, which the partition table does not have", vg.Part)
		}
		conf := filepath.Join(src, "lvm_"+vg.VG+".conf")
		file := filepath.Join(tmp, vg.Part)
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			return nil, err
		}
		if err := os.Truncate(file, size); err != nil {
			return nil, err
		}
		loop, detach, err := lvm.Loop(ctx, file, 0, size, true)
		if err != nil {
			return nil, err
		}
		undo = append(undo, detach)
		vg.loop = loop
		dev := "--devices=" + loop
		if _, err := table.Tool(ctx, "pvcreate", "-ff", "-y", dev, "--uuid", vg.UUID, "--restorefile", conf, loop); err != nil {
			return nil, fmt.Errorf("rebuilding the PV of %s from %s: %w", vg.VG, conf, err)
		}
		if _, err := table.Tool(ctx, "vgcfgrestore", "--force", dev, "-f", conf, vg.VG); err != nil {
			return nil, fmt.Errorf("rebuilding the VG %s from %s: %w", vg.VG, conf, err)
		}
		if vg.layout, err = lvm.Read(ctx, loop); err != nil {
			return nil, err
		}
		if err := vg.layout.Check(); err != nil {
			return nil, err
		}
		for _, lv := range vg.layout.LVs {
			name := vg.VG + "-" + lv.Name
			switch {
			case len(lv.Segments) != 1:
				bad = append(bad, fmt.Sprintf("%s/%s is in %d segments (ezio imports LVs in one)", vg.VG, lv.Name, len(lv.Segments)))
			case images[name].fs == "":
				missing = append(missing, fmt.Sprintf("%s/%s (%s.<fs>-ptcl-img.*)", vg.VG, lv.Name, name))
			}
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s holds LVM metadata but no image of %s: Clonezilla could not read those logical volumes (it needs device-mapper) although it said it saved the disk; save it again where the LVs can be activated", src, strings.Join(missing, ", "))
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%s: %s", src, strings.Join(bad, "; "))
	}
	return clean, nil
}

// importPV images the rebuilt PV's header as partition p's torrent and
// imports each LV's Clonezilla image as an entry placed at its offset.
func importPV(ctx context.Context, src, dir string, p *diskimage.Partition, vg *czVG, images map[string]clonezillaImage, o ImportOptions, next int, log *slog.Logger) ([]diskimage.Partition, error) {
	l := vg.layout
	c := &lvmCapture{source: vg.loop, dir: dir, part: p, layout: l, log: log}
	if err := c.one(ctx, DiskOptions{Trackers: o.Trackers}, p, 0, l.PV.PEStart, "unknown-lvm-header", nil); err != nil {
		return nil, fmt.Errorf("the LVM header of %s: %w", p.Name, err)
	}
	p.Saved, p.Filesystem, p.UUID = diskimage.SavedLVM, "LVM2_member", l.PV.UUID
	var out []diskimage.Partition
	for _, lv := range l.LVs {
		s := lv.Segments[0]
		name := vg.VG + "-" + lv.Name
		im := images[name]
		sort.Strings(im.files)
		e := diskimage.Partition{
			Number: next, Name: name, Start: p.Start + l.Offset(s), Size: l.Bytes(s), Filesystem: im.fs,
			Volume: &diskimage.Volume{PV: p.Number, Offset: l.Offset(s), VG: vg.VG, VGUUID: l.PV.VGUUID,
				LV: lv.Name, LVUUID: lv.UUID, Segment: 1, Segments: 1},
		}
		log.Info("importing a logical volume", "lv", name, "fs", im.fs, "files", len(im.files))
		mm, err := extractOne(ctx, src, dir, name, im, o.Trackers, nil)
		if err != nil {
			return nil, fmt.Errorf("logical volume %s/%s: %w", vg.VG, lv.Name, err)
		}
		fillSaved(&e, mm)
		if im.fs == "dd" {
			e.Saved, e.Filesystem = diskimage.SavedDD, ""
		}
		out = append(out, e)
		next++
	}
	return out, nil
}
