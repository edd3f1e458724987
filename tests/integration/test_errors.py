"""Every documented error: its status, its stable code, a message naming the
problem; and the server keeps serving after each, and after garbage."""
import json
import random
import socket

import pytest

from conftest import Server


@pytest.fixture
def coll(client):
    client.ok("PUT", "/collections/m", {"dim": 3, "metric": "cosine"})
    client.ok("PUT", "/collections/m/points", {"points": [{"id": 1, "vector": [1, 2, 3]}]})
    return client


def test_request_errors(coll):
    c = coll
    e = c.error("POST", "/collections/m/search", '{"vector":[1,2,', 400, "malformed_json")
    assert "not valid JSON" in e["message"]
    e = c.error("POST", "/collections/m/search", '{"vector":[1,2,3]} trailing', 400, "malformed_json")
    assert "(error at byte 19 of 27)" in e["message"], e  # the "t", though the vector before it was cut
    # A lifted vector's text is cut out before the parse: offsets still count the body as sent.
    body = '{"vector":[0.125, 0.25, 0.5],"k": x}'
    e = c.error("POST", "/collections/m/search", body, 400, "malformed_json")
    assert f"error at byte {body.index('x')} of {len(body)}" in e["message"], e
    c.error("POST", "/collections/m/search", '{"vector":[NaN,1,2]}', 400, "malformed_json")
    e = c.error("POST", "/collections/m/search", {"vector": [1, 2]}, 400, "dimension_mismatch")
    assert e["message"] == "vector has 2 values; collection 'm' expects 3"
    e = c.error("PUT", "/collections/m/points", {"points": [{"id": 1, "vector": [1, 2, 3]},
                                                             {"id": 2, "vector": [1, 2, 3, 4]}]},
                400, "dimension_mismatch")
    assert "points[1].vector has 4 values" in e["message"]
    c.error("PUT", "/collections/m/points", '{"points":[{"id":1,"vector":[1,2,1e999]}]}', 400, "invalid_vector")
    c.error("PUT", "/collections/m/points", {"points": [{"id": 1, "vector": [1, "x", 3]}]}, 400, "invalid_vector")
    c.error("PUT", "/collections/m/points", {"points": [{"id": 1, "vector": [0, 0, 0]}]}, 400, "invalid_vector")
    c.error("PUT", "/collections/m/points", {"points": []}, 400, "empty_batch")
    c.error("PUT", "/collections/m/points", {"points": [{"id": i, "vector": [1, 1, 1]} for i in range(4097)]},
            413, "batch_too_large")
    c.error("PUT", "/collections/m/points", {"points": [{"id": -1, "vector": [1, 1, 1]}]}, 400, "invalid_id")
    c.error("PUT", "/collections/m/points", {"points": [{"id": "x" * 257, "vector": [1, 1, 1]}]}, 400, "invalid_id")
    c.error("PUT", "/collections/m/points", {"points": [{"id": 1, "vector": [1, 1, 1], "payload": 5}]},
            400, "invalid_request")
    c.error("PUT", "/collections/m/points", {"points": [{"id": 1, "vector": [1, 1, 1], "colour": 5}]},
            400, "unknown_field")
    c.error("PUT", "/collections/m/points", None, 400, "invalid_request")
    c.error("POST", "/collections/m/search", {"vector": [1, 1, 1], "k": 0}, 400, "out_of_range")
    c.error("POST", "/collections/m/search", {"vector": [1, 1, 1], "k": 1001}, 400, "out_of_range")
    c.error("POST", "/collections/m/search", {"vector": [1, 1, 1], "k": "ten"}, 400, "invalid_request")
    c.error("POST", "/collections/m/search", {"vector": [1, 1, 1], "filter": {"must": [{"key": "a"}]}},
            400, "invalid_filter")
    c.error("POST", "/collections/m/search", {"vector": [1, 1, 1], "filter": {"must": [{"must": [{"must": [
        {"must": [{"must": [{"must": [{"must": [{"must": [{"must": []}]}]}]}]}]}]}]}]}}, 400, "invalid_filter")
    c.error("POST", "/collections/m/search", [1, 2, 3], 400, "invalid_request")
    c.error("POST", "/collections/m/search/batch", {"searches": []}, 400, "empty_batch")
    e = c.error("POST", "/collections/m/search/batch",
                {"searches": [{"vector": [1, 1, 1]}, {"vector": [1]}]}, 400, "dimension_mismatch")
    assert "searches[1].vector" in e["message"]
    c.error("POST", "/collections/m/points/delete", {"ids": []}, 400, "empty_batch")
    c.error("POST", "/collections/m/points/delete", {}, 400, "invalid_request")
    c.error("POST", "/collections/m/points/delete", {"filter": {"must": 1}}, 400, "invalid_filter")
    c.error("GET", "/collections/m/points/1?with_vector=maybe", status=400, code="invalid_request")
    c.error("PUT", "/collections/m/payload_indexes", {"field": "a", "type": "geo"}, 400, "invalid_request")


