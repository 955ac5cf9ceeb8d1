package server

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// DefaultTrackerPort is where the tracker and image server listen unless
// told otherwise.
const DefaultTrackerPort = 6969

// ParseServer turns what a technician types for an ezio server into its
// base URL, http://HOST:PORT with no path. It accepts HOST, HOST:PORT,
// http://HOST[:PORT] and http://HOST[:PORT]/; a missing port is
// DefaultTrackerPort. A URL with any other path (a torrent's URL) is not a
// server address: IsTorrentURL tells those apart, and they are used as
// they are. The wizard and the command line both read addresses here, so
// they accept the same forms.
func ParseServer(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("no server address given")
	}
	raw := s
	if !strings.Contains(s, "://") {
		raw = "http://" + s
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("%q is not a server address (HOST, HOST:PORT or http://HOST:PORT/): %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%q is not a server address: ezio servers speak http", s)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%q is not a server address (HOST, HOST:PORT or http://HOST:PORT/)", s)
	}
	host := u.Hostname()
	if host == "" {
		return "", fmt.Errorf("%q has no host name", s)
	}
	port := u.Port()
	if port == "" {
		if strings.HasSuffix(u.Host, ":") {
			return "", fmt.Errorf("%q has an empty port", s)
		}
		port = strconv.Itoa(DefaultTrackerPort)
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("%q: port %s is not a number from 1 to 65535", s, port)
	}
	return u.Scheme + "://" + net.JoinHostPort(host, port), nil
}

// IsTorrentURL reports whether s is an http(s) URL with a path, which is
// fetched as a torrent rather than read as a server's address.
func IsTorrentURL(s string) bool {
	if !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && u.Path != "" && u.Path != "/"
}
