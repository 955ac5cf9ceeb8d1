#!/bin/bash
# stallrepro.sh — repeat one unshaped seed -> deploy of ezio and report stalls.
#
#   sudo bench/stallrepro.sh [TRIES=5] [PIECE=1MiB] [IMAGE_MIB=1024] [EZIO=/tmp/ezio-bench/ezio]
#
# One seeder (h0) and one client (h1) on an unshaped namespace pair; a try that
# makes no progress for 15 s is a stall: both processes get SIGQUIT (Go
# goroutine dump into their logs) and the logs are kept in /tmp/ezio-bench/stall-N/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tries=${1:-5} piece=${2:-1MiB} mib=${3:-1024} ezio=${4:-/tmp/ezio-bench/ezio}
work=/dev/shm/ezio-bench
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
"$here/deps.sh"
"$here/mkimage.sh" "$work/img$mib" "$mib" >/dev/null
. "$work/img$mib/meta.env"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; "$here/netlab.sh" down || true; rm -f "$work/stall.dev"; }
trap cleanup EXIT
"$here/netlab.sh" up 1 0 >/dev/null
tor=$work/stall-$piece.torrent
"$ezio" torrent create "$work/img$mib/sda1" -o "$tor" --name sda1 --piece-length "$piece" >/dev/null
stalls=0
for t in $(seq 1 "$tries"); do
    out=/tmp/ezio-bench/stall-$t; rm -rf "$out"; mkdir -p "$out"
    ip netns exec ezb-h0 "$ezio" seed "$tor" "$work/img$mib/sda1" --json --listen 10.77.0.1:6881 \
        --tracker-listen 10.77.0.1:6969 >"$out/seeder.log" 2>&1 & sp=$!; pids=($sp)
    for _ in $(seq 100); do ip netns exec ezb-h0 ss -ltnH 'sport = :6969' | grep -q . && break; sleep 0.1; done
    rm -f "$work/stall.dev"; truncate -s "$DEVICE_BYTES" "$work/stall.dev"
    ip netns exec ezb-h1 "$ezio" deploy http://10.77.0.1:6969/torrents/sda1.torrent "$work/stall.dev" \
        --yes --json >"$out/h1.log" 2>&1 & cp=$!; pids+=($cp)
    last="" same=0 result=ok
    for _ in $(seq 600); do                              # at most 300 s per try
        kill -0 "$cp" 2>/dev/null || break
        now=$(grep -o '"bytes_done":[0-9]*' "$out/h1.log" | tail -1 || true)
        if [ "$now" = "$last" ]; then same=$((same + 1)); else same=0; last=$now; fi
        if [ $same -ge 30 ]; then result="STALL at $now"; break; fi
        sleep 0.5
    done
    if [ "$result" != ok ]; then
        stalls=$((stalls + 1)); kill -QUIT "$cp" "$sp" 2>/dev/null || true; sleep 1
    elif kill -0 "$cp" 2>/dev/null; then
        result="still running after 300 s"; stalls=$((stalls + 1))
    else
        wait "$cp" && result="ok ($(tail -1 "$out/h1.log" | grep -o '"elapsed_seconds":[0-9.]*'))" || result="exit $?"
    fi
    kill "$cp" "$sp" 2>/dev/null || true; wait "$cp" "$sp" 2>/dev/null || true
    echo "try $t: $result (logs $out)"
done
echo "stalls: $stalls of $tries"