def test_duplicate_keys_are_refused_and_change_nothing(coll):
    c = coll
    e = c.error("POST", "/collections/m/search", '{"vector":[1,2,3],"k":1,"k":2}', 400, "malformed_json")
    assert e["message"] == "request body has the key 'k' twice in the top-level object; keys must be unique"
    e = c.error("PUT", "/collections/m/points",
                '{"points":[{"id":1,"vector":[1,1,1]},{"id":2,"vector":[1,1,1],'
                '"payload":{"tag":"a","n":1,"tag":"b"}}]}', 400, "malformed_json")
    assert "key 'tag' twice in points[1].payload" in e["message"], e
    e = c.error("POST", "/collections/m/points/delete",
                '{"filter":{"must":[{"key":"a","match":{"value":1,"value":2}}]}}', 400, "malformed_json")
    assert "filter.must[0].match" in e["message"], e
    assert not c.ok("GET", "/collections/m/points/1").get("payload")
    assert c.ok("GET", "/collections/m")["points_count"] == 1
    # The same key in different objects is fine, and so is an object of many keys.
    c.ok("PUT", "/collections/m/points", {"points": [
        {"id": 2, "vector": [1, 1, 1], "payload": {"a": {"a": 1}, "b": [{"a": 1}, {"a": 2}]}},
        {"id": 3, "vector": [1, 1, 1], "payload": {f"k{i}": i for i in range(20000)}}]})
    assert c.ok("GET", "/collections/m/points/3")["payload"]["k19999"] == 19999


def test_collection_errors(client):
    c = client
    c.error("PUT", "/collections/bad.name", {"dim": 3}, 400, "invalid_name")
    c.error("PUT", "/collections/" + "a" * 65, {"dim": 3}, 400, "invalid_name")
    c.error("PUT", "/collections/x", {"dim": 0}, 400, "out_of_range")
    c.error("PUT", "/collections/x", {"dim": 4097}, 400, "out_of_range")
    c.error("PUT", "/collections/x", {"dim": 3, "metric": "hamming"}, 400, "invalid_request")
    c.error("PUT", "/collections/x", {"dim": 3, "shards": 0}, 400, "out_of_range")
    e = c.error("PUT", "/collections/x", {"dim": 3, "index": {"type": "hnsw", "m": 3}}, 400, "out_of_range")
    assert "index.m must be between 4 and 128" in e["message"]
    c.error("PUT", "/collections/x", {"dim": 3, "index": {"type": "hnsw", "ef_construction": 5000}}, 400,
            "out_of_range")
    c.error("PUT", "/collections/x", {"dim": 3, "index": {"type": "hnsw", "M": 16}}, 400, "unknown_field")
    c.error("PUT", "/collections/x", {"dim": 3, "index": {"type": "flat", "m": 16}}, 400, "unknown_field")
    c.error("PUT", "/collections/x", {"dim": 3, "index": {"type": "annoy"}}, 400, "unsupported_index")
    c.error("PUT", "/collections/x", {"dim": 3, "index": {"type": "ivf", "nlist": 70000}}, 400, "out_of_range")
    c.error("PUT", "/collections/x", {"dim": 3, "quantization": "int4"}, 400, "unsupported_index")
    c.error("PUT", "/collections/x", {"dim": 3, "quantization": {"type": "sq8", "oversampling": 0}}, 400,
            "invalid_request")
    c.error("PUT", "/collections/x", {"dim": 3, "quantization": {"type": "none", "originals": "disk"}}, 400,
            "invalid_request")
    c.error("PUT", "/collections/x", None, 400, "invalid_request")
    c.error("PUT", "/collections/x", {"dim": 3, "dims": 3}, 400, "unknown_field")
    c.error("GET", "/collections/nope", status=404, code="collection_not_found")
    c.error("POST", "/collections/nope/search", {"vector": [1]}, 404, "collection_not_found")
    c.error("PUT", "/collections/nope/points", {"points": []}, 404, "collection_not_found")
    c.error("GET", "/collections/nope/points/1", status=404, code="collection_not_found")


