package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"ezio/engine/discover"
)

func newServersCmd(a *App) *cobra.Command {
	var (
		asJSON  bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "servers",
		Short: "List the ezio seeders announcing themselves on this network",
		Long: `Search the LAN for ezio seeders (DNS-SD service _ezio._tcp over multicast
DNS) and list each one's name, address, version and images. A client can
then deploy with "ezio deploy auto TARGET" (the only server and image) or
"ezio deploy auto:NAME TARGET" (the only server offering image NAME).

Exit status 3 when no server answered within --timeout.`,
		Example: "  ezio servers\n  ezio servers --json --timeout 5s",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ss, err := discover.Browse(cmd.Context(), timeout)
			if err != nil {
				return fetchError(err)
			}
			if asJSON {
				if ss == nil {
					ss = []discover.Server{}
				}
				enc := json.NewEncoder(a.Stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(ss); err != nil {
					return err
				}
			} else if len(ss) > 0 {
				tw := tabwriter.NewWriter(a.Stdout, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tURL\tVERSION\tIMAGES")
				for _, s := range ss {
					images := strings.Join(s.Images, ",")
					if s.MoreImages > 0 {
						images += fmt.Sprintf(" (+%d more)", s.MoreImages)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, s.BaseURL, s.Version, images)
				}
				tw.Flush()
			}
			if len(ss) == 0 {
				return &ExitError{Code: ExitUnreachable, Err: discover.ErrNoServer}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().DurationVar(&timeout, "timeout", discover.DefaultTimeout, "how long to listen for answers")
	return cmd
}
