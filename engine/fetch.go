package engine

import (
	"context"
	"encoding/json"
	"errors"
	"ezio/engine/server"
	"ezio/engine/torrentfile"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/anacrolix/torrent/metainfo"
)

// The client side of the image server: torrents, image descriptions and
// the image list, fetched over HTTP. Failures are typed so that a caller
// can tell "try again later" (UnreachableError) from "this will never
// work" (NotFoundError, ForbiddenError, BadResponseError).

// NotFoundError is a 404: the server runs but has no such image or torrent.
type NotFoundError struct {
	URL     string
	Message string // the server's explanation, made printable
}

func (e *NotFoundError) Error() string {
	if e.Message != "" {
		return fmt.Sprintf("%s: not found (%s)", e.URL, e.Message)
	}
	return e.URL + ": not found"
}

// Is makes a missing file on a server a missing file: fs.ErrNotExist.
func (e *NotFoundError) Is(target error) bool { return target == fs.ErrNotExist }

// ForbiddenError is a 403: the server does not serve this client's network.
type ForbiddenError struct {
	URL     string
	Message string
}

func (e *ForbiddenError) Error() string {
	return fmt.Sprintf("%s: the server refused this machine (%s)", e.URL, e.Message)
}

// BadResponseError is an answer that is not what was asked for: another
// HTTP status, or a body that is not a torrent or not an ezio image list.
type BadResponseError struct {
	URL    string
	Status int // the HTTP status; 200 when the body was the problem
	Err    error
}

func (e *BadResponseError) Error() string {
	if e.Status != http.StatusOK {
		return fmt.Sprintf("%s: the server answered %d %s: %v", e.URL, e.Status, http.StatusText(e.Status), e.Err)
	}
	return fmt.Sprintf("%s: %v", e.URL, e.Err)
}
func (e *BadResponseError) Unwrap() error { return e.Err }

// DiskImageError is FetchTorrent given a whole-disk image: it has several
// torrents, FetchImage reads it.
type DiskImageError struct{ URL string }

func (e *DiskImageError) Error() string {
	return e.URL + " is a whole-disk image (several torrents), not a partition image"
}

// readTorrentBody reads a torrent of at most MaxTorrentBytes from a
// response (an over-limit body is a TooLargeError, never a silent cut) and
// checks it strictly (ParseTorrent).
func readTorrentBody(ctx context.Context, u string, resp *http.Response) (*metainfo.MetaInfo, error) {
	if resp.ContentLength > torrentfile.MaxTorrentBytes {
		return nil, &BadResponseError{URL: u, Status: http.StatusOK, Err: &torrentfile.TooLargeError{Size: resp.ContentLength, Limit: torrentfile.MaxTorrentBytes}}
	}
	b, err := readBody(ctx, u, io.LimitReader(resp.Body, torrentfile.MaxTorrentBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > torrentfile.MaxTorrentBytes {
		return nil, &BadResponseError{URL: u, Status: http.StatusOK, Err: &torrentfile.TooLargeError{Size: int64(len(b)), Limit: torrentfile.MaxTorrentBytes, AtLeast: true}}
	}
	mi, err := torrentfile.ParseTorrent(b)
	if err != nil {
		return nil, &BadResponseError{URL: u, Status: http.StatusOK, Err: err}
	}
	return mi, nil
}

// printable makes a server's text safe for a terminal: control characters
// become spaces, and it is cut to n runes.
func printable(s string, n int) string {
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "?") {
		if n == 0 {
			b.WriteString("...")
			break
		}
		if unicode.IsControl(r) {
			r = ' '
		}
		b.WriteRune(r)
		n--
	}
	return strings.TrimSpace(b.String())
}

// Timeouts of one request, variables for the tests.
var (
	fetchTimeout = 30 * time.Second
	listTimeout  = 10 * time.Second
)

// get fetches u. Transport failures come back as *UnreachableError, and
// statuses other than 200 as the typed errors above; an end of the
// caller's ctx is returned as it is (an interrupt, not an outage).
func get(ctx context.Context, u string, timeout time.Duration) (*http.Response, context.CancelFunc, error) {
	tctx, cancel := context.WithTimeout(ctx, timeout)
	req, err := http.NewRequestWithContext(tctx, http.MethodGet, u, nil)
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("bad URL %q: %w", u, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		if errors.Is(ctx.Err(), context.Canceled) {
			return nil, nil, ctx.Err()
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within %v", timeout)
		}
		return nil, nil, &UnreachableError{URL: u, Err: err}
	}
	if resp.StatusCode == http.StatusOK {
		return resp, cancel, nil
	}
	defer cancel()
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	text := printable(string(msg), 200)
	switch resp.StatusCode {
	case http.StatusNotFound:
		return nil, nil, &NotFoundError{URL: u, Message: text}
	case http.StatusForbidden:
		return nil, nil, &ForbiddenError{URL: u, Message: text}
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return nil, nil, &UnreachableError{URL: u, Err: fmt.Errorf("%s", resp.Status)}
	}
	return nil, nil, &BadResponseError{URL: u, Status: resp.StatusCode, Err: errors.New(text)}
}

// FetchFile reads one file of an ezio server (at most limit bytes) with
// the errors of every fetch here: *UnreachableError for an outage,
// *NotFoundError (also fs.ErrNotExist) for a 404, and the others above.
func FetchFile(ctx context.Context, u string, timeout time.Duration, limit int64) ([]byte, error) {
	resp, cancel, err := get(ctx, u, timeout)
	if err != nil {
		return nil, err
	}
	defer cancel()
	defer resp.Body.Close()
	return readBody(ctx, u, io.LimitReader(resp.Body, limit))
}

// readBody reads a successful response; a failure midway is an outage.
func readBody(ctx context.Context, u string, r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return nil, ctx.Err()
		}
		return nil, &UnreachableError{URL: u, Err: err}
	}
	return b, nil
}

