"""The whole HTTP API against the real binary, with exact results checked
against a numpy brute-force reference."""
import re

import numpy as np
import pytest


def reference(metric, base, query, k, allowed=None):
    """Brute-force top-k: (indices, scores), best first, as the API defines scores."""
    b = base.astype(np.float64)
    q = query.astype(np.float64)
    if metric == "cosine":
        b = b / np.linalg.norm(b, axis=1, keepdims=True)
        q = q / np.linalg.norm(q)
        scores = b @ q
        order = np.argsort(-scores, kind="stable")
    elif metric == "dot":
        scores = b @ q
        order = np.argsort(-scores, kind="stable")
    else:
        scores = ((b - q) ** 2).sum(axis=1)
        order = np.argsort(scores, kind="stable")
    if allowed is not None:
        order = [i for i in order if allowed[i]]
    order = list(order[:k])
    return order, [float(scores[i]) for i in order]


def assert_same_results(hits, ids, ref_idx, ref_scores):
    assert len(hits) == len(ref_idx)
    for rank, (h, i, s) in enumerate(zip(hits, ref_idx, ref_scores)):
        assert abs(h["score"] - s) <= 1e-5 * max(1.0, abs(s)), (rank, h, s)
        # ids must agree unless the reference has a near-tie at this rank
        neighbours = [x for x in ref_scores if abs(x - s) <= 2e-5 * max(1.0, abs(s))]
        if len(neighbours) == 1:
            assert h["id"] == ids[i], (rank, h["id"], ids[i])


def make_data(n, dim, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, dim)) * scale).astype(np.float32)


def upsert_all(client, name, ids, vectors, payloads=None, batch=500):
    for start in range(0, len(ids), batch):
        pts = []
        for j in range(start, min(start + batch, len(ids))):
            p = {"id": ids[j], "vector": vectors[j].tolist()}
            if payloads is not None:
                p["payload"] = payloads[j]
            pts.append(p)
        r = client.ok("PUT", f"/collections/{name}/points", {"points": pts})
        assert r["inserted"] + r["updated"] == len(pts)


def test_probes_and_metrics(client):
    assert client.ok("GET", "/healthz") == {"status": "ok"}
    assert client.ok("GET", "/readyz") == {"status": "ready"}
    client.ok("PUT", "/collections/m", {"dim": 4})
    client.ok("PUT", "/collections/m/points", {"points": [{"id": 1, "vector": [1, 2, 3, 4]}]})
    status, text = client.request("GET", "/metrics")
    assert status == 200
    assert 'vectord_http_requests_total{route="healthz",status="200"} 1' in text
    assert 'vectord_http_request_duration_seconds_bucket{route="points_upsert",le="+Inf"} 1' in text
    assert 'vectord_collection_points{collection="m"} 1' in text
    assert 'vectord_collection_memory_bytes{collection="m",part="vectors"}' in text
    assert "vectord_process_resident_memory_bytes" in text
    # Prometheus' standard process metrics, under their standard names.
    import re
    import time as _time
    fam = {m.group(1): float(m.group(2)) for m in re.finditer(r"^(process_\w+) (\S+)$", text, re.M)}
    assert set(fam) == {"process_cpu_seconds_total", "process_start_time_seconds", "process_resident_memory_bytes",
                        "process_virtual_memory_bytes", "process_open_fds", "process_max_fds"}, fam
    assert abs(fam["process_start_time_seconds"] - _time.time()) < 600, fam
    assert fam["process_cpu_seconds_total"] >= 0 and 0 < fam["process_open_fds"] <= fam["process_max_fds"], fam
    assert fam["process_resident_memory_bytes"] > 0 and fam["process_virtual_memory_bytes"] > 0, fam
    assert "# TYPE process_cpu_seconds_total counter" in text


