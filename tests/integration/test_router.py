"""vectord-router over tenant-partitioned replicas (issue 23,
docs/PARTITIONS.md), all against one real PostgreSQL: 3 partitions × 2
replicas, each following its share of a 20,000-row table over 200 tenants,
and one unpartitioned vectord following the whole table. Through the router:
exact searches equal the single vectord's (with and without a tenant filter,
in both dialects); a tenant move; read-your-writes; replicas SIGKILLed under
read and write load (tenant searches keep answering, nothing committed is
lost); a partition wholly down (a clear 503, or partial hits when asked); a
repartition 3 → 4 the router switches to once the new partitions have caught
up."""
import hashlib
import os
import random
import signal
import tempfile
import threading
import time

import pytest

from conftest import Server

psycopg2 = pytest.importorskip("psycopg2", reason="python3-psycopg2 is needed for the feed tests")
from router import Router, partition_args, qdrant_port  # noqa: E402
from test_feed import drop_database, feed_server, fresh_database, pg, wait_caught_up  # noqa: E402,F401

DIM = 8
ROWS = 20000
TENANTS = 200


def partition_of(tenant, n):
    return int.from_bytes(hashlib.md5(str(tenant).encode()).digest()[:4], "big") % n


def insert(conn, lo, hi, seed=0.25):
    """Rows with random embeddings (6 decimals: ties between scores are unlikely)."""
    cur = conn.cursor()
    cur.execute("SELECT setseed(%s)", (seed,))
    cur.execute(f"""INSERT INTO "Memory" (id, "userId", content, embedding)
        SELECT 'm' || i, 'u' || (i % {TENANTS}), 'memory ' || i,
               (SELECT json_agg(round(random()::numeric, 6)) FROM generate_series(1, {DIM} + i * 0))::text
        FROM generate_series({lo}, {hi - 1}) i""")


def start(dsn, root, name, partition=None, extra=()):
    args = ["--set", f"feed_name={name}", "--set", "qdrant_listen=127.0.0.1:0",
            "--set", "feed_collection_config={\"index\":{\"type\":\"flat\"}}", *extra]
    if partition:
        args += ["--set", f"feed_partition={partition}", "--set", "feed_partition_column=userId"]
    return feed_server(dsn, os.path.join(root, name), args)


class Cluster:
    def __init__(self, conn, dsn, root, parts=3, reps=2):
        self.conn, self.dsn, self.root = conn, dsn, root
        self.parts = [[start(dsn, root, f"p{p}r{r}", f"{p}/{parts}") for r in range(reps)]
                      for p in range(parts)]
        self.single = start(dsn, root, "single")
        for s in self.servers():
            wait_caught_up(s.client, conn)
        self.router = Router(partition_args(self.parts))
        self.router.wait_ready()

    def servers(self):
        return [s for reps in self.parts for s in reps if s] + [self.single]

    def close(self):
        self.router.stop()
        for s in self.servers():
            s.stop()


@pytest.fixture(scope="module")
def cluster(pg):  # noqa: F811
    name, conn, dsn = fresh_database(pg, "r")
    insert(conn, 0, ROWS)
    with tempfile.TemporaryDirectory() as root:
        c = Cluster(conn, dsn, root)
        try:
            yield c
        finally:
            c.close()
    drop_database(pg, name, conn)


def xid_now(conn):
    cur = conn.cursor()
    cur.execute("SELECT pg_current_xact_id()::text")
    return cur.fetchone()[0]


def search(client, body, query=""):
    st, doc = client.request("POST", f"/collections/memories/search{query}", body)
    assert st == 200, doc
    return [(h["id"], round(h["score"], 5)) for h in doc["result"]]


