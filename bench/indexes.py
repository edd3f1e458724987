#!/usr/bin/python3
"""Index and quantization choices side by side: flat, HNSW and IVF, each with
float32 vectors or fp16/sq8 codes (originals on disk), on the same generated
1536-dim data, over HTTP.

  bench/indexes.py --sizes 100000                       # every configuration
  bench/indexes.py --sizes 1000000 --configs hnsw-sq8    # the 1M memory target
  bench/indexes.py --sizes 100000 --docs                # rewrite the block in docs/BENCHMARKS.md

Every configuration runs in its own vectord process, so the resident memory
it reports (VmRSS after loading, minus VmRSS before creating the collection,
per point) is that collection's and nothing else's: codes, graph or lists,
ids, payloads, payload indexes, and whatever the allocator keeps from
loading. Originals on disk are in the page cache, which is the kernel's, not
the process's. For each configuration: load (build) time, memory, then a
sweep of ef (HNSW) or nprobe (IVF) on one connection (recall@10, p50, p99,
QPS), the smallest setting with recall@10 >= 0.95 as the operating point, and
its throughput and p99 at 8 connections. Writes bench/results/indexes-<n>-<date>.json
and prints a markdown table. Nothing here asserts a timing.
"""
import argparse
import datetime
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import benchlib  # noqa: E402

K = 10
CONFIGS = {
    # name: (index, quantization)
    "flat": ({"type": "flat"}, "none"),
    "flat-sq8": ({"type": "flat"}, "sq8"),
    "hnsw": ({"type": "hnsw", "m": 16, "ef_construction": 200}, "none"),
    "hnsw-fp16": ({"type": "hnsw", "m": 16, "ef_construction": 200}, "fp16"),
    "hnsw-sq8": ({"type": "hnsw", "m": 16, "ef_construction": 200}, "sq8"),
    "ivf": ({"type": "ivf"}, "none"),
    "ivf-sq8": ({"type": "ivf"}, "sq8"),
}
OVERSAMPLING = [1, 1.5, 2, 3, 4, 6]
SWEEP = {"hnsw": ("ef", [16, 32, 64, 128, 256]), "ivf": ("nprobe", [4, 8, 16, 32, 64, 128]),
         "flat": (None, [None])}


def log(msg):
    print(f"[indexes {datetime.datetime.now():%H:%M:%S}] {msg}", flush=True)


