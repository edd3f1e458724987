"""One request must not take the server down (issue 18, item 4): an answer
too large for max_response_bytes is refused before the work is done, a
request past its deadline (request_timeout_ms, or ?timeout_ms=) is answered
504 deadline_exceeded, a filter past max_filter_terms is refused, and probes
are answered while heavy searches run."""
import http.client
import json
import random
import re
import threading
import time

import pytest

from conftest import SANITIZED, Client, Server, proc_status

DIM = 4096


@pytest.fixture(scope="module")
def big():
    s = Server()
    c = s.client
    c.ok("PUT", "/collections/big", {"dim": DIM, "metric": "l2"})
    rnd = random.Random(7)
    for b in range(0, 1000, 100):
        c.ok("PUT", "/collections/big/points",
             {"points": [{"id": i, "vector": [rnd.random() for _ in range(DIM)], "payload": {"i": i}}
                         for i in range(b, b + 100)]})
    yield s
    s.stop()


def q(k=1000, **kw):
    return dict({"vector": [0.5] * DIM, "k": k}, **kw)


def test_an_answer_too_large_is_refused_before_the_work(big):
    c = big.client
    # The case: 256 × k=1000 with vectors at dim 4096 (~16 GB of JSON).
    err = c.error("POST", "/collections/big/search/batch",
                  {"searches": [q(with_vector=True)] * 256}, 413, "response_too_large")
    assert "max_response_bytes" in err["message"] and "with_vector=false" in err["message"], err
    c.error("POST", "/collections/big/search/batch", {"searches": [q(with_vector=True)] * 2}, 413,
            "response_too_large")
    # What fits is answered, vectors included.
    hits = c.ok("POST", "/collections/big/search", q(k=100, with_vector=True))
    assert len(hits) == 100 and len(hits[0]["vector"]) == DIM
    assert len(c.ok("POST", "/collections/big/search/batch", {"searches": [q()] * 4})) == 4


