#!/usr/bin/python3
"""Deterministic embedding-like data for the index benchmarks.

A Gaussian mixture in a low-rank subspace plus isotropic noise, L2-normalised
(the shape of sentence embeddings), held-out queries from the same mixture, and
exact top-k ground truth (cosine) for the unfiltered search and for the filters
"g < s" where g = id % 100 (selectivities s% = 1, 10, 50).

  bench/datagen.py OUT_DIR [--n 100000] [--dim 1536] [--queries 500] [--seed 1]

Writes base.fvecs, query.fvecs, gt.ivecs, gt_f1.ivecs, gt_f10.ivecs,
gt_f50.ivecs (fvecs/ivecs: per row an int32 count then the values), and
meta.json. Only Debian's python3-numpy is needed.
"""
import argparse
import json
import os

import numpy as np

FILTERS = (1, 10, 50)


def write_vecs(path, a, dtype):
    a = np.ascontiguousarray(a, dtype=dtype)
    n, d = a.shape
    rec = np.empty((n, d + 1), dtype=dtype)
    rec[:, 1:] = a
    rec[:, 0] = np.array([d], dtype="<i4").view(dtype)[0]
    rec.tofile(path)


def make(n, dim, n_queries, seed):
    rng = np.random.default_rng(seed)
    rank = min(dim, 64)
    basis = rng.standard_normal((rank, dim)).astype(np.float32) / np.sqrt(rank)
    centers = rng.standard_normal((256, rank)).astype(np.float32) * 2.0

    def draw(count):
        out = np.empty((count, dim), dtype=np.float32)
        for s in range(0, count, 20000):
            m = min(20000, count - s)
            lab = rng.integers(0, len(centers), m)
            low = centers[lab] + rng.standard_normal((m, rank)).astype(np.float32)
            x = low @ basis + 0.35 * rng.standard_normal((m, dim)).astype(np.float32) / np.sqrt(dim) * 8
            out[s:s + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
        return out

    return draw(n), draw(n_queries)


def ground_truth(base, queries, k, allowed=None):
    gt = np.empty((len(queries), k), dtype=np.int32)
    cand = np.arange(len(base)) if allowed is None else np.nonzero(allowed)[0]
    sub = base[cand]
    for s in range(0, len(queries), 100):
        scores = queries[s:s + 100] @ sub.T
        idx = np.argpartition(-scores, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, idx, 1), axis=1)
        gt[s:s + 100] = cand[np.take_along_axis(idx, order, 1)]
    return gt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--n", type=int, default=100000)
    ap.add_argument("--dim", type=int, default=1536)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--k", type=int, default=10)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    base, queries = make(a.n, a.dim, a.queries, a.seed)
    write_vecs(f"{a.out}/base.fvecs", base, "<f4")
    write_vecs(f"{a.out}/query.fvecs", queries, "<f4")
    write_vecs(f"{a.out}/gt.ivecs", ground_truth(base, queries, a.k), "<i4")
    g = np.arange(a.n) % 100
    for s in FILTERS:
        write_vecs(f"{a.out}/gt_f{s}.ivecs", ground_truth(base, queries, a.k, g < s), "<i4")
    with open(f"{a.out}/meta.json", "w") as f:
        json.dump({"n": a.n, "dim": a.dim, "queries": a.queries, "seed": a.seed, "k": a.k,
                   "metric": "cosine", "filters": list(FILTERS)}, f)


if __name__ == "__main__":
    main()
