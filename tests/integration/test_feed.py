"""The Postgres feed against a real PostgreSQL server (tests/integration/pg.py
starts a throwaway cluster): backfill then follow, out-of-order commits,
SIGKILL during backfill and follow, a Postgres restart, bad rows.

The collection must match the table exactly: every row present with its
exact embedding, payload and version (the row's updatedAt in microseconds),
nothing else present."""
import os
import re
import tempfile
import threading
import time
from urllib.parse import quote

import pytest

from conftest import Server

psycopg2 = pytest.importorskip("psycopg2", reason="python3-psycopg2 is needed for the feed tests")
from pg import Postgres  # noqa: E402

DIM = 8

TABLE = """
CREATE TABLE "Memory" (
    id          text PRIMARY KEY,
    "userId"    text NOT NULL,
    content     text,
    embedding   text,
    "updatedAt" timestamptz NOT NULL DEFAULT clock_timestamp()
)"""


def emb_sql(expr):
    # Multiples of 1/8: exact in float32, so vectors compare with ==.
    return (f"(SELECT json_agg((({expr}) * 7 + k * 3) % 41 / 8.0) FROM generate_series(0, {DIM - 1}) k)::text")


@pytest.fixture(scope="module")
def pg():
    p = Postgres()
    yield p
    p.close()


def fresh_database(pg, prefix="t"):
    """A new database with the table and deploy/sql/ applied: (name, conn, dsn)."""
    name = f"{prefix}{os.getpid()}_{int(time.time() * 1000) % 10**9}"
    admin = pg.connect()
    admin.cursor().execute(f"CREATE DATABASE {name}")
    admin.close()
    dsn = pg.dsn.replace("dbname=postgres", f"dbname={name}")
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    conn.cursor().execute(TABLE)
    pg.apply_sql_files(conn)
    pg.apply_sql_files(conn)  # idempotent: applying twice is fine
    return name, conn, dsn


def drop_database(pg, name, conn):
    conn.close()
    admin = pg.connect()  # a fresh connection: the test may have restarted the server
    admin.cursor().execute(f"DROP DATABASE {name} WITH (FORCE)")
    admin.close()


@pytest.fixture
def db(pg):
    """A fresh database per test, with the table and deploy/sql/ applied."""
    name, conn, dsn = fresh_database(pg)
    yield conn, dsn
    drop_database(pg, name, conn)


def insert_rows(conn, lo, hi, user_mod=10):
    conn.cursor().execute(
        f"""INSERT INTO "Memory" (id, "userId", content, embedding)
            SELECT 'm' || i, 'u' || (i % {user_mod}), 'memory ' || i, {emb_sql('i')}
            FROM generate_series({lo}, {hi - 1}) i""")


def feed_server(dsn, data_dir, extra=()):
    args = ["--set", f"feed_dsn={dsn}", "--set", f"feed_dim={DIM}", "--set", "feed_metric=l2",
            "--set", "feed_poll_ms=200", *extra]
    return Server(data_dir=data_dir, args=args)


def wait_caught_up(client, conn, timeout=120):
    """Until the feed has backfilled and consumed every outbox row there is now."""
    cur = conn.cursor()
    cur.execute("SELECT pg_current_xact_id()::text")
    deadline = time.time() + timeout
    while time.time() < deadline:
        st, doc = client.request("GET", "/feed")
        if st == 200:
            f = doc["result"]
            cur.execute("SELECT count(*) FROM vectord_outbox WHERE (xid, seq) > (%s::xid8, %s)",
                        (str(int(f["position"]["xid"])), int(f["position"]["seq"])))
            if f["backfill"]["done"] and cur.fetchone()[0] == 0:
                return f
        time.sleep(0.1)
    raise AssertionError(f"feed did not catch up: {client.request('GET', '/feed')}")


def assert_matches_table(client, conn):
    cur = conn.cursor()
    cur.execute("""SELECT id, "userId", content, embedding,
                          floor(extract(epoch FROM "updatedAt") * 1000000)::bigint FROM "Memory" """)
    rows = cur.fetchall()
    info = client.ok("GET", "/collections/memories")
    assert info["points_count"] == len(rows), (info["points_count"], len(rows))
    import json
    for rid, user, content, emb, version in rows:
        st, doc = client.request("GET", f"/collections/memories/points/{quote(rid, safe='')}?with_vector=true")
        assert st == 200, (rid, doc)
        p = doc["result"]
        assert p["vector"] == [float(x) for x in json.loads(emb)], rid
        assert p["version"] == version and isinstance(p["version"], int), (rid, p["version"], version)
        assert p["payload"]["userId"] == user and p["payload"]["content"] == content, p
        assert "embedding" not in p["payload"]


