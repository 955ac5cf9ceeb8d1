package disktest

import (
	"io"
	"net/http"
	"testing"
)

// HTTPGet fetches u and returns the response with its whole body; any
// transport error ends the test.
func HTTPGet(t testing.TB, u string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}