func isJSON(resp *http.Response) bool {
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return mt == "application/json"
}

// FetchedTorrent is a torrent loaded from a file or an ezio server.
type FetchedTorrent struct {
	MetaInfo *metainfo.MetaInfo
	Seeders  []string // peer addresses the server vouches for
}

func isURL(src string) bool {
	return strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://")
}

// FetchTorrent loads a torrent from a path or URL and, from an ezio server,
// learns the seeder's peer address. A URL may name a torrent
// (/torrents/NAME.torrent) or a partition image (/images/NAME); a
// whole-disk image gives a *DiskImageError (use FetchImage).
func FetchTorrent(ctx context.Context, src string) (*FetchedTorrent, error) {
	if !isURL(src) {
		mi, err := loadTorrentFile(src)
		if err != nil {
			return nil, err
		}
		return &FetchedTorrent{MetaInfo: mi}, nil
	}
	im, err := FetchImage(ctx, src)
	if err != nil {
		return nil, err
	}
	if im.Kind != server.KindPartition || len(im.Parts) != 1 || im.Parts[0].Torrent == nil {
		return nil, &DiskImageError{URL: src}
	}
	return im.Parts[0].Torrent, nil
}

// fetchTorrentURL loads one torrent over HTTP.
func fetchTorrentURL(ctx context.Context, u string) (*FetchedTorrent, error) {
	resp, cancel, err := get(ctx, u, fetchTimeout)
	if err != nil {
		return nil, err
	}
	defer cancel()
	defer resp.Body.Close()
	return torrentFromResponse(ctx, u, resp)
}

func torrentFromResponse(ctx context.Context, u string, resp *http.Response) (*FetchedTorrent, error) {
	mi, err := readTorrentBody(ctx, u, resp)
	if err != nil {
		return nil, err
	}
	ft := &FetchedTorrent{MetaInfo: mi}
	if h := resp.Header.Get(server.SeederHeader); h != "" {
		if _, err := netip.ParseAddrPort(h); err == nil {
			ft.Seeders = append(ft.Seeders, h)
		}
	}
	return ft, nil
}

// FetchedImage is an image as a client fetched it: its torrents and, for a
// whole-disk image, the manifest that says how to lay them out.
type FetchedImage struct {
	Name     string
	Kind     string // KindPartition or KindDisk
	URL      string
	Manifest json.RawMessage // disk images: the image's manifest as served
	// Parts are the partitions in disk order; a partition image has one.
	Parts   []FetchedPart
	Seeders []string // peer addresses the server vouches for
}

// FetchedPart is one partition of a fetched image.
type FetchedPart struct {
	server.ImagePart
	Torrent *FetchedTorrent // nil when its data is not transferred (swap)
}