def test_backfill_then_follow_matches_the_table(db):
    conn, dsn = db
    insert_rows(conn, 0, 20000)
    with tempfile.TemporaryDirectory() as d:
        s = feed_server(dsn, os.path.join(d, "data"))
        try:
            c = s.client
            f = wait_caught_up(c, conn)
            assert f["backfill"]["rows"] == 20000 and f["rows_rejected"] == 0
            assert f["connected"] and f["phase"] == "follow"
            # Follow: inserts, updates (new embedding, newer version), deletes.
            insert_rows(conn, 20000, 20100)
            cur = conn.cursor()
            cur.execute(f"""UPDATE "Memory" SET embedding = {emb_sql('length(id) * 13')},
                            content = 'edited', "updatedAt" = clock_timestamp()
                            WHERE id IN ('m1', 'm2', 'm20050')""")
            cur.execute("""DELETE FROM "Memory" WHERE id IN ('m3', 'm4', 'm20060')""")
            wait_caught_up(c, conn)
            assert_matches_table(c, conn)
            assert c.ok("GET", "/collections/memories/points/m1")["payload"]["content"] == "edited"
            c.error("GET", "/collections/memories/points/m3", status=404, code="point_not_found")
            metrics = c.request("GET", "/metrics")[1]
            assert re.search(r'vectord_feed_backfill_rows_total\{feed="vectord"\} 20000', metrics)
            assert re.search(r'vectord_feed_connected\{feed="vectord"\} 1', metrics)
            # The consumer's position is recorded for pruning, and pruning works.
            cur.execute("SELECT consumed_xid::text FROM vectord_feed_position WHERE feed = 'vectord'")
            assert cur.fetchone() is not None
            cur.execute("SELECT vectord_outbox_prune()")
            assert cur.fetchone()[0] >= 1
        finally:
            s.stop()


def test_transactions_committing_out_of_order_are_both_applied_once(db):
    conn, dsn = db
    with tempfile.TemporaryDirectory() as d:
        s = feed_server(dsn, os.path.join(d, "data"))
        try:
            c = s.client
            wait_caught_up(c, conn)
            applied0 = c.ok("GET", "/feed")["rows_applied"]
            t1 = psycopg2.connect(dsn)  # takes the lower xid and seq, commits last
            t2 = psycopg2.connect(dsn)
            cur1, cur2 = t1.cursor(), t2.cursor()
            cur1.execute(f"""INSERT INTO "Memory" (id, "userId", embedding) VALUES ('early', 'u', {emb_sql('1')})""")
            cur2.execute(f"""INSERT INTO "Memory" (id, "userId", embedding) VALUES ('late', 'u', {emb_sql('2')})""")
            t2.commit()
            time.sleep(1.0)  # several polls while t1 is still open
            # 'late' waits behind t1: its xid is not below the snapshot xmin yet.
            st, _ = c.request("GET", "/collections/memories/points/late")
            assert st == 404
            t1.commit()
            wait_caught_up(c, conn)
            assert c.ok("GET", "/collections/memories/points/early")["id"] == "early"
            assert c.ok("GET", "/collections/memories/points/late")["id"] == "late"
            assert c.ok("GET", "/feed")["rows_applied"] - applied0 == 2  # once each
            t1.close()
            t2.close()
        finally:
            s.stop()


def test_sigkill_during_backfill_and_follow_resumes_exactly(db):
    conn, dsn = db
    insert_rows(conn, 0, 12000)
    with tempfile.TemporaryDirectory() as d:
        data = os.path.join(d, "data")
        extra = ["--set", "feed_batch_rows=200"]
        s = feed_server(dsn, data, extra)
        deadline = time.time() + 60
        while time.time() < deadline:
            st, doc = s.client.request("GET", "/feed")
            if st == 200 and doc["result"]["backfill"]["rows"] >= 2000:
                break
            time.sleep(0.02)
        s.kill()  # mid-backfill
        # Changes while vectord is down, then a restart that resumes the backfill.
        cur = conn.cursor()
        cur.execute("""DELETE FROM "Memory" WHERE id IN ('m10', 'm11999')""")
        s = feed_server(dsn, data, extra)
        wait_caught_up(s.client, conn)
        assert re.search(r'msg="ready" .*wal_records=[1-9]', s.logs())
        # Follow under a steady insert load, killed mid-way.
        stop = threading.Event()

        def writer():
            w = psycopg2.connect(dsn)
            w.autocommit = True
            i = 40000
            while not stop.is_set():
                insert_rows(w, i, i + 20)
                w.cursor().execute(f"""UPDATE "Memory" SET content = 'u{i}', "updatedAt" = clock_timestamp()
                                       WHERE id = 'm{i % 12000}'""")
                i += 20
            w.close()

        t = threading.Thread(target=writer)
        t.start()
        time.sleep(0.6)
        s.kill()
        time.sleep(0.2)
        stop.set()
        t.join()
        s = feed_server(dsn, data, extra)
        try:
            wait_caught_up(s.client, conn)
            assert_matches_table(s.client, conn)
        finally:
            s.stop()


