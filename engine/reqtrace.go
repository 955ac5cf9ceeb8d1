package engine

import (
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/anacrolix/torrent"
	pp "github.com/anacrolix/torrent/peer_protocol"
)

// The request trace (Tuning.TraceRequests; the command line sets it from
// EZIO_TRACE_REQUESTS=1, for the benchmarks): once a
// second, one line per connection that moved anything, on stderr:
//
//	reqtrace t=S peer=ADDR sent=N got=N out=N max=N dry=N haves=N rejects=N upreq=N upKiB=N
//
// sent: requests this client sent; got: requests answered or cancelled;
// out: requests outstanding at the end of the second, max: the most at
// once during it; dry: how often the connection's requests ran out;
// haves: have messages read; rejects: rejects read; upreq: the peer's
// requests read; upKiB: piece data written to the peer. It shows how deep
// the library keeps each connection's request pipeline, and whether a
// slow transfer waits on the asking side or on the answering one.
type reqTrace struct {
	mu    sync.Mutex
	out   io.Writer
	start time.Time
	conns map[*torrent.Peer]*reqTraceConn
}

type reqTraceConn struct {
	pc                              *torrent.PeerConn
	sent, got, out, max, dry, haves int
	rejects, upreq                  int
	written                         int64 // piece data written, at the last line
}

// newReqTrace adds the trace's callbacks to cfg; run prints it. Call it
// after the session's own hooks: it chains ReadMessage and PeerConnClosed.
func newReqTrace(cfg *torrent.ClientConfig) *reqTrace {
	rt := &reqTrace{out: os.Stderr, start: time.Now(), conns: map[*torrent.Peer]*reqTraceConn{}}
	rt.hook(cfg)
	return rt
}

// conn is the record of p; rt.mu is held.
func (rt *reqTrace) conn(p *torrent.Peer) *reqTraceConn {
	c := rt.conns[p]
	if c == nil {
		c = &reqTraceConn{}
		rt.conns[p] = c
	}
	return c
}

func (rt *reqTrace) hook(cfg *torrent.ClientConfig) {
	// The library calls these with its lock held: they take only rt.mu,
	// and rt.run never asks the library anything while holding rt.mu.
	cfg.Callbacks.SentRequest = append(cfg.Callbacks.SentRequest, func(e torrent.PeerRequestEvent) {
		rt.mu.Lock()
		c := rt.conn(e.Peer)
		c.sent++
		c.out++
		c.max = max(c.max, c.out)
		rt.mu.Unlock()
	})
	cfg.Callbacks.DeletedRequest = append(cfg.Callbacks.DeletedRequest, func(e torrent.PeerRequestEvent) {
		rt.mu.Lock()
		c := rt.conn(e.Peer)
		c.got++
		c.out--
		if c.out == 0 {
			c.dry++
		}
		rt.mu.Unlock()
	})
	prevRead := cfg.Callbacks.ReadMessage
	cfg.Callbacks.ReadMessage = func(pc *torrent.PeerConn, m *pp.Message) {
		if prevRead != nil {
			prevRead(pc, m)
		}
		rt.mu.Lock()
		c := rt.conn(&pc.Peer)
		c.pc = pc
		switch m.Type {
		case pp.Have:
			c.haves++
		case pp.Reject:
			c.rejects++
		case pp.Request:
			c.upreq++
		}
		rt.mu.Unlock()
	}
	prevClosed := cfg.Callbacks.PeerConnClosed
	cfg.Callbacks.PeerConnClosed = func(pc *torrent.PeerConn) {
		if prevClosed != nil {
			prevClosed(pc)
		}
		rt.mu.Lock()
		delete(rt.conns, &pc.Peer)
		rt.mu.Unlock()
	}
}

func (rt *reqTrace) run(stop <-chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		rt.mu.Lock()
		var pcs []*torrent.PeerConn
		for _, c := range rt.conns {
			if c.pc != nil {
				pcs = append(pcs, c.pc)
			}
		}
		rt.mu.Unlock()
		written := map[*torrent.PeerConn]int64{}
		for _, pc := range pcs { // takes the library's lock
			st := pc.Stats()
			written[pc] = st.BytesWrittenData.Int64()
		}
		rt.print(written)
	}
}

func (rt *reqTrace) print(written map[*torrent.PeerConn]int64) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	var lines []string
	t := time.Since(rt.start).Seconds()
	for p, c := range rt.conns {
		w, ok := written[c.pc]
		if !ok {
			w = c.written
		}
		if c.sent == 0 && c.got == 0 && c.upreq == 0 && w == c.written {
			continue
		}
		lines = append(lines, fmt.Sprintf("reqtrace t=%.0f peer=%s sent=%d got=%d out=%d max=%d dry=%d haves=%d rejects=%d upreq=%d upKiB=%d\n",
			t, p.RemoteAddr, c.sent, c.got, c.out, c.max, c.dry, c.haves, c.rejects, c.upreq, (w-c.written)>>10))
		c.sent, c.got, c.max, c.dry, c.haves, c.rejects, c.upreq, c.written = 0, 0, c.out, 0, 0, 0, 0, w
	}
	sort.Strings(lines)
	for _, l := range lines {
		io.WriteString(rt.out, l)
	}
}
