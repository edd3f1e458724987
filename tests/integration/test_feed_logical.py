"""The logical-replication feed source (feed_source = logical; issue 19,
item 7) against a real PostgreSQL with wal_level = logical: a publication and
a slot, no trigger, no outbox. Backfill from the slot's exported snapshot,
then inserts, updates (an id that changes too), deletes and TRUNCATE in
commit order; read-your-writes with ?feed_lsn=; exactly once across SIGKILL
of vectord (while following and while copying) and a restart of PostgreSQL;
an idle-in-transaction session that does not hold the feed back; set-up
errors that name their fix."""
import glob
import os
import tempfile
import threading
import time

import pytest

from conftest import Server

psycopg2 = pytest.importorskip("psycopg2", reason="python3-psycopg2 is needed for the feed tests")
from pg import SQL_DIR, Postgres  # noqa: E402
from test_feed import DIM, TABLE, assert_matches_table, emb_sql, insert_rows  # noqa: E402


@pytest.fixture(scope="module")
def pgl():
    p = Postgres(logical=True)
    yield p
    p.close()


@pytest.fixture
def ldb(pgl):
    """A fresh database with the table and its publication."""
    name = f"l{os.getpid()}_{int(time.time() * 1000) % 10**9}"
    admin = pgl.connect()
    admin.cursor().execute(f"CREATE DATABASE {name}")
    dsn = pgl.dsn.replace("dbname=postgres", f"dbname={name}")
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    conn.cursor().execute(TABLE)
    for _ in range(2):  # deploy/sql/logical/*.sql, idempotent
        for path in sorted(glob.glob(os.path.join(SQL_DIR, "logical", "*.sql"))):
            conn.cursor().execute(open(path).read())
    yield conn, dsn
    conn.close()
    admin = pgl.connect()
    cur = admin.cursor()
    cur.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                "WHERE database = %s AND NOT active", (name,))
    cur.execute(f"DROP DATABASE {name} WITH (FORCE)")
    admin.close()


def logical_server(dsn, data_dir, extra=()):
    args = ["--set", f"feed_dsn={dsn}", "--set", "feed_source=logical", "--set", f"feed_dim={DIM}",
            "--set", "feed_metric=l2", *extra]
    return Server(data_dir=data_dir, args=args)


def lsn_of(text):
    hi, lo = text.split("/")
    return int(hi, 16) << 32 | int(lo, 16)


def current_lsn(conn):
    # The test cluster commits with synchronous_commit = off, so a commit's
    # record may not be written yet: the insert position covers it.
    cur = conn.cursor()
    cur.execute("SELECT pg_current_wal_insert_lsn()::text")
    return cur.fetchone()[0]


def wait_applied(client, conn, timeout=60):
    """Until the feed has applied everything committed now (read-your-writes by LSN)."""
    lsn = current_lsn(conn)
    deadline = time.time() + timeout
    while time.time() < deadline:
        st, doc = client.request("POST", f"/collections/memories/search?feed_lsn={lsn}&feed_timeout_ms=2000",
                                 {"vector": [0.0] * DIM, "k": 1})
        if st == 200:
            return
        time.sleep(0.05)  # 404 before the collection exists, 504 while copying
    raise AssertionError(f"the feed did not apply up to {lsn}: {client.request('GET', '/feed')}")


def test_backfill_then_follow_matches_the_table_in_commit_order(ldb):
    conn, dsn = ldb
    insert_rows(conn, 0, 500)
    with tempfile.TemporaryDirectory() as d:
        s = logical_server(dsn, os.path.join(d, "data"), ["--set", "feed_batch_rows=64"])
        try:
            c = s.client
            wait_applied(c, conn)
            assert_matches_table(c, conn)
            f = c.ok("GET", "/feed")
            assert f["source"] == "logical" and f["backfill"]["done"] and f["backfill"]["rows"] == 500, f
            assert f["position"]["slot"] == "vectord_vectord" and lsn_of(f["position"]["lsn"]) > 0, f
            cur = conn.cursor()
            insert_rows(conn, 500, 700)
            cur.execute("""UPDATE "Memory" SET content = 'edited', "userId" = 'moved' WHERE id IN ('m1', 'm2')""")
            cur.execute("""UPDATE "Memory" SET id = 'renamed' WHERE id = 'm3'""")  # the key itself
            cur.execute("""DELETE FROM "Memory" WHERE id LIKE 'm4%'""")
            # A transaction larger than a batch, applied as it comes.
            cur.execute(f"""UPDATE "Memory" SET embedding = {emb_sql("length(id)")} WHERE id LIKE 'm1%'""")
            wait_applied(c, conn)
            assert_matches_table(c, conn)
            assert c.request("GET", "/collections/memories/points/m3")[0] == 404
            # TRUNCATE, then rows written after it in the same and later transactions.
            cur.execute('BEGIN; TRUNCATE "Memory"; COMMIT')
            insert_rows(conn, 2000, 2010)
            wait_applied(c, conn)
            assert_matches_table(c, conn)
            assert c.ok("GET", "/collections/memories")["points_count"] == 10
            assert "feed applied a TRUNCATE" in s.logs()
        finally:
            s.stop()


