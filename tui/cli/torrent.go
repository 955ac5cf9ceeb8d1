package cli

import (
	"encoding/json"
	"errors"
	"fmt"

	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"ezio/engine"
	"ezio/engine/torrentfile"
	"ezio/tui/format"
)

func newTorrentCmd(a *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "torrent",
		Short: "Create and inspect image torrents",
		Long: `An image torrent is a v1 torrent whose files are disk extents: each file's
name is the extent's disk offset in hex and its length the extent's length.`,
	}
	cmd.AddCommand(newTorrentCreateCmd(a), newTorrentInfoCmd(a), newTorrentFromPartcloneCmd(a))
	cmd.AddCommand(newTorrentVerifyCmd(a)) // integrity: verify.go
	return cmd
}

func newTorrentCreateCmd(a *App) *cobra.Command {
	var out, name, pieceLen string
	var trackers []string
	cmd := &cobra.Command{
		Use:   "create SOURCE -o OUT.torrent",
		Short: "Hash an image file, a block device or a partclone extent directory into a torrent",
		Long: `Hash SOURCE on all cores and write an image torrent.

SOURCE is a partclone -T extent directory (files named by hex disk offset),
an image file, or a block device; a file or device becomes one extent
covering its whole range.`,
		Example: `  ezio torrent create /srv/images/sda1 -o sda1.torrent --tracker http://10.0.0.1:6969/announce
  ezio torrent create disk.img -o disk.torrent --piece-length 4MiB`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return refused(errors.New("give the output file with -o OUT.torrent"))
			}
			pl, err := torrentfile.ParseSize(pieceLen)
			if err != nil {
				return refused(err)
			}
			if pl < 16<<10 || pl&(pl-1) != 0 {
				return refused(fmt.Errorf("piece length %s: want a power of two of at least 16KiB", pieceLen))
			}
			if name == "" {
				name = filepath.Base(filepath.Clean(args[0]))
			}
			tty := a.isTerminal(a.Stderr)
			start := time.Now()
			mi, err := engine.CreateTorrent(cmd.Context(), args[0], engine.CreateOptions{
				Name: name, PieceLength: pl, Trackers: trackers,
				Progress: func(done, total int64) {
					if tty {
						el := time.Since(start).Seconds()
						rate := 0.0
						if el > 0 {
							rate = float64(done) / el
						}
						fmt.Fprintf(a.Stderr, "\rhashing %s  %s of %s  %s   ", format.Percent(done, total), format.Bytes(done), format.Bytes(total), format.Rate(rate))
					}
				},
			})
			if tty {
				fmt.Fprintln(a.Stderr)
			}
			if err != nil {
				return err
			}
			if err := engine.WriteTorrent(mi, out); err != nil {
				return err
			}
			sum, _, _ := torrentfile.Summarize(mi)
			fmt.Fprintf(a.Stdout, "wrote %s: %s, %d extents, %s in %d pieces of %s, infohash %s\n", out, format.Name(sum.Name), sum.Extents, format.Bytes(sum.TotalBytes), sum.Pieces, format.Bytes(sum.PieceLength), sum.InfoHash)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "torrent file to write")
	cmd.Flags().StringVar(&name, "name", "", "image name (info.name), e.g. sda1 (default: SOURCE's base name)")
	cmd.Flags().StringVar(&pieceLen, "piece-length", "16MiB", "piece length, a power of two")
	cmd.Flags().StringArrayVar(&trackers, "tracker", nil, "announce URL (repeatable)")
	return cmd
}

func newTorrentInfoCmd(a *App) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "info FILE.torrent",
		Short:   "Validate an image torrent and show what it holds",
		Example: "  ezio torrent info sda1.torrent\n  ezio torrent info http://10.0.0.1:6969/torrents/sda1.torrent --json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			mi, err := engine.LoadTorrent(cmd.Context(), args[0])
			if err != nil {
				return refused(err)
			}
			sum, _, err := torrentfile.Summarize(mi)
			if err != nil {
				return refused(err)
			}
			if asJSON {
				enc := json.NewEncoder(a.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(sum)
			}
			w := a.Stdout
			fmt.Fprintf(w, "name:          %s\n", format.Name(sum.Name))
			fmt.Fprintf(w, "infohash:      %s\n", sum.InfoHash)
			fmt.Fprintf(w, "piece length:  %s (%d)\n", format.Bytes(sum.PieceLength), sum.PieceLength)
			fmt.Fprintf(w, "pieces:        %d\n", sum.Pieces)
			fmt.Fprintf(w, "extents:       %d\n", sum.Extents)
			fmt.Fprintf(w, "total bytes:   %s (%d)\n", format.Bytes(sum.TotalBytes), sum.TotalBytes)
			fmt.Fprintf(w, "highest end:   %s (%d): the smallest target that fits\n", format.Bytes(sum.HighestEnd), sum.HighestEnd)
			if len(sum.Trackers) == 0 {
				fmt.Fprintf(w, "trackers:      none (deploy with --tracker or --peer)\n")
			}
			for _, t := range sum.Trackers {
				fmt.Fprintf(w, "tracker:       %s\n", format.Name(t))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
