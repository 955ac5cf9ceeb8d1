#!/usr/bin/python3
"""lanbench.py — the orchestrator behind bench/lan.sh and bench/loopback.sh.

Runs every method on the namespace LAN made by netlab.sh and measures, per run:
the wall time until every client holds a verified, byte-identical image; the
bytes sent by the seeder's interface (h0 eth0 tx counter, tool-independent);
total CPU busy % of the machine from /proc/stat over the run; utime+stime of
the seeder and of each client, and each client's peak RSS (wait4 rusage).

Methods: unicast (socat, one TCP stream per client in turn), multicast
(udpcast), libtorrent (lt_node.py), ezio (ezio seed / ezio deploy).
Run it through lan.sh / loopback.sh (they install packages and clean up).
"""
import argparse
import datetime
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flow  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
NETLAB = os.path.join(HERE, "netlab.sh")
LT_NODE = os.path.join(HERE, "lt_node.py")
PY = "/usr/bin/python3"
UNICAST_COPIES = 0  # --unicast-copies
SUBNET = "10.77.0"
PFX = os.environ.get("EZB_PREFIX", "ezb")
BT_PORT, TRACKER_PORT, TCP_PORT = 6881, 6969, 7000


def log(*a):
    print("[%s]" % time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


def ip_of(i):
    return "%s.%d" % (SUBNET, i + 1)


def ns_of(i):
    return "%s-h%d" % (PFX, i)


# ---------------------------------------------------------------- processes

class Proc:
    """A command in host i's namespace. `ip netns exec` execs the command, so
    the pid is the program's own: wait4 gives its rusage (CPU, peak RSS)."""
    live = {}

    def __init__(self, host, cmd, logpath, stdin=subprocess.DEVNULL):
        self.host, self.cmd, self.logpath = host, cmd, logpath
        self.lines = []             # (time, line) from stdout
        self.rc = None
        self.rusage = None
        self.t_start = time.time()
        self.t_exit = None
        self._log = open(logpath, "w")
        self._log.write("# %s\n" % " ".join(cmd)); self._log.flush()
        self.p = subprocess.Popen(["ip", "netns", "exec", ns_of(host)] + cmd,
                                  stdin=stdin, stdout=subprocess.PIPE, stderr=self._log,
                                  start_new_session=True)
        Proc.live[self.p.pid] = self
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    @property
    def pid(self):
        return self.p.pid

    def _read(self):
        for raw in self.p.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append((time.time(), line))
            try:
                self._log.write(line + "\n"); self._log.flush()
            except ValueError:
                pass

    def poll(self):
        if self.rc is not None:
            return self.rc
        try:
            pid, status, ru = os.wait4(self.p.pid, os.WNOHANG)
        except ChildProcessError:
            self.rc = self.p.returncode if self.p.returncode is not None else -1
            self.t_exit = self.t_exit or time.time()
            Proc.live.pop(self.p.pid, None)
            return self.rc
        if pid == 0:
            return None
        self.t_exit = time.time()
        self.rc = os.waitstatus_to_exitcode(status)
        self.p.returncode = self.rc
        self.rusage = ru
        Proc.live.pop(self.p.pid, None)
        self._t.join(2)
        return self.rc

    def signal(self, sig):
        if self.poll() is None:
            try:
                os.kill(self.p.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, grace=10.0):
        """SIGTERM, then SIGKILL after `grace` s; returns the exit code."""
        self.signal(signal.SIGTERM)
        end = time.time() + grace
        while self.poll() is None and time.time() < end:
            time.sleep(0.05)
        if self.poll() is None:
            self.signal(signal.SIGKILL)
            end = time.time() + 5
            while self.poll() is None and time.time() < end:
                time.sleep(0.05)
        self._log.close()
        return self.rc

    def cpu_s(self):
        return (self.rusage.ru_utime + self.rusage.ru_stime) if self.rusage else None

    def maxrss_mib(self):
        return self.rusage.ru_maxrss / 1024.0 if self.rusage else None

    def json_lines(self):
        for t, line in list(self.lines):
            if line.startswith("{"):
                try:
                    yield t, json.loads(line)
                except ValueError:
                    pass

    @classmethod
    def kill_all(cls):
        for p in list(cls.live.values()):
            p.stop(grace=3)


def wait_all(procs, done, deadline, step=0.05):
    """Poll until done(p) holds for every p or the deadline passes."""
    while time.time() < deadline:
        for p in procs:
            p.poll()
        if all(done(p) for p in procs):
            return True
        time.sleep(step)
    return False


def wait_listen(host, port, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        out = subprocess.run(["ip", "netns", "exec", ns_of(host), "ss", "-ltnH", "sport = :%d" % port],
                             capture_output=True, text=True).stdout
        if out.strip():
            return True
        time.sleep(0.05)
    return False


# ---------------------------------------------------------------- counters

def cpu_times():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v[:8]), idle


def busy_pct(a, b):
    dt, di = b[0] - a[0], b[1] - a[1]
    return 100.0 * (dt - di) / dt if dt else 0.0


def tx_bytes(host=0, dev="eth0"):
    j = json.loads(subprocess.run(["ip", "-n", ns_of(host), "-j", "-s", "link", "show", "dev", dev],
                                  capture_output=True, text=True, check=True).stdout)
    return j[0]["stats64"]["tx"]["bytes"]


class LinkRec:
    """Every host's eth0 rx/tx byte counters every `step` s, for the whole
    run of one method. One sleeping process per namespace (started once per
    LAN) lets a single thread here read /proc/PID/net/dev, which shows that
    process's network namespace: no process per sample."""
    anchors = {}                    # host -> Popen of `sleep` inside its namespace

    @classmethod
    def anchor(cls, n):
        cls.release()
        for i in range(n + 1):
            cls.anchors[i] = subprocess.Popen(["ip", "netns", "exec", ns_of(i), "sleep", "86400"],
                                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                              start_new_session=True)

    @classmethod
    def release(cls):
        for p in cls.anchors.values():
            if p.poll() is None:
                p.kill()
            p.wait()
        cls.anchors = {}

    def __init__(self, n, path, step=0.1):
        self.n, self.path, self.step = n, path, step
        self.rows = []              # (t, host, rx, tx)
        self._stop = threading.Event()
        self._fds = {}
        for i in range(n + 1):
            p = LinkRec.anchors.get(i)
            if p is not None and p.poll() is None:
                try:
                    self._fds[i] = os.open("/proc/%d/net/dev" % p.pid, os.O_RDONLY)
                except OSError:
                    pass

    def _sample(self):
        for i, fd in self._fds.items():
            try:
                text = os.pread(fd, 65536, 0).decode()
            except OSError:
                continue
            t = time.time()         # per host: a stall within one sweep does not skew the others
            for line in text.splitlines():
                if line.strip().startswith("eth0:"):
                    f = line.split(":", 1)[1].split()
                    self.rows.append((t, i, int(f[0]), int(f[8])))

    def _run(self):
        nxt = time.time()
        while not self._stop.is_set():
            self._sample()
            nxt += self.step
            self._stop.wait(max(0.0, nxt - time.time()))

    def start(self):
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def stop(self):
        self._stop.set()
        self._t.join(5)
        self._sample()
        for fd in self._fds.values():
            os.close(fd)
        with open(self.path, "w") as f:
            f.write("# unix_time host rx_bytes tx_bytes (eth0 of ezb-hHOST; h0 = seeder)\n")
            for t, i, rx, tx in self.rows:
                f.write("%.3f %d %d %d\n" % (t, i, rx, tx))
        return self


def link_rates(rows, t0):
    """Per host: [(t - t0, rx Mbit/s, tx Mbit/s)] from consecutive samples."""
    by = {}
    for t, i, rx, tx in rows:
        by.setdefault(i, []).append((t, rx, tx))
    out = {}
    for i, xs in by.items():
        r = []
        for (ta, rxa, txa), (tb, rxb, txb) in zip(xs, xs[1:]):
            dt = tb - ta
            if dt > 0:
                r.append(((ta + tb) / 2 - t0, (rxb - rxa) * 8 / dt / 1e6, (txb - txa) * 8 / dt / 1e6))
        out[i] = r
    return out


def plot_links(rows, t0, n, rate, png, title, events=None):
    """One panel per host (seeder on top), Mbit/s over time, rx and tx, drawn
    by gnuplot into png. events: host -> (start_s, done_s) marks."""
    if not shutil.which("gnuplot") or not rows:
        return None
    rates = link_rates(rows, t0)
    base = os.path.splitext(png)[0]
    dat = base + ".dat"
    with open(dat, "w") as f:
        for i in range(n + 1):
            f.write("# host %d: t_s rx_mbit tx_mbit\n" % i)
            for t, rx, tx in rates.get(i, []) or [(0, 0, 0)]:
                f.write("%.2f %.2f %.2f\n" % (t, rx, tx))
            f.write("\n\n")
    tmax = max((r[-1][0] for r in rates.values() if r), default=1)
    ymax = (rate * 1.15) if rate else max((max(x[1], x[2]) for r in rates.values() for x in r), default=1) * 1.1
    ph = 150 if n <= 8 else (95 if n <= 16 else 70)
    g = ["set terminal pngcairo size 1100,%d font 'DejaVu Sans,9'" % (ph * (n + 1) + 90),
         "set output '%s'" % png,
         "set multiplot layout %d,1 title \"%s\\nMbit/s per host link over seconds since the first client started "
         "(green dashes: client start, black dots: client done)\" font ',9'" % (n + 1, title.replace('"', "")),
         "set lmargin 9; set rmargin 2; set tmargin 0.6; set bmargin %s" % ("1.2" if n > 8 else "1.6"),
         "set xrange [0:%.1f]; set yrange [0:%.1f]" % (tmax, ymax),
         "set ytics %d; set grid ytics xtics" % (max(1, int(ymax / 3 / 10) * 10) if ymax > 30 else max(1, int(ymax / 3))),
         "set key top right horizontal samplen 2 font ',8'"]
    for i in range(n + 1):
        g.append("unset arrow; unset label")
        g.append("set label 1 '%s' at graph 0.01,0.85 left font ',9'" % ("h0 seeder" if i == 0 else "h%d" % i))
        ev = (events or {}).get(i)
        if ev:
            st, dn = ev
            if st is not None and st > 0.05:
                g.append("set arrow from %.2f,0 to %.2f,%.1f nohead lc rgb '#2ca02c' dt 2" % (st, st, ymax))
            if dn is not None:
                g.append("set arrow from %.2f,0 to %.2f,%.1f nohead lc rgb '#000000' dt 3" % (dn, dn, ymax))
        g.append("set ylabel 'Mbit/s' font ',8'" if i == 0 else "unset ylabel")
        g.append("set format x %s" % ("''" if i < n else "'%g'"))
        if i == 1:
            g.append("unset key")
        g.append("plot '%s' index %d using 1:2 with lines lw 1.2 lc rgb '#1f77b4' title 'rx (down)', "
                 "'' index %d using 1:3 with lines lw 1.2 lc rgb '#d62728' title 'tx (up)'" % (dat, i, i))
    g.append("unset multiplot")
    gp = base + ".gp"
    with open(gp, "w") as f:
        f.write("\n".join(g) + "\n")
    r = subprocess.run(["nice", "gnuplot", gp], capture_output=True, text=True)
    if r.returncode != 0:
        log("gnuplot failed: %s" % r.stderr[-300:])
        return None
    return png


# ---------------------------------------------------------------- the image

class Image:
    def __init__(self, d):
        self.dir = d
        meta = dict(l.strip().split("=", 1) for l in open(os.path.join(d, "meta.env")) if "=" in l)
        self.name = meta["NAME"]
        self.device_bytes = int(meta["DEVICE_BYTES"])
        self.bytes = int(meta["IMAGE_BYTES"])
        self.nextents = int(meta.get("EXTENTS", 0))
        self.disk = meta.get("DISK") == "1"
        # a whole-disk image (mkdisk.sh): the image directory of `ezio capture`
        self.extdir = os.path.join(d, "img", self.name) if self.disk else os.path.join(d, self.name)
        self.source_disk = os.path.join(d, "disk.img")
        self.parts = []             # whole disk: (start byte, length, sha1) of every partition
        if self.disk:
            j = json.loads(subprocess.run(["sfdisk", "--json", self.source_disk], capture_output=True,
                                          text=True, check=True).stdout)
            ss = j["partitiontable"].get("sectorsize", 512)
            with open(self.source_disk, "rb") as f:
                for pt in j["partitiontable"]["partitions"]:
                    off, ln = pt["start"] * ss, pt["size"] * ss
                    f.seek(off)
                    self.parts.append((off, ln, sha1_read(f, ln)))
        self.concat = os.path.join(d, self.name + ".concat")
        self.extents = []           # (name, offset, length, sha1)
        for n in sorted(os.listdir(self.extdir)):
            if re.fullmatch(r"[0-9a-f]{16}|[0-9a-f]{32}", n):
                path = os.path.join(self.extdir, n)
                self.extents.append((n, int(n, 16), os.path.getsize(path), sha1_file(path)))
        self.sha1 = sha1_file(self.concat)

    def verify_device(self, target):
        """The target file holds every extent at its offset."""
        with open(target, "rb") as f:
            for n, off, ln, h in self.extents:
                f.seek(off)
                if sha1_read(f, ln) != h:
                    return "extent %s differs" % n
        return None

    def verify_disk(self, dev):
        """The client's disk holds every partition of the source disk byte for
        byte (both were blank before the filesystems were made, so the
        blocks partclone skips are zero on both) and the same table."""
        with open(dev, "rb") as f:
            for k, (off, ln, h) in enumerate(self.parts):
                f.seek(off)
                if sha1_read(f, ln) != h:
                    return "partition %d differs" % (k + 1)
        j = subprocess.run(["sfdisk", "--json", dev], capture_output=True, text=True)
        if j.returncode != 0:
            return "no partition table on the client's disk"
        got = [(p["start"], p["size"]) for p in json.loads(j.stdout)["partitiontable"]["partitions"]]
        want = [(off // 512, ln // 512) for off, ln, _ in self.parts]
        if got != want:
            return "partition table differs: %s, want %s" % (got, want)
        return None

    def verify_extdir(self, d):
        for n, off, ln, h in self.extents:
            p = os.path.join(d, n)
            if not os.path.exists(p) or os.path.getsize(p) != ln or sha1_file(p) != h:
                return "extent %s differs or is missing" % n
        return None

    def verify_concat(self, path):
        if os.path.getsize(path) != self.bytes or sha1_file(path) != self.sha1:
            return "copy differs"
        return None


def sha1_read(f, n):
    h = hashlib.sha1()
    while n > 0:
        b = f.read(min(n, 4 << 20))
        if not b:
            break
        h.update(b); n -= len(b)
    return h.hexdigest()


def sha1_file(path):
    with open(path, "rb") as f:
        return sha1_read(f, os.path.getsize(path))


# ---------------------------------------------------------------- methods

class Ctx:
    def __init__(self, a, img, work, n, rate, run, piece):
        self.a, self.img, self.work, self.n, self.rate, self.run = a, img, work, n, rate, run
        self.piece = piece
        # expected time of one copy at line rate (goodput ~95%)
        self.fb_expected = img.bytes * 8 / (rate * 1e6 * 0.95) if rate else 10.0
        self.timeout = max(10 * self.fb_expected, 3 * n * self.fb_expected) + 30
        self.torrents = {}

    def rate_of(self, host):
        """Link rate of a host in Mbit/s (--slow-client: the last client's)."""
        if host == self.n and self.a.slow_client:
            return self.a.slow_client
        return self.rate

    def dir(self, method):
        """Data dir on tmpfs (removed after the method) and a log dir kept in bench/out."""
        tag = "%s-r%d-n%d-p%d-run%d" % (method, self.rate, self.n, self.piece, self.run)
        d = os.path.join(self.work, tag)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        self.logs = os.path.join(self.a.outdir, "logs", tag)
        os.makedirs(self.logs, exist_ok=True)
        return d

    def log(self, name):
        return os.path.join(self.logs, name)


class Measure:
    """Counters around the timed part of one method, and the link recording
    (links.tsv, links.png in the method's log dir)."""
    def __init__(self, c):
        self.c = c

    def __enter__(self):
        c = self.c
        c.events = {}
        self.rec = LinkRec(c.n, c.log("links.tsv")).start() if c.a.links else None
        self.cpu0, self.tx0, self.t0 = cpu_times(), tx_bytes(), time.time()
        return self

    def __exit__(self, *exc):
        self.cpu1, self.tx1, self.t1 = cpu_times(), tx_bytes(), time.time()
        if self.rec:
            time.sleep(0.3)
            self.rec.stop()

    def plot(self):
        """Drawn when the method reports (its client start/done marks are known then)."""
        if not self.rec:
            return
        c = self.c
        tag = os.path.basename(c.logs)
        try:
            plot_links(self.rec.rows, self.t0, c.n, c.rate, c.log("links.png"),
                       "%s%s" % (tag, (", " + c.a.title.rstrip(", ")) if c.a.title else ""), c.events)
        except Exception as e:          # a plot never fails a run
            log("plot failed: %r" % e)

    def result(self, **kw):
        self.plot()
        r = dict(busy_pct=round(busy_pct(self.cpu0, self.cpu1), 1),
                 seeder_tx_bytes=self.tx1 - self.tx0)
        if self.rec:
            try:
                r["flow"] = flow.flow_metrics(self.rec.rows, self.t0, self.c.events, self.c.n, self.c.rate_of)
            except Exception as e:      # a metric never fails a run
                log("flow metrics failed: %r" % e)
        r.update(kw)
        return r


def proc_stats(seeder, clients):
    cl_cpu = [p.cpu_s() for p in clients if p.cpu_s() is not None]
    cl_rss = [p.maxrss_mib() for p in clients if p.maxrss_mib() is not None]
    return dict(seeder_cpu_s=round(seeder.cpu_s(), 2) if seeder and seeder.cpu_s() is not None else None,
                client_cpu_s_mean=round(statistics.mean(cl_cpu), 2) if cl_cpu else None,
                client_peak_rss_mib=round(max(cl_rss), 1) if cl_rss else None)


def m_unicast(c):
    """One single-stream TCP copy per client in turn (socat)."""
    d = c.dir("unicast")
    times, errs, procs = [], [], []
    copies = c.n if not UNICAST_COPIES else min(c.n, UNICAST_COPIES)
    with Measure(c) as m:
        for i in range(1, copies + 1):
            srv = Proc(0, ["socat", "-u", "OPEN:%s" % c.img.concat,
                           "TCP-LISTEN:%d,reuseaddr,bind=%s" % (TCP_PORT, ip_of(0))],
                       c.log("srv%d.log" % i))
            if not wait_listen(0, TCP_PORT):
                srv.stop(); raise RuntimeError("socat server did not listen")
            out = os.path.join(d, "h%d.img" % i)
            t0 = time.time()
            cl = Proc(i, ["socat", "-u", "TCP:%s:%d" % (ip_of(0), TCP_PORT), "CREATE:%s" % out],
                      c.log("cl%d.log" % i))
            ok = wait_all([cl], lambda p: p.rc is not None, t0 + max(10 * c.fb_expected, 60))
            times.append(time.time() - t0 if ok else None)
            cl.stop(); srv.stop(grace=3)
            procs.append(cl)
            if not ok or cl.rc != 0:
                errs.append("h%d: rc=%s" % (i, cl.rc))
            else:
                e = c.img.verify_concat(out)
                if e:
                    errs.append("h%d: %s" % (i, e))
            os.unlink(out) if os.path.exists(out) else None
    good = [t for t in times if t is not None]
    if copies < c.n and good:
        # --unicast-copies: the sum is N times the median copy (estimated).
        good_sum = statistics.median(good) * c.n
    else:
        good_sum = sum(good)
    return m.result(ok=not errs, errors=errs, time_s=round(good_sum, 2) if not errs else None,
                    copies_measured=copies,
                    one_copy_s=round(statistics.median(good), 2) if good else None,
                    copies_s=[round(t, 2) if t else None for t in times],
                    **proc_stats(None, procs))


def m_multicast(c):
    """udpcast: udp-sender on h0, then udp-receiver on every client at once.
    The sender first: each side says hello once at its start and never
    again, so receivers started before the sender listens (and too late
    for its one hello) wait forever: with 32 receivers neither side ever
    heard the other."""
    d = c.dir("multicast")
    recv = []
    with Measure(c) as m:
        t0 = time.time()
        args = ["udp-sender", "--nokbd", "--interface", "eth0", "--file", c.img.concat,
                "--min-receivers", str(c.n), "--max-wait", "30"]
        if c.a.mcast_bitrate and c.rate:
            args += ["--max-bitrate", "%dm" % int(c.rate * c.a.mcast_bitrate)]
        snd = Proc(0, args, c.log("sender.log"))
        time.sleep(0.3)
        for i in range(1, c.n + 1):
            recv.append(Proc(i, ["udp-receiver", "--nokbd", "--interface", "eth0",
                                 "--file", os.path.join(d, "h%d.img" % i)],
                             c.log("h%d.log" % i)))
        ok = wait_all(recv + [snd], lambda p: p.rc is not None, t0 + c.timeout)
        t = max(p.t_exit for p in recv) - t0 if ok else None
    for i, p in enumerate(recv):
        c.events[i + 1] = (None, p.t_exit - t0 if p.t_exit else None)
    for p in recv + [snd]:
        p.stop(grace=2)
    errs = ["h%d: rc=%s" % (i + 1, p.rc) for i, p in enumerate(recv) if p.rc != 0]
    if not ok:
        errs.append("timeout after %.0f s" % c.timeout)
    if not errs:
        for i in range(1, c.n + 1):
            e = c.img.verify_concat(os.path.join(d, "h%d.img" % i))
            if e:
                errs.append("h%d: %s" % (i, e))
    shutil.rmtree(d, ignore_errors=True)
    return m.result(ok=not errs, errors=errs, time_s=round(t, 2) if t and not errs else None,
                    **proc_stats(snd, recv))


def m_libtorrent(c):
    d = c.dir("libtorrent")
    tor = c.torrents["libtorrent"]
    seeder = Proc(0, [PY, LT_NODE, "seed", tor, c.img.dir, "--listen", "%s:%d" % (ip_of(0), BT_PORT)],
                  c.log("seeder.log"))
    if not wait_all([seeder], lambda p: any(j.get("ev") == "listening" for _, j in p.json_lines()) or p.rc is not None,
                    time.time() + 30) or seeder.rc is not None:
        seeder.stop(); raise RuntimeError("libtorrent seeder did not start: see %s" % seeder.logpath)
    clients = []
    with Measure(c) as m:
        t0 = time.time()
        for i in range(1, c.n + 1):
            save = os.path.join(d, "h%d" % i); os.makedirs(save)
            peers = []
            for j in [0] + list(range(1, c.n + 1)):
                if j != i:
                    peers += ["--peer", "%s:%d" % (ip_of(j), BT_PORT)]
            clients.append(Proc(i, [PY, LT_NODE, "get", tor, save, "--listen", "%s:%d" % (ip_of(i), BT_PORT),
                                    "--timeout", str(int(c.timeout + 30))] + peers,
                                c.log("h%d.log" % i)))

        def done_t(p):
            for _, j in p.json_lines():
                if j.get("ev") == "done":
                    return j["t"]
            return None
        ok = wait_all(clients, lambda p: done_t(p) is not None or p.rc is not None, t0 + c.timeout)
        ok = ok and all(done_t(p) is not None for p in clients)
        t = max(done_t(p) for p in clients) - t0 if ok else None
    for i, p in enumerate(clients):
        dt = done_t(p)
        c.events[i + 1] = (p.t_start - t0, dt - t0 if dt else None)
    for p in clients + [seeder]:
        p.stop()
    up = [j.get("uploaded") for _, j in seeder.json_lines() if j.get("ev") == "exit"]
    errs = []
    if not ok:
        errs.append("not all clients done within %.0f s" % c.timeout)
    else:
        for i in range(1, c.n + 1):
            e = c.img.verify_extdir(os.path.join(d, "h%d" % i, c.img.name))
            if e:
                errs.append("h%d: %s" % (i, e))
    shutil.rmtree(d, ignore_errors=True)
    return m.result(ok=not errs, errors=errs, time_s=round(t, 2) if t and not errs else None,
                    seeder_payload_bytes=up[0] if up else None, **proc_stats(seeder, clients))


def attach_blank(path, size):
    with open(path, "wb") as f:
        f.truncate(size)
    return subprocess.run(["losetup", "-f", "--show", path], capture_output=True, text=True,
                          check=True).stdout.strip()


def detach(dev):
    subprocess.run(["partx", "-d", dev], capture_output=True)
    subprocess.run(["losetup", "-d", dev], capture_output=True)


def m_ezio_b(c):
    """The same as ezio with the --ezio-b binary: two builds side by side in one run."""
    return m_ezio(c, c.a.ezio_b)


def m_ezio(c, binary=None):
    """ezio seed on h0, ezio deploy on every client (at once, or --stagger
    seconds apart with deploy's default flags). In --disk mode the seeder
    serves the whole-disk image directory and clients deploy it onto blank
    loop disks."""
    a = c.a
    ezio = binary or a.ezio
    d = c.dir("ezio-b" if binary else "ezio")
    disk = c.img.disk
    if disk:
        seeder = Proc(0, [ezio, "seed", c.img.extdir, "--json", "--no-announce",
                          "--listen", "%s:%d" % (ip_of(0), BT_PORT),
                          "--tracker-listen", "%s:%d" % (ip_of(0), TRACKER_PORT)], c.log("seeder.log"))
        src = "http://%s:%d/images/%s" % (ip_of(0), TRACKER_PORT, c.img.name)
    else:
        tor = c.torrents["ezio"]
        seeder = Proc(0, [ezio, "seed", tor, c.img.extdir, "--json", "--listen", "%s:%d" % (ip_of(0), BT_PORT),
                          "--tracker-listen", "%s:%d" % (ip_of(0), TRACKER_PORT)],
                      c.log("seeder.log"))
        src = tor
        if a.ezio_src == "url":
            src = "http://%s:%d/torrents/%s" % (ip_of(0), TRACKER_PORT, a.ezio_url_name or c.img.name + ".torrent")
    if not (wait_listen(0, BT_PORT) and wait_listen(0, TRACKER_PORT)) or seeder.poll() is not None:
        seeder.stop(); raise RuntimeError("ezio seeder did not start: see %s" % seeder.logpath)
    # The seeder's HTTP port can listen before its torrent is served (a client
    # then gets "not found", exit 3): start clients once it reports seeding.
    wait_all([seeder], lambda p: p.rc is not None or any(j.get("phase") == "seeding" for _, j in p.json_lines()),
             time.time() + 15)
    time.sleep(0.3)
    clients = []
    targets, loops = [], []
    try:
        for i in range(1, c.n + 1):
            tgt = os.path.join(d, "h%d.dev" % i)
            if disk:
                loops.append(attach_blank(tgt, c.img.device_bytes))
                targets.append(loops[-1])
            else:
                with open(tgt, "wb") as f:
                    f.truncate(c.img.device_bytes)           # sparse, the source device's size
                targets.append(tgt)
        finished = ("seeding", "done")

        def done_t(p):
            for t, j in p.json_lines():
                if disk:
                    # a whole-disk deploy is done at its result line (or
                    # when it starts serving the others after it)
                    if j.get("type") == "result" and j.get("result") == "ok":
                        return t
                    # with --seed-after the result line comes only after
                    # serving the others: every partition verified and
                    # serving is done too
                    if (j.get("type") == "progress" and j.get("phase") == "seeding" and j.get("bytes_total")
                            and j.get("bytes_done") == j.get("bytes_total")):
                        return t
                    continue
                if j.get("phase") in finished and j.get("bytes_total") and j.get("bytes_done") == j.get("bytes_total"):
                    return t
            if p.rc == 0 and p.t_exit:
                return p.t_exit
            return None

        stagger = a.stagger
        seed_after = [] if (stagger or a.ezio_default_flags) else ["--seed-after", a.ezio_seed_after]
        with Measure(c) as m:
            t0 = time.time()
            for i in range(1, c.n + 1):
                if stagger and i > 1:
                    # keep polling the ones already running while we wait
                    wait_all(clients, lambda p: False, t0 + (i - 1) * stagger)
                extra = []
                for x in a.ezio_deploy_arg or []:
                    extra += x.split()
                clients.append(Proc(i, [ezio, "deploy", src, targets[i - 1], "--yes", "--json"] +
                                    seed_after + extra, c.log("h%d.log" % i)))
            deadline = t0 + c.timeout + (c.n - 1) * stagger
            ok = wait_all(clients, lambda p: done_t(p) is not None or p.rc is not None, deadline)
            ok = ok and all(done_t(p) is not None for p in clients)
            t = max(done_t(p) for p in clients) - t0 if ok else None
        for i, p in enumerate(clients):
            dt = done_t(p)
            c.events[i + 1] = (p.t_start - t0, dt - t0 if dt else None)
        own = [(done_t(p) - p.t_start) if done_t(p) else None for p in clients]
        for p in clients:
            p.stop()
        seeder.signal(signal.SIGINT)
        seeder.stop()
        up = None
        for _, j in seeder.json_lines():
            if "bytes_uploaded" in j:
                up = j["bytes_uploaded"]
        errs = []
        if not ok:
            stuck = ["h%d rc=%s last=%s" % (i + 1, p.rc, (p.lines[-1][1][:160] if p.lines else ""))
                     for i, p in enumerate(clients) if done_t(p) is None]
            errs.append("not all clients done within %.0f s: %s" % (c.timeout, "; ".join(stuck)))
        else:
            for i, tgt in enumerate(targets):
                e = c.img.verify_disk(tgt) if disk else c.img.verify_device(tgt)
                if e:
                    errs.append("h%d: %s" % (i + 1, e))
        hash_fail = sum(max([j.get("hash_failures", 0) for _, j in p.json_lines()] or [0]) for p in clients)
    finally:
        for dev in loops:
            detach(dev)
        shutil.rmtree(d, ignore_errors=True)
    extra = {}
    if stagger:
        extra = dict(stagger_s=stagger, client_own_s=[round(x, 2) if x else None for x in own],
                     last_client_s=round(own[-1], 2) if own and own[-1] else None,
                     max_client_s=round(max(own), 2) if own and all(own) else None,
                     room_s=round(t, 2) if t else None)
    return m.result(ok=not errs, errors=errs, time_s=round(t, 2) if t and not errs else None,
                    seeder_payload_bytes=up, hash_failures=hash_fail,
                    client_rcs=[p.rc for p in clients], **extra, **proc_stats(seeder, clients))


METHODS = {"unicast": m_unicast, "multicast": m_multicast, "libtorrent": m_libtorrent, "ezio": m_ezio,
           "ezio-b": m_ezio_b}


# ---------------------------------------------------------------- torrents

def make_torrents(a, img, piece_mib, outdir):
    """The same .torrent for ezio and libtorrent: made by `ezio torrent create`
    when ezio is there, else by lt_node.py."""
    os.makedirs(outdir, exist_ok=True)
    path = os.path.join(outdir, "%s-%dm.torrent" % (img.name, piece_mib))
    tracker = "http://%s:%d/announce" % (ip_of(0), TRACKER_PORT)
    if a.ezio:
        cmd = [a.ezio, "torrent", "create", img.extdir, "-o", path, "--name", img.name,
               "--piece-length", "%dMiB" % piece_mib, "--tracker", tracker]
    else:
        cmd = [PY, LT_NODE, "mktorrent", img.extdir, "-o", path, "--piece-mib", str(piece_mib),
               "--tracker", tracker]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("torrent create failed: %s\n%s%s" % (" ".join(cmd), r.stdout, r.stderr))
    return {"ezio": path, "libtorrent": path}


# ---------------------------------------------------------------- report

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, nd=1, suffix=""):
    return "—" if x is None else ("%.*f%s" % (nd, x, suffix))


def summarize(results, methods):
    """results: list of dicts {rate, piece, n, run, method: {...}}. Returns rows."""
    rows = []
    keys = sorted({(r["rate"], r["piece"], r["n"]) for r in results})
    for rate, piece, n in keys:
        rs = [r for r in results if (r["rate"], r["piece"], r["n"]) == (rate, piece, n)]
        row = dict(rate=rate, piece=piece, n=n, runs=len(rs))
        for mth in methods:
            row[mth] = med(r[mth]["time_s"] for r in rs if mth in r)
            row[mth + "_tx"] = med(r[mth]["seeder_tx_bytes"] for r in rs if mth in r and r[mth]["ok"])
            row[mth + "_busy"] = med(r[mth]["busy_pct"] for r in rs if mth in r and r[mth]["ok"])
            row[mth + "_rss"] = med(r[mth].get("client_peak_rss_mib") for r in rs if mth in r and r[mth]["ok"])
            row[mth + "_scpu"] = med(r[mth].get("seeder_cpu_s") for r in rs if mth in r and r[mth]["ok"])
            row[mth + "_ccpu"] = med(r[mth].get("client_cpu_s_mean") for r in rs if mth in r and r[mth]["ok"])
            row[mth + "_fail"] = sum(1 for r in rs if mth in r and not r[mth]["ok"])
        # ratios from runs made side by side, then the median
        fb = [r["unicast"]["one_copy_s"] for r in rs if "unicast" in r]
        row["fb"] = med(fb)
        row["ezio_fb"] = med(r["ezio"]["time_s"] / r["unicast"]["one_copy_s"] for r in rs
                             if "ezio" in r and "unicast" in r and r["ezio"]["time_s"] and r["unicast"]["one_copy_s"])
        row["ezb_fb"] = med(r["ezio-b"]["time_s"] / r["unicast"]["one_copy_s"] for r in rs
                            if "ezio-b" in r and "unicast" in r and r["ezio-b"]["time_s"] and r["unicast"]["one_copy_s"])
        row["ezb_ez"] = med(r["ezio-b"]["time_s"] / r["ezio"]["time_s"] for r in rs
                            if "ezio-b" in r and "ezio" in r and r["ezio-b"]["time_s"] and r["ezio"]["time_s"])
        row["ezio_lt"] = med(r["ezio"]["time_s"] / r["libtorrent"]["time_s"] for r in rs
                             if "ezio" in r and "libtorrent" in r and r["ezio"]["time_s"] and r["libtorrent"]["time_s"])
        row["lt_fb"] = med(r["libtorrent"]["time_s"] / r["unicast"]["one_copy_s"] for r in rs
                           if "libtorrent" in r and "unicast" in r and r["libtorrent"]["time_s"] and r["unicast"]["one_copy_s"])
        row["mc_fb"] = med(r["multicast"]["time_s"] / r["unicast"]["one_copy_s"] for r in rs
                           if "multicast" in r and "unicast" in r and r["multicast"]["time_s"] and r["unicast"]["one_copy_s"])
        rows.append(row)
    return rows


def tables(rows, methods, img_bytes):
    out = []
    groups = sorted({(r["rate"], r["piece"]) for r in rows})
    for rate, piece in groups:
        rs = [r for r in rows if (r["rate"], r["piece"]) == (rate, piece)]
        out.append("#### %s, %d MiB pieces (%s pieces)\n" % (
            "%d Mbit/s links" % rate if rate else "unshaped links", piece, -(-img_bytes // (piece << 20))))
        out.append("Wall time in seconds until every client holds a verified image (median of %s runs; "
                   "a failed run counts as missing). F/B = one unicast copy.\n" % "/".join(str(r["runs"]) for r in rs))
        hdr = "| N | unicast (sum) | ezio | libtorrent | multicast | F/B | ezio/(F/B) | ezio/libtorrent | libtorrent/(F/B) | multicast/(F/B) |"
        out.append(hdr)
        out.append("|" + "---|" * (hdr.count("|") - 1))
        for r in rs:
            def cell(mth):
                if mth not in methods:
                    return "n/a"
                s = fmt(r[mth])
                if r[mth + "_fail"]:
                    s += " (%d failed)" % r[mth + "_fail"]
                return s
            out.append("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                r["n"], cell("unicast"), cell("ezio"), cell("libtorrent"), cell("multicast"),
                fmt(r["fb"]), fmt(r["ezio_fb"], 2), fmt(r["ezio_lt"], 2), fmt(r["lt_fb"], 2), fmt(r["mc_fb"], 2)))
        out.append("")
        if "ezio-b" in methods:
            out.append("Second build side by side (`--ezio-b`), same runs:\n")
            out.append("| N | ezio | ezio-b | ezio/(F/B) | ezio-b/(F/B) | ezio-b/ezio (median of per-run ratios) |")
            out.append("|---|---|---|---|---|---|")
            for r in rs:
                out.append("| %d | %s | %s | %s | %s | %s |" % (r["n"], fmt(r.get("ezio")), fmt(r.get("ezio-b")),
                                                            fmt(r["ezio_fb"], 2), fmt(r["ezb_fb"], 2), fmt(r["ezb_ez"], 2)))
            out.append("")
        out.append("Per method (medians): seeder interface bytes sent as a multiple of the image "
                   "(h0 eth0 tx counter, headers included) / machine CPU busy % over the run (2 cores) / "
                   "seeder CPU s / mean client CPU s / peak client RSS MiB.\n")
        hdr = "| N | " + " | ".join(methods) + " |"
        out.append(hdr)
        out.append("|" + "---|" * (len(methods) + 1))
        for r in rs:
            cells = []
            for mth in methods:
                tx = r[mth + "_tx"]
                cells.append("%s× / %s%% / %s / %s / %s" % (
                    fmt(tx / img_bytes if tx is not None else None, 2), fmt(r[mth + "_busy"], 0),
                    fmt(r[mth + "_scpu"], 1), fmt(r[mth + "_ccpu"], 1), fmt(r[mth + "_rss"], 0)))
            out.append("| %d | %s |" % (r["n"], " | ".join(cells)))
        out.append("")
    return "\n".join(out)


def write_md(path, key, body):
    """Replace our section (between markers) in path, or append it; leave the rest alone."""
    start, end = "<!-- bench:%s:start -->" % key, "<!-- bench:%s:end -->" % key
    block = "%s\n%s\n%s\n" % (start, body.rstrip(), end)
    text = open(path).read() if os.path.exists(path) else "# Benchmarks\n\n"
    if start in text and end in text:
        pre, rest = text.split(start, 1)
        post = rest.split(end, 1)[1].lstrip("\n")
        text = pre + block + ("\n" + post if post else "")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    tmp = path + ".tmp.%d" % os.getpid()
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


# ---------------------------------------------------------------- main

def netlab(*args):
    subprocess.run([NETLAB] + [str(x) for x in args], check=True, stdout=sys.stderr)


def ezio_version(a, path=None):
    path = path or a.ezio
    if not path:
        return "ezio: not built"
    r = subprocess.run([path, "--version"], capture_output=True, text=True)
    v = (r.stdout or r.stderr).strip().splitlines()
    # lan.sh notes the commit it built from; otherwise the checkout's HEAD now
    note = path + ".commit"
    commit = open(note).read().strip() if os.path.exists(note) else subprocess.run(
        ["git", "-C", os.path.dirname(HERE), "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True).stdout.strip()
    return "%s (checkout %s)" % (v[0] if r.returncode == 0 and v else "ezio", commit)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["lan", "loopback"], default="lan")
    ap.add_argument("--rates", default="100", help="link rates in Mbit/s, comma separated (0 = unshaped)")
    ap.add_argument("--clients", default="1,2,4,8")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--piece-mib", default="1", help="piece sizes in MiB, comma separated (e.g. 1,16)")
    ap.add_argument("--capture-piece-mib", type=int, default=4,
                    help="--disk: the piece size ezio capture hashes (--piece-size; 4: its default for a whole disk, 16: partclone's own)")
    ap.add_argument("--methods", default="unicast,ezio,libtorrent,multicast")
    ap.add_argument("--unicast-copies", type=int, default=0,
                    help="measure only this many unicast copies per N; the sum is then N x their median (0: all N)")
    ap.add_argument("--image-mib", type=int, default=256, help="used data in the ext4 image")
    ap.add_argument("--work", default="/dev/shm/ezio-bench")
    ap.add_argument("--ezio", default="", help="ezio binary (empty: skip the ezio column)")
    ap.add_argument("--ezio-src", choices=["file", "url"], default="url",
                    help="deploy from the .torrent path or from the seeder's tracker URL")
    ap.add_argument("--ezio-url-name", default="", help="NAME in http://h0:6969/torrents/NAME")
    ap.add_argument("--ezio-seed-after", default="1h", help="--seed-after for clients (killed once all are done)")
    ap.add_argument("--ezio-deploy-arg", action="append", help="extra args for ezio deploy")
    ap.add_argument("--mcast-bitrate", type=float, default=0.0,
                    help="udp-sender --max-bitrate as a fraction of the link rate (0 = udpcast's own flow control)")
    ap.add_argument("--ezio-b", default="",
                    help="a second ezio binary, run as method ezio-b beside ezio in the same runs")
    ap.add_argument("--stagger", type=float, default=0.0,
                    help="start the clients this many seconds apart; ezio clients then run with deploy's "
                         "default flags (no --seed-after)")
    ap.add_argument("--ezio-default-flags", action="store_true",
                    help="ezio clients without --seed-after also when started at once")
    ap.add_argument("--disk", action="store_true",
                    help="whole-disk mode: a 3-partition GPT disk captured with ezio capture (mkdisk.sh), "
                         "seeded as an image directory, deployed onto blank loop disks")
    ap.add_argument("--no-links", dest="links", action="store_false",
                    help="do not record the link counters every 100 ms (and draw no plots)")
    ap.add_argument("--slow-client", type=int, default=0,
                    help="the last client's link at this rate in Mbit/s (a mixed room)")
    ap.add_argument("--loss-client", type=float, default=0.0,
                    help="the last client drops this %% of its incoming packets (nftables numgen random)")
    ap.add_argument("--scenario", default="", help="scenario name (lan.sh --scenario): title and section key")
    ap.add_argument("--md", default="", help="markdown file to write the results section into")
    ap.add_argument("--md-key", default="", help="section key in the markdown file")
    ap.add_argument("--command", default=" ".join(sys.argv), help="command line shown in the report")
    a = ap.parse_args()
    global UNICAST_COPIES
    UNICAST_COPIES = a.unicast_copies

    rates = [int(x) for x in a.rates.split(",")]
    ns = [int(x) for x in a.clients.split(",")]
    pieces = [int(x) for x in a.piece_mib.split(",")]
    methods = [m for m in a.methods.split(",") if m]
    for m in methods:
        if m not in METHODS:
            sys.exit("unknown method %s" % m)
    if a.ezio_b and "ezio-b" not in methods:
        methods.insert(methods.index("ezio") + 1 if "ezio" in methods else len(methods), "ezio-b")
    if "ezio" in methods and not a.ezio:
        log("no ezio binary given: the ezio column is skipped")
        methods.remove("ezio")

    if a.disk:
        methods = [m for m in methods if m in ("unicast", "ezio", "ezio-b", "multicast")]
        if not a.ezio:
            sys.exit("--disk needs an ezio binary (ezio capture makes the image)")
        cp = a.capture_piece_mib
        imgdir = os.path.join(a.work, "disk%d-p%d" % (a.image_mib, cp))
        subprocess.run([os.path.join(HERE, "mkdisk.sh"), imgdir, str(a.image_mib), a.ezio], check=True,
                       stdout=sys.stderr, env=dict(os.environ, PIECE_MIB=str(cp)))
    else:
        imgdir = os.path.join(a.work, "img%d" % a.image_mib)
        subprocess.run([os.path.join(HERE, "mkimage.sh"), imgdir, str(a.image_mib)], check=True, stdout=sys.stderr)
    if a.stagger:
        # udpcast needs every receiver at once; lt_node.py clients dial their peers only at start
        methods = [m for m in methods if m in ("unicast", "ezio")]
    img = Image(imgdir)
    log("image: %d bytes in %d extents (device %d bytes)" % (img.bytes, len(img.extents), img.device_bytes))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    ezio_ver = ezio_version(a)
    if a.ezio_b:
        ezio_ver += "; ezio-b: %s = %s" % (a.ezio_b, ezio_version(a, a.ezio_b))
    outdir = a.outdir = os.path.join(HERE, "out", stamp)
    os.makedirs(outdir, exist_ok=True)
    work = os.path.join(a.work, "run")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    if a.disk:
        pieces = [a.capture_piece_mib]  # what ezio capture makes
        torrents = {a.capture_piece_mib: {}}
    else:
        torrents = {p: make_torrents(a, img, p, os.path.join(a.work, "torrents")) for p in pieces}
    a.title = "%s%s%s%s%s" % ("scenario %s, " % a.scenario if a.scenario else "", "whole disk, " if a.disk else "",
                              "stagger %gs, " % a.stagger if a.stagger else "",
                              "last client at %d Mbit/s, " % a.slow_client if a.slow_client else "",
                              "last client drops %g %% incoming, " % a.loss_client if a.loss_client else "")
    results = []
    resfile = os.path.join(outdir, "results.jsonl")
    started = datetime.datetime.now(datetime.timezone.utc)
    load0 = os.getloadavg()[0]
    try:
        for rate in rates:
            for n in ns:
                lab = []
                if a.slow_client:
                    lab += ["--host-rate", "%d:%d" % (n, a.slow_client)]
                if a.loss_client:
                    lab += ["--loss", a.loss_client, "--loss-host", n]
                netlab("up", n, rate, *lab)
                LinkRec.anchor(n)
                for run in range(a.runs):
                    # rotate the order of methods from run to run
                    order = methods[run % len(methods):] + methods[:run % len(methods)]
                    for piece in pieces:
                        r = dict(rate=rate, piece=piece, n=n, run=run, load=os.getloadavg()[0], _img_bytes=img.bytes)
                        c = Ctx(a, img, work, n, rate, run, piece)
                        c.torrents = torrents[piece]
                        for mth in order:
                            if mth in ("unicast", "multicast") and piece != pieces[0]:
                                # piece size does not matter to them: measured once per run
                                prev = [x for x in results if (x["rate"], x["n"], x["run"], x["piece"]) ==
                                        (rate, n, run, pieces[0])]
                                if prev and mth in prev[0]:
                                    r[mth] = prev[0][mth]
                                    continue
                            log("rate %d N %d run %d/%d piece %d MiB: %s ..." % (rate, n, run + 1, a.runs, piece, mth))
                            try:
                                r[mth] = METHODS[mth](c)
                            except Exception as e:          # keep going: record the failure
                                Proc.kill_all()
                                r[mth] = dict(ok=False, errors=[repr(e)], time_s=None, busy_pct=None,
                                              seeder_tx_bytes=None, one_copy_s=None)
                            x = r[mth]
                            fl = x.get("flow") or {}
                            log("   %s: %s s, seeder sent %.2fx image, CPU busy %s%%, ramp-up %s s, endgame %s s, "
                                "below link %s, uplink idle %s%s" % (
                                    mth, x.get("time_s"), (x.get("seeder_tx_bytes") or 0) / img.bytes,
                                    x.get("busy_pct"), fl.get("ramp_s"), fl.get("endgame_s"), fl.get("below_link"),
                                    fl.get("up_idle"),
                                    "" if x["ok"] else "  FAILED: %s" % "; ".join(x["errors"])[:300]))
                            time.sleep(1)
                        results.append(r)
                        with open(resfile, "a") as f:
                            f.write(json.dumps(r) + "\n")
    finally:
        Proc.kill_all()
        LinkRec.release()
    rows = summarize(results, methods)
    body = tables(rows, methods, img.bytes)
    if a.links and a.mode == "lan":
        odd = max(ns) if (a.slow_client or a.loss_client) and len(ns) == 1 else None
        body += "\n" + flow.flow_table(results, methods, odd) + "\n"
    title = "LAN lab benchmark" if a.mode == "lan" else "Loopback benchmark"
    head = ["### %s — %s" % (title, started.strftime("%Y-%m-%d %H:%M UTC")), "",
            "- command: `%s`" % a.command,
            "- machine: %d cores, %s; %s" % (os.cpu_count(), os.uname().release, ezio_ver),
            "- image: partclone.extfs -T capture of ext4 with %d MiB of random files: %d bytes (%.0f MiB) in %d extents; "
            "clients write a sparse file of the device size (%d MiB) on tmpfs" % (
                a.image_mib, img.bytes, img.bytes / 2**20, len(img.extents) or img.nextents, img.device_bytes >> 20),
            "- raw results: bench/out/%s/results.jsonl (not committed)" % stamp,
            "- machine load (1-min load average) at the start: %.1f on %d cores" % (load0, os.cpu_count()), ""]
    if a.title:
        head.insert(2, "- room: %s" % a.title.rstrip(", "))
    if a.disk:
        head.insert(-2, "- whole disk: GPT, 3 ext4 partitions (`bench/mkdisk.sh`), `ezio capture --piece-size %d`, "
                        "`ezio seed IMAGE-DIR`, clients `ezio deploy http://10.77.0.1:6969/images/%s LOOPDISK --yes --json%s` "
                        "onto blank loop disks of %d MiB on tmpfs; a client is done at its `result: ok` line or its first progress line with every partition verified and serving (`--seed-after`); "
                        "F_total = the partitions' extent bytes; every client disk is checked partition by partition" % (
                            a.capture_piece_mib, img.name, "" if (a.stagger or a.ezio_default_flags) else " --seed-after " + a.ezio_seed_after,
                            img.device_bytes >> 20))
    if a.stagger:
        body = stagger_table(results, a.stagger) + "\n\n" + body
    if a.links:
        head.insert(-1, "- link plots: bench/out/%s/logs/METHOD-.../links.png (raw 100 ms samples: links.tsv)" % stamp)
    if a.mode == "loopback":
        body = loopback_table(results, img.bytes) + "\n\n" + body
    text = "\n".join(head) + "\n" + body
    print(text)
    with open(os.path.join(outdir, "report.md"), "w") as f:
        f.write(text)
    if a.md:
        key = a.md_key or (("scenario-%s-" % a.scenario if a.scenario else "") + "%s-%smbit-%smib-n%s-img%d%s%s-%s" % (
            a.mode, a.rates.replace(",", "+"), str(a.capture_piece_mib) if a.disk else a.piece_mib.replace(",", "+"),
            a.clients.replace(",", "+"), a.image_mib, "-disk" if a.disk else "",
            "-stagger%g" % a.stagger if a.stagger else "", started.strftime("%Y%m%d")))
        write_md(a.md, key, text)
        log("wrote section %s into %s" % (key, a.md))
    return 0


def stagger_table(results, stagger):
    """Per run: the last-started client's own time and the whole room's time
    against the targets (last <= 1.10 F/B; room <= (N-1) stagger + 1.10 F/B)."""
    out = ["Clients started %g s apart (ezio deploy with its default flags: no --seed-after). "
           "Own = a client's time from its own start to done; room = first start to last done. "
           "F/B = one unicast copy in the same run.\n" % stagger,
           "| N | run | F/B s | last client own s | ÷ F/B (target ≤ 1.10) | slowest client own s | room s "
           "| room target (N-1)·%g + 1.10·F/B | met (last / room) | seeder sent × image | clients' own times s |" % stagger,
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(results, key=lambda r: (r["n"], r["run"])):
        e = r.get("ezio")
        if not e:
            continue
        fb = r.get("unicast", {}).get("one_copy_s")
        last, room = e.get("last_client_s"), e.get("room_s")
        tgt = (r["n"] - 1) * stagger + 1.10 * fb if fb else None
        met = "%s / %s" % ("yes" if last and fb and last <= 1.10 * fb else "no",
                           "yes" if room and tgt and room <= tgt else "no")
        tx = e.get("seeder_tx_bytes")
        out.append("| %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["n"], r["run"] + 1, fmt(fb), fmt(last), fmt(last / fb if last and fb else None, 2),
            fmt(e.get("max_client_s")), fmt(room), fmt(tgt), met if e["ok"] else "failed",
            fmt(tx / r.get("_img_bytes", 1) if tx and r.get("_img_bytes") else None, 2),
            " ".join(fmt(x) for x in e.get("client_own_s") or [])))
    return "\n".join(out)


def loopback_table(results, nbytes):
    out = ["| piece | ezio MB/s | libtorrent MB/s | ezio/libtorrent throughput (median of per-run ratios) "
           "| ratio of the medians | ezio failed runs | CPU busy ezio / lt |",
           "|---|---|---|---|---|---|---|"]
    for piece in sorted({r["piece"] for r in results}):
        rs = [r for r in results if r["piece"] == piece]
        ez = med(nbytes / r["ezio"]["time_s"] / 1e6 for r in rs if "ezio" in r and r["ezio"]["time_s"])
        lt = med(nbytes / r["libtorrent"]["time_s"] / 1e6 for r in rs if "libtorrent" in r and r["libtorrent"]["time_s"])
        rat = med((r["libtorrent"]["time_s"] / r["ezio"]["time_s"]) for r in rs
                  if "ezio" in r and "libtorrent" in r and r["ezio"]["time_s"] and r["libtorrent"]["time_s"])
        fails = sum(1 for r in rs if "ezio" in r and not r["ezio"]["ok"])
        bz = med(r["ezio"]["busy_pct"] for r in rs if "ezio" in r)
        bl = med(r["libtorrent"]["busy_pct"] for r in rs if "libtorrent" in r)
        out.append("| %d MiB | %s | %s | %s | %s | %d/%d | %s%% / %s%% |" % (
            piece, fmt(ez), fmt(lt), fmt(rat, 2), fmt(ez / lt if ez and lt else None, 2),
            fails, len(rs), fmt(bz, 0), fmt(bl, 0)))
    gib = nbytes / 2**30
    out += ["", "CPU-seconds per GiB received (utime+stime from wait4, median of the runs; the seeder's "
            "per GiB sent): the lower the better.\n",
            "| piece | ezio seeder | ezio client | libtorrent seeder | libtorrent client | client ezio ÷ libtorrent |",
            "|---|---|---|---|---|---|"]
    for piece in sorted({r["piece"] for r in results}):
        rs = [r for r in results if r["piece"] == piece]

        def cpu(m, k):
            v = med(r[m].get(k) for r in rs if m in r and r[m].get("ok"))
            return v / gib if v is not None else None
        es, ec, ls, lc = cpu("ezio", "seeder_cpu_s"), cpu("ezio", "client_cpu_s_mean"), \
            cpu("libtorrent", "seeder_cpu_s"), cpu("libtorrent", "client_cpu_s_mean")
        out.append("| %d MiB | %s | %s | %s | %s | %s |" % (piece, fmt(es, 2), fmt(ec, 2), fmt(ls, 2), fmt(lc, 2),
                                                           fmt(ec / lc if ec and lc else None, 2)))
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