def test_routing_and_transport_errors(client):
    c = client
    c.error("GET", "/nowhere", status=404, code="not_found")
    c.error("GET", "/collections/a/b/c/d", status=404, code="not_found")
    status, body, resp = c.request("DELETE", "/collections/m/search", raw=True)
    assert status == 405 and resp.getheader("Allow") == "POST"
    assert json.loads(body)["error"]["code"] == "method_not_allowed"
    c.error("POST", "/collections", {}, 405, "method_not_allowed")
    # HEAD on every GET route: the GET's status and headers, no body.
    status, body, resp = c.request("POST", "/healthz", {}, raw=True)
    assert status == 405 and resp.getheader("Allow") == "GET, HEAD"
    for path, want in (("/healthz", 200), ("/collections", 200), ("/metrics", 200), ("/collections/nope", 404)):
        get_status, get_body, _ = c.request("GET", path, raw=True)
        status, body, resp = c.request("HEAD", path, raw=True)
        assert status == get_status == want and body == b"", (path, status, body)
        # the length of the body a GET would get (time_ms and the metrics vary between the two)
        assert abs(int(resp.getheader("Content-Length")) - len(get_body)) < 64, path
    c.error("PUT", "/collections/x", '{"dim":3}', 415, "unsupported_media_type",
            headers={"Content-Type": "text/plain"})
    c.error("PATCH", "/collections/x", '{"index":{}}', 415, "unsupported_media_type",
            headers={"Content-Type": "text/plain"})
    # A compressed body is refused as such, not parsed as broken JSON.
    import gzip
    err = c.error("PUT", "/collections/x", gzip.compress(b'{"dim":3}'), 415, "unsupported_media_type",
                  headers={"Content-Encoding": "gzip"})
    assert "gzip" in err["message"] and "uncompressed" in err["message"], err
    c.request("PUT", "/collections/y", '{"dim":3}', headers={"Content-Encoding": "identity"})
    assert c.ok("GET", "/collections/y")["dim"] == 3
    # curl -d sends x-www-form-urlencoded: accepted as JSON
    c.request("PUT", "/collections/x", '{"dim":3}',
              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert c.ok("GET", "/collections/x")["dim"] == 3


def test_body_limit():
    s = Server(args=["--set", "max_body_bytes=2048"])
    try:
        c = s.client
        c.ok("PUT", "/collections/m", {"dim": 3})
        big = json.dumps({"points": [{"id": i, "vector": [1, 2, 3]} for i in range(200)]})
        e = c.error("PUT", "/collections/m/points", big, 413, "body_too_large")
        assert "2048" in e["message"]
        # chunked upload without Content-Length is cut off too
        sock = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        sock.sendall(b"PUT /collections/m/points HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                     b"Content-Type: application/json\r\n\r\n")
        chunk = b"[" * 1000
        reply = b""
        try:
            for _ in range(10):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                reply += data
                if b"}}" in reply:
                    break
        except (ConnectionResetError, socket.timeout):
            pass
        sock.close()
        assert b" 413 " in reply.split(b"\r\n")[0], reply[:200]
        assert b"body_too_large" in reply
        assert c.ok("GET", "/healthz")["status"] == "ok"
    finally:
        s.stop()


def test_garbage_never_kills_the_server(server):
    """Random and hostile bodies on every route: always a JSON answer, never a crash."""
    c = server.client
    c.ok("PUT", "/collections/m", {"dim": 3, "payload_indexes": {"a": "keyword", "b": "numeric"}})
    rng = random.Random(1234)
    routes = [("PUT", "/collections/g"), ("PUT", "/collections/m/points"),
              ("POST", "/collections/m/search"), ("POST", "/collections/m/search/batch"),
              ("POST", "/collections/m/points/delete"), ("PUT", "/collections/m/payload_indexes")]
    pieces = ['{', '}', '[', ']', '"', ':', ',', 'null', 'true', '1e999', '-0', '"points"', '"vector"',
              '"filter"', '"must"', '"key"', '"match"', '"range"', '"id"', '"k"', '[1,2,3]', '\\u0000',
              '"\\ud800"', '9007199254740993', '"searches"', '"any"', '{"must":[', '"gte"']
    for i in range(400):
        method, path = rng.choice(routes)
        if i % 3 == 0:
            body = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
        else:
            body = "".join(rng.choice(pieces) for _ in range(rng.randrange(1, 40))).encode()
        status, raw, resp = c.request(method, path, body, raw=True)
        assert status in (200, 400, 404, 409, 413), (status, raw)
        doc = json.loads(raw)
        assert ("result" in doc) != ("error" in doc)
    # structurally valid but adversarial documents
    deep = "[" * 5000 + "]" * 5000
    c.error("POST", "/collections/m/search", deep, 400)
    c.error("POST", "/collections/m/search", {"vector": [1, 1, 1], "filter": {
        "should": [{"key": "a", "match": {"any": list(range(1025))}}]}}, 400, "invalid_filter")
    assert c.ok("GET", "/healthz")["status"] == "ok"


def test_malformed_http_on_raw_sockets(server):
    for junk in [b"GARBAGE\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"\x00\xff" * 100 + b"\r\n\r\n",
                 b"POST /collections/m/search HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
                 b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\n\r\n"]:
        s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        try:
            s.sendall(junk)
            s.recv(4096)
        except (ConnectionResetError, BrokenPipeError, socket.timeout):
            pass
        s.close()
    assert server.client.ok("GET", "/healthz")["status"] == "ok"


def test_an_environment_variable_that_names_no_setting_is_warned_about():
    s = Server(env={"VECTORD_LISTN": "127.0.0.1:1", "VECTORD_MAX_K": "50",
                    "VECTORD_SERVICE_HOST": "10.0.0.1", "VECTORD_PORT_6480_TCP": "tcp://10.0.0.1:6480"})
    try:
        assert s.client.request("GET", "/healthz")[0] == 200
    finally:
        logs = s.stop()
    warn = [line for line in logs.splitlines() if "name no setting" in line]
    assert len(warn) == 1 and "variables=VECTORD_LISTN" in warn[0], logs
    assert "SERVICE_HOST" not in warn[0] and "MAX_K" not in warn[0]  # Kubernetes' service links, a real setting


def test_the_open_file_limit_is_raised_for_max_connections_or_the_log_says_why_not():
    import resource

    def limit(soft, hard):
        return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    s = Server(args=["--set", "max_connections=1000"], preexec=limit(256, 8192))
    try:
        with open(f"/proc/{s.proc.pid}/limits") as f:
            soft = int(next(line for line in f if line.startswith("Max open files")).split()[3])
        assert 1000 < soft <= 8192, soft
    finally:
        logs = s.stop()
    assert "raised the open-file limit" in logs and "from=256" in logs, logs
    s = Server(args=["--set", "max_connections=1000"], preexec=limit(256, 256))
    try:
        assert s.client.request("GET", "/healthz")[0] == 200
    finally:
        logs = s.stop()
    assert "open-file limit is below what max_connections needs" in logs and "limit=256" in logs, logs


def test_a_quota_refusal_is_not_an_invitation_to_retry():
    # max_collections is a quota: 409 limit_reached, never 429 (which generic
    # clients retry with back-off, forever) and no Retry-After.
    s = Server(args=["--set", "max_collections=2"])
    try:
        c = s.client
        c.ok("PUT", "/collections/a", {"dim": 2})
        c.ok("PUT", "/collections/b", {"dim": 2})
        status, body, resp = c.request("PUT", "/collections/c", {"dim": 2}, raw=True)
        assert status == 409, body
        assert json.loads(body)["error"]["code"] == "limit_reached"
        assert resp.getheader("Retry-After") is None
        c.ok("DELETE", "/collections/a")
        c.ok("PUT", "/collections/c", {"dim": 2})
    finally:
        s.stop()
