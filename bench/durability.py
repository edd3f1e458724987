#!/usr/bin/python3
"""Durability benchmarks: acknowledged upserts per second under group commit,
and recovery time from snapshot + WAL against rebuilding the index.

  bench/durability.py [--dim 1536] [--seconds 5] [--clients 1,16,64]
                      [--data bench/data/100000-1536] [--tail 5000]
                      [--wal-io auto|io_uring|pwrite] [--skip-recovery] [--skip-wal]
                      [--vectord build/vectord]

Part 1 starts vectord (scratch data dir) once per fsync policy (always,
batch) and runs bench_wal_load with 1, 16 and 64 clients, each sending
single-point upserts of DIM floats and waiting for each answer. Average group
size = WAL records / WAL groups over the run (from /metrics). The collection
is flat so the figure is the write path (HTTP + log + apply), not index
building; one row adds an HNSW collection at the largest client count.

Part 2 loads the data set (bench/datagen.py format, as compare-hnsw makes it)
into an HNSW collection, checkpoints, upserts --tail more points (they stay
in the WAL), kills vectord with SIGKILL and restarts it: recovery time is
vectord's own (snapshot load + WAL replay, from its "ready" log line), the
rebuild time is how long the same points took to insert in the first place.
Prints markdown tables; asserts nothing.
"""
import argparse
import base64
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


class Vectord:
    def __init__(self, binary, data_dir, args=()):
        self.log_path = data_dir + ".log"
        self.log = open(self.log_path, "a+")
        self.proc = subprocess.Popen([binary, "--listen", "127.0.0.1:0", "--data-dir", data_dir, *args],
                                     stdout=self.log, stderr=self.log)
        self.t0 = time.time()
        start = os.path.getsize(self.log_path)
        for _ in range(30000):
            self.log.flush()
            with open(self.log_path) as f:
                f.seek(start)
                text = f.read()
            m = re.search(r'msg="listening" addr=127\.0\.0\.1:(\d+)', text)
            r = re.search(r'msg="ready" recovery_s=([\d.]+)', text)
            if m and r:
                self.port, self.recovery_s, self.ready_line = int(m.group(1)), float(r.group(1)), text
                break
            if self.proc.poll() is not None:
                raise RuntimeError(text)
            time.sleep(0.01)
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=3600)

    def call(self, method, path, body=None):
        self.conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        r = self.conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError(f"{method} {path}: {r.status} {data[:300]!r}")
        return json.loads(data) if data.startswith(b"{") else data.decode()

    def metric(self, name):
        text = self.call("GET", "/metrics")
        m = re.search(rf"^{name} ([\d.e+]+)$", text, re.M)
        return float(m.group(1)) if m else 0.0

    def stop(self, sig=signal.SIGTERM):
        self.conn.close()
        self.proc.send_signal(sig)
        self.proc.wait(timeout=600)
        self.log.close()


