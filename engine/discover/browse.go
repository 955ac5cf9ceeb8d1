package discover

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"ezio/engine"
	"ezio/engine/server"
)

// ErrNoServer is the answer when nobody on the LAN announces ezio. It means
// "unreachable" (exit status 3): the server may simply not be up yet.
var ErrNoServer = errors.New("no server found: is it on this network? give its address instead")

// DefaultTimeout is how long a search listens for answers.
const DefaultTimeout = 3 * time.Second

// Server is one seeder found on the LAN.
type Server struct {
	Name       string   `json:"name"`                  // instance name, "ezio on HOST"
	BaseURL    string   `json:"url"`                   // http://HOST:PORT
	Version    string   `json:"version"`               // its ezio version
	Images     []string `json:"images"`                // the image names it announced
	MoreImages int      `json:"more_images,omitempty"` // names left out of its TXT record
	Host       string   `json:"host"`                  // the SRV target
	Addrs      []string `json:"addrs"`                 // its addresses
	Interface  string   `json:"interface"`             // where it answered
}

// Offers reports whether s announces the image name, asking the server's
// /images.json when its TXT record could not hold every name.
func (s Server) Offers(ctx context.Context, name string) bool {
	if contains(s.Images, name) {
		return true
	}
	if s.MoreImages == 0 {
		return false
	}
	es, err := engine.ListImages(ctx, s.BaseURL)
	if err != nil {
		return false
	}
	for _, e := range es {
		if e.Name == name {
			return true
		}
	}
	return false
}

// Browse asks every usable interface for ezio servers and listens for
// timeout (DefaultTimeout when 0). Queries are repeated each second so that
// one lost packet loses nothing, and every server heard within the timeout
// is listed (so that "auto" can tell one from several). It returns the servers sorted by name,
// and ErrNoServer (wrapped) when no interface can be searched.
func Browse(ctx context.Context, timeout time.Duration) ([]Server, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ifaces, err := usableInterfaces(nil)
	if err != nil {
		return nil, err
	}
	if len(ifaces) == 0 {
		return nil, fmt.Errorf("%w (no network interface with an IPv4 address and multicast is up)", ErrNoServer)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var (
		mu    sync.Mutex
		found = map[string]Server{}
		errs  []error
		wg    sync.WaitGroup
	)
	for _, u := range ifaces {
		wg.Add(1)
		go func(ifi net.Interface) {
			defer wg.Done()
			answers, err := query(ctx, ifi)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("searching on %s: %w", ifi.Name, err))
			}
			for _, a := range answers {
				if s, ok := serverFrom(a, ifi); ok {
					found[s.Name+" "+s.BaseURL] = s
				}
			}
		}(u.iface)
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return nil, err
	}
	out := make([]Server, 0, len(found))
	for _, s := range found {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].BaseURL < out[j].BaseURL
	})
	if len(out) == 0 && len(errs) == len(ifaces) {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// serverFrom reads one answer. It drops answers whose URL points at an
// address outside every network of the interface they came in on: a
// responder on a multi-homed seeder may hear a query from another of its
// networks and answer with the address of the wrong one.
func serverFrom(e instance, ifi net.Interface) (Server, bool) {
	suffix := "." + Service + "." + Domain
	if !strings.HasSuffix(strings.ToLower(e.name), strings.ToLower(suffix)) {
		return Server{}, false
	}
	s := Server{
		Name:      unescapeLabel(e.name[:len(e.name)-len(suffix)]),
		Host:      strings.TrimSuffix(e.host, "."),
		Interface: ifi.Name,
		Addrs:     []string{},
		Images:    []string{},
	}
	for _, a := range e.addrs {
		s.Addrs = append(s.Addrs, a.String())
	}
	for _, kv := range e.txt {
		k, v, _ := strings.Cut(kv, "=")
		switch strings.ToLower(k) {
		case "version":
			s.Version = v
		case "url":
			if b, err := server.ParseServer(v); err == nil {
				s.BaseURL = b
			}
		case "images":
			for _, im := range strings.Split(v, ",") {
				if im = strings.TrimSpace(im); im != "" {
					s.Images = append(s.Images, im)
				}
			}
		case "images_more":
			s.MoreImages, _ = strconv.Atoi(v)
		}
	}
	if s.BaseURL == "" {
		if len(e.addrs) == 0 || e.port == 0 {
			return Server{}, false
		}
		s.BaseURL = "http://" + net.JoinHostPort(e.addrs[0].String(), strconv.Itoa(e.port))
	}
	u, err := url.Parse(s.BaseURL)
	if err != nil {
		return Server{}, false
	}
	if a, err := netip.ParseAddr(u.Hostname()); err == nil && a.Is4() && !onLink(ifi, a) {
		return Server{}, false
	}
	return s, true
}

// onLink reports whether a is inside one of the interface's IPv4 networks.
func onLink(ifi net.Interface, a netip.Addr) bool {
	as, err := ifi.Addrs()
	if err != nil {
		return true
	}
	for _, x := range as {
		if n, ok := x.(*net.IPNet); ok && n.IP.To4() != nil && n.Contains(a.AsSlice()) {
			return true
		}
	}
	return false
}