def test_collection_lifecycle(client):
    assert client.ok("GET", "/collections") == {"collections": []}
    info = client.ok("PUT", "/collections/memories",
                     {"dim": 8, "metric": "dot", "shards": 3, "index": {"type": "flat"},
                      "payload_indexes": {"userId": "keyword", "createdAt": "numeric"}})
    assert info["name"] == "memories" and info["dim"] == 8 and info["metric"] == "dot"
    assert info["shards"] == 3 and info["index"] == {"type": "flat"}
    assert info["payload_indexes"] == {"userId": "keyword", "createdAt": "numeric"}
    assert info["points_count"] == 0 and info["score_order"] == "higher_is_better"
    assert len(info["shards_info"]) == 3
    client.error("PUT", "/collections/memories", {"dim": 8}, 409, "collection_exists")
    client.ok("PUT", "/collections/other", {"dim": 3, "metric": "l2"})
    names = [c["name"] for c in client.ok("GET", "/collections")["collections"]]
    assert names == ["memories", "other"]
    assert client.ok("GET", "/collections/other")["score_order"] == "lower_is_better"
    assert client.ok("DELETE", "/collections/other") == {"deleted": True}
    client.error("GET", "/collections/other", status=404, code="collection_not_found")
    client.error("DELETE", "/collections/other", status=404, code="collection_not_found")


def test_points_upsert_get_delete_and_versions(client):
    client.ok("PUT", "/collections/c", {"dim": 3, "metric": "l2"})
    r = client.ok("PUT", "/collections/c/points", {"points": [
        {"id": "mem_1", "vector": [1, 2, 3], "payload": {"userId": "u1", "nested": {"a": [1, 2]}},
         "version": 10},
        {"id": 42, "vector": [0, 0, 1]},
        {"id": "mem_1", "vector": [1, 2, 4], "payload": {"userId": "u1", "v": 2}, "version": 11},
    ]})
    assert r == {"status": "completed", "inserted": 2, "updated": 1, "skipped_stale": 0}
    p = client.ok("GET", "/collections/c/points/mem_1?with_vector=true")
    assert p == {"id": "mem_1", "version": 11, "payload": {"userId": "u1", "v": 2}, "vector": [1, 2, 4]}
    p = client.ok("GET", "/collections/c/points/42")
    assert p == {"id": 42, "version": 0, "payload": {}}
    client.error("GET", "/collections/c/points/42?id_type=string", status=404, code="point_not_found")
    # a stale version is ignored, not an error; an equal version applies (idempotent replay)
    r = client.ok("PUT", "/collections/c/points",
                  {"points": [{"id": "mem_1", "vector": [9, 9, 9], "payload": {}, "version": 5}]})
    assert r["skipped_stale"] == 1
    assert client.ok("GET", "/collections/c/points/mem_1")["payload"] == {"userId": "u1", "v": 2}
    r = client.ok("PUT", "/collections/c/points",
                  {"points": [{"id": "mem_1", "vector": [9, 9, 9], "payload": {"w": 1}, "version": 11}]})
    assert r["updated"] == 1
    assert client.ok("GET", "/collections/c/points/mem_1")["payload"] == {"w": 1}
    # delete by ids (missing ids are not an error) and by filter
    assert client.ok("POST", "/collections/c/points/delete", {"ids": [42, "nope"]})["deleted"] == 1
    client.error("GET", "/collections/c/points/42", status=404, code="point_not_found")
    client.ok("PUT", "/collections/c/points", {"points": [
        {"id": i, "vector": [i, 1, 1], "payload": {"group": "a" if i % 2 else "b"}} for i in range(1, 11)]})
    r = client.ok("POST", "/collections/c/points/delete",
                  {"filter": {"must": [{"key": "group", "match": {"value": "a"}}]}})
    assert r["deleted"] == 5
    assert client.ok("GET", "/collections/c")["points_count"] == 6
    # ids with slashes and unicode round-trip through the path
    client.ok("PUT", "/collections/c/points", {"points": [{"id": "a/b ü", "vector": [1, 1, 1]}]})
    assert client.ok("GET", "/collections/c/points/a%2Fb%20%C3%BC")["id"] == "a/b ü"
    assert client.ok("PUT", "/collections/c/points?wait=false",
                     {"points": [{"id": 1, "vector": [1, 1, 1]}]})["status"] == "completed"