def same(a, b):
    """The same hits: equal scores, and equal ids within each score (a tie
    may come in any order), except among the last score's, which a cut at k
    may split either way."""
    assert len(a) == len(b), (a, b)
    assert all(abs(x - y) < 1e-4 for (_, x), (_, y) in zip(a, b)), (a, b)
    last = a[-1][1] if a else None
    groups = lambda hits: sorted((s, i) for i, s in hits if s != last)  # noqa: E731
    assert groups(a) == groups(b), (a, b)


def tenant_filter(t):
    return {"must": [{"key": "userId", "match": {"value": t}}]}


def test_router_answers_as_one_vectord_does(cluster):
    rnd = random.Random(7)
    r, one = cluster.router.client, cluster.single.client
    for _ in range(30):
        v = [round(rnd.random(), 4) for _ in range(DIM)]
        body = {"vector": v, "k": 10, "exact": True, "with_payload": False}
        same(search(r, body), search(one, body))
        t = f"u{rnd.randrange(TENANTS)}"
        tb = {**body, "filter": tenant_filter(t)}
        same(search(r, tb), search(one, tb))
        # a filter that is not one tenant: every partition, merged
        fb = {**body, "filter": {"must": [{"key": "userId", "match": {"any": [t, "u1", "u2"]}}]}}
        same(search(r, fb), search(one, fb))
    # batch, and the Qdrant dialect (offset and limit across partitions)
    b = {"searches": [{"vector": [0.5] * DIM, "k": 5}, {"vector": [0.1] * DIM, "k": 3,
                                                         "filter": tenant_filter("u3")}]}
    st1, d1 = r.request("POST", "/collections/memories/search/batch", b)
    st2, d2 = one.request("POST", "/collections/memories/search/batch", b)
    assert st1 == st2 == 200
    assert [[h["id"] for h in x] for x in d1["result"]] == [[h["id"] for h in x] for x in d2["result"]]
    qone = cluster.single
    from conftest import Client
    q1 = Client(qdrant_port(qone))
    for body in ({"vector": [0.3] * DIM, "limit": 7, "offset": 5},
                 {"vector": [0.9] * DIM, "limit": 4, "filter": tenant_filter("u9")}):
        st1, d1 = cluster.router.qdrant.request("POST", "/collections/memories/points/search", body)
        st2, d2 = q1.request("POST", "/collections/memories/points/search", body)
        assert st1 == st2 == 200, (d1, d2)
        assert [h["id"] for h in d1["result"]] == [h["id"] for h in d2["result"]]
    for body in ({"query": [0.2] * DIM, "limit": 6, "offset": 2},
                 # MMR: every partition's candidates, re-ranked by the router as one vectord does
                 {"query": {"nearest": [0.7, 0.1, 0.4, 0.9, 0.2, 0.5, 0.3, 0.8],
                            "mmr": {"diversity": 0.6, "candidates_limit": 40}}, "limit": 8, "offset": 1},
                 {"query": {"nearest": [0.2] * DIM, "mmr": {}}, "limit": 5, "with_vector": True}):
        st1, d1 = cluster.router.qdrant.request("POST", "/collections/memories/points/query", body)
        st2, d2 = q1.request("POST", "/collections/memories/points/query", body)
        assert st1 == st2 == 200, (d1, d2)
        assert d1["result"]["points"] == d2["result"]["points"], body
    # counts, collection info and scroll pages
    c1 = cluster.router.qdrant.request("POST", "/collections/memories/points/count", {})[1]["result"]["count"]
    assert c1 == ROWS
    assert r.ok("GET", "/collections/memories")["points_count"] == ROWS
    # (the feed's ids are strings, which Qdrant's API does not take as an offset: one page)
    body = {"limit": 50}
    st, d1 = cluster.router.qdrant.request("POST", "/collections/memories/points/scroll", body)
    assert st == 200, d1
    d2 = q1.request("POST", "/collections/memories/points/scroll", body)[1]["result"]
    assert [p["id"] for p in d1["result"]["points"]] == [p["id"] for p in d2["points"]]
    assert d1["result"]["next_page_offset"] == d2["next_page_offset"]
    # a point is found in whichever partition holds it
    assert r.ok("GET", "/collections/memories/points/m123")["payload"]["userId"] == "u123"
    r.error("GET", "/collections/memories/points/nope", status=404, code="point_not_found")
    # a fused query cannot be merged across partitions: a clear refusal
    st, d = cluster.router.qdrant.request("POST", "/collections/memories/points/query",
                                          {"prefetch": [{"query": [0.1] * DIM}], "query": {"fusion": "rrf"}})
    assert st == 400 and "one tenant" in d["status"]["error"], d
    q1.close()


