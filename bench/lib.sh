# lib.sh — what the benchmark scripts share. Source it (after `set -euo
# pipefail`); it runs nothing by itself.

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# bench_work BASE PREFIX: work is a new directory under BASE, and pids the
# processes to stop; at exit both are cleaned up (bench_cleanup_extra, if
# the script defines it, runs first).
bench_work() {
	work=$(mktemp -d "$1/$2.XXXXXX")
	pids=()
	trap bench_cleanup EXIT
}

bench_cleanup() {
	if declare -F bench_cleanup_extra >/dev/null; then bench_cleanup_extra; fi
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
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

# image_made OUT USED NAME: OUT already holds the image that mkimage.sh or
# mkdisk.sh makes with these arguments.
image_made() {
	[ -f "$1/meta.env" ] && grep -qx "USED_MIB=$2" "$1/meta.env" && grep -qx "NAME=$3" "$1/meta.env"
}
