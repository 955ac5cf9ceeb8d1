package tui

import (
	"context"
	"fmt"
	"strings"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/charmbracelet/huh"

	"ezio/disks/diskdeploy"
	"ezio/engine"
)

// verifyQuestion is the Serve form's yes/no for `ezio seed --verify`.
func verifyQuestion(v *bool) huh.Field {
	return huh.NewConfirm().Title("Check the whole source first?").
		Description("yes: hash every piece before serving and refuse a damaged source; no: each piece is checked when first served").
		Affirmative("Yes").Negative("No").Value(v)
}

// verifySource hashes the whole source when the form asked for it, and
// says which pieces are bad.
func verifySource(ctx context.Context, v ServeValues, mi *metainfo.MetaInfo) error {
	if !v.Verify {
		return nil
	}
	r, err := engine.VerifySource(ctx, mi, trimmed(v.Source), 0, nil)
	if err != nil {
		return err
	}
	if len(r.Bad) == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d pieces of %s do not match the torrent: %s", len(r.Bad), r.Pieces, r.Source, firstFive(r.Bad))
}

// verifyDisk hashes every partition of a disk image directory when the
// form asked for it, and says which pieces of which partitions are bad.
func verifyDisk(ctx context.Context, v ServeValues, dir string) error {
	if !v.Verify {
		return nil
	}
	r, err := diskdeploy.Verify(ctx, dir, 0, nil)
	if err != nil {
		return err
	}
	if len(r.Bad) == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d pieces of %s do not match their torrents (%s): %s", len(r.Bad), r.Pieces, dir, r.BadCounts(), firstFive(r.Bad))
}

// firstFive lists the first five bad pieces and how many more there are.
func firstFive[T fmt.Stringer](bad []T) string {
	var list []string
	for i, b := range bad {
		if i == 5 {
			list = append(list, fmt.Sprintf("and %d more", len(bad)-5))
			break
		}
		list = append(list, b.String())
	}
	return strings.Join(list, "; ")
}
