"""Cutover support: the recall monitor (sampled searches re-run exactly in the
background, recall@k per collection in collection info and metrics) and the
shadow comparison (a caller's baseline ids against vectord's, overlap@k)."""
import re
import time

import numpy as np

from conftest import Server, wait_indexed
from test_api import upsert_all
from test_hnsw import clustered

DIM = 48


def wait_compared(c, name, want, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        rec = c.ok("GET", f"/collections/{name}")["quality"]["recall"]
        if rec["compared"] >= want:
            return rec
        time.sleep(0.05)
    raise AssertionError(f"recall monitor measured {rec['compared']} of {want} samples")


def test_recall_monitor_exact_and_low_ef():
    s = Server(args=["--set", "recall_sample_every=1", "--set", "recall_cpu_percent=100"])
    try:
        c = s.client
        centers = np.random.default_rng(11).standard_normal((16, DIM)).astype(np.float32)
        base = clustered(3000, 12, centers)
        queries = clustered(40, 13, centers)
        ids = list(range(len(base)))
        c.ok("PUT", "/collections/flat", {"dim": DIM, "metric": "l2"})
        # A deliberately poor graph: few links, narrow construction.
        c.ok("PUT", "/collections/rough", {"dim": DIM, "metric": "l2", "index": {
            "type": "hnsw", "m": 4, "ef_construction": 8}})
        for name in ("flat", "rough"):
            upsert_all(c, name, ids, base, None, batch=1000)
            wait_indexed(c, name)  # sampled searches are those that walk the graph
            info = c.ok("GET", f"/collections/{name}")
            assert info["quality"]["recall"] == {"compared": 0, "recall_at_k": None,
                                                 "recent_compared": 0, "recent": None}
        for i, q in enumerate(queries):
            c.ok("POST", "/collections/flat/search", {"vector": q.tolist(), "k": 10})
            c.ok("POST", "/collections/rough/search", {"vector": q.tolist(), "k": 10, "ef": 1})
            # One at a time: a slow (sanitizer) build must not overflow the
            # monitor's bounded queue, which would drop a sample.
            wait_compared(c, "rough", i + 1)
        rough = wait_compared(c, "rough", len(queries))
        assert 0.0 < rough["recall_at_k"] < 0.9, rough
        # An exact answer (a flat collection; a filter the planner scans) has
        # recall 1 by construction: counted, never sampled.
        flat = c.ok("GET", "/collections/flat")["quality"]["recall"]
        assert flat["compared"] == 0 and flat["recall_at_k"] is None, flat
        c.ok("POST", "/collections/rough/search",
             {"vector": queries[0].tolist(), "k": 5, "ef": 1, "filter": {"must": [
                 {"key": "missing", "match": {"value": "x"}}]}})
        # Filtered searches that walk the graph are re-run with their filter.
        c.ok("POST", "/collections/rough/search",
             {"vector": queries[0].tolist(), "k": 5, "ef": 1, "filter": {"must_not": [
                 {"key": "missing", "match": {"value": "x"}}]}})
        rough = wait_compared(c, "rough", len(queries) + 1)
        assert rough["compared"] == len(queries) + 1, rough
        _, metrics = c.request("GET", "/metrics")
        assert re.search(r'vectord_recall_samples_total\{collection="rough"\} %d\b' % (len(queries) + 1), metrics)
        assert re.search(r'vectord_recall_samples_total\{collection="flat"\} 0\b', metrics)
        hits = float(re.search(r'vectord_recall_hits_total\{collection="rough"\} (\S+)', metrics).group(1))
        expected = float(re.search(r'vectord_recall_expected_total\{collection="rough"\} (\S+)', metrics).group(1))
        assert expected == 10 * len(queries) + 5 and abs(hits / expected - rough["recall_at_k"]) < 1e-9
        assert re.search(r"vectord_recall_monitor_sampled_total %d\b" % (len(queries) + 1), metrics)
        assert re.search(r"vectord_recall_monitor_exact_searches_total %d\b" % (len(queries) + 1), metrics)
    finally:
        s.stop()


def test_recall_monitor_off_and_sampling_rate():
    s = Server(args=["--set", "recall_sample_every=4", "--set", "recall_cpu_percent=100"])
    try:
        c = s.client
        c.ok("PUT", "/collections/a", {"dim": 4, "metric": "dot", "index": {"type": "hnsw"}})
        c.ok("PUT", "/collections/a/points", {"points": [
            {"id": i, "vector": [1, i % 97, i % 13, 1]} for i in range(2000)]})
        wait_indexed(c, "a")  # a search of points still waiting for the graph may be exact: not sampled
        for _ in range(12):
            c.ok("POST", "/collections/a/search", {"vector": [1, 1, 1, 1], "k": 3, "ef": 8})
        assert wait_compared(c, "a", 3)["compared"] == 3  # one search in four
    finally:
        s.stop()
    s = Server(args=["--set", "recall_sample_every=0"])
    try:
        c = s.client
        c.ok("PUT", "/collections/a", {"dim": 4})
        c.ok("PUT", "/collections/a/points", {"points": [{"id": 1, "vector": [1, 0, 0, 0]}]})
        c.ok("POST", "/collections/a/search", {"vector": [1, 0, 0, 0]})
        time.sleep(0.2)
        assert c.ok("GET", "/collections/a")["quality"]["recall"]["compared"] == 0
    finally:
        s.stop()


def monitor_metrics(c):
    _, text = c.request("GET", "/metrics")
    return {name: float(v) for name, v in re.findall(r"^vectord_recall_monitor_(\w+) (\S+)$", text, re.M)}


def test_recall_monitor_keeps_to_its_cpu_budget():
    """recall_cpu_percent bounds the monitor's CPU: at 1% of one core (a
    bucket of 0.1 s, full at start, refilled at 10 ms/s), every search
    sampled, the re-runs' CPU stays within the bucket plus the rate over the
    elapsed time plus the one sample that overdrew it; searches it could not
    afford are counted as skipped, and once the debt is paid back it samples
    again."""
    s = Server(args=["--set", "recall_sample_every=1", "--set", "recall_cpu_percent=1"])
    try:
        c = s.client
        started = time.time()
        rng = np.random.default_rng(31)
        base = rng.standard_normal((20000, DIM)).astype(np.float32)
        c.ok("PUT", "/collections/b", {"dim": DIM, "metric": "l2", "index": {"type": "hnsw", "m": 8, "ef_construction": 32}})
        upsert_all(c, "b", list(range(len(base))), base, None, batch=2000)
        wait_indexed(c, "b")
        queries = rng.standard_normal((50, DIM)).astype(np.float32)
        deadline = time.time() + 120
        searches = 0
        while monitor_metrics(c)["skipped_total"] == 0:
            assert time.time() < deadline, monitor_metrics(c)
            for q in queries:
                c.ok("POST", "/collections/b/search", {"vector": q.tolist(), "k": 10, "ef": 16})
            searches += len(queries)
        m = monitor_metrics(c)
        assert m["sampled_total"] + m["dropped_total"] + m["skipped_total"] >= searches, m
        # the largest one sample can cost (exact scan and the calibration ladder, sanitizer builds) is
        # well under a second
        assert m["cpu_seconds_total"] <= 0.1 + 0.01 * (time.time() - started) + 1.0, m
        compared = c.ok("GET", "/collections/b")["quality"]["recall"]["compared"]
        assert 0 < compared < searches
        # Once the debt is paid back (at most a second's sample at 1%: 100 s; in practice well under
        # one), searches are sampled again.
        deadline = time.time() + 120
        while c.ok("GET", "/collections/b")["quality"]["recall"]["compared"] == compared:
            assert time.time() < deadline, monitor_metrics(c)
            c.ok("POST", "/collections/b/search", {"vector": queries[0].tolist(), "k": 10, "ef": 16})
            time.sleep(0.05)
    finally:
        s.stop()


def test_shadow_comparison(server):
    c = server.client
    rng = np.random.default_rng(5)
    base = rng.standard_normal((200, 8)).astype(np.float32)
    c.ok("PUT", "/collections/m", {"dim": 8, "metric": "cosine"})
    upsert_all(c, "m", [f"mem-{i}" for i in range(200)], base, None, batch=200)
    q = base[7].tolist()
    mine = [h["id"] for h in c.ok("POST", "/collections/m/search", {"vector": q, "k": 10})]
    # The baseline agrees on 8 of 10 and has two ids vectord did not return.
    baseline = mine[:8] + ["elsewhere-1", "elsewhere-2"]
    r = c.ok("POST", "/collections/m/search/shadow",
             {"vector": q, "k": 10, "with_payload": False,
              "baseline": {"ids": baseline, "latency_ms": 33.5}})
    assert [p["id"] for p in r["points"]] == mine
    sh = r["shadow"]
    assert sh["k"] == 10 and sh["common"] == 8 and sh["overlap"] == 0.8
    assert sh["vectord_count"] == 10 and sh["baseline_count"] == 10
    assert sh["missing"] == ["elsewhere-1", "elsewhere-2"]
    assert sh["extra"] == mine[8:]
    assert sh["baseline_latency_ms"] == 33.5 and sh["latency_ms"] >= 0
    # Full agreement; a baseline longer than k is cut to k; an empty pair agrees.
    r = c.ok("POST", "/collections/m/search/shadow",
             {"vector": q, "k": 5, "baseline": {"ids": mine}})
    assert r["shadow"]["overlap"] == 1.0 and r["shadow"]["baseline_count"] == 5
    r = c.ok("POST", "/collections/m/search/shadow",
             {"vector": q, "k": 5, "score_threshold": 2.0, "baseline": {"ids": []}})
    assert r["points"] == [] and r["shadow"]["overlap"] == 1.0
    # Fewer results than the baseline count against overlap.
    r = c.ok("POST", "/collections/m/search/shadow",
             {"vector": q, "k": 10, "filter": {"must": [{"key": "nope", "match": {"value": 1}}]},
              "baseline": {"ids": mine[:4]}})
    assert r["shadow"]["overlap"] == 0.0 and r["shadow"]["missing"] == mine[:4]
    info = c.ok("GET", "/collections/m")["quality"]["shadow"]
    assert info["compared"] == 4
    # common 8+5+0+0 over expected 10+5+0+4
    assert abs(info["overlap_at_k"] - 13 / 19) < 1e-9
    assert abs(info["baseline_mean_ms"] - 33.5 / 4) < 1e-6
    _, metrics = c.request("GET", "/metrics")
    assert re.search(r'vectord_shadow_comparisons_total\{collection="m"\} 4\b', metrics)
    assert re.search(r'vectord_shadow_common_total\{collection="m"\} 13\b', metrics)
    assert re.search(r'vectord_shadow_expected_total\{collection="m"\} 19\b', metrics)
    assert re.search(r'vectord_shadow_baseline_seconds_total\{collection="m"\} 0.0335', metrics)
    # Integer ids compare as integers.
    c.ok("PUT", "/collections/n", {"dim": 2})
    c.ok("PUT", "/collections/n/points", {"points": [{"id": 1, "vector": [1, 0]}, {"id": 2, "vector": [0, 1]}]})
    r = c.ok("POST", "/collections/n/search/shadow", {"vector": [1, 0], "k": 1, "baseline": {"ids": [1]}})
    assert r["shadow"]["overlap"] == 1.0


def test_shadow_errors(server):
    c = server.client
    c.ok("PUT", "/collections/m", {"dim": 2})
    path = "/collections/m/search/shadow"
    c.error("POST", path, {"vector": [1, 0]}, 400, "invalid_request")
    c.error("POST", path, {"vector": [1, 0], "baseline": [1]}, 400, "invalid_request")
    c.error("POST", path, {"vector": [1, 0], "baseline": {"ids": 3}}, 400, "invalid_request")
    c.error("POST", path, {"vector": [1, 0], "baseline": {"ids": [1.5]}}, 400, "invalid_id")
    c.error("POST", path, {"vector": [1, 0], "baseline": {"ids": [], "extra": 1}}, 400, "unknown_field")
    c.error("POST", path, {"vector": [1, 0], "baseline": {"ids": [], "latency_ms": -1}}, 400, "out_of_range")
    c.error("POST", path, {"vector": [1, 0], "baseline": {"ids": [], "latency_ms": "x"}}, 400)
    c.error("POST", path, {"vector": [1, 0], "baseline": {"ids": list(range(1001))}}, 413, "batch_too_large")
    c.error("POST", path, {"vector": [1, 0, 0], "baseline": {"ids": []}}, 400, "dimension_mismatch")
    c.error("POST", path, [1, 2], 400, "invalid_request")
    c.error("POST", "/collections/none/search/shadow", {"vector": [1, 0], "baseline": {"ids": []}},
            404, "collection_not_found")
    assert c.ok("GET", "/collections/m")["quality"]["shadow"]["compared"] == 0


def calibrated(c, name, samples, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        cal = c.ok("GET", f"/collections/{name}")["calibration"]
        if cal["samples"] >= samples:
            return cal
        time.sleep(0.05)
    raise AssertionError(f"calibration has {cal['samples']} of {samples} samples")


def test_target_recall_calibrates_the_default_breadth_and_survives_a_restart():
    """A collection's target recall: the recall monitor runs each sampled
    query at every breadth of the ladder against the exact answer, and the
    smallest ef (HNSW) or nprobe (IVF) meeting the target becomes the default
    — a lower target gives a smaller one; the knob set by hand turns the
    target off; the setting outlives a crash."""
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        s = Server(args=["--set", "recall_sample_every=1", "--set", "recall_cpu_percent=100"], data_dir=d + "/data")
        c = s.client
        centers = np.random.default_rng(21).standard_normal((16, DIM)).astype(np.float32)
        base = clustered(4000, 22, centers)
        queries = clustered(40, 23, centers)
        c.ok("PUT", "/collections/g", {"dim": DIM, "metric": "l2", "shards": 1,
                                       "index": {"type": "hnsw", "m": 6, "ef_construction": 24}})
        c.ok("PUT", "/collections/iv", {"dim": DIM, "metric": "l2", "shards": 1,
                                        "index": {"type": "ivf", "nlist": 64, "target_recall": 0.9}})
        c.ok("PUT", "/collections/knob", {"dim": DIM, "metric": "l2", "index": {"type": "hnsw", "ef_search": 40}})
        info = c.ok("GET", "/collections/g")
        assert info["index"]["target_recall"] == 0.95 and info["calibration"] == {
            "ef_search": None, "recall": None, "samples": 0}, info
        assert c.ok("GET", "/collections/knob")["index"]["target_recall"] == 0  # the knob rules
        for name in ("g", "iv"):
            upsert_all(c, name, list(range(len(base))), base, None, batch=1000)
        wait_indexed(c, "g")
        deadline = time.time() + 60  # the IVF lists train in the background
        while not c.ok("GET", "/collections/iv")["index_status"]["trained"]:
            assert time.time() < deadline, "the IVF collection did not train"
            time.sleep(0.1)
        for round_ in range(2):
            for i, q in enumerate(queries):
                for name in ("g", "iv"):
                    c.ok("POST", f"/collections/{name}/search", {"vector": q.tolist(), "k": 10})
                calibrated(c, "g", round_ * len(queries) + i + 1)  # one at a time: the queue is bounded
        g = calibrated(c, "g", 2 * len(queries))
        assert g["ef_search"] in (10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512), g
        assert g["recall"] >= 0.95 or g["ef_search"] == 512, g
        iv = calibrated(c, "iv", 30)
        assert iv["nprobe"] is not None and (iv["recall"] >= 0.9 or iv["nprobe"] == 64), iv
        # A lower target: a smaller (or equal) breadth, at once, from the same samples.
        c.ok("PATCH", "/collections/g", {"index": {"target_recall": 0.6}})
        c.ok("POST", "/admin/checkpoint")  # the target in the snapshot; what follows in the WAL
        low = c.ok("GET", "/collections/g")["calibration"]
        assert low["ef_search"] <= g["ef_search"] and low["recall"] >= 0.6, (low, g)
        _, metrics = c.request("GET", "/metrics")
        assert re.search(r'vectord_collection_calibrated_breadth\{collection="g"\} %d\b' % low["ef_search"], metrics)
        assert re.search(r'vectord_collection_calibrated_recall\{collection="g"\} 0\.\d+', metrics)
        # Setting ef_search by hand turns the target off.
        c.ok("PATCH", "/collections/knob", {"index": {"target_recall": 0.8}})
        assert c.ok("GET", "/collections/knob")["index"]["target_recall"] == 0.8
        c.ok("PATCH", "/collections/knob", {"index": {"ef_search": 50}})
        assert c.ok("GET", "/collections/knob")["index"]["target_recall"] == 0
        c.error("PATCH", "/collections/g", {"index": {"target_recall": 1.5}}, 400, "invalid_request")
        c.error("PUT", "/collections/f", {"dim": 4, "index": {"type": "flat", "target_recall": 0.9}}, 400,
                "unknown_field")
        s.kill()
        s = Server(args=["--set", "recall_sample_every=1", "--set", "recall_cpu_percent=100"], data_dir=d + "/data")
        c = s.client
        assert abs(c.ok("GET", "/collections/g")["index"]["target_recall"] - 0.6) < 1e-6
        assert abs(c.ok("GET", "/collections/iv")["index"]["target_recall"] - 0.9) < 1e-6
        assert c.ok("GET", "/collections/knob")["index"]["target_recall"] == 0
        s.stop()
