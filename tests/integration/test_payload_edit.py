"""Changing stored points without re-sending them: payload edits (set keys,
replace, unset keys, clear) by ids or by filter, and vector updates that keep
the payload (POST /collections/{c}/points/payload, PUT .../points/vectors).
Each is one logged write applied in log order: payload indexes follow the
edit, concurrent writers lose nothing, and a crash replays to the same
state."""
import tempfile
import threading

import pytest

from conftest import Server

DIM = 4


def vec(i):
    return [float(i), 1.0, 2.0, 3.0]


@pytest.fixture(params=["flat", "hnsw"])
def coll(request, server):
    c = server.client
    c.ok("PUT", "/collections/p", {"dim": DIM, "metric": "l2", "index": {"type": request.param},
                                   "payload_indexes": {"user": "keyword", "n": "numeric"}})
    c.ok("PUT", "/collections/p/points",
         {"points": [{"id": i, "vector": vec(i), "payload": {"user": f"u{i % 3}", "n": i, "meta": {"a": 1, "b": 2}}}
                     for i in range(30)]})
    return c


def payload(c, pid):
    return c.ok("GET", f"/collections/p/points/{pid}")["payload"]


def count(c, flt):
    hits = c.ok("POST", "/collections/p/search", {"vector": vec(0), "k": 100, "filter": flt, "exact": True})
    return sorted(h["id"] for h in hits)


def test_set_merges_keys_and_the_indexes_follow(coll):
    c = coll
    r = c.ok("POST", "/collections/p/points/payload", {"ids": [1, 2, 999], "set": {"user": "moved", "tag": "x"}})
    assert r == {"status": "completed", "updated": 2}
    assert payload(c, 1) == {"user": "moved", "n": 1, "meta": {"a": 1, "b": 2}, "tag": "x"}
    # The keyword index answers with the new value and forgets the old one.
    assert count(c, {"must": [{"key": "user", "match": {"value": "moved"}}]}) == [1, 2]
    assert 1 not in count(c, {"must": [{"key": "user", "match": {"value": "u1"}}]})
    # A nested key: the object at "meta" takes the members.
    c.ok("POST", "/collections/p/points/payload", {"ids": [3], "set": {"c": 3}, "key": "meta"})
    assert payload(c, 3)["meta"] == {"a": 1, "b": 2, "c": 3}
    c.ok("POST", "/collections/p/points/payload", {"ids": [3], "set": {"z": True}, "key": "new.deep"})
    assert payload(c, 3)["new"] == {"deep": {"z": True}}


def test_replace_unset_and_clear(coll):
    c = coll
    c.ok("POST", "/collections/p/points/payload", {"ids": [4], "replace": {"only": 1}})
    assert payload(c, 4) == {"only": 1}
    assert 4 not in count(c, {"must": [{"key": "n", "range": {"gte": 0}}]})
    c.ok("POST", "/collections/p/points/payload", {"ids": [5], "unset": ["n", "meta.a", "absent.key"]})
    assert payload(c, 5) == {"user": "u2", "meta": {"b": 2}}
    c.ok("POST", "/collections/p/points/payload", {"ids": [6], "clear": True})
    assert not payload(c, 6)
    assert 6 not in count(c, {"must": [{"key": "user", "match": {"any": ["u0", "u1", "u2"]}}]})
    # The points keep their vectors and stay searchable.
    hits = c.ok("POST", "/collections/p/search", {"vector": vec(6), "k": 1})
    assert hits[0]["id"] == 6


def test_edit_by_filter(coll):
    c = coll
    r = c.ok("POST", "/collections/p/points/payload",
             {"filter": {"must": [{"key": "user", "match": {"value": "u0"}}]}, "set": {"flag": True}})
    assert r["updated"] == 10
    assert count(c, {"must": [{"key": "flag", "match": {"value": True}}]}) == list(range(0, 30, 3))


def test_has_id_selects_points_in_every_filter(coll):
    c = coll
    r = c.ok("POST", "/collections/p/points/payload",
             {"filter": {"must": [{"has_id": [1, 2, 999, "1"]}]}, "set": {"picked": True}})
    assert r["updated"] == 2
    assert count(c, {"must": [{"key": "picked", "match": {"value": True}}]}) == [1, 2]
    assert count(c, {"must": [{"has_id": [5, 6]}, {"key": "n", "range": {"gt": 5}}]}) == [6]
    assert 3 not in count(c, {"must_not": [{"has_id": [3]}]})
    assert c.ok("POST", "/collections/p/points/delete", {"filter": {"should": [{"has_id": [7, 8]}]}})["deleted"] == 2
    c.error("POST", "/collections/p/search", {"vector": vec(0), "filter": {"must": [{"has_id": [-1]}]}},
            400, "invalid_filter")


