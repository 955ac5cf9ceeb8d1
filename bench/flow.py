"""flow.py — where the seconds of one swarm run go, from the link recording.

lanbench.py records every host's eth0 rx/tx counters every 100 ms
(links.tsv). From those samples and each client's start/done times this
computes, per method run:

  below_link   per client: the fraction of its time (its start to its done)
               in which it received below 90 % of its own link rate;
  up_idle      per host: the fraction of the room's time (first start to
               last done; a client from its own start) in which it sent less
               than 10 % of its link rate (h0: the seeder);
  ramp_s       ramp-up: seconds from the first start until some client
               first sends at 10 % of its link rate or more, i.e. until a
               first piece is shareable and shared (the counters include
               headers and protocol chatter, so a smaller threshold would
               fire on requests alone);
  endgame_s    last client done minus first client done;
  done_s       every client's done time, seconds from the first start.

Rates are link rates in Mbit/s (the interface counters include headers: a
saturated link reads ~97 % of its rate).
"""

BELOW = 0.90
IDLE = 0.10


def _series(rows, t0):
    """host -> [(t_mid - t0, dt, rx_mbit, tx_mbit)] from consecutive samples."""
    by = {}
    for t, i, rx, tx in rows:
        by.setdefault(i, []).append((t, rx, tx))
    out = {}
    for i, xs in by.items():
        r = []
        for (ta, rxa, txa), (tb, rxb, txb) in zip(xs, xs[1:]):
            dt = tb - ta
            if dt > 0:
                r.append(((ta + tb) / 2 - t0, dt, (rxb - rxa) * 8 / dt / 1e6, (txb - txa) * 8 / dt / 1e6))
        out[i] = r
    return out


def _frac(samples, lo, hi, pred):
    tot = sel = 0.0
    for t, dt, rx, tx in samples:
        if lo <= t <= hi:
            tot += dt
            if pred(rx, tx):
                sel += dt
    return sel / tot if tot else None


def flow_metrics(rows, t0, events, n, rate_of):
    """rows: (unix_t, host, rx_bytes, tx_bytes); events: host -> (start_s,
    done_s) relative to t0; rate_of(host) -> link Mbit/s (0: unshaped,
    nothing computed)."""
    if not rows or not events or not rate_of(0):
        return None
    s = _series(rows, t0)
    starts = [events[i][0] or 0.0 for i in events if events[i]]
    dones = {i: events[i][1] for i in events if events[i] and events[i][1] is not None}
    if not dones:
        return None
    first, last = max(0.0, min(starts)), max(dones.values())
    below, idle = {}, {}
    for i in range(1, n + 1):
        st = (events.get(i) or (0.0, None))[0] or 0.0
        r = rate_of(i)
        if i in dones:
            below[i] = _frac(s.get(i, []), st, dones[i], lambda rx, tx, r=r: rx < BELOW * r)
        idle[i] = _frac(s.get(i, []), st, last, lambda rx, tx, r=r: tx < IDLE * r)
    idle[0] = _frac(s.get(0, []), first, last, lambda rx, tx: tx < IDLE * rate_of(0))
    ramp = None
    for i in range(1, n + 1):
        for t, dt, rx, tx in s.get(i, []):
            if t >= first and tx >= IDLE * rate_of(i):
                ramp = t - first if ramp is None else min(ramp, t - first)
                break
    r3 = lambda x: None if x is None else round(x, 3)
    return dict(below_link={str(i): r3(v) for i, v in below.items()},
                up_idle={str(i): r3(v) for i, v in idle.items()},
                ramp_s=r3(ramp), endgame_s=r3(last - min(dones.values())),
                done_s={str(i): r3(v) for i, v in sorted(dones.items())})


def _mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def _f(x, nd=2):
    return "—" if x is None else "%.*f" % (nd, x)


def flow_table(results, methods, odd=None):
    """Per run and method: T/(F/B), seeder bytes sent over the image, the
    clients' fraction of time below link rate (mean / max), uplink idle
    (seeder / clients' mean), ramp-up, endgame; and with a slow or lossy
    client (odd = its host number) the others' slowest time and its own,
    over F/B."""
    hdr = ("| N | run | method | T s | T/(F/B) | seeder sent × image | clients below link rate, mean / max "
           "| uplink idle, seeder / clients' mean | ramp-up s | endgame s |")
    out = ["Where the seconds go (per run; link samples every 100 ms; below link rate = receiving under "
           "90 % of the client's own link rate between its start and its done; uplink idle = sending under "
           "10 % of the link rate between the first start and the last done; ramp-up = first start until a "
           "client first sends at 10 % of its rate; endgame = last done − first done).\n"]
    if odd:
        hdr += " others' slowest / (F/B) | h%d / (F/B) |" % odd
    out += [hdr, "|" + "---|" * (hdr.count("|") - 1)]
    for r in sorted(results, key=lambda r: (r["rate"], r["n"], r["piece"], r["run"])):
        fb = (r.get("unicast") or {}).get("one_copy_s")
        img = r.get("_img_bytes") or 1
        for m in methods:
            x = r.get(m)
            if not x or m == "unicast":
                continue
            fl = x.get("flow") or {}
            t = x.get("time_s")
            bl = [v for v in (fl.get("below_link") or {}).values() if v is not None]
            ci = [v for k, v in (fl.get("up_idle") or {}).items() if k != "0" and v is not None]
            tx = x.get("seeder_tx_bytes")
            row = "| %d | %d | %s | %s | %s | %s | %s / %s | %s / %s | %s | %s |" % (
                r["n"], r["run"] + 1, m, _f(t, 1), _f(t / fb if t and fb else None),
                _f(tx / img if tx else None), _f(_mean(bl)), _f(max(bl) if bl else None),
                _f((fl.get("up_idle") or {}).get("0")), _f(_mean(ci)), _f(fl.get("ramp_s"), 1),
                _f(fl.get("endgame_s"), 1))
            if odd:
                done = fl.get("done_s") or {}
                others = [v for k, v in done.items() if k != str(odd) and v is not None]
                row += " %s | %s |" % (_f(max(others) / fb if others and fb else None),
                                       _f(done[str(odd)] / fb if done.get(str(odd)) and fb else None))
            out.append(row)
    return "\n".join(out)
