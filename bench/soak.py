#!/usr/bin/python3
"""Load and soak: many keep-alive connections mixing searches, upserts and
deletes for a long time, optionally beside a crowd of slow clients. Reports,
window by window, throughput, p50/p99 latency, answers by status and the
server's memory; at the end, whether anything but deliberate overload
answers (429/503) came back, whether the server survived, and how its RSS
moved. Not part of the test run; asserts nothing, prints tables.

  bench/soak.py [--minutes 10] [--connections 256] [--window 30]
                [--points 20000] [--dim 256] [--slow 0] [--vectord PATH]
                [--json OUT]

The request mix (bench_load's closed loop, one thread per connection): 80 %
searches (k 10, HNSW, a third with a payload filter), 15 % upserts (a
batch of 8 points over ids the deletes also hit, so the collection's size
stays bounded), 5 % deletes (4 ids). --slow N also opens N slow clients
for the whole run: N/2 idle connections and N/2 that send their search one
byte at a time (tests/integration/slowclients.py). In every run a separate
client times one search per second on its own connection: compare its
latency with and without --slow to see what the slow clients cost a normal
client. Give the server room for them (--set max_connections=2048):
at the cap, connections get 503 overloaded, by design.
"""
import argparse
import base64
import json
import os
import random
import resource
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from benchlib import Vectord, find_binary, machine_facts  # noqa: E402
from slowclients import SlowClients  # noqa: E402
import http.client  # noqa: E402


def vec_b64(rng, dim):
    return base64.b64encode(struct.pack(f"<{dim}f", *(rng.gauss(0, 1) for _ in range(dim)))).decode()


def write_mix(path, rng, dim, id_space, n_lines=4000):
    with open(path, "w") as f:
        for i in range(n_lines):
            r = rng.random()
            if r < 0.80:
                body = {"vector_b64": vec_b64(rng, dim), "k": 10}
                if i % 3 == 0:
                    body["filter"] = {"must": [{"key": "group", "match": {"value": f"g{rng.randrange(10)}"}}]}
                f.write(f"POST /collections/soak/search\t{json.dumps(body)}\n")
            elif r < 0.95:
                pts = [{"id": rng.randrange(id_space), "vector_b64": vec_b64(rng, dim),
                        "payload": {"group": f"g{rng.randrange(10)}", "n": rng.randrange(1000)}}
                       for _ in range(8)]
                f.write(f"PUT /collections/soak/points\t{json.dumps({'points': pts})}\n")
            else:
                ids = [rng.randrange(id_space) for _ in range(4)]
                f.write(f"POST /collections/soak/points/delete\t{json.dumps({'ids': ids})}\n")
    return path


def rss_mib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Prober(threading.Thread):
    """A normal client: one search per second on its own connection."""

    def __init__(self, port, body):
        super().__init__(daemon=True)
        self.port, self.body, self.lat, self.failures = port, body, [], 0
        self.stop = threading.Event()

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        while not self.stop.wait(1.0):
            t = time.time()
            try:
                conn.request("POST", "/collections/soak/search", body=self.body,
                             headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    self.failures += 1
                else:
                    self.lat.append(time.time() - t)
            except OSError:
                self.failures += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)


