#!/usr/bin/python3
"""The Postgres feed: backfill rows/s, and end-to-end latency from a commit in
Postgres to the row being searchable in vectord, under a steady insert load.

  bench/feed.py [--rows 100000] [--dim 1536] [--rate 50] [--seconds 20]
                [--vectord build-release/vectord]

Starts a throwaway PostgreSQL cluster (tests/integration/pg.py; Debian's
postgresql, fsync off: the bench measures vectord, not Postgres' disk), fills
"Memory" with --rows rows whose embedding is a JSON array text of --dim
floats (generated in SQL), applies deploy/sql/, then starts vectord with the
feed and times the backfill (from vectord's start to GET /feed reporting the
backfill done). Then a writer inserts --rate rows per second, one transaction
each, for --seconds; after each commit a second client polls GET
/collections/memories/points/{id} every millisecond until it answers 200:
the latency is commit to visible. Prints markdown tables; asserts nothing.
"""
import argparse
import json
import os
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

import psycopg2  # noqa: E402


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100000)
    ap.add_argument("--dim", type=int, default=1536)
    ap.add_argument("--rate", type=float, default=50)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--vectord", default=os.path.join(ROOT, "build-release", "vectord"))
    a = ap.parse_args()

    pg = Postgres()
    tmp = tempfile.mkdtemp(prefix="vectord-feed-bench-")
    proc = None
    try:
        conn = pg.connect()
        cur = conn.cursor()
        cur.execute('''CREATE TABLE "Memory" (id text PRIMARY KEY, "userId" text NOT NULL, "agentId" text,
                        type text, content text, embedding text NOT NULL,
                        "createdAt" timestamptz NOT NULL DEFAULT now(),
                        "updatedAt" timestamptz NOT NULL DEFAULT clock_timestamp())''')
        t = time.time()
        for lo in range(0, a.rows, 5000):
            hi = min(lo + 5000, a.rows)
            cur.execute(f'''INSERT INTO "Memory" (id, "userId", "agentId", type, content, embedding)
                SELECT 'mem_' || i, 'u' || (i % 1000), 'a' || (i % 50), 'fact', 'memory ' || i,
                       (SELECT json_agg(round((random() - 0.5)::numeric, 6)) FROM generate_series(1, {a.dim}) WHERE i >= 0)::text
                FROM generate_series({lo}, {hi - 1}) i''')
        fill_s = time.time() - t
        cur.execute('''SELECT pg_size_pretty(pg_total_relation_size('"Memory"'))''')
        size = cur.fetchone()[0]
        pg.apply_sql_files(conn)

        log = open(os.path.join(tmp, "vectord.log"), "w+")
        t0 = time.time()
        proc = subprocess.Popen([a.vectord, "--listen", "127.0.0.1:0", "--data-dir", os.path.join(tmp, "data"),
                                 "--set", f"feed_dsn={pg.dsn}", "--set", f"feed_dim={a.dim}"],
                                stdout=log, stderr=log)
        port = None
        while port is None:
            text = open(log.name).read()
            m = re.search(r'addr=127\.0\.0\.1:(\d+)', text)
            if m and 'msg="ready"' in text:
                port = int(m.group(1))
            time.sleep(0.01)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

        def get(path):
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read()

        while True:
            st, body = get("/feed")
            f = json.loads(body)["result"]
            if f["backfill"]["done"]:
                break
            time.sleep(0.05)
        backfill_s = time.time() - t0

        # Steady inserts, one transaction each; time commit -> visible.
        lat = []
        w = psycopg2.connect(pg.dsn)
        w.autocommit = True
        wc = w.cursor()
        vec = json.dumps([round((k % 97) / 97 - 0.5, 6) for k in range(a.dim)])
        n = int(a.rate * a.seconds)
        start = time.time()
        for i in range(n):
            due = start + i / a.rate
            now = time.time()
            if due > now:
                time.sleep(due - now)
            rid = f"live_{i}"
            wc.execute('''INSERT INTO "Memory" (id, "userId", type, content, embedding)
                          VALUES (%s, 'u1', 'fact', 'live', %s)''', (rid, vec))
            committed = time.time()
            while get(f"/collections/memories/points/{rid}")[0] != 200:
                time.sleep(0.001)
            lat.append(time.time() - committed)
        st, body = get("/feed")
        f = json.loads(body)["result"]
        print(f"### Postgres feed, {a.rows:,} rows × {a.dim} floats (JSON text in Postgres: {size}), "
              f"load average {os.getloadavg()[0]:.2f}\n")
        print("| what | figure |\n|---|---:|")
        print(f"| fill the table in SQL (not vectord) | {fill_s:.1f} s |")
        print(f"| backfill: vectord start to backfill done | {backfill_s:.1f} s |")
        print(f"| backfill rate | {a.rows / backfill_s:,.0f} rows/s |")
        print(f"| follow: {n} inserts at {a.rate:g}/s, commit → visible p50 | {pct(lat, 0.5) * 1e3:.1f} ms |")
        print(f"| p90 / p99 / max | {pct(lat, 0.9) * 1e3:.1f} / {pct(lat, 0.99) * 1e3:.1f} / {max(lat) * 1e3:.1f} ms |")
        print(f"| rows applied / rejected | {f['rows_applied']:,} / {f['rows_rejected']} |\n")
        w.close()
        c.close()
    finally:
        if proc:
            proc.terminate()
            proc.wait()
        pg.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
