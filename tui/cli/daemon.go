package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"ezio/engine"
	"ezio/engine/daemon"
)

func newDaemonCmd(a *App) *cobra.Command {
	var o struct {
		file       bool
		grpcListen string
		slowStart  bool
		slowPeriod int
	}
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the control daemon that EZIO's gRPC API drives (Clonezilla's BitTorrent mode)",
		Long: `Run until told to stop, hosting every torrent that is handed to it over
gRPC with EZIO's API (package ezio, service EZIO): AddTorrent,
GetTorrentStatus, PauseTorrent, ResumeTorrent, Shutdown, GetVersion.
Clonezilla's Lite Server scripts and EZIO's Python utilities drive it
unchanged; "ezio status" shows what it is doing. Two calls are ezio's own:
RemoveTorrent stops one torrent and forgets it (its data stays; an
unfinished deploy keeps its resume record), so a daemon can be handed
torrent after torrent for days; GetDiagnostics reports the process's
goroutines, open files and memory.

A torrent added with seeding_mode is served from its save_path; any other
is written onto its save_path (every safety check of "ezio deploy"
applies; a refusal is a gRPC error with the same sentence) and then served
to the other clients until Shutdown. With -F a save_path is the directory
holding NAME/OFFSET extent files; without it, a disk, a partition or an
image file.

Shutdown (the gRPC call, SIGINT or SIGTERM) stops every torrent after
writing each deploy's resume record, and the daemon exits 0; 1 when a
torrent could not be flushed.`,
		Example: `  ezio daemon -F --cache-size 1024 --slow-start          # a Clonezilla seeder
  ezio daemon --grpc-listen unix:/run/ezio.sock --listen 10.0.0.5:6881
  ezio status --watch`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := a.Logger(true)
			if err != nil {
				return err
			}
			ln, err := daemon.Listen(o.grpcListen)
			if err != nil {
				return err
			}
			d, err := daemon.New(daemon.Options{
				GRPCListen: o.grpcListen, FileMode: o.file,
				SlowStart: o.slowStart, SlowStartPeriod: time.Duration(o.slowPeriod) * time.Second,
				Tuning: a.Tuning, Logger: log,
			})
			if err != nil {
				ln.Close()
				var le *engine.ListenError
				if errors.As(err, &le) {
					return &ExitError{Code: ExitFailed, Err: fmt.Errorf("%w (choose another with --listen ADDR:PORT)", err)}
				}
				return err
			}
			// A daemon's normal end is being told to stop, by gRPC or by
			// a signal: both exit 0 once everything is flushed.
			return d.Serve(cmd.Context(), ln)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.file, "file", "F", false, "save paths are directories of NAME/OFFSET extent files (partclone -T images), not disks")
	f.StringVar(&o.grpcListen, "grpc-listen", daemon.DefaultAddr, "gRPC address HOST:PORT or unix:/PATH")
	f.BoolVar(&o.slowStart, "slow-start", false, "ramp the upload rate: 10 MiB/s, +10 MiB/s each period, unlimited after 100 MiB/s")
	f.IntVar(&o.slowPeriod, "slow-start-period", 10, "seconds between slow-start steps")
	return cmd
}
