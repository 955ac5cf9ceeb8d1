package cli

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"ezio/engine"
)

// commit is the source revision, for builds without Go's VCS stamp
// (a tarball, -buildvcs=false): go build -ldflags "-X ezio/tui/cli.commit=abc123".
var commit string

// BuildInfo is what `ezio version` reports.
type BuildInfo struct {
	Version  string `json:"version"`
	Commit   string `json:"commit"`             // "unknown" when neither source knows
	Modified bool   `json:"modified,omitempty"` // built from a tree with uncommitted changes
	Time     string `json:"commit_time,omitempty"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
	Static   bool   `json:"static"` // built with CGO_ENABLED=0: no shared libraries needed
}

// ReadBuildInfo gathers the version, the commit (the -X value first, then
// the VCS stamp Go writes into the binary) and the toolchain.
func ReadBuildInfo() BuildInfo {
	bi := BuildInfo{Version: engine.Version, Commit: commit, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if bi.Commit == "" {
					bi.Commit = s.Value
				}
			case "vcs.modified":
				bi.Modified = s.Value == "true"
			case "vcs.time":
				bi.Time = s.Value
			case "CGO_ENABLED":
				bi.Static = s.Value == "0"
			}
		}
	}
	if bi.Commit == "" {
		bi.Commit = "unknown"
	}
	return bi
}

func newVersionCmd(a *App) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print ezio's version, the commit it was built from and the Go version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			bi := ReadBuildInfo()
			if asJSON {
				return json.NewEncoder(a.Stdout).Encode(bi)
			}
			c := bi.Commit
			if bi.Modified {
				c += " (modified)"
			}
			if bi.Time != "" {
				c += " " + bi.Time
			}
			link := "dynamically linked (cgo)"
			if bi.Static {
				link = "static (CGO_ENABLED=0)"
			}
			fmt.Fprintf(a.Stdout, "ezio %s\ncommit %s\n%s %s, %s\n", bi.Version, c, bi.Go, bi.Platform, link)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
