#!/usr/bin/python3
"""Fan-out only where it pays: the same data in a one-shard and a two-shard
HNSW collection, searched over HTTP on one connection (p50, the latency a
lone client sees) and on 8 connections (QPS, the machine's throughput), for
each ef. With --baseline a second vectord binary (e.g. a build of the
previous commit) runs the same steps, and the table shows both, so the
ratio is taken in one run on one machine.

  bench/fanout.py [--data bench/data/20000-1536] [--ef 16,64] [--seconds 5]
                  [--vectord build-release/vectord] [--baseline OTHER/vectord]

The data set comes from bench/datagen.py (made and cached if missing). The
load generator is build-release/bench/bench_load (closed loop, keep-alive),
on the same cores as the server. Prints a markdown table; asserts nothing.
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def measure(binary, ds, efs, seconds, load):
    """{(shards, ef): {"p50_1", "qps_1", "qps_8", "recall", "fanned_out"}} for one vectord binary."""
    v = benchlib.Vectord(binary)
    out = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for shards in (1, 2):
                name = f"s{shards}"
                v.call("PUT", f"/collections/{name}", {"dim": ds.dim, "metric": "cosine", "shards": shards,
                                                       "index": {"type": "hnsw", "m": 16, "ef_construction": 100}})
                benchlib.load_points(v, name, ds)
                benchlib.wait_for_graph(v, name)  # else the searches scan the backlog
                for ef in efs:
                    req, gt = benchlib.write_search_requests(os.path.join(tmp, f"{name}-{ef}"), name, ds, "none",
                                                             ef=ef)
                    one = benchlib.run_load(load, v.port, req, gt, connections=1, seconds=seconds)
                    eight = benchlib.run_load(load, v.port, req, gt, connections=8, seconds=seconds)
                    out[(shards, ef)] = {"p50_1": one["p50_ms"], "qps_1": one["qps"],
                                         "qps_8": eight["qps"], "recall": one.get("recall")}
                info = v.call("GET", f"/collections/{name}")
                for ef in efs:
                    out[(shards, ef)]["fanned_out"] = info["searches"].get("fanned_out")
    finally:
        v.stop()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(HERE, "data", "20000-1536"))
    ap.add_argument("--ef", default="16,64")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--vectord", default=os.path.join(ROOT, "build-release", "vectord"))
    ap.add_argument("--baseline")
    ap.add_argument("--queries", type=int, default=300)
    a = ap.parse_args()
    ds = benchlib.open_dataset(a.data, a.queries)
    efs = [int(x) for x in a.ef.split(",")]
    load = os.path.join(ROOT, "build-release", "bench", "bench_load")
    runs = [("vectord", measure(a.vectord, ds, efs, a.seconds, load))]
    if a.baseline:
        runs.append(("baseline", measure(a.baseline, ds, efs, a.seconds, load)))
    print(f"## Shards searched in parallel only where it pays — {ds.n} x {ds.dim}, cosine, HNSW m16 efc100, "
          f"{os.cpu_count()} cores shared with the load generator\n")
    print("| binary | ef | shards | recall@10 | p50 ms, 1 conn | QPS, 1 conn | QPS, 8 conns | fanned out |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, res in runs:
        for ef in efs:
            for shards in (1, 2):
                r = res[(shards, ef)]
                rec = f"{r['recall']:.3f}" if r.get("recall") is not None else "-"
                print(f"| {label} | {ef} | {shards} | {rec} | {r['p50_1']:.3f} | {r['qps_1']:.0f} | "
                      f"{r['qps_8']:.0f} | {r.get('fanned_out', '-')} |")


if __name__ == "__main__":
    main()
