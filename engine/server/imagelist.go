package server

// What a client asks the image server for: the list of images, one
// image's entry and files, a torrent, and each image's fleet of clients.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// ImageEntry is one line of /images.json.
type ImageEntry struct {
	Name        string `json:"name"`
	Kind        string `json:"kind"`           // KindPartition or KindDisk
	URL         string `json:"url"`            // /images/NAME on this server
	Size        int64  `json:"size"`           // bytes of data in the image
	HighestEnd  int64  `json:"highest_offset"` // smallest target that fits
	InfoHash    string `json:"infohash"`       // partition images only
	Pieces      int    `json:"pieces"`
	PieceLength int64  `json:"piece_length"` // partition images only
	Torrent     string `json:"torrent"`      // partition images: path of the .torrent on this server
	PeerPort    int    `json:"peer_port"`
	Clients     int    `json:"clients"`
	Done        int    `json:"done"`
	// Partitions of a disk image, in disk order.
	Partitions []ImagePart `json:"partitions,omitempty"`
}

// ImagePart is one partition of a disk image in /images.json and
// /images/NAME.
type ImagePart struct {
	Name        string `json:"name"`
	Number      int    `json:"number"`
	Start       int64  `json:"start"`
	Size        int64  `json:"size"`
	FS          string `json:"fs"`
	Torrent     string `json:"torrent,omitempty"` // empty: not transferred (e.g. swap)
	InfoHash    string `json:"infohash,omitempty"`
	Bytes       int64  `json:"bytes"` // data bytes in its torrent
	Pieces      int    `json:"pieces"`
	PieceLength int64  `json:"piece_length,omitempty"`
}

// ImageInfo is the answer of /images/NAME: the entry with absolute URLs,
// every torrent to fetch and, for a disk image, its manifest.
type ImageInfo struct {
	ImageEntry
	Torrents []string        `json:"torrents"`
	Manifest json.RawMessage `json:"manifest,omitempty"`
}

func torrentPath(key string) string {
	parts := strings.Split(key, "/")
	for i := range parts {
		parts[i] = url.PathEscape(parts[i])
	}
	return "/torrents/" + strings.Join(parts, "/") + ".torrent"
}

// ImagePath is the server path of the image called name.
func ImagePath(name string) string { return "/images/" + url.PathEscape(name) }

// entryLocked describes an image; prefix is put before every path.
func (s *Server) entryLocked(im *servedImage, prefix string) ImageEntry {
	e := ImageEntry{Name: im.name, Kind: im.kind, URL: prefix + ImagePath(im.name)}
	for _, p := range im.parts {
		if p.t != nil {
			e.Size += p.t.sum.TotalBytes
			e.Pieces += p.t.sum.Pieces
			e.PeerPort = p.t.peerPort
		}
	}
	if im.kind == KindPartition {
		t := im.parts[0].t
		e.HighestEnd, e.InfoHash, e.PieceLength = t.sum.HighestEnd, t.sum.InfoHash, t.sum.PieceLength
		e.Torrent = prefix + torrentPath(t.key)
	} else {
		e.Partitions = []ImagePart{}
		for _, p := range im.parts {
			ip := ImagePart{Name: p.Name, Number: p.Number, Start: p.Start, Size: p.Size, FS: p.FS}
			if p.t != nil {
				ip.Torrent = prefix + torrentPath(p.t.key)
				ip.InfoHash, ip.Bytes, ip.Pieces, ip.PieceLength = p.t.sum.InfoHash, p.t.sum.TotalBytes, p.t.sum.Pieces, p.t.sum.PieceLength
			}
			e.HighestEnd = max(e.HighestEnd, p.Start+p.Size)
			e.Partitions = append(e.Partitions, ip)
		}
	}
	fleet := s.imageFleetLocked(im)
	e.Clients, e.Done = len(fleet), DoneCount(fleet)
	return e
}

func (s *Server) entries() []ImageEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []ImageEntry{}
	for _, im := range s.images {
		out = append(out, s.entryLocked(im, ""))
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func (s *Server) imagesJSON(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, s.entries())
}

func (s *Server) imageJSON(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	s.mu.Lock()
	im := s.images[name]
	var info ImageInfo
	if im != nil {
		info.ImageEntry = s.entryLocked(im, "http://"+r.Host)
		info.Manifest = im.manifest
	}
	s.mu.Unlock()
	if im == nil {
		http.Error(w, fmt.Sprintf("no image named %q here; see /images.json", name), http.StatusNotFound)
		return
	}
	info.Torrents = []string{}
	if info.Torrent != "" {
		info.Torrents = append(info.Torrents, info.Torrent)
	}
	for _, p := range info.Partitions {
		if p.Torrent != "" {
			info.Torrents = append(info.Torrents, p.Torrent)
		}
	}
	writeJSON(w, info)
}

