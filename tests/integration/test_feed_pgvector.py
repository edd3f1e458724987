"""The pgvector path of ADR-003 (issue 19, item 9), as docs/MIGRATION.md
writes it: ALTER TABLE "Memory" ADD COLUMN "embedding_vector" vector(N),
UPDATE … SET "embedding_vector" = "embedding"::vector, then feed from that
column. The default payload leaves out both embedding columns: the one fed
from, the old one named in feed_payload_exclude, and any pgvector column.

Needs the pgvector extension in the test cluster's PostgreSQL (Debian 12 does
not package it; docs/MIGRATION.md says how to build it): skipped otherwise."""
import json
import os
import tempfile
from urllib.parse import quote

import pytest

psycopg2 = pytest.importorskip("psycopg2", reason="python3-psycopg2 is needed for the feed tests")
from test_feed import DIM, db, emb_sql, feed_server, insert_rows, pg, wait_caught_up  # noqa: E402,F401


def add_vector_column(conn):
    cur = conn.cursor()
    try:
        cur.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except psycopg2.Error as e:
        pytest.skip("the pgvector extension is not installed in this PostgreSQL (Debian 12 does not "
                    f"package postgresql-15-pgvector; docs/MIGRATION.md builds it): {e.pgerror.strip()}")
    cur.execute(f'ALTER TABLE "Memory" ADD COLUMN "embedding_vector" vector({DIM})')
    cur.execute('UPDATE "Memory" SET "embedding_vector" = "embedding"::vector')


def points_match(client, conn):
    cur = conn.cursor()
    cur.execute('SELECT id, "userId", content, "embedding_vector"::text FROM "Memory"')
    rows = cur.fetchall()
    assert client.ok("GET", "/collections/memories")["points_count"] == len(rows)
    for rid, user, content, vec in rows:
        p = client.ok("GET", f"/collections/memories/points/{quote(rid, safe='')}?with_vector=true")
        assert p["vector"] == [float(x) for x in json.loads(vec)], rid
        assert p["payload"] == {"id": rid, "userId": user, "content": content,
                                "updatedAt": p["payload"]["updatedAt"]}, p["payload"]


def test_feed_from_a_pgvector_column_leaves_both_embeddings_out_of_the_payload(db):
    conn, dsn = db
    insert_rows(conn, 0, 200)
    add_vector_column(conn)
    with tempfile.TemporaryDirectory() as d:
        s = feed_server(dsn, os.path.join(d, "data"), ["--set", "feed_embedding_column=embedding_vector",
                                                       "--set", "feed_payload_exclude=embedding"])
        try:
            wait_caught_up(s.client, conn)
            points_match(s.client, conn)
            # Dual writes (ADR-003 phase 2): the application writes both columns.
            cur = conn.cursor()
            cur.execute(f'''INSERT INTO "Memory" (id, "userId", content, embedding, embedding_vector)
                            SELECT 'n' || i, 'u1', 'new ' || i, e, e::vector
                            FROM (SELECT i, {emb_sql('i + 1000')} AS e FROM generate_series(0, 19) i) x''')
            cur.execute('''UPDATE "Memory" SET "embedding_vector" = '[1,2,3,4,5,6,7,8]', content = 'moved'
                           WHERE id = 'm7' ''')
            cur.execute('''DELETE FROM "Memory" WHERE id = 'm8' ''')
            wait_caught_up(s.client, conn)
            points_match(s.client, conn)
            hits = s.client.ok("POST", "/collections/memories/search",
                               {"vector": [1, 2, 3, 4, 5, 6, 7, 8], "k": 1})
            assert hits[0]["id"] == "m7" and hits[0]["score"] == 0, hits
        finally:
            s.stop()


def test_pgvector_columns_are_never_payload_even_when_feeding_from_the_json_column(db):
    conn, dsn = db
    insert_rows(conn, 0, 20)
    add_vector_column(conn)
    with tempfile.TemporaryDirectory() as d:
        s = feed_server(dsn, os.path.join(d, "data"))
        try:
            wait_caught_up(s.client, conn)
            p = s.client.ok("GET", "/collections/memories/points/m3")
            assert set(p["payload"]) == {"id", "userId", "content", "updatedAt"}, p["payload"]
        finally:
            s.stop()