def test_read_your_writes_by_lsn_and_errors(ldb):
    conn, dsn = ldb
    with tempfile.TemporaryDirectory() as d:
        s = logical_server(dsn, os.path.join(d, "data"))
        try:
            c = s.client
            wait_applied(c, conn)
            cur = conn.cursor()
            for i in range(5):
                cur.execute(f"""INSERT INTO "Memory" (id, "userId", content, embedding)
                                VALUES ('ryw{i}', 'u', 'x', {emb_sql(str(i + 100))})""")
                lsn = current_lsn(conn)
                st, doc = c.request("POST", f"/collections/memories/search?feed_lsn={lsn}",
                                    {"vector": [0.0] * DIM, "k": 100})
                assert st == 200 and f"ryw{i}" in {h["id"] for h in doc["result"]}, doc
            e = c.error("POST", "/collections/memories/search?feed_lsn=banana", {"vector": [0.0] * DIM}, 400)
            assert "pg_current_wal_lsn" in e["message"]
            e = c.error("POST", "/collections/memories/search?feed_xid=5", {"vector": [0.0] * DIM}, 400)
            assert "feed_lsn" in e["message"], e
            e = c.error("POST", "/collections/memories/search?feed_xid=5&feed_lsn=0/1", {"vector": [0.0] * DIM}, 400)
            assert "not both" in e["message"]
            # An LSN far ahead: 504 naming it.
            e = c.error("POST", "/collections/memories/search?feed_lsn=FFFF/0&feed_timeout_ms=200",
                        {"vector": [0.0] * DIM}, 504, "feed_timeout")
            assert "FFFF/0" in e["message"], e
        finally:
            s.stop()


def test_sigkill_while_following_and_while_copying_loses_and_repeats_nothing(ldb):
    conn, dsn = ldb
    insert_rows(conn, 0, 3000)
    with tempfile.TemporaryDirectory() as d:
        data = os.path.join(d, "data")
        # Killed while copying (small pages make the copy slow enough to cut).
        s = logical_server(dsn, data, ["--set", "feed_batch_rows=20"])
        deadline = time.time() + 60
        while time.time() < deadline:
            st, doc = s.client.request("GET", "/feed")
            if st == 200 and doc["result"]["backfill"]["rows"] > 0:
                break
            time.sleep(0.01)
        s.kill()
        cur = conn.cursor()
        cur.execute("""DELETE FROM "Memory" WHERE id LIKE 'm1%'""")  # gone before the copy starts again
        # Writers run on while vectord is killed and restarted in follow.
        stop = threading.Event()

        def writer():
            w = psycopg2.connect(dsn)
            w.autocommit = True
            i = 10000
            while not stop.is_set():
                w.cursor().execute(f"""INSERT INTO "Memory" (id, "userId", content, embedding)
                                       VALUES ('w{i}', 'u', 'x', {emb_sql(str(i))})""")
                w.cursor().execute(f"""UPDATE "Memory" SET content = 'v{i}' WHERE id = 'm2{i % 100}'""")
                i += 1
                time.sleep(0.005)  # a steady stream, bounded for slow (sanitizer) builds
            w.close()

        t = threading.Thread(target=writer)
        t.start()
        try:
            s = logical_server(dsn, data)
            wait_applied(s.client, conn, timeout=180)
            assert "dropped its replication slot to start over" in s.logs()
            time.sleep(0.5)
            s.kill()
            s = logical_server(dsn, data)
            time.sleep(0.5)
        finally:
            stop.set()
            t.join()
        try:
            wait_applied(s.client, conn, timeout=180)
            assert_matches_table(s.client, conn)
        finally:
            s.stop()


