#!/usr/bin/python3
"""The Postgres feed, for each source (the outbox and logical replication):
backfill rows/s, end-to-end latency from a commit in Postgres to the row being
searchable in vectord under a steady insert load, and how long a row stays
invisible while another session sits idle in a transaction.

  bench/feed.py [--rows 100000] [--dim 1536] [--rate 50] [--seconds 20]
                [--source both|outbox|logical] [--stall-s 10]
                [--vectord build-release/vectord] [--backlog-max N]
                [--data bench/data/100000-1536] [--pg-dir DIR]

Starts a throwaway PostgreSQL cluster (tests/integration/pg.py; Debian's
postgresql, fsync off: the bench measures vectord, not Postgres' disk), fills
"Memory" with --rows rows whose embedding is a JSON array text of --dim
floats, applies deploy/sql/, then starts vectord with the
feed and times the backfill (from vectord's start to GET /feed reporting the
backfill done; then, while the HNSW graph is still being built behind the
writes, recall@10 of 20 searches against exact ones, and the time until the
graph holds every row: index_backlog 0). Then a writer inserts --rate rows per second, one transaction
each, for --seconds; after each commit a second client polls GET
/collections/memories/points/{id} every millisecond until it answers 200:
the latency is commit to visible. Last, a session opens a transaction that
takes an xid and stays idle; one row is inserted and timed the same way, for
at most --stall-s; then the idle transaction ends. The cluster runs with
wal_level = logical, and has both the outbox triggers and the publication, so
the two sources see the same writes. Prints markdown tables; asserts nothing.

The embeddings: with --data (a directory of base.fvecs and query.fvecs, by
default bench/data/100000-1536 when it exists and --dim is 1536), row i holds
base vector i % n, moved by 5% gaussian noise from the second pass on
(bench_feed_rows, loaded with COPY), and the recall searches are the set's
queries; otherwise uniform random floats generated in SQL (no near
neighbours to find: recall there says little). --pg-dir keeps the cluster and
its filled table in DIR for the next run with the same --rows, --dim and
--data (a million 1536-d rows take minutes to load).
"""
import argparse
import glob
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import http.client

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from pg import Postgres  # noqa: E402
from benchlib import find_binary, read_vecs  # noqa: E402
import numpy as np  # noqa: E402

import psycopg2  # noqa: E402


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")


def start_vectord(a, pg, tmp, source):
    log = open(os.path.join(tmp, f"vectord-{source}.log"), "w+")
    proc = subprocess.Popen([a.vectord, "--listen", "127.0.0.1:0", "--data-dir", os.path.join(tmp, f"data-{source}"),
                             "--set", f"feed_dsn={pg.dsn}", "--set", f"feed_dim={a.dim}",
                             "--set", f"feed_source={source}", "--set", f"feed_name=bench_{source}",
                             *(["--set", f"index_backlog_max={a.backlog_max}"] if a.backlog_max is not None else []),
                             *[x for kv in a.set for x in ("--set", kv)]],
                            stdout=log, stderr=log)
    while True:
        text = open(log.name).read()
        m = re.search(r'addr=127\.0\.0\.1:(\d+)', text)
        if m and 'msg="ready"' in text:
            return proc, int(m.group(1))
        if proc.poll() is not None:
            raise RuntimeError(text)
        time.sleep(0.01)


def queries(a):
    """20 search vectors: the data set's first queries, or uniform random ones."""
    if not a.data:
        rng = random.Random(7)
        return [[rng.uniform(-0.5, 0.5) for _ in range(a.dim)] for _ in range(20)]
    return read_vecs(os.path.join(a.data, "query.fvecs"), np.float32)[:20].tolist()


def recall(a, c):
    """recall@10 of 20 searches (the same each time) against exact ones."""
    found = 0
    for q in queries(a):
        ids = []
        for exact in (False, True):
            c.request("POST", "/collections/memories/search", json.dumps({"vector": q, "k": 10, "exact": exact}),
                      {"Content-Type": "application/json"})
            ids.append({h["id"] for h in json.loads(c.getresponse().read())["result"]})
        found += len(ids[0] & ids[1])
    return found / 200


def catch_up(a, c, get, t0):
    """At the backfill's end: the graph's backlog and recall (the rows waiting
    for the graph are scanned exactly); the seconds from vectord's start until
    the graph holds every row; recall then, with the same searches."""
    backlog = json.loads(get("/collections/memories")[1])["result"]["index_backlog"]
    during = recall(a, c)
    while json.loads(get("/collections/memories")[1])["result"]["index_backlog"]:
        time.sleep(0.2)
    graph_s = time.time() - t0
    return {"backlog_at_done": backlog, "catch_up_recall": during, "graph_s": graph_s, "built_recall": recall(a, c)}


