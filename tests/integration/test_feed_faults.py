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


# Where the bytes from the server fall on a connection of the feed (measured
# with FaultProxy.trace against PostgreSQL 15; the exact figures differ a
# little between versions, the stages do not): 1 answers the SSL request,
# about 410 ends the start-up (authentication, parameters), then come the
# three column-type look-ups (~90 each, to ~680), the payload column list
# (~810), the privilege and trigger check (~1060), the position table's
# privileges (~1280), LISTEN (~1310), the backfill's start position (~1400)
# and the backfill pages (~8 KB reads, ~65 KB a page for the rows below), the
# next one read ahead while one is applied.
CUT_WHILE_CONNECTING = [0, 1, 200, 450, 700, 900, 1100]
CUT_AFTER_CONNECTING = [1320, 1420, 5000, 100000, 160000]


def test_connections_cut_at_every_stage_still_converge(db, proxy):
    conn, dsn = db
    insert_rows(conn, 0, 1500)
    proxy.plan = CUT_WHILE_CONNECTING + CUT_AFTER_CONNECTING
    planned = len(proxy.plan)
    with tempfile.TemporaryDirectory() as d:
        s = feed_server(proxy.dsn(dsn), os.path.join(d, "data"))
        try:
            c = s.client
            f = wait_caught_up(c, conn)
            assert proxy.accepted >= planned and not proxy.plan, proxy.accepted
            assert f["reconnects"] >= len(CUT_AFTER_CONNECTING), f
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
    """While the backfill is unfinished (here cut mid-page, and every
    reconnect refused) the feed holds a bulk load, which spaces the
    size-triggered checkpoints out; done, it lets go."""
    conn, dsn = db
    insert_rows(conn, 0, 1500)
    proxy.plan = [5000] + [0] * 400
    with tempfile.TemporaryDirectory() as d:
        s = feed_server(proxy.dsn(dsn), os.path.join(d, "data"))
        try:
            c = s.client
            f = feed_status(c, lambda f: f["reconnects"] >= 1 and not f["connected"], timeout=30)
            assert not f["backfill"]["done"], f
            assert bulk_loads(c) == 1
            proxy.plan = []
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