def test_postgres_restart_reconnects_and_catches_up(pg, db):
    conn, dsn = db
    insert_rows(conn, 0, 100)
    with tempfile.TemporaryDirectory() as d:
        s = feed_server(dsn, os.path.join(d, "data"))
        try:
            c = s.client
            wait_caught_up(c, conn)
            conn.close()
            pg.stop()
            time.sleep(1.0)
            f = c.ok("GET", "/feed")
            assert c.ok("GET", "/collections/memories")["points_count"] == 100  # reads go on
            pg.start()
            conn2 = pg.connect()
            conn2.close()
            conn3 = psycopg2.connect(dsn)
            conn3.autocommit = True
            insert_rows(conn3, 100, 150)
            f = wait_caught_up(c, conn3)
            assert f["reconnects"] >= 1 and f["connected"]
            assert_matches_table(c, conn3)
            conn3.close()
        finally:
            s.stop()


def test_bad_rows_are_skipped_and_counted(db):
    conn, dsn = db
    insert_rows(conn, 0, 50)
    cur = conn.cursor()
    cur.execute("""INSERT INTO "Memory" (id, "userId", embedding) VALUES
                   ('bad-dim', 'u', '[1, 2, 3]'), ('bad-json', 'u', '{not json'),
                   ('bad-null', 'u', NULL), ('bad-nan', 'u', '[1,2,3,4,5,6,7,"x"]')""")
    with tempfile.TemporaryDirectory() as d:
        s = feed_server(dsn, os.path.join(d, "data"))
        try:
            c = s.client
            f = wait_caught_up(c, conn)
            assert f["rows_rejected"] == 4
            assert c.ok("GET", "/collections/memories")["points_count"] == 50
            # A bad update: the row can no longer be a point, so its point (of
            # the row's older contents) is taken out rather than served as the row.
            cur.execute("""UPDATE "Memory" SET embedding = '[0.5]' WHERE id = 'm7'""")
            insert_rows(conn, 50, 60)
            f = wait_caught_up(c, conn)
            assert f["rows_rejected"] == 5
            assert c.ok("GET", "/collections/memories")["points_count"] == 59
            c.error("GET", "/collections/memories/points/m7", status=404, code="point_not_found")
            # An outbox row naming no id (written by hand, not by the trigger).
            cur.execute("""INSERT INTO vectord_outbox (source, row_id, op) VALUES ('Memory', '', 'D')""")
            insert_rows(conn, 60, 61)
            f = wait_caught_up(c, conn)
            assert f["rows_rejected"] == 6
            assert c.ok("GET", "/collections/memories")["points_count"] == 60
            assert "feed skipped a bad row" in s.logs() and 'id="bad-dim"' in s.logs()
        finally:
            s.stop()