def run_source(a, pg, tmp, source, vec):
    t0 = time.time()
    proc, port = start_vectord(a, pg, tmp, source)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def get(path):
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()

    try:
        while True:
            st, body = get("/feed")
            if st == 200 and json.loads(body)["result"]["backfill"]["done"]:
                break
            time.sleep(0.05)
        backfill_s = time.time() - t0
        catch = catch_up(a, c, get, t0)

        def visible_after(rid, limit):
            committed = time.time()
            while get(f"/collections/memories/points/{rid}")[0] != 200:
                if time.time() - committed > limit:
                    return None
                time.sleep(0.001)
            return time.time() - committed

        # Steady inserts, one transaction each; time commit -> visible.
        lat = []
        w = psycopg2.connect(pg.dsn)
        w.autocommit = True
        wc = w.cursor()
        n = int(a.rate * a.seconds)
        start = time.time()
        for i in range(n):
            due = start + i / a.rate
            now = time.time()
            if due > now:
                time.sleep(due - now)
            rid = f"live_{source}_{i}"
            wc.execute('''INSERT INTO "Memory" (id, "userId", type, content, embedding)
                          VALUES (%s, 'u1', 'fact', 'live', %s)''', (rid, vec))
            lat.append(visible_after(rid, 60))
        # An idle transaction holding an xid, then one insert.
        idle = psycopg2.connect(pg.dsn)
        idle.cursor().execute("SELECT pg_current_xact_id()")
        rid = f"stall_{source}"
        wc.execute('''INSERT INTO "Memory" (id, "userId", type, content, embedding)
                      VALUES (%s, 'u1', 'fact', 'live', %s)''', (rid, vec))
        stall = visible_after(rid, a.stall_s)
        idle.rollback()
        idle.close()
        after = visible_after(rid, 60) if stall is None else 0.0
        st, body = get("/feed")
        f = json.loads(body)["result"]
        w.close()
        c.close()
        lat = [x for x in lat if x is not None]
        return {"backfill_s": backfill_s, **catch, "lat": lat, "stall": stall, "after": after, "feed": f, "n": n}
    finally:
        proc.terminate()
        proc.wait()
        notable = [ln for ln in open(os.path.join(tmp, f"vectord-{source}.log"))
                   if any(w in ln for w in ("level=warn", "level=error", "checkpoint", "backfill"))]
        if notable:
            print(f"vectord ({source}) log, warnings, checkpoints and the backfill:\n" + "".join(notable[:20]),
                  file=sys.stderr)


