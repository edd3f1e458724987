"""The benchmark machinery (bench/): the data generator is deterministic, the
ground truth is exact, recall is computed right, the C load generator talks
to a running vectord in closed and open loop and counts what it should, and
the suite runs end to end on a tiny data set. No timing is asserted."""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from conftest import BIN, Server

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import benchlib  # noqa: E402
import datagen  # noqa: E402

LOADER = os.path.join(os.path.dirname(os.path.abspath(BIN)), "bench", "bench_load")


def test_generator_is_deterministic_and_embedding_like():
    a_base, a_q = datagen.make(600, 64, 20, seed=3)
    b_base, b_q = datagen.make(600, 64, 20, seed=3)
    c_base, _ = datagen.make(600, 64, 20, seed=4)
    assert np.array_equal(a_base, b_base) and np.array_equal(a_q, b_q)
    assert not np.array_equal(a_base, c_base)
    assert np.allclose(np.linalg.norm(a_base, axis=1), 1.0, atol=1e-5)
    # Clustered, not uniform: nearest neighbours are much closer than average pairs.
    sims = a_base @ a_base.T
    np.fill_diagonal(sims, -1)
    assert sims.max(axis=1).mean() > sims.mean() + 0.3
    p1, p2 = datagen.make_payload(5000, 3), datagen.make_payload(5000, 3)
    for key in p1:
        assert np.array_equal(p1[key], p2[key])
    counts = np.bincount(p1["user"])
    assert counts.max() > 10 * np.median(counts[counts > 0])  # Zipf: a few heavy tenants
    u, n = datagen.tenant_of_one_percent(p1["user"])
    assert n == counts[u] and abs(n - 50) == np.min(np.abs(counts - 50))
    pj = datagen.payload_json(p1, 7)
    assert set(pj) == {"g", "userId", "type", "createdAt"} and pj["g"] == 7