def test_reconciliation_finds_and_repairs_drift(db):
    conn, dsn = db
    insert_rows(conn, 0, 300)
    with tempfile.TemporaryDirectory() as d:
        s = feed_server(dsn, os.path.join(d, "data"))
        try:
            c = s.client
            wait_caught_up(c, conn)
            r = c.ok("POST", "/feed/reconcile")
            assert r["in_sync"] and r["source_rows"] == 300 and r["collection_points"] == 300
            # Drift behind the feed's back: a point deleted and one added over the
            # REST API, one rewritten with an older version; a row changed in
            # Postgres with the trigger disabled (so no outbox row).
            c.ok("POST", "/collections/memories/points/delete", {"ids": ["m5"]})
            c.ok("PUT", "/collections/memories/points",
                 {"points": [{"id": "ghost", "vector": [0.0] * DIM}]})
            cur = conn.cursor()
            cur.execute("""ALTER TABLE "Memory" DISABLE TRIGGER vectord_outbox_capture""")
            cur.execute("""UPDATE "Memory" SET content = 'silent', "updatedAt" = clock_timestamp() WHERE id = 'm9'""")
            # Two rows whose ids need quoting in the repair's array literal.
            cur.execute(f"""INSERT INTO "Memory" (id, "userId", embedding)
                            VALUES ('q"1', 'u', {emb_sql('1')}), ('b\\1', 'u', {emb_sql('2')})""")
            cur.execute("""ALTER TABLE "Memory" ENABLE TRIGGER vectord_outbox_capture""")
            r = c.ok("POST", "/feed/reconcile")
            assert (r["missing"], r["extra"], r["stale"], r["repaired"]) == (3, 1, 1, 0), r
            assert sorted(r["examples"]["missing"]) == ["b\\1", "m5", 'q"1'], r
            assert r["examples"]["extra"] == ["ghost"] and r["examples"]["stale"] == ["m9"], r
            r = c.ok("POST", "/feed/reconcile?repair=true")
            assert r["repaired"] == 5, r
            r = c.ok("POST", "/feed/reconcile")
            assert r["in_sync"], r
            assert_matches_table(c, conn)
        finally:
            s.stop()


def test_read_your_writes_waits_for_the_feed(db):
    conn, dsn = db
    with tempfile.TemporaryDirectory() as d:
        s = feed_server(dsn, os.path.join(d, "data"), ["--set", "feed_poll_ms=2000"])
        try:
            c = s.client
            wait_caught_up(c, conn)
            cur = conn.cursor()
            cur.execute("BEGIN")
            cur.execute(f"""INSERT INTO "Memory" (id, "userId", embedding) VALUES ('fresh', 'u1', {emb_sql('5')})""")
            cur.execute("SELECT pg_current_xact_id()::text")
            xid = cur.fetchone()[0]
            cur.execute("COMMIT")
            body = {"vector": [((5 * 7 + k * 3) % 41) / 8.0 for k in range(DIM)], "k": 1}
            hits = c.ok("POST", f"/collections/memories/search?feed_xid={xid}&feed_timeout_ms=10000", body)
            assert hits and hits[0]["id"] == "fresh" and hits[0]["score"] == 0
            # A transaction the feed cannot have applied (far in the future): 504 after the timeout.
            c.error("POST", f"/collections/memories/search?feed_xid={int(xid) + 10**9}&feed_timeout_ms=300",
                    body, status=504, code="feed_timeout")
            c.error("POST", "/collections/memories/search?feed_xid=abc", body, status=400)
            # A transaction applied long ago: no wait.
            assert c.ok("POST", "/collections/memories/search?feed_xid=3&feed_timeout_ms=10000", body)
        finally:
            s.stop()


def test_two_replicas_following_one_outbox_converge(db):
    conn, dsn = db
    insert_rows(conn, 0, 500)
    with tempfile.TemporaryDirectory() as d:
        a = feed_server(dsn, os.path.join(d, "a"), ["--set", "feed_name=replica-a"])
        b = feed_server(dsn, os.path.join(d, "b"), ["--set", "feed_name=replica-b"])
        try:
            cur = conn.cursor()
            insert_rows(conn, 500, 700)
            cur.execute("""DELETE FROM "Memory" WHERE id LIKE 'm1%'""")
            cur.execute("""UPDATE "Memory" SET content = 'x', "updatedAt" = clock_timestamp() WHERE id LIKE 'm2%'""")
            wait_caught_up(a.client, conn)
            wait_caught_up(b.client, conn)
            # k covers every point of the user (about 60): equal scores may come in
            # either order, so compare the whole answer sorted by (score, id).
            for i in range(20):
                body = {"vector": [((i * 11 + k) % 13) / 4.0 for k in range(DIM)], "k": 100, "exact": True,
                        "filter": {"must": [{"key": "userId", "match": {"value": f"u{i % 10}"}}]}}
                ra = a.client.ok("POST", "/collections/memories/search", body)
                rb = b.client.ok("POST", "/collections/memories/search", body)
                assert len(ra) > 30
                key = lambda h: (h["score"], str(h["id"]))  # noqa: E731
                assert sorted(ra, key=key) == sorted(rb, key=key)
            deadline = time.time() + 10  # each publishes its position after applying
            while time.time() < deadline:
                cur.execute("SELECT feed FROM vectord_feed_position ORDER BY feed")
                feeds = [r[0] for r in cur.fetchall()]
                if feeds == ["replica-a", "replica-b"]:
                    break
                time.sleep(0.05)
            assert feeds == ["replica-a", "replica-b"]
            assert_matches_table(a.client, conn)
            assert_matches_table(b.client, conn)
        finally:
            a.stop()
            b.stop()


