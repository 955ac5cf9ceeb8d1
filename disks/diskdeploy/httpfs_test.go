package diskdeploy

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"ezio/engine"
)

// HTTPFS gives engine's typed errors: a missing file is fs.ErrNotExist
// (and an *engine.NotFoundError), a server that does not answer an
// *engine.UnreachableError (exit 3 on the command line), not an untyped
// error that only says "failed".
func TestHTTPFSErrorsSayWhatWentWrong(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/images/pc1/ezio-disk.json" {
			w.Write([]byte(`{"name":"pc1"}`))
			return
		}
		http.Error(w, "no such file in this image", http.StatusNotFound)
	}))
	defer srv.Close()
	h := HTTPFS{Ctx: context.Background(), Base: srv.URL + "/images/pc1"}
	b, err := fs.ReadFile(h, "ezio-disk.json")
	if err != nil || string(b) != `{"name":"pc1"}` {
		t.Fatalf("a served file: %q, %v", b, err)
	}
	_, err = h.Open("sda-mbr")
	var nf *engine.NotFoundError
	if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &nf) {
		t.Errorf("a missing file: %v (%T), want fs.ErrNotExist and *engine.NotFoundError", err, err)
	}
	// A port nothing listens on.
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()
	_, err = HTTPFS{Ctx: context.Background(), Base: dead + "/images/pc1"}.Open("ezio-disk.json")
	var ue *engine.UnreachableError
	if !errors.As(err, &ue) || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("no server: %v (%T), want an *engine.UnreachableError", err, err)
	}
	if _, err := h.Open("../etc/passwd"); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("a path out of the image: %v", err)
	}
}
