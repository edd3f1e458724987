"""PATCH /collections/{c}: a collection's search defaults (HNSW ef_search,
IVF nprobe, quantized oversampling) change after creation, are used by the
next search, and survive a crash (WAL replay) and a checkpoint (snapshot).
What shapes the stored data cannot change and is refused naming it."""
import os
import random
import tempfile

from conftest import Server, wait_indexed


def distances_per_search(c, name, query, n=5):
    """Distance computations that n searches with the collection's defaults cost."""
    before = c.ok("GET", f"/collections/{name}")["searches"]["distance_computations"]
    for _ in range(n):
        c.ok("POST", f"/collections/{name}/search", {"vector": query, "k": 10})
    return (c.ok("GET", f"/collections/{name}")["searches"]["distance_computations"] - before) / n


def test_ef_search_changes_what_the_next_search_does_and_survives_a_crash_and_a_checkpoint():
    tmp = tempfile.TemporaryDirectory(prefix="vectord-patch-")
    data = os.path.join(tmp.name, "data")
    s = Server(data_dir=data)
    c = s.client
    rnd = random.Random(3)
    c.ok("PUT", "/collections/h", {"dim": 16, "metric": "l2", "shards": 1,
                                   "index": {"type": "hnsw", "ef_search": 10}})
    c.ok("PUT", "/collections/h/points",
         {"points": [{"id": i, "vector": [rnd.random() for _ in range(16)]} for i in range(3000)]})
    query = [0.5] * 16
    wait_indexed(c, "h")
    narrow = distances_per_search(c, "h", query)
    info = c.ok("PATCH", "/collections/h", {"index": {"ef_search": 200}})
    assert info["index"]["ef_search"] == 200 and info["index"]["m"] == 16, info
    wide = distances_per_search(c, "h", query)
    assert wide > 3 * narrow, (narrow, wide)
    # A search that names its ef still gets it.
    assert c.ok("POST", "/collections/h/search", {"vector": query, "k": 10, "ef": 10})
    s.kill()  # the change is in the WAL only

    s = Server(data_dir=data)
    c = s.client
    assert c.ok("GET", "/collections/h")["index"]["ef_search"] == 200
    assert distances_per_search(c, "h", query) > 3 * narrow
    c.ok("POST", "/admin/checkpoint")  # now in the snapshot, the WAL gone
    s.stop()

    s = Server(data_dir=data)
    c = s.client
    assert c.ok("GET", "/collections/h")["index"]["ef_search"] == 200
    assert distances_per_search(c, "h", query) > 3 * narrow
    s.stop()
    tmp.cleanup()


def test_ivf_nprobe_and_oversampling_change_and_automatic_is_accepted_back(client):
    c = client
    rnd = random.Random(4)
    c.ok("PUT", "/collections/v", {"dim": 8, "metric": "l2", "shards": 1,
                                   "index": {"type": "ivf", "nlist": 16, "nprobe": 2},
                                   "quantization": "sq8"})
    c.ok("PUT", "/collections/v/points",
         {"points": [{"id": i, "vector": [rnd.random() for _ in range(8)]} for i in range(2048)]})
    info = c.ok("PATCH", "/collections/v", {"index": {"nprobe": 12}, "quantization": {"oversampling": 7}})
    assert info["index"]["nprobe"] == 12 and info["quantization"]["oversampling"] == 7, info
    # 0 = automatic, as at creation and as info prints it.
    info = c.ok("PATCH", "/collections/v", {"index": {"nprobe": 0}})
    assert info["index"]["nprobe"] == 0 and info["quantization"]["oversampling"] == 7, info
    assert len(c.ok("POST", "/collections/v/search", {"vector": [0.5] * 8, "k": 5})) == 5


def test_what_cannot_change_is_refused_naming_it(client):
    c = client
    c.ok("PUT", "/collections/f", {"dim": 4})
    c.ok("PUT", "/collections/g", {"dim": 4, "index": {"type": "hnsw"}})
    cases = [
        ("f", {"index": {"ef_search": 100}}, "index.ef_search applies to hnsw"),
        ("f", {"index": {"nprobe": 4}}, "index.nprobe applies to ivf"),
        ("f", {"quantization": {"oversampling": 2}}, "quantized collections"),
        ("g", {"dim": 8}, "dim cannot change"),
        ("g", {"metric": "dot"}, "metric cannot change"),
        ("g", {"shards": 4}, "shards cannot change"),
        ("g", {"index": {"type": "flat"}}, "index.type cannot change"),
        ("g", {"index": {"m": 32, "ef_search": 100}}, "index.m cannot change"),
        ("g", {"index": {"ef_search": 0}}, "index.ef_search"),
        ("g", {"index": {"ef_search": "high"}}, "index.ef_search"),
        ("g", {"index": {"ef": 100}}, "index"),
        ("g", {"colour": "blue"}, "colour"),
        ("g", {}, "nothing to change"),
        ("g", [], "object"),
    ]
    for name, body, words in cases:
        err = c.error("PATCH", f"/collections/{name}", body, 400)
        assert words in err["message"], (body, err)
    assert c.ok("GET", "/collections/g")["index"]["ef_search"] == 64
    c.error("PATCH", "/collections/nope", {"index": {"ef_search": 10}}, 404, "collection_not_found")
