package torrentfile

// WithBase returns the layout with every extent moved by base bytes: a
// partition's torrent (offsets inside the partition) written to or read
// from the whole disk that holds the partition at byte base.
func (l *Layout) WithBase(base int64) *Layout {
	if base == 0 {
		return l
	}
	c := *l
	c.Extents = make([]Extent, len(l.Extents))
	for i, e := range l.Extents {
		c.Extents[i] = Extent{Offset: e.Offset + base, Length: e.Length}
	}
	c.End = l.End + base
	return &c
}

// DiskOffset maps a byte offset in the torrent's data to its offset on
// the disk (or -1 past the end).
func (l *Layout) DiskOffset(torrentOff int64) int64 {
	out := int64(-1)
	l.MapRange(torrentOff, 1, func(s Segment) bool {
		out = s.Disk
		return false
	})
	return out
}
