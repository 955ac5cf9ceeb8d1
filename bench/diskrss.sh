#!/bin/bash
# diskrss.sh — peak memory of a client deploying a whole disk, on 127.0.0.1.
#
#   sudo bench/diskrss.sh [--image-mib 1024] [--ezio PATH] [-- DEPLOY-ARGS...]
#
# Makes (or reuses) the 3-partition GPT disk of the LAN benchmark's --disk
# mode with bench/mkdisk.sh (16 MiB pieces, as `ezio capture` makes them;
# 1024 MiB of files: a 1.1 GiB disk in ~70 pieces) under /dev/shm, seeds it
# with `ezio seed IMAGE-DIR` on 127.0.0.1, and deploys it with default
# settings (plus DEPLOY-ARGS) onto a blank loop disk on tmpfs, sampling the
# client's VmHWM (peak RSS) from /proc/PID/status every 0.2 s. Prints one
# table row; the target is <= 256 MiB. Detaches the loop disk it made.
# The client's stderr is kept in /tmp/ezio-bench/diskrss-deploy.err.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
used=1024 ezio="" extra=()
while [ $# -gt 0 ]; do
    case $1 in
    --image-mib) used=$2; shift 2 ;;
    --ezio) ezio=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "diskrss.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "diskrss.sh: run as root" >&2; exit 1; }
if [ -z "$ezio" ]; then
    ezio=/tmp/ezio-bench/ezio-rss
    mkdir -p /tmp/ezio-bench
    (cd "$here/.." && go build -o "$ezio" .)
fi
img=/dev/shm/ezio-bench/diskrss$used
"$here/mkdisk.sh" "$img" "$used" "$ezio" >/dev/null
. "$img/meta.env"
work=$(mktemp -d /dev/shm/ezio-diskrss.XXXXXX)
pids=() loop=""
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "$loop" ] && { partx -d "$loop" 2>/dev/null || true; losetup -d "$loop" 2>/dev/null || true; }
    rm -rf "$work"
}
trap cleanup EXIT
freeport() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
p1=$(freeport) p2=$(freeport) p3=$(freeport)
"$ezio" seed "$img/img/disk" --no-announce --listen "127.0.0.1:$p1" --tracker-listen "127.0.0.1:$p2" \
    --json >"$work/seed.json" 2>"$work/seed.err" &
pids+=($!)
for _ in $(seq 150); do grep -q '"seeding"' "$work/seed.json" 2>/dev/null && break; sleep 0.2; done
truncate -s "$DEVICE_BYTES" "$work/target.img"
loop=$(losetup -f --show "$work/target.img")
start=$(date +%s.%N)
"$ezio" deploy "http://127.0.0.1:$p2/images/disk" "$loop" --yes --json --listen "127.0.0.1:$p3" \
    "${extra[@]}" >"$work/deploy.json" 2>"$work/deploy.err" &
cpid=$!
pids+=($cpid)
peak=0
while kill -0 "$cpid" 2>/dev/null; do
    hwm=$(awk '/VmHWM/ {print $2}' /proc/$cpid/status 2>/dev/null || true)
    [ -n "$hwm" ] && [ "$hwm" -gt "$peak" ] && peak=$hwm
    sleep 0.2
done
rc=0; wait "$cpid" || rc=$?
end=$(date +%s.%N)
cp "$work/deploy.err" /tmp/ezio-bench/diskrss-deploy.err 2>/dev/null || true
result=$(grep '"result"' "$work/deploy.json" | tail -1 | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin).get("result"))' 2>/dev/null || echo "rc=$rc")
printf '| disk | pieces | deploy args | peak client RSS (VmHWM) | target | deploy | result |\n|---|---|---|---|---|---|---|\n'
printf '| %d MiB | 16 MiB | %s | %d MiB | 256 MiB | %.1f s | %s |\n' $((IMAGE_BYTES >> 20)) "${extra[*]:-(defaults)}" \
    $((peak / 1024)) "$(echo "$end - $start" | bc)" "$result"
