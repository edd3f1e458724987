"""Many clients at once: writers, deleters and searchers on one collection.
Every answer must be well-formed, no search may return a point that never
existed or a half-written one, and the final state must equal the writes."""
import threading

import numpy as np

from conftest import Client

DIM = 16


def test_concurrent_clients(server):
    main = server.client
    main.ok("PUT", "/collections/c", {"dim": DIM, "metric": "l2", "shards": 4,
                                      "payload_indexes": {"writer": "keyword"}})
    errors = []
    n_writers, per_writer = 4, 150

    def writer(w):
        c = Client(server.port)
        rng = np.random.default_rng(w)
        try:
            for i in range(per_writer):
                pid = f"w{w}-{i}"
                vec = rng.standard_normal(DIM).astype(np.float32).tolist()
                c.ok("PUT", "/collections/c/points",
                     {"points": [{"id": pid, "vector": vec, "payload": {"writer": f"w{w}", "i": i}}]})
                if i % 3 == 2:  # delete an earlier point of ours
                    c.ok("POST", "/collections/c/points/delete", {"ids": [f"w{w}-{i - 2}"]})
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))
        finally:
            c.close()

    def searcher(s):
        c = Client(server.port)
        rng = np.random.default_rng(100 + s)
        try:
            for _ in range(120):
                q = rng.standard_normal(DIM).astype(np.float32).tolist()
                body = {"vector": q, "k": 10}
                if s % 2:
                    body["filter"] = {"must": [{"key": "writer", "match": {"value": f"w{s % n_writers}"}}]}
                hits = c.ok("POST", "/collections/c/search", body)
                for h in hits:
                    w, i = h["id"][1:].split("-")
                    assert h["payload"] == {"writer": f"w{w}", "i": int(i)}, h
                    if s % 2:
                        assert h["payload"]["writer"] == f"w{s % n_writers}"
                scores = [h["score"] for h in hits]
                assert scores == sorted(scores)
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
        finally:
            c.close()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(n_writers)]
    threads += [threading.Thread(target=searcher, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors[:5]
    deleted_per_writer = per_writer // 3
    expected = n_writers * (per_writer - deleted_per_writer)
    assert main.ok("GET", "/collections/c")["points_count"] == expected
    # each surviving point is retrievable, each deleted one is gone
    assert main.ok("GET", "/collections/c/points/w0-149")["payload"]["i"] == 149
    main.error("GET", "/collections/c/points/w0-0", status=404, code="point_not_found")


def test_drop_collection_during_searches(server):
    main = server.client
    errors = []

    def searcher():
        c = Client(server.port)
        try:
            for _ in range(200):
                status, doc = c.request("POST", "/collections/d/search", {"vector": [1.0] * DIM, "k": 3})
                assert status in (200, 404), (status, doc)
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
        finally:
            c.close()

    threads = [threading.Thread(target=searcher) for _ in range(3)]
    for t in threads:
        t.start()
    for _ in range(15):
        main.ok("PUT", "/collections/d", {"dim": DIM})
        main.ok("PUT", "/collections/d/points",
                {"points": [{"id": i, "vector": [float(i + 1)] * DIM} for i in range(50)]})
        main.ok("DELETE", "/collections/d")
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[:5]
