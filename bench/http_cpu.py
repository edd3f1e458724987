#!/usr/bin/python3
"""Over HTTP close to in process (issue 20, item 7): the CPU a search costs
when it goes through vectord's HTTP API, server and client together, against
the CPU hnswlib spends on one search in process, at equal recall.

  bench/http_cpu.py [--data bench/data/100000-1536] [--ef 16,24,32,48,64]
                    [--connections 8] [--seconds 5] [--shards 0] [--json]
                    [--vectord build-release/vectord] [--no-hnswlib]
                    [--quant none|sq8|fp16 [--oversampling X]]

vectord (one collection, HNSW M 16, ef_construction 200, the default shard
count unless --shards; with --quant, the graph walks those codes and the
originals, kept in RAM, re-rank its candidates) is loaded over HTTP and waits until its graph holds
every point. Then, for each ef, bench_load (C, closed loop, keep-alive, one
thread per connection, on the same 2 cores as the server) sends the queries
for --seconds; it reports QPS, recall@10 and the CPU both processes used in
that window (bench_load --server-pid), divided by the searches answered.
The vectors go as `vector_b64`, and with --json also as JSON arrays (the
form MemoryService sends).

hnswlib (Debian's libhnswlib-dev, built -O3 -march=native by
bench/compare-hnsw's recipe) builds the same graph in its own process and
searches the same queries on one thread, twice over; its CPU per search is
its wall time per search (one busy thread). Prints markdown tables: the
sweeps, then at recall 0.90 / 0.95 / 0.99 the smallest ef of each sweep
reaching it and the ratio of CPU per search. That ratio comes from a paired
pass, not from the sweeps: the two settings run again in turn, --pairs
rounds of vectord for --pair-seconds then hnswlib for about as long, and
the table gives the median of the rounds' ratios and their range (the
shared machine's speed moves by 10-40% between minutes, and a ratio of two
rows measured minutes apart moved with it). Asserts nothing.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def vectord_measure(a, v, ds, tmp, form, ef, seconds, warmup=1.0):
    base = os.path.join(tmp, f"{form}-{ef}")
    if os.path.exists(base + ".req"):  # written by the sweep; the paired pass runs it again
        req, gt = base + ".req", base + ".gt"
    else:
        req, gt = benchlib.write_search_requests(base, "c", ds, "none", b64=form == "b64", ef=ef)
    r = benchlib.run_load(a.load, v.port, req, gt, connections=a.connections, seconds=seconds,
                          warmup=warmup, server_pid=v.proc.pid)
    if r["errors"]:
        raise RuntimeError(f"{r['errors']} errors: {r['statuses']}")
    return {"form": form, "ef": ef, "qps": r["qps"], "recall": r["recall"],
            "server_us": r["server_cpu_us_per_req"], "client_us": r["client_cpu_us_per_req"]}


def vectord_sweep(a, v, ds, efs, forms, tmp):
    """[{form, ef, qps, recall, server_us, client_us}] over HTTP."""
    rows = []
    for form in forms:
        for ef in efs:
            rows.append(vectord_measure(a, v, ds, tmp, form, ef, a.seconds))
            r = rows[-1]
            log(f"vectord {form} ef {ef}: {r['qps']:.0f} QPS, recall {r['recall']:.4f}, "
                f"server {r['server_us']} µs + client {r['client_us']} µs")
    return rows


def hnswlib_start(a):
    """hnswlib's graph of the data in a serving process, or None when it cannot be built."""
    exe = os.path.join(ROOT, "build-release", "bench", "bench_hnsw_hnswlib")
    if not benchlib.build_hnswlib(exe):
        return None
    with open(os.path.join(a.data, "meta.json")) as f:
        metric = json.load(f).get("metric", "cosine")
    p = subprocess.Popen([exe, a.data, "--m", "16", "--efc", "200", "--threads", "2", "--ef", "10",
                          "--metric", metric, "--serve", "1"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    build = benchlib.serve_answer(p)
    log(f"hnswlib: built in {build['seconds']:.1f} s")
    return p


def hnswlib_measure(p, ef, nq, passes):
    """{ef, recall, us}: every query `passes` times on one thread."""
    count = hits = 0
    wall = 0.0
    for _ in range(passes):
        p.stdin.write(f"{ef} 100 0 {nq}\n")
        p.stdin.flush()
        r = benchlib.serve_answer(p)
        count, hits, wall = count + r["count"], hits + r["hits"], wall + r["wall_s"]
    return {"ef": ef, "recall": hits / (count * r["k"]), "us": wall * 1e6 / count}


def hnswlib_sweep(p, efs, nq):
    """[{ef, recall, us}] single thread in process."""
    hnswlib_measure(p, efs[0], nq, 1)  # warms caches; not kept
    return [hnswlib_measure(p, ef, nq, 2) for ef in efs]


def paired(a, v, ds, tmp, hp, nq, form, vef, hef):
    """The two settings in turn, a.pairs rounds, each side about a.pair_seconds
    long: the median of the rounds' ratios (each round's two figures are
    minutes closer than any two of the sweeps), and the medians of each side."""
    vs, hs, ratios = [], [], []
    passes = 1
    for _ in range(a.pairs):
        vr = vectord_measure(a, v, ds, tmp, form, vef, a.pair_seconds, warmup=0.5)
        hr = hnswlib_measure(hp, hef, nq, passes)
        passes = max(1, round(a.pair_seconds / (hr["us"] * 1e-6 * nq)))  # the next rounds: as long as vectord's
        vs.append(vr)
        hs.append(hr)
        ratios.append((vr["server_us"] + vr["client_us"]) / hr["us"])
    med = statistics.median
    return {"total_us": med([r["server_us"] + r["client_us"] for r in vs]), "h_us": med([r["us"] for r in hs]),
            "ratio": med(ratios), "ratios": ratios,
            "qps": med([r["qps"] for r in vs]), "recall": med([r["recall"] for r in vs]),
            "server_us": med([r["server_us"] for r in vs]), "client_us": med([r["client_us"] for r in vs])}


def first_reaching(rows, target):
    return next((r for r in sorted(rows, key=lambda r: r["ef"]) if r["recall"] >= target), None)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(HERE, "data", "100000-1536"))
    ap.add_argument("--ef", default="16,24,32,48,64")
    ap.add_argument("--hnswlib-ef", default="10,12,16,20,24,32,48,64,96,128")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--shards", type=int, default=0, help="0: vectord's default_shards")
    ap.add_argument("--json", action="store_true", help="also send the vectors as JSON arrays")
    ap.add_argument("--vectord", default=os.path.join(ROOT, "build-release", "vectord"))
    ap.add_argument("--no-hnswlib", action="store_true")
    ap.add_argument("--quant", default="none", help="vectord's codes: none, sq8, fp16 (originals in RAM)")
    ap.add_argument("--oversampling", type=float, default=0, help="with --quant (0: the collection's default)")
    ap.add_argument("--pairs", type=int, default=5, help="rounds of the paired pass")
    ap.add_argument("--pair-seconds", type=float, default=2.0, help="vectord's share of each round")
    a = ap.parse_args()
    a.load = os.path.join(ROOT, "build-release", "bench", "bench_load")
    subprocess.run(["ninja", "-C", os.path.join(ROOT, "build-release"), "vectord", "bench/bench_load"],
                   check=True, capture_output=True)
    if not os.path.exists(os.path.join(a.data, "meta.json")):
        sys.exit(f"{a.data}: no data set (bench/datagen.py DIR --n N --dim D, or bench/compare-hnsw --real NAME)")
    ds = benchlib.open_dataset(a.data, None)
    efs = [int(x) for x in a.ef.split(",")]
    forms = ["b64", "json"] if a.json else ["b64"]
    nq = len(ds.queries)
    hp = None if a.no_hnswlib else hnswlib_start(a)
    args = ["--set", f"default_shards={a.shards}"] if a.shards else []
    v = benchlib.Vectord(a.vectord, args)
    levels = []
    try:
        hrows = hnswlib_sweep(hp, [int(x) for x in a.hnswlib_ef.split(",")], nq) if hp else None
        body = {"dim": ds.dim, "metric": ds.metric, "index": {"type": "hnsw", "m": 16, "ef_construction": 200}}
        if a.quant != "none":
            body["quantization"] = {"type": a.quant, "originals": "ram",
                                    **({"oversampling": a.oversampling} if a.oversampling else {})}
        v.call("PUT", "/collections/c", body)
        t = time.time()
        benchlib.load_points(v, "c", ds)
        loaded = time.time() - t
        graph = benchlib.wait_for_graph(v, "c")
        log(f"vectord: loaded {ds.n} points in {loaded:.1f} s, graph caught up {graph:.1f} s later")
        shards = v.call("GET", "/collections/c").get("shards")
        with tempfile.TemporaryDirectory() as tmp:
            vrows = vectord_sweep(a, v, ds, efs, forms, tmp)
            for target in (0.90, 0.95, 0.99):
                h = first_reaching(hrows, target) if hrows else None
                for form in forms:
                    r = first_reaching([r for r in vrows if r["form"] == form], target)
                    pr = paired(a, v, ds, tmp, hp, nq, form, r["ef"], h["ef"]) if r and h else None
                    if pr:
                        log(f"paired {target:.2f} {form}: vectord ef {r['ef']} {pr['total_us']:.0f} µs, "
                            f"hnswlib ef {h['ef']} {pr['h_us']:.0f} µs, ratios "
                            + " ".join(f"{x:.2f}" for x in pr["ratios"]))
                    levels.append((target, form, r, h, pr))
    finally:
        v.stop()
        if hp:
            hp.stdin.close()
            hp.wait()

    print(f"## Over HTTP against in process — {ds.n} x {ds.dim}, {ds.metric}, HNSW M 16, ef_construction 200, "
          f"vectord with {shards} shard(s)"
          f"{'' if a.quant == 'none' else f', walking {a.quant} codes (originals in RAM)'}"
          f", {a.connections} connections, {a.seconds:g} s per row\n")
    print(f"Machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; bench_load runs on the "
          "same cores as the server.\n")
    print("| vector form | ef | recall@10 | QPS | server CPU µs/search | client CPU µs/search | total µs/search |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in vrows:
        print(f"| {r['form']} | {r['ef']} | {r['recall']:.4f} | {r['qps']:.0f} | {r['server_us']:.0f} | "
              f"{r['client_us']:.0f} | {r['server_us'] + r['client_us']:.0f} |")
    if hrows:
        print("\n| hnswlib ef | recall@10 | CPU µs/search (one thread) |")
        print("|---:|---:|---:|")
        for r in hrows:
            print(f"| {r['ef']} | {r['recall']:.4f} | {r['us']:.0f} |")
    print("\n### At equal recall: the smallest ef of each sweep that reaches it, measured again in turn "
          f"({a.pairs} rounds; medians, and the median of the rounds' ratios with their range)\n")
    print("| recall ≥ | form | vectord ef | recall | QPS | server + client CPU µs/search | hnswlib ef | "
          "hnswlib µs/search | vectord/hnswlib CPU |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for target, form, r, h, pr in levels:
        if not r:
            print(f"| {target:.2f} | {form} | not reached | | | | | | |")
        elif not pr:
            print(f"| {target:.2f} | {form} | {r['ef']} | {r['recall']:.4f} | {r['qps']:.0f} | "
                  f"{r['server_us'] + r['client_us']:.0f} | {'—' if not h else h['ef']} | — | — |")
        else:
            print(f"| {target:.2f} | {form} | {r['ef']} | {pr['recall']:.4f} | {pr['qps']:.0f} | "
                  f"{pr['server_us']:.0f} + {pr['client_us']:.0f} = {pr['total_us']:.0f} | {h['ef']} | "
                  f"{pr['h_us']:.0f} | {pr['ratio']:.2f}× ({min(pr['ratios']):.2f}–{max(pr['ratios']):.2f}) |")

if __name__ == "__main__":
    main()
