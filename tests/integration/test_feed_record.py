"""Postgres stays the record (issue 19): what the feed reads is the row as
it is now, in commit order, and is applied whatever its version says; the
reconciliation compares content, not only versions, and its repair
converges; TRUNCATE is captured and applied. Against a real PostgreSQL
(tests/integration/pg.py)."""
import contextlib
import json
import os
import subprocess
import tempfile
import time

import pytest

ROOT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from test_feed import (DIM, assert_matches_table, db, emb_sql, feed_server, insert_rows,  # noqa: F401
                       pg, wait_caught_up)

psycopg2 = pytest.importorskip("psycopg2", reason="python3-psycopg2 is needed for the feed tests")


@contextlib.contextmanager
def following(db, rows, extra=()):
    """A vectord whose feed has backfilled `rows` rows of "Memory": (server, conn, dsn)."""
    conn, dsn = db
    insert_rows(conn, 0, rows)
    with tempfile.TemporaryDirectory() as d:
        s = feed_server(dsn, os.path.join(d, "data"), list(extra))
        try:
            wait_caught_up(s.client, conn)
            yield s, conn, dsn
        finally:
            s.stop()


def test_a_row_written_with_an_older_version_is_still_applied(db):
    """The issue's two cases: a version set back by hand, and now() taken at
    a transaction's start by a transaction that commits last (Prisma's
    @updatedAt from several pods' clocks gives the same). Postgres holds the
    last committed contents; vectord must too, userId included."""
    with following(db, 20) as (s, conn, dsn):
        c = s.client
        cur = conn.cursor()
        cur.execute("""UPDATE "Memory" SET "userId" = 'moved', "updatedAt" = now() - interval '1 hour'
                       WHERE id = 'm1'""")
        # A takes now() first, B updates and commits, then A updates and commits.
        a = psycopg2.connect(dsn)
        b = psycopg2.connect(dsn)
        b.autocommit = True
        ca = a.cursor()
        ca.execute("SELECT now()")
        b.cursor().execute("""UPDATE "Memory" SET "userId" = 'by-b', "updatedAt" = now() WHERE id = 'm2'""")
        wait_caught_up(c, conn)
        assert c.ok("GET", "/collections/memories/points/m2")["payload"]["userId"] == "by-b"
        time.sleep(0.3)
        ca.execute("""UPDATE "Memory" SET "userId" = 'by-a', "updatedAt" = now() WHERE id = 'm2'""")
        a.commit()
        a.close()
        b.close()
        wait_caught_up(c, conn)
        assert c.ok("GET", "/collections/memories/points/m1")["payload"]["userId"] == "moved"
        assert c.ok("GET", "/collections/memories/points/m2")["payload"]["userId"] == "by-a"
        assert_matches_table(c, conn)
        # Only the point's own userId filter finds it.
        hits = c.ok("POST", "/collections/memories/search",
                    {"vector": [1.0] * DIM, "k": 20, "filter": {"must": [{"key": "userId", "match": {"value": "by-b"}}]}})
        assert hits == [], hits


def test_api_writes_keep_their_version_guard_and_the_feed_overrides_them(db):
    """How the two kinds of writes meet: an API upsert older than the stored
    point is skipped (the guard), one newer is taken until the row changes
    in Postgres, whose contents then win."""
    with following(db, 5) as (s, conn, dsn):
        c = s.client
        v = c.ok("GET", "/collections/memories/points/m1")["version"]
        r = c.ok("PUT", "/collections/memories/points",
                 {"points": [{"id": "m1", "vector": [0.5] * DIM, "payload": {"userId": "api-old"}, "version": v - 1}]})
        assert r["skipped_stale"] == 1, r
        r = c.ok("PUT", "/collections/memories/points",
                 {"points": [{"id": "m1", "vector": [0.5] * DIM, "payload": {"userId": "api-new"}, "version": v + 10**12}]})
        assert r["updated"] == 1, r
        assert c.ok("GET", "/collections/memories/points/m1")["payload"]["userId"] == "api-new"
        conn.cursor().execute("""UPDATE "Memory" SET content = 'pg wins' WHERE id = 'm1'""")
        wait_caught_up(c, conn)
        assert c.ok("GET", "/collections/memories/points/m1")["payload"]["content"] == "pg wins"
        assert_matches_table(c, conn)


def run_reconcile(port, repair):
    args = [os.path.join(ROOT_DIR, "scripts", "vectord-reconcile")] + (["--repair"] if repair else [])
    r = subprocess.run(args + [f"http://127.0.0.1:{port}"], capture_output=True, text=True, timeout=120)
    return r.returncode, json.loads(r.stdout)["result"]


