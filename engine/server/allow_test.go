package server

import (
	"net"
	"testing"
)

func TestAllowListBlocksEverythingOutside(t *testing.T) {
	al, err := ParseAllowList("10.0.0.0/24, 192.168.7.9")
	if err != nil {
		t.Fatal(err)
	}
	for ip, blocked := range map[string]bool{
		"10.0.0.5": false, "10.0.1.5": true, "192.168.7.9": false, "192.168.7.10": true,
		"127.0.0.1": true, "8.8.8.8": true,
	} {
		if _, b := al.Blocklist().Lookup(net.ParseIP(ip)); b != blocked {
			t.Errorf("%s: blocked=%v, want %v", ip, b, blocked)
		}
	}
	if _, err := ParseAllowList("10.0.0.0/33"); err == nil {
		t.Error("a bad CIDR was accepted")
	}
}
