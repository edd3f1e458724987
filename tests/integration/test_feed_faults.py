"""The feed when the connection to PostgreSQL fails at a chosen point: a
loopback proxy (faultproxy.py) sits between vectord and a real PostgreSQL
server and cuts, or stalls, the feed's connections mid-handshake, mid-query,
mid-result and while idle. Whatever the point, the feed reconnects, resumes
where its log says and ends up with exactly the table; a stalled Postgres
never keeps the server from stopping."""
import os
import tempfile
import time

import pytest

pytest.importorskip("psycopg2", reason="python3-psycopg2 is needed for the feed tests")
from faultproxy import FaultProxy  # noqa: E402
from test_feed import (assert_matches_table, db, feed_server, feed_status, insert_rows, pg,  # noqa: E402,F401
                       wait_caught_up)


@pytest.fixture
def proxy(pg):
    p = FaultProxy(pg.port)
    yield p
    p.close()


# Where the bytes from the server fall on the feed's connection
# (application_name "vectord feed"; measured with FaultProxy.trace against
# PostgreSQL 15, the exact figures differ a little between versions, the
# stages do not): about 420 ends the start-up (authentication, parameters),
# then come the three column-type look-ups (~80 each, to ~690), the payload
# column list (~890), the privilege and trigger check (~1150), the position
# table's privileges (~1360), LISTEN (~1390), the backfill's start position
# (~1480), then the follow's rounds (~470 bytes every poll).
CUT_WHILE_CONNECTING = [0, 1, 200, 450, 700, 900, 1100]
CUT_AFTER_CONNECTING = [1380, 1450, 5000]
# On a backfill reader's connection ("vectord backfill"): about 425 ends the
# start-up, ~590 the page boundaries, then the pages (~60 KB each for 200 of
# the rows below). One reader at a time, each cut resumes from the logged
# position, and 1,500 rows are ~470 KB: every budget below is reached.
CUT_READER = [0, 1, 300, 500, 20000, 100000, 250000]


def test_connections_cut_at_every_stage_still_converge(db, proxy):
    conn, dsn = db
    insert_rows(conn, 0, 1500)
    proxy.plan = CUT_WHILE_CONNECTING + CUT_AFTER_CONNECTING
    proxy.plans["vectord backfill"] = list(CUT_READER)
    with tempfile.TemporaryDirectory() as d:
        s = feed_server(proxy.dsn(dsn), os.path.join(d, "data"),
                        ["--set", "feed_backfill_connections=1", "--set", "feed_batch_rows=200"])
        try:
            c = s.client
            f = wait_caught_up(c, conn)
            deadline = time.time() + 30  # the last cut lands in the follow's rounds
            while len(proxy.cuts) < len(CUT_WHILE_CONNECTING + CUT_AFTER_CONNECTING + CUT_READER):
                assert time.time() < deadline, proxy.cuts
                time.sleep(0.05)
            assert sorted(b for n, b in proxy.cuts if n == "vectord feed") == \
                sorted(CUT_WHILE_CONNECTING + CUT_AFTER_CONNECTING), proxy.cuts
            assert sorted(b for n, b in proxy.cuts if n == "vectord backfill") == sorted(CUT_READER), proxy.cuts
            f = feed_status(c, lambda f: f["reconnects"] >= len(CUT_AFTER_CONNECTING))
            assert f["backfill"] == {"done": True, "rows": 1500}, f
            wait_caught_up(c, conn)
            assert_matches_table(c, conn)
            # Idle, waiting for a notification: the connection drops.
            before = c.ok("GET", "/feed")["reconnects"]
            proxy.cut_all()
            feed_status(c, lambda f: f["reconnects"] > before)
            insert_rows(conn, 1500, 1510)
            wait_caught_up(c, conn)
            # In the middle of a follow round's result.
            proxy.cut_after(50)
            conn.cursor().execute("""DELETE FROM "Memory" WHERE id IN ('m3', 'm4')""")
            insert_rows(conn, 1510, 1520)
            wait_caught_up(c, conn)
            assert_matches_table(c, conn)
            assert "postgres connection" in s.logs()
            assert "a backfill reader" in s.logs()
        finally:
            s.stop()