def wal_table(a, tmp):
    load = os.path.join(os.path.dirname(os.path.abspath(a.vectord)), "bench", "bench_wal_load")
    print(f"### Acknowledged single-point upserts ({a.dim} floats, {a.seconds:g} s per row, "
          f"load average {os.getloadavg()[0]:.2f})\n")
    print("| fsync | index | clients | upserts/s | p50 ms | p99 ms | avg group | fsyncs/s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    rates = {}
    for policy in ("always", "batch"):
        d = os.path.join(tmp, f"wal-{policy}")
        v = Vectord(a.vectord, d, ["--set", f"wal_fsync={policy}", "--set", f"wal_io={a.wal_io}"])
        v.call("PUT", "/collections/flat", json.dumps({"dim": a.dim, "metric": "cosine"}))
        v.call("PUT", "/collections/graph", json.dumps({"dim": a.dim, "metric": "cosine",
                                                        "index": {"type": "hnsw"}}))
        rows = [("flat", c) for c in a.clients] + [("graph", a.clients[-1])]
        for i, (coll, clients) in enumerate(rows):
            rec0, grp0 = v.metric("vectord_wal_records_total"), v.metric("vectord_wal_group_records_count")
            fs0 = v.metric("vectord_wal_fsyncs_total")
            out = subprocess.run([load, str(v.port), coll, str(a.dim), str(clients), str(a.seconds),
                                  str(i * 10**10)], capture_output=True, text=True)
            m = dict(kv.split("=") for kv in out.stdout.split())
            rec = v.metric("vectord_wal_records_total") - rec0
            grp = v.metric("vectord_wal_group_records_count") - grp0
            fs = v.metric("vectord_wal_fsyncs_total") - fs0
            rate = float(m["rate"])
            rates[(policy, coll, clients)] = rate
            print(f"| {policy} | {'hnsw' if coll == 'graph' else 'flat'} | {clients} | {rate:,.0f} | "
                  f"{float(m['p50_ms']):.2f} | {float(m['p99_ms']):.2f} | "
                  f"{rec / grp if grp else 0:.1f} | {fs / float(m['seconds']):,.0f} |")
        io = re.search(r"wal_io=(\w+)", v.ready_line).group(1)
        print(f"| {policy} | (wal_io: {io}) | | | | | | |")
        v.stop()
    c1, cn = a.clients[0], a.clients[-1]
    for policy in ("always", "batch"):
        print(f"- {policy}: {cn} clients / {c1} client = "
              f"{rates[(policy, 'flat', cn)] / rates[(policy, 'flat', c1)]:.1f}x")
    print()


def read_vecs(path, dtype):
    raw = np.fromfile(path, dtype=dtype)
    d = raw[:1].view(np.int32)[0]
    return raw.reshape(-1, d + 1)[:, 1:].copy()


def recovery_table(a, tmp):
    base = read_vecs(os.path.join(a.data, "base.fvecs"), np.float32)
    n, dim = base.shape
    d = os.path.join(tmp, "recovery")
    v = Vectord(a.vectord, d)
    v.call("PUT", "/collections/bench", json.dumps({"dim": int(dim), "metric": "cosine",
                                                    "index": {"type": "hnsw"}}))

    def load(lo, hi):
        for s in range(lo, hi, 500):
            chunk = base[s:min(s + 500, hi)]
            pts = [{"id": int(s + i), "vector_b64": base64.b64encode(chunk[i].tobytes()).decode(),
                    "payload": {"userId": f"u{(s + i) % 100}"}} for i in range(len(chunk))]
            v.call("PUT", "/collections/bench/points", json.dumps({"points": pts}))

    main_n = n - a.tail
    t = time.time()
    load(0, main_n)
    build_s = time.time() - t
    t = time.time()
    ck = v.call("POST", "/admin/checkpoint")["result"]
    ck_s = time.time() - t
    load(main_n, n)
    rss = v.metric("vectord_process_resident_memory_bytes")
    v.stop(signal.SIGKILL)
    snap_bytes = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(os.path.join(d, "snapshots"))
                     for f in fs)
    wal_bytes = sum(os.path.getsize(os.path.join(d, "wal", f)) for f in os.listdir(os.path.join(d, "wal")))
    v = Vectord(a.vectord, d)
    wall = time.time() - v.t0
    line = v.ready_line
    snaps = re.search(r"snapshots=(\d+)", line).group(1)
    recs = re.search(r"wal_records=(\d+)", line).group(1)
    snap_s = v.metric('vectord_recovery_seconds{phase="snapshots"}')
    replay_s = v.metric('vectord_recovery_seconds{phase="wal_replay"}')
    count = v.call("GET", "/collections/bench")["result"]["points_count"]
    v.stop()
    print(f"### Recovery, {n:,} × {dim} HNSW (m 16, ef_construction 200), "
          f"load average {os.getloadavg()[0]:.2f}\n")
    print("| what | figure |\n|---|---:|")
    print(f"| build from scratch ({main_n:,} points over HTTP) | {build_s:.1f} s |")
    print(f"| checkpoint (snapshot of {ck['shards']} shards, {ck['bytes'] / 2**20:,.0f} MiB) | {ck_s:.2f} s |")
    print(f"| on disk after SIGKILL: snapshots / WAL | {snap_bytes / 2**20:,.0f} MiB / {wal_bytes / 2**20:,.0f} MiB |")
    print(f"| recovery: snapshot load ({snaps} files) | {snap_s:.2f} s |")
    print(f"| recovery: WAL replay ({recs} records, {a.tail:,} points) | {replay_s:.2f} s |")
    print(f"| recovery total (vectord) / process start to ready | {snap_s + replay_s:.2f} s / {wall:.2f} s |")
    print(f"| points after recovery | {count:,} |")
    print(f"| RSS before the kill | {rss / 2**20:,.0f} MiB |\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dim", type=int, default=1536)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--clients", default="1,16,64")
    ap.add_argument("--data", default=os.path.join(HERE, "data", "100000-1536"))
    ap.add_argument("--tail", type=int, default=5000)
    ap.add_argument("--wal-io", default="auto", help="auto | io_uring | pwrite")
    ap.add_argument("--skip-recovery", action="store_true")
    ap.add_argument("--skip-wal", action="store_true")
    ap.add_argument("--vectord", default=os.path.join(ROOT, "build", "vectord"))
    a = ap.parse_args()
    a.clients = [int(c) for c in a.clients.split(",")]
    tmp = tempfile.mkdtemp(prefix="vectord-durability-")
    try:
        if not a.skip_wal:
            wal_table(a, tmp)
        if not a.skip_recovery:
            recovery_table(a, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
