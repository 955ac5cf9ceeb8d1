package cli

import (
	"encoding/json"

	"github.com/spf13/cobra"

	"ezio/disks"
)

func newDisksCmd(a *App) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "disks",
		Short: "List disks and partitions, and whether ezio may write to them",
		Long: `List block devices (attached loop devices included) with size, model,
filesystems and mount points. The problem column says why ezio refuses to
write to a device: mounted, swap, LVM/RAID member, the system disk, read-only.`,
		Example: "  ezio disks\n  ezio disks --json | jq '.[].path'",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ds, err := disks.List()
			if err != nil {
				return err
			}
			if asJSON {
				if ds == nil {
					ds = []disks.Disk{}
				}
				enc := json.NewEncoder(a.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(ds)
			}
			disks.FormatTable(a.Stdout, ds)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
