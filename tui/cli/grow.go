package cli

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/spf13/cobra"

	"ezio/disks/diskimage"
)

// growFlag adds --grow [PART] to a deploy command: bare, the last
// partition; --grow=PART or --grow PART, the one named.
func growFlag(cmd *cobra.Command, grow *string) {
	cmd.Flags().StringVar(grow, "grow", "", "whole-disk images: after every piece is verified, grow the last partition (or --grow PART, by number or name) and its filesystem to fill a larger disk")
	cmd.Flags().Lookup("grow").NoOptDefVal = diskimage.GrowLast
}

// partitionArg is what `--grow PART` names: a number, or a partition's
// kernel name (sda3, nvme0n1p3, loop0p3).
var partitionArg = regexp.MustCompile(`^(\d+|(/dev/)?(sd|vd|hd|xvd)[a-z]+\d+|(/dev/)?(nvme\d+n\d+|mmcblk\d+|loop\d+|md\d+)p\d+)$`)

// growArgs takes the PART of `--grow PART` out of a deploy's arguments:
// a flag with an optional value leaves it among them.
func growArgs(cmd *cobra.Command, args []string, grow *string) ([]string, error) {
	if len(args) != 3 {
		return args, nil
	}
	if !cmd.Flags().Changed("grow") || *grow != diskimage.GrowLast {
		return nil, refused(fmt.Errorf("accepts 2 arg(s), received 3 (see ezio %s --help)", cmd.Name()))
	}
	at := -1
	for i, a := range args {
		if partitionArg.MatchString(a) {
			if at >= 0 {
				at = -2
				break
			}
			at = i
		}
	}
	if at < 0 {
		return nil, refused(errors.New("three arguments with --grow: write the partition to grow as --grow=PART"))
	}
	*grow = args[at]
	return append(append([]string{}, args[:at]...), args[at+1:]...), nil
}
