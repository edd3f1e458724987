"""Durability through the real binary: restarts after a clean shutdown and
after SIGKILL keep every acknowledged write, exactly, and nothing else.

The crash rounds run CRASH_ROUNDS times (default 4; scripts/crash-soak runs
more): concurrent clients write over HTTP while the server is killed at a
random moment; after each restart every acknowledged upsert is present with
its exact vector and payload, every acknowledged delete is absent, and each
write that was in flight is either wholly present or wholly absent.
"""
import os
import random
import re
import tempfile
import threading
import time

import pytest

from conftest import Client, Server

DIM = 8


def vec(i, gen=0):
    # Multiples of 1/8 are exact in float32 and in JSON: compare with ==.
    return [((i * 7 + k * 3 + gen * 5) % 41) / 8.0 for k in range(DIM)]


def point(i, gen=0):
    return {"id": i, "vector": vec(i, gen), "payload": {"i": i, "gen": gen, "tag": f"t{i % 5}"}}


def queries():
    rnd = random.Random(7)
    return [[rnd.randrange(0, 41) / 8.0 for _ in range(DIM)] for _ in range(10)]


def search_all(c, coll, exact):
    out = []
    for q in queries():
        for flt in (None, {"must": [{"key": "tag", "match": {"value": "t1"}}]}):
            body = {"vector": q, "k": 10, "exact": exact, "with_payload": True}
            if flt:
                body["filter"] = flt
            out.append(c.ok("POST", f"/collections/{coll}/search", body))
    return out


def populate(c):
    c.ok("PUT", "/collections/flat", {"dim": DIM, "metric": "l2", "shards": 3})
    c.ok("PUT", "/collections/graph", {"dim": DIM, "metric": "cosine", "shards": 2,
                                       "index": {"type": "hnsw", "m": 8, "ef_construction": 64}})
    c.ok("PUT", "/collections/graph/payload_indexes", {"field": "tag", "type": "keyword"})
    for coll in ("flat", "graph"):
        for start in range(0, 1500, 250):
            c.ok("PUT", f"/collections/{coll}/points",
                 {"points": [point(i) for i in range(start, start + 250)]})
        c.ok("POST", f"/collections/{coll}/points/delete", {"ids": list(range(0, 1500, 7))})
        c.ok("POST", f"/collections/{coll}/points/delete",
             {"filter": {"must": [{"key": "tag", "match": {"value": "t3"}}]}})
        c.ok("PUT", f"/collections/{coll}/points", {"points": [point(i, 1) for i in range(100, 200)]})
    c.ok("PUT", "/collections/gone", {"dim": 2})
    c.ok("PUT", "/collections/gone/points", {"points": [{"id": 1, "vector": [1, 2]}]})
    c.ok("DELETE", "/collections/gone")


def state(c):
    snap = {}
    for coll in ("flat", "graph"):
        info = c.ok("GET", f"/collections/{coll}")
        snap[coll] = {
            "count": info["points_count"],
            "indexes": info["payload_indexes"],
            "exact": search_all(c, coll, True),
            "points": [c.request("GET", f"/collections/{coll}/points/{i}?with_vector=true")
                       for i in (1, 7, 13, 150, 151, 1499)],
        }
        if coll == "graph":
            snap[coll]["approx"] = search_all(c, coll, False)
    snap["collections"] = sorted(x["name"] for x in c.ok("GET", "/collections")["collections"])
    return snap


def strip_times(snap):
    # time_ms and an error's request_id differ; search results are compared as returned.
    for coll in ("flat", "graph"):
        snap[coll]["points"] = [(s, d.get("result", {k: v for k, v in d["error"].items() if k != "request_id"}
                                               if "error" in d else d))
                                for s, d in snap[coll]["points"]]
    return snap


def test_clean_restart_reproduces_everything():
    with tempfile.TemporaryDirectory() as d:
        s = Server(data_dir=os.path.join(d, "data"))
        populate(s.client)
        before = strip_times(state(s.client))
        logs = s.stop()
        assert 'msg="checkpoint" reason=shutdown' in logs
        s = Server(data_dir=os.path.join(d, "data"))
        try:
            after = strip_times(state(s.client))
            # Recovered from snapshots: nothing left to replay.
            assert re.search(r'msg="ready" .*snapshots=[1-9]', s.logs())
            assert before == after
            assert after["collections"] == ["flat", "graph"]
            assert not os.path.exists(os.path.join(d, "data", "snapshots", "c" + "0" * 15 + "0"))
        finally:
            s.stop()


