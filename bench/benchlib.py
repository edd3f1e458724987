"""Shared pieces of the benchmark suite (bench/run) and of its tests: data
sets, ground truth, recall, a vectord process, loading points over HTTP,
request files for the C load generator (bench_load) and running it, and the
machine facts that go with every result."""
import base64
import http.client
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import datagen  # noqa: E402


# ---- data sets -------------------------------------------------------------

def read_vecs(path, dtype):
    raw = np.fromfile(path, dtype=dtype)
    d = raw[:1].view(np.int32)[0]
    return raw.reshape(-1, d + 1)[:, 1:].copy()


DATASET_FILES = ("base.fvecs", "query.fvecs", "gt.ivecs", "gt_f1.ivecs", "gt_f10.ivecs",
                 "gt_f50.ivecs", "gt_user.ivecs", "payload.npz", "meta.json")


def dataset_dir(n, dim, seed=1, root=None):
    root = root or os.path.join(HERE, "data")
    return os.path.join(root, f"{n}-{dim}" + (f"-s{seed}" if seed != 1 else ""))


def ensure_dataset(n, dim, queries=500, seed=1, root=None):
    """Generates (once; cached) the embedding-like data set of bench/datagen.py."""
    d = dataset_dir(n, dim, seed, root)
    if all(os.path.exists(os.path.join(d, f)) for f in DATASET_FILES):
        with open(os.path.join(d, "meta.json")) as f:
            if json.load(f).get("queries", 0) >= queries:
                return d
    subprocess.run([sys.executable, os.path.join(HERE, "datagen.py"), d, "--n", str(n), "--dim",
                    str(dim), "--queries", str(queries), "--seed", str(seed)], check=True)
    return d


def open_dataset(path, queries):
    """The data set at path (bench/data/<n>-<dim>), generated first if missing."""
    if not os.path.exists(os.path.join(path, "base.fvecs")):
        n, dim = (int(x) for x in os.path.basename(path).split("-")[:2])
        ensure_dataset(n, dim, root=os.path.dirname(path))
    return Dataset(path, queries=queries)


class Dataset:
    """A generated data set (bench/datagen.py): cosine, with tenancy payloads
    and ground truth for the filters."""
    real = False

    def __init__(self, path, queries=None):
        self.path = path
        self.name = os.path.basename(path)
        with open(os.path.join(path, "meta.json")) as f:
            self.meta = json.load(f)
        self.metric = self.meta.get("metric", "cosine")
        # A real set converted by datagen.py --real has no tenancy payloads.
        self.filters = (["tenant"] if "tenant" in self.meta else []) + [f"g<{s}" for s in self.meta["filters"]]
        self.base = read_vecs(os.path.join(path, "base.fvecs"), np.float32)
        self.queries = read_vecs(os.path.join(path, "query.fvecs"), np.float32)[:queries]
        nq = len(self.queries)
        self.gt = {"none": read_vecs(os.path.join(path, "gt.ivecs"), np.int32)[:nq]}
        for s in self.meta["filters"]:
            self.gt[f"g<{s}"] = read_vecs(os.path.join(path, f"gt_f{s}.ivecs"), np.int32)[:nq]
        self.payload = None
        if "tenant" in self.meta:
            self.gt["tenant"] = read_vecs(os.path.join(path, "gt_user.ivecs"), np.int32)[:nq]
            self.payload = dict(np.load(os.path.join(path, "payload.npz")))
        self.n, self.dim = self.base.shape

    def filter_json(self, name):
        """vectord's filter for a ground-truth name."""
        if name == "none":
            return None
        if name == "tenant":
            return {"must": [{"key": "userId", "match": {"value": self.meta["tenant"]}}]}
        s = int(name[2:])
        return {"must": [{"key": "g", "range": {"lt": s}}]}

    def selectivity(self, name):
        if name == "none":
            return 1.0
        if name == "tenant":
            return self.meta["tenant_points"] / self.n
        return int(name[2:]) / 100