def run_config(name, ds, a, scratch):
    index, quant = CONFIGS[name]
    v = benchlib.Vectord(a.vectord)
    out = {"config": name, "data": ds.name, "n": ds.n, "dim": ds.dim, "index": index,
           "quantization": quant}
    try:
        body = {"dim": ds.dim, "metric": ds.metric, "index": index, "quantization": quant}
        rss0 = v.rss_bytes()
        v.call("PUT", "/collections/c", body)
        log(f"{name}: loading {ds.n} points")
        out["build_s"] = benchlib.load_points(v, "c", ds) + benchlib.wait_for_graph(v, "c")
        info = v.call("GET", "/collections/c")
        if index["type"] == "ivf":  # training runs in the background: wait for it
            out["train_wait_s"] = wait_trained(v)
            info = v.call("GET", "/collections/c")
        out["rss_per_point"] = (v.rss_bytes() - rss0) / ds.n
        # the peak includes checkpoints: a shard's snapshot image is built in memory
        out["peak_rss_per_point"] = (v.rss_bytes("VmHWM") - rss0) / ds.n
        out["memory_bytes"] = info["memory_bytes"]
        out["storage"] = info["storage"]
        out["memory_bytes_per_point"] = info["memory_bytes_per_point"]
        log(f"{name}: built in {out['build_s']:.0f} s, RSS {out['rss_per_point']:.0f} B/point")
        param, values = SWEEP[index["type"]]
        out["sweep"] = []
        for value in values:
            search = {param: value} if param else {}
            req, exp = benchlib.write_search_requests(os.path.join(scratch, f"{name}-{value}"), "c", ds,
                                                      "none", K, True, **search)
            r = benchlib.run_load(a.loader, v.port, req, exp, K, 1, a.seconds, warmup=1.0)
            r["param"], r["value"] = param, value
            out["sweep"].append(r)
            log(f"{name}: {param}={value} recall={r['recall']:.4f} p50={r['p50_ms']:.2f} "
                f"p99={r['p99_ms']:.2f} ms qps={r['qps']:.0f}")
        ok = [r for r in out["sweep"] if r["recall"] >= 0.95]
        op = ok[0] if ok else out["sweep"][-1]
        out["operating"] = op
        search = {op["param"]: op["value"]} if op["param"] else {}
        req, _ = benchlib.write_search_requests(os.path.join(scratch, f"{name}-c8"), "c", ds, "none",
                                                K, True, **search)
        out["concurrent"] = benchlib.run_load(a.loader, v.port, req, None, K, 8, a.seconds, warmup=1.0)
        log(f"{name}: 8 connections qps={out['concurrent']['qps']:.0f} "
            f"p99={out['concurrent']['p99_ms']:.2f} ms")
        if quant != "none":  # what re-ranking buys: oversampling at the operating setting
            out["oversampling"] = []
            for os_ in OVERSAMPLING:
                req, exp = benchlib.write_search_requests(os.path.join(scratch, f"{name}-os{os_}"), "c",
                                                          ds, "none", K, True, oversampling=os_, **search)
                r = benchlib.run_load(a.loader, v.port, req, exp, K, 1, a.seconds, warmup=1.0)
                r["oversampling"] = os_
                out["oversampling"].append(r)
                log(f"{name}: oversampling={os_} recall={r['recall']:.4f} p50={r['p50_ms']:.2f} ms")
    finally:
        v.stop()
    return out


def wait_trained(v, timeout=7200):
    import time
    t = time.time()
    while time.time() - t < timeout:
        info = v.call("GET", "/collections/c")
        if info.get("index_status", {}).get("trained"):
            return time.time() - t
        time.sleep(1)
    raise RuntimeError("IVF training did not finish")


def data_name(r):
    """Results from before real data sets were supported name no data set: the generated one."""
    return r.get("data") or f"{r['n']}-{r['dim']}"


def setting_of(r, s):
    """ef=…/nprobe=…; a flat scan is exact with float32 vectors, a scan of codes otherwise."""
    if s["param"]:
        return f"{s['param']}={s['value']}"
    return "exact" if r["quantization"] == "none" else "scan of codes"


def fmt_bytes(b):
    return f"{b / 1024:.2f} KiB" if b < 2**20 else f"{b / 2**20:.1f} MiB"


