#!/usr/bin/python3
"""The numpy baseline: one search as MemoryService runs it today, in process.

The embeddings sit in one numpy matrix; a search is one matrix-vector
product (cosine on normalised rows) and a top-k selection (argpartition,
then a sort of the k). BLAS is pinned to one thread, as under the GIL of a
busy service. For each N it reports p50/p99 of single queries, for float32
and float64 matrices (json.loads yields float64), and then the N at which p50
crosses the latency budget (100 ms by default), from a least-squares line
through the measured points (search time is linear in N).

  OPENBLAS_NUM_THREADS=1 bench/numpy_baseline.py [--sizes 10000,30000,100000,300000]
      [--dim 1536] [--queries 50] [--k 10] [--budget-ms 100] [--json FILE]

Needs Debian's python3-numpy only. Memory: N x dim x 12 bytes at the largest N.
"""
import argparse
import json
import os
import platform
import sys
import time

# Before numpy loads: one BLAS thread unless the caller chose otherwise.
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402


def search(matrix, q, k):
    scores = matrix @ q
    top = np.argpartition(-scores, k)[:k]
    return top[np.argsort(-scores[top])]


def measure(matrix, queries, k):
    search(matrix, queries[0], k)  # warm-up
    times = []
    for q in queries:
        t = time.perf_counter()
        search(matrix, q, k)
        times.append((time.perf_counter() - t) * 1e3)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def crossing(sizes, p50s, budget_ms):
    slope, intercept = np.polyfit(np.asarray(sizes, float), np.asarray(p50s, float), 1)
    if slope <= 0:
        return None
    return int((budget_ms - intercept) / slope)


def run_baseline(sizes, dim=1536, n_queries=50, k=10, seed=1, float64_max=300000):
    """p50/p99 per N (float32, and float64 up to float64_max rows) and the
    budget crossings; the dict bench/run stores."""
    sizes = sorted(sizes)
    rng = np.random.default_rng(seed)
    big = np.empty((sizes[-1], dim), dtype=np.float32)
    for s in range(0, sizes[-1], 50000):
        m = min(50000, sizes[-1] - s)
        x = rng.standard_normal((m, dim), dtype=np.float32)
        big[s:s + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    queries = big[rng.integers(0, sizes[-1], n_queries)] + 0.01
    rows = []
    for n in sizes:
        row = {"n": n}
        row["float32_p50_ms"], row["float32_p99_ms"] = measure(big[:n], queries, k)
        if n <= float64_max:
            m64 = big[:n].astype(np.float64)
            row["float64_p50_ms"], row["float64_p99_ms"] = measure(m64, queries.astype(np.float64), k)
            del m64
        rows.append(row)
    return {"dim": dim, "k": k, "queries": n_queries, "rows": rows,
            "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10000,30000,100000,300000")
    ap.add_argument("--dim", type=int, default=1536)
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--budget-ms", type=float, default=100.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args()
    sizes = sorted(int(s) for s in a.sizes.split(","))
    result = run_baseline(sizes, a.dim, a.queries, a.k, a.seed)
    print(f"## numpy brute force, single query, {a.dim} dims, k={a.k}, BLAS threads="
          f"{os.environ['OPENBLAS_NUM_THREADS']}, numpy {np.__version__}, {a.queries} queries per point")
    print()
    print("| N | float32 p50 ms | float32 p99 ms | float64 p50 ms | float64 p99 ms |")
    print("|---:|---:|---:|---:|---:|")
    for r in result["rows"]:
        f64 = (f"{r['float64_p50_ms']:.2f} | {r['float64_p99_ms']:.2f}" if "float64_p50_ms" in r
               else "– | –")
        print(f"| {r['n']} | {r['float32_p50_ms']:.2f} | {r['float32_p99_ms']:.2f} | {f64} |")
    print()
    for dtype in ("float32", "float64"):
        pts = [(r["n"], r[f"{dtype}_p50_ms"]) for r in result["rows"] if f"{dtype}_p50_ms" in r]
        n = crossing([p[0] for p in pts], [p[1] for p in pts], a.budget_ms) if len(pts) > 1 else None
        result[f"{dtype}_budget_n"] = n
        print(f"{dtype}: p50 crosses {a.budget_ms:g} ms near N = {n:,}" if n else
              f"{dtype}: no crossing found")
    result["budget_ms"] = a.budget_ms
    result["numpy"] = np.__version__
    result["machine"] = platform.processor() or platform.machine()
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
