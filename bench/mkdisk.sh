#!/bin/bash
# mkdisk.sh — a whole-disk image for the benchmarks: a GPT loop disk with three
# ext4 partitions full of random files, captured with `ezio capture`.
#
#   bench/mkdisk.sh OUTDIR USED_MIB EZIO [NAME]
#
# All on tmpfs: a sparse disk file of ~1.6x USED_MIB + 64 MiB, GPT with three
# partitions (3/8, 2/8, 3/8 of the space), each `mkfs.ext4 -d` from a directory
# holding its share of USED_MIB in random files (fixed seed), then
#   ezio capture LOOP OUTDIR/img --name NAME
# Also writes OUTDIR/NAME.concat (every data file of the image directory
# concatenated: what unicast and multicast send), OUTDIR/disk.img (the
# source disk, kept to check the clients' disks against) and OUTDIR/meta.env.
# Reuses an existing OUTDIR whose meta.env matches.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

out=${1:?OUTDIR}; used=${2:?USED_MIB}; ezio=${3:?EZIO}; name=${4:-disk}
piece=${PIECE_MIB:-4}    # ezio capture --piece-size (its default for a whole disk; 16: partclone's own hashes)
image_start mkdisk "$out" "USED_MIB=$used" "NAME=$name" "PIECE_MIB=$piece"
disk_mib=$(( used * 8 / 5 + 64 ))
work=$(mktemp -d "$out/.work.XXXX")
loop=""
cleanup() {
    [ -n "$loop" ] && { partx -d "$loop" 2>/dev/null || true; losetup -d "$loop" 2>/dev/null || true; }
    rm -rf "$work"
}
trap cleanup EXIT

truncate -s "${disk_mib}M" "$out/disk.img"
loop=$(losetup -f --show "$out/disk.img")
p1=$(( (disk_mib - 4) * 3 / 8 )) p2=$(( (disk_mib - 4) * 2 / 8 ))
sfdisk -q --no-reread --no-tell-kernel "$loop" <<EOF
label: gpt
start=2048, size=${p1}MiB, type=linux
size=${p2}MiB, type=linux
type=linux
EOF
partx -a "$loop"        # this kernel parses no partition tables by itself

# Each partition's files: 3/8, 2/8, 3/8 of USED_MIB, mixed sizes, fixed seed.
b=$(( used << 20 ))
/usr/bin/python3 "$bench_dir/randfiles.py" 11 8 "$work/p1" $(( b * 3 / 8 )) "$work/p2" $(( b * 2 / 8 )) "$work/p3" $(( b * 3 / 8 )) >/dev/null
for p in 1 2 3; do
    mkfs.ext4 -q -F -L "ezb$p" -d "$work/p$p" "${loop}p$p"
done
rm -rf "$work"/p[123]
"$ezio" capture "$loop" "$out/img" --name "$name" --piece-size "$piece" >"$out/capture.log" 2>&1 \
    || { tail -20 "$out/capture.log" >&2; exit 1; }
partx -d "$loop" 2>/dev/null || true
losetup -d "$loop"; loop=""

# Every partition's extent files, in the image directory's order: the bytes a
# plain copy of the image sends.
( cd "$out/img/$name" && find . -mindepth 2 -type f | grep -E '/[0-9a-f]{16,32}$' | sort | xargs cat ) > "$out/$name.concat"
cat > "$out/meta.env" <<EOF
USED_MIB=$used
NAME=$name
PIECE_MIB=$piece
DISK=1
DEVICE_BYTES=$(( disk_mib << 20 ))
IMAGE_BYTES=$(stat -c %s "$out/$name.concat")
EXTENTS=$(cd "$out/img/$name" && find . -mindepth 2 -type f | grep -cE '/[0-9a-f]{16,32}$')
EOF
cat "$out/meta.env"
ls "$out/img/$name"
