"""The Qdrant-compatible REST API (docs/QDRANT.md) on its own listener
(qdrant_listen), driven by the official Qdrant JS client
(@qdrant/js-client-rest, pinned in tests/tools with a lockfile): what it
supports answers as Qdrant does, what it does not is refused with Qdrant's
error shape and a message saying so; the two dialects stay on their own
listeners; the same API keys guard both."""
import http.client
import json
import os
import re
import subprocess

from conftest import TOOLS, Server, node_tools


def qdrant_port(s):
    return int(re.search(r'msg="listening \(Qdrant API\)" addr=127\.0\.0\.1:(\d+)', s.logs()).group(1))


def js_client(port, api_key=None):
    node_tools("for the Qdrant client tests")
    args = ["node", os.path.join(TOOLS, "qdrant-client.mjs"), f"http://127.0.0.1:{port}"]
    r = subprocess.run(args + ([api_key] if api_key else []), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def raw(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        c.request(method, path, body=json.dumps(body) if body is not None else None, headers=hdrs)
        r = c.getresponse()
        data = r.read()
        ctype = r.getheader("Content-Type", "")
        return r.status, json.loads(data) if ctype.startswith("application/json") else data.decode()
    finally:
        c.close()


def test_the_official_js_client_manages_collections():
    s = Server(args=["--set", "qdrant_listen=127.0.0.1:0"])
    try:
        out = js_client(qdrant_port(s))
    finally:
        s.stop()
    assert out["versionInfo"]["ok"]["version"] == "1.18.0"
    assert out["createCollection"] == {"ok": True} and out["createQuantized"] == {"ok": True}
    # Refusals: Qdrant's error shape, a message naming what is not supported.
    for step, status, words in (("createExisting", 409, "already exists"),
                                ("createManhattan", 400, "Manhattan is not supported"),
                                ("createNamed", 400, "named vectors are not supported"),
                                ("getMissing", 404, "does not exist")):
        assert out[step]["status"] == status and words in out[step]["data"]["status"]["error"], out[step]
    assert out["getCollections"]["ok"] == {"collections": [{"name": "memories"}, {"name": "quantized"}]}
    assert out["collectionExists"]["ok"] == {"exists": True}
    assert out["collectionMissing"]["ok"] == {"exists": False}
    # Points: both upsert forms, UUIDs in any spelling returned canonically, retrieve, deletes.
    assert out["upsertList"]["ok"] == {"operation_id": 0, "status": "completed"}
    assert out["upsertBatch"]["ok"]["status"] == "completed"
    assert out["upsertBadId"]["status"] == 400 and "UUID" in out["upsertBadId"]["data"]["status"]["error"]
    got = out["retrieve"]["ok"]
    assert [r["id"] for r in got] == [1, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"], got  # 99 is left out
    assert got[0]["payload"] == {"userId": "u1", "n": 1} and got[0]["vector"] == [1, 0, 0, 0], got
    assert out["countAll"]["ok"] == {"count": 4} and out["countFiltered"]["ok"] == {"count": 2}, out["countAll"]
    # Scroll: id order (integers, then UUIDs), pages chained by next_page_offset, filters.
    p1 = out["scrollPage1"]["ok"]
    assert [r["id"] for r in p1["points"]] == [1, 2] and p1["next_page_offset"] == 3, p1
    assert p1["points"][0]["payload"] == {"userId": "u1", "n": 1}, p1
    p2 = out["scrollPage2"]["ok"]
    assert [r["id"] for r in p2["points"]] == [3, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"], p2
    assert p2["next_page_offset"] is None, p2
    sf = out["scrollFiltered"]["ok"]
    assert [r["id"] for r in sf["points"]] == [1, 2] and sf["next_page_offset"] is None, sf
    assert all("payload" not in r or r["payload"] is None for r in sf["points"]), sf
    # Searches: Qdrant's defaults (no payload unless asked), offset, payload field selection, filters.
    hits = out["search"]["ok"]
    assert [h["id"] for h in hits] == [1, 2] or [h["id"] for h in hits][0] == 1, hits
    assert hits[0]["payload"] == {"userId": "u1", "n": 1} and abs(hits[0]["score"] - 0.995) < 0.01, hits
    f = out["searchFiltered"]["ok"]  # u1 has points 1 and 2; offset 1 skips the best (2)
    assert [h["id"] for h in f] == [1] and f[0]["payload"] == {"userId": "u1"} and len(f[0]["vector"]) == 4, f
    assert [h["id"] for h in out["searchThreshold"]["ok"]] == [1], out["searchThreshold"]
    b = out["searchBatch"]["ok"]
    assert [[h["id"] for h in r] for r in b] == [["5c56c793-69f3-4fbf-87e6-c4bf54c28c26"], [3]], b
    assert b[0][0]["payload"] == {"userId": "u2"}, b
    # Query: a vector, a point id (that point left out), MMR, batches; fusion refused clearly.
    qr = out["query"]["ok"]["points"]
    assert [h["id"] for h in qr][0] == 1 and qr[0]["payload"] == {"userId": "u1"}, qr
    assert [h["id"] for h in out["queryById"]["ok"]["points"]] != [1], out["queryById"]
    mmr = [h["id"] for h in out["queryMmr"]["ok"]["points"]]
    assert mmr[0] == 1 and len(mmr) == 2 and mmr[1] != 2, mmr  # 2 is nearest to 1's direction but alike
    qb = out["queryBatch"]["ok"]
    assert [[h["id"] for h in r["points"]] for r in qb][0] == [3] and len(qb) == 2, qb
    # Fusion (Qdrant's RRF: sum of 1 / (position + k), k = 2 unless given; weights; DBSF), re-ranking.
    uuid = "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"
    def ranked(step):
        return [(h["id"], round(h["score"], 4)) for h in out[step]["ok"]["points"]]
    assert ranked("queryFusion") == [(2, 0.75), (uuid, 0.5833), (1, 0.5), (3, 0.3333)], ranked("queryFusion")
    assert out["queryFusion"]["ok"]["points"][0]["payload"] == {"userId": "u1"}
    assert ranked("queryRrfK") == [(1, 0.0334), (2, 0.0169), (uuid, 0.0164)], ranked("queryRrfK")
    dbsf = ranked("queryDbsf")
    assert len(dbsf) == 2 and dbsf[0][1] >= dbsf[1][1] and dbsf[0][0] in (2, uuid), dbsf
    assert ranked("queryRescore") == [(2, 0.9759), (uuid, 0.1952)], ranked("queryRescore")
    assert out["queryRescore"]["ok"]["points"][0]["vector"] == [0, 0, 1, 0]
    assert ranked("queryFusionFiltered") == [(1, 0.8333), (2, 0.8333)], ranked("queryFusionFiltered")
    assert out["queryFusionNested"]["status"] == 400 and "nested prefetch" in \
        out["queryFusionNested"]["data"]["status"]["error"], out["queryFusionNested"]
    fb = out["queryFusionBatch"]["ok"]
    assert [[h["id"] for h in r["points"]] for r in fb] == [[1, 3], [3]], fb
    assert out["searchNamed"]["status"] == 400 and "named" in out["searchNamed"]["data"]["status"]["error"]
    assert out["deleteIds"]["ok"]["status"] == "completed" and out["deleteFilter"]["ok"]["status"] == "completed"
    left = out["afterDeletes"]["ok"]
    assert [r["id"] for r in left] == [1, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"], left
    assert all("vector" not in r for r in left), left
    # Payload indexes: create (idempotent), refusals naming what is not supported.
    assert out["createIndex"]["ok"]["status"] == "completed" and out["createIndexAgain"]["ok"]["status"] == "completed"
    assert out["createIndexNumeric"]["ok"]["status"] == "completed"
    info = out["getCollection"]["ok"]
    assert info["payload_schema"] == {"userId": {"data_type": "keyword", "points": 2},
                                      "n": {"data_type": "float", "points": 2}}, info["payload_schema"]
    assert info["status"] == "green" and info["points_count"] == 2
    assert info["config"]["params"]["vectors"] == {"size": 4, "distance": "Cosine", "on_disk": False}
    assert info["config"]["hnsw_config"]["m"] == 16 and info["config"]["hnsw_config"]["ef_construct"] == 100
    assert info["config"]["quantization_config"] is None
    q = out["getQuantized"]["ok"]["config"]
    assert q["params"]["vectors"]["distance"] == "Euclid" and q["quantization_config"]["scalar"]["type"] == "int8"
    assert out["updateCollection"] == {"ok": True}
    assert out["updateHnsw"]["status"] == 400 and "rebuild" in out["updateHnsw"]["data"]["status"]["error"]
    # Changing stored points: each edit is one logged write; Qdrant's 404 for a named missing point.
    for step in ("editsCreate", "setPayload", "setPayloadKey", "setPayloadFilter", "overwritePayload",
                 "deletePayload", "clearPayload", "updateVectors"):
        assert out[step]["ok"] == {"operation_id": 0, "status": "completed"}, (step, out[step])
    for step in ("setPayloadMissing", "updateVectorsMissing"):
        assert out[step]["status"] == 404 and "No point with id" in out[step]["data"]["status"]["error"], out[step]
    assert out["deleteVectors"]["status"] == 400 and "always has its one vector" in \
        out["deleteVectors"]["data"]["status"]["error"], out["deleteVectors"]
    e = {r["id"]: r for r in out["afterEdits"]["ok"]}
    assert e[1]["payload"] == {} and e[1]["vector"] == [1, 0, 0, 0], e[1]
    assert e[2]["payload"] == {"tag": "a"} and e[2]["vector"] == [0, 0, 0, 5], e[2]
    assert e["6a0c1e4b-0a1c-4f7e-9d8e-2f1b3c4d5e6f"]["payload"] == {"tag": "d"}, e
    assert out["countTagC"]["ok"] == {"count": 0}  # point 1's tag "c" was cleared, and the index knows
    # Payload selectors on retrieve and scroll, as on search.
    assert out["retrieveInclude"]["ok"] == [{"id": 2, "payload": {"tag": "a"}}], out["retrieveInclude"]
    assert out["scrollExclude"]["ok"]["points"][0]["payload"] == {}, out["scrollExclude"]
    assert out["scrollFields"]["ok"]["points"][0]["payload"] == {"tag": "a"}, out["scrollFields"]
    # bool (a keyword index) and datetime indexes; text is refused.
    assert out["orderedIndexBool"]["ok"]["status"] == "completed" and out["orderedIndexTime"]["ok"]["status"] == "completed"
    assert out["orderedIndexText"]["status"] == 400 and "text" in out["orderedIndexText"]["data"]["status"]["error"]
    assert out["countTimeRange"]["ok"] == {"count": 2} and out["countBool"]["ok"] == {"count": 1}
    # Dropping an index (idempotent, as creating one is): filters on the field still answer, by scanning.
    assert out["deleteIndex"]["ok"]["status"] == "completed" and out["deleteIndexMissing"]["ok"]["status"] == "completed"
    assert out["countBoolUnindexed"]["ok"] == {"count": 1}
    assert {k: v["data_type"] for k, v in out["orderedInfo"]["ok"]["payload_schema"].items()} == \
        {"at": "datetime"}, out["orderedInfo"]
    # Scroll in payload order: numbers or date-times; an array orders by its lowest (asc) or highest
    # (desc) value; points without the key are left out; start_from pages; offset is refused with it.
    def order(step):
        return [(p["id"], p["order_value"]) for p in out[step]["ok"]["points"]]
    assert order("scrollOrderAsc") == [(5, 0), (2, 1), (3, 2), (1, 3)], order("scrollOrderAsc")
    assert order("scrollOrderDesc") == [(5, 5), (1, 3), (3, 2)], order("scrollOrderDesc")
    assert order("scrollOrderFrom") == [(1, 3)], order("scrollOrderFrom")
    assert [i for i, _ in order("scrollOrderTime")] == [1, 3], order("scrollOrderTime")
    assert out["scrollOrderAsc"]["ok"]["next_page_offset"] is None
    assert out["scrollOrderOffset"]["status"] == 400 and "start_from" in out["scrollOrderOffset"]["data"]["status"]["error"]
    # has_id, with UUIDs in any spelling, in count, scroll, search and delete filters.
    assert out["countHasId"]["ok"] == {"count": 2}, out["countHasId"]
    assert [r["id"] for r in out["scrollHasId"]["ok"]["points"]] == [2, "6a0c1e4b-0a1c-4f7e-9d8e-2f1b3c4d5e6f"]
    assert sorted(str(h["id"]) for h in out["searchHasId"]["ok"]) == ["2", "6a0c1e4b-0a1c-4f7e-9d8e-2f1b3c4d5e6f"]
    assert out["deleteHasId"]["ok"]["status"] == "completed" and out["afterDeleteHasId"]["ok"] == {"count": 2}
    assert out["deleteCollection"] == {"ok": True}
    assert out["afterDelete"]["ok"] == {"collections": [{"name": "edits"}, {"name": "memories"}, {"name": "ordered"}]}


def test_each_listener_speaks_its_own_dialect():
    s = Server(args=["--set", "qdrant_listen=127.0.0.1:0"])
    try:
        q = qdrant_port(s)
        assert raw(q, "PUT", "/collections/a", {"vectors": {"size": 2, "distance": "Dot"}}) [1]["result"] is True
        # The same collection through the native API, in its shape.
        info = s.client.ok("GET", "/collections/a")
        assert info["dim"] == 2 and info["metric"] == "dot" and info["index"]["type"] == "hnsw"
        # A native body on the Qdrant listener, and a Qdrant body on the native one: each refused in its shape.
        status, doc = raw(q, "PUT", "/collections/b", {"dim": 2})
        assert status == 400 and "unknown field 'dim'" in doc["status"]["error"], doc
        s.client.error("PUT", "/collections/b", {"vectors": {"size": 2, "distance": "Dot"}}, status=400,
                       code="unknown_field")
        # Routes of one dialect are not on the other listener.
        status, doc = raw(q, "GET", "/metrics")
        assert status == 404 and "error" in doc["status"], doc
        s.client.error("GET", "/collections/a/exists", status=404)
        # The service routes, as Qdrant answers them.
        assert raw(q, "GET", "/healthz") == (200, "healthz check passed")
        assert raw(q, "GET", "/livez") == (200, "healthz check passed")
        assert raw(q, "GET", "/readyz") == (200, "all shards are ready")
        status, doc = raw(q, "GET", "/collections/a")
        assert status == 200 and doc["status"] == "ok" and isinstance(doc["time"], float), doc
        # A point by path id: digits are an integer id, a UUID in any spelling its canonical form.
        raw(q, "PUT", "/collections/a/points", {"points": [
            {"id": 7, "vector": [1, 0], "payload": {"k": "v"}},
            {"id": "5c56c793-69f3-4fbf-87e6-c4bf54c28c26", "vector": [0, 1]}]})
        status, doc = raw(q, "GET", "/collections/a/points/7")
        assert status == 200 and doc["result"] == {"id": 7, "payload": {"k": "v"}, "vector": [1, 0]}, doc
        status, doc = raw(q, "GET", "/collections/a/points/5C56C79369F34FBF87E6C4BF54C28C26")
        assert status == 200 and doc["result"]["id"] == "5c56c793-69f3-4fbf-87e6-c4bf54c28c26", doc
        status, doc = raw(q, "GET", "/collections/a/points/8")
        assert status == 404 and "not found" in doc["status"]["error"], doc
        # Euclid scores are distances (vectord's l2 score is their square), thresholds too.
        raw(q, "PUT", "/collections/e", {"vectors": {"size": 2, "distance": "Euclid"}})
        raw(q, "PUT", "/collections/e/points", {"points": [{"id": i, "vector": [3.0 * i, 4.0 * i]} for i in range(3)]})
        status, doc = raw(q, "POST", "/collections/e/points/search", {"vector": [0, 0], "limit": 3, "score_threshold": 5.5})
        assert status == 200 and [(h["id"], h["score"]) for h in doc["result"]] == [(0, 0), (1, 5)], doc
        assert all("payload" not in h for h in doc["result"]), doc  # Qdrant's default: no payload
        # Qdrant's filter conditions beyond match and range, through count.
        raw(q, "PUT", "/collections/f", {"vectors": {"size": 2, "distance": "Dot"}})
        raw(q, "PUT", "/collections/f/points", {"points": [
            {"id": 1, "vector": [1, 0], "payload": {"tags": ["a", "b"], "at": "2026-12-05T10:00:00Z",
                                                     "items": [{"k": "x", "v": 2}]}},
            {"id": 2, "vector": [0, 1], "payload": {"tags": [], "note": None, "at": "2026-11-01T00:00:00Z"}},
            {"id": 3, "vector": [1, 1], "payload": {"tags": ["c"], "items": [{"k": "x", "v": 9}]}}]})
        for flt, want in (({"must": [{"is_empty": {"key": "tags"}}]}, 1),
                          ({"must": [{"is_null": {"key": "note"}}]}, 1),
                          ({"must": [{"key": "tags", "values_count": {"gte": 1}}]}, 2),
                          ({"must": [{"key": "tags", "match": {"except": ["a", "b"]}}]}, 1),
                          ({"must": [{"key": "at", "range": {"gte": "2026-12-01T00:00:00Z"}}]}, 1),
                          ({"must": [{"nested": {"key": "items", "filter": {"must": [
                              {"key": "k", "match": {"value": "x"}}, {"key": "v", "range": {"gt": 5}}]}}}]}, 1),
                          ({"min_should": {"conditions": [{"is_empty": {"key": "tags"}}, {"is_null": {"key": "note"}},
                                                          {"key": "tags", "match": {"value": "c"}}],
                                           "min_count": 2}}, 1)):
            status, doc = raw(q, "POST", "/collections/f/points/count", {"filter": flt})
            assert status == 200 and doc["result"]["count"] == want, (flt, doc)
        status, doc = raw(q, "POST", "/collections/f/points/count", {"filter": {"must": [{"has_id": [1]}]}})
        assert status == 200 and doc["result"]["count"] == 1, doc
        status, doc = raw(q, "POST", "/collections/f/points/count", {"filter": {"must": [
            {"key": "loc", "geo_radius": {"center": {"lon": 0, "lat": 0}, "radius": 10}}]}})
        assert status == 400 and "invalid_filter" in doc["status"]["error"] and "geo_radius" in doc["status"]["error"], doc
        # The same points through the native API: a UUID is a string id there.
        assert s.client.ok("GET", "/collections/a/points/5c56c793-69f3-4fbf-87e6-c4bf54c28c26")["id"] == \
            "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"
    finally:
        s.stop()


def test_the_qdrant_listener_is_off_unless_configured_and_takes_the_same_keys():
    s = Server()
    try:
        assert "Qdrant API" not in s.logs()
    finally:
        s.stop()
    key, read_key = "a" * 32, "r" * 32
    s = Server(args=["--set", "qdrant_listen=127.0.0.1:0"],
               env={"VECTORD_API_KEY": key, "VECTORD_READ_API_KEY": read_key})
    try:
        q = qdrant_port(s)
        status, doc = raw(q, "GET", "/collections")
        assert status == 401 and "error" in doc["status"], doc
        assert raw(q, "GET", "/collections", headers={"api-key": read_key})[0] == 200
        assert raw(q, "GET", "/collections", headers={"Authorization": "Bearer " + read_key})[0] == 200
        status, doc = raw(q, "PUT", "/collections/x", {"vectors": {"size": 2, "distance": "Dot"}},
                          headers={"api-key": read_key})
        assert status == 403, doc
        assert raw(q, "GET", "/")[0] == 200  # the version, like the probes, needs no key
        out = js_client(q, api_key=key)
        assert out["createCollection"] == {"ok": True} and out["deleteCollection"] == {"ok": True}
    finally:
        s.stop()


def langchain_run(port):
    """tests/tools/langchain-qdrant.mjs against a Qdrant-compatible URL; its output."""
    node_tools("for the LangChain test")
    r = subprocess.run(["node", os.path.join(TOOLS, "langchain-qdrant.mjs"), f"http://127.0.0.1:{port}"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def langchain_check(out):
    assert out["addDocuments"] == {"ok": True}, out
    sim = out["similarity"]["ok"]
    assert [d["text"] for d in sim] == ["apples and bananas", "apple pie with bananas"], sim
    assert sim[0]["metadata"] == {"source": "fruit", "n": 1} and 0.9 < sim[0]["score"] <= 1.0, sim
    assert {d["metadata"]["source"] for d in out["filtered"]["ok"]} == {"animals"}, out["filtered"]
    mmr = out["mmr"]["ok"]
    assert mmr[0] == "apples and bananas" and len(mmr) == 2 and mmr[1] != "apple pie with bananas", mmr
    assert out["delete"] == {"ok": True}
    assert "apples and bananas" not in [d["text"] for d in out["existing"]["ok"]], out["existing"]
    assert len(out["existing"]["ok"]) == 3
    assert [d["text"] for d in out["deleteByFilter"]["ok"]] == ["apple pie with bananas"], out["deleteByFilter"]


def test_langchain_qdrant_vector_store():
    """@langchain/qdrant with a deterministic fake embedding: addDocuments,
    similarity search with scores and a metadata filter, MMR, delete by ids
    and by filter, fromExistingCollection."""
    s = Server(args=["--set", "qdrant_listen=127.0.0.1:0"])
    try:
        out = langchain_run(qdrant_port(s))
    finally:
        s.stop()
    langchain_check(out)


def test_hostile_bodies_on_every_qdrant_route_get_4xx_and_the_server_keeps_serving():
    """Every Qdrant route with bodies of the wrong shape or type: each answer
    is a 4xx in Qdrant's error shape, and the server (ASan in CI) serves on."""
    s = Server(args=["--set", "qdrant_listen=127.0.0.1:0"])
    try:
        q = qdrant_port(s)
        assert raw(q, "PUT", "/collections/h", {"vectors": {"size": 2, "distance": "Cosine"}})[0] == 200
        raw(q, "PUT", "/collections/h/points", {"points": [{"id": 1, "vector": [1, 0], "payload": {"a": 1}}]})
        values = [None, True, 5, -1, 1e308, "x", "", [], [1], [[1, 0]], {}, {"a": 1}, [None], ["x", 1],
                  {"size": 2}, {"nearest": {}}, {"nearest": [1, 0], "mmr": 5}, {"include": 5}, {"exclude": ["a"]},
                  "5c56c793-69f3-4fbf-87e6-c4bf54c28c26", 2 ** 64]
        bodies = [
            ("PUT", "/collections/h2", lambda v: {"vectors": v}),
            ("PUT", "/collections/h2", lambda v: {"vectors": {"size": v, "distance": "Dot"}}),
            ("PUT", "/collections/h2", lambda v: {"vectors": {"size": 2, "distance": "Dot"}, "hnsw_config": v}),
            ("PATCH", "/collections/h", lambda v: {"optimizers_config": v, "hnsw_config": v}),
            ("PUT", "/collections/h2", lambda v: {"vectors": {"size": 2, "distance": "Dot"}, "quantization_config": v}),
            ("PUT", "/collections/h/index", lambda v: {"field_name": v, "field_schema": v}),
            ("PUT", "/collections/h/index", lambda v: {"field_name": "a", "field_schema": {"type": v}}),
            ("PUT", "/collections/h/points", lambda v: {"points": v}),
            ("PUT", "/collections/h/points", lambda v: {"points": [{"id": v, "vector": [1, 0]}]}),
            ("PUT", "/collections/h/points", lambda v: {"points": [{"id": 2, "vector": v}]}),
            ("PUT", "/collections/h/points", lambda v: {"batch": v}),
            ("PUT", "/collections/h/points", lambda v: {"batch": {"ids": v, "vectors": [[1, 0]]}}),
            ("POST", "/collections/h/points", lambda v: {"ids": v, "with_payload": v}),
            ("POST", "/collections/h/points/delete", lambda v: {"points": v}),
            ("POST", "/collections/h/points/delete", lambda v: {"filter": v}),
            ("POST", "/collections/h/points/count", lambda v: {"filter": v, "exact": v}),
            ("POST", "/collections/h/points/payload", lambda v: {"payload": v, "points": [1]}),
            ("POST", "/collections/h/points/payload", lambda v: {"payload": {"b": 1}, "points": v, "key": v}),
            ("PUT", "/collections/h/points/payload", lambda v: {"payload": v, "filter": v}),
            ("PUT", "/collections/h/points/payload", lambda v: {"payload": {"b": 1}, "points": [1], "key": v}),
            ("POST", "/collections/h/points/payload/delete", lambda v: {"keys": v, "points": [1]}),
            ("POST", "/collections/h/points/payload/delete", lambda v: {"keys": ["a"], "points": v}),
            ("POST", "/collections/h/points/payload/clear", lambda v: {"points": v}),
            ("PUT", "/collections/h/points/vectors", lambda v: {"points": v}),
            ("PUT", "/collections/h/points/vectors", lambda v: {"points": [{"id": v, "vector": [1, 0]}]}),
            ("PUT", "/collections/h/points/vectors", lambda v: {"points": [{"id": 1, "vector": v}]}),
            ("POST", "/collections/h/points/vectors/delete", lambda v: {"points": v}),
            ("POST", "/collections/h/points/scroll", lambda v: {"offset": v, "limit": v}),
            ("POST", "/collections/h/points/scroll", lambda v: {"filter": v, "with_payload": v}),
            ("POST", "/collections/h/points/scroll", lambda v: {"order_by": v}),
            ("POST", "/collections/h/points/scroll", lambda v: {"order_by": {"key": "a", "direction": v, "start_from": v}}),
            ("POST", "/collections/h/points/search", lambda v: {"vector": v, "limit": 1}),
            ("POST", "/collections/h/points/search", lambda v: {"vector": [1, 0], "limit": v, "offset": v}),
            ("POST", "/collections/h/points/search", lambda v: {"vector": [1, 0], "with_payload": v, "params": v}),
            ("POST", "/collections/h/points/search/batch", lambda v: {"searches": v}),
            ("POST", "/collections/h/points/query", lambda v: {"query": v, "limit": 2}),
            ("POST", "/collections/h/points/query", lambda v: {"query": [1, 0], "limit": v, "offset": v}),
            ("POST", "/collections/h/points/query", lambda v: {"query": [1, 0], "filter": v, "score_threshold": v}),
            ("POST", "/collections/h/points/query/batch", lambda v: {"searches": [{"query": v}]}),
            ("POST", "/collections/h/points/query", lambda v: {"prefetch": v, "query": {"fusion": "rrf"}}),
            ("POST", "/collections/h/points/query", lambda v: {"prefetch": [{"query": v, "limit": v}], "query": v}),
            ("POST", "/collections/h/points/query", lambda v: {"prefetch": {"query": [1, 0], "filter": v},
                                                             "query": {"rrf": v}, "limit": v, "filter": v}),
            ("POST", "/collections/h/points/query", lambda v: {"prefetch": [{"query": [1, 0]}], "query": {"fusion": v},
                                                             "score_threshold": v, "with_payload": v}),
            ("POST", "/collections/h/points/query/batch", lambda v: {"searches": [{"prefetch": [{"query": v}],
                                                                                   "query": {"rrf": {"weights": v}}}]}),
        ]
        seen = set()
        for method, path, make in bodies:
            for v in values:
                status, doc = raw(q, method, path, make(v))
                seen.add(status)
                assert status < 500, (method, path, v, status, doc)
                if status >= 400:
                    assert isinstance(doc, dict) and doc["status"]["error"], (method, path, v, doc)
        assert 400 in seen
        raw(q, "DELETE", "/collections/h2")
        # Still serving (the hostile deletes may have emptied h: {"filter": {}} matches all).
        raw(q, "PUT", "/collections/h/points", {"points": [{"id": 1, "vector": [1, 0], "payload": {"a": 1}}]})
        status, doc = raw(q, "POST", "/collections/h/points/search", {"vector": [1, 0], "limit": 5, "with_payload": True})
        assert status == 200 and doc["result"][0]["id"] == 1, doc
    finally:
        s.stop()


def test_every_answer_has_the_shape_of_qdrants_openapi_document():
    """Each route's answer, typed as the schema Qdrant's OpenAPI document
    gives it (the official JS client's types are generated from that
    document), must compile under tsc --strict: a missing required field, a
    wrong type or a field Qdrant does not have fails (strict models, such as
    the Python client's, would refuse the same answers)."""
    import shutil
    import pytest
    if not shutil.which("tsc"):
        pytest.skip("tsc is needed (apt-get install node-typescript)")
    node_tools("for the Qdrant answer-shape check")
    s = Server(args=["--set", "qdrant_listen=127.0.0.1:0"])
    answers = []  # (TypeScript type, result)

    def call(ts_type, method, path, body=None):
        status, doc = raw(q, method, path, body)
        assert status == 200 and doc["status"] == "ok" and isinstance(doc["time"], float), (path, doc)
        answers.append((ts_type, doc["result"], f"{method} {path}"))
        return doc["result"]

    try:
        q = qdrant_port(s)
        status, root = raw(q, "GET", "/")
        answers.append(('S["VersionInfo"]', root, "GET /"))
        call("boolean", "PUT", "/collections/shapes", {"vectors": {"size": 3, "distance": "Euclid"},
                                                        "hnsw_config": {"m": 8}})
        call("boolean", "PUT", "/collections/quant", {"vectors": {"size": 3, "distance": "Cosine"},
                                                       "quantization_config": {"scalar": {"type": "int8"}}})
        call('S["UpdateResult"]', "PUT", "/collections/shapes/index", {"field_name": "user", "field_schema": "keyword"})
        call('S["UpdateResult"]', "PUT", "/collections/shapes/index", {"field_name": "n", "field_schema": "integer"})
        call('S["UpdateResult"]', "PUT", "/collections/shapes/points", {"points": [
            {"id": i, "vector": [i, 1, 0], "payload": {"user": f"u{i % 2}", "n": i}} for i in range(1, 6)]})
        call('S["UpdateResult"]', "PUT", "/collections/shapes/points",
             {"batch": {"ids": ["5c56c793-69f3-4fbf-87e6-c4bf54c28c26"], "vectors": [[0, 0, 1]]}})
        call('S["CollectionsResponse"]', "GET", "/collections")
        call('S["CollectionExistence"]', "GET", "/collections/shapes/exists")
        call('S["CollectionInfo"]', "GET", "/collections/shapes")
        call('S["CollectionInfo"]', "GET", "/collections/quant")
        call("boolean", "PATCH", "/collections/shapes", {"optimizers_config": {"indexing_threshold": 100}})
        call('S["Record"]', "GET", "/collections/shapes/points/1")
        call('S["Record"][]', "POST", "/collections/shapes/points", {"ids": [1, 2, 99], "with_vector": True})
        call('S["ScrollResult"]', "POST", "/collections/shapes/points/scroll", {"limit": 2})
        call('S["ScrollResult"]', "POST", "/collections/shapes/points/scroll", {"order_by": "n", "limit": 2})
        call('S["CountResult"]', "POST", "/collections/shapes/points/count", {"exact": True})
        flt = {"must": [{"key": "user", "match": {"value": "u1"}}]}
        call('S["ScoredPoint"][]', "POST", "/collections/shapes/points/search",
             {"vector": [1, 1, 0], "limit": 3, "with_payload": True, "with_vector": True, "filter": flt})
        call('S["ScoredPoint"][][]', "POST", "/collections/shapes/points/search/batch",
             {"searches": [{"vector": [1, 1, 0], "limit": 2}, {"vector": [0, 0, 1], "limit": 1}]})
        call('S["QueryResponse"]', "POST", "/collections/shapes/points/query", {"query": [1, 1, 0], "limit": 2})
        call('S["QueryResponse"]', "POST", "/collections/shapes/points/query",
             {"prefetch": [{"query": [1, 1, 0]}, {"query": 2}], "query": {"fusion": "rrf"}, "with_payload": True})
        call('S["QueryResponse"][]', "POST", "/collections/shapes/points/query/batch",
             {"searches": [{"query": {"nearest": [1, 1, 0], "mmr": {"diversity": 0.5}}}]})
        call('S["UpdateResult"]', "POST", "/collections/shapes/points/payload", {"payload": {"x": 1}, "points": [1]})
        call('S["UpdateResult"]', "PUT", "/collections/shapes/points/payload", {"payload": {"x": 2}, "points": [1]})
        call('S["UpdateResult"]', "POST", "/collections/shapes/points/payload/delete", {"keys": ["x"], "points": [1]})
        call('S["UpdateResult"]', "POST", "/collections/shapes/points/payload/clear", {"points": [1]})
        call('S["UpdateResult"]', "PUT", "/collections/shapes/points/vectors", {"points": [{"id": 2, "vector": [0, 1, 0]}]})
        call('S["UpdateResult"]', "POST", "/collections/shapes/points/delete", {"points": [3]})
        call("boolean", "DELETE", "/collections/quant")
        status, err = raw(q, "GET", "/collections/nope")
        assert status == 404
        answers.append(('S["ErrorResponse"]', err, "an error"))
    finally:
        s.stop()
    lines = ['import type { Schemas as S } from "@qdrant/js-client-rest";']
    for i, (ts_type, result, what) in enumerate(answers):
        lines.append(f"export const a{i}: {ts_type} = {json.dumps(result)}; // {what}")
    check = os.path.join(TOOLS, ".qdrant-shapes-check.ts")
    with open(check, "w") as f:
        f.write("\n".join(lines) + "\n")
    try:
        r = subprocess.run(["tsc", "--noEmit", "--strict", "--module", "node16", "--moduleResolution", "node16",
                            "--skipLibCheck", check], cwd=TOOLS, capture_output=True, text=True, timeout=300)
        if r.returncode:  # show the failing answers beside the errors
            print("\n".join(lines))
    finally:
        os.unlink(check)
    assert r.returncode == 0, r.stdout + r.stderr
