package cli

import (
	"bytes"
	"encoding/json"
	"runtime"
	"strings"
	"testing"

	"ezio/engine"
)

func runVersion(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	a := &App{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb}
	root := NewRoot(a)
	root.SetArgs(append([]string{"version"}, args...))
	if err := root.Execute(); err != nil {
		t.Fatalf("ezio version %v: %v\n%s", args, err, errb.String())
	}
	return out.String()
}

func TestVersionNamesVersionCommitAndGo(t *testing.T) {
	old := commit
	t.Cleanup(func() { commit = old })

	// A commit given with -ldflags -X wins over the VCS stamp.
	commit = "0123abcd"
	out := runVersion(t)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || lines[0] != "ezio "+engine.Version || lines[1] != "commit 0123abcd" ||
		!strings.HasPrefix(lines[2], runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH) {
		t.Errorf("ezio version printed:\n%s", out)
	}

	var bi BuildInfo
	if err := json.Unmarshal([]byte(runVersion(t, "--json")), &bi); err != nil {
		t.Fatal(err)
	}
	if bi.Version != engine.Version || bi.Commit != "0123abcd" || bi.Go != runtime.Version() {
		t.Errorf("ezio version --json: %+v", bi)
	}

	// Neither source: said plainly, never empty.
	commit = ""
	if bi := ReadBuildInfo(); bi.Commit == "" {
		t.Error("commit is empty, want a revision or \"unknown\"")
	}
}
