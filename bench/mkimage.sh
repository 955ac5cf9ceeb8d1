#!/bin/bash
# mkimage.sh — make a partclone-captured ext4 image for the benchmarks.
#
#   bench/mkimage.sh OUTDIR USED_MIB [NAME]
#
# Builds, all on tmpfs: a sparse file of ~1.5x USED_MIB as a loop device,
# mkfs.ext4, USED_MIB of files from /dev/urandom (mixed sizes), unmount, then
#   partclone.extfs -c -T -s LOOP -O OUTDIR/NAME/ --buffer_size 16777216
# which leaves extent files named by 32-hex-digit offsets plus torrent.info.
# Also writes OUTDIR/NAME.concat (the extents concatenated in offset order:
# the bytes that unicast and multicast copies send) and OUTDIR/meta.env.
# Reuses an existing OUTDIR whose meta.env matches.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

out=${1:?OUTDIR}; used=${2:?USED_MIB}; name=${3:-sda1}
image_start mkimage "$out" "USED_MIB=$used" "NAME=$name"
dev_mib=$(( used * 3 / 2 + 64 ))
work=$(mktemp -d "$out/.work.XXXX")
loop="" mnt="$work/mnt"
cleanup() {
    mountpoint -q "$mnt" 2>/dev/null && umount "$mnt" || true
    [ -n "$loop" ] && losetup -d "$loop" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

truncate -s "${dev_mib}M" "$work/dev.img"
loop=$(losetup -f --show "$work/dev.img")
mkfs.ext4 -q -F -L ezbench "$loop"
mkdir -p "$mnt"; mount "$loop" "$mnt"

# Files of mixed sizes (64 KiB .. 8 MiB) until USED_MIB is written; a fixed
# seed keeps the layout the same from one run to the next.
/usr/bin/python3 "$bench_dir/randfiles.py" 7 16 "$mnt" $(( used << 20 ))
sync; umount "$mnt"

mkdir -p "$out/$name"
partclone.extfs -c -T -s "$loop" -O "$out/$name/" --buffer_size 16777216 -L "$work/partclone.log" >/dev/null 2>&1 \
    || { tail -20 "$work/partclone.log" >&2; exit 1; }
# Extents concatenated in offset order (names are fixed-width hex: sort = offset order).
( cd "$out/$name" && ls | grep -E '^[0-9a-f]{16,32}$' | sort | xargs cat ) > "$out/$name.concat"
nfiles=$(ls "$out/$name" | grep -cE '^[0-9a-f]{16,32}$')
cat > "$out/meta.env" <<EOF
USED_MIB=$used
NAME=$name
DEVICE_BYTES=$(( dev_mib << 20 ))
IMAGE_BYTES=$(stat -c %s "$out/$name.concat")
EXTENTS=$nfiles
EOF
cat "$out/meta.env"
