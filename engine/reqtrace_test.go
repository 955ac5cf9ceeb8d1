package engine

import (
	"bytes"
	"strings"
	"testing"

	"github.com/anacrolix/torrent"
	pp "github.com/anacrolix/torrent/peer_protocol"
)

// The request trace counts what the library reports through its callbacks
// and prints one line per connection that moved, then starts the next
// second from what is still outstanding.
func TestReqTraceCounts(t *testing.T) {
	var cfg torrent.ClientConfig
	rt := newReqTrace(&cfg)
	var out bytes.Buffer
	rt.out = &out
	pc := &torrent.PeerConn{}
	p := &pc.Peer
	for range 3 {
		cfg.Callbacks.SentRequest[0](torrent.PeerRequestEvent{Peer: p})
	}
	cfg.Callbacks.DeletedRequest[0](torrent.PeerRequestEvent{Peer: p})
	cfg.Callbacks.DeletedRequest[0](torrent.PeerRequestEvent{Peer: p})
	cfg.Callbacks.DeletedRequest[0](torrent.PeerRequestEvent{Peer: p}) // dry once
	cfg.Callbacks.SentRequest[0](torrent.PeerRequestEvent{Peer: p})
	for _, m := range []pp.MessageType{pp.Have, pp.Have, pp.Reject, pp.Request} {
		cfg.Callbacks.ReadMessage(pc, &pp.Message{Type: m})
	}
	rt.print(map[*torrent.PeerConn]int64{pc: 32 << 10})
	want := "sent=4 got=3 out=1 max=3 dry=1 haves=2 rejects=1 upreq=1 upKiB=32"
	if !strings.Contains(out.String(), want) {
		t.Fatalf("first second: %q, want %q", out.String(), want)
	}
	out.Reset()
	cfg.Callbacks.DeletedRequest[0](torrent.PeerRequestEvent{Peer: p})
	rt.print(map[*torrent.PeerConn]int64{pc: 32 << 10})
	if want := "sent=0 got=1 out=0 max=1 dry=1 haves=0 rejects=0 upreq=0 upKiB=0"; !strings.Contains(out.String(), want) {
		t.Fatalf("second second: %q, want %q", out.String(), want)
	}
	out.Reset()
	cfg.Callbacks.PeerConnClosed(pc)
	rt.print(nil)
	if out.Len() != 0 {
		t.Fatalf("a closed connection is still printed: %q", out.String())
	}
}
