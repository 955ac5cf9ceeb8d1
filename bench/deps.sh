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
command -v sfdisk >/dev/null || need+=(fdisk)
# ezio capture of a whole disk (--scenario disk) saves the GPT with sgdisk
command -v sgdisk >/dev/null || need+=(gdisk)
command -v partx >/dev/null || need+=(util-linux)
/usr/bin/python3 -c 'import libtorrent' 2>/dev/null || need+=(python3-libtorrent)
if [ ${#need[@]} -gt 0 ]; then
    echo "deps: installing ${need[*]}" >&2
    # wait (bounded) for another apt/dpkg to finish instead of failing at once
    apt-get -o DPkg::Lock::Timeout=900 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq "${need[@]}" >/dev/null
fi
# gnuplot only draws the link plots: a benchmark runs without it (no plots)
if ! command -v gnuplot >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=20 install -y -qq gnuplot-nox >/dev/null 2>&1 ||
        echo "deps: gnuplot-nox not installed (dpkg busy?): no link plots this time" >&2
fi
