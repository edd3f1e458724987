"""The collection a feed creates is configurable (issue 19, item 8):
feed_collection_config is a body of PUT /collections/{c} (index and its
parameters, quantization, shards, payload indexes); its payload indexes are
also added to a collection that already exists; a bad one stops the start
with a message naming the section."""
import json
import os
import subprocess
import tempfile

import pytest

from conftest import BIN, Server

psycopg2 = pytest.importorskip("psycopg2", reason="python3-psycopg2 is needed for the feed tests")
from test_feed import db, feed_server, insert_rows, pg, wait_caught_up  # noqa: E402,F401

CREATE = {"shards": 3, "index": {"type": "hnsw", "m": 8, "ef_construction": 64, "ef_search": 40},
          "quantization": {"type": "sq8", "oversampling": 4, "originals": "ram"},
          "payload_indexes": {"userId": "keyword"}}


def test_the_feed_creates_its_collection_as_configured(db):
    conn, dsn = db
    insert_rows(conn, 0, 300)
    with tempfile.TemporaryDirectory() as d:
        s = feed_server(dsn, os.path.join(d, "data"), ["--set", f"feed_collection_config={json.dumps(CREATE)}"])
        try:
            wait_caught_up(s.client, conn)
            info = s.client.ok("GET", "/collections/memories")
            assert info["points_count"] == 300 and info["shards"] == 3, info
            assert info["metric"] == "l2" and info["dim"] == 8, info
            assert info["index"] == {"type": "hnsw", "m": 8, "ef_construction": 64, "ef_search": 40,
                                     "target_recall": 0}, info  # ef_search given: the knob rules
            assert info["quantization"] == {"type": "sq8", "oversampling": 4, "originals": "ram"}, info
            assert info["payload_indexes"] == {"userId": "keyword"}, info
            hits = s.client.ok("POST", "/collections/memories/search",
                               {"vector": [1.0] * 8, "k": 5, "filter": {"must": [{"key": "userId", "match": {"value": "u3"}}]}})
            assert hits and all(h["payload"]["userId"] == "u3" for h in hits), hits
        finally:
            s.stop()


def test_payload_indexes_are_added_to_an_existing_collection(db):
    conn, dsn = db
    insert_rows(conn, 0, 50)
    with tempfile.TemporaryDirectory() as d:
        data = os.path.join(d, "data")
        s = Server(data_dir=data)
        s.client.ok("PUT", "/collections/memories", {"dim": 8, "metric": "l2", "payload_indexes": {"content": "keyword"}})
        s.stop()
        cfg = {"index": {"type": "flat"}, "payload_indexes": {"userId": "keyword", "content": "numeric"}}
        s = feed_server(dsn, data, ["--set", f"feed_collection_config={json.dumps(cfg)}"])
        try:
            wait_caught_up(s.client, conn)
            info = s.client.ok("GET", "/collections/memories")
            # userId added; content keeps the type it has (a warning says so); the index type is the collection's.
            assert info["payload_indexes"] == {"content": "keyword", "userId": "keyword"}, info
            assert info["index"]["type"] == "flat" and info["points_count"] == 50, info
        finally:
            logs = s.stop()
        assert "feed added a payload index" in logs and "field=userId" in logs
        assert "kept as it is" in logs and "field=content" in logs


@pytest.mark.parametrize("value, words", [
    ("not json", "must be a JSON object"),
    ('{"index": {"type": "annoy"}}', "unknown index type"),
    ('{"shards": 0}', "shards"),
    ('{"dim": 4}', "differs from feed_dim"),
    ('{"payload_indexes": {"userId": "fuzzy"}}', "payload_indexes"),
])
def test_a_bad_feed_collection_config_stops_the_start_naming_it(value, words):
    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run([BIN, "--data-dir", os.path.join(d, "data"), "--listen", "127.0.0.1:0",
                            "--set", "feed_dsn=host=127.0.0.1 port=1", "--set", "feed_dim=8",
                            "--set", f"feed_collection_config={value}"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2, (r.returncode, r.stderr)
        assert "feed_collection_config" in r.stderr and words in r.stderr, r.stderr
