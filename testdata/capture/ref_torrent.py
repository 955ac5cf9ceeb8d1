#!/usr/bin/python3
"""Reference conversion of partclone's torrent.info into a v1 torrent.

Usage: /usr/bin/python3 ref_torrent.py TORRENT_INFO NAME INFO_OUT

Builds the torrent with python3-libtorrent (Debian's, libtorrent 2.0.8),
the way partclone_create_torrent does: one file "NAME/<offset as 32 hex
digits>" per extent, in the order listed, 16 MiB pieces, v1 only, and the
piece hashes taken from the sha1: lines. Writes the bencoded info
dictionary to INFO_OUT and prints one JSON object: infohash, pieces, files.

It parses torrent.info on its own so that ezio's Go parser is checked
against an independent reading, not against itself.
"""
import hashlib
import json
import sys

import libtorrent as lt

PIECE_LENGTH = 16 * 1024 * 1024


def parse(path):
    extents, hashes, offset = [], [], None
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            key, _, value = line.partition(":")
            value = value.strip()
            if key == "offset":
                offset = int(value, 16)
            elif key == "length":
                if offset is None:
                    sys.exit(f"{path} line {n}: length without offset")
                extents.append((offset, int(value, 16)))
                offset = None
            elif key == "sha1":
                hashes.append(bytes.fromhex(value))
            elif key not in ("block_size", "blocks_total"):
                sys.exit(f"{path} line {n}: unknown key {key!r}")
    return extents, hashes


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    info_path, name, out = sys.argv[1:]
    extents, hashes = parse(info_path)
    fs = lt.file_storage()
    for offset, length in extents:
        fs.add_file(f"{name}/{offset:032x}", length)
    # v1 only: no v2 merkle trees, no pad files, no file attributes.
    ct = lt.create_torrent(fs, PIECE_LENGTH, flags=lt.create_torrent.v1_only)
    if ct.num_pieces() != len(hashes):
        sys.exit(f"{len(hashes)} sha1 lines for {ct.num_pieces()} pieces")
    for i, h in enumerate(hashes):
        ct.set_hash(i, h)
    info = lt.bencode(ct.generate()[b"info"])
    with open(out, "wb") as f:
        f.write(info)
    print(json.dumps({
        "infohash": hashlib.sha1(info).hexdigest(),
        "pieces": len(hashes),
        "files": fs.num_files(),
    }))


if __name__ == "__main__":
    main()
