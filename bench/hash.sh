#!/bin/bash
# hash.sh — `ezio torrent create` on a raw image against one sha1sum.
#
#   bench/hash.sh [--ezio PATH] [--size-mib 2048] [--runs 3] [--piece-mib 16,1]
#
# Writes a file of random bytes on tmpfs (/dev/shm, removed at the end),
# then times, on that same file, `sha1sum FILE` and
# `ezio torrent create FILE --piece-length P` for each piece size, RUNS
# times each in turn, and prints the median wall times, MB/s and the ratio
# ezio/sha1sum throughput. Both read from the page cache, so this is the
# hashing pipeline's speed, not a disk's.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ezio="" size=2048 runs=3 pieces=16,1
while [ $# -gt 0 ]; do
    case $1 in
    --ezio) ezio=$2; shift 2 ;;
    --size-mib) size=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --piece-mib) pieces=$2; shift 2 ;;
    *) echo "hash.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
work=$(mktemp -d /dev/shm/ezio-hash.XXXXXX)
trap 'rm -rf "$work"' EXIT
if [ -z "$ezio" ]; then
    ezio=$work/ezio
    (cd "$here/.." && go build -o "$ezio" .)
fi
img=$work/img.bin
head -c "$((size << 20))" /dev/urandom >"$img"

# wall seconds of one command, output discarded
wall() {
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >/dev/null
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc -l
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A times
for r in $(seq "$runs"); do
    times[sha1sum]+="$(wall sha1sum "$img") "
    for p in ${pieces//,/ }; do
        times[$p]+="$(wall "$ezio" torrent create "$img" -o "$work/t.torrent" --piece-length "${p}MiB") "
    done
done

bytes=$((size << 20))
med() { tr ' ' '\n' <<<"${times[$1]}" | grep . | median; }
s=$(med sha1sum)
echo "file: $size MiB on tmpfs, $(nproc) cores, $runs runs each (medians)"
printf '%-28s %7.2f s %8.0f MB/s\n' "sha1sum" "$s" "$(echo "$bytes / $s / 1000000" | bc -l)"
for p in ${pieces//,/ }; do
    e=$(med "$p")
    printf '%-28s %7.2f s %8.0f MB/s  %.2f x sha1sum\n' "ezio torrent create ${p} MiB" "$e" \
        "$(echo "$bytes / $e / 1000000" | bc -l)" "$(echo "$s / $e" | bc -l)"
done