// FetchImage reads an image from an ezio server: an /images/NAME URL (a
// partition or a whole-disk image, every torrent fetched), or a torrent's
// URL or path (a partition image).
func FetchImage(ctx context.Context, src string) (*FetchedImage, error) {
	if !isURL(src) {
		ft, err := FetchTorrent(ctx, src)
		if err != nil {
			return nil, err
		}
		return partitionImage(src, ft)
	}
	resp, cancel, err := get(ctx, src, fetchTimeout)
	if err != nil {
		return nil, err
	}
	defer cancel()
	defer resp.Body.Close()
	if !isJSON(resp) {
		ft, err := torrentFromResponse(ctx, src, resp)
		if err != nil {
			return nil, err
		}
		return partitionImage(src, ft)
	}
	body, err := readBody(ctx, src, io.LimitReader(resp.Body, torrentfile.MaxTorrentBytes))
	if err != nil {
		return nil, err
	}
	var info server.ImageInfo
	if err := json.Unmarshal(body, &info); err != nil {
		return nil, &BadResponseError{URL: src, Status: http.StatusOK, Err: fmt.Errorf("not an ezio image description: %w", err)}
	}
	base, _ := url.Parse(src)
	resolve := func(ref string) (string, error) {
		r, err := url.Parse(ref)
		if err != nil {
			return "", &BadResponseError{URL: src, Status: http.StatusOK, Err: fmt.Errorf("bad torrent URL %q", printable(ref, 80))}
		}
		return base.ResolveReference(r).String(), nil
	}
	im := &FetchedImage{Name: info.Name, Kind: info.Kind, URL: src, Manifest: info.Manifest}
	var parts []server.ImagePart
	switch info.Kind {
	case server.KindPartition:
		if info.Torrent == "" {
			return nil, &BadResponseError{URL: src, Status: http.StatusOK, Err: errors.New("a partition image without a torrent")}
		}
		parts = []server.ImagePart{{Name: info.Name, Torrent: info.Torrent, InfoHash: info.InfoHash, Bytes: info.Size, Pieces: info.Pieces, PieceLength: info.PieceLength}}
	case server.KindDisk:
		parts = info.Partitions
		if len(parts) == 0 {
			return nil, &BadResponseError{URL: src, Status: http.StatusOK, Err: errors.New("a disk image without partitions")}
		}
	default:
		return nil, &BadResponseError{URL: src, Status: http.StatusOK, Err: fmt.Errorf("unknown image kind %q", printable(info.Kind, 40))}
	}
	seen := map[string]bool{}
	for _, p := range parts {
		fp := FetchedPart{ImagePart: p}
		if p.Torrent != "" {
			u, err := resolve(p.Torrent)
			if err != nil {
				return nil, err
			}
			ft, err := fetchTorrentURL(ctx, u)
			if err != nil {
				return nil, err
			}
			if p.InfoHash != "" && ft.MetaInfo.HashInfoBytes().HexString() != p.InfoHash {
				return nil, &BadResponseError{URL: u, Status: http.StatusOK, Err: fmt.Errorf("torrent of partition %s has infohash %s, the image says %s", printable(p.Name, 40), ft.MetaInfo.HashInfoBytes().HexString(), printable(p.InfoHash, 40))}
			}
			fp.Torrent = ft
			for _, s := range ft.Seeders {
				if !seen[s] {
					seen[s] = true
					im.Seeders = append(im.Seeders, s)
				}
			}
		}
		im.Parts = append(im.Parts, fp)
	}
	return im, nil
}

func partitionImage(src string, ft *FetchedTorrent) (*FetchedImage, error) {
	sum, _, err := torrentfile.Summarize(ft.MetaInfo)
	if err != nil {
		return nil, err
	}
	return &FetchedImage{
		Name: sum.Name, Kind: server.KindPartition, URL: src, Seeders: ft.Seeders,
		Parts: []FetchedPart{{ImagePart: server.ImagePart{Name: sum.Name, InfoHash: sum.InfoHash, Bytes: sum.TotalBytes, Pieces: sum.Pieces, PieceLength: sum.PieceLength}, Torrent: ft}},
	}, nil
}

// serverURL makes http://HOST:PORT from a base given as HOST, HOST:PORT or
// a URL, with the default port when none is given.
func serverURL(base string) (*url.URL, error) {
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), strconv.Itoa(server.DefaultTrackerPort))
	}
	return u, nil
}

// ListImages reads a server's /images.json. base is http://HOST:PORT.
func ListImages(ctx context.Context, base string) ([]server.ImageEntry, error) {
	u, err := serverURL(base)
	if err != nil {
		return nil, err
	}
	u.Path, u.RawQuery = "/images.json", ""
	resp, cancel, err := get(ctx, u.String(), listTimeout)
	if err != nil {
		return nil, err
	}
	defer cancel()
	defer resp.Body.Close()
	body, err := readBody(ctx, u.String(), io.LimitReader(resp.Body, torrentfile.MaxTorrentBytes))
	if err != nil {
		return nil, err
	}
	var es []server.ImageEntry
	if err := json.Unmarshal(body, &es); err != nil {
		return nil, &BadResponseError{URL: u.String(), Status: http.StatusOK, Err: fmt.Errorf("not an ezio image list: %w", err)}
	}
	for i := range es {
		if es[i].Kind == "" {
			es[i].Kind = server.KindPartition // servers from before disk images
		}
	}
	return es, nil
}

// TorrentURL is the full URL of a partition image's torrent on a server,
// or "" for a disk image (see ImageURL).
func TorrentURL(base string, e server.ImageEntry) string {
	if e.Torrent == "" {
		return ""
	}
	return onServer(base, e.Torrent)
}

// ImageURL is the full /images/NAME URL of an image on a server.
func ImageURL(base string, e server.ImageEntry) string {
	p := e.URL
	if p == "" {
		p = server.ImagePath(e.Name)
	}
	return onServer(base, p)
}

func onServer(base, path string) string {
	u, err := serverURL(base)
	if err != nil {
		return ""
	}
	r, err := url.Parse(path)
	if err != nil {
		return ""
	}
	u.Path, u.RawPath, u.RawQuery = "", "", ""
	return u.ResolveReference(r).String()
}
