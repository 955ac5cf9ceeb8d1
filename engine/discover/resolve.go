package discover

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"ezio/engine"
	"ezio/engine/server"
)

// AmbiguousError is the refusal when a search found more than one answer
// and guessing could write the wrong image onto a room of disks.
type AmbiguousError struct {
	What    string   // what was asked for: "auto" or "auto:NAME"
	Servers []Server // every server that could be meant
	Images  []string // or, for one server, the images it offers
}

func (e *AmbiguousError) Error() string {
	if len(e.Servers) == 1 {
		return fmt.Sprintf("%s offers several images (%s): say which with auto:NAME", e.Servers[0].Name, strings.Join(e.Images, ", "))
	}
	var names []string
	for _, s := range e.Servers {
		names = append(names, fmt.Sprintf("%s at %s", s.Name, s.BaseURL))
	}
	how := "say which image with auto:NAME or give the server's address"
	if e.What != "auto" {
		how = "give the server's address instead"
	}
	return fmt.Sprintf("%d servers found for %s (%s): %s", len(e.Servers), e.What, strings.Join(names, "; "), how)
}

// NoImageError is the refusal when servers answered but none has the image.
type NoImageError struct {
	Name    string
	Servers []Server
}

func (e *NoImageError) Error() string {
	var offers []string
	for _, s := range e.Servers {
		offers = append(offers, fmt.Sprintf("%s offers %s", s.Name, strings.Join(s.Images, ", ")))
	}
	return fmt.Sprintf("no server on this network offers the image %s (%s)", e.Name, strings.Join(offers, "; "))
}

// IsAuto reports whether src asks for a search: "auto" or "auto:NAME".
func IsAuto(src string) bool { return src == "auto" || strings.HasPrefix(src, "auto:") }

// Resolve finds the server and image that spec ("auto" or "auto:NAME")
// names. "auto" takes the only server on the LAN and its only image;
// "auto:NAME" the only server offering NAME. More than one candidate is
// refused with an *AmbiguousError listing them; none is ErrNoServer.
func Resolve(ctx context.Context, spec string, timeout time.Duration) (baseURL, imageName string, err error) {
	if !IsAuto(spec) {
		return "", "", fmt.Errorf("%q is not auto or auto:NAME", spec)
	}
	want, named := strings.CutPrefix(spec, "auto:")
	if named && want == "" {
		return "", "", errors.New("auto: needs an image name after the colon (auto:NAME)")
	}
	servers, err := Browse(ctx, timeout)
	if err != nil {
		return "", "", err
	}
	if len(servers) == 0 {
		return "", "", ErrNoServer
	}
	if !named {
		if len(servers) > 1 {
			return "", "", &AmbiguousError{What: spec, Servers: servers}
		}
		s := servers[0]
		images := s.Images
		if len(images) != 1 || s.MoreImages > 0 {
			es, err := engine.ListImages(ctx, s.BaseURL)
			if err != nil {
				return "", "", err
			}
			images = images[:0:0]
			for _, e := range es {
				images = append(images, e.Name)
			}
		}
		switch len(images) {
		case 0:
			return "", "", fmt.Errorf("%s at %s serves no image yet", s.Name, s.BaseURL)
		case 1:
			return s.BaseURL, images[0], nil
		}
		return "", "", &AmbiguousError{What: spec, Servers: servers, Images: images}
	}
	var offering []Server
	for _, s := range servers {
		if s.Offers(ctx, want) {
			offering = append(offering, s)
		}
	}
	switch len(offering) {
	case 0:
		return "", "", &NoImageError{Name: want, Servers: servers}
	case 1:
		return offering[0].BaseURL, want, nil
	}
	return "", "", &AmbiguousError{What: spec, Servers: offering}
}

// FetchTorrent loads the torrent a deploy names, in every form the wizard
// accepts: auto or auto:NAME (searched on the LAN for timeout), a torrent's
// URL, a .torrent file, or a server's address (HOST, HOST:PORT,
// http://HOST:PORT/), which must then serve exactly one image. An image
// found that way which is a whole disk gives an *engine.DiskImageError
// carrying its /images/NAME URL.
func FetchTorrent(ctx context.Context, src string, timeout time.Duration) (*engine.FetchedTorrent, error) {
	src = strings.TrimSpace(src)
	if IsAuto(src) {
		base, name, err := Resolve(ctx, src, timeout)
		if err != nil {
			return nil, err
		}
		return fetchImage(ctx, base, name)
	}
	if server.IsTorrentURL(src) || strings.HasSuffix(src, ".torrent") {
		return engine.FetchTorrent(ctx, src)
	}
	if fi, err := os.Stat(src); err == nil && !fi.IsDir() {
		return engine.FetchTorrent(ctx, src)
	}
	base, err := server.ParseServer(src)
	if err != nil {
		return engine.FetchTorrent(ctx, src)
	}
	return fetchImage(ctx, base, "")
}

// fetchImage fetches the torrent of image name (or of the only image, when
// name is empty) from the server at base.
func fetchImage(ctx context.Context, base, name string) (*engine.FetchedTorrent, error) {
	es, err := engine.ListImages(ctx, base)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range es {
		if e.Name == name || name == "" && len(es) == 1 {
			if e.Kind == server.KindDisk {
				// Several torrents: the caller deploys it as a disk
				// image from its /images/NAME.
				return nil, &engine.DiskImageError{URL: engine.ImageURL(base, e)}
			}
			return engine.FetchTorrent(ctx, engine.TorrentURL(base, e))
		}
		names = append(names, e.Name)
	}
	switch {
	case len(es) == 0:
		return nil, fmt.Errorf("%s serves no image yet", base)
	case name == "":
		return nil, fmt.Errorf("%s serves several images (%s): give %s/torrents/NAME.torrent", base, strings.Join(names, ", "), base)
	}
	return nil, fmt.Errorf("%s does not serve the image %s (it serves %s)", base, name, strings.Join(names, ", "))
}

// Unreachable reports whether err means the server could not be found or
// reached, which a script should retry (exit status 3), rather than a
// refusal.
func Unreachable(err error) bool {
	if errors.Is(err, ErrNoServer) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var oe *net.OpError
	var de *net.DNSError
	return errors.As(err, &oe) || errors.As(err, &de)
}
