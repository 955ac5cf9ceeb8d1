#!/usr/bin/env bash
# Client memory on a 50 GB-class image: tens of thousands of extents,
# thousands of 16 MiB pieces, against --cache-size.
#
#   bench/bigimage.sh [--size-gib 50] [--extents 30000] [--cache-mib 256] [--stop-gib 4] [--ezio PATH]
#
# The image is made sparse (its extent files are holes: the data does not
# matter here, the piece and extent counts do), so it costs no disk and
# little time to serve. The client deploys into a sparse file and is
# stopped once --stop-gib have been written (every piece written takes
# disk space); its peak RSS (VmHWM) is sampled throughout, start-up (the
# layout of every extent, the piece tables) included. Prints one table row.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
size_gib=50 extents=30000 cache_mib=256 stop_gib=4 ezio=""
while [ $# -gt 0 ]; do
	case "$1" in
	--size-gib) size_gib=$2; shift 2 ;;
	--extents) extents=$2; shift 2 ;;
	--cache-mib) cache_mib=$2; shift 2 ;;
	--stop-gib) stop_gib=$2; shift 2 ;;
	--ezio) ezio=$2; shift 2 ;;
	*) echo "unknown option $1" >&2; exit 2 ;;
	esac
done
bench_work /var/tmp ezio-big
bench_ezio
mkdir -p "$work/img/sda1"
# Sparse extent files at odd offsets with gaps, as partclone names them.
/usr/bin/python3 - "$work/img/sda1" "$size_gib" "$extents" <<'PY'
import os, sys
d, gib, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
per = (gib << 30) // n
off = 1 << 20
for i in range(n):
    ln = per + (i * 4099) % 8192 - 4096
    with open(os.path.join(d, "%032x" % off), "wb") as f:
        f.truncate(ln)
    off += ln + 4096 * (1 + i % 7) + 512
PY
t0=$(date +%s)
"$ezio" torrent create "$work/img/sda1" -o "$work/sda1.torrent" --name sda1 --piece-length 16MiB >/dev/null
pieces=$("$ezio" torrent info "$work/sda1.torrent" 2>/dev/null | awk '/pieces/ {print $2; exit}' || true)
echo "torrent of $extents extents made in $(( $(date +%s) - t0 )) s" >&2
"$ezio" seed "$work/sda1.torrent" "$work/img/sda1" --listen 127.0.0.1:7891 --tracker-listen 127.0.0.1:7979 \
	--log-file "$work/seed.log" >/dev/null 2>&1 &
pids+=($!)
sleep 2
start=$(date +%s.%N)
"$ezio" deploy http://127.0.0.1:7979/torrents/sda1.torrent "$work/target.img" --yes --json \
	--listen 127.0.0.1:7892 --cache-size "$cache_mib" --log-file "$work/deploy.log" >"$work/deploy.json" &
cpid=$!
pids+=($cpid)
peak=0 done_b=0
stop_b=$((stop_gib << 30))
while kill -0 "$cpid" 2>/dev/null; do
	hwm=$(vmhwm "$cpid")
	[ -n "$hwm" ] && [ "$hwm" -gt "$peak" ] && peak=$hwm
	done_b=$(tail -1 "$work/deploy.json" 2>/dev/null | /usr/bin/python3 -c 'import json,sys
try: print(json.load(sys.stdin).get("bytes_done",0))
except Exception: print(0)')
	if [ "$done_b" -ge "$stop_b" ]; then
		kill -INT "$cpid"
		break
	fi
	sleep 0.5
done
wait "$cpid" || true
end=$(date +%s.%N)
printf '| image | extents | pieces | --cache-size | written | peak client RSS | over the cache | time |\n|---|---|---|---|---|---|---|---|\n'
printf '| %d GiB sparse | %d | %s | %d MiB | %d MiB | %d MiB | %d MiB | %.0f s |\n' "$size_gib" "$extents" "${pieces:-?}" "$cache_mib" \
	$((done_b >> 20)) $((peak / 1024)) $((peak / 1024 - cache_mib)) "$(echo "$end - $start" | bc)"
