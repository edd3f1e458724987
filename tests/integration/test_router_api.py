"""vectord-router over replicas written through the API (no Postgres):
writes split by tenant and sent to every replica of their partition; deletes,
payload edits and vector updates reach every partition; the official Qdrant
JS client's whole scenario (tests/tools/qdrant-client.mjs) gives through the
router what it gives against one vectord, except the queries that need one
partition, which get a clear refusal; API keys pass through; hostile bodies
on every route never take the router down; bad options are refused."""
import json
import os
import random
import subprocess
import tempfile

import pytest

from conftest import TOOLS, Server, node_tools
from router import ROUTER_BIN, Router, partition_args, qdrant_port

KEY = "router-test-admin-key"


def partition_of(tenant, n):
    import hashlib
    return int.from_bytes(hashlib.md5(str(tenant).encode()).digest()[:4], "big") % n


@pytest.fixture
def cluster():
    """2 partitions × 2 replicas, a router, and one vectord alone to compare with."""
    args = ["--set", "qdrant_listen=127.0.0.1:0"]
    parts = [[Server(args=args) for _ in range(2)] for _ in range(2)]
    single = Server(args=args)
    router = Router(partition_args(parts))
    router.wait_ready()
    yield parts, single, router
    router.stop()
    for s in [s for reps in parts for s in reps] + [single]:
        s.stop()


def both(router, single, method, path, body=None):
    a = router.client.request(method, path, body)
    b = single.client.request(method, path, body)
    return a, b


def test_api_writes_reach_their_partition_on_every_replica(cluster):
    parts, single, router = cluster
    rnd = random.Random(5)
    for c in (router.client, single.client):
        c.ok("PUT", "/collections/m", {"dim": 4, "metric": "l2", "payload_indexes": {"userId": "keyword"}})
    pts = [{"id": i, "vector": [rnd.random() for _ in range(4)], "payload": {"userId": f"u{i % 37}", "n": i}}
           for i in range(600)]
    pts.append({"id": "no-tenant", "vector": [0.5] * 4, "payload": {"n": -1}})  # partition 0, as NULL
    (sa, da), (sb, db_) = both(router, single, "PUT", "/collections/m/points", {"points": pts})
    assert sa == sb == 200 and da["result"]["inserted"] == db_["result"]["inserted"] == 601, (da, db_)
    for p, reps in enumerate(parts):
        want = {pt["id"] for pt in pts if partition_of(pt["payload"].get("userId", ""), 2) == p
                and "userId" in pt["payload"]} | ({"no-tenant"} if p == 0 else set())
        for s in reps:
            assert s.client.ok("GET", "/collections/m")["points_count"] == len(want)
            for i in list(want)[:20]:
                assert s.client.request("GET", f"/collections/m/points/{i}")[0] == 200
    for _ in range(20):
        body = {"vector": [rnd.random() for _ in range(4)], "k": 7, "with_payload": False}
        (sa, da), (sb, db_) = both(router, single, "POST", "/collections/m/search", body)
        assert [h["id"] for h in da["result"]] == [h["id"] for h in db_["result"]]
    # deletes by ids and filter, payload edits by filter, vector updates: every partition
    for path, body in (("/collections/m/points/delete", {"ids": [1, 2, 3, 999]}),
                       ("/collections/m/points/delete", {"filter": {"must": [{"key": "userId",
                                                                                  "match": {"value": "u4"}}]}}),
                       ("/collections/m/points/payload", {"set": {"seen": True},
                                                          "filter": {"must": [{"key": "n", "range": {"lt": 50}}]}}),
                       ("/collections/m/points/vectors", None)):
        method = "POST"
        if body is None:
            method, body = "PUT", {"points": [{"id": 10, "vector": [0, 0, 0, 0]}, {"id": 11, "vector": [1, 1, 1, 1]},
                                              {"id": 12345, "vector": [1, 0, 0, 0]}]}
        (sa, da), (sb, db_) = both(router, single, method, path, body)
        assert sa == sb == 200 and da["result"] == db_["result"], (path, da, db_)
    info = router.client.ok("GET", "/collections/m")
    assert info["points_count"] == single.client.ok("GET", "/collections/m")["points_count"]
    for i in (10, 20, 44):
        a = router.client.request("GET", f"/collections/m/points/{i}?with_vector=true")
        b = single.client.request("GET", f"/collections/m/points/{i}?with_vector=true")
        assert a[0] == b[0] and a[1]["result"] == b[1]["result"], (a, b)
    for s in parts[1]:  # every replica got the writes
        assert s.client.ok("GET", "/collections/m")["points_count"] == \
            parts[1][0].client.ok("GET", "/collections/m")["points_count"]
    assert router.client.ok("DELETE", "/collections/m") == single.client.ok("DELETE", "/collections/m")
    router.client.error("GET", "/collections/m", status=404, code="collection_not_found")