def test_crash_restart_reproduces_exact_results():
    with tempfile.TemporaryDirectory() as d:
        s = Server(data_dir=os.path.join(d, "data"))
        populate(s.client)
        before = strip_times(state(s.client))
        s.kill()
        s = Server(data_dir=os.path.join(d, "data"))
        try:
            after = strip_times(state(s.client))
            assert re.search(r'msg="ready" .*wal_records=[1-9]', s.logs())
            for coll in ("flat", "graph"):
                for key in ("count", "indexes", "exact", "points"):
                    assert before[coll][key] == after[coll][key], (coll, key)
            assert after["collections"] == ["flat", "graph"]
        finally:
            s.stop()


def test_snapshot_then_crash_keeps_the_graph():
    """A snapshot holds the HNSW graph: approximate results come back identical."""
    with tempfile.TemporaryDirectory() as d:
        s = Server(data_dir=os.path.join(d, "data"))
        populate(s.client)
        res = s.client.ok("POST", "/collections/graph/snapshot")
        assert res["collections"] == 1 and res["shards"] == 2 and res["bytes"] > 0
        res = s.client.ok("POST", "/admin/checkpoint")
        assert res["wal_segments_removed"] >= 0
        metrics = s.client.request("GET", "/metrics")[1]
        assert re.search(r'^vectord_checkpoints_total\{result="ok"\} [2-9]', metrics, re.M)
        assert re.search(r"^vectord_checkpoint_bytes_total [1-9]", metrics, re.M)
        groups = re.search(r"^vectord_wal_group_records_count (\d+)", metrics, re.M)
        records = re.search(r"^vectord_wal_records_total (\d+)", metrics, re.M)
        assert 0 < int(groups.group(1)) <= int(records.group(1))
        assert re.search(r"^vectord_wal_fsyncs_total [1-9]", metrics, re.M)
        before = strip_times(state(s.client))
        s.kill()
        s = Server(data_dir=os.path.join(d, "data"))
        try:
            assert strip_times(state(s.client)) == before
            metrics = s.client.request("GET", "/metrics")[1]
            assert re.search(r'^vectord_recovery_seconds\{phase="snapshots"\} [\d.]+$', metrics, re.M)
        finally:
            s.stop()


def test_snapshot_of_a_missing_collection_is_404(client):
    client.error("POST", "/collections/nope/snapshot", status=404, code="collection_not_found")


class Writer(threading.Thread):
    """Writes unique ids (and deletes some of its own) until the server dies."""

    def __init__(self, port, wid, gen, pause=0.0):
        super().__init__(daemon=True)
        self.pause = pause     # seconds between writes (the soak keeps its id count bounded)
        self.c = Client(port)
        self.wid, self.gen = wid, gen
        self.acked = {}        # id -> generation present (acknowledged)
        self.deleted = set()   # acknowledged deletes
        self.inflight = []     # ops sent without an answer (may or may not have applied)
        self.rnd = random.Random(wid * 1000 + gen)

    def run(self):
        n = 0
        try:
            while True:
                n += 1
                if self.pause:
                    time.sleep(self.pause)
                # Unique across writers and rounds (scripts/crash-soak runs 1,000).
                base = (self.gen * 64 + self.wid) * 1_000_000 + n * 5
                if self.acked and self.rnd.random() < 0.2:
                    victim = self.rnd.choice(sorted(self.acked))
                    op = ("delete", [victim])
                    self.inflight.append(op)
                    st, _ = self.c.request("POST", "/collections/crash/points/delete", {"ids": [victim]})
                    if st != 200:
                        return
                    self.inflight.pop()
                    del self.acked[victim]
                    self.deleted.add(victim)
                else:
                    ids = [base + k for k in range(self.rnd.randint(1, 4))]
                    op = ("upsert", ids)
                    self.inflight.append(op)
                    st, _ = self.c.request("PUT", "/collections/crash/points",
                                           {"points": [point(i, self.gen) for i in ids]})
                    if st != 200:
                        return
                    self.inflight.pop()
                    for i in ids:
                        self.acked[i] = self.gen
                        self.deleted.discard(i)
        except Exception:
            return  # the server was killed mid-request


def get_point(c, i):
    st, doc = c.request("GET", f"/collections/crash/points/{i}?with_vector=true")
    assert st in (200, 404), doc
    return doc["result"] if st == 200 else None


def crash_round(s, gen, rnd, acked, deleted, uncertain, pause=0.0):
    """8 writers against server s, SIGKILL at a random moment (0.3–1.5 s);
    then what they saw is merged into acked (id -> generation), deleted and
    uncertain (in flight at the kill)."""
    writers = [Writer(s.port, w, gen, pause) for w in range(8)]
    for w in writers:
        w.start()
    time.sleep(rnd.uniform(0.3, 1.5))
    s.kill()
    for w in writers:
        w.join(timeout=30)
        for i, g in w.acked.items():
            acked[i] = g
            deleted.discard(i)
        for i in w.deleted:
            deleted.add(i)
            acked.pop(i, None)
        for _, ids in w.inflight:
            uncertain.update(ids)