def readyz_until(client, ready, timeout):
    """Polls /readyz until it is (ready) or is not (not ready) 200, or timeout s pass; its last answer."""
    deadline = time.time() + timeout
    while (client.request("GET", "/readyz")[0] == 200) != ready and time.time() < deadline:
        time.sleep(0.1)
    return client.request("GET", "/readyz")


def test_readyz_reflects_feed_lag(pg, db):
    conn, dsn = db
    with tempfile.TemporaryDirectory() as d:
        s = feed_server(dsn, os.path.join(d, "data"), ["--set", "feed_max_lag_s=1"])
        try:
            c = s.client
            wait_caught_up(c, conn)
            assert readyz_until(c, True, 10)[0] == 200
            conn.close()
            pg.stop()
            try:
                st, doc = readyz_until(c, False, 10)
                assert st == 503 and "feed" in doc["error"]["message"], doc
            finally:
                pg.start()
        finally:
            s.stop()


def test_readiness_follows_staleness_not_the_connection(pg, db):
    """A Postgres blip must not empty the Service: /readyz stays 200 while the
    data cannot be staler than feed_max_lag_s, fails (saying how stale and why)
    past it, and comes back once the feed hears from Postgres again."""
    conn, dsn = db
    with tempfile.TemporaryDirectory() as d:
        s = feed_server(dsn, os.path.join(d, "data"), ["--set", "feed_max_lag_s=6"])
        try:
            c = s.client
            wait_caught_up(c, conn)
            assert readyz_until(c, True, 10)[0] == 200
            conn.close()
            pg.stop()
            stopped = time.time()
            try:
                time.sleep(1.5)
                st, doc = c.request("GET", "/readyz")
                assert st == 200 or time.time() - stopped > 5, doc  # a blip: still ready
                assert c.ok("GET", "/feed")["lag"]["staleness_seconds"] >= 1.5
                st, doc = readyz_until(c, False, 30)
                assert st == 503 and time.time() - stopped >= 5, doc
                msg = doc["error"]["message"]
                assert "may be" in msg and "behind Postgres" in msg and "not connected" in msg, msg
                assert c.ok("POST", "/collections/memories/search", {"vector": [0.0] * DIM, "k": 1}) is not None
            finally:
                pg.start()
            assert readyz_until(c, True, 60)[0] == 200
        finally:
            s.stop()


def test_two_feeds_from_a_config_file(db):
    """[feed] plus a [feed.NAME] section: two tables into two collections."""
    conn, dsn = db
    cur = conn.cursor()
    cur.execute(TABLE.replace('"Memory"', '"AgentMemory"'))
    cur.execute("""CREATE TRIGGER vectord_outbox_capture AFTER INSERT OR UPDATE OR DELETE ON "AgentMemory"
                   FOR EACH ROW EXECUTE FUNCTION vectord_outbox_capture('id')""")
    insert_rows(conn, 0, 40)
    cur.execute(f"""INSERT INTO "AgentMemory" (id, "userId", embedding)
                    SELECT 'a' || i, 'agent', {emb_sql('i')} FROM generate_series(0, 24) i""")
    with tempfile.TemporaryDirectory() as d:
        conf = os.path.join(d, "vectord.conf")
        with open(conf, "w") as f:
            f.write(f"[feed]\nfeed_dsn = {dsn}\nfeed_dim = {DIM}\nfeed_metric = l2\nfeed_poll_ms = 200\n"
                    f"[feed.agents]\nfeed_dsn = {dsn}\nfeed_table = AgentMemory\n"
                    f"feed_collection = agent_memories\nfeed_dim = {DIM}\nfeed_metric = l2\nfeed_poll_ms = 200\n"
                    f"feed_payload_columns = userId, content\nfeed_version_column =\n")
        s = Server(data_dir=os.path.join(d, "data"), args=["--config", conf])
        try:
            c = s.client
            wait_caught_up(c, conn)
            deadline = time.time() + 30
            while time.time() < deadline:
                st, doc = c.request("GET", "/feed?name=agents")
                if st == 200 and doc["result"]["backfill"]["done"]:
                    break
                time.sleep(0.1)
            cur.execute("""DELETE FROM "AgentMemory" WHERE id = 'a3'""")
            cur.execute("""DELETE FROM "Memory" WHERE id = 'm3'""")
            deadline = time.time() + 30
            while time.time() < deadline and (
                    c.ok("GET", "/collections/agent_memories")["points_count"] != 24 or
                    c.ok("GET", "/collections/memories")["points_count"] != 39):
                time.sleep(0.1)
            assert c.ok("GET", "/collections/agent_memories")["points_count"] == 24
            assert c.ok("GET", "/collections/memories")["points_count"] == 39
            feeds = c.ok("GET", "/feeds")["feeds"]
            assert sorted(f["name"] for f in feeds) == ["agents", "vectord"]
            assert c.ok("GET", "/feed?name=agents")["collection"] == "agent_memories"
            p = c.ok("GET", "/collections/agent_memories/points/a1")
            assert p["payload"] == {"userId": "agent", "content": None} and p["version"] == 0, p
            c.error("GET", "/feed?name=nope", status=404)
            metrics = c.request("GET", "/metrics")[1]
            assert metrics.count("# TYPE vectord_feed_connected gauge") == 1
            assert 'vectord_feed_connected{feed="agents"} 1' in metrics
            assert 'vectord_feed_connected{feed="vectord"} 1' in metrics
        finally:
            s.stop()


