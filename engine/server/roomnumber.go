package server

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
)

// RoomNumberPath is the route under an image that hands out the room
// counter: POST /images/NAME/number?client=ID answers 1, 2, 3... in the
// order clients ask, and the same number again to a client that asks
// again (a deploy run twice keeps its name).
const RoomNumberPath = "number"

// roomNumbers are the counters of a server's images.
type roomNumbers struct {
	mu       sync.Mutex
	byClient map[string]map[string]int // image -> client -> number
}

func (rn *roomNumbers) take(image, client string) int {
	rn.mu.Lock()
	defer rn.mu.Unlock()
	if rn.byClient == nil {
		rn.byClient = map[string]map[string]int{}
	}
	m := rn.byClient[image]
	if m == nil {
		m = map[string]int{}
		rn.byClient[image] = m
	}
	if n, ok := m[client]; ok && client != "" {
		return n
	}
	n := len(m) + 1
	if client == "" {
		client = fmt.Sprintf("anonymous-%d", n)
	}
	m[client] = n
	return n
}

// roomNumber answers the counter for an image this server serves.
func (s *Server) roomNumber(w http.ResponseWriter, r *http.Request) {
	name, client, ok := s.imageClient(w, r)
	if !ok {
		return
	}
	n := s.numbers.take(name, client)
	s.log.Info("room number handed out", "image", name, "client", client, "from", remoteIP(r).String(), "number", n)
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(w, "%d\n", n)
}

// imageClient reads a client's request about an image: the image (which
// this server must serve, else 404) and the client's id (?client=, at
// most 128 bytes, else 400). ok is false once the answer is written.
func (s *Server) imageClient(w http.ResponseWriter, r *http.Request) (name, client string, ok bool) {
	name = r.PathValue("name")
	s.mu.Lock()
	_, ok = s.images[name]
	s.mu.Unlock()
	if !ok {
		http.Error(w, fmt.Sprintf("no image %q here", name), http.StatusNotFound)
		return "", "", false
	}
	client = strings.TrimSpace(r.URL.Query().Get("client"))
	if len(client) > 128 {
		http.Error(w, "client id too long", http.StatusBadRequest)
		return "", "", false
	}
	return name, client, true
}
