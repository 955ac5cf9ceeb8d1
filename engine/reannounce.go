package engine

import (
	"context"
	"ezio/engine/server"
	"net/netip"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/tracker"
)

// The library (v1.61.0) keeps its tracker announce state per tracker URL
// and infohash for the life of the client and never drops it: a torrent
// added again after it was dropped from the same session inherits the
// dropped torrent's state, and the library then announces in the dropped
// torrent's name or skips the announce ("Torrent GCed"). The new torrent
// never gets a peer from the tracker. `ezio daemon` removes torrents and
// may be handed the same one again (the same image for the next room), so
// a job whose infohash had trackers in its session before announces by
// itself, on the same schedule the tracker asks of everyone.

// addTrackers hands the trackers to the library the first time the
// infohash is in the session, and to the job's own announcer after that.
func (j *Job) addTrackers(al metainfo.AnnounceList) {
	s := j.sess
	s.mu.Lock()
	if s.announced == nil {
		s.announced = map[metainfo.Hash]bool{}
	}
	again := s.announced[j.ih]
	s.announced[j.ih] = true
	s.mu.Unlock()
	if !again {
		j.t.AddTrackers(al)
		return
	}
	for _, tier := range al {
		j.ownTrackers = append(j.ownTrackers, tier...)
	}
	j.log.Debug("this torrent was in the session before: announcing to its trackers without the library", "trackers", j.ownTrackers)
}

// announceOwn announces the job to ownTrackers until ctx ends (then says
// it stopped), adding the peers each answer names.
func (j *Job) announceOwn(ctx context.Context) error {
	event := tracker.Started
	for {
		wait := server.AnnounceInterval
		for _, u := range j.ownTrackers {
			res, err := j.announceTo(ctx, u, event, 15*time.Second)
			if err != nil {
				j.log.Debug("announce failed", "tracker", u, "err", err)
				continue
			}
			if iv := time.Duration(res.Interval) * time.Second; iv > 0 {
				wait = min(max(iv, time.Second), 30*time.Minute)
			}
			var infos []torrent.PeerInfo
			for _, p := range res.Peers {
				if ip, ok := netip.AddrFromSlice(p.IP); ok && p.Port > 0 && p.Port < 65536 {
					infos = append(infos, torrent.PeerInfo{Addr: ipPortAddr(netip.AddrPortFrom(ip.Unmap(), uint16(p.Port))), Source: torrent.PeerSourceTracker})
				}
			}
			if len(infos) > 0 {
				j.t.AddPeers(infos)
			}
		}
		event = tracker.None
		select {
		case <-ctx.Done():
			for _, u := range j.ownTrackers {
				j.announceTo(context.Background(), u, tracker.Stopped, 2*time.Second)
			}
			return nil
		case <-time.After(wait):
		}
	}
}

func (j *Job) announceTo(ctx context.Context, url string, event tracker.AnnounceEvent, limit time.Duration) (tracker.AnnounceResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	st := j.t.Stats()
	req := tracker.AnnounceRequest{
		Event: event, NumWant: 200, Port: uint16(j.sess.PeerPort()),
		PeerId: j.sess.cl.PeerID(), InfoHash: j.ih, Left: j.t.BytesMissing(),
		Uploaded: st.BytesWrittenData.Int64(), Downloaded: st.BytesReadUsefulData.Int64(),
	}
	if event == tracker.Stopped {
		req.NumWant = 0
	}
	return tracker.Announce{TrackerUrl: url, Request: req, Context: ctx}.Do()
}
