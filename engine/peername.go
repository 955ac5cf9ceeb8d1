package engine

import "strings"

// peerClientNames maps the two-letter codes of Azureus-style peer ids
// ("-XXvvvv-") to client names.
var peerClientNames = map[string]string{
	"EZ": "ezio", "LT": "libtorrent", "lt": "libtorrent (rasterbar)", "TR": "Transmission",
	"qB": "qBittorrent", "AZ": "Vuze", "UT": "µTorrent", "GT": "anacrolix/torrent",
}

// clientFromPeerID names well-known clients by their peer id prefix. The
// four version characters are shown as dotted digits ("0100" is 0.1.0.0
// written "0.1.0"), never as one number.
func clientFromPeerID(id [20]byte) string {
	s := string(id[:8])
	if s[0] == '-' && s[7] == '-' {
		name, ok := peerClientNames[s[1:3]]
		if !ok {
			return strings.Trim(s, "-")
		}
		return name + " " + peerVersion(s[3:7])
	}
	if strings.HasPrefix(string(id[:]), "A2-") {
		return "aria2"
	}
	return "unknown"
}

// peerVersion turns "0100" into "0.1.0" and "2080" into "2.0.8": one digit
// a part, trailing zero parts beyond the third dropped.
func peerVersion(v string) string {
	parts := make([]string, 0, len(v))
	for _, c := range v {
		parts = append(parts, string(c))
	}
	for len(parts) > 3 && parts[len(parts)-1] == "0" {
		parts = parts[:len(parts)-1]
	}
	return strings.Join(parts, ".")
}