class RealDataset:
    """A real data set fetched by ../shared/data/get-datasets DIR (GloVe-100,
    Fashion-MNIST-784, MiniLM-384): NAME_base.fvecs, NAME_query.fvecs,
    NAME_groundtruth.ivecs (exact top 100 by the set's metric) and NAME.json.
    No payloads, so no filtered searches."""
    real = True

    def __init__(self, root, name, queries=None):
        with open(os.path.join(root, f"{name}.json")) as f:
            self.meta = json.load(f)
        self.name = name
        self.path = root
        self.metric = {"angular": "cosine", "cosine": "cosine", "l2": "l2"}[self.meta["metric"]]
        self.base = read_vecs(os.path.join(root, f"{name}_base.fvecs"), np.float32)
        self.queries = read_vecs(os.path.join(root, f"{name}_query.fvecs"), np.float32)[:queries]
        self.gt = {"none": read_vecs(os.path.join(root, f"{name}_groundtruth.ivecs"),
                                     np.int32)[:len(self.queries)]}
        self.payload = None
        self.filters = []
        self.n, self.dim = self.base.shape

    def filter_json(self, name):
        return None

    @staticmethod
    def available(root):
        """Names of the sets in root that have queries and ground truth."""
        if not root or not os.path.isdir(root):
            return []
        return sorted(f[:-len("_groundtruth.ivecs")] for f in os.listdir(root)
                      if f.endswith("_groundtruth.ivecs"))


def recall_at_k(found, truth, k):
    """Mean recall@k: found and truth are per-query id lists, best first.
    Per query: common ids among the first k of each / min(k, len(truth))."""
    total = 0.0
    for f, t in zip(found, truth):
        t = [i for i in list(t)[:k] if i >= 0]  # -1 pads rows with fewer than k matches
        total += len(set(list(f)[:k]) & set(t)) / len(t) if t else 1.0
    return total / len(truth) if len(truth) else 1.0


# ---- vectord ---------------------------------------------------------------

def find_binary(name, build_dirs=("build-release", "build", "build-test")):
    for b in build_dirs:
        p = os.path.join(ROOT, b, name)
        if os.path.exists(p):
            return p
    return None