def test_ground_truth_is_exact_and_pads_short_lists():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((300, 16)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    q = base[:12] + 0.05
    gt = datagen.ground_truth(base, q, 10)
    want = np.argsort(-(q @ base.T), axis=1, kind="stable")[:, :10]
    assert np.array_equal(gt, want)
    allowed = np.zeros(300, bool)
    allowed[[5, 50, 150]] = True
    short = datagen.ground_truth(base, q, 10, allowed)
    assert set(short[0, :3]) == {5, 50, 150} and (short[:, 3:] == -1).all()


def test_recall_at_k():
    assert benchlib.recall_at_k([[1, 2, 3]], [[1, 2, 3]], 3) == 1.0
    assert benchlib.recall_at_k([[1, 9, 3]], [[1, 2, 3]], 3) == pytest.approx(2 / 3)
    assert benchlib.recall_at_k([[3, 2, 1, 7]], [[1, 2, 3, 4]], 3) == 1.0  # order within k ignored
    assert benchlib.recall_at_k([[1], [5]], [[1], [6]], 1) == 0.5
    assert benchlib.recall_at_k([[]], [[-1, -1]], 2) == 1.0  # nothing to find


def test_real_data_set_reader():
    """RealDataset reads the files ../shared/data/get-datasets writes."""
    with tempfile.TemporaryDirectory() as d:
        rng = np.random.default_rng(2)
        base, q = rng.standard_normal((50, 6)).astype(np.float32), rng.standard_normal((4, 6)).astype(np.float32)
        gt = np.argsort(((q[:, None, :] - base[None]) ** 2).sum(-1), axis=1)[:, :20].astype(np.int32)
        datagen.write_vecs(os.path.join(d, "tiny_base.fvecs"), base, "<f4")
        datagen.write_vecs(os.path.join(d, "tiny_query.fvecs"), q, "<f4")
        datagen.write_vecs(os.path.join(d, "tiny_groundtruth.ivecs"), gt, "<i4")
        with open(os.path.join(d, "tiny.json"), "w") as f:
            json.dump({"metric": "l2", "dim": 6}, f)
        assert benchlib.RealDataset.available(d) == ["tiny"]
        ds = benchlib.RealDataset(d, "tiny", queries=3)
        assert ds.metric == "l2" and (ds.n, ds.dim) == (50, 6) and len(ds.queries) == 3
        assert np.array_equal(ds.gt["none"], gt[:3]) and ds.filters == [] and ds.payload is None
    assert benchlib.RealDataset.available("/nonexistent") == []


def loader_or_skip():
    if not os.path.exists(LOADER):
        pytest.skip(f"{LOADER} is not built")
    return LOADER


def write(path, lines):
    with open(path, "w") as f:
        f.write("".join(line + "\n" for line in lines))
    return path


def run_loader(*args):
    r = subprocess.run([loader_or_skip(), *map(str, args)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_load_generator_against_vectord(server):
    loader_or_skip()
    c = server.client
    rng = np.random.default_rng(1)
    base = rng.standard_normal((200, 8)).astype(np.float32)
    c.ok("PUT", "/collections/b", {"dim": 8, "metric": "dot"})
    c.ok("PUT", "/collections/b/points", {"points": [
        {"id": i, "vector": base[i].tolist(), "payload": {"g": i % 10}} for i in range(200)]})
    queries = rng.standard_normal((20, 8)).astype(np.float32)
    truth = np.argsort(-(queries @ base.T), axis=1, kind="stable")[:, :5]
    with tempfile.TemporaryDirectory() as d:
        req = write(os.path.join(d, "q.req"), [
            "POST /collections/b/search\t" + json.dumps({"vector": q.tolist(), "k": 5, "with_payload": False})
            for q in queries])
        good = write(os.path.join(d, "good.gt"), [",".join(map(str, t)) for t in truth])
        bad = write(os.path.join(d, "bad.gt"), [",".join(str(1000 + i) for i in range(5))] * 20)
        r = run_loader("--port", server.port, "--requests", req, "--expect", good, "--k", 5,
                       "--connections", 2, "--seconds", 0.5, "--warmup", 0.1)
        assert r["mode"] == "closed" and r["connections"] == 2 and r["threads"] == 1
        assert r["requests"] > 0 and r["errors"] == 0 and r["statuses"] == {"200": r["requests"]}
        assert r["recall"] == 1.0  # a dot collection without an index is exact
        assert 0 < r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"] <= r["p999_ms"] <= r["max_ms"]
        assert run_loader("--port", server.port, "--requests", req, "--expect", bad, "--k", 5,
                          "--seconds", 0.3, "--warmup", 0)["recall"] == 0.0
        # Connections spread over event-loop threads (never more threads than connections).
        r = run_loader("--port", server.port, "--requests", req, "--expect", good, "--k", 5,
                       "--connections", 5, "--threads", 2, "--seconds", 0.5, "--warmup", 0.1)
        assert r["threads"] == 2 and r["connections"] == 5 and r["errors"] == 0 and r["recall"] == 1.0
        assert run_loader("--port", server.port, "--requests", req, "--connections", 2, "--threads", 8,
                          "--seconds", 0.2, "--warmup", 0)["threads"] == 2
        # Open loop: exactly rate x seconds requests are due in the window, whatever the threads.
        for threads in (1, 3):
            r = run_loader("--port", server.port, "--requests", req, "--rate", 100, "--connections", 4,
                           "--threads", threads, "--seconds", 1, "--warmup", 0.2)
            assert r["mode"] == "open" and 99 <= r["requests"] <= 101 and r["errors"] == 0, r
            assert r["recall"] is None
        # Errors are counted with their status; a shadow search's points are compared too.
        missing = write(os.path.join(d, "m.req"), ['POST /collections/nope/search\t{"vector":[1,0,0,0,0,0,0,0]}'])
        r = run_loader("--port", server.port, "--requests", missing, "--seconds", 0.3, "--warmup", 0)
        assert r["requests"] > 0 and r["errors"] == r["requests"] and r["statuses"] == {"404": r["requests"]}
        shadow = write(os.path.join(d, "s.req"), [
            "POST /collections/b/search/shadow\t" + json.dumps(
                {"vector": queries[0].tolist(), "k": 5, "baseline": {"ids": truth[0].tolist()}})])
        one = write(os.path.join(d, "s.gt"), [",".join(map(str, truth[0]))])
        assert run_loader("--port", server.port, "--requests", shadow, "--expect", one, "--k", 5,
                          "--seconds", 0.3, "--warmup", 0)["recall"] == 1.0
        # --server-pid: the CPU of both processes in the measured window (bench/http_cpu.py's figures).
        r = run_loader("--port", server.port, "--requests", req, "--connections", 2, "--seconds", 0.5,
                       "--warmup", 0.1, "--server-pid", server.proc.pid)
        assert r["server_cpu_s"] > 0 and r["client_cpu_s"] > 0, r
        assert r["server_cpu_us_per_req"] == pytest.approx(r["server_cpu_s"] * 1e6 / r["requests"], rel=0.01)
        r = run_loader("--port", server.port, "--requests", req, "--seconds", 0.3, "--warmup", 0)
        assert r["server_cpu_s"] is None and r["server_cpu_us_per_req"] is None and r["client_cpu_s"] >= 0
    # The server saw nothing but well-formed traffic.
    assert c.ok("GET", "/collections/b")["points_count"] == 200


def test_suite_runs_end_to_end_on_a_tiny_data_set():
    loader_or_skip()
    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run(
            [sys.executable, os.path.join(ROOT, "bench", "run"), "quick", "--sizes", "400",
             "--queries", "20", "--seconds", "0.2", "--numpy-sizes", "1000,2000",
             "--only", "numpy,vectord", "--real", "", "--vectord", BIN, "--loader", LOADER, "--out", d,
             "--data-root", os.path.join(d, "data")],
            capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        files = [f for f in os.listdir(d) if f.startswith("quick-") and f.endswith(".json")]
        assert len(files) == 1
        with open(os.path.join(d, files[0])) as f:
            res = json.load(f)
    assert res["machine"]["cores"] >= 1 and "vectord" in res["versions"]
    assert [row["n"] for row in res["numpy"]["rows"]] == [1000, 2000]
    v = res["sizes"][0]["vectord"]
    assert v["n"] == 400 and v["exact"]["recall"] == 1.0
    assert [s["ef"] for s in v["sweep"]] == [16, 32, 64, 128, 256]
    assert all(0.0 <= s["recall"] <= 1.0 and s["errors"] == 0 for s in v["sweep"])
    assert {f["filter"] for f in v["filtered"]} == {"tenant", "g<1", "g<10", "g<50"}
    flat = [f for f in v["filtered"] if f["collection"] == "flat"]
    assert all(f["recall"] == 1.0 for f in flat)  # exact search finds the filtered truth
    assert len(v["repeat"]) == 3 and len(v["open_loop"]) == 4
    assert "| vectord HNSW (HTTP) | ef 64 |" in r.stdout and "Against the targets" in r.stdout
