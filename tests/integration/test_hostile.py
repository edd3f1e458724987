"""What goes in comes out exactly (issue 18, items 6-10): bytes that would
turn two inputs into one, or make an answer that is not JSON, are refused at
the edge with 400 naming the field; and what collection info prints is
accepted back. Each case reproduces a defect found by outside testing."""
import json

import pytest


@pytest.fixture
def coll(client):
    client.ok("PUT", "/collections/h1", {"dim": 2, "metric": "l2"})
    return client


def count(client):
    return client.ok("GET", "/collections/h1")["points_count"]


def test_nul_in_ids_is_refused_and_two_ids_never_become_one(coll):
    e = coll.error("PUT", "/collections/h1/points",
                   '{"points":[{"id":"zz\\u0000one","vector":[1,2]},{"id":"zz\\u0000two","vector":[1,2]}]}',
                   400, "invalid_request")
    assert "points[0].id" in e["message"] and "NUL" in e["message"], e
    assert count(coll) == 0
    # A raw NUL byte inside a string, and a NUL in a payload string, too.
    coll.error("PUT", "/collections/h1/points", b'{"points":[{"id":"a\x00b","vector":[1,2]}]}', 400)
    e = coll.error("PUT", "/collections/h1/points",
                   '{"points":[{"id":"a","vector":[1,2],"payload":{"s":"x\\u0000y"}}]}', 400)
    assert "points[0].payload.s" in e["message"], e
    assert count(coll) == 0


def test_nul_in_payload_keys_is_a_nul_not_a_duplicate_key(coll):
    e = coll.error("PUT", "/collections/h1/points",
                   '{"points":[{"id":"a","vector":[1,2],"payload":{"k\\u0000a":1,"k\\u0000b":2}}]}',
                   400, "invalid_request")
    assert "a key in points[0].payload" in e["message"] and "twice" not in e["message"], e


def test_an_escaped_nul_in_the_path_names_nothing(coll):
    coll.error("GET", "/collections/h1%00junk", None, 400, "invalid_request")
    coll.error("DELETE", "/collections/h1%00junk", None, 400, "invalid_request")
    assert coll.ok("GET", "/collections/h1")["name"] == "h1", "the DELETE must not have dropped h1"


def test_invalid_utf8_is_refused_so_every_answer_is_json(coll):
    e = coll.error("PUT", "/collections/h1/points", b'{"points":[{"id":"\xff\xfe","vector":[1,2]}]}', 400,
                   "malformed_json")
    assert "points[0].id" in e["message"] and "UTF-8" in e["message"], e
    e = coll.error("PUT", "/collections/h1/points",
                   b'{"points":[{"id":"ok","vector":[1,2],"payload":{"s":"\xc0\xaf"}}]}', 400, "malformed_json")
    assert "points[0].payload.s" in e["message"], e  # an overlong '/' is not UTF-8 either
    coll.error("GET", "/collections/h1/points/%ff%fe", None, 400, "invalid_request")
    coll.error("GET", "/feed?name=%00x", None, 400, "invalid_request")  # query arguments too
    coll.error("GET", "/collections/h1?x=%C0%AF", None, 400, "invalid_request")
    # Valid multi-byte UTF-8 goes in and comes out exactly.
    coll.ok("PUT", "/collections/h1/points",
            '{"points":[{"id":"m\u00e9moire-\U0001F600","vector":[1,2],"payload":{"s":"\u65e5\u672c"}}]}'
            .encode())
    st, raw, _ = coll.request("GET", "/collections/h1/points/m%C3%A9moire-%F0%9F%98%80", raw=True)
    assert st == 200, raw
    p = json.loads(raw.decode("utf-8"))["result"]
    assert p["id"] == "m\u00e9moire-\U0001F600" and p["payload"] == {"s": "\u65e5\u672c"}
    assert count(coll) == 1


def test_an_id_ending_in_slash_is_its_own_point(coll):
    coll.ok("PUT", "/collections/h1/points",
            {"points": [{"id": "x", "vector": [1, 2]}, {"id": "x/", "vector": [3, 4]}]})
    assert coll.ok("GET", "/collections/h1/points/x%2F")["id"] == "x/"
    assert coll.ok("GET", "/collections/h1/points/x")["id"] == "x"
    # A literal trailing slash still means the route without it.
    assert coll.ok("GET", "/collections/h1/")["name"] == "h1"


def test_bytes_after_the_document_are_refused(coll):
    coll.error("POST", "/collections/h1/search", b'{"vector":[1,2],"k":1}\x00\x00junk', 400, "malformed_json")
    coll.error("POST", "/collections/h1/search", b'{"vector":[1,2],"k":1} {"k":2}', 400, "malformed_json")


