#!/usr/bin/python3
"""A target recall instead of knobs: what the calibration chooses and what
it buys. One vectord samples every search (recall_sample_every=1) and
calibrates an HNSW collection to each target in turn (the samples stay in
the window, so a new target chooses at once); a second vectord without
sampling then serves the same data, and each calibrated ef is measured
against the fixed default ef_search (64) on one connection: recall@10
against the exact ground truth, QPS and p50.

  bench/target_recall.py [--data bench/data/20000-1536] [--targets 0.9,0.95,0.99]
                         [--seconds 5] [--vectord build-release/vectord]
                         [--quant sq8 [--oversampling X]]

--quant sq8 (or fp16) gives both collections codes with their originals in
RAM ({"type": …, "originals": "ram"}); --oversampling sets the collection's
oversampling (0, the default: what the server chooses when none is given).

Prints a markdown table; asserts nothing.
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
INDEX = {"type": "hnsw", "m": 16, "ef_construction": 100}


def collection(ds, index, quant, oversampling):
    body = {"dim": ds.dim, "metric": "cosine", "shards": 1, "index": index}
    if quant != "none":
        body["quantization"] = {"type": quant, "originals": "ram"}
        if oversampling:
            body["quantization"]["oversampling"] = oversampling
    return body


def calibrate(binary, ds, targets, quant, oversampling):
    """{target: (ef chosen, recall measured by the calibration)}."""
    v = benchlib.Vectord(binary, ["--set", "recall_sample_every=1", "--set", "recall_cpu_percent=100"])
    try:
        v.call("PUT", "/collections/c", collection(ds, dict(INDEX, target_recall=targets[0]), quant, oversampling))
        benchlib.load_points(v, "c", ds)
        benchlib.wait_for_graph(v, "c")
        for i, q in enumerate(ds.queries):
            v.call("POST", "/collections/c/search", {"vector": [float(x) for x in q], "k": 10})
            deadline = time.time() + 60
            while v.call("GET", "/collections/c")["calibration"]["samples"] < min(i + 1, 256):
                if time.time() > deadline:
                    raise RuntimeError("the calibration does not take samples")
                time.sleep(0.01)
        out = {}
        for t in targets:
            v.call("PATCH", "/collections/c", {"index": {"target_recall": t}})
            cal = v.call("GET", "/collections/c")["calibration"]
            out[t] = (cal["ef_search"], cal["recall"], cal["samples"])
        return out
    finally:
        v.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(HERE, "data", "20000-1536"))
    ap.add_argument("--targets", default="0.9,0.95,0.99")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--vectord", default=os.path.join(ROOT, "build-release", "vectord"))
    ap.add_argument("--quant", default="none", help="none, sq8, fp16 (originals in RAM)")
    ap.add_argument("--oversampling", type=float, default=0, help="with --quant (0: the server's default)")
    a = ap.parse_args()
    ds = benchlib.open_dataset(a.data, a.queries)
    targets = [float(x) for x in a.targets.split(",")]
    load = os.path.join(ROOT, "build-release", "bench", "bench_load")
    chosen = calibrate(a.vectord, ds, targets, a.quant, a.oversampling)
    v = benchlib.Vectord(a.vectord, ["--set", "recall_sample_every=0"])
    rows = []
    try:
        v.call("PUT", "/collections/c", collection(ds, dict(INDEX, ef_search=64), a.quant, a.oversampling))
        q = v.call("GET", "/collections/c").get("quantization")
        over = q.get("oversampling") if isinstance(q, dict) else None
        benchlib.load_points(v, "c", ds)
        benchlib.wait_for_graph(v, "c")
        with tempfile.TemporaryDirectory() as tmp:
            for label, ef in [("ef_search 64 (fixed default)", 64)] + \
                             [(f"target {t}", chosen[t][0]) for t in targets]:
                req, gt = benchlib.write_search_requests(os.path.join(tmp, f"r{ef}"), "c", ds, "none", ef=ef)
                r = benchlib.run_load(load, v.port, req, gt, connections=1, seconds=a.seconds)
                rows.append((label, ef, r["recall"], r["qps"], r["p50_ms"]))
    finally:
        v.stop()
    codes = f", {a.quant} codes, originals in RAM, oversampling {over:g}" if a.quant != "none" else ""
    print(f"## Target recall — {ds.n} x {ds.dim}, cosine, HNSW m16 efc100{codes}, one shard, 1 connection\n")
    print("Calibration (every search sampled, the last 256 in the window):\n")
    print("| target | ef chosen | recall measured by the calibration | samples |\n|---:|---:|---:|---:|")
    for t in targets:
        ef, rec, n = chosen[t]
        print(f"| {t} | {ef} | {rec:.4f} | {n} |")
    print("\nServing (a second vectord, no sampling), recall@10 against the exact ground truth:\n")
    print("| breadth | ef | recall@10 | QPS | p50 ms |\n|---|---:|---:|---:|---:|")
    for label, ef, rec, qps, p50 in rows:
        print(f"| {label} | {ef} | {rec:.4f} | {qps:.0f} | {p50:.3f} |")


if __name__ == "__main__":
    main()
