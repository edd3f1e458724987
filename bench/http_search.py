#!/usr/bin/python3
"""vectord's HNSW over HTTP: load a data set through the API, then measure
single-client search latency and recall for several ef values.

  bench/http_search.py [--data bench/data/100000-1536] [--ef 16,24,32,48,64]
                       [--shards 2] [--m 16] [--efc 200] [--queries 300]
                       [--vectord build/vectord] [--clients 1] [--set NAME=VALUE]...

The data set comes from bench/datagen.py (bench/compare-hnsw makes and caches
it). The script starts its own vectord on a free loopback port with a scratch
data directory. It loads the points in batches of 500 with "vector_b64" (and
reports when the HNSW graph, built behind the writes, has caught up), then
sends every query as a JSON array, the way MemoryService sends them, on one
keep-alive connection. Latency is client-side: send to last byte received,
JSON encoding of the body excluded. Prints markdown tables. Measures, asserts nothing.
"""
import argparse
import base64
import http.client
import json
import os
import sys
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import read_vecs  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(HERE, "data", "100000-1536"))
    ap.add_argument("--ef", default="16,24,32,48,64")
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--efc", type=int, default=200)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--vectord", default=os.path.join(ROOT, "build", "vectord"))
    ap.add_argument("--clients", type=int, default=1, help="connections loading the points")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="a vectord setting, e.g. index_backlog_max=0 (graph built in each write)")
    a = ap.parse_args()

    base = read_vecs(os.path.join(a.data, "base.fvecs"), np.float32)
    queries = read_vecs(os.path.join(a.data, "query.fvecs"), np.float32)[:a.queries]
    gt = read_vecs(os.path.join(a.data, "gt.ivecs"), np.int32)[:a.queries]
    n, dim = base.shape

    v = benchlib.Vectord(a.vectord, [x for s in a.set for x in ("--set", s)])
    try:
        def search(body):
            """One search with a pre-encoded body (encoding is not timed)."""
            v.conn.request("POST", "/collections/bench/search", body=body,
                           headers={"Content-Type": "application/json"})
            r = v.conn.getresponse()
            data = r.read()
            if r.status != 200:
                raise RuntimeError(f"search: {r.status} {data[:300]!r}")
            return json.loads(data)["result"]

        v.call("PUT", "/collections/bench", {
            "dim": dim, "metric": "cosine", "shards": a.shards,
            "index": {"type": "hnsw", "m": a.m, "ef_construction": a.efc}})
        bodies = [json.dumps({"points": [
            {"id": i, "vector_b64": base64.b64encode(base[i].astype("<f4").tobytes()).decode()}
            for i in range(s, min(n, s + 500))]}) for s in range(0, n, 500)]

        def send(k):
            conn = http.client.HTTPConnection("127.0.0.1", v.port, timeout=600)
            for body in bodies[k::a.clients]:
                conn.request("PUT", "/collections/bench/points", body=body,
                             headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                if r.status != 200:
                    raise RuntimeError(f"upsert: {r.status} {r.read()[:300]!r}")
                r.read()
            conn.close()

        t0 = time.time()  # the bodies are encoded beforehand: the load is what vectord takes
        senders = [threading.Thread(target=send, args=(k,)) for k in range(a.clients)]
        for t in senders:
            t.start()
        for t in senders:
            t.join()
        load_s = time.time() - t0
        backlog = v.call("GET", "/collections/bench")["index_backlog"]
        while v.call("GET", "/collections/bench")["index_backlog"]:
            time.sleep(0.2)
        built_s = time.time() - t0
        info = v.call("GET", "/collections/bench")
        rss = v.rss_bytes()

        bodies = {}
        rows = []
        for ef in [int(x) for x in a.ef.split(",")]:
            lat, hits = [], 0
            for qi, q in enumerate(queries):
                key = (qi, ef)
                if key not in bodies:
                    bodies[key] = json.dumps({"vector": [float(x) for x in q], "k": 10, "ef": ef,
                                              "with_payload": False})
                t = time.perf_counter()
                res = search(bodies[key])
                lat.append((time.perf_counter() - t) * 1e3)
                hits += len({h["id"] for h in res} & set(gt[qi][:10].tolist()))
            lat.sort()
            rows.append((ef, hits / (10 * len(queries)), len(lat) / (sum(lat) / 1e3),
                         lat[len(lat) // 2], lat[int(len(lat) * 0.99)]))
        print(f"## vectord HNSW over HTTP — {n} x {dim}, cosine, M={a.m}, ef_construction={a.efc}, "
              f"{a.shards} shards, 1 client, keep-alive\n")
        print(f"Load through the API (batches of 500, vector_b64, {a.clients} client(s), bodies encoded "
              f"beforehand): {load_s:.1f} s, "
              f"{n / load_s:.0f} vectors/s acknowledged and searchable; {backlog} of them were still waiting "
              f"for the graph then, which held them all {built_s:.1f} s after the load began "
              f"({n / built_s:.0f} vectors/s into the graph). "
              f"Resident memory {rss / n:.0f} bytes per vector (process RSS / points); collection "
              f"memory {info['memory_bytes_per_point']} bytes per point "
              f"(vectors {info['memory_bytes']['vectors'] / n:.0f}, index {info['memory_bytes']['index'] / n:.0f}).\n")
        print("| ef | recall@10 | QPS (1 client) | p50 ms | p99 ms |\n|---:|---:|---:|---:|---:|")
        for ef, rec, qps, p50, p99 in rows:
            print(f"| {ef} | {rec:.4f} | {qps:.0f} | {p50:.3f} | {p99:.3f} |")
    finally:
        v.stop()


if __name__ == "__main__":
    main()
