package torrentfile

import (
	"fmt"

	"github.com/anacrolix/torrent/metainfo"
)

// TorrentSummary is what `ezio torrent info` shows.
type TorrentSummary struct {
	Name        string   `json:"name"`
	InfoHash    string   `json:"infohash"`
	PieceLength int64    `json:"piece_length"`
	Pieces      int      `json:"pieces"`
	Extents     int      `json:"extents"`
	TotalBytes  int64    `json:"total_bytes"`
	HighestEnd  int64    `json:"highest_offset"` // first byte past the highest extent: the smallest target
	Trackers    []string `json:"trackers"`
}

// Summarize validates a torrent and describes it.
func Summarize(mi *metainfo.MetaInfo) (*TorrentSummary, *Layout, error) {
	info, err := mi.UnmarshalInfo()
	if err != nil {
		return nil, nil, fmt.Errorf("reading info dictionary: %w", err)
	}
	l, err := NewLayout(&info)
	if err != nil {
		return nil, nil, err
	}
	s := &TorrentSummary{
		Name: info.Name, InfoHash: mi.HashInfoBytes().HexString(), PieceLength: info.PieceLength,
		Pieces: l.NumPieces, Extents: len(l.Extents), TotalBytes: l.Total, HighestEnd: l.End,
	}
	for _, tier := range mi.UpvertedAnnounceList() {
		s.Trackers = append(s.Trackers, tier...)
	}
	if s.Trackers == nil {
		s.Trackers = []string{}
	}
	return s, l, nil
}
