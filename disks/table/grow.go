package table

import (
	"context"
	"fmt"
	"strings"
)

// Tool runs a command-line tool (LC_ALL=C) and returns its standard
// output; a failure carries the tool's own words and, when it is missing,
// the Debian package that has it.
func Tool(ctx context.Context, name string, args ...string) (string, error) {
	out, stderr, err := run(ctx, nil, name, args...)
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, lastLines(strings.TrimSpace(out+"\n"+stderr), 6))
	}
	return out, nil
}

// PackageOf is the Debian package that has a tool ezio runs.
func PackageOf(tool string) string { return packageOf(tool) }

// GrowPartition moves the end of partition n of disk (diskBytes long) to
// the end of the free space after it: the next partition's start, or the
// disk's last usable sector, to the sector (sfdisk would round "all the
// rest" down to its alignment). Its start, type, GUID, name and
// attributes stay (sfdisk -N, which writes GPT and MBR alike). The kernel
// is told; the table as it is now is returned.
func GrowPartition(ctx context.Context, disk string, n int, diskBytes int64) (*Table, error) {
	t, err := Dump(ctx, disk)
	if err != nil {
		return nil, err
	}
	p, ok := t.Partition(n)
	if !ok {
		return nil, fmt.Errorf("%s has no partition %d", disk, n)
	}
	limit := diskBytes / t.SectorSize // the first sector past the room
	if t.Label == LabelGPT {
		limit = t.LastLBA + 1
	}
	for _, o := range t.Partitions {
		if o.Start > p.Start && o.Start < limit {
			limit = o.Start
		}
	}
	if limit <= p.Start+p.Size {
		return t, nil
	}
	line := fmt.Sprintf("%d,%d\n", p.Start, limit-p.Start)
	if out, stderr, err := run(ctx, []byte(line), "sfdisk", "--no-reread", "--no-tell-kernel", "-q", "-N", fmt.Sprint(n), disk); err != nil {
		return nil, fmt.Errorf("sfdisk -N %d %s: %w: %s %s", n, disk, err, out, stderr)
	}
	if t, err = Dump(ctx, disk); err != nil {
		return nil, err
	}
	if err := TellKernel(ctx, disk, t); err != nil {
		return nil, err
	}
	return t, nil
}

// Partition returns partition number n of the table.
func (t *Table) Partition(n int) (Partition, bool) {
	for _, p := range t.Partitions {
		if p.Number == n {
			return p, true
		}
	}
	return Partition{}, false
}
