package engine

import (
	"encoding/binary"
	"testing"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/bencode"
	pp "github.com/anacrolix/torrent/peer_protocol"
)

func extHandshake(t *testing.T, names ...pp.ExtensionName) *pp.Message {
	t.Helper()
	d := pp.ExtendedHandshakeMessage{M: map[pp.ExtensionName]pp.ExtensionNumber{}}
	for i, n := range names {
		d.M[n] = pp.ExtensionNumber(i + 1)
	}
	b, err := bencode.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return &pp.Message{Type: pp.Extended, ExtendedID: pp.HandshakeExtendedID, ExtendedPayload: b}
}

// The client rewrites only what a revealing seeder sends, and only the
// messages of the scheme.
func TestRevealClientRewritesOnlyARevealingSeeder(t *testing.T) {
	rc := newRevealClient()
	rc.disabled.Store(false)
	local := withProtocol(&torrent.LocalLtepProtocolMap{Index: []pp.ExtensionName{"ut_metadata", "ut_pex"}, NumBuiltin: 2}, extReveal)
	seeder := &torrent.PeerConn{LocalLtepProtocolMap: local}
	other := &torrent.PeerConn{LocalLtepProtocolMap: local}

	rc.onRead(seeder, extHandshake(t, "ut_pex", extSeeder))
	rc.onRead(other, extHandshake(t, "ut_pex", extReveal))

	m := &pp.Message{Type: pp.HaveAll}
	rc.onRead(seeder, m)
	if m.Type != pp.HaveNone {
		t.Errorf("seeder's HaveAll became %v, want HaveNone", m.Type)
	}
	m = &pp.Message{Type: pp.HaveAll}
	rc.onRead(other, m)
	if m.Type != pp.HaveAll {
		t.Errorf("an ordinary peer's HaveAll was rewritten to %v", m.Type)
	}
	bf := &pp.Message{Type: pp.Bitfield, Bitfield: []bool{true, true, false, true}}
	rc.onRead(seeder, bf)
	for i, b := range bf.Bitfield {
		if b {
			t.Errorf("seeder's bitfield bit %d survived", i)
		}
	}
	var payload [4]byte
	binary.BigEndian.PutUint32(payload[:], 1234)
	id := rc.localID(seeder)
	if id == 0 {
		t.Fatal("ezio_have is not in the local extension map")
	}
	rev := &pp.Message{Type: pp.Extended, ExtendedID: id, ExtendedPayload: payload[:]}
	rc.onRead(seeder, rev)
	if rev.Type != pp.Have || rev.Index != 1234 {
		t.Errorf("reveal became %+v, want Have 1234", rev)
	}
	// A malformed reveal is left for the library to refuse.
	bad := &pp.Message{Type: pp.Extended, ExtendedID: id, ExtendedPayload: []byte{1, 2}}
	rc.onRead(seeder, bad)
	if bad.Type != pp.Extended {
		t.Errorf("a 2-byte reveal was rewritten")
	}
	// Turned off, nothing new is gated.
	rc.disabled.Store(true)
	late := &torrent.PeerConn{LocalLtepProtocolMap: local}
	rc.onRead(late, extHandshake(t, extSeeder))
	m = &pp.Message{Type: pp.HaveAll}
	rc.onRead(late, m)
	if m.Type != pp.HaveAll {
		t.Errorf("a seeder met after giving up was still gated")
	}
}