// imageFile serves one of a disk image's small files.
func (s *Server) imageFile(w http.ResponseWriter, r *http.Request) {
	name, file := r.PathValue("name"), r.PathValue("file")
	s.mu.Lock()
	var b []byte
	ok := false
	if im := s.images[name]; im != nil && im.files != nil {
		b, ok = im.files[file]
	}
	s.mu.Unlock()
	if !ok {
		http.Error(w, fmt.Sprintf("image %q has no file %q here", name, file), http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
}

// SeederHeader carries the seeder's peer address with a served torrent, so
// a client can trust it.
const SeederHeader = "X-Ezio-Seeder"

func (s *Server) torrentFile(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutSuffix(r.PathValue("file"), ".torrent")
	if !ok {
		http.NotFound(w, r)
		return
	}
	if img := r.PathValue("image"); img != "" {
		name = img + "/" + name
	}
	s.mu.Lock()
	t := s.torrents[name]
	s.mu.Unlock()
	if t == nil {
		http.Error(w, fmt.Sprintf("no torrent named %q here; see /images.json", name), http.StatusNotFound)
		return
	}
	// Point the torrent at this tracker, as the client reached it. The
	// info dictionary (and so the infohash) is untouched.
	mi := *t.mi
	mi.Announce = "http://" + r.Host + "/announce"
	mi.AnnounceList = nil
	var buf bytes.Buffer
	if err := mi.Write(&buf); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if lip := localIP(r); lip.Is4() && t.peerPort > 0 {
		w.Header().Set(SeederHeader, netip.AddrPortFrom(lip, uint16(t.peerPort)).String())
	}
	w.Header().Set("Content-Type", "application/x-bittorrent")
	w.Write(buf.Bytes())
}

// imageFleetLocked lists an image's clients; for a disk image one member
// per client address, summed over its partitions.
func (s *Server) imageFleetLocked(im *servedImage) []FleetMember {
	now := s.now()
	type agg struct {
		m          FleetMember
		done, tot  int64
		parts      int
		allDone    bool
		anyActive  bool
		states     map[string]bool
		rate, seen float64
	}
	var total int64
	var nparts int
	by := map[string]*agg{}
	for _, p := range im.parts {
		if p.t == nil {
			continue
		}
		nparts++
		total += p.t.sum.TotalBytes
		sw := s.swarms[p.t.mi.HashInfoBytes()]
		if sw == nil {
			continue
		}
		sw.sweepLocked(now, false)
		for _, m := range sw.membersLocked(now, sw.total) {
			a := by[m.Addr]
			if a == nil {
				a = &agg{allDone: true, states: map[string]bool{}, seen: m.LastSeen}
				a.m.Addr = m.Addr
				by[m.Addr] = a
			}
			a.parts++
			a.done += int64(m.Done * float64(sw.total))
			a.allDone = a.allDone && m.Completed
			a.anyActive = a.anyActive || m.Active
			a.states[m.State] = true
			a.rate += m.Rate
			a.seen = min(a.seen, m.LastSeen)
		}
	}
	out := make([]FleetMember, 0, len(by))
	for _, a := range by {
		m := a.m
		m.Active, m.Rate, m.LastSeen = a.anyActive, a.rate, a.seen
		if total > 0 {
			m.Done = float64(a.done) / float64(total)
		}
		switch {
		case a.allDone && a.parts == nparts:
			m.State, m.Completed, m.Done = FleetDone, true, 1
		case a.states[FleetDownloading] || (a.anyActive && a.parts < nparts):
			m.State = FleetDownloading
		case a.states[FleetLeft]:
			m.State = FleetLeft
		case a.states[FleetLost]:
			m.State = FleetLost
		default:
			m.State, m.Reported = FleetReported, true
		}
		out = append(out, m)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Addr < out[b].Addr })
	return out
}

// ImageFleet lists the clients of the image called name (for a disk
// image one member per client, summed over its partitions), or nil when
// no such image is served.
func (s *Server) ImageFleet(name string) []FleetMember {
	s.mu.Lock()
	defer s.mu.Unlock()
	im := s.images[name]
	if im == nil {
		return nil
	}
	return s.imageFleetLocked(im)
}
