#!/bin/bash
# The long session soak: one client session handed 500 deploys in turn
# (engine.TestSessionSoak; CI runs 60). Prints cycles, time per cycle and
# goroutines/fds/heap after the warm-up and at the end.
#   bash bench/soak.sh [CYCLES]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
EZIO_SOAK_CYCLES=${1:-500} go test -count=1 -p 1 -timeout 60m -v -run '^TestSessionSoak$' ./engine/ | grep -E 'soak_test|^(---|ok|FAIL)'
