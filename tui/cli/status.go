package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"ezio/engine"
	"ezio/engine/daemon"
	"ezio/engine/ezioapi"
	"ezio/tui/format"
)

// StateName is how EZIO's tools name libtorrent's state numbers.
func StateName(state int64, paused bool) string {
	var s string
	switch state {
	case 0:
		s = "error"
	case 1:
		s = "checking"
	case 3:
		s = "downloading"
	case 4:
		s = "finished"
	case 5:
		s = "seeding"
	default:
		s = fmt.Sprintf("state-%d", state)
	}
	if paused {
		s += " (paused)"
	}
	return s
}

// TorrentLine is one torrent of `ezio status`.
func TorrentLine(t *ezioapi.Torrent) string {
	return fmt.Sprintf("%-12s %6s  %s/%s  down %s  up %s  peers %d  %s  %s",
		format.Name(t.GetName()), format.Percent(t.GetTotalDone(), t.GetTotal()),
		format.Bytes(t.GetTotalDone()), format.Bytes(t.GetTotal()),
		format.Rate(float64(t.GetDownloadRate())), format.Rate(float64(t.GetUploadRate())),
		t.GetNumPeers(), StateName(t.GetState(), t.GetIsPaused()), t.GetHash()[:min(12, len(t.GetHash()))])
}

// statusJSON is one torrent in `ezio status --json`, named as in the proto.
type statusJSON struct {
	Hash                 string  `json:"hash"`
	Name                 string  `json:"name"`
	Progress             float64 `json:"progress"`
	DownloadRate         int64   `json:"download_rate"`
	UploadRate           int64   `json:"upload_rate"`
	ActiveTime           int64   `json:"active_time"`
	IsFinished           bool    `json:"is_finished"`
	NumPeers             int64   `json:"num_peers"`
	State                int64   `json:"state"`
	StateName            string  `json:"state_name"`
	TotalDone            int64   `json:"total_done"`
	Total                int64   `json:"total"`
	NumPieces            int64   `json:"num_pieces"`
	FinishedTime         int64   `json:"finished_time"`
	SeedingTime          int64   `json:"seeding_time"`
	TotalPayloadDownload int64   `json:"total_payload_download"`
	TotalPayloadUpload   int64   `json:"total_payload_upload"`
	IsPaused             bool    `json:"is_paused"`
	SavePath             string  `json:"save_path"`
	LastUpload           int64   `json:"last_upload"`
	LastDownload         int64   `json:"last_download"`
}

func toJSON(t *ezioapi.Torrent) statusJSON {
	return statusJSON{
		Hash: t.GetHash(), Name: t.GetName(), Progress: t.GetProgress(),
		DownloadRate: t.GetDownloadRate(), UploadRate: t.GetUploadRate(), ActiveTime: t.GetActiveTime(),
		IsFinished: t.GetIsFinished(), NumPeers: t.GetNumPeers(), State: t.GetState(),
		StateName: StateName(t.GetState(), false), TotalDone: t.GetTotalDone(), Total: t.GetTotal(),
		NumPieces: t.GetNumPieces(), FinishedTime: t.GetFinishedTime(), SeedingTime: t.GetSeedingTime(),
		TotalPayloadDownload: t.GetTotalPayloadDownload(), TotalPayloadUpload: t.GetTotalPayloadUpload(),
		IsPaused: t.GetIsPaused(), SavePath: t.GetSavePath(), LastUpload: t.GetLastUpload(), LastDownload: t.GetLastDownload(),
	}
}

// orderedTorrents lists a status reply in the daemon's order (its hashes
// list), then any torrent only in the map, by name.
func orderedTorrents(st *ezioapi.UpdateStatus) []*ezioapi.Torrent {
	var out []*ezioapi.Torrent
	seen := map[string]bool{}
	for _, h := range st.GetHashes() {
		if t := st.GetTorrents()[h]; t != nil && !seen[h] {
			out = append(out, t)
			seen[h] = true
		}
	}
	var rest []*ezioapi.Torrent
	for h, t := range st.GetTorrents() {
		if !seen[h] {
			rest = append(rest, t)
		}
	}
	sort.Slice(rest, func(i, j int) bool { return rest[i].GetName() < rest[j].GetName() })
	return append(out, rest...)
}

func printStatus(w io.Writer, st *ezioapi.UpdateStatus, asJSON bool) {
	list := orderedTorrents(st)
	if asJSON {
		rows := make([]statusJSON, 0, len(list))
		for _, t := range list {
			rows = append(rows, toJSON(t))
		}
		json.NewEncoder(w).Encode(struct {
			Time     string       `json:"time"`
			Torrents []statusJSON `json:"torrents"`
		}{time.Now().UTC().Format(time.RFC3339), rows})
		return
	}
	if len(list) == 0 {
		fmt.Fprintln(w, "no torrents")
		return
	}
	for _, t := range list {
		fmt.Fprintln(w, TorrentLine(t))
	}
}

func newStatusCmd(a *App) *cobra.Command {
	var o struct {
		addr   string
		asJSON bool
		watch  bool
		every  time.Duration
		hashes []string
	}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show what a running ezio daemon (or EZIO's) is doing: one line per torrent",
		Long: `Ask a control daemon (ezio daemon, or EZIO's own) for every torrent's
name, progress, rates, peers and state. --json prints one JSON object per
poll with the API's field names. Exit status 3 when no daemon answers.`,
		Example: `  ezio status
  ezio status --grpc unix:/run/ezio.sock --watch
  ezio status --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cl, cc, err := daemon.Dial(o.addr)
			if err != nil {
				return refused(err)
			}
			defer cc.Close()
			for {
				cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				st, err := cl.GetTorrentStatus(cctx, &ezioapi.UpdateRequest{Hashes: o.hashes})
				cancel()
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					if s, ok := status.FromError(err); ok && (s.Code() == codes.Unavailable || s.Code() == codes.DeadlineExceeded) {
						return &engine.UnreachableError{Addr: o.addr, Err: errors.New(s.Message())}
					}
					return err
				}
				if o.watch && !o.asJSON && a.isTerminal(a.Stdout) {
					fmt.Fprint(a.Stdout, "\x1b[H\x1b[2J")
				}
				printStatus(a.Stdout, st, o.asJSON)
				if !o.watch {
					return nil
				}
				if !o.asJSON && !a.isTerminal(a.Stdout) {
					fmt.Fprintln(a.Stdout, strings.Repeat("-", 20))
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(o.every):
				}
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.addr, "grpc", daemon.DefaultAddr, "daemon address HOST:PORT or unix:/PATH")
	f.BoolVar(&o.asJSON, "json", false, "print one JSON object per poll")
	f.BoolVar(&o.watch, "watch", false, "poll until interrupted")
	f.DurationVar(&o.every, "interval", 2*time.Second, "time between polls with --watch")
	f.StringArrayVar(&o.hashes, "hash", nil, "only this torrent (infohash, repeatable)")
	return cmd
}