def test_sigkill_during_concurrent_writes_loses_no_acknowledged_write():
    rounds = int(os.environ.get("CRASH_ROUNDS", "4"))
    rnd = random.Random(2026)
    acked, deleted, uncertain = {}, set(), set()
    with tempfile.TemporaryDirectory() as d:
        data = os.path.join(d, "data")
        # Small segments and frequent checkpoints: crashes land during
        # segment rolls, snapshots and segment removal too.
        args = ["--set", "wal_segment_bytes=65536", "--set", "checkpoint_wal_bytes=150000",
                "--set", "checkpoint_wal_pct=0"]
        for gen in range(rounds):
            s = Server(data_dir=data, args=args)
            c = s.client
            if gen == 0:
                c.ok("PUT", "/collections/crash", {"dim": DIM, "metric": "l2",
                                                   "index": {"type": "hnsw", "m": 8}})
            # Everything acknowledged before is there, exactly; every delete is gone.
            for i, g in acked.items():
                if i in uncertain:
                    continue
                p = get_point(c, i)
                assert p is not None, f"acknowledged point {i} lost (round {gen})"
                assert p["vector"] == vec(i, g) and p["payload"] == point(i, g)["payload"], p
            for i in deleted - uncertain:
                assert get_point(c, i) is None, f"acknowledged delete of {i} undone (round {gen})"
            info = c.ok("GET", "/collections/crash")
            present = sum(1 for i in acked if i not in uncertain)
            assert info["points_count"] >= present
            crash_round(s, gen, rnd, acked, deleted, uncertain)
        s = Server(data_dir=data, args=args)
        try:
            c = s.client
            for i, g in acked.items():
                if i not in uncertain:
                    p = get_point(c, i)
                    assert p is not None and p["vector"] == vec(i, g), i
            # In-flight writes are all-or-nothing: a present one is exact.
            for i in uncertain:
                p = get_point(c, i)
                if p is not None:
                    assert p["vector"] == vec(i, p["payload"]["gen"]), p
            # Nothing duplicated: the count is exactly the ids found.
            known = set(acked) | uncertain | deleted
            found = sum(1 for i in known if get_point(c, i) is not None)
            assert c.ok("GET", "/collections/crash")["points_count"] == found
            print(f"crash rounds={rounds} acked={len(acked)} deleted={len(deleted)} "
                  f"in_flight={len(uncertain)} present={found}")
        finally:
            s.stop()


def wal_checkpoints(logs):
    """(bytes written, WAL bytes since the previous checkpoint) of each
    checkpoint the WAL's size triggered, in order."""
    return [(int(m.group(1)), int(m.group(2))) for m in
            re.finditer(r'msg="checkpoint" reason=wal_bytes .*?bytes=(\d+) .*?wal_bytes_since=(\d+)', logs)]


@pytest.mark.parametrize("pct", [100, 0])
def test_the_wal_size_trigger_grows_with_what_a_checkpoint_writes(pct):
    """checkpoint_wal_pct=100: a checkpoint by WAL size waits for as many WAL
    bytes as the last one wrote (or checkpoint_wal_bytes, if more), so a
    growing collection is not rewritten whole again and again; 0: the fixed
    checkpoint_wal_bytes alone, as before."""
    dim, small = 64, 32768
    s = Server(args=["--set", f"checkpoint_wal_bytes={small}", "--set", f"checkpoint_wal_pct={pct}"])
    try:
        c = s.client
        c.ok("PUT", "/collections/grow", {"dim": dim, "metric": "l2", "index": {"type": "flat"}})
        rnd = random.Random(3)
        # 4,000 points, then 40 more every 0.1 s for 6 s: the collection's
        # snapshot (~1.2 MB) is far larger than the WAL written between two
        # looks of the checkpointer (once a second, ~100 KB).
        for lo in range(0, 4000, 500):
            c.ok("PUT", "/collections/grow/points", {"points": [
                {"id": i, "vector": [rnd.random() for _ in range(dim)]} for i in range(lo, lo + 500)]})
        t0, i = time.time(), 4000
        while time.time() - t0 < 6:
            c.ok("PUT", "/collections/grow/points", {"points": [
                {"id": j, "vector": [rnd.random() for _ in range(dim)]} for j in range(i, i + 40)]})
            i += 40
            time.sleep(0.1)
        cps = wal_checkpoints(s.logs())
    finally:
        s.stop()
    assert cps, "no checkpoint by WAL size"
    late = [(prev[0], cp[1]) for prev, cp in zip(cps, cps[1:]) if prev[0] > small]
    if pct:
        for last_bytes, since in late:
            assert since >= last_bytes, f"checkpointed after {since} WAL bytes; the last one wrote {last_bytes}"
    else:
        assert any(since < last_bytes for last_bytes, since in late), cps
