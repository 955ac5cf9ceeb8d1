#!/usr/bin/env python3
"""Poll an EZIO-API daemon's GetTorrentStatus, the way EZIO's status line
does, and print one line per torrent per poll.

With --until-finished it polls until every torrent (or those given with
--hash) reports is_finished, then prints the final state of each as one
JSON object per line prefixed with "FINAL ", and exits 0; on timeout it
exits 3.
"""
import argparse
import json
import sys
import time

import grpc

import ezio_pb2
import ezio_pb2_grpc

STATES = {0: "error", 1: "checking", 2: "metadata", 3: "downloading", 4: "finished", 5: "seeding"}

FIELDS = [
    "hash", "name", "progress", "download_rate", "upload_rate", "active_time", "is_finished",
    "num_peers", "state", "total_done", "total", "num_pieces", "finished_time", "seeding_time",
    "total_payload_download", "total_payload_upload", "is_paused", "save_path", "last_upload",
    "last_download",
]


def as_dict(t):
    return {k: getattr(t, k) for k in FIELDS}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-a", "--address", default="127.0.0.1:50051")
    ap.add_argument("--hash", action="append", default=[], help="only this torrent (repeatable)")
    ap.add_argument("--until-finished", action="store_true")
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--timeout", type=float, default=300)
    args = ap.parse_args()

    deadline = time.time() + args.timeout
    with grpc.insecure_channel(args.address) as ch:
        stub = ezio_pb2_grpc.EZIOStub(ch)
        while True:
            st = stub.GetTorrentStatus(ezio_pb2.UpdateRequest(hashes=args.hash), timeout=10)
            for h in st.hashes:
                t = st.torrents[h]
                print("%-8s %6.2f%% down %9.1f KiB/s up %9.1f KiB/s peers %d %s%s" % (
                    t.name, t.progress * 100, t.download_rate / 1024.0, t.upload_rate / 1024.0,
                    t.num_peers, STATES.get(t.state, str(t.state)), " paused" if t.is_paused else ""))
            sys.stdout.flush()
            done = len(st.hashes) > 0 and all(st.torrents[h].is_finished for h in st.hashes)
            if not args.until_finished or done:
                for h in st.hashes:
                    print("FINAL " + json.dumps(as_dict(st.torrents[h]), sort_keys=True))
                return 0
            if time.time() > deadline:
                print("timed out waiting for every torrent to finish", file=sys.stderr)
                return 3
            time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