def test_the_largest_integer_ids_come_back_exactly(client):
    """Integer ids go up to 2^53 - 1. Answers printed them through cJSON,
    which wrote 9007199254740991 as 9.00719925474099e+15 (its read-back check
    allows an epsilon): a client got back an id one off from the one it stored."""
    client.ok("PUT", "/collections/bigid", {"dim": 2, "metric": "l2"})
    ids = [9007199254740991, 9007199254740990, 1234567890123457, 2 ** 52 + 1]
    client.ok("PUT", "/collections/bigid/points",
              {"points": [{"id": i, "vector": [float(k), 0.0]} for k, i in enumerate(ids)]})
    assert client.ok("GET", f"/collections/bigid/points/{ids[0]}")["id"] == ids[0]
    hits = client.ok("POST", "/collections/bigid/search", {"vector": [0.0, 0.0], "k": 4})
    assert [h["id"] for h in hits] == ids
    batch = client.ok("POST", "/collections/bigid/search/batch", {"searches": [{"vector": [3.0, 0.0], "k": 1}]})
    assert batch[0][0]["id"] == ids[3]
    client.ok("DELETE", "/collections/bigid")


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
@pytest.mark.parametrize("shards", [1, 3])
def test_exact_search_equals_brute_force(client, metric, shards):
    n, dim = 3000, 64
    base = make_data(n, dim, seed=1, scale=1 / 8)
    queries = make_data(20, dim, seed=2, scale=1 / 8)
    ids = [f"m{i}" if i % 2 else i for i in range(n)]
    client.ok("PUT", "/collections/e", {"dim": dim, "metric": metric, "shards": shards})
    upsert_all(client, "e", ids, base)
    assert client.ok("GET", "/collections/e")["points_count"] == n
    for q in queries:
        hits = client.ok("POST", "/collections/e/search", {"vector": q.tolist(), "k": 10})
        ref_idx, ref_scores = reference(metric, base, q, 10)
        assert_same_results(hits, ids, ref_idx, ref_scores)
    # batch search gives the same answers in order
    batch = client.ok("POST", "/collections/e/search/batch",
                      {"searches": [{"vector": q.tolist(), "k": 5} for q in queries[:4]]})
    assert len(batch) == 4
    for q, hits in zip(queries[:4], batch):
        ref_idx, ref_scores = reference(metric, base, q, 5)
        assert_same_results(hits, ids, ref_idx, ref_scores)


def test_search_1536_dims(client):
    n, dim = 400, 1536
    base = make_data(n, dim, seed=5, scale=1 / 40)
    client.ok("PUT", "/collections/big", {"dim": dim, "metric": "cosine"})
    upsert_all(client, "big", list(range(n)), base, batch=200)
    q = make_data(1, dim, seed=6)[0]
    hits = client.ok("POST", "/collections/big/search", {"vector": q.tolist(), "k": 20})
    ref_idx, ref_scores = reference("cosine", base, q, 20)
    assert_same_results(hits, list(range(n)), ref_idx, ref_scores)