def fill(a, cur):
    """Creates and fills "Memory"; the seconds it took."""
    cur.execute('''CREATE TABLE "Memory" (id text PRIMARY KEY, "userId" text NOT NULL, "agentId" text,
                    type text, content text, embedding text NOT NULL,
                    "createdAt" timestamptz NOT NULL DEFAULT now(),
                    "updatedAt" timestamptz NOT NULL DEFAULT clock_timestamp())''')
    cur.execute(f'''ALTER TABLE "Memory" ALTER COLUMN embedding SET COMPRESSION {a.compression}''')
    t = time.time()
    if a.data:
        gen = subprocess.Popen([find_binary(os.path.join("bench", "bench_feed_rows")), os.path.join(a.data, "base.fvecs"), str(a.rows)],
                               stdout=subprocess.PIPE)
        cur.copy_expert('''COPY "Memory" (id, "userId", "agentId", type, content, embedding) FROM STDIN''',
                        gen.stdout, size=1 << 20)
        if gen.wait() != 0:
            raise RuntimeError("bench_feed_rows failed")
    else:
        for lo in range(0, a.rows, 5000):
            hi = min(lo + 5000, a.rows)
            cur.execute(f'''INSERT INTO "Memory" (id, "userId", "agentId", type, content, embedding)
                SELECT 'mem_' || i, 'u' || (i % 1000), 'a' || (i % 50), 'fact', 'memory ' || i,
                       (SELECT json_agg(round((random() - 0.5)::numeric, 6)) FROM generate_series(1, {a.dim}) WHERE i >= 0)::text
                FROM generate_series({lo}, {hi - 1}) i''')
    return time.time() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100000)
    ap.add_argument("--dim", type=int, default=1536)
    ap.add_argument("--rate", type=float, default=50)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--stall-s", type=float, default=10)
    ap.add_argument("--source", default="both", choices=("both", "outbox", "logical"))
    ap.add_argument("--vectord", default=os.path.join(ROOT, "build-release", "vectord"))
    ap.add_argument("--backlog-max", type=int, help="vectord's index_backlog_max (default: its own)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="another vectord setting, e.g. feed_batch_rows=2000")
    ap.add_argument("--data", help="a directory with base.fvecs and query.fvecs for the embeddings")
    ap.add_argument("--pg-dir", help="keep the filled cluster here, and reuse it when it matches")
    ap.add_argument("--compression", default="pglz", choices=("pglz", "lz4"),
                    help="the embedding column's TOAST compression (PostgreSQL's default is pglz)")
    a = ap.parse_args()
    default_data = os.path.join(HERE, "data", "100000-1536")
    if a.data is None and a.dim == 1536 and os.path.exists(os.path.join(default_data, "base.fvecs")):
        a.data = default_data
    if a.data:
        a.data = os.path.abspath(a.data)
    fill_key = f"rows={a.rows} dim={a.dim} data={a.data or 'uniform'} compression={a.compression}"

    # As in production: a commit's WAL is written.
    pg = Postgres(logical=True, synchronous_commit=True, keep_dir=a.pg_dir and os.path.abspath(a.pg_dir))
    tmp = tempfile.mkdtemp(prefix="vectord-feed-bench-")
    try:
        conn = pg.connect()
        cur = conn.cursor()
        cur.execute("SELECT obj_description('public.\"Memory\"'::regclass)"
                    if pg.reused else "SELECT NULL")
        fill_s = None
        if cur.fetchone()[0] == fill_key:
            # Kept from an earlier run: drop that run's follow rows and slots.
            cur.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active")
            cur.execute('''DELETE FROM "Memory" WHERE id LIKE 'live\\_%' OR id LIKE 'stall\\_%' ''')
        else:
            cur.execute('''DROP TABLE IF EXISTS "Memory" CASCADE''')
            cur.execute('''DROP PUBLICATION IF EXISTS vectord''')
            fill_s = fill(a, cur)
            cur.execute(f'''COMMENT ON TABLE "Memory" IS '{fill_key}' ''')
            pg.apply_sql_files(conn)
            for path in sorted(glob.glob(os.path.join(ROOT, "deploy", "sql", "logical", "*.sql"))):
                cur.execute(open(path).read())
        cur.execute('''SELECT pg_size_pretty(pg_total_relation_size('"Memory"'))''')
        size = cur.fetchone()[0]
        vec = json.dumps([round((k % 97) / 97 - 0.5, 6) for k in range(a.dim)])
        sources = ["outbox", "logical"] if a.source == "both" else [a.source]
        res = {s: run_source(a, pg, tmp, s, vec) for s in sources}
        print(f"### Postgres feed, {a.rows:,} rows × {a.dim} floats (JSON text in Postgres: {size}, "
              f"{a.compression}-compressed), "
              f"load average {os.getloadavg()[0]:.2f}\n")
        data = f"{a.data} (5% noise past its size)" if a.data else "uniform random floats"
        print(f"Embeddings: {data}; " +
              (f"filling the table (not vectord): {fill_s:.1f} s.\n" if fill_s is not None
               else f"the table kept in {a.pg_dir} from an earlier run.\n"))
        print("| what | " + " | ".join(sources) + " |\n|---|" + "---:|" * len(sources))

        def row(name, fn):
            print(f"| {name} | " + " | ".join(fn(res[s]) for s in sources) + " |")

        row("backfill: vectord start to backfill done", lambda r: f"{r['backfill_s']:.1f} s")
        row("backfill rate", lambda r: f"{a.rows / r['backfill_s']:,.0f} rows/s")
        row("rows waiting for the graph at the backfill's end", lambda r: f"{r['backlog_at_done']:,}")
        row("recall@10 then (20 searches vs exact)", lambda r: f"{r['catch_up_recall']:.3f}")
        row("vectord start to the graph holding every row", lambda r: f"{r['graph_s']:.1f} s")
        row("recall@10 once the graph holds every row (same searches)", lambda r: f"{r['built_recall']:.3f}")
        row(f"follow: inserts at {a.rate:g}/s, commit → visible p50",
            lambda r: f"{pct(r['lat'], 0.5) * 1e3:.1f} ms")
        row("p90 / p99 / max", lambda r: f"{pct(r['lat'], 0.9) * 1e3:.1f} / {pct(r['lat'], 0.99) * 1e3:.1f} / "
            f"{max(r['lat']) * 1e3:.1f} ms")
        row(f"an idle transaction open: commit → visible (capped at {a.stall_s:g} s)",
            lambda r: f"{r['stall'] * 1e3:.1f} ms" if r["stall"] is not None else f"not within {a.stall_s:g} s")
        row("… visible after the idle transaction ended",
            lambda r: "—" if r["stall"] is not None else f"{r['after'] * 1e3:.1f} ms")
        row("rows applied / rejected", lambda r: f"{r['feed']['rows_applied']:,} / {r['feed']['rows_rejected']}")
        print("\n| target | measured | met |\n|---|---|---|")
        for s in sources:
            rate = a.rows / res[s]["backfill_s"]
            print(f"| backfill ≥ 10,000 rows/s ({s}, {a.rows:,} rows, {a.compression}) | {rate:,.0f} rows/s | "
                  f"{'yes' if rate >= 10000 else 'no'} |")
        print()
    finally:
        pg.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
