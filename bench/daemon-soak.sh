#!/bin/bash
# The long daemon soak: two `ezio daemon` processes (seeder and client)
# handed 500 add/deploy/remove cycles over gRPC (engine/daemon
# TestDaemonSoak; CI runs 40). Prints cycles, time per cycle and each
# daemon's goroutines, fds, RSS and heap at start, after the warm-up and
# at the end.
#   bash bench/daemon-soak.sh [--cycles N]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
cycles=500
while [ $# -gt 0 ]; do
	case "$1" in
	--cycles) cycles=$2; shift 2 ;;
	--cycles=*) cycles=${1#--cycles=}; shift ;;
	*) echo "usage: $0 [--cycles N]" >&2; exit 2 ;;
	esac
done
EZIO_DAEMON_SOAK_CYCLES=$cycles go test -count=1 -p 1 -timeout 90m -v -run '^TestDaemonSoak$' ./engine/daemon/ | grep -E 'soak_test|^(---|ok|FAIL)'
