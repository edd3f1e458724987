#!/usr/bin/python3
"""JSON vectors as cheap as vector_b64 (issue 20, item 1): the p50 latency of
one search whose query vector is a JSON array of numbers against the same
search with the vector as `vector_b64`, on one keep-alive connection.

  bench/json_vs_b64.py [--data bench/data/100000-1536] [--points 20000]
                       [--ef 16] [--rounds 7] [--seconds 3]
                       [--vectord build-release/vectord]

vectord (one collection, HNSW M 16, ef_construction 200) is loaded with the
first --points vectors of --data over HTTP and waits until its graph holds
every point. The queries are written both ways (JSON as Python's json.dumps
writes a numpy float32 vector made a list: up to 17 significant digits,
", " between numbers). Then bench_load (one connection) sends the JSON form
for --seconds, then the base64 form, --rounds times in turn: the machine's
speed moves between minutes, so each round's two p50s are compared with
each other, and the table gives every round and the median of the rounds'
ratios. Asserts nothing.
"""
import argparse
import os
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import benchlib  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(HERE, "data", "100000-1536"))
    ap.add_argument("--points", type=int, default=20000)
    ap.add_argument("--ef", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--vectord", default=os.path.join(ROOT, "build-release", "vectord"))
    a = ap.parse_args()
    load = os.path.join(os.path.dirname(a.vectord), "bench", "bench_load")
    ds = benchlib.open_dataset(a.data, None)
    if a.points < ds.n:
        ds.base, ds.n = ds.base[:a.points], a.points
    v = benchlib.Vectord(a.vectord, [])
    try:
        v.call("PUT", "/collections/c", {"dim": ds.dim, "metric": ds.metric,
                                          "index": {"type": "hnsw", "m": 16, "ef_construction": 200}})
        benchlib.load_points(v, "c", ds)
        benchlib.wait_for_graph(v, "c")
        with tempfile.TemporaryDirectory() as tmp:
            json_req, _ = benchlib.write_search_requests(os.path.join(tmp, "json"), "c", ds, "none", ef=a.ef)
            b64_req, _ = benchlib.write_search_requests(os.path.join(tmp, "b64"), "c", ds, "none", b64=True,
                                                        ef=a.ef)
            print(f"### JSON numbers against vector_b64: {ds.n:,} × {ds.dim}, HNSW ef {a.ef}, one connection\n")
            print("| round | JSON p50 ms | b64 p50 ms | JSON / b64 |\n|---:|---:|---:|---:|")
            ratios = []
            for r in range(a.rounds):
                pj = benchlib.run_load(load, v.port, json_req, connections=1, seconds=a.seconds)["p50_ms"]
                pb = benchlib.run_load(load, v.port, b64_req, connections=1, seconds=a.seconds)["p50_ms"]
                ratios.append(pj / pb)
                print(f"| {r + 1} | {pj:.3f} | {pb:.3f} | {pj / pb:.2f}× |", flush=True)
            print(f"\nMedian of the rounds' ratios: **{statistics.median(ratios):.2f}×** "
                  f"({min(ratios):.2f}–{max(ratios):.2f}×); the target is ≤ 1.10×.")
    finally:
        v.stop()


if __name__ == "__main__":
    main()
