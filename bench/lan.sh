#!/bin/bash
# lan.sh — the LAN lab benchmark: ezio vs libtorrent vs udpcast vs unicast.
#
#   sudo bench/lan.sh [--rates 100[,200]] [--clients 1,2,4,8] [--runs 3]
#                     [--piece-mib 1,16] [--methods unicast,ezio,libtorrent,multicast]
#                     [--image-mib 256] [--ezio PATH | --no-build] [--no-md] [lanbench.py options]
#
# Installs what it needs, builds ezio (if main.go builds) into /tmp/ezio-bench/ezio,
# makes the image on tmpfs, runs lanbench.py, writes the results section into
# docs/benchmarks.md, and always tears the namespaces down (also on failure).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
[ "$(id -u)" = 0 ] || { echo "lan.sh: run as root (sudo)" >&2; exit 1; }

"$here/deps.sh"

cmd="sudo bench/$(basename "$0") $*"
args=() ezio="" build=1 md="$repo/docs/benchmarks.md" mode=lan
while [ $# -gt 0 ]; do
    case $1 in
        --ezio) ezio=$2; build=0; shift 2 ;;
        --no-build) build=0; shift ;;
        --no-md) md=""; shift ;;
        --loopback) mode=loopback; shift ;;
        *) args+=("$1"); shift ;;
    esac
done

if [ $build = 1 ] && [ -f "$repo/main.go" ]; then
    mkdir -p /tmp/ezio-bench
    if (cd "$repo" && nice go build -o /tmp/ezio-bench/ezio.new . 2>/tmp/ezio-bench/build.log) &&
       /tmp/ezio-bench/ezio.new --help >/dev/null 2>&1; then
        mv /tmp/ezio-bench/ezio.new /tmp/ezio-bench/ezio
        (cd "$repo" && git rev-parse --short HEAD) > /tmp/ezio-bench/ezio.commit
        ezio=/tmp/ezio-bench/ezio
    else
        echo "lan.sh: ezio does not build or run yet (see /tmp/ezio-bench/build.log): skipping the ezio column" >&2
    fi
fi

cleanup() { "$here/netlab.sh" down || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$mode" = loopback ] && cmd="sudo bench/loopback.sh ${EZB_LOOPBACK_ARGS:-}"
/usr/bin/python3 "$here/lanbench.py" --mode "$mode" --ezio "$ezio" ${md:+--md "$md"} \
    --command "$cmd" "${args[@]}"