def test_postgres_restart_and_an_idle_transaction_do_not_stall_it(pgl, ldb):
    conn, dsn = ldb
    insert_rows(conn, 0, 50)
    with tempfile.TemporaryDirectory() as d:
        s = logical_server(dsn, os.path.join(d, "data"))
        try:
            c = s.client
            wait_applied(c, conn)
            # An idle-in-transaction session holding an xid: the outbox source
            # would wait for it; the stream does not.
            idle = psycopg2.connect(dsn)
            idle.cursor().execute("SELECT pg_current_xact_id()")
            t0 = time.time()
            insert_rows(conn, 50, 60)
            wait_applied(c, conn, timeout=10)
            assert time.time() - t0 < 5
            assert c.ok("GET", "/feed")["blocked_by"] is None
            idle.rollback()
            idle.close()
            conn.close()
            pgl.stop("immediate")  # a crash: the slot's confirmed position may go back; nothing is applied twice
            pgl.start()
            conn = pgl.connect()
            conn.close()
            conn = psycopg2.connect(dsn)
            conn.autocommit = True
            insert_rows(conn, 60, 80)
            wait_applied(c, conn, timeout=90)
            assert_matches_table(c, conn)
            assert c.ok("GET", "/feed")["reconnects"] >= 1
        finally:
            s.stop()
            conn.close()


def test_reconciliation_and_ids_that_need_quoting(ldb):
    conn, dsn = ldb
    insert_rows(conn, 0, 100)
    cur = conn.cursor()
    # Ids the row read must pass through JSON and a cast intact.
    cur.execute(f"""INSERT INTO "Memory" (id, "userId", embedding)
                    VALUES ('q"1', 'u', {emb_sql('1')}), ('b\\1', 'u', {emb_sql('2')}), ('é ü', 'u', {emb_sql('3')})""")
    with tempfile.TemporaryDirectory() as d:
        s = logical_server(dsn, os.path.join(d, "data"))
        try:
            c = s.client
            wait_applied(c, conn)
            cur.execute("""UPDATE "Memory" SET content = 'x' WHERE id IN ('q"1', 'b\\1', 'é ü')""")
            cur.execute("""DELETE FROM "Memory" WHERE id = 'm7'""")
            wait_applied(c, conn)
            assert_matches_table(c, conn)
            assert c.ok("POST", "/feed/reconcile")["in_sync"]
            c.ok("POST", "/collections/memories/points/delete", {"ids": ["m5"]})  # drift behind the feed's back
            r = c.ok("POST", "/feed/reconcile?repair=true")
            assert r["missing"] == 1 and r["repaired"] == 1 and r["in_sync_after_repair"], r
            assert_matches_table(c, conn)
        finally:
            s.stop()


def feed_error(client, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        st, doc = client.request("GET", "/feed")
        if st == 200 and doc["result"]["last_error"]:
            return doc["result"]["last_error"]
        time.sleep(0.05)
    raise AssertionError("no feed error")


def test_set_up_errors_name_their_fix(ldb):
    conn, dsn = ldb
    cur = conn.cursor()
    with tempfile.TemporaryDirectory() as d:
        s = logical_server(dsn, os.path.join(d, "a"), ["--set", "feed_publication=nope"])
        try:
            assert 'CREATE PUBLICATION "nope"' in feed_error(s.client)
        finally:
            s.stop()
        cur.execute('CREATE TABLE "Other" (id text PRIMARY KEY, embedding text)')
        cur.execute('CREATE PUBLICATION other FOR TABLE "Other"')
        s = logical_server(dsn, os.path.join(d, "b"), ["--set", "feed_publication=other"])
        try:
            assert 'ALTER PUBLICATION "other" ADD TABLE' in feed_error(s.client)
        finally:
            s.stop()
        cur.execute("CREATE ROLE norepl LOGIN")
        cur.execute('GRANT SELECT ON "Memory" TO norepl')
        s = logical_server(dsn.replace("user=postgres", "user=norepl"), os.path.join(d, "c"))
        try:
            assert "ALTER ROLE norepl REPLICATION" in feed_error(s.client)
            assert s.client.request("GET", "/healthz")[0] == 200
        finally:
            s.stop()
