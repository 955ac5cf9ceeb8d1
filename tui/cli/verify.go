package cli

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"ezio/engine"
	"ezio/tui/format"
)

// newTorrentVerifyCmd is `ezio torrent verify`: hash a whole source
// against a torrent before serving it (or after a disk scare).
func newTorrentVerifyCmd(a *App) *cobra.Command {
	var asJSON bool
	var threads int
	cmd := &cobra.Command{
		Use:   "verify FILE.torrent SOURCE",
		Short: "Check that a device, image file or extent directory holds exactly the image",
		Long: `Hash every piece of SOURCE on all cores and compare it with the torrent.
Bad pieces are listed with their disk offset and extent file.

Exit status: 0 every piece matches; 1 some piece does not (or the source
could not be read); 2 refused (bad torrent, missing or too short source).`,
		Example: "  ezio torrent verify sda1.torrent /srv/images/sda1\n  ezio torrent verify sda1.torrent /dev/sdb1 --json",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			mi, err := engine.LoadTorrent(cmd.Context(), args[0])
			if err != nil {
				return refused(err)
			}
			r, err := verifyShowing(cmd.Context(), a, mi, args[1], threads)
			if err != nil {
				return err
			}
			if asJSON {
				out := struct {
					*engine.VerifyResult
					Result string `json:"result"`
				}{r, "ok"}
				if len(r.Bad) > 0 {
					out.Result = "bad"
				}
				enc := json.NewEncoder(a.Stdout)
				if err := enc.Encode(out); err != nil {
					return err
				}
			} else {
				for _, b := range r.Bad {
					fmt.Fprintf(a.Stdout, "bad: %s\n", b)
				}
				fmt.Fprintf(a.Stdout, "%s: %d of %d pieces good, %d bad (%s in %s)\n", r.Source, r.Pieces-len(r.Bad), r.Pieces, len(r.Bad), format.Bytes(r.Bytes), r.Elapsed.Round(10*time.Millisecond))
			}
			if len(r.Bad) > 0 {
				return &ExitError{Code: ExitFailed, Err: fmt.Errorf("%s does not hold the image: %d of %d pieces do not match the torrent", r.Source, len(r.Bad), r.Pieces)}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as one JSON object")
	cmd.Flags().IntVar(&threads, "threads", 0, "hashing threads (default: all cores)")
	return cmd
}
