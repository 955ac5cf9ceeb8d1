#!/bin/bash
# loopback.sh — the engine's first benchmark: one seeder, one client, unshaped.
#
#   sudo bench/loopback.sh [--runs 3] [--image-mib 1024] [--piece-mib 16,1] [lan.sh options]
#
# Two namespaces on an unshaped veth/bridge (no tc: as fast as loopback, but
# private to this run), a 1 GiB image on tmpfs, ezio and a python3-libtorrent
# seeder/client pair on the same torrent in the same run; prints MB/s and the ratio.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
EZB_LOOPBACK_ARGS="$*" exec "$here/lan.sh" --loopback --rates 0 --clients 1 --methods ezio,libtorrent \
    --image-mib 1024 --piece-mib 16,1 --runs 3 "$@"
