package diskdeploy

import (
	"context"
	"errors"
	"strings"

	"ezio/disks/table"
)

// Current is what a whole disk holds now, as a confirmation names it
// before it is overwritten.
type Current struct {
	Label      string // "gpt", "dos"; "" when the disk has no partition table
	ID         string
	Partitions []CurrentPart
}

// CurrentPart is one partition on the disk now.
type CurrentPart struct {
	Number    int
	Node      string // "" when the kernel has no node for it
	Start     int64
	Size      int64
	FS, Label string
	Extended  bool
}

// TableName is how a person calls the table: "GPT", "MBR".
func (c *Current) TableName() string {
	switch c.Label {
	case table.LabelGPT:
		return "GPT"
	case table.LabelDOS:
		return "MBR"
	}
	return strings.ToUpper(c.Label)
}

// Describe reads the partition table of the disk dev and probes each
// partition's filesystem in place (no partition nodes needed). A disk
// without a table gives an empty Current.
func Describe(ctx context.Context, dev string) (*Current, error) {
	t, err := table.Dump(ctx, dev)
	if errors.Is(err, table.ErrNoTable) {
		return &Current{}, nil
	}
	if err != nil {
		return nil, err
	}
	c := &Current{Label: t.Label, ID: t.ID}
	for _, p := range t.Partitions {
		start, size := p.Start*t.SectorSize, p.Size*t.SectorSize
		cp := CurrentPart{Number: p.Number, Start: start, Size: size, Extended: table.IsExtended(t.Label, p.Type)}
		if node, err := table.PartitionNode(dev, p.Number); err == nil {
			cp.Node = node
		}
		if !cp.Extended {
			if fs, err := table.ProbeRange(ctx, dev, start, size); err == nil {
				cp.FS, cp.Label = fs.Type, fs.Label
			}
		}
		c.Partitions = append(c.Partitions, cp)
	}
	return c, nil
}

// Fits is the partition of c that would take a partition image of need
// bytes and filesystem fstype instead of the whole disk: the image's
// filesystem first, then the smallest that fits; nil when none does or
// the kernel has no node for it.
func (c *Current) Fits(need int64, fstype string) *CurrentPart {
	var best *CurrentPart
	for i := range c.Partitions {
		p := &c.Partitions[i]
		if p.Extended || p.Size < need || p.Node == "" {
			continue
		}
		same := fstype != "" && strings.EqualFold(p.FS, fstype)
		bestSame := best != nil && fstype != "" && strings.EqualFold(best.FS, fstype)
		if best == nil || (same && !bestSame) || (same == bestSame && p.Size < best.Size) {
			best = p
		}
	}
	return best
}