def test_reconciliation_compares_content_and_its_repair_converges(db):
    """A point changed over the API at the row's own version, and one given
    a newer version than its row: versions alone read both as in sync or
    as unrepairable; compared by content, both are found, repaired to the
    row exactly, and the second run is in sync."""
    with following(db, 50) as (s, conn, dsn):
        c = s.client
        code, r = run_reconcile(s.port, False)
        assert code == 0 and r["in_sync"], r
        p = c.ok("GET", "/collections/memories/points/m3?with_vector=true")
        c.ok("PUT", "/collections/memories/points",
             {"points": [{"id": "m3", "vector": p["vector"], "payload": dict(p["payload"], userId="wrong"),
                          "version": p["version"]}]})
        p = c.ok("GET", "/collections/memories/points/m4?with_vector=true")
        c.ok("PUT", "/collections/memories/points",
             {"points": [{"id": "m4", "vector": [0.25] * DIM, "payload": p["payload"],
                          "version": p["version"] + 1}]})
        code, r = run_reconcile(s.port, False)
        assert code == 1 and r["stale"] == 2 and sorted(r["examples"]["stale"]) == ["m3", "m4"], r
        code, r = run_reconcile(s.port, True)
        assert code == 0 and r["repaired"] == 2 and r["in_sync_after_repair"], r
        code, r = run_reconcile(s.port, False)
        assert code == 0 and r["in_sync"], r
        assert_matches_table(c, conn)


def test_a_row_that_became_invalid_takes_its_point_out(db):
    """A row whose current contents cannot be a point (its embedding set to
    NULL) is rejected, and the point of its older contents is deleted
    rather than served as if it were the row."""
    with following(db, 5) as (s, conn, dsn):
        c = s.client
        conn.cursor().execute("""UPDATE "Memory" SET embedding = NULL WHERE id = 'm2'""")
        f = wait_caught_up(c, conn)
        assert f["rows_rejected"] == 1, f
        c.error("GET", "/collections/memories/points/m2", status=404, code="point_not_found")
        r = c.ok("POST", "/feed/reconcile")
        assert r["in_sync"] and r["invalid"] == 1 and r["examples"]["invalid"] == ["m2"], r


def test_truncate_is_captured_and_applied(db):
    with following(db, 300) as (s, conn, dsn):
        c = s.client
        assert c.ok("GET", "/collections/memories")["points_count"] == 300
        cur = conn.cursor()
        cur.execute('TRUNCATE "Memory"')
        wait_caught_up(c, conn)
        assert c.ok("GET", "/collections/memories")["points_count"] == 0
        # Rows before and after a TRUNCATE in one transaction, and a row
        # written after it by a transaction that began before it.
        insert_rows(conn, 0, 10)
        early = psycopg2.connect(dsn)
        ce = early.cursor()
        ce.execute("SELECT pg_current_xact_id()")  # its xid is below the TRUNCATE's
        cur.execute("BEGIN")
        insert_rows(conn, 10, 20)
        cur.execute('TRUNCATE "Memory"')
        insert_rows(conn, 20, 25)
        cur.execute("COMMIT")
        ce.execute(f"""INSERT INTO "Memory" (id, "userId", embedding) VALUES ('late', 'u', {emb_sql('3')})""")
        early.commit()
        early.close()
        wait_caught_up(c, conn)
        assert_matches_table(c, conn)
        assert c.ok("GET", "/collections/memories")["points_count"] == 6


def metric_value(c, name):
    import re
    text = c.request("GET", "/metrics")[1]
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


