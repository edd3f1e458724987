#!/usr/bin/python3
"""Deterministic embedding-like data for the index benchmarks.

A Gaussian mixture in a low-rank subspace plus isotropic noise, L2-normalised
(the shape of sentence embeddings), held-out queries from the same mixture, and
exact top-k ground truth (cosine) for the unfiltered search and for the filters
"g < s" where g = id % 100 (selectivities s% = 1, 10, 50).

  bench/datagen.py OUT_DIR [--n 100000] [--dim 1536] [--queries 500] [--seed 1]
  bench/datagen.py OUT_DIR --real DATASETS/NAME [--queries 1000]

--real takes a set fetched by ../shared/data/get-datasets (NAME_base.fvecs,
NAME_query.fvecs, NAME_groundtruth.ivecs, NAME.json): its base as it is, its
first --queries queries, the set's own ground truth (top k) for the unfiltered
search and exact ground truth by the set's metric (angular = cosine, or l2)
for the g filters; no payload or tenant files.

Writes base.fvecs, query.fvecs, gt.ivecs, gt_f1.ivecs, gt_f10.ivecs,
gt_f50.ivecs (fvecs/ivecs: per row an int32 count then the values),
payload.npz, gt_user.ivecs and meta.json. Only Debian's python3-numpy is
needed.

Payloads model MemoryService's tenancy: point i has g = i % 100 (for the
selectivity filters), userId drawn from a Zipf distribution (exponent 1.1)
over n/100 users, so a few users own many memories and most own few; type
(fact 50%, event 30%, preference 15%, summary 5%) and createdAt (uniform over
2025). gt_user is the ground truth for "userId = U" where U is the user whose
share is closest to 1% of the points (meta.json names U and its count).
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


TYPES = ("fact", "event", "preference", "summary")
TYPE_P = (0.5, 0.3, 0.15, 0.05)
YEAR_2025 = (1735689600, 1767225600)


def make_payload(n, seed):
    """Per-point payload columns (deterministic in n and seed)."""
    rng = np.random.default_rng(seed + 1000)
    users = max(100, n // 100)
    weights = 1.0 / np.arange(1, users + 1) ** 1.1
    user = rng.choice(users, size=n, p=weights / weights.sum()).astype(np.int32)
    kind = rng.choice(len(TYPES), size=n, p=TYPE_P).astype(np.int8)
    created = rng.integers(YEAR_2025[0], YEAR_2025[1], size=n, dtype=np.int64)
    return {"g": (np.arange(n) % 100).astype(np.int32), "user": user, "type": kind,
            "created": created}


def tenant_of_one_percent(user):
    """The user whose share of the points is closest to 1%, and its count."""
    counts = np.bincount(user)
    u = int(np.argmin(np.abs(counts - 0.01 * len(user))))
    return u, int(counts[u])


def payload_json(cols, i):
    """Point i's payload as vectord stores it."""
    return {"g": int(cols["g"][i]), "userId": f"u{int(cols['user'][i])}",
            "type": TYPES[int(cols["type"][i])], "createdAt": int(cols["created"][i])}


def ground_truth(base, queries, k, allowed=None, metric="cosine"):
    """Exact top-k by cosine (rows are unit length) or by l2, best first. With
    fewer than k allowed points, the rows are padded with -1."""
    gt = np.full((len(queries), k), -1, dtype=np.int32)
    cand = np.arange(len(base)) if allowed is None else np.nonzero(allowed)[0]
    kk = min(k, len(cand))
    if kk == 0:
        return gt
    sub = base[cand]
    half_norms = (sub.astype(np.float64) ** 2).sum(1).astype(np.float32) / 2
    for s in range(0, len(queries), 100):
        scores = queries[s:s + 100] @ sub.T
        if metric == "l2":  # -|q - x|² / 2 + |q|² / 2: the same order as -|q - x|
            scores -= half_norms[None, :]
        idx = (np.argpartition(-scores, kk - 1, axis=1)[:, :kk] if kk < len(cand)
               else np.tile(np.arange(len(cand)), (len(scores), 1)))
        order = np.argsort(-np.take_along_axis(scores, idx, 1), axis=1, kind="stable")
        gt[s:s + 100, :kk] = cand[np.take_along_axis(idx, order, 1)]
    return gt


def read_vecs(path, dtype):
    raw = np.fromfile(path, dtype="<i4")
    d = int(raw[0])
    return raw.reshape(-1, d + 1)[:, 1:].view(dtype).copy()


def from_real(out, stem, n_queries, k):
    """A compare-hnsw data directory from a fetched real set (see --real)."""
    with open(stem + ".json") as f:
        info = json.load(f)
    metric = "cosine" if info["metric"] == "angular" else "l2"
    base = read_vecs(stem + "_base.fvecs", "<f4")
    queries = read_vecs(stem + "_query.fvecs", "<f4")[:n_queries]
    gt = read_vecs(stem + "_groundtruth.ivecs", "<i4")[:n_queries, :k]
    write_vecs(f"{out}/base.fvecs", base, "<f4")
    write_vecs(f"{out}/query.fvecs", queries, "<f4")
    write_vecs(f"{out}/gt.ivecs", gt, "<i4")
    if metric == "cosine":
        unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True).clip(1e-12)
        base, queries = unit(base), unit(queries)
    g = np.arange(len(base)) % 100
    for s in FILTERS:
        write_vecs(f"{out}/gt_f{s}.ivecs", ground_truth(base, queries, k, g < s, metric), "<i4")
    with open(f"{out}/meta.json", "w") as f:
        json.dump({"n": len(base), "dim": base.shape[1], "queries": len(queries), "k": k,
                   "metric": metric, "filters": list(FILTERS), "real": info["name"]}, f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--real", help="DATASETS/NAME: a set fetched by get-datasets")
    ap.add_argument("--n", type=int, default=100000)
    ap.add_argument("--dim", type=int, default=1536)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--k", type=int, default=10)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    if a.real:
        return from_real(a.out, a.real, a.queries, a.k)
    base, queries = make(a.n, a.dim, a.queries, a.seed)
    write_vecs(f"{a.out}/base.fvecs", base, "<f4")
    write_vecs(f"{a.out}/query.fvecs", queries, "<f4")
    write_vecs(f"{a.out}/gt.ivecs", ground_truth(base, queries, a.k), "<i4")
    g = np.arange(a.n) % 100
    for s in FILTERS:
        write_vecs(f"{a.out}/gt_f{s}.ivecs", ground_truth(base, queries, a.k, g < s), "<i4")
    cols = make_payload(a.n, a.seed)
    np.savez(f"{a.out}/payload.npz", **cols)
    user, count = tenant_of_one_percent(cols["user"])
    write_vecs(f"{a.out}/gt_user.ivecs", ground_truth(base, queries, a.k, cols["user"] == user),
               "<i4")
    with open(f"{a.out}/meta.json", "w") as f:
        json.dump({"n": a.n, "dim": a.dim, "queries": a.queries, "seed": a.seed, "k": a.k,
                   "metric": "cosine", "filters": list(FILTERS), "tenant": f"u{user}",
                   "tenant_points": count}, f)


if __name__ == "__main__":
    main()