def render(results, facts):
    lines = [f"Machine: {facts.get('cpu', '?')}, {facts.get('cores')} cores, "
             f"{facts.get('memory_gib')} GiB. Searches over HTTP with `vector_b64`, k = 10; "
             "recall@10 against exact ground truth.", "",
             "| data | n | configuration | build s | RSS / point | peak RSS / point | originals | setting | "
             "recall@10 | p50 ms | p99 ms | QPS (1 conn) | QPS (8 conns) | p99 ms (8 conns) |",
             "|---|---|---|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        op = r["operating"]
        setting = setting_of(r, op)
        orig = r["storage"]["originals"]["location"]
        lines.append(f"| {data_name(r)} | {r['n']:,} | {r['config']} | {r['build_s']:.0f} | "
                     f"{fmt_bytes(r['rss_per_point'])} | "
                     f"{fmt_bytes(r['peak_rss_per_point'])} | "
                     f"{orig} | {setting} | {op['recall']:.3f} | {op['p50_ms']:.2f} | {op['p99_ms']:.2f} | "
                     f"{op['qps']:.0f} | {r['concurrent']['qps']:.0f} | {r['concurrent']['p99_ms']:.2f} |")
    lines += ["", "Sweeps (one connection):", "",
              "| data | n | configuration | setting | recall@10 | p50 ms | p99 ms | QPS |",
              "|---|---|---|---|---:|---:|---:|---:|"]
    for r in results:
        for s in r["sweep"]:
            setting = setting_of(r, s)
            lines.append(f"| {data_name(r)} | {r['n']:,} | {r['config']} | {setting} | {s['recall']:.3f} | "
                         f"{s['p50_ms']:.2f} | {s['p99_ms']:.2f} | {s['qps']:.0f} |")
    rows = [r for r in results if r.get("oversampling")]
    if rows:
        lines += ["", "Re-ranking: oversampling at the operating setting (one connection):", "",
                  "| data | n | configuration | setting | oversampling | recall@10 | p50 ms | p99 ms |",
                  "|---|---|---|---|---:|---:|---:|---:|"]
        for r in rows:
            setting = setting_of(r, r["operating"])
            for s in r["oversampling"]:
                lines.append(f"| {data_name(r)} | {r['n']:,} | {r['config']} | {setting} | {s['oversampling']} | "
                             f"{s['recall']:.3f} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="100000", help="generated data sets ('' = none)")
    ap.add_argument("--real", default="", help="real data sets too, e.g. fashion784,glove100 "
                    "(fetched by ../shared/data/get-datasets into --real-dir)")
    ap.add_argument("--real-dir", default=os.path.join(benchlib.ROOT, "datasets"))
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--data-root")
    ap.add_argument("--vectord", default=benchlib.find_binary("vectord"))
    ap.add_argument("--loader", default=benchlib.find_binary("bench/bench_load"))
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--docs", action="store_true", help="rewrite this run's block in docs/BENCHMARKS.md")
    ap.add_argument("--from-json", help="render (and with --docs, publish) earlier results files "
                    "(comma-separated) instead of running; --tag names the block")
    ap.add_argument("--tag", help="name of the docs block (default: the data sets and configurations)")
    a = ap.parse_args()
    facts = benchlib.machine_facts()
    if a.from_json:
        results = []
        for path in a.from_json.split(","):
            with open(path) as f:
                doc = json.load(f)
            facts = doc["facts"]
            results += doc["results"]
        publish(render(results, facts), a.tag or "combined", a.docs)
        return
    results = []
    sets = [("gen", int(x)) for x in a.sizes.split(",") if x] + [("real", x) for x in a.real.split(",") if x]
    for kind, which in sets:
        if kind == "gen":
            ds = benchlib.Dataset(benchlib.ensure_dataset(which, 1536, a.queries, root=a.data_root),
                                  a.queries)
        else:
            ds = benchlib.RealDataset(a.real_dir, which, a.queries)
        with tempfile.TemporaryDirectory() as scratch:
            for name in a.configs.split(","):
                results.append(run_config(name, ds, a, scratch))
                os.makedirs(a.out, exist_ok=True)
                tag = "-".join(["indexes", *[str(w) for _, w in sets], str(datetime.date.today())])
                with open(os.path.join(a.out, tag + ".json"), "w") as f:
                    json.dump({"facts": facts, "command": sys.argv, "results": results}, f, indent=1)
    publish(render(results, facts), a.tag or f"{' '.join(str(w) for _, w in sets)} {a.configs}", a.docs)


def publish(table, run, docs):
    """Prints the table; with docs, replaces (or appends) its block in docs/BENCHMARKS.md."""
    print(table)
    if not docs:
        return
    path = os.path.join(benchlib.ROOT, "docs", "BENCHMARKS.md")
    with open(path) as f:
        text = f.read()
    begin, end = f"<!-- bench/indexes.py {run}: begin -->", f"<!-- bench/indexes.py {run}: end -->"
    block = f"{begin}\n{table}\n{end}"
    if begin in text and end in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + f"\n\n## `bench/indexes.py` ({run})\n\n{block}\n"
    with open(path, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
