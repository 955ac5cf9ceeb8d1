#!/usr/bin/env python3
"""Stop a client daemon the way Clonezilla's leecher does once its work is
done: every finished torrent that has been finished for more than --wait
seconds and has uploaded nothing for --wait seconds (or never) is paused;
when every torrent is finished and paused, ask the daemon to shut down.
Exits 0 after the Shutdown call, 3 on --timeout.
"""
import argparse
import sys
import time

import grpc

import ezio_pb2
import ezio_pb2_grpc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-a", "--address", default="127.0.0.1:50051")
    ap.add_argument("-w", "--wait", type=int, default=15)
    ap.add_argument("--timeout", type=float, default=300)
    args = ap.parse_args()
    deadline = time.time() + args.timeout
    with grpc.insecure_channel(args.address) as ch:
        stub = ezio_pb2_grpc.EZIOStub(ch)
        print("ezio " + stub.GetVersion(ezio_pb2.Empty(), timeout=10).version)
        while time.time() < deadline:
            st = stub.GetTorrentStatus(ezio_pb2.UpdateRequest(), timeout=10)
            for h in st.hashes:
                t = st.torrents[h]
                if t.is_paused or not t.is_finished:
                    continue
                idle = t.last_upload == -1 or t.last_upload > args.wait
                if t.finished_time > args.wait and idle:
                    print("pausing %s: finished %ds ago, last upload %ds ago" % (t.name, t.finished_time, t.last_upload))
                    stub.PauseTorrent(ezio_pb2.PauseTorrentRequest(hash=h), timeout=10)
            if st.hashes and all(st.torrents[h].is_finished and st.torrents[h].is_paused for h in st.hashes):
                stub.Shutdown(ezio_pb2.Empty(), timeout=120)
                print("finished; daemon shut down")
                return 0
            time.sleep(1)
    print("timed out", file=sys.stderr)
    return 3


if __name__ == "__main__":
    sys.exit(main())
