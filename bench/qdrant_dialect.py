#!/usr/bin/env python3
"""What the Qdrant dialect costs (issue 21): starts build-release/vectord with
qdrant_listen, loads N random DIM-d points into an HNSW collection through the
native API (vector_b64), then bench/qdrant_dialect.mjs times the same searches
through the native route, the Qdrant route and the official Qdrant JS client
(tests/tools' packages: `npm ci --prefix tests/tools` first).
  bench/qdrant_dialect.py [--n 20000] [--dim 384] [--queries 200] [--rounds 3]"""
import argparse
import base64
import http.client
import json
import os
import re
import subprocess
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    binary = os.path.join(ROOT, "build-release", "vectord")
    with tempfile.TemporaryDirectory() as d:
        log = open(os.path.join(d, "log"), "w+")
        p = subprocess.Popen([binary, "--listen", "127.0.0.1:0", "--data-dir", os.path.join(d, "data"),
                              "--set", "qdrant_listen=127.0.0.1:0"], stderr=log)
        try:
            deadline = time.time() + 30
            while True:
                text = open(log.name).read()
                ports = re.findall(r'msg="listening(?: \(Qdrant API\))?" addr=127\.0\.0\.1:(\d+)', text)
                if len(ports) == 2 and 'msg="ready"' in text:
                    break
                assert time.time() < deadline, text
                time.sleep(0.05)
            qport, nport = ports  # the Qdrant line comes first
            c = http.client.HTTPConnection("127.0.0.1", int(nport))

            def req(method, path, body):
                c.request(method, path, json.dumps(body), {"Content-Type": "application/json"})
                r = c.getresponse()
                data = r.read()
                assert r.status == 200, data[:300]

            req("PUT", "/collections/b", {"dim": a.dim, "metric": "cosine", "index": {"type": "hnsw"}})
            x = np.random.default_rng(1).standard_normal((a.n, a.dim)).astype("<f4")
            for i in range(0, a.n, 500):
                req("PUT", "/collections/b/points", {"points": [
                    {"id": j, "vector_b64": base64.b64encode(x[j].tobytes()).decode()} for j in range(i, min(a.n, i + 500))]})
            subprocess.run(["node", os.path.join(ROOT, "bench", "qdrant_dialect.mjs"), f"http://127.0.0.1:{nport}",
                            f"http://127.0.0.1:{qport}", "b", str(a.dim), str(a.queries), str(a.rounds)], check=True)
        finally:
            p.terminate()
            p.wait()


if __name__ == "__main__":
    main()
