#!/usr/bin/env python3
"""Hand one torrent to an EZIO-API daemon, with the options of EZIO's
add utility (-S seeding mode, -c connections, -u upload slots).

Usage: ezio_add.py [-a ADDR] [-S] [-s] [-c N] [-u N] TORRENT PATH
Needs ezio_pb2 / ezio_pb2_grpc (generated from ezio.proto) on PYTHONPATH.
"""
import argparse
import sys

import grpc

import ezio_pb2
import ezio_pb2_grpc


def main():
    ap = argparse.ArgumentParser(description="add a torrent to an ezio daemon")
    ap.add_argument("torrent", help=".torrent file")
    ap.add_argument("path", help="disk, partition, image file, or (daemon -F) image directory")
    ap.add_argument("-a", "--address", default="127.0.0.1:50051", help="gRPC address (host:port or unix:/path)")
    ap.add_argument("-S", "--seeding", action="store_true", help="the data is already at PATH: serve it")
    ap.add_argument("-s", "--sequential", action="store_true", help="ask for sequential download")
    ap.add_argument("-c", "--connections", type=int, default=3, help="max connections")
    ap.add_argument("-u", "--uploads", type=int, default=2, help="max upload slots")
    args = ap.parse_args()

    with open(args.torrent, "rb") as f:
        body = f.read()
    req = ezio_pb2.AddRequest(
        torrent=body,
        save_path=args.path,
        seeding_mode=args.seeding,
        max_uploads=args.uploads,
        max_connections=args.connections,
        sequential_download=args.sequential,
    )
    # Torrents of partclone images list every extent: allow big messages.
    opts = [("grpc.max_send_message_length", 256 << 20), ("grpc.max_receive_message_length", 256 << 20)]
    with grpc.insecure_channel(args.address, options=opts) as ch:
        stub = ezio_pb2_grpc.EZIOStub(ch)
        try:
            res = stub.AddTorrent(req, timeout=120)
        except grpc.RpcError as e:
            print("AddTorrent failed: %s: %s" % (e.code().name, e.details()), file=sys.stderr)
            return 1
    print("added %s -> %s (result %s)" % (args.torrent, args.path, res.result))
    return 0 if res.result else 1


if __name__ == "__main__":
    sys.exit(main())
