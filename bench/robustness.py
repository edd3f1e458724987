#!/usr/bin/python3
"""What one hostile or heavy client costs everyone else (issue 18):

  1. memory: a 64 MB search body of 32M zeros (under max_body_bytes), one and
     two at once: the server's peak RSS (VmHWM) and RSS after;
  2. probes under heavy searches: /healthz latency (p50/p99/max) on its own
     connection while 3 client processes send search/batch requests of 256 ×
     k=1000 over 1,000 × 4096-d points;
  3. slowloris: a normal client's search latency (p50/p99) alone, then beside
     N sockets each sending a search request one byte every 2 s.

  bench/robustness.py [--vectord build/vectord] [--slow 1000] [--seconds 20]

Each part starts its own vectord (default settings) on a loopback port with
a scratch data directory. Prints a markdown table. Measures, asserts nothing.
"""
import argparse
import http.client
import json
import multiprocessing as mp
import os
import random
import resource
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from slowclients import SlowClients  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Vectord:
    def __init__(self, binary):
        self.dir = tempfile.TemporaryDirectory(prefix="vectord-robust-")
        self.port = free_port()
        self.proc = subprocess.Popen([binary, "--listen", f"127.0.0.1:{self.port}", "--data-dir",
                                      os.path.join(self.dir.name, "data")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                if self.request("GET", "/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("vectord did not start")

    def request(self, method, path, body=None, conn=None):
        c = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        data = body if body is None or isinstance(body, (str, bytes)) else json.dumps(body)
        c.request(method, path, data, {"Content-Type": "application/json"})
        r = c.getresponse()
        out = r.read()
        if not conn:
            c.close()
        return r.status, out

    def status_kib(self, field):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        self.proc.terminate()
        self.proc.wait(60)
        self.dir.cleanup()


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def memory(binary):
    rows = []
    body = '{"vector":[' + ",".join(["0"] * 32_000_000) + '],"k":1}'
    for n in (1, 2):
        v = Vectord(binary)
        try:
            v.request("PUT", "/collections/c", {"dim": 4})
            base = v.status_kib("VmRSS")
            with mp.Pool(n) as pool:
                statuses = pool.starmap(_post, [(v.port, "/collections/c/search", body)] * n)
            time.sleep(1)
            rows.append((f"{n} × 64 MB body of zeros (status {sorted(set(statuses))})",
                         f"peak {v.status_kib('VmHWM') / 1024:.0f} MiB, after {v.status_kib('VmRSS') / 1024:.0f} MiB "
                         f"(idle {base / 1024:.0f} MiB)"))
        finally:
            v.stop()
    return rows


def _post(port, path, body):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("POST", path, body, {"Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    c.close()
    return r.status


def _hammer(port, body, stop):
    while not stop.is_set():
        _post(port, "/collections/big/search/batch", body)


def probes(binary, seconds):
    v = Vectord(binary)
    try:
        dim = 4096
        v.request("PUT", "/collections/big", {"dim": dim, "metric": "l2"})
        rnd = random.Random(7)
        for b in range(0, 1000, 100):
            v.request("PUT", "/collections/big/points",
                      {"points": [{"id": i, "vector": [rnd.random() for _ in range(dim)]} for i in range(b, b + 100)]})
        heavy = json.dumps({"searches": [{"vector": [0.5] * dim, "k": 1000}] * 256})
        stop = mp.Event()
        procs = [mp.Process(target=_hammer, args=(v.port, heavy, stop)) for _ in range(3)]
        for p in procs:
            p.start()
        time.sleep(1)
        conn = http.client.HTTPConnection("127.0.0.1", v.port, timeout=60)
        lat, end = [], time.time() + seconds
        while time.time() < end:
            t = time.perf_counter()
            v.request("GET", "/healthz", conn=conn)
            lat.append(time.perf_counter() - t)
            time.sleep(0.02)
        stop.set()
        for p in procs:
            p.join(120)
        return [("/healthz beside 3 clients of search/batch 256 × k=1000 (1,000 × 4096-d)",
                 f"p50 {percentile(lat, 0.5) * 1e3:.2f} ms, p99 {percentile(lat, 0.99) * 1e3:.1f} ms, "
                 f"max {max(lat) * 1e3:.1f} ms ({len(lat)} probes)")]
    finally:
        v.stop()


def slowloris(binary, n_slow):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, n_slow + 512)), hard))
    v = Vectord(binary)
    try:
        v.request("PUT", "/collections/m", {"dim": 64, "index": {"type": "hnsw"}})
        rnd = random.Random(1)
        for b in range(10):
            v.request("PUT", "/collections/m/points",
                      {"points": [{"id": b * 1000 + i, "vector": [rnd.random() for _ in range(64)]} for i in range(1000)]})
        conn = http.client.HTTPConnection("127.0.0.1", v.port, timeout=60)

        def lat(n):
            out = []
            for _ in range(n):
                body = json.dumps({"vector": [rnd.random() for _ in range(64)], "k": 10})
                t = time.perf_counter()
                v.request("POST", "/collections/m/search", body, conn=conn)
                out.append(time.perf_counter() - t)
            return out

        alone = lat(2000)
        body = json.dumps({"vector": [0.5] * 64, "k": 3}).encode()
        req = (b"POST /collections/m/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % len(body)) + body
        with SlowClients(v.port, n_slow, "trickle", req, interval=2.0) as s:
            time.sleep(3)
            beside = lat(2000)
            closed = s.closed_by_server
        return [("search alone (64-d HNSW, 10k points)",
                 f"p50 {percentile(alone, 0.5) * 1e3:.2f} ms, p99 {percentile(alone, 0.99) * 1e3:.2f} ms"),
                (f"search beside {n_slow} slowloris sockets (a byte per 2 s)",
                 f"p50 {percentile(beside, 0.5) * 1e3:.2f} ms, p99 {percentile(beside, 0.99) * 1e3:.2f} ms "
                 f"({closed} closed by the server meanwhile)")]
    finally:
        v.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vectord", default=os.path.join(ROOT, "build", "vectord"))
    ap.add_argument("--slow", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=20)
    a = ap.parse_args()
    rows = memory(a.vectord) + probes(a.vectord, a.seconds) + slowloris(a.vectord, a.slow)
    print("| case | result |\n|---|---|")
    for case, result in rows:
        print(f"| {case} | {result} |")


if __name__ == "__main__":
    main()