def test_vector_update_keeps_the_payload(coll):
    c = coll
    r = c.ok("PUT", "/collections/p/points/vectors",
             {"points": [{"id": 7, "vector": [100.0, 0, 0, 0]}, {"id": 12345, "vector": [1, 1, 1, 1]}]})
    assert r == {"status": "completed", "updated": 1, "not_found": 1}
    hits = c.ok("POST", "/collections/p/search", {"vector": [100.0, 0, 0, 0], "k": 1, "with_vector": True})
    assert hits[0]["id"] == 7 and hits[0]["vector"] == [100.0, 0, 0, 0]
    assert payload(c, 7) == {"user": "u1", "n": 7, "meta": {"a": 1, "b": 2}}
    c.error("GET", "/collections/p/points/12345", None, 404, "point_not_found")
    # Only ids and vectors: a payload here is a mistake, refused.
    c.error("PUT", "/collections/p/points/vectors", {"points": [{"id": 7, "vector": vec(7), "payload": {}}]},
            400, "unknown_field")


@pytest.mark.parametrize("body,code", [
    ({"ids": [1]}, "invalid_request"),
    ({"ids": [1], "set": {"a": 1}, "clear": True}, "invalid_request"),
    ({"ids": [1], "set": [1]}, "invalid_request"),
    ({"ids": [1], "unset": []}, "invalid_request"),
    ({"ids": [1], "unset": [1]}, "invalid_request"),
    ({"ids": [1], "clear": False}, "invalid_request"),
    ({"ids": [1], "unset": ["a"], "key": "a"}, "invalid_request"),
    ({"ids": [1], "set": {}, "key": "a..b"}, "invalid_request"),
    ({"ids": [1], "set": {}, "key": 5}, "invalid_request"),
    ({"set": {"a": 1}}, "invalid_request"),
    ({"ids": [1], "filter": {}, "set": {"a": 1}}, "invalid_request"),
    ({"ids": [], "set": {"a": 1}}, "empty_batch"),
    ({"ids": [-1], "set": {"a": 1}}, "invalid_id"),
    ({"filter": {"must": [{"key": ""}]}, "set": {"a": 1}}, "invalid_filter"),
    ({"ids": [1], "set": {"a": 1}, "extra": 1}, "unknown_field"),
])
def test_bad_edits_are_refused_and_change_nothing(server, body, code):
    c = server.client
    c.ok("PUT", "/collections/p", {"dim": DIM, "metric": "l2"})
    c.ok("PUT", "/collections/p/points", {"points": [{"id": 1, "vector": vec(1), "payload": {"k": 1}}]})
    c.error("POST", "/collections/p/points/payload", body, 400, code)
    assert payload(c, 1) == {"k": 1}
    c.error("POST", "/collections/nope/points/payload", {"ids": [1], "clear": True}, 404, "collection_not_found")


def test_concurrent_edits_of_one_point_lose_nothing(server):
    """Each edit sets its own key on the same point: applied in log order
    under the shard's write lock, every key is there at the end."""
    c = server.client
    c.ok("PUT", "/collections/p", {"dim": DIM, "metric": "l2", "index": {"type": "hnsw"}})
    c.ok("PUT", "/collections/p/points", {"points": [{"id": 1, "vector": vec(1), "payload": {}}]})

    def writer(w):
        from conftest import Client
        cl = Client(server.port)
        for i in range(25):
            cl.ok("POST", "/collections/p/points/payload", {"ids": [1], "set": {f"w{w}_{i}": i}})
            if i % 5 == 0:
                cl.ok("PUT", "/collections/p/points/vectors", {"points": [{"id": 1, "vector": vec(i)}]})
        cl.close()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(payload(c, 1)) == 100


def test_edits_survive_a_crash_and_a_checkpoint():
    with tempfile.TemporaryDirectory() as d:
        s = Server(data_dir=d + "/data")
        c = s.client
        c.ok("PUT", "/collections/p", {"dim": DIM, "metric": "l2", "index": {"type": "hnsw"},
                                       "payload_indexes": {"user": "keyword"}})
        c.ok("PUT", "/collections/p/points",
             {"points": [{"id": i, "vector": vec(i), "payload": {"user": "a", "i": i}} for i in range(10)]})
        c.ok("POST", "/collections/p/points/payload", {"ids": [1], "set": {"user": "b"}})
        c.ok("POST", "/admin/checkpoint")
        c.ok("POST", "/collections/p/points/payload",
             {"filter": {"must": [{"key": "i", "range": {"gte": 5}}]}, "unset": ["i"]})
        c.ok("POST", "/collections/p/points/payload", {"ids": [2], "clear": True})
        c.ok("PUT", "/collections/p/points/vectors", {"points": [{"id": 3, "vector": [50.0, 0, 0, 0]}]})
        s.kill()
        s = Server(data_dir=d + "/data")
        c = s.client
        assert payload(c, 1) == {"user": "b", "i": 1}
        assert payload(c, 7) == {"user": "a"}
        assert not payload(c, 2)
        assert payload(c, 3) == {"user": "a", "i": 3}
        hits = c.ok("POST", "/collections/p/search",
                    {"vector": [50.0, 0, 0, 0], "k": 1, "filter": {"must": [{"key": "user", "match": {"value": "a"}}]}})
        assert hits[0]["id"] == 3
        hits = c.ok("POST", "/collections/p/search",
                    {"vector": vec(1), "k": 10, "filter": {"must": [{"key": "user", "match": {"value": "b"}}]}})
        assert [h["id"] for h in hits] == [1]
        s.stop()
