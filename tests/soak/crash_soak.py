#!/usr/bin/python3
"""Crash soak: the SIGKILL round of tests/integration/test_durability.py,
many times over, counting instead of stopping at the first failure.

Each round starts vectord on the same data directory (small WAL segments and
frequent checkpoints, so kills land during rolls, snapshots and segment
removal), checks a sample of what earlier rounds acknowledged, lets 8
concurrent clients upsert and delete over HTTP (each pausing 50 ms between
writes, so 1,000 rounds write a few hundred thousand ids, not millions, and
the final check of every id stays minutes), and SIGKILLs the server at a
random moment (0.3–1.5 s). At the end every id ever written is checked.
Prints, per check and in total:
  lost        acknowledged upserts that are missing
  resurrected acknowledged deletes whose point is back
  corrupted   points present with a vector or payload that was never written
              together (in-flight writes must be all or nothing)
  duplicated  points counted by the collection beyond the distinct ids found
Exit status 1 if any count is not zero.

  scripts/crash-soak [ROUNDS]        (default 1,000; VECTORD_BIN picks the binary)
"""
import os
import random
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
from conftest import Server  # noqa: E402
from test_durability import DIM, crash_round, get_point, point, vec  # noqa: E402

ARGS = ["--set", "wal_segment_bytes=65536", "--set", "checkpoint_wal_bytes=150000", "--set", "checkpoint_wal_pct=0"]


def check(c, acked, deleted, uncertain, ids, counts):
    """Checks ids against what was acknowledged; adds to counts."""
    found = 0
    for i in ids:
        p = get_point(c, i)
        if p is not None:
            found += 1
            gen = p["payload"].get("gen") if isinstance(p.get("payload"), dict) else None
            if gen is None or p["vector"] != vec(i, gen) or p["payload"] != point(i, gen)["payload"]:
                counts["corrupted"] += 1
            elif i in acked and i not in uncertain and gen != acked[i]:
                counts["corrupted"] += 1  # an older write came back over a newer one
        if i in uncertain:
            continue
        if i in acked and p is None:
            counts["lost"] += 1
        if i in deleted and p is not None:
            counts["resurrected"] += 1
    return found


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    rnd = random.Random(2026)
    acked, deleted, uncertain = {}, set(), set()
    counts = {"lost": 0, "resurrected": 0, "corrupted": 0, "duplicated": 0}
    t0 = time.time()
    with tempfile.TemporaryDirectory() as d:
        data = os.path.join(d, "data")
        for gen in range(rounds):
            s = Server(data_dir=data, args=ARGS)
            c = s.client
            if gen == 0:
                c.ok("PUT", "/collections/crash", {"dim": DIM, "metric": "l2", "index": {"type": "hnsw", "m": 8}})
            sample = rnd.sample(sorted(acked), min(300, len(acked))) + \
                rnd.sample(sorted(deleted), min(100, len(deleted)))
            check(c, acked, deleted, uncertain, sample, counts)
            crash_round(s, gen, rnd, acked, deleted, uncertain, pause=0.05)
            if (gen + 1) % 50 == 0 or gen + 1 == rounds:
                print(f"round {gen + 1}/{rounds}: acknowledged {len(acked)} present, {len(deleted)} deleted, "
                      f"{len(uncertain)} in flight at a kill; so far {counts} ({time.time() - t0:.0f} s)",
                      flush=True)
        s = Server(data_dir=data, args=ARGS)
        try:
            c = s.client
            known = set(acked) | deleted | uncertain
            found = check(c, acked, deleted, uncertain, sorted(known), counts)
            counted = c.ok("GET", "/collections/crash")["points_count"]
            counts["duplicated"] += max(0, counted - found)
            if counted < found:
                counts["lost"] += found - counted  # the count disagrees with what is there
        finally:
            s.stop()
    print(f"crash soak: {rounds} rounds, {len(set(acked) | deleted | uncertain)} ids written, "
          f"lost {counts['lost']}, resurrected {counts['resurrected']}, corrupted {counts['corrupted']}, "
          f"duplicated {counts['duplicated']} ({time.time() - t0:.0f} s)")
    return 1 if any(counts.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
