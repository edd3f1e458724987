"""Ingest decoupled from graph building (docs/API.md, index backlog): an
acknowledged upsert is searchable at once, whether or not the graph holds its
points yet (they are scanned exactly and merged in); the graph catches up in
the background; collection info and metrics say how far; index_backlog_max
bounds how far writes run ahead; points that wait survive a checkpoint and a
crash."""
import base64
import os
import tempfile
import threading
import time

import numpy as np

from conftest import Client, Server

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
        assert 'vectord_collection_graph_linked_total{collection="plain"} ' in metrics
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


def test_checkpoints_beside_building_compaction_and_searches_stay_whole():
    """A checkpoint copies a shard under its read lock (searches never wait for
    it): beside the builder's inserts, a compaction's repair, writes and
    searches, every image it writes loads into the same points."""
    with tempfile.TemporaryDirectory(prefix="vectord-backlog-") as d:
        data = os.path.join(d, "data")
        s = Server(data_dir=data, args=["--set", "compact_interval_ms=20",
                                        "--set", "compact_min_deleted_pct=2"])
        c = s.client
        c.ok("PUT", "/collections/h", {"dim": DIM, "shards": 2,
                                      "index": {"type": "hnsw", "ef_construction": 200}})
        base = vectors(6000, 4)
        load(c, "h", base[:3000])
        live = set(range(3000))
        stop = threading.Event()
        errors = []

        def search_loop():
            sc = Client(s.port)
            i = 0
            while not stop.is_set():
                try:
                    sc.ok("POST", "/collections/h/search",
                          {"vector_b64": b64(base[i % 3000]), "k": 5, "ef": 32})
                except AssertionError as e:  # noqa: PERF203
                    errors.append(e)
                i += 7

        t = threading.Thread(target=search_loop)
        t.start()
        try:
            for r in range(6):
                first = 3000 + r * 500
                load(c, "h", base[first:first + 500], first=first, batch=250)
                live |= set(range(first, first + 500))
                gone = list(range(r * 300, r * 300 + 300, 2))  # tombstones for compaction
                c.ok("POST", "/collections/h/points/delete", {"ids": gone})
                live -= set(gone)
                c.ok("POST", "/admin/checkpoint")
        finally:
            stop.set()
            t.join()
        assert not errors, errors[:3]
        s.kill()
        s = Server(data_dir=data)
        try:
            c = s.client
            assert c.ok("GET", "/collections/h")["points_count"] == len(live)
            probe = sorted(live)[::37]
            for i in probe:  # every live point is there (exact), and no deleted one
                hits = c.ok("POST", "/collections/h/search",
                            {"vector_b64": b64(base[i]), "k": 1, "exact": True})
                assert hits[0]["id"] == i, (i, hits)
            for i in range(0, 1800, 2)[::25]:
                hits = c.ok("POST", "/collections/h/search",
                            {"vector_b64": b64(base[i]), "k": 1, "exact": True})
                assert hits[0]["id"] != i, (i, hits)
            wait_built(c, "h")
            finds_itself(c, "h", base, probe)
        finally:
            s.stop()
