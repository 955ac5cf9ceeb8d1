#!/bin/bash
# round2.sh — the issue-14 benchmark set, one lan.sh/loopback.sh run after
# the other, each under the lab's lock (the namespaces have fixed names):
#
#   sudo bench/round2.sh [EZIO] [STEP...]
#
# EZIO: the binary to measure (with its commit in EZIO.commit when that
# file exists); without it lan.sh builds this checkout. Nothing outside the
# repository is ever picked up by itself. STEPs (default all, in this order):
#   main     N = 1,2,4,8 at 100 Mbit/s, 3 runs, ezio/libtorrent/multicast/unicast
#            (and $EZIO_MAIN as ezio-b when EZIO is given and EZIO_MAIN is set)
#   stagger  N = 8 started 3 s apart, 3 runs, ezio (default flags) and unicast
#   large    N = 8, 16 MiB pieces, 1086 MiB image (68 pieces), 200 Mbit/s, 1 run
#   disk     whole-disk image (3 partitions), N = 4, 100 Mbit/s, 1 run
#   n16      N = 16 at 25 Mbit/s, 128 MiB image, 1 run
#   n32      N = 32 at 10 Mbit/s, 64 MiB image, 1 run (no multicast: see docs)
#   loopback 1 GiB, 16 and 1 MiB pieces, 3 runs
#   ab       (not in the default set) N = 8, 3 runs: the checkout's build as ezio
#            and EZIO as ezio-b, side by side
# R2_RUNS (default 3) sets the runs of stagger and loopback, R2_N16_MIB
# (default 128) the image of n16, for a set that must be shorter.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
lock=/tmp/ezio-bench.lock
src=${1:-}
[ -n "$src" ] && [ -x "$src" ] && shift || src=""
ez=()
# The binary is copied before every step, so a rebuild meanwhile never
# mixes builds in one run; each section in docs/benchmarks.md names the
# commit it measured.
pick() {
    local b=$src
    ez=()
    [ -n "$b" ] || return 0
    mkdir -p /tmp/ezio-bench-round2
    cp "$b" /tmp/ezio-bench-round2/ezio
    if [ -f "$b.commit" ]; then cp "$b.commit" /tmp/ezio-bench-round2/ezio.commit
    else rm -f /tmp/ezio-bench-round2/ezio.commit; fi
    ez=(--ezio /tmp/ezio-bench-round2/ezio)
}
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(main stagger large disk n16 loopback n32)
run() { echo "round2: $(date -u +%H:%M:%S) $*" >&2; flock "$lock" "$@" || echo "round2: failed: $*" >&2; }
for s in "${steps[@]}"; do
    pick
    case $s in
        main) # with EZIO as ezio, the build in $EZIO_MAIN (when set) runs beside it as ezio-b
              b=()
              main_bin=${EZIO_MAIN:-}
              [ ${#ez[@]} -gt 0 ] && [ -n "$main_bin" ] && [ -x "$main_bin" ] && b=(--ezio-b "$main_bin")
              run "$here/lan.sh" "${ez[@]}" "${b[@]}" --rates 100 --clients 1,2,4,8 --runs 3 --unicast-copies 1 ;;
        stagger) run "$here/lan.sh" "${ez[@]}" --rates 100 --clients 8 --runs "${R2_RUNS:-3}" --stagger 3 --methods unicast,ezio \
                     --unicast-copies 1 ;;
        large) free -g >&2
               run "$here/lan.sh" "${ez[@]}" --rates 200 --clients 8 --runs 1 --piece-mib 16 --image-mib 1024 \
                   --unicast-copies 1
               rm -rf /dev/shm/ezio-bench/img1024 /dev/shm/ezio-bench/run ;;
        disk) run "$here/lan.sh" "${ez[@]}" --disk --rates 100 --clients 4 --runs 1 --methods unicast,ezio,multicast \
                  --unicast-copies 1 ;;
        n16) run "$here/lan.sh" "${ez[@]}" --rates 25 --clients 16 --runs 1 --image-mib "${R2_N16_MIB:-128}" --unicast-copies 1 ;;
        n32) run "$here/lan.sh" "${ez[@]}" --rates 10 --clients 32 --runs 1 --image-mib 64 --unicast-copies 1 \
                 --methods unicast,ezio,libtorrent ;;
        loopback) run "$here/loopback.sh" "${ez[@]}" --runs "${R2_RUNS:-3}" ;;
        ab) # this checkout's build (lan.sh builds it into /tmp/ezio-bench/ezio) vs EZIO, same runs
            if [ ${#ez[@]} -eq 0 ]; then echo "round2: ab: give the build to compare as EZIO" >&2; continue; fi
            run "$here/lan.sh" --rates 100 --clients 8 --runs 3 --methods unicast,ezio,ezio-b --unicast-copies 1 \
                --ezio-b /tmp/ezio-bench-round2/ezio ;;
        *) echo "round2: unknown step $s" >&2 ;;
    esac
done