def test_two_readers_one_cut_mid_page_still_converge(db, proxy):
    """The default two readers at once: one is cut in the middle of a page
    while the other reads the next; the pages read are dropped with it, and
    the backfill resumes from the last page logged."""
    conn, dsn = db
    insert_rows(conn, 0, 1500)
    proxy.plans["vectord backfill"] = [5000]
    with tempfile.TemporaryDirectory() as d:
        s = feed_server(proxy.dsn(dsn), os.path.join(d, "data"), ["--set", "feed_batch_rows=200"])
        try:
            c = s.client
            wait_caught_up(c, conn)
            assert proxy.cuts == [("vectord backfill", 5000)], proxy.cuts
            assert_matches_table(c, conn)
            assert c.ok("GET", "/feed")["reconnects"] == 0
        finally:
            s.stop()


def test_reconciliation_losing_postgres_is_retryable(db, proxy):
    conn, dsn = db
    insert_rows(conn, 0, 200)
    with tempfile.TemporaryDirectory() as d:
        s = feed_server(proxy.dsn(dsn), os.path.join(d, "data"))
        try:
            c = s.client
            wait_caught_up(c, conn)
            proxy.cut_after(2000)  # inside the read of the source ids
            err = c.error("POST", "/feed/reconcile", status=503, code="not_ready")
            assert "postgres" in err["message"].lower(), err
            assert s.client.request("GET", "/healthz")[0] == 200
            feed_status(c, lambda f: f["connected"] and f["reconnects"] >= 1)
            r = c.ok("POST", "/feed/reconcile")
            assert r["in_sync"] and r["source_rows"] == 200, r
        finally:
            s.stop()


def bulk_loads(c):
    """vectord_bulk_loads from /metrics."""
    text = c.request("GET", "/metrics")[1]
    text = text.decode() if isinstance(text, bytes) else text
    return int(next(line.split()[1] for line in text.splitlines() if line.startswith("vectord_bulk_loads ")))


def test_a_backfill_counts_as_a_bulk_load_until_it_is_done(db, proxy):
    """While the backfill is unfinished (here its reader cut mid-page, and
    every reader connection after refused) the feed holds a bulk load, which
    spaces the size-triggered checkpoints out; done, it lets go."""
    conn, dsn = db
    insert_rows(conn, 0, 1500)
    proxy.plans["vectord backfill"] = [5000] + [0] * 400
    with tempfile.TemporaryDirectory() as d:
        s = feed_server(proxy.dsn(dsn), os.path.join(d, "data"))
        try:
            c = s.client
            f = feed_status(c, lambda f: "a backfill reader" in (f["last_error"] or ""), timeout=30)
            assert f["connected"] and not f["backfill"]["done"], f
            assert bulk_loads(c) == 1
            proxy.plans["vectord backfill"] = []
            wait_caught_up(c, conn)
            deadline = time.time() + 5  # the feed lets go right after the round that finished it
            while bulk_loads(c) and time.time() < deadline:
                time.sleep(0.05)
            assert bulk_loads(c) == 0
            assert_matches_table(c, conn)
        finally:
            s.stop()


def test_stalled_postgres_times_out_connecting_and_never_blocks_shutdown(db, proxy):
    conn, dsn = db
    insert_rows(conn, 0, 20)
    with tempfile.TemporaryDirectory() as d:
        # Connected, then Postgres stops answering in the middle of a round.
        s = feed_server(proxy.dsn(dsn), os.path.join(d, "a"))
        wait_caught_up(s.client, conn)
        proxy.stall(True)
        insert_rows(conn, 20, 30)  # the next round's query waits for an answer
        time.sleep(0.5)
        t0 = time.time()
        s.stop()
        assert time.time() - t0 < 20
        # A Postgres that accepts and never answers: the connect gives up
        # (15 s), reports it, tries again; stopping meanwhile is prompt.
        s = feed_server(proxy.dsn(dsn), os.path.join(d, "b"))
        try:
            f = feed_status(s.client, lambda f: "cannot connect" in (f["last_error"] or ""), timeout=40)
            assert not f["connected"] and not f["backfill"]["done"], f
            assert s.client.request("GET", "/healthz")[0] == 200
        finally:
            t0 = time.time()
            s.stop()
            assert time.time() - t0 < 20
        proxy.stall(False)
