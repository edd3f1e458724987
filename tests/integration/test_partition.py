"""Partitioned feeds (issue 23, docs/PARTITIONS.md) against a real
PostgreSQL: three vectord instances, each following one third of the table
by the hash of "userId" (feed_partition = i/3). Together they hold every row
exactly once, through backfill, follow, deletes and tenant moves (a row whose
userId changes leaves one partition and enters another), with both feed
sources; the hash Postgres computes equals the one the router computes; a
partition changed on an existing data directory sweeps the points that left."""
import hashlib
import os
import subprocess
import tempfile

import pytest

from conftest import BIN, Server

psycopg2 = pytest.importorskip("psycopg2", reason="python3-psycopg2 is needed for the feed tests")
from test_feed import DIM, db, emb_sql, feed_server, insert_rows, pg, wait_caught_up  # noqa: E402,F401
from test_feed_logical import ldb, logical_server, pgl, wait_applied  # noqa: E402,F401

N = 3


def partition_of(tenant, n=N):
    """docs/PARTITIONS.md: MD5 of the value's text, first 4 bytes big-endian, mod n."""
    if tenant is None:
        return 0
    return int.from_bytes(hashlib.md5(str(tenant).encode()).digest()[:4], "big") % n


def ids_of(client, candidates):
    """The ids of candidates that client holds, checked to be all it holds."""
    from urllib.parse import quote
    have = set()
    for rid in candidates:
        st, doc = client.request("GET", f"/collections/memories/points/{quote(rid, safe='')}")
        assert st in (200, 404), doc
        if st == 200:
            have.add(rid)
    assert client.ok("GET", "/collections/memories")["points_count"] == len(have)
    return have


def all_ids(conn):
    cur = conn.cursor()
    cur.execute('SELECT id FROM "Memory"')
    return {r[0] for r in cur.fetchall()} | {"m20", "m21", "m22"}  # and some deleted ones


def expected(conn, n=N):
    cur = conn.cursor()
    cur.execute('SELECT id, "userId" FROM "Memory"')
    parts = [set() for _ in range(n)]
    for rid, user in cur.fetchall():
        parts[partition_of(user, n)].add(rid)
    return parts


def assert_split(servers, conn, n=N):
    want = expected(conn, n)
    ids = all_ids(conn)
    for i, s in enumerate(servers):
        have = ids_of(s.client, ids)
        assert have == want[i], (i, sorted(have - want[i])[:5], sorted(want[i] - have)[:5])
        rec = s.client.ok("POST", "/feed/reconcile")
        assert rec["in_sync"], (i, rec)


def test_postgres_and_vectord_agree_on_the_hash(db):
    conn, _ = db
    cur = conn.cursor()
    values = ["u0", "u1", "", "user-ümlaut", "42", "a" * 300, "00000000-0000-4000-8000-000000000000"]
    for n in (1, 2, 3, 7, 4096):
        for v in values:
            cur.execute("SELECT coalesce(('x' || substr(md5((%s::text)::text), 1, 8))::bit(32)::bigint, 0) %% %s",
                        (v, n))
            assert cur.fetchone()[0] == partition_of(v, n), (v, n)


def start_partitions(dsn, root, n=N, extra=(), logical=False):
    servers = []
    for i in range(n):
        args = ["--set", f"feed_partition={i}/{n}", "--set", "feed_partition_column=userId",
                "--set", f"feed_name=p{i}_of_{n}", *extra]
        make = logical_server if logical else feed_server
        servers.append(make(dsn, os.path.join(root, f"p{i}"), args))
    return servers


def move_and_change(conn):
    cur = conn.cursor()
    # Tenant moves: every row of u3 becomes u7's (most change partition), and
    # single rows move to new tenants.
    cur.execute('''UPDATE "Memory" SET "userId" = 'u7', "updatedAt" = clock_timestamp() WHERE "userId" = 'u3' ''')
    cur.execute('''UPDATE "Memory" SET "userId" = 'moved-' || id, "updatedAt" = clock_timestamp()
                   WHERE id IN ('m10', 'm11', 'm12', 'm13', 'm14')''')
    cur.execute('''DELETE FROM "Memory" WHERE id IN ('m20', 'm21', 'm22')''')
    cur.execute(f'''UPDATE "Memory" SET embedding = {emb_sql('length(id) * 5')}, "updatedAt" = clock_timestamp()
                    WHERE id IN ('m30', 'm31')''')


