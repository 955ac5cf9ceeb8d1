// Command ezio images and deploys disks to many machines over BitTorrent.
package main

import (
	"os"

	"ezio/tui/cli"
)

func main() { os.Exit(cli.Main()) }