def feed_status(client, want, timeout=30):
    """GET /feed until want(feed) holds; the feed object."""
    deadline = time.time() + timeout
    f = None
    while time.time() < deadline:
        st, doc = client.request("GET", "/feed")
        if st == 200:
            f = doc["result"]
            if want(f):
                return f
        time.sleep(0.1)
    raise AssertionError(f"feed never reached the state wanted: {f}")


def create_source(cur, table, columns, id_column):
    """A source table other than "Memory", with the outbox trigger."""
    cur.execute(f"CREATE TABLE {table} ({columns})")
    cur.execute(f"""CREATE TRIGGER vectord_outbox_capture AFTER INSERT OR UPDATE OR DELETE ON {table}
                    FOR EACH ROW EXECUTE FUNCTION vectord_outbox_capture('{id_column}')""")


def source_args(table, id_column, embedding_column, version_column, *more):
    """Feed settings for such a table, into a collection of the same name."""
    return ["--set", f"feed_table={table}", "--set", f"feed_id_column={id_column}",
            "--set", f"feed_embedding_column={embedding_column}", "--set", f"feed_version_column={version_column}",
            "--set", f"feed_collection={table}", *more]


def test_integer_ids_chosen_payload_columns_and_no_version(db):
    """Another table: bigint ids, two of its columns as the payload, no version column."""
    conn, dsn = db
    cur = conn.cursor()
    create_source(cur, "notes", "nid bigint PRIMARY KEY, vec text, a int, b text, secret text", "nid")
    cur.execute(f"""INSERT INTO notes SELECT i, {emb_sql('i')}, i * 10, 'b' || i, 'hidden'
                    FROM generate_series(1, 40) i""")
    with tempfile.TemporaryDirectory() as d:
        s = feed_server(dsn, os.path.join(d, "data"), source_args(
            "notes", "nid", "vec", "", "--set", "feed_payload_columns=a, b"))
        try:
            c = s.client
            wait_caught_up(c, conn)
            cur.execute(f"INSERT INTO notes VALUES (41, {emb_sql('41')}, 410, 'b41', 'x')")
            cur.execute("DELETE FROM notes WHERE nid = 2")
            wait_caught_up(c, conn)
            assert c.ok("GET", "/collections/notes")["points_count"] == 40
            p = c.ok("GET", "/collections/notes/points/41")
            assert p["id"] == 41 and p["payload"] == {"a": 410, "b": "b41"}, p
            assert "version" not in p or p["version"] in (None, 0), p
            assert c.request("GET", "/collections/notes/points/2")[0] == 404
        finally:
            s.stop()


def test_wide_table_payload_is_every_column_but_the_embedding(db):
    """Past 50 columns the payload is built with to_jsonb(row) minus the embedding."""
    conn, dsn = db
    cur = conn.cursor()
    cur.execute('ALTER TABLE "Memory" ' + ", ".join(f"ADD COLUMN c{i} int DEFAULT {i}" for i in range(60)))
    insert_rows(conn, 0, 5)
    with tempfile.TemporaryDirectory() as d:
        s = feed_server(dsn, os.path.join(d, "data"))
        try:
            c = s.client
            wait_caught_up(c, conn)
            p = c.ok("GET", "/collections/memories/points/m3")
            assert p["payload"]["c59"] == 59 and p["payload"]["userId"] == "u3", p
            assert "embedding" not in p["payload"]
        finally:
            s.stop()


