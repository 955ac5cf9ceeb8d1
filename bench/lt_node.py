#!/usr/bin/python3
"""lt_node.py — a python3-libtorrent seeder/client for the ezio benchmarks.

Debian's python3-libtorrent imports only under /usr/bin/python3.

  lt_node.py mktorrent DIR -o OUT.torrent [--piece-mib 16] [--tracker URL]
      v1 torrent of a partclone -T extent dir: name = basename(DIR), files =
      NAME/<hex offset> in offset order (no pad files).
  lt_node.py seed T.torrent SAVE_PARENT --listen IP:PORT
      seed mode (no hashing, writes nothing) from SAVE_PARENT/NAME/...
  lt_node.py get T.torrent SAVE_DIR --listen IP:PORT [--peer IP:PORT]...
      download, then keep seeding until SIGTERM/SIGINT.

Both modes print JSON lines on stdout: {"ev":"listening"}, {"ev":"done","t":...}
once every piece is verified (client), and {"ev":"exit","uploaded":...} last.
Tuned for a closed LAN: no DHT/LSD/UPnP/NAT-PMP, no uTP, TCP only, every peer
unchoked, no tracker (peers are connected directly with connect_peer).
"""
import argparse
import json
import os
import signal
import sys
import time

import libtorrent as lt


def out(**kw):
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


def mktorrent(a):
    d = os.path.abspath(a.dir.rstrip("/"))
    name = os.path.basename(d)
    fs = lt.file_storage()
    names = sorted(n for n in os.listdir(d)
                   if len(n) in (16, 32) and all(c in "0123456789abcdef" for c in n))
    if not names:
        sys.exit("no extent files in %s" % d)
    for n in names:
        fs.add_file(name + "/" + n, os.path.getsize(os.path.join(d, n)))
    ct = lt.create_torrent(fs, a.piece_mib << 20, flags=lt.create_torrent.v1_only)
    if a.tracker:
        ct.add_tracker(a.tracker)
    ct.set_creator("ezio bench lt_node.py")
    lt.set_piece_hashes(ct, os.path.dirname(d))
    with open(a.o, "wb") as f:
        f.write(lt.bencode(ct.generate()))
    ti = lt.torrent_info(a.o)
    assert ti.files().num_files() == len(names), "unexpected pad files"
    out(ev="torrent", path=a.o, infohash=str(ti.info_hash()), pieces=ti.num_pieces(),
        piece_length=ti.piece_length(), files=len(names), bytes=ti.total_size())


def settings(listen):
    s = lt.high_performance_seed()   # large buffers/queues: what a LAN wants
    s.update({
        "listen_interfaces": listen,
        "enable_dht": False, "enable_lsd": False,
        "enable_upnp": False, "enable_natpmp": False,
        "enable_incoming_utp": False, "enable_outgoing_utp": False,
        "enable_incoming_tcp": True, "enable_outgoing_tcp": True,
        "out_enc_policy": 2, "in_enc_policy": 2,   # pe_disabled: no MSE handshakes
        "connections_limit": 500,
        "unchoke_slots_limit": -1,          # a deploy swarm unchokes everyone
        "allow_multiple_connections_per_ip": True,
        "announce_to_all_trackers": False,
        "min_reconnect_time": 1,            # peers start at once: retry refused dials fast
        "peer_connect_timeout": 3,
        "alert_mask": lt.alert.category_t.error_notification | lt.alert.category_t.status_notification,
    })
    return s


def run(a, seeding):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    ses = lt.session(settings(a.listen))
    ti = lt.torrent_info(a.torrent)
    p = lt.add_torrent_params()
    p.ti = ti
    p.save_path = a.save
    p.trackers = []
    flags = p.flags
    flags &= ~lt.torrent_flags.auto_managed
    flags &= ~lt.torrent_flags.paused
    if seeding:
        flags |= lt.torrent_flags.seed_mode
    p.flags = flags
    h = ses.add_torrent(p)
    h.replace_trackers([])
    out(ev="listening", port=ses.listen_port(), pieces=ti.num_pieces())
    peers = [x.rsplit(":", 1) for x in (a.peer or [])]
    done = seeding
    t0 = time.time()
    last_connect = last_verbose = 0.0
    deadline = t0 + a.timeout
    while not stop and time.time() < deadline:
        st = h.status()
        now = time.time()
        # (re)connect to the given peers until we are complete
        if not done and peers and now - last_connect > 1.0:
            for ip, port in peers:
                h.connect_peer((ip, int(port)), 0)
            last_connect = now
        if not done and st.is_seeding:
            done = True
            out(ev="done", t=now, elapsed=now - t0, downloaded=st.total_payload_download)
        if a.verbose and now - last_verbose > 2:
            last_verbose = now
            out(ev="status", progress=st.progress, peers=[
                (pi.ip[0], pi.total_upload, pi.total_download, bool(pi.flags & pi.choked),
                 bool(pi.flags & pi.remote_choked), bool(pi.flags & pi.interesting)) for pi in h.get_peer_info()])
        for al in ses.pop_alerts():
            if al.category() & lt.alert.category_t.error_notification:
                out(ev="error", msg=al.message())
        time.sleep(0.05)
    st = h.status()
    out(ev="exit", uploaded=st.total_payload_upload, downloaded=st.total_payload_download,
        complete=bool(st.is_seeding), timeout=not stop)
    ses.pause()
    return 0 if st.is_seeding else 1


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("mktorrent")
    m.add_argument("dir"); m.add_argument("-o", required=True)
    m.add_argument("--piece-mib", type=int, default=16); m.add_argument("--tracker")
    for n in ("seed", "get"):
        s = sub.add_parser(n)
        s.add_argument("torrent"); s.add_argument("save")
        s.add_argument("--listen", required=True)
        s.add_argument("--peer", action="append")
        s.add_argument("--timeout", type=float, default=3600)
        s.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    if a.cmd == "mktorrent":
        return mktorrent(a)
    return run(a, a.cmd == "seed")


if __name__ == "__main__":
    sys.exit(main())