def open_connections(port):
    """The server's vectord_http_connections gauge (this probe's own included)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request("GET", "/metrics")
        for line in c.getresponse().read().decode().splitlines():
            if line.startswith("vectord_http_connections "):
                return int(float(line.split()[1]))
    except OSError:
        return None
    finally:
        c.close()
    return None


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--connections", type=int, default=256)
    ap.add_argument("--window", type=float, default=30)
    ap.add_argument("--points", type=int, default=20000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--slow", type=int, default=0)
    ap.add_argument("--vectord", default=find_binary("vectord"))
    ap.add_argument("--load", default=find_binary("bench/bench_load"))
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="a server setting (vectord --set), e.g. max_connections=2048")
    ap.add_argument("--json")
    a = ap.parse_args()
    # Both ends hold a socket per connection.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    rng = random.Random(11)
    v = Vectord(a.vectord, [arg for kv in a.set for arg in ("--set", kv)])
    try:
        v.call("PUT", "/collections/soak", {"dim": a.dim, "metric": "cosine", "index": {"type": "hnsw"},
                                            "payload_indexes": {"group": "keyword"}})
        for s in range(0, a.points, 500):
            v.call("PUT", "/collections/soak/points", {"points": [
                {"id": i, "vector_b64": vec_b64(rng, a.dim), "payload": {"group": f"g{i % 10}", "n": i}}
                for i in range(s, min(a.points, s + 500))]})
        tmp = tempfile.mkdtemp(prefix="vectord-soak-")
        mix = write_mix(os.path.join(tmp, "mix.req"), rng, a.dim, a.points)
        rss0 = rss_mib(v.proc.pid)
        slow = []
        # A normal client beside the load (and the slow clients, if any):
        # compare its latency between runs with and without --slow.
        req_body = json.dumps({"vector_b64": vec_b64(rng, a.dim), "k": 10}).encode()
        prober = Prober(v.port, req_body)
        prober.start()
        if a.slow:
            req = (b"POST /collections/soak/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                   b"Content-Length: %d\r\n\r\n" % len(req_body)) + req_body
            slow = [SlowClients(v.port, a.slow // 2, "idle").__enter__(),
                    SlowClients(v.port, a.slow - a.slow // 2, "trickle", req, interval=0.5).__enter__()]
        windows = []
        t_end = time.time() + a.minutes * 60
        t0 = time.time()
        while time.time() < t_end and v.proc.poll() is None:
            secs = min(a.window, max(1.0, t_end - time.time()))
            r = subprocess.run([a.load, "--port", str(v.port), "--requests", mix, "--connections",
                                str(a.connections), "--seconds", str(secs), "--warmup", "0"],
                               capture_output=True, text=True, timeout=secs + 300)
            if r.returncode != 0:
                print("bench_load failed:", r.stderr, file=sys.stderr)
                break
            w = json.loads(r.stdout)
            w["non_200"] = r.stderr.strip().splitlines()[:20]
            for line in w["non_200"]:
                print("  not 200:", line[:300], flush=True)
            w["t"] = time.time() - t0
            w["rss_mib"] = rss_mib(v.proc.pid)
            w["open_connections"] = open_connections(v.port)
            w["probe_p99_ms"] = pct(prober.lat[-int(secs):], 0.99) * 1e3
            windows.append(w)
            st = w["statuses"]
            print(f"t={w['t']:6.0f}s qps={w['qps']:8.0f} p50={w['p50_ms']:7.2f}ms p99={w['p99_ms']:8.2f}ms "
                  f"statuses={st} rss={w['rss_mib']:.0f}MiB open={w['open_connections']}", flush=True)
        alive = v.proc.poll() is None
        for s in slow:
            s.stop()
        prober.stop.set()
        prober.join()
        overloads, log_lines = {}, []
        if alive:
            # Why anything was refused: the server's own counters and log.
            c = http.client.HTTPConnection("127.0.0.1", v.port, timeout=30)
            c.request("GET", "/metrics")
            for line in c.getresponse().read().decode().splitlines():
                if line.startswith("vectord_http_overloaded_total{") and not line.endswith(" 0"):
                    overloads[line.split("{", 1)[1].split("}")[0]] = float(line.rsplit(" ", 1)[1])
            c.close()
        v.log.seek(0)
        log_lines = [ln for ln in v.log.read().splitlines() if "level=warn" in ln or "level=error" in ln]
        peak = rss_mib(v.proc.pid, "VmHWM") if alive else float("nan")
        rss_end = rss_mib(v.proc.pid) if alive else float("nan")
        statuses = {}
        for w in windows:
            for k, n in w["statuses"].items():
                statuses[k] = statuses.get(k, 0) + n
        bad_5xx = sum(n for k, n in statuses.items() if k.startswith("5") and k != "503")
        other = sum(n for k, n in statuses.items() if k not in ("200", "429", "503") and not k.startswith("5"))
        lat99 = [w["p99_ms"] for w in windows]
        print()
        print(f"## Soak: {a.connections} keep-alive connections, {a.minutes:g} min, "
              f"{a.points} × {a.dim} HNSW, 80/15/5 search/upsert/delete"
              + (f", {a.slow} slow clients" if a.slow else ""))
        print()
        print("| window end (s) | QPS | p50 ms | p99 ms | 200 | 429/503 | other | RSS MiB | connections after | normal client p99 ms |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for w in windows:
            st = w["statuses"]
            over = st.get("429", 0) + st.get("503", 0)
            oth = sum(n for k, n in st.items() if k not in ("200", "429", "503"))
            row = (f"| {w['t']:.0f} | {w['qps']:.0f} | {w['p50_ms']:.2f} | {w['p99_ms']:.2f} | {st.get('200', 0)} "
                   f"| {over} | {oth} | {w['rss_mib']:.0f} | {w['open_connections']} |")
            row += f" {w['probe_p99_ms']:.2f} |"
            print(row)
        print()
        print(f"- server alive at the end: **{'yes' if alive else 'NO'}**; 5xx other than 503: **{bad_5xx}**; "
              f"other non-200: {other}; non-200 answers and broken connections: {sum(w['errors'] for w in windows)}")
        print(f"- RSS: {rss0:.0f} MiB after loading, {rss_end:.0f} MiB at the end, peak {peak:.0f} MiB; "
              f"p99 over windows: median {pct(lat99, 0.5):.2f} ms, worst {max(lat99) if lat99 else float('nan'):.2f} ms")
        print(f"- refusals counted by the server (vectord_http_overloaded_total): {overloads or 'none'}; "
              f"warnings and errors in its log: {len(log_lines)}")
        for ln in log_lines[:10]:
            print(f"    {ln}")
        print(f"- normal client (one search a second) beside the load and {a.slow} slow clients: {len(prober.lat)} searches, "
              f"{prober.failures} failed, p50 {pct(prober.lat, 0.5) * 1e3:.2f} ms, "
              f"p99 {pct(prober.lat, 0.99) * 1e3:.2f} ms")
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"args": vars(a), "machine": machine_facts(), "windows": windows, "alive": alive,
                           "statuses": statuses, "bad_5xx": bad_5xx, "rss_start_mib": rss0,
                           "rss_end_mib": rss_end, "rss_peak_mib": peak, "overloaded": overloads, "log_warnings": log_lines[:50],
                           "probe_ms": [x * 1e3 for x in prober.lat]}, f, indent=1)
    finally:
        v.stop()


if __name__ == "__main__":
    main()