def post_raw(port, path, body, timeout=120):
    """POST on a fresh connection; the response object, unread."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    return conn, conn.getresponse()


def test_large_answers_are_streamed_and_equal_the_small_ones(big):
    """Past 1 MiB an answer is written as the client reads it (chunked), not
    built whole; it is the same JSON as the answers sent in one piece."""
    c = big.client
    queries = [dict(q(k=100, with_vector=True), vector=[0.1 * (i + 1)] * DIM) for i in range(3)]
    conn, resp = post_raw(big.port, "/collections/big/search/batch", {"searches": queries})
    assert resp.status == 200 and resp.getheader("Transfer-Encoding") == "chunked", resp.headers
    assert resp.getheader("Content-Type") == "application/json"
    text = resp.read()
    conn.close()
    assert text.endswith(b"}\n") and len(text) > 3 << 20, len(text)
    doc = json.loads(text)
    assert set(doc) == {"result", "time_ms"} and len(doc["result"]) == 3
    for query, hits in zip(queries, doc["result"]):
        small = dict(query, with_vector=False)
        conn, resp = post_raw(big.port, "/collections/big/search", small)
        assert resp.getheader("Content-Length") and resp.getheader("Transfer-Encoding") is None
        one = json.loads(resp.read())["result"]
        conn.close()
        assert [(h["id"], h["score"], h["payload"]) for h in hits] == \
               [(h["id"], h["score"], h["payload"]) for h in one]
        assert all(len(h["vector"]) == DIM for h in hits)
    point = c.ok("GET", f"/collections/big/points/{doc['result'][0][0]['id']}?with_vector=true")
    assert point["vector"] == doc["result"][0][0]["vector"]
    # A client that leaves mid-answer: the answer's memory is given back, and
    # the server goes on serving.
    for _ in range(3):
        conn, resp = post_raw(big.port, "/collections/big/search/batch", {"searches": queries})
        assert resp.read(65536)
        conn.close()
    deadline = time.time() + 10
    while time.time() < deadline and body_bytes(c):
        time.sleep(0.1)
    assert body_bytes(c) == 0
    assert len(c.ok("POST", "/collections/big/search", q(k=3))) == 3


def body_bytes(c):
    _, text = c.request("GET", "/metrics")
    return float(re.search(r"^vectord_http_body_bytes (\S+)$", text, re.M).group(1))


@pytest.mark.skipif(SANITIZED, reason="a sanitizer build's memory is the sanitizer's (shadow, quarantine)")
def test_a_streamed_answer_holds_its_hits_not_its_text():
    """A 180 MB answer (4 × k=1000 with vectors at dim 4096) raises the
    server's peak memory by well under half its text: what is held is the
    hits (floats, 4 bytes each where the text takes ~11), one piece of text
    at a time. Built whole, the text and its tree took twice the text."""
    s = Server(args=["--set", "max_response_bytes=1073741824"])
    try:
        c = s.client
        c.ok("PUT", "/collections/m", {"dim": DIM, "metric": "l2"})
        rnd = random.Random(3)
        for b in range(0, 1000, 100):
            c.ok("PUT", "/collections/m/points",
                 {"points": [{"id": i, "vector": [rnd.random() for _ in range(DIM)]} for i in range(b, b + 100)]})
        time.sleep(0.5)
        base = proc_status(s.proc.pid, "VmRSS")
        conn, resp = post_raw(s.port, "/collections/m/search/batch", {"searches": [q(with_vector=True)] * 4})
        assert resp.status == 200 and resp.getheader("Transfer-Encoding") == "chunked"
        size, tail = 0, b""
        while True:
            chunk = resp.read(1 << 20)
            if not chunk:
                break
            size += len(chunk)
            tail = (tail + chunk)[-64:]
        conn.close()
        peak = proc_status(s.proc.pid, "VmHWM")
        assert tail.endswith(b"}\n") and b'"time_ms":' in tail and size > 150e6, (size, tail)
        assert peak - base < size / 2, ((peak - base) / 2**20, size / 2**20)
        print(f"answer {size / 2**20:.0f} MiB, peak +{(peak - base) / 2**20:.0f} MiB")
    finally:
        s.stop()


def test_a_request_past_its_deadline_is_answered_504(big):
    c = big.client
    err = c.error("POST", "/collections/big/search/batch?timeout_ms=1",
                  {"searches": [q(k=1000)] * 64}, 504, "deadline_exceeded")
    assert "timeout_ms" in err["message"], err
    for bad in ("0", "-1", "x", "99999999"):
        c.error("POST", f"/collections/big/search?timeout_ms={bad}", q(k=1), 400, "invalid_request")
    assert len(c.ok("POST", "/collections/big/search?timeout_ms=20000", q(k=3))) == 3


def test_a_filter_past_max_filter_terms_is_refused(big):
    c = big.client
    f = {"must_not": [{"key": "i", "match": {"any": list(range(j * 1024, (j + 1) * 1024))}}
                      for j in range(64)]}
    err = c.error("POST", "/collections/big/search", q(k=1, filter=f), 400, "invalid_filter")
    assert "max_filter_terms" in err["message"], err
    small = {"must_not": [{"key": "i", "match": {"any": list(range(100))}}]}
    assert all(h["id"] >= 100 for h in c.ok("POST", "/collections/big/search", q(k=5, filter=small)))


def test_probes_are_answered_while_heavy_searches_run(big):
    """Searches run on the request workers, not on the HTTP threads: a
    probe sent while four heavy batches run comes back before they do."""
    heavy = {"searches": [q(k=1000)] * 256}
    done = []

    def run():
        cl = Client(big.port)
        st, _ = cl.request("POST", "/collections/big/search/batch", heavy)
        done.append((time.time(), st))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    probe = Client(big.port)
    probes = []
    for _ in range(5):
        assert probe.request("GET", "/healthz")[0] == 200
        assert probe.request("GET", "/collections")[0] == 200  # a cheap route too
        probes.append(time.time())
    for t in threads:
        t.join(120)
    # 504 only where the server runs slowly (a sanitizer build): past request_timeout_ms.
    assert len(done) == 4 and all(st in (200, 504) for _, st in done), done
    assert probes[-1] < min(t for t, _ in done), "the probes waited for the heavy searches"


def random_collection(c, name, dim, n, seed):
    """An l2 flat collection of n random points in one upsert; the generator, to draw more."""
    c.ok("PUT", f"/collections/{name}", {"dim": dim, "metric": "l2"})
    rnd = random.Random(seed)
    c.ok("PUT", f"/collections/{name}/points",
         {"points": [{"id": i, "vector": [rnd.random() for _ in range(dim)]} for i in range(n)]})
    return rnd


def searches_by_thread(c):
    _, text = c.request("GET", "/metrics")
    return {t: int(n) for t, n in re.findall(r'^vectord_search_requests_total\{thread="(\w+)"\} (\d+)$', text, re.M)}


def test_cheap_searches_run_on_the_http_thread_and_heavy_ones_on_the_workers():
    """A search whose work is small (VD_INLINE_MAX_WORK, 8 M multiply-adds)
    runs on the HTTP thread that read it: handing it to a request worker and
    back cost more than the search. Heavier ones still go to the workers.
    Both give the same answers."""
    s = Server()
    try:
        c = s.client
        rnd = random_collection(c, "m", 256, 200, 11)
        queries = [[rnd.random() for _ in range(256)] for _ in range(3)]
        before = searches_by_thread(c)
        assert set(before) == {"http", "worker"}, before
        # 200 points × 256: 51 K multiply-adds a search; on the HTTP thread.
        singles = [c.ok("POST", "/collections/m/search", {"vector": v, "k": 5}) for v in queries]
        after = searches_by_thread(c)
        assert after["http"] - before["http"] == 3 and after["worker"] == before["worker"], (before, after)
        # 200 searches in one batch: 10 M; on a worker, once.
        batch = c.ok("POST", "/collections/m/search/batch",
                     {"searches": [{"vector": queries[i % 3], "k": 5} for i in range(200)]})
        last = searches_by_thread(c)
        assert last["worker"] - after["worker"] == 1 and last["http"] == after["http"], (after, last)
        for i in range(3):
            assert [h["id"] for h in batch[i]] == [h["id"] for h in singles[i]]
        # Asking for many hits with their vectors counts their rendering: on a worker.
        c.ok("POST", "/collections/m/search", {"vector": queries[0], "k": 1000, "with_vector": True})
        assert searches_by_thread(c)["worker"] - last["worker"] == 1
    finally:
        s.stop()


def test_the_request_queue_is_bounded():
    s = Server(args=["--set", "request_workers=1", "--set", "max_queued_requests=2"])
    try:
        c = s.client
        random_collection(c, "m", 512, 2000, 3)
        body = {"searches": [{"vector": [0.5] * 512, "k": 1000}] * 64}
        results = []

        def run():
            results.append(Client(s.port).request("POST", "/collections/m/search/batch", body)[0])

        threads = [threading.Thread(target=run) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert 503 in results and 200 in results, results
        _, text = c.request("GET", "/metrics")
        assert 'vectord_http_overloaded_total{limit="queue"}' in text
    finally:
        s.stop()


def test_sigterm_ends_heavy_searches_and_exits_0():
    """Shutdown used to wait for every handler; offloaded searches now stop
    at their next deadline check, answered 504 'shutting down'."""
    s = Server()
    c = s.client
    c.ok("PUT", "/collections/m", {"dim": 1024, "metric": "l2"})
    rnd = random.Random(5)
    for b in range(0, 2000, 500):
        c.ok("PUT", "/collections/m/points",
             {"points": [{"id": i, "vector": [rnd.random() for _ in range(1024)]} for i in range(b, b + 500)]})
    # Twelve batches of 256 exact searches (~0.3 s of search work each, more
    # under a sanitizer) on two request workers. SIGTERM comes once the queue
    # holds four (two running, the rest waiting), whatever the machine's speed:
    # the waiting ones are certain to be stopped. (A batch's answer is
    # streamed after its searches, so the work to stop is the searching.)
    data = json.dumps({"searches": [{"vector": [0.5] * 1024, "k": 100}] * 256})
    answers = []

    def run():
        try:
            answers.append(Client(s.port).request("POST", "/collections/m/search/batch", data))
        except (ConnectionError, OSError, http.client.HTTPException) as e:
            answers.append((None, str(e)))

    threads = [threading.Thread(target=run) for _ in range(12)]
    for t in threads:
        t.start()
    depth, deadline = 0, time.time() + 60
    while depth < 4 and time.time() < deadline:
        _, text = c.request("GET", "/metrics")
        depth = int(re.search(r"^vectord_request_queue_depth (\d+)$", text, re.M).group(1))
    assert depth >= 4, f"the request queue never held four batches (depth {depth})"
    s.stop()  # SIGTERM: asserts exit 0 within its timeout
    for t in threads:
        t.join(60)
    statuses = [a[0] for a in answers]
    assert len(statuses) == 12, answers
    stopped = [a for a in answers if a[0] == 504]
    assert all(st in (200, 503, 504, None) for st in statuses), statuses
    assert stopped and "shutting down" in stopped[0][1]["error"]["message"], answers


def test_large_writes_are_applied_off_the_http_threads():
    """Applying a batch to an HNSW graph is heavy too when the write builds the
    graph itself (index_backlog_max 0, or a backlog over it; by default the
    graph is built behind the writes, test_backlog.py): it runs on the request
    workers once the write is durable, so probes come back first even while
    three large batches are applied."""
    s = Server(args=["--set", "index_backlog_max=0"])
    try:
        c = s.client
        rnd = random.Random(11)
        n = 1024 if SANITIZED else 4096  # a sanitizer makes graph building ~10x slower
        bodies = []
        for k in range(3):
            c.ok("PUT", f"/collections/g{k}", {"dim": 256, "metric": "l2", "shards": 1, "index": {"type": "hnsw"}})
            bodies.append(json.dumps({"points": [{"id": i, "vector": [rnd.random() for _ in range(256)]}
                                                 for i in range(n)]}))
        done = []

        def run(k):
            writer = Client(s.port)
            writer.conn.timeout = 300  # three batches share two request workers
            for attempt in range(5):
                try:
                    st, doc = writer.request("PUT", f"/collections/g{k}/points", bodies[k])
                    break
                except ConnectionRefusedError:
                    # Seen once in a while under TSan on loopback, before anything was sent
                    # (the write was never logged): connect again.
                    time.sleep(0.2)
                    writer = Client(s.port)
                    writer.conn.timeout = 300
            done.append((time.time(), st, doc))

        threads = [threading.Thread(target=run, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        # Until both request workers are applying a batch (depth 2 or more): a fixed
        # sleep let a fast (unloaded) run finish a batch first, and waiting for all
        # three at once missed the window when one body took longer to arrive.
        probe = Client(s.port)
        depth, deadline = 0, time.time() + 120
        while depth < 2 and time.time() < deadline and len(done) < 3:
            _, text = probe.request("GET", "/metrics")
            depth = int(re.search(r"^vectord_request_queue_depth (\d+)$", text, re.M).group(1))
        assert depth >= 2, f"two batches were never on the request workers together (depth {depth})"
        for _ in range(3):
            assert probe.request("GET", "/healthz")[0] == 200
        probed = time.time()
        for t in threads:
            t.join(300)
        assert len(done) == 3 and all(st == 200 and doc["result"]["inserted"] == n for _, st, doc in done), done
        # Two batches were on the request workers (depth 2, above), and the probes were
        # answered while the last of them was still to be applied.
        assert probed < max(t for t, _, _ in done), "the probes waited for the writes"
        for k in range(3):
            assert c.ok("GET", f"/collections/g{k}")["points_count"] == n
    finally:
        s.stop()
