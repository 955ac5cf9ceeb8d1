#!/bin/bash
# cpu.sh — CPU per GiB of one seeder and one client, ezio against
# python3-libtorrent, side by side on 127.0.0.1 (no namespaces, no lock).
#
#   sudo bench/cpu.sh [--ezio PATH] [--size-mib 1024] [--piece-mib 1,16] [--runs 3]
#
# Writes SIZE MiB of random bytes on tmpfs as a one-extent partclone-style
# directory (removed at the end), makes one torrent per piece size with
# lt_node.py (ezio computes the same infohash for it), then for each run
# starts an ezio seeder and an ezio client (`deploy ... --seed-after 0`
# into a file), and then a libtorrent seeder and client, on free ports of
# 127.0.0.1. Prints per run and as medians: wall time of the client from
# its start until done, client and seeder CPU (utime+stime from wait4, via
# /usr/bin/time) in seconds per GiB, client peak RSS. Both targets are
# compared with the source afterwards.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
ezio="" size=1024 pieces=1,16 runs=3
while [ $# -gt 0 ]; do
    case $1 in
    --ezio) ezio=$2; shift 2 ;;
    --size-mib) size=$2; shift 2 ;;
    --piece-mib) pieces=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    *) echo "cpu.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
LT=$here/lt_node.py
bench_work /dev/shm ezio-cpu nowait
bench_ezio
mkdir -p "$work/src/sda1"
ext=$work/src/sda1/00000000000000000000000000000000
head -c "$((size << 20))" /dev/urandom >"$ext"
for p in ${pieces//,/ }; do
    /usr/bin/python3 "$LT" mktorrent "$work/src/sda1" -o "$work/p$p.torrent" --piece-mib "$p" >/dev/null
done
gib=$(echo "$size / 1024" | bc -l)

freeport() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
cpu() { awk '{print $1 + $2}' "$1"; }     # utime stime [rss] -> seconds
rss() { awk '{print int($3 / 1024)}' "$1"; }
# the child of /usr/bin/time (time ignores SIGINT/SIGTERM itself)
child() { pgrep -P "$1" | head -1; }

run_ezio() { # torrent -> "wall clientcpu seedercpu rssMiB"
    local tor=$1 p1 p2 p3 sp t0 t1
    p1=$(freeport); p2=$(freeport); p3=$(freeport)
    rm -f "$work/tgt.img" "$work/tgt.img.ezio-resume"
    /usr/bin/time -f "%U %S" -o "$work/es.time" "$ezio" seed "$tor" "$work/src/sda1" \
        --listen "127.0.0.1:$p1" --tracker-listen "127.0.0.1:$p2" --no-announce --no-tracker >"$work/es.log" 2>&1 &
    sp=$!; pids+=("$sp")
    sleep 1
    t0=$(now)
    /usr/bin/time -f "%U %S %M" -o "$work/ec.time" "$ezio" deploy "$tor" "$work/tgt.img" \
        --seeder "127.0.0.1:$p1" --listen "127.0.0.1:$p3" --seed-after 0 --yes >"$work/ec.log" 2>&1
    t1=$(now)
    kill -INT "$(child $sp)"; wait "$sp" || true
    cmp -s -n "$((size << 20))" "$ext" "$work/tgt.img" || { echo "cpu.sh: ezio target differs from the source" >&2; exit 1; }
    echo "$(echo "$t1 - $t0" | bc -l) $(cpu "$work/ec.time") $(cpu "$work/es.time") $(rss "$work/ec.time")"
}

run_lt() {
    local tor=$1 p1 p2 sp cp t0 t1
    p1=$(freeport); p2=$(freeport)
    rm -rf "$work/ltout"; mkdir "$work/ltout"
    /usr/bin/time -f "%U %S" -o "$work/ls.time" /usr/bin/python3 "$LT" seed "$tor" "$work/src" --listen "127.0.0.1:$p1" >"$work/ls.log" 2>&1 &
    sp=$!; pids+=("$sp")
    sleep 1.5
    t0=$(now)
    /usr/bin/time -f "%U %S %M" -o "$work/lc.time" /usr/bin/python3 "$LT" get "$tor" "$work/ltout" \
        --listen "127.0.0.1:$p2" --peer "127.0.0.1:$p1" >"$work/lc.log" 2>&1 &
    cp=$!; pids+=("$cp")
    for _ in $(seq 3000); do grep -q '"done"' "$work/lc.log" && break; sleep 0.1; done
    t1=$(now)
    grep -q '"done"' "$work/lc.log" || { echo "cpu.sh: libtorrent client never finished" >&2; exit 1; }
    kill -TERM "$(child $cp)"; wait "$cp" || true
    kill -TERM "$(child $sp)"; wait "$sp" || true
    cmp -s "$ext" "$work/ltout/sda1/$(basename "$ext")" || { echo "cpu.sh: libtorrent copy differs from the source" >&2; exit 1; }
    echo "$(echo "$t1 - $t0" | bc -l) $(cpu "$work/lc.time") $(cpu "$work/ls.time") $(rss "$work/lc.time")"
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
col() { awk -v c="$2" '{print $c}' "$1" | median; }

echo "$size MiB on tmpfs, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); ezio $("$ezio" version 2>/dev/null | head -1)"
printf '%-6s %-5s %4s %8s %14s %14s %8s\n' piece tool run wall "client s/GiB" "seeder s/GiB" "RSS MiB"
for p in ${pieces//,/ }; do
    : >"$work/ez.$p"; : >"$work/lt.$p"
    for r in $(seq "$runs"); do
        run_ezio "$work/p$p.torrent" >>"$work/ez.$p"
        run_lt "$work/p$p.torrent" >>"$work/lt.$p"
        for t in ez lt; do
            read -r w c s m < <(tail -1 "$work/$t.$p")
            printf '%-6s %-5s %4d %7.2fs %14.2f %14.2f %8d\n' "${p}MiB" "$t" "$r" "$w" \
                "$(echo "$c / $gib" | bc -l)" "$(echo "$s / $gib" | bc -l)" "$m"
        done
    done
    for t in ez lt; do
        printf '%-6s %-5s %4s %7.2fs %14.2f %14.2f %8d\n' "${p}MiB" "$t" med "$(col "$work/$t.$p" 1)" \
            "$(echo "$(col "$work/$t.$p" 2) / $gib" | bc -l)" "$(echo "$(col "$work/$t.$p" 3) / $gib" | bc -l)" "$(col "$work/$t.$p" 4)"
    done
done