def test_outbox_partitions_hold_each_row_once(db):
    conn, dsn = db
    insert_rows(conn, 0, 3000, user_mod=60)
    with tempfile.TemporaryDirectory() as d:
        servers = start_partitions(dsn, d)
        try:
            for s in servers:
                f = wait_caught_up(s.client, conn)
                assert f["partition"] == {"index": servers.index(s), "count": N, "column": "userId"}
            assert_split(servers, conn)
            assert sum(len(p) for p in expected(conn)) == 3000
            insert_rows(conn, 3000, 3300, user_mod=60)
            move_and_change(conn)
            for s in servers:
                wait_caught_up(s.client, conn)
            assert_split(servers, conn)
            # A moved row is in its new partition only, with its new payload.
            p = partition_of("moved-m10")
            got = servers[p].client.ok("GET", "/collections/memories/points/m10")
            assert got["payload"]["userId"] == "moved-m10"
            for i, s in enumerate(servers):
                if i != p:
                    s.client.error("GET", "/collections/memories/points/m10", status=404,
                                   code="point_not_found")
            # Read-your-writes still works on every partition (each follows the whole outbox).
            cur = conn.cursor()
            cur.execute('''INSERT INTO "Memory" (id, "userId", content, embedding)
                           VALUES ('ryw', 'u5', 'x', %s) RETURNING pg_current_xact_id()::text''' %
                        emb_sql("1"))
            xid = cur.fetchone()[0]
            for i, s in enumerate(servers):
                st, doc = s.client.request("POST", f"/collections/memories/search?feed_xid={xid}",
                                           {"vector": [0.0] * DIM, "k": 1,
                                            "filter": {"must": [{"has_id": ["ryw"]}]}})
                assert st == 200, doc
                assert [h["id"] for h in doc["result"]] == (["ryw"] if i == partition_of("u5") else [])
        finally:
            for s in servers:
                s.stop()


def test_logical_partitions_hold_each_row_once(ldb):
    conn, dsn = ldb
    insert_rows(conn, 0, 1500, user_mod=30)
    with tempfile.TemporaryDirectory() as d:
        servers = start_partitions(dsn, d, logical=True)
        try:
            for s in servers:
                wait_applied(s.client, conn)
            assert_split(servers, conn)
            insert_rows(conn, 1500, 1600, user_mod=30)
            move_and_change(conn)
            for s in servers:
                wait_applied(s.client, conn)
            assert_split(servers, conn)
        finally:
            for s in servers:
                s.stop()


def test_a_changed_partition_sweeps_the_points_that_left(db):
    conn, dsn = db
    insert_rows(conn, 0, 1200, user_mod=40)
    with tempfile.TemporaryDirectory() as d:
        data = os.path.join(d, "data")
        args = ["--set", "feed_partition_column=userId", "--set", "feed_name=moving"]
        s = feed_server(dsn, data, [*args, "--set", "feed_partition=0/2"])
        try:
            wait_caught_up(s.client, conn)
            assert ids_of(s.client, all_ids(conn)) == expected(conn, 2)[0]
        finally:
            s.stop()
        s = feed_server(dsn, data, [*args, "--set", "feed_partition=1/3"])
        try:
            f = wait_caught_up(s.client, conn)
            assert f["partition"]["count"] == 3
            assert ids_of(s.client, all_ids(conn)) == expected(conn, 3)[1]
            assert "feed_partition changed" in s.logs()
        finally:
            s.stop()


@pytest.mark.parametrize("value, why", [("3/3", "feed_partition must be i/N"),
                                        ("1/0", "feed_partition must be i/N"),
                                        ("a", "feed_partition must be i/N")])
def test_bad_partition_settings_are_refused_at_start(value, why):
    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run([BIN, "--data-dir", os.path.join(d, "data"), "--listen", "127.0.0.1:0",
                            "--set", "feed_dsn=dbname=none", "--set", f"feed_partition={value}"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0 and why in r.stdout + r.stderr, (r.returncode, r.stdout, r.stderr)