def test_search_options(client):
    client.ok("PUT", "/collections/o", {"dim": 2, "metric": "l2"})
    client.ok("PUT", "/collections/o/points", {"points": [
        {"id": i, "vector": [float(i), 0.0], "payload": {"i": i}} for i in range(10)]})
    hits = client.ok("POST", "/collections/o/search",
                     {"vector": [0, 0], "k": 3, "with_payload": False, "with_vector": True})
    assert [h["id"] for h in hits] == [0, 1, 2]
    assert [h["score"] for h in hits] == [0, 1, 4]
    assert "payload" not in hits[0] and hits[2]["vector"] == [2, 0]
    # l2: score_threshold keeps distances <= threshold
    hits = client.ok("POST", "/collections/o/search", {"vector": [0, 0], "k": 10, "score_threshold": 4})
    assert [h["id"] for h in hits] == [0, 1, 2]
    assert hits[1]["payload"] == {"i": 1}
    # k larger than the collection returns everything; limit is an alias of k
    assert len(client.ok("POST", "/collections/o/search", {"vector": [0, 0], "limit": 100})) == 10
    # exact/ef/nprobe are accepted (flat is always exact)
    assert len(client.ok("POST", "/collections/o/search",
                         {"vector": [0, 0], "k": 2, "exact": True, "ef": 64, "nprobe": 4})) == 2
    client.ok("PUT", "/collections/s", {"dim": 2, "metric": "cosine"})
    client.ok("PUT", "/collections/s/points", {"points": [
        {"id": 1, "vector": [1, 0]}, {"id": 2, "vector": [1, 1]}, {"id": 3, "vector": [0, 1]}]})
    hits = client.ok("POST", "/collections/s/search", {"vector": [2, 0], "score_threshold": 0.7})
    assert [h["id"] for h in hits] == [1, 2]
    assert abs(hits[1]["score"] - 0.70710678) < 1e-6
    # stored cosine vectors are normalised
    v = client.ok("GET", "/collections/s/points/2?with_vector=true")["vector"]
    assert abs(v[0] - 0.70710678) < 1e-6


FILTERS = [
    {"must": [{"key": "userId", "match": {"value": "u3"}}]},
    {"must": [{"key": "userId", "match": {"any": ["u1", "u7", "u9"]}},
              {"key": "createdAt", "range": {"gte": 200, "lt": 700}}]},
    {"must": [{"key": "type", "match": {"value": "note"}}],
     "must_not": [{"key": "meta.lang", "match": {"value": "en"}}]},
    {"should": [{"key": "tags", "match": {"value": "red"}}, {"key": "createdAt", "range": {"gt": 990}}]},
    {"must": [{"should": [{"key": "userId", "match": {"value": "u0"}},
                          {"must": [{"key": "type", "match": {"value": "fact"}},
                                    {"key": "meta.score", "range": {"lte": 0.1}}]}]}]},
    {"must": [{"key": "userId", "match": {"value": "nobody"}}]},
    {"must": [{"key": "at", "range": {"gte": "2026-03-10", "lt": "2026-08-01T06:00:00+02:00"}}]},
    {"should": [{"key": "at", "range": {"gt": "2026-12-20T00:00:00Z"}}, {"key": "type", "match": {"value": "event"}}]},
]


def _instant(x):
    """An RFC 3339 date-time (or date) as seconds since 1970, or None."""
    import datetime
    if not isinstance(x, str):
        return None
    try:
        d = datetime.datetime.fromisoformat(x.replace("Z", "+00:00"))
    except ValueError:
        return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=datetime.timezone.utc)
    return d.timestamp()


def payload_matches(p, f):
    def get(key):
        cur = p
        for part in key.split("."):
            if not isinstance(cur, dict) or part not in cur:
                return None
            cur = cur[part]
        return cur

    def cond(c):
        if any(k in c for k in ("must", "should", "must_not")):
            return group(c)
        v = get(c["key"])
        vals = v if isinstance(v, list) else [v]
        if "match" in c:
            want = c["match"].get("any", [c["match"].get("value")])
            return any(x in want and type(x) is type(w) for x in vals for w in want if x == w)
        r = c["range"]
        if any(isinstance(b, str) for b in r.values()):  # date-times
            r = {k: _instant(b) for k, b in r.items()}
            vals = [_instant(x) for x in vals]
        for x in vals:
            if isinstance(x, (int, float)) and not isinstance(x, bool) and \
                    ("gt" not in r or x > r["gt"]) and ("gte" not in r or x >= r["gte"]) and \
                    ("lt" not in r or x < r["lt"]) and ("lte" not in r or x <= r["lte"]):
                return True
        return False

    def group(g):
        return all(cond(c) for c in g.get("must", [])) and \
            not any(cond(c) for c in g.get("must_not", [])) and \
            (not g.get("should") or any(cond(c) for c in g["should"]))
    return group(f)


