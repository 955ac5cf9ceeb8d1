# lib.sh — what the benchmark scripts share. Source it (after `set -euo
# pipefail`); it runs nothing by itself.

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# bench_work BASE PREFIX [nowait]: work is a new directory under BASE, and
# pids the processes to stop; at exit they are stopped and waited for
# (not with nowait: /usr/bin/time ignores SIGTERM, cpu.sh's children run
# under it) and work is removed.
bench_work() {
	work=$(mktemp -d "$1/$2.XXXXXX")
	pids=()
	bench_wait=${3:-wait}
	trap bench_cleanup EXIT
}

bench_cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	if [ "$bench_wait" != nowait ]; then wait 2>/dev/null || true; fi
	rm -rf "$work"
}

# bench_ezio: unless ezio already names a binary (--ezio), build the
# repository's own into $work: a benchmark measures what it builds.
bench_ezio() {
	if [ -z "$ezio" ]; then
		ezio=$work/ezio
		(cd "$bench_dir/.." && PATH=/usr/local/go/bin:$PATH go build -o "$ezio" .)
	fi
}

# vmhwm PID: the process's peak RSS so far, in KiB (0 once it is gone).
vmhwm() {
	awk '/VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0
}

# image_start TOOL OUT KEY=VALUE...: the start of mkimage.sh and mkdisk.sh.
# Refuses to run as anyone but root; ends the script at once when OUT
# already holds the image made with these arguments (its meta.env has
# every KEY=VALUE line); otherwise leaves OUT empty.
image_start() {
	local tool=$1 out=$2 kv made=1
	shift 2
	[ "$(id -u)" = 0 ] || { echo "$tool: run as root" >&2; exit 1; }
	[ -f "$out/meta.env" ] || made=0
	for kv in "$@"; do
		[ "$made" = 1 ] && grep -qx "$kv" "$out/meta.env" || made=0
	done
	if [ "$made" = 1 ]; then
		echo "$tool: reusing $out"
		exit 0
	fi
	rm -rf "$out"
	mkdir -p "$out"
}
