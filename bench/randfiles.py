#!/usr/bin/python3
"""randfiles.py — fill directories with random files of mixed sizes.

    randfiles.py SEED SUBDIRS ROOT BYTES [ROOT BYTES ...]

Writes files of 64 KiB to 8 MiB from /dev/urandom under each ROOT (spread
over SUBDIRS subdirectories d00, d01, ...) until BYTES are written there.
One random generator seeded with SEED picks every size, in the order the
roots are given, so a benchmark image keeps its layout from run to run.
Prints how many files and MiB each ROOT got."""
import os
import random
import sys


def fill(ur, rng, root, want, subdirs):
    done = i = 0
    while done < want:
        size = min(want - done, rng.choice([64, 256, 1024, 4096, 8192]) << 10)
        d = os.path.join(root, 'd%02d' % (i % subdirs))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, 'f%05d' % i), 'wb') as f:
            left = size
            while left:
                b = ur.read(min(left, 1 << 20))
                f.write(b)
                left -= len(b)
        done += size
        i += 1
    return i, done


def main():
    seed, subdirs = int(sys.argv[1]), int(sys.argv[2])
    pairs = sys.argv[3:]
    rng = random.Random(seed)
    with open('/dev/urandom', 'rb') as ur:
        for root, want in zip(pairs[::2], pairs[1::2]):
            n, done = fill(ur, rng, root, int(want), subdirs)
            print('randfiles: wrote %d files, %d MiB in %s' % (n, done >> 20, root))


main()