def test_feed_errors_are_reported_and_the_server_keeps_serving(pg, db):
    conn, dsn = db
    with tempfile.TemporaryDirectory() as d:
        # A source table that does not exist: the query fails, the error is shown, retried.
        s = feed_server(dsn, os.path.join(d, "a"), ["--set", "feed_table=missing"])
        try:
            f = feed_status(s.client, lambda f: f["last_error"])
            assert "missing" in f["last_error"], f
            assert s.client.request("GET", "/healthz")[0] == 200
            s.client.ok("PUT", "/collections/other", {"dim": 2})
        finally:
            s.stop()
        # No collection and feed_dim 0: nothing to write into.
        s = Server(data_dir=os.path.join(d, "b"), args=["--set", f"feed_dsn={dsn}", "--set", "feed_poll_ms=200"])
        try:
            f = feed_status(s.client, lambda f: f["last_error"] and "feed_dim" in f["last_error"])
            assert not f["backfill"]["done"]
        finally:
            s.stop()
        # The collection exists with another dimension: rows are rejected, counted, not applied.
        insert_rows(conn, 0, 3)
        s = Server(data_dir=os.path.join(d, "c"))
        s.client.ok("PUT", "/collections/small", {"dim": 3})
        s.stop()
        s = feed_server(dsn, os.path.join(d, "c"), ["--set", "feed_collection=small"])
        try:
            f = feed_status(s.client, lambda f: f["rows_rejected"] >= 3 or f["last_error"])
            assert s.client.ok("GET", "/collections/small")["points_count"] == 0, f
        finally:
            s.stop()
        # Nothing listening at the DSN: connection errors, reconnect attempts, still
        # serving; not ready (feed_max_lag_s is set), nothing to reconcile against.
        bad = re.sub(r"port=\d+", "port=1", dsn)
        s = feed_server(bad, os.path.join(d, "d"), ["--set", "feed_max_lag_s=5"])
        try:
            f = feed_status(s.client, lambda f: f["last_error"] and not f["connected"])
            assert "connect" in f["last_error"], f
            assert s.client.request("GET", "/healthz")[0] == 200
            assert s.client.request("GET", "/readyz")[0] == 503
            err = s.client.error("POST", "/feed/reconcile", status=503, code="not_ready")
            assert "not connected" in err["message"], err
        finally:
            s.stop()
        # More payload columns listed than one jsonb_build_object takes.
        cols = ",".join(f"c{i}" for i in range(51))
        s = feed_server(dsn, os.path.join(d, "e"), ["--set", f"feed_payload_columns={cols}"])
        try:
            f = feed_status(s.client, lambda f: f["last_error"])
            assert "more than 50 columns" in f["last_error"], f
        finally:
            s.stop()
        # A target collection the feed cannot create (no room under max_collections).
        s = Server(data_dir=os.path.join(d, "f"))
        s.client.ok("PUT", "/collections/other", {"dim": 2})
        s.stop()
        s = feed_server(dsn, os.path.join(d, "f"), ["--set", "max_collections=1"])
        try:
            f = feed_status(s.client, lambda f: f["last_error"])
            assert "cannot create collection 'memories'" in f["last_error"], f
            assert s.client.request("GET", "/healthz")[0] == 200
        finally:
            s.stop()