@pytest.mark.parametrize("indexed", [False, True])
def test_filtered_search_equals_brute_force_over_matching_set(client, indexed):
    n, dim = 2000, 32
    rng = np.random.default_rng(9)
    base = make_data(n, dim, seed=10, scale=0.2)
    payloads = []
    for i in range(n):
        payloads.append({
            "userId": f"u{int(rng.zipf(1.5)) % 10}",
            "type": ["note", "fact", "event"][i % 3],
            "createdAt": int(rng.integers(0, 1000)),
            "tags": ["red", "blue"] if i % 7 == 0 else ["blue"],
            "meta": {"lang": "en" if i % 4 else "de", "score": float(rng.random())},
            "at": f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:30:00" + ("Z" if i % 2 else "+01:00"),
        })
    body = {"dim": dim, "metric": "l2", "shards": 2}
    if indexed:
        body["payload_indexes"] = {"userId": "keyword", "type": "keyword", "createdAt": "numeric",
                                   "tags": "keyword", "at": "datetime"}
    client.ok("PUT", "/collections/f", body)
    upsert_all(client, "f", list(range(n)), base, payloads)
    if indexed:  # add one more index after the data is in
        info = client.ok("PUT", "/collections/f/payload_indexes", {"field": "meta.score", "type": "numeric"})
        assert info["payload_indexes"]["meta.score"] == "numeric"
    q = make_data(1, dim, seed=11, scale=0.2)[0]
    for f in FILTERS:
        allowed = [payload_matches(p, f) for p in payloads]
        k = 15
        hits = client.ok("POST", "/collections/f/search", {"vector": q.tolist(), "k": k, "filter": f})
        ref_idx, ref_scores = reference("l2", base, q, k, allowed)
        assert len(hits) == min(k, sum(allowed)), f
        assert_same_results(hits, list(range(n)), ref_idx, ref_scores)
        for h in hits:
            assert payload_matches(h["payload"], f)


@pytest.mark.parametrize("simd", ["scalar", "avx2", "avx512"])
def test_every_kernel_path_end_to_end(simd):
    """The server forced onto each ISA gives the brute-force answer (or says it fell back)."""
    from conftest import Server
    s = Server(args=["--set", f"simd={simd}"])
    try:
        c = s.client
        _, metrics = c.request("GET", "/metrics")
        active = re.search(r'vectord_build_info\{version="[^"]+",simd="(\w+)"\}', metrics).group(1)
        if active != simd:
            assert "simd not supported by this cpu" in s.logs()
            pytest.skip(f"{simd} not supported here; server fell back to {active}")
        n, dim = 1000, 100  # dim not a multiple of 8/16/32: exercises the kernel tails
        base = make_data(n, dim, seed=21, scale=0.1)
        for metric in ("cosine", "dot", "l2"):
            c.ok("PUT", f"/collections/{metric}", {"dim": dim, "metric": metric})
            upsert_all(c, metric, list(range(n)), base)
            q = make_data(1, dim, seed=22, scale=0.1)[0]
            hits = c.ok("POST", f"/collections/{metric}/search", {"vector": q.tolist(), "k": 10})
            ref_idx, ref_scores = reference(metric, base, q, 10)
            assert_same_results(hits, list(range(n)), ref_idx, ref_scores)
    finally:
        s.stop()