class Vectord:
    """A vectord on a free loopback port with a scratch data directory."""

    def __init__(self, binary, args=()):
        self.tmp = tempfile.mkdtemp(prefix="vectord-bench-")
        self.log = open(os.path.join(self.tmp, "vectord.log"), "w+")
        self.proc = subprocess.Popen([binary, "--listen", "127.0.0.1:0", "--data-dir",
                                      os.path.join(self.tmp, "data"), *args],
                                     stdout=self.log, stderr=self.log)
        self.port = None
        deadline = time.time() + 60
        while time.time() < deadline:
            self.log.seek(0)
            text = self.log.read()
            m = re.search(r'msg="listening" addr=127\.0\.0\.1:(\d+)', text)
            if m and 'msg="ready"' in text:
                self.port = int(m.group(1))
                break
            if self.proc.poll() is not None:
                raise RuntimeError("vectord exited:\n" + text)
            time.sleep(0.02)
        if not self.port:
            raise RuntimeError("vectord did not start")
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)

    def call(self, method, path, body=None):
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=None if body is None else json.dumps(body),
                                  headers={"Content-Type": "application/json"})
                r = self.conn.getresponse()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # vectord closes a connection idle for connection_timeout_s (a long load
                # on other connections): connect again, once.
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
                if attempt:
                    raise
        doc = json.loads(r.read())
        if r.status != 200:
            raise RuntimeError(f"{method} {path}: {r.status} {doc}")
        return doc["result"]

    def rss_bytes(self, field="VmRSS"):
        """Resident memory now (VmRSS), or its peak so far (field="VmHWM")."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            m = re.search(field + r":\s+(\d+) kB", f.read())
        return int(m.group(1)) * 1024

    def stop(self):
        self.conn.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=600)
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def load_points(v, collection, ds, batch=500):
    """Upserts every point of ds with its payload (vector_b64); returns seconds."""
    t = time.time()
    for s in range(0, ds.n, batch):
        pts = []
        for i in range(s, min(ds.n, s + batch)):
            p = {"id": i, "vector_b64": base64.b64encode(ds.base[i].tobytes()).decode()}
            if ds.payload is not None:
                p["payload"] = datagen.payload_json(ds.payload, i)
            pts.append(p)
        v.call("PUT", f"/collections/{collection}/points", {"points": pts})
    return time.time() - t


def wait_for_graph(v, collection, timeout=3600):
    """Waits until the collection's graph holds every point (index_backlog 0:
    until then the tail is scanned exactly, and a search measures that);
    returns the seconds waited."""
    t = time.time()
    while v.call("GET", f"/collections/{collection}").get("index_backlog", 0):
        if time.time() - t > timeout:
            raise RuntimeError(f"{collection}: the graph did not catch up in {timeout} s")
        time.sleep(0.2)
    return time.time() - t


# ---- the in-process programs (bench/compare_common.hpp) ---------------------

# How the C++ comparison programs are built: natively, as their users would.
NATIVE_CXX = ["g++", "-O3", "-march=native", "-std=c++17", "-pthread", "-I", HERE]


def build_hnswlib(exe):
    """Builds bench/hnsw_hnswlib.cpp against Debian's libhnswlib-dev into exe;
    False (with a message) when g++ or the headers are missing."""
    if not (shutil.which("g++") and os.path.exists("/usr/include/hnswlib/hnswlib.h")):
        print("hnswlib skipped: install g++ and libhnswlib-dev to compare", file=sys.stderr)
        return False
    subprocess.run(NATIVE_CXX + ["-o", exe, os.path.join(HERE, "hnsw_hnswlib.cpp")], check=True)
    return True


def serve_answer(proc):
    """The next JSON line a program in --serve mode prints; raises if it died."""
    for line in proc.stdout:
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"{proc.args[0]} exited with status {proc.wait()}")


# ---- the load generator ----------------------------------------------------

def write_search_requests(path, collection, ds, gt_name, k=10, b64=False, **search):
    """One search per query and the ground truth per line for bench_load
    --expect. The vector is a JSON array, as MemoryService sends it (numpy's
    float32 values made Python floats: json.dumps writes up to 17 significant
    digits; until 2026-12-07 they were rounded to 6 decimals, a shorter body
    than any client sends), or with b64 the "vector_b64" form (little-endian
    float32, base64)."""
    flt = ds.filter_json(gt_name)
    with open(path + ".req", "w") as rf, open(path + ".gt", "w") as gf:
        for q, t in zip(ds.queries, ds.gt[gt_name]):
            vec = ({"vector_b64": base64.b64encode(q.astype("<f4").tobytes()).decode()} if b64
                   else {"vector": q.tolist()})
            body = {**vec, "k": k, "with_payload": False, **search}
            if flt:
                body["filter"] = flt
            rf.write(f"POST /collections/{collection}/search\t{json.dumps(body)}\n")
            gf.write(",".join(str(int(i)) for i in t[:k] if i >= 0) + "\n")
    return path + ".req", path + ".gt"


def run_load(binary, port, requests, expect=None, k=10, connections=1, seconds=5.0, rate=None,
             warmup=1.0, server_pid=None):
    """bench_load's JSON report; with server_pid it holds that process's CPU too."""
    args = [binary, "--port", str(port), "--requests", requests, "--k", str(k), "--connections",
            str(connections), "--seconds", str(seconds), "--warmup", str(warmup)]
    if server_pid:
        args += ["--server-pid", str(server_pid)]
    if expect:
        args += ["--expect", expect]
    if rate:
        args += ["--rate", str(rate)]
    r = subprocess.run(args, capture_output=True, text=True, timeout=seconds + warmup + 300)
    if r.returncode != 0:
        raise RuntimeError(f"bench_load failed: {r.stderr}")
    return json.loads(r.stdout)


# ---- facts -----------------------------------------------------------------

def machine_facts():
    facts = {"kernel": platform.release(), "python": platform.python_version(),
             "numpy": np.__version__, "cores": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
        m = re.search(r"model name\s*:\s*(.+)", info)
        facts["cpu"] = m.group(1).strip() if m else platform.processor()
        flags = set(re.search(r"flags\s*:\s*(.+)", info).group(1).split())
        facts["cpu_flags"] = sorted(f for f in flags if f in (
            "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
            "avx512_fp16", "avx_vnni", "sse4_2"))
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/meminfo") as f:
            facts["memory_gib"] = round(int(re.search(r"MemTotal:\s+(\d+)", f.read()).group(1))
                                        / 2**20, 1)
    except OSError:
        pass
    try:
        with open("/etc/debian_version") as f:
            facts["debian"] = f.read().strip()
    except OSError:
        pass
    with open("/proc/loadavg") as f:
        facts["loadavg_at_start"] = f.read().split()[0]
    return facts