def wait_for(pred, timeout=20, what="the condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_documented_grants_work_and_a_missing_one_is_named(db):
    """The role MIGRATION.md describes works (the position row is written);
    without SELECT on vectord_feed_position the position cannot be written:
    /feed, the metrics and the log say which privilege is missing, and it
    all clears once the grant is made."""
    conn, dsn = db
    insert_rows(conn, 0, 10)
    role = f"vd_feed_{os.getpid()}"
    cur = conn.cursor()
    cur.execute(f"CREATE ROLE {role} LOGIN")
    try:
        cur.execute(f"""GRANT SELECT ON "Memory", vectord_outbox TO {role}""")
        cur.execute(f"GRANT INSERT, UPDATE ON vectord_feed_position TO {role}")  # SELECT forgotten
        role_dsn = dsn.replace("user=postgres", f"user={role}")
        with tempfile.TemporaryDirectory() as d:
            s = feed_server(role_dsn, os.path.join(d, "data"), ["--set", "feed_position_ready_s=1"])
            try:
                c = s.client
                f = wait_caught_up(c, conn)
                f = wait_for(lambda: (lambda g: g if g["position"]["recorded"] is False else None)(
                    c.ok("GET", "/feed")), what="position.recorded false")
                assert "SELECT on vectord_feed_position" in f["position"]["error"], f
                assert f"GRANT SELECT ON vectord_feed_position TO {role}" in f["position"]["error"], f
                assert metric_value(c, 'vectord_feed_position_recorded{feed="vectord"}') == 0
                assert "SELECT on vectord_feed_position" in s.logs()
                err = wait_for(lambda: (lambda r: r[1] if r[0] == 503 else None)(c.request("GET", "/readyz")),
                               what="/readyz 503")
                assert "feed_position_ready_s" in err["error"]["message"], err
                cur.execute(f"GRANT SELECT ON vectord_feed_position TO {role}")
                insert_rows(conn, 10, 11)  # a round that writes the position
                wait_for(lambda: c.ok("GET", "/feed")["position"]["recorded"], what="position.recorded")
                f = c.ok("GET", "/feed")
                assert f["position"]["error"] is None and f["last_error"] is None, f
                assert metric_value(c, 'vectord_feed_position_recorded{feed="vectord"}') == 1
                assert c.request("GET", "/readyz")[0] == 200
                cur.execute("SELECT count(*) FROM vectord_feed_position WHERE feed = 'vectord'")
                assert cur.fetchone()[0] == 1
                # Without SELECT on the source table the feed cannot run at all: named too.
                cur.execute(f"""REVOKE SELECT ON "Memory" FROM {role}""")
                s.stop()
                s = feed_server(role_dsn, os.path.join(d, "data"))
                c = s.client
                f = wait_for(lambda: (lambda g: g if g["last_error"] else None)(c.ok("GET", "/feed")),
                             what="last_error")
                assert 'SELECT on "Memory"' in f["last_error"] and "GRANT" in f["last_error"], f
                cur.execute(f"""GRANT SELECT ON "Memory" TO {role}""")
                wait_for(lambda: c.ok("GET", "/feed")["last_error"] is None, timeout=30, what="the error to clear")
                wait_caught_up(c, conn)
                assert_matches_table(c, conn)
            finally:
                s.stop()
    finally:
        cur.execute(f"DROP OWNED BY {role}")
        cur.execute(f"DROP ROLE {role}")


def test_lag_counts_a_large_transaction_while_it_is_applied(db):
    """A 4,000-row transaction applied 5 rows a round: /feed and the metrics
    show the committed rows not yet applied, and their age, until done."""
    with following(db, 0, ["--set", "feed_batch_rows=5"]) as (s, conn, dsn):
        c = s.client
        insert_rows(conn, 0, 4000)
        seen_rows, seen_age = 0, 0.0
        deadline = time.time() + 120
        while time.time() < deadline:
            f = c.ok("GET", "/feed")
            seen_rows = max(seen_rows, f["lag"]["rows"])
            seen_age = max(seen_age, f["lag"]["seconds"])
            if c.ok("GET", "/collections/memories")["points_count"] == 4000:
                break
            time.sleep(0.05)
        assert seen_rows > 100 and seen_age > 0, (seen_rows, seen_age)
        f = wait_caught_up(c, conn)
        wait_for(lambda: c.ok("GET", "/feed")["lag"]["rows"] == 0, what="lag 0")


def test_an_idle_transaction_that_holds_the_feed_back_is_named(db):
    """A session idle in a transaction with an xid holds back every change
    committed after it (the feed applies finished transactions only): /feed
    names it (pid, state, age), the lag counts what waits, and when it ends
    the feed goes on at once, not at its next poll."""
    with following(db, 0, ["--set", "feed_poll_ms=10000"]) as (s, conn, dsn):
        c = s.client
        idle = psycopg2.connect(dsn)
        ci = idle.cursor()
        ci.execute("SELECT pg_backend_pid()")
        pid = ci.fetchone()[0]
        ci.execute("SELECT pg_current_xact_id()")  # holds an xid, then idles
        insert_rows(conn, 0, 3)
        f = wait_for(lambda: (lambda g: g if g.get("blocked_by") else None)(c.ok("GET", "/feed")),
                     what="blocked_by")
        b = f["blocked_by"]
        assert b["pid"] == pid and b["state"] == "idle in transaction" and b["seconds"] >= 0, f
        assert f["lag"]["rows"] == 3, f
        assert metric_value(c, 'vectord_feed_blocked{feed="vectord"}') == 1
        assert c.ok("GET", "/collections/memories")["points_count"] == 0
        time.sleep(0.5)
        t0 = time.time()
        idle.rollback()
        wait_for(lambda: c.ok("GET", "/collections/memories")["points_count"] == 3, timeout=5,
                 what="the rows after the blocker ended")
        assert time.time() - t0 < 3, "the feed waited for its poll"
        wait_for(lambda: c.ok("GET", "/feed")["blocked_by"] is None, what="blocked_by to clear")
        assert metric_value(c, 'vectord_feed_blocked{feed="vectord"}') == 0
        idle.close()
