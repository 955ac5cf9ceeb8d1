#!/usr/bin/env bash
# Peak memory of a deploying client against --cache-size, on a large image.
#
#   sudo bench/rss.sh [--size-gib 4] [--cache-mib 256] [--ezio PATH]
#
# Makes an image of SIZE GiB (a partclone-style extent directory of random
# data on tmpfs), seeds it on 127.0.0.1 and deploys it into a sparse file,
# sampling the client's VmHWM (peak RSS). Prints one table row; the target
# is peak RSS < cache-size + 100 MiB. Needs about 2 x SIZE of free memory.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
size_gib=4 cache_mib=256 ezio=""
while [ $# -gt 0 ]; do
	case "$1" in
	--size-gib) size_gib=$2; shift 2 ;;
	--cache-mib) cache_mib=$2; shift 2 ;;
	--ezio) ezio=$2; shift 2 ;;
	*) echo "unknown option $1" >&2; exit 2 ;;
	esac
done
bench_work /dev/shm ezio-rss
bench_ezio
mkdir -p "$work/img/sda1"
# Extents of 256 MiB at odd offsets, as partclone names them.
n=$((size_gib * 4))
for i in $(seq 0 $((n - 1))); do
	off=$((i * 300 * 1024 * 1024 + 4096 * i + 512))
	head -c $((256 << 20)) /dev/urandom >"$work/img/sda1/$(printf '%032x' "$off")"
done
"$ezio" torrent create "$work/img/sda1" -o "$work/sda1.torrent" --name sda1 --piece-length 16MiB >/dev/null
"$ezio" seed "$work/sda1.torrent" "$work/img/sda1" --listen 127.0.0.1:7881 --tracker-listen 127.0.0.1:7969 \
	--log-file "$work/seed.log" >/dev/null 2>&1 &
pids+=($!)
sleep 1
start=$(date +%s.%N)
"$ezio" deploy http://127.0.0.1:7969/torrents/sda1.torrent "$work/target.img" --yes --json \
	--listen 127.0.0.1:7882 --cache-size "$cache_mib" --log-file "$work/deploy.log" >"$work/deploy.json" &
cpid=$!
pids+=($cpid)
peak=0
while kill -0 "$cpid" 2>/dev/null; do
	hwm=$(vmhwm "$cpid")
	[ -n "$hwm" ] && [ "$hwm" -gt "$peak" ] && peak=$hwm
	sleep 0.2
done
wait "$cpid"
end=$(date +%s.%N)
result=$(tail -1 "$work/deploy.json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["result"])')
printf '| image | --cache-size | peak client RSS | limit (cache + 100 MiB) | deploy | result |\n|---|---|---|---|---|---|\n'
printf '| %d GiB | %d MiB | %d MiB | %d MiB | %.1f s | %s |\n' "$size_gib" "$cache_mib" $((peak / 1024)) $((cache_mib + 100)) \
	"$(echo "$end - $start" | bc)" "$result"