def test_vector_b64_for_bulk_loads(client):
    import base64
    n, dim = 300, 24
    base = make_data(n, dim, seed=31)
    client.ok("PUT", "/collections/b", {"dim": dim, "metric": "l2"})
    pts = [{"id": i, "vector_b64": base64.b64encode(base[i].astype("<f4").tobytes()).decode()}
           for i in range(n)]
    assert client.ok("PUT", "/collections/b/points", {"points": pts})["inserted"] == n
    got = client.ok("GET", "/collections/b/points/7?with_vector=true")["vector"]
    assert np.array_equal(np.array(got, dtype=np.float32), base[7]), "9 digits round-trip a float32"
    q = make_data(1, dim, seed=32)[0]
    hits = client.ok("POST", "/collections/b/search",
                     {"vector_b64": base64.b64encode(q.astype("<f4").tobytes()).decode(), "k": 5})
    ref_idx, ref_scores = reference("l2", base, q, 5)
    assert_same_results(hits, list(range(n)), ref_idx, ref_scores)
    client.error("POST", "/collections/b/search", {"vector_b64": "AAAA"}, 400, "dimension_mismatch")


def test_every_route_in_the_table_is_documented():
    """src/server/routes.h is the one list of routes; docs/API.md documents
    each native one, docs/QDRANT.md each of the Qdrant dialect (QD_*)."""
    import os
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    table = open(os.path.join(root, "src", "server", "routes.h")).read()
    routes = re.findall(r'X\((\w+), "(\w+)", "([^"]+)"', table)
    assert len(routes) >= 19, routes
    api = open(os.path.join(root, "docs", "API.md")).read()
    qdrant = open(os.path.join(root, "docs", "QDRANT.md")).read()
    for rid, method, path in routes:
        doc, name = (qdrant, "QDRANT.md") if rid.startswith("QD_") else (api, "API.md")
        if rid.startswith("QD_"):
            found = f"`{method} {path.replace('{c}', '{name}')}`" in doc or \
                f"`{path.replace('{c}', '{name}')}`" in doc or f"`{method} /healthz`, `/livez`, `/readyz`" in doc
        else:
            found = f"`{method} {path.replace('{c}', '{name}')}" in doc
        assert found, f"{method} {path} is not in docs/{name}"


def test_a_payload_index_is_dropped_and_stays_dropped():
    """DELETE …/payload_indexes/{field}: one logged change; filters on the
    field keep their answers (by scanning); a second drop is 404; a crash
    (replay of the WAL) and a checkpoint keep it dropped."""
    import tempfile
    from conftest import Server
    with tempfile.TemporaryDirectory() as d:
        s = Server(data_dir=d + "/data")
        c = s.client
        c.ok("PUT", "/collections/p", {"dim": 4, "metric": "l2", "index": {"type": "hnsw"},
                                       "payload_indexes": {"user": "keyword", "n": "numeric", "at": "datetime"}})
        c.ok("PUT", "/collections/p/points", {"points": [
            {"id": i, "vector": [i, 1, 0, 0], "payload": {"user": f"u{i % 3}", "n": i}} for i in range(30)]})
        flt = {"must": [{"key": "user", "match": {"value": "u1"}}, {"key": "n", "range": {"lt": 20}}]}
        before = sorted(h["id"] for h in c.ok("POST", "/collections/p/search",
                                              {"vector": [0, 1, 0, 0], "k": 30, "filter": flt}))
        info = c.ok("DELETE", "/collections/p/payload_indexes/user")
        assert info["payload_indexes"] == {"n": "numeric", "at": "datetime"}, info
        after = sorted(h["id"] for h in c.ok("POST", "/collections/p/search",
                                             {"vector": [0, 1, 0, 0], "k": 30, "filter": flt}))
        assert after == before == [1, 4, 7, 10, 13, 16, 19]
        c.error("DELETE", "/collections/p/payload_indexes/user", None, 404, "not_found")
        c.error("DELETE", "/collections/nope/payload_indexes/user", None, 404, "collection_not_found")
        c.ok("POST", "/admin/checkpoint")
        c.ok("DELETE", "/collections/p/payload_indexes/at")  # after the checkpoint: in the WAL only
        c.ok("PUT", "/collections/p/payload_indexes", {"field": "user", "type": "keyword"})  # and back
        s.kill()
        s = Server(data_dir=d + "/data")
        assert s.client.ok("GET", "/collections/p")["payload_indexes"] == {"n": "numeric", "user": "keyword"}
        s.stop()