def test_tenant_move_and_read_your_writes_through_the_router(cluster):
    conn, r, one = cluster.conn, cluster.router.client, cluster.single.client
    cur = conn.cursor()
    cur.execute('''UPDATE "Memory" SET "userId" = 'u77', "updatedAt" = clock_timestamp()
                   WHERE "userId" = 'u5' RETURNING id''')
    moved = {row[0] for row in cur.fetchall()}
    xid = xid_now(conn)
    body = {"vector": [0.5] * DIM, "k": 200, "exact": True, "with_payload": False,
            "filter": tenant_filter("u77")}
    got = search(r, body, f"?feed_xid={xid}")
    assert moved <= {i for i, _ in got}
    same(got, search(one, body, f"?feed_xid={xid}"))
    assert search(r, {**body, "filter": tenant_filter("u5")}, f"?feed_xid={xid}") == []


def test_replicas_killed_under_load_lose_nothing(cluster):
    conn, r = cluster.conn, cluster.router.client
    stop = threading.Event()
    errors, answered, written = [], [0], []

    def reader():
        from conftest import Client
        c = Client(cluster.router.port)
        rnd = random.Random(1)
        while not stop.is_set():
            t = f"u{rnd.randrange(TENANTS)}"
            st, doc = c.request("POST", "/collections/memories/search",
                                {"vector": [rnd.random() for _ in range(DIM)], "k": 5,
                                 "filter": tenant_filter(t)})
            if st == 200:
                answered[0] += 1
            else:
                errors.append(doc)
        c.close()

    def writer():
        w = psycopg2.connect(cluster.dsn)
        w.autocommit = True
        i = 0
        while not stop.is_set():
            i += 1
            w.cursor().execute(f"""INSERT INTO "Memory" (id, "userId", content, embedding)
                VALUES (%s, %s, 'under load', (SELECT json_agg(0.5) FROM generate_series(1, {DIM}))::text)""",
                               (f"w{i}", f"u{i % TENANTS}"))
            written.append(f"w{i}")
            time.sleep(0.005)
        w.close()

    threads = [threading.Thread(target=reader), threading.Thread(target=reader), threading.Thread(target=writer)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    killed = []
    for p, reps in enumerate(cluster.parts):  # one replica of every partition, SIGKILL
        reps[0].kill_keep = reps[0].data_dir
        reps[0].proc.send_signal(signal.SIGKILL)
        reps[0].proc.wait()
        killed.append(p)
    time.sleep(2.0)
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert answered[0] > 50
    # Restarted on their data directories, the killed replicas catch up.
    for p in killed:
        old = cluster.parts[p][0]
        old.log.close()
        cluster.parts[p][0] = start(cluster.dsn, cluster.root, f"p{p}r0", f"{p}/3")
    xid = xid_now(conn)
    for reps in cluster.parts:
        for s in reps:
            wait_caught_up(s.client, conn)
    wait_caught_up(cluster.single.client, conn)
    cluster.router.stop()
    cluster.router = Router(partition_args(cluster.parts))
    cluster.router.wait_ready()
    r = cluster.router.client
    body = {"vector": [0.5] * DIM, "k": 1, "with_payload": False}
    for wid in written:
        got = search(r, {**body, "filter": {"must": [{"has_id": [wid]}]}}, f"?feed_xid={xid}")
        assert [i for i, _ in got] == [wid], wid
    cur = conn.cursor()
    cur.execute('SELECT count(*) FROM "Memory"')
    total = cur.fetchone()[0]
    assert r.ok("GET", "/collections/memories")["points_count"] * 2 == sum(
        s.client.ok("GET", "/collections/memories")["points_count"] for reps in cluster.parts for s in reps)
    assert r.ok("GET", "/collections/memories")["points_count"] == total


def test_a_partition_wholly_down_is_a_clear_error(cluster):
    r = cluster.router.client
    down = cluster.parts[0]  # partition 0: the one the router would ask first for the score order
    for s in down:
        s.proc.send_signal(signal.SIGKILL)
        s.proc.wait()
    # A router that has not yet learnt the collection's score order (from any partition that answers).
    cluster.router.stop()
    cluster.router = Router(partition_args(cluster.parts))
    r = cluster.router.client
    body = {"vector": [0.5] * DIM, "k": 5}
    st, doc = r.request("POST", "/collections/memories/search", body)
    assert st == 503 and doc["error"]["code"] == "partition_unavailable", doc
    assert "partition 0" in doc["error"]["message"]
    st, raw, resp = r.request("POST", "/collections/memories/search?allow_partial=true", body, raw=True)
    assert st == 200 and resp.getheader("X-Vectord-Missing-Partitions") == "0", raw
    # A tenant of another partition is answered as before.
    t = next(f"u{i}" for i in range(TENANTS) if partition_of(f"u{i}", 3) == 2)
    assert len(search(r, {**body, "filter": tenant_filter(t)})) == 5
    # and one of the down partition gets the same clear error
    t1 = next(f"u{i}" for i in range(TENANTS) if partition_of(f"u{i}", 3) == 0)
    st, doc = r.request("POST", "/collections/memories/search", {**body, "filter": tenant_filter(t1)})
    assert st == 503 and doc["error"]["code"] == "partition_unavailable", doc
    for i, s in enumerate(down):
        s.log.close()
        down[i] = start(cluster.dsn, cluster.root, f"p0r{i}", "0/3")
    # The router's probes bring it back (the replicas' addresses are new: a new router).
    cluster.router.stop()
    cluster.router = Router(partition_args(cluster.parts))
    cluster.router.wait_ready()


def test_repartition_3_to_4_switches_when_caught_up(cluster):
    conn = cluster.conn
    new = [[start(cluster.dsn, cluster.root, f"n{p}", f"{p}/4")] for p in range(4)]
    try:
        args = partition_args(cluster.parts)
        for reps in new:
            args += ["--next-partition", ",".join(f"http://127.0.0.1:{s.port}|http://127.0.0.1:{qdrant_port(s)}"
                                                  for s in reps)]
        cluster.router.stop()
        cluster.router = Router(args)
        cluster.router.wait_ready()
        deadline = time.time() + 120
        while time.time() < deadline:
            if cluster.router.client.ok("GET", "/healthz")["partitions"] == 4:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(cluster.router.logs()[-3000:])
        assert "router switched to the next partitions" in cluster.router.logs()
        xid = xid_now(conn)
        rnd = random.Random(3)
        for _ in range(10):
            body = {"vector": [rnd.random() for _ in range(DIM)], "k": 10, "exact": True, "with_payload": False}
            same(search(cluster.router.client, body, f"?feed_xid={xid}"),
                 search(cluster.single.client, body, f"?feed_xid={xid}"))
            t = f"u{rnd.randrange(TENANTS)}"
            tb = {**body, "filter": tenant_filter(t)}
            same(search(cluster.router.client, tb, f"?feed_xid={xid}"),
                 search(cluster.single.client, tb, f"?feed_xid={xid}"))
    finally:
        for reps in new:
            for s in reps:
                s.stop()
