package disktest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// InCI says whether the suite runs under CI=true, where a missing
// prerequisite is a failure instead of a skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// SkipOrFail skips the test with the reason, or fails it under CI=true:
// CI installs every tool the suite drives, so a missing one there is a
// broken CI, not a reason to pass.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	reason := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("CI=true but %s", reason)
	}
	t.Skip(reason)
}

// Need stops the test (skip, or fail in CI) unless every tool is on PATH
// and, when root is true, the test runs as root.
func Need(t testing.TB, root bool, tools ...string) {
	t.Helper()
	var missing []string
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	switch {
	case len(missing) > 0:
		SkipOrFail(t, "this test needs %s", strings.Join(missing, ", "))
	case root && os.Geteuid() != 0:
		SkipOrFail(t, "this test needs root (loop devices, mounts, namespaces)")
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// EzioBinary builds the ezio command once per test binary and returns
// its path; every end-to-end test runs the real program.
func EzioBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ezio-test-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "ezio")
		out, err := exec.Command("go", "build", "-o", binPath, "ezio").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// SyncBuffer collects what a child process writes while the test reads
// it: a bytes.Buffer behind a lock.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// WaitTCP waits until something accepts TCP connections at addr, failing
// the test after timeout with what log says (a child's output).
func WaitTCP(t testing.TB, addr string, timeout time.Duration, log fmt.Stringer) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp4", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listened on %s within %s:\n%s", addr, timeout, log)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