def test_a_field_has_one_payload_index(coll):
    coll.ok("PUT", "/collections/h1/payload_indexes", {"field": "userId", "type": "keyword"})
    e = coll.error("PUT", "/collections/h1/payload_indexes", {"field": "userId", "type": "numeric"}, 409,
                   "collection_exists")
    assert "userId" in e["message"] and "keyword" in e["message"], e
    st, raw, _ = coll.request("GET", "/collections/h1", raw=True)
    assert raw.count(b'"userId"') == 1, raw  # info never prints a key twice
    assert coll.ok("GET", "/collections/h1")["payload_indexes"] == {"userId": "keyword"}


@pytest.mark.parametrize("index", [{"type": "ivf"}, {"type": "ivf", "nlist": 16, "nprobe": 4},
                                   {"type": "hnsw", "m": 8}, {"type": "flat"}])
def test_the_index_that_info_prints_is_accepted_back(client, index):
    client.ok("PUT", "/collections/a", {"dim": 4, "index": index})
    printed = client.ok("GET", "/collections/a")["index"]
    client.ok("PUT", "/collections/b", {"dim": 4, "index": printed})
    assert client.ok("GET", "/collections/b")["index"] == printed


def test_number_errors_tell_what_was_sent(coll):
    e = coll.error("POST", "/collections/h1/search", '{"vector":[1,2],"k":1e5000}', 400, "out_of_range")
    assert "fraction" not in e["message"] and "beyond the range of a double" in e["message"], e
    e = coll.error("POST", "/collections/h1/search", '{"vector":[1,2],"k":2.5}', 400, "invalid_request")
    assert "fraction" in e["message"], e
    e = coll.error("PUT", "/collections/h1/points",
                   '{"points":[{"id":1,"vector":[1,2],"version":9007199254740993}]}', 400, "out_of_range")
    assert "2^53" in e["message"], e
    e = coll.error("PUT", "/collections/h1/points", '{"points":[{"id":9007199254740993,"vector":[1,2]}]}', 400,
                   "invalid_id")
    assert "2^53" in e["message"], e


def test_a_delete_remembers_the_version_so_stale_writes_stay_ignored(tmp_path):
    """Issue 18, item 11: delete a v10 point, then a stale v3 upsert used to
    bring it back. The delete keeps the version (bounded: the last 32,768
    deletes of versioned points per shard), in snapshots and through replay.
    The rule is the live point's: lower is skipped, equal or higher applies."""
    from conftest import Server
    data = str(tmp_path / "data")
    s = Server(data_dir=data)
    try:
        c = s.client
        c.ok("PUT", "/collections/v", {"dim": 2, "metric": "l2", "shards": 2})
        up = lambda pid, v, x=1.0: c.ok("PUT", "/collections/v/points",
                                       {"points": [{"id": pid, "vector": [x, 0], "version": v}]})
        up(1, 10)
        up("s1", 10)
        up(2, 5)
        c.ok("POST", "/collections/v/points/delete", {"ids": [1, "s1"]})
        c.ok("POST", "/collections/v/points/delete", {"filter": {"must": [{"key": "x", "match": {"value": "nope"}}]}})
        for pid in (1, "s1"):
            assert up(pid, 3)["skipped_stale"] == 1
            assert up(pid, 9)["skipped_stale"] == 1
        assert c.request("GET", "/collections/v/points/1")[0] == 404
        # Delete by filter remembers too.
        c.ok("PUT", "/collections/v/points", {"points": [{"id": 3, "vector": [1, 1], "version": 7, "payload": {"g": "a"}}]})
        c.ok("POST", "/collections/v/points/delete", {"filter": {"must": [{"key": "g", "match": {"value": "a"}}]}})
        assert up(3, 6)["skipped_stale"] == 1
        s.kill()  # the WAL replay rebuilds what deletes remember
        s = Server(data_dir=data)
        c = s.client
        assert up(1, 9)["skipped_stale"] == 1 and up(3, 6)["skipped_stale"] == 1
        c.ok("POST", "/admin/checkpoint")
        s.kill()  # and so does the snapshot
        s = Server(data_dir=data)
        c = s.client
        assert up("s1", 4)["skipped_stale"] == 1
        # A newer write brings a point back, and then it is an ordinary point.
        assert up(1, 11)["skipped_stale"] == 0
        assert c.ok("GET", "/collections/v/points/1")["version"] == 11
        assert up(1, 10)["skipped_stale"] == 1
        # An equal version applies, as it would to the live point.
        c.ok("POST", "/collections/v/points/delete", {"ids": [2]})
        assert up(2, 5)["skipped_stale"] == 0
        # Without a version a write always applies, deleted or not.
        r = c.ok("PUT", "/collections/v/points", {"points": [{"id": "s1", "vector": [0, 1]}]})
        assert r["skipped_stale"] == 0 and c.request("GET", "/collections/v/points/s1")[0] == 200
    finally:
        s.stop()