def test_integer_ids_reconcile_over_many_pages(db):
    """An integer id column and an integer version (one row without), more
    source rows than one reconciliation page (10,000), drift in every
    direction: the comparison and the repair are exact."""
    conn, dsn = db
    cur = conn.cursor()
    create_source(cur, "items", "iid integer PRIMARY KEY, vec text, ver bigint, note text", "iid")
    with tempfile.TemporaryDirectory() as d:
        s = feed_server(dsn, os.path.join(d, "data"), source_args(
            "items", "iid", "vec", "ver", "--set", "feed_batch_rows=2000"))
        try:
            c = s.client
            wait_caught_up(c, conn)
            r = c.ok("POST", "/feed/reconcile")  # an empty table
            assert r["in_sync"] and r["source_rows"] == 0 and r["collection_points"] == 0, r
            n = 10050
            cur.execute(f"""INSERT INTO items SELECT i, {emb_sql('i')}, i * 3, 'n' || i
                            FROM generate_series(1, {n}) i""")
            cur.execute("UPDATE items SET ver = NULL WHERE iid = 7")
            wait_caught_up(c, conn)
            assert c.ok("GET", "/collections/items")["points_count"] == n
            assert c.ok("GET", "/collections/items/points/7")["version"] in (None, 0)
            r = c.ok("POST", "/feed/reconcile")
            assert r["in_sync"] and r["source_rows"] == n and r["collection_points"] == n, r
            # Drift: 71 points no row has (one with a string id, as the API allows; "5"
            # must not pass for row 5), 3 rows without a point, 2 stale versions.
            extra = [{"id": 100000 + i, "vector": [0.0] * DIM} for i in range(70)] + [{"id": "5", "vector": [0.0] * DIM}]
            c.ok("PUT", "/collections/items/points", {"points": extra})
            cur.execute("ALTER TABLE items DISABLE TRIGGER vectord_outbox_capture")
            cur.execute(f"INSERT INTO items SELECT i, {emb_sql('i')}, 1, 'silent' FROM generate_series(20001, 20003) i")
            cur.execute("UPDATE items SET ver = ver + 1 WHERE iid IN (5, 6)")
            cur.execute("UPDATE items SET note = 'no version, still drift' WHERE iid = 7")  # found by content
            cur.execute("ALTER TABLE items ENABLE TRIGGER vectord_outbox_capture")
            r = c.ok("POST", "/feed/reconcile")
            assert (r["missing"], r["extra"], r["stale"]) == (3, 71, 3), r
            assert r["source_rows"] == n + 3 and r["collection_points"] == n + 71, r
            assert sorted(r["examples"]["missing"]) == [20001, 20002, 20003], r
            assert sorted(r["examples"]["stale"]) == [5, 6, 7], r
            assert all(isinstance(i, int) and i >= 100000 or i == "5" for i in r["examples"]["extra"]), r
            r = c.ok("POST", "/feed/reconcile?repair=true")
            assert r["repaired"] == 77 and r["in_sync_after_repair"], r
            r = c.ok("POST", "/feed/reconcile")
            assert r["in_sync"] and r["collection_points"] == n + 3, r
            assert c.ok("GET", "/collections/items/points/5")["version"] == 16
            assert c.ok("GET", "/collections/items/points/20002")["payload"]["note"] == "silent"
            assert c.request("GET", "/collections/items/points/100003")[0] == 404
            assert c.request("GET", "/collections/items/points/5?id_type=string")[0] == 404
        finally:
            s.stop()


@pytest.mark.parametrize("metric, feed_metric", [("l2", "cosine"), ("dot", "cosine"), ("cosine", "l2")])
def test_feed_vectors_follow_the_collections_metric_not_feed_metric(db, metric, feed_metric):
    """feed_metric only chooses the metric of a collection the feed creates. A
    collection that exists already keeps its own rule: an l2 or dot collection
    stores the row's embedding as it is, a cosine one stores it normalised."""
    conn, dsn = db
    conn.cursor().execute(
        """INSERT INTO "Memory" (id, "userId", embedding) VALUES
           ('a', 'u1', '[3, 4, 0, 0, 0, 0, 0, 0]'), ('b', 'u2', '[0, 0, 0, 0, 0, 0, 0, 2]')""")
    with tempfile.TemporaryDirectory() as d:
        s = Server(data_dir=os.path.join(d, "data"))
        try:
            s.client.ok("PUT", "/collections/memories", {"dim": DIM, "metric": metric})
        finally:
            s.stop()
        s = Server(data_dir=os.path.join(d, "data"),
                   args=["--set", f"feed_dsn={dsn}", "--set", f"feed_dim={DIM}",
                         "--set", f"feed_metric={feed_metric}", "--set", "feed_poll_ms=200"])
        try:
            wait_caught_up(s.client, conn)
            a = s.client.ok("GET", "/collections/memories/points/a?with_vector=true")["vector"]
            b = s.client.ok("GET", "/collections/memories/points/b?with_vector=true")["vector"]
            if metric == "cosine":
                assert a == pytest.approx([0.6, 0.8, 0, 0, 0, 0, 0, 0], abs=1e-6)
                assert b == pytest.approx([0, 0, 0, 0, 0, 0, 0, 1], abs=1e-6)
            else:
                assert a == [3, 4, 0, 0, 0, 0, 0, 0] and b == [0, 0, 0, 0, 0, 0, 0, 2]
            assert s.client.ok("GET", "/collections/memories")["metric"] == metric
        finally:
            s.stop()
