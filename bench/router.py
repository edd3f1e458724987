#!/usr/bin/python3
"""vectord-router's cost (docs/PARTITIONS.md): the same searches sent to one
vectord holding all the points, and through the router to P partitions (P
vectord processes on this machine, each with its tenants' points), for each
P. Two kinds of search: one tenant's (the router sends it to that tenant's
partition: the router's overhead alone) and searches without a tenant filter
(the router asks every partition and merges the top k: fan-out cost).

  bench/router.py [--n 20000] [--dim 384] [--partitions 1,2,4] [--seconds 3] [--rounds 3]
                  [--baseline-router OTHER/vectord-router]

The data set (bench/datagen.py, userId drawn Zipf over n/100 users) is made
and cached if missing. The load generator is bench_load (closed loop,
keep-alive) on the same cores as every process: at P partitions, P + 1
servers and the load share 2 cores, so the 8-connection QPS shows the
machine's total work per search, not a cluster's. Prints a markdown table;
asserts nothing.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CREATE = {"metric": "cosine", "index": {"type": "hnsw", "m": 16, "ef_construction": 100, "ef_search": 64},
          "payload_indexes": {"userId": "keyword"}}


class Router:
    def __init__(self, binary, ports):
        self.tmp = tempfile.mkdtemp(prefix="vectord-router-bench-")
        self.log = open(os.path.join(self.tmp, "router.log"), "w+")
        args = [binary, "--listen", "127.0.0.1:0"]
        for p in ports:
            args += ["--partition", f"http://127.0.0.1:{p}"]
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log)
        deadline = time.time() + 30
        self.port = None
        while time.time() < deadline and not self.port:
            self.log.seek(0)
            m = re.search(r'msg="listening" addr=127\.0\.0\.1:(\d+)', self.log.read())
            self.port = int(m.group(1)) if m else None
            time.sleep(0.02)
        if not self.port:
            raise RuntimeError("vectord-router did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


def measure(load, port, req, gt, seconds):
    one = benchlib.run_load(load, port, req, gt, connections=1, seconds=seconds)
    eight = benchlib.run_load(load, port, req, gt, connections=8, seconds=seconds)
    return {"p50": one["p50_ms"], "p99": one["p99_ms"], "qps8": eight["qps"], "recall": one.get("recall")}


class Client:
    """benchlib.Vectord's call() on any port (the router's)."""

    def __init__(self, port):
        import http.client
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)

    call = benchlib.Vectord.call


def settle(clients):
    """Until every collection says it is ready (no background work left)."""
    deadline = time.time() + 300
    while time.time() < deadline:
        if all(c.call("GET", "/collections/bench")["status"] == "ready" for c in clients):
            time.sleep(1.0)
            return
        time.sleep(0.2)


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--partitions", default="1,2,4")
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--vectord", default=benchlib.find_binary("vectord"))
    ap.add_argument("--router", default=benchlib.find_binary("vectord-router"))
    ap.add_argument("--baseline-router", help="another vectord-router binary, run beside --router over the same "
                                              "partitions (e.g. a build of the previous commit)")
    ap.add_argument("--load", default=benchlib.find_binary("bench/bench_load"))
    a = ap.parse_args()
    ds = benchlib.open_dataset(benchlib.ensure_dataset(a.n, a.dim, queries=200), 200)
    servers, routers, paths = [], [], []  # paths: (name, port)
    with tempfile.TemporaryDirectory() as tmp:
        reqs = {kind: benchlib.write_search_requests(os.path.join(tmp, kind), "bench", ds, kind)
                for kind in ("none", "tenant")}
        try:
            single = benchlib.Vectord(a.vectord)
            servers.append(single)
            single.call("PUT", "/collections/bench", {"dim": ds.dim, **CREATE})
            benchlib.load_points(single, "bench", ds)
            paths.append(("direct, one vectord", single.port))
            for p in [int(x) for x in a.partitions.split(",")]:
                parts = [benchlib.Vectord(a.vectord) for _ in range(p)]
                servers += parts
                router = Router(a.router, [v.port for v in parts])
                routers.append(router)
                via = Client(router.port)
                via.call("PUT", "/collections/bench", {"dim": ds.dim, **CREATE})
                benchlib.load_points(via, "bench", ds)  # split by userId
                paths.append((f"router, {p} partition{'s' if p > 1 else ''}", router.port))
                if a.baseline_router:
                    base = Router(a.baseline_router, [v.port for v in parts])
                    routers.append(base)
                    paths.append((f"baseline router, {p} partition{'s' if p > 1 else ''}", base.port))
            settle(servers)
            # Rounds interleave the paths, so a noisy moment touches them all alike.
            got = {}
            for _ in range(a.rounds):
                for name, port in paths:
                    for kind, (req, gt) in reqs.items():
                        got.setdefault((name, kind), []).append(measure(a.load, port, req, gt, a.seconds))
        finally:
            for r in routers:
                r.stop()
            for v in servers:
                v.stop()
    rows = [(name, kind, {k: median([m[k] for m in ms]) if ms[0][k] is not None else None for k in ms[0]})
            for (name, kind), ms in got.items()]
    print(f"\nvectord-router: {ds.n} x {ds.dim} (cosine, HNSW m16 ef 64, userId indexed), 1 connection p50/p99 and "
          f"8-connection QPS, {a.seconds:g} s each, median of {a.rounds} interleaved rounds; all processes "
          f"on {os.cpu_count()} cores\n")
    print("| path | search | p50 ms | p99 ms | QPS (8 conn) | recall@10 |")
    print("|---|---|---:|---:|---:|---:|")
    for path, kind, m in rows:
        rec = f"{m['recall']:.3f}" if m["recall"] is not None else "-"
        print(f"| {path} | {'one tenant' if kind == 'tenant' else 'no tenant filter'} | {m['p50']:.3f} | "
              f"{m['p99']:.3f} | {m['qps8']:.0f} | {rec} |")


if __name__ == "__main__":
    main()
