#!/usr/bin/env python3
"""The small verbs of an EZIO-API daemon: pause HASH, resume HASH,
version, shutdown, and ezio's extensions: remove HASH, diag (one line of
key=value). A gRPC error is printed as "CODE: details" on stderr
and the script exits 1.
"""
import argparse
import sys

import grpc

import ezio_pb2
import ezio_pb2_grpc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-a", "--address", default="127.0.0.1:50051")
    ap.add_argument("verb", choices=["pause", "resume", "version", "shutdown", "remove", "diag"])
    ap.add_argument("hash", nargs="?")
    args = ap.parse_args()
    with grpc.insecure_channel(args.address) as ch:
        stub = ezio_pb2_grpc.EZIOStub(ch)
        try:
            if args.verb == "pause":
                stub.PauseTorrent(ezio_pb2.PauseTorrentRequest(hash=args.hash), timeout=30)
            elif args.verb == "resume":
                stub.ResumeTorrent(ezio_pb2.ResumeTorrentRequest(hash=args.hash), timeout=30)
            elif args.verb == "remove":
                stub.RemoveTorrent(ezio_pb2.RemoveTorrentRequest(hash=args.hash), timeout=60)
            elif args.verb == "diag":
                d = stub.GetDiagnostics(ezio_pb2.DiagnosticsRequest(collect_garbage=True), timeout=30)
                print("goroutines=%d open_files=%d rss_bytes=%d heap_inuse_bytes=%d torrents=%d session_torrents=%d" % (
                    d.goroutines, d.open_files, d.rss_bytes, d.heap_inuse_bytes, d.torrents, d.session_torrents))
            elif args.verb == "version":
                print(stub.GetVersion(ezio_pb2.Empty(), timeout=30).version)
            else:
                stub.Shutdown(ezio_pb2.Empty(), timeout=120)
        except grpc.RpcError as e:
            print("%s: %s" % (e.code().name, e.details()), file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
