#!/bin/bash
# deps.sh — install what the benchmarks need (Debian packages), if missing.
set -euo pipefail
need=()
command -v udp-sender >/dev/null || need+=(udpcast)
command -v partclone.extfs >/dev/null || need+=(partclone)
command -v socat >/dev/null || need+=(socat)
command -v tc >/dev/null && command -v ss >/dev/null && command -v bridge >/dev/null || need+=(iproute2)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v nft >/dev/null || need+=(nftables)
command -v aria2c >/dev/null || need+=(aria2)
command -v gnuplot >/dev/null || need+=(gnuplot-nox)
command -v sfdisk >/dev/null || need+=(fdisk)
command -v partx >/dev/null || need+=(util-linux)
/usr/bin/python3 -c 'import libtorrent' 2>/dev/null || need+=(python3-libtorrent)
if [ ${#need[@]} -gt 0 ]; then
    echo "deps: installing ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
