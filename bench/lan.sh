#!/bin/bash
# lan.sh — the LAN lab benchmark: ezio vs libtorrent vs udpcast vs unicast.
#
#   sudo bench/lan.sh [--rates 100[,200]] [--clients 1,2,4,8] [--runs 3]
#                     [--piece-mib 1,16] [--methods unicast,ezio,libtorrent,multicast]
#                     [--image-mib 256] [--ezio PATH | --no-build] [--no-md] [lanbench.py options]
#   sudo bench/lan.sh --scenario NAME [options that override the scenario's]
#
# Scenarios (issue 20's targets; each a standing benchmark, 3 runs unless --runs):
#   even-small  even links, 1 MiB pieces, N = 2, 4, 8 at 100 Mbit/s (256 MiB of files)
#   even-16     N = 16 at 25 Mbit/s (128 MiB of files)
#   even-32     N = 32 at 10 Mbit/s (128 MiB of files)
#   even        the three above
#   disk        whole disk (3 partitions, 4 MiB pieces as ezio capture makes them, 1024 MiB of files), N = 8 at 100 Mbit/s
#   slow        N = 8 at 100 Mbit/s, the last client's port at 25 (a quarter)
#   loss        N = 8 at 100 Mbit/s, the last client drops 2 % of its incoming packets
#   mixed       slow and loss
#   all         every one of them
# Each prints, per run, T/(F/B), the seeder's bytes sent over the image, each
# client's fraction of time below its link rate, uplink idle, ramp-up and
# endgame (lanbench.py, flow.py).
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
args=() ezio="" build=1 md="$repo/docs/benchmarks.md" mode=lan scenario=""
while [ $# -gt 0 ]; do
    case $1 in
        --scenario) scenario=$2; shift 2 ;;
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
if [ -z "$scenario" ]; then
    /usr/bin/python3 "$here/lanbench.py" --mode "$mode" --ezio "$ezio" ${md:+--md "$md"} \
        --command "$cmd" "${args[@]}"
    exit
fi

# scenario_args NAME: the lanbench.py options of one scenario (F/B is the
# median of 3 single copies; the unicast sum column is then N x that).
scenario_args() {
    local common="--runs 3 --unicast-copies 3"
    case $1 in
        even-small) echo "$common --rates 100 --clients 2,4,8 --image-mib 256" ;;
        even-16) echo "$common --rates 25 --clients 16 --image-mib 128" ;;
        even-32) echo "$common --rates 10 --clients 32 --image-mib 128" ;;
        disk) echo "$common --disk --rates 100 --clients 8 --image-mib 1024 --methods unicast,ezio,multicast" ;;
        slow) echo "$common --rates 100 --clients 8 --slow-client 25 --methods unicast,ezio,multicast" ;;
        loss) echo "$common --rates 100 --clients 8 --loss-client 2 --methods unicast,ezio,multicast" ;;
        *) return 1 ;;
    esac
}
case $scenario in
    even) list="even-small even-16 even-32" ;;
    mixed) list="slow loss" ;;
    all) list="even-small even-16 even-32 disk slow loss" ;;
    *) scenario_args "$scenario" >/dev/null || { echo "lan.sh: unknown scenario $scenario" >&2; exit 2; }
       list=$scenario ;;
esac
rc=0
for sc in $list; do
    # the scenario's options first: options given on the command line win
    read -ra sargs <<<"$(scenario_args "$sc")"
    /usr/bin/python3 "$here/lanbench.py" --mode "$mode" --ezio "$ezio" ${md:+--md "$md"} \
        --command "$cmd" --scenario "$sc" "${sargs[@]}" "${args[@]}" || rc=$?
done
exit $rc