# The steps of qdrant-client.mjs that need one partition: the router refuses them (400).
ONE_PARTITION = {"queryById", "queryBatch", "queryFusion", "queryRrfK", "queryDbsf",
                 "queryRescore", "queryFusionNested", "queryFusionBatch"}
# (queryFusionFiltered names one tenant: its partition answers it, as one vectord does.)


def test_the_official_qdrant_client_through_the_router(cluster):
    parts, single, router = cluster
    node_tools("for the Qdrant client tests")

    def run(port):
        r = subprocess.run(["node", os.path.join(TOOLS, "qdrant-client.mjs"), f"http://127.0.0.1:{port}"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        return json.loads(r.stdout)

    via, alone = run(router.qdrant_port), run(qdrant_port(single))
    assert set(via) == set(alone)
    for step in sorted(alone):
        if step in ONE_PARTITION:
            assert via[step].get("status") == 400 and "one tenant" in json.dumps(via[step]), (step, via[step])
            continue
        a, b = via[step], alone[step]
        if step in ("versionInfo",):
            continue  # the router answers / from one replica: the same text
        if "error" in b:  # the same refusal (status), maybe worded by the router
            assert a.get("status") == b["status"], (step, a, b)
            continue
        if isinstance(a.get("ok"), dict) and "indexed_vectors_count" in b.get("ok", {}):
            # how many points the background builder has put in the graph yet, and so whether
            # the collection is green or still yellow (indexing): timing, approximate in Qdrant
            # too (the router's and the single server's builders race)
            a, b = dict(a, ok=dict(a["ok"])), dict(b, ok=dict(b["ok"]))
            a["ok"].pop("indexed_vectors_count", None)
            b["ok"].pop("indexed_vectors_count")
            for info in (a["ok"], b["ok"]):
                assert info.pop("status", None) in ("green", "yellow"), (step, info)
        assert a == b, (step, a, b)


def test_langchain_through_the_router(cluster):
    """LangChain's Qdrant store over two partitions (its documents carry no
    tenant: they all live in partition 0, and every search asks both)."""
    from test_qdrant import langchain_check, langchain_run
    parts, single, router = cluster
    langchain_check(langchain_run(router.qdrant_port))


def test_api_keys_pass_through_to_the_replicas():
    args = ["--set", f"api_key={KEY}"]
    reps = [[Server(args=args)], [Server(args=args)]]
    router = Router(["--partition", f"http://127.0.0.1:{reps[0][0].port}",
                     "--partition", f"http://127.0.0.1:{reps[1][0].port}"])
    try:
        router.wait_ready()  # /readyz of a replica needs no key
        router.client.error("GET", "/collections", status=401, code="unauthorized")
        st, doc = router.client.request("PUT", "/collections/k", {"dim": 2}, headers={"api-key": KEY})
        assert st == 200, doc
        st, doc = router.client.request("POST", "/collections/k/search", {"vector": [1, 0]},
                                        headers={"Authorization": f"Bearer {KEY}"})
        assert st == 200 and doc["result"] == [], doc
        st, doc = router.client.request("POST", "/collections/k/search", {"vector": [1, 0]},
                                        headers={"api-key": "wrong"})
        assert st == 401, doc
    finally:
        router.stop()
        for s in (reps[0][0], reps[1][0]):
            s.stop()


def router_routes():
    """(qdrant, method, path) of every route in src/router/route_table.c."""
    import re
    src = open(os.path.join(os.path.dirname(__file__), "..", "..", "src", "router", "route_table.c")).read()
    return [(d in ("Q", "QS"), m, p) for d, m, p in re.findall(r'^\s+(N|NS|Q|QS)\("(\w+)", "([^"]+)"', src, re.M)]


HOSTILE = [b"", b"{", b"[]", b"null", b"1e999", b'{"points": 5}', b'{"points": [1, "x", null, {}]}',
           b'{"searches": {"a": 1}}', b'{"searches": [1, [], {"filter": 7}]}', b'{"filter": {"must": 3}}',
           b'{"filter": {"must": [{"key": "userId", "match": {"value": {"x": 1}}}]}, "vector": [1, 0]}',
           b'{"vector": [1, 0], "k": -5, "offset": 1e300, "limit": "x"}', b'{"batch": {"ids": [1], "vectors": []}}',
           b'{"points": [{"id": 1, "vector": [1, 0], "payload": {"userId": 1.5}}]}', b"\xff\xfe\x00garbage",
           b'{"ids": [1, 2], "points": [{"id": {}}], "query": {"nearest": 5, "mmr": 1}, "prefetch": 1}',
           b"[" * 5000 + b"]" * 5000]


def test_hostile_requests_never_take_the_router_down(cluster):
    parts, single, router = cluster
    router.client.ok("PUT", "/collections/h", {"dim": 2})
    rnd = random.Random(9)
    for qdrant, method, path in router_routes():
        client = router.qdrant if qdrant else router.client
        path = path.replace("{c}", "h").replace("{id}", "1")
        for body in HOSTILE + [bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 200))) for _ in range(3)]:
            st, doc = client.request(method, path, body)
            assert 200 <= st < 600, (method, path, body[:40], st)
            if st >= 400 and method != "HEAD":
                assert isinstance(doc, (dict, str)), (method, path, doc)
    assert router.client.request("GET", "/healthz")[0] == 200
    assert router.proc.poll() is None
    st, doc = router.client.request("GET", "/nope")
    assert st == 404 and doc["error"]["code"] == "not_found"
    st, doc = router.client.request("DELETE", "/healthz")
    assert st == 405 and doc["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize("args, words", [
    ([], "name the partitions"),
    (["--partition", "ftp://x:1"], "not an http"),
    (["--partition-pattern", "http://h{p}:1", "--partitions", "0"], "name the partitions"),
    (["--partition", "http://a:1", "--partition-pattern", "http://h{p}:1", "--partitions", "2"], "exclude"),
    (["--partition", "http://a:1", "--timeout-ms", "nope"], "--timeout-ms must be"),
    (["--partition", "http://a:1", "--listen", "nohost"], "host:port"),
    (["--partition", ","], "no replica"),
])
def test_bad_router_options_are_refused(args, words):
    r = subprocess.run([ROUTER_BIN, *args], capture_output=True, text=True, timeout=30,
                       env={k: v for k, v in os.environ.items() if not k.startswith("VECTORD_")})
    assert r.returncode != 0 and words in r.stdout + r.stderr, (r.returncode, r.stdout, r.stderr)


def test_a_write_that_misses_a_replica_says_so(cluster):
    """Replicas do not copy each other's API writes: a write one replica did
    not get is a 503 naming how many got it; the tenant's searches go on
    from the replica that has it."""
    parts, single, router = cluster
    router.client.ok("PUT", "/collections/w", {"dim": 2})
    t = next(f"u{i}" for i in range(100) if partition_of(f"u{i}", 2) == 1)
    body = {"points": [{"id": 1, "vector": [1, 0], "payload": {"userId": t}}]}
    parts[1][1].kill()
    parts[1][1] = Server()  # for the fixture to stop; the router still names the dead one
    st, doc = router.client.request("PUT", "/collections/w/points", body)
    assert st == 503 and doc["error"]["code"] == "partition_unavailable", doc
    assert "reached 1 of 2 replicas" in doc["error"]["message"], doc
    # a search of that tenant is answered by the replica that has it
    hits = router.client.ok("POST", "/collections/w/search",
                            {"vector": [1, 0], "filter": {"must": [{"key": "userId", "match": {"value": t}}]}})
    assert [h["id"] for h in hits] == [1]
