"""Ingest decoupled from graph building (docs/API.md, index backlog): an
acknowledged upsert is searchable at once, whether or not the graph holds its
points yet (they are scanned exactly and merged in); the graph catches up in
the background; collection info and metrics say how far; index_backlog_max
bounds how far writes run ahead; points that wait survive a checkpoint and a
crash."""
import base64
import os
import tempfile
import time

import numpy as np

from conftest import Server

DIM = 128


def b64(v):
    return base64.b64encode(np.asarray(v, dtype="<f4").tobytes()).decode()


def vectors(n, seed):
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)


def load(c, name, base, first=0, batch=2000):
    """Upserts base as ids first.. in batches; returns the largest index_backlog seen
    right after an acknowledged batch."""
    seen = 0
    for s in range(0, len(base), batch):
        pts = [{"id": first + i, "vector_b64": b64(base[i]), "payload": {"g": (first + i) % 7}}
               for i in range(s, min(s + batch, len(base)))]
        r = c.ok("PUT", f"/collections/{name}/points", {"points": pts})
        assert r["inserted"] + r["updated"] == len(pts)
        seen = max(seen, c.ok("GET", f"/collections/{name}")["index_backlog"])
    return seen


def finds_itself(c, name, base, ids, **extra):
    """Each id, searched by its own vector, is the top hit: a point the graph does
    not hold yet is found by the backlog scan, whatever the ef. A point the graph
    holds is found by the walk, which like any HNSW graph may leave the odd node
    unreachable (about 1 in 3,000 on this random data, with or without a
    backlog): at most 1 probe in 30 may miss that way, and each one that does
    must still be found by an exact search (nothing acknowledged is lost)."""
    misses = []
    for i in ids:
        body = {"vector_b64": b64(base[i]), "k": 1, "ef": 64, "with_payload": False, **extra}
        hits = c.ok("POST", f"/collections/{name}/search", body)
        assert hits, (name, i)
        if hits[0]["id"] != i:
            misses.append((i, hits))
            exact = c.ok("POST", f"/collections/{name}/search", {**body, "exact": True})
            assert exact[0]["id"] == i, (name, i, exact)
    assert len(misses) <= max(1, len(ids) // 30), (name, misses)


def wait_built(c, name, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        info = c.ok("GET", f"/collections/{name}")
        if info["index_backlog"] == 0:
            return info
        assert info["status"] == "indexing"
        time.sleep(0.1)
    raise AssertionError(f"{name}: the graph did not catch up: {info}")


def test_acknowledged_points_are_searchable_while_the_graph_catches_up():
    s = Server()
    try:
        c = s.client
        base = vectors(8000, 1)
        for name, quant in (("plain", None), ("sq8", {"type": "sq8"})):
            body = {"dim": DIM, "metric": "cosine", "shards": 1,
                    "index": {"type": "hnsw", "m": 16, "ef_construction": 400},
                    "payload_indexes": {"g": "integer"}}
            if quant:
                body["quantization"] = quant
            c.ok("PUT", f"/collections/{name}", body)
            seen = load(c, name, base)
            # right after the acknowledgement: the newest points are found,
            # unfiltered and filtered, whether the graph has them yet or not
            newest = range(len(base) - 1, len(base) - 150, -3)
            finds_itself(c, name, base, newest)
            for i in newest[:20]:
                hits = c.ok("POST", f"/collections/{name}/search",
                            {"vector_b64": b64(base[i]), "k": 3, "ef": 16,
                             "filter": {"must": [{"key": "g", "match": {"value": i % 7}}]}})
                assert hits[0]["id"] == i
            assert seen > 0, "ingest should run ahead of graph building at ef_construction 400"
            info = wait_built(c, name)
            assert info["status"] == "ready" and info["points_count"] == len(base)
            finds_itself(c, name, base, range(0, len(base), 97))
        metrics = c.request("GET", "/metrics", raw=True)[1].decode()
        assert 'vectord_collection_index_backlog{collection="plain"} 0' in metrics
        assert 'vectord_collection_index_built_total{collection="plain"} 8000' in metrics
    finally:
        s.stop()


def test_index_backlog_max_bounds_how_far_writes_run_ahead():
    s = Server(args=["--set", "index_backlog_max=0"])
    try:
        c = s.client
        c.ok("PUT", "/collections/h", {"dim": DIM, "shards": 1, "index": {"type": "hnsw"}})
        base = vectors(3000, 2)
        assert load(c, "h", base, batch=1000) == 0, "index_backlog_max 0: each write builds its own"
        assert c.ok("GET", "/collections/h")["status"] == "ready"
        finds_itself(c, "h", base, range(0, 3000, 101))
    finally:
        s.stop()


def test_waiting_points_survive_a_checkpoint_and_a_crash():
    with tempfile.TemporaryDirectory(prefix="vectord-backlog-") as d:
        data = os.path.join(d, "data")
        s = Server(data_dir=data)
        c = s.client
        c.ok("PUT", "/collections/h", {"dim": DIM, "shards": 2,
                                      "index": {"type": "hnsw", "ef_construction": 400}})
        base = vectors(9000, 3)
        load(c, "h", base[:6000])
        c.ok("POST", "/admin/checkpoint")  # the snapshot may hold points its graph lacks
        load(c, "h", base[6000:], first=6000)
        s.kill()
        s = Server(data_dir=data)
        try:
            c = s.client
            assert c.ok("GET", "/collections/h")["points_count"] == 9000
            finds_itself(c, "h", base, range(0, 9000, 61))
            wait_built(c, "h")
            finds_itself(c, "h", base, range(5, 9000, 89))
        finally:
            s.stop()
