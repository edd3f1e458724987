"""The OpenAPI 3.1 document (docs/openapi.json, served at GET
/openapi.json) against the server: it is a valid OpenAPI 3.1 document (the
specification's schema, npm @seriousme/openapi-schema-validator), names
exactly the routes routes.h has and exactly the error codes error.h has, and
every route's real answers (a success and errors) have a status the document
lists for that operation and a body its schema accepts; the request bodies
sent are accepted by the document's request schemas."""
import json
import os
import re
import subprocess
import tempfile

import pytest

from conftest import Server, node_tools
from test_feed import db, pg  # noqa: F401 (fixtures)

jsonschema = pytest.importorskip("jsonschema", reason="python3-jsonschema is needed (apt-get install python3-jsonschema)")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOC_PATH = os.path.join(ROOT, "docs", "openapi.json")
with open(DOC_PATH) as f:
    DOC = json.load(f)


def routes_h():
    with open(os.path.join(ROOT, "src", "server", "routes.h")) as f:
        text = f.read()
    # the native routes: the Qdrant dialect's (QD_*, docs/QDRANT.md) are not in this document
    return {(m.lower(), p) for rid, m, p in re.findall(r'X\((\w+), "(\w+)", "([^"]+)"', text)
            if not rid.startswith("QD_")}


def validator(schema):
    resolver = jsonschema.RefResolver.from_schema(DOC)
    return jsonschema.Draft202012Validator(schema, resolver=resolver)


def resolve(obj):
    while "$ref" in obj:
        path = obj["$ref"].lstrip("#/").split("/")
        obj = DOC
        for part in path:
            obj = obj[part]
    return obj


class Checker:
    """Sends requests and checks each answer against the document."""

    def __init__(self, client):
        self.c = client
        self.seen = set()  # (method, template, status)

    def __call__(self, method, template, path=None, body=None, status=200, headers=None):
        op = DOC["paths"][template][method.lower()]
        if body is not None and not isinstance(body, (bytes, str)) and status == 200:
            schema = op["requestBody"]["content"]["application/json"]["schema"]
            validator(schema).validate(body)  # what the tests send is what the document allows
        got, raw, resp = self.c.request(method, path or template, body, headers=headers, raw=True)
        assert got == status, (method, path or template, got, raw[:500])
        responses = op["responses"]
        assert str(got) in responses, f"{method} {template}: status {got} is not in the document"
        answer = resolve(responses[str(got)])
        assert resp.getheader("X-Request-Id"), "every answer has X-Request-Id"
        ctype = resp.getheader("Content-Type", "").split(";")[0]
        assert ctype in answer["content"], (method, template, ctype)
        doc = raw.decode()
        if ctype == "application/json":
            doc = json.loads(raw)
            errors = sorted(validator(answer["content"][ctype]["schema"]).iter_errors(doc), key=str)
            assert not errors, f"{method} {template} {got}: {errors[0].message} at {list(errors[0].absolute_path)}"
        self.seen.add((method.lower(), template, got))
        return doc


def test_the_document_is_valid_openapi_3_1():
    tools = node_tools("for the OpenAPI schema check")
    r = subprocess.run(["node", os.path.join(tools, "validate-openapi.mjs"), DOC_PATH], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("ok 3.1"), r.stdout + r.stderr
    # and it can fail: a document with a path item that is not an object
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({**DOC, "paths": {"/x": 5}}, f)
    try:
        r = subprocess.run(["node", os.path.join(tools, "validate-openapi.mjs"), f.name], capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 1, r.stdout
    finally:
        os.unlink(f.name)


def test_the_document_names_every_route_and_error_code():
    assert DOC["openapi"] == "3.1.0"
    documented = {(m, p) for p, item in DOC["paths"].items() for m in item if m != "parameters"}
    assert documented == routes_h(), (documented ^ routes_h())
    with open(os.path.join(ROOT, "include", "vectord", "error.h")) as f:
        codes = re.findall(r'X\([A-Z_]+, "([a-z_]+)", (\d+)', f.read())
    assert DOC["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"] == \
        [c for c, _ in codes]
    for code, status in codes:  # each error status has its response, naming its codes
        assert code in DOC["components"]["responses"][f"E{status}"]["description"], (code, status)


def test_the_server_serves_the_document():
    s = Server()
    try:
        status, body, resp = s.client.request("GET", "/openapi.json", raw=True)
        assert status == 200 and resp.getheader("Content-Type") == "application/json"
        assert json.loads(body) == DOC
    finally:
        s.stop()


def test_every_route_answers_as_documented():
    s = Server(args=["--set", "max_collections=3"])
    try:
        chk = Checker(s.client)
        chk("GET", "/healthz")
        chk("GET", "/readyz")
        chk("GET", "/metrics")
        chk("GET", "/openapi.json")
        chk("GET", "/collections")
        c = "/collections/{c}"
        chk("PUT", c, "/collections/docs", {"dim": 3, "metric": "cosine", "index": {"type": "hnsw", "m": 8},
                                            "quantization": "sq8", "payload_indexes": {"user": "keyword"}})
        chk("PUT", c, "/collections/ivf", {"dim": 3, "index": {"type": "ivf"}, "quantization":
                                           {"type": "fp16", "oversampling": 2, "originals": "ram"}})
        chk("PUT", c, "/collections/docs", {"dim": 3}, status=409)
        chk("PUT", c, "/collections/flat", {"dim": 3, "metric": "l2", "shards": 1})
        chk("PUT", c, "/collections/four", {"dim": 3}, status=409)  # limit_reached
        chk("PUT", c, "/collections/bad", {"dim": 0}, status=400)
        chk("PUT", c, "/collections/bad", b"{not json", status=400)
        chk("PUT", c, "/collections/bad", {"dim": 3}, status=415, headers={"Content-Type": "text/plain"})
        chk("GET", c, "/collections/docs")
        chk("GET", c, "/collections/ivf")
        chk("GET", c, "/collections/none", status=404)
        chk("PATCH", c, "/collections/docs", {"index": {"ef_search": 80}})
        chk("PATCH", c, "/collections/docs", {"index": {"ef_search": 0}}, status=400)
        chk("GET", "/collections")
        pts = "/collections/{c}/points"
        chk("PUT", pts, "/collections/docs/points", {"points": [
            {"id": 1, "vector": [1, 0, 0], "payload": {"user": "a", "n": 1}, "version": 3},
            {"id": "m-2", "vector": [0, 1, 0], "payload": {"user": "b"}},
            {"id": 3, "vector_b64": "AACAPwAAAAAAAIA/", "payload": None}]})
        chk("PUT", pts, "/collections/docs/points", {"points": [{"id": 1, "vector": [1, 0]}]}, status=400)
        chk("PUT", pts, "/collections/none/points", {"points": [{"id": 1, "vector": [1, 0, 0]}]}, status=404)
        one = "/collections/{c}/points/{id}"
        chk("GET", one, "/collections/docs/points/1?with_vector=true")
        chk("GET", one, "/collections/docs/points/m-2")
        chk("GET", one, "/collections/docs/points/404", status=404)
        q = {"vector": [1, 0.1, 0], "k": 2, "filter": {"must": [{"key": "user", "match": {"value": "a"}}]},
             "with_payload": True, "with_vector": True, "ef": 32}
        chk("POST", "/collections/{c}/search", "/collections/docs/search", q)
        chk("POST", "/collections/{c}/search", "/collections/docs/search", {"vector": [1, 0, 0], "k": 0}, status=400)
        chk("POST", "/collections/{c}/search", "/collections/docs/search?feed_xid=5", {"vector": [1, 0, 0]},
            status=400)
        chk("POST", "/collections/{c}/search/batch", "/collections/docs/search/batch",
            {"searches": [{"vector": [1, 0, 0], "k": 1}, {"vector": [0, 1, 0], "limit": 2, "exact": True}]})
        chk("POST", "/collections/{c}/search/batch", "/collections/docs/search/batch", {"searches": []}, status=400)
        shadow = {"vector": [1, 0, 0], "k": 2, "baseline": {"ids": [1, "m-9"], "latency_ms": 12.5}}
        chk("POST", "/collections/{c}/search/shadow", "/collections/docs/search/shadow", shadow)
        chk("POST", "/collections/{c}/search/shadow", "/collections/docs/search/shadow",
            {"vector": [1, 0, 0], "baseline": {"ids": [], "latency_ms": -1}}, status=400)
        chk("GET", c, "/collections/docs")  # with shadow figures now
        chk("PUT", "/collections/{c}/payload_indexes", "/collections/docs/payload_indexes",
            {"field": "n", "type": "numeric"})
        chk("PUT", "/collections/{c}/payload_indexes", "/collections/docs/payload_indexes",
            {"field": "n", "type": "keyword"}, status=409)
        chk("PUT", "/collections/{c}/payload_indexes", "/collections/docs/payload_indexes",
            {"field": "at", "type": "datetime"})
        chk("DELETE", "/collections/{c}/payload_indexes/{id}", "/collections/docs/payload_indexes/at")
        chk("DELETE", "/collections/{c}/payload_indexes/{id}", "/collections/docs/payload_indexes/at", status=404)
        vec = "/collections/{c}/points/vectors"
        chk("PUT", vec, "/collections/docs/points/vectors", {"points": [{"id": 1, "vector": [0, 0, 1]},
                                                                        {"id": 77, "vector_b64": "AACAPwAAAAAAAIA/"}]})
        chk("PUT", vec, "/collections/docs/points/vectors", {"points": [{"id": 1, "payload": {}}]}, status=400)
        edit = "/collections/{c}/points/payload"
        chk("POST", edit, "/collections/docs/points/payload", {"ids": [1], "set": {"x": 1}, "key": "m"})
        chk("POST", edit, "/collections/docs/points/payload",
            {"filter": {"must": [{"key": "user", "match": {"value": "a"}}]}, "unset": ["n"]})
        chk("POST", edit, "/collections/docs/points/payload", {"ids": ["m-2"], "clear": True})
        chk("POST", edit, "/collections/docs/points/payload", {"ids": [1], "clear": False}, status=400)
        chk("POST", "/collections/{c}/points/delete", "/collections/docs/points/delete", {"ids": [1, "nope"]})
        chk("POST", "/collections/{c}/points/delete", "/collections/docs/points/delete",
            {"filter": {"must": [{"key": "user", "match": {"value": "b"}}]}})
        chk("POST", "/collections/{c}/points/delete", "/collections/docs/points/delete", {"ids": "x"}, status=400)
        chk("POST", "/collections/{c}/snapshot", "/collections/docs/snapshot")
        chk("POST", "/collections/{c}/snapshot", "/collections/none/snapshot", status=404)
        chk("POST", "/admin/checkpoint")
        chk("GET", "/feeds")
        chk("GET", "/feed", status=404)
        chk("POST", "/feed/reconcile", status=404)
        chk("DELETE", c, "/collections/flat")
        chk("DELETE", c, "/collections/flat", status=404)
        chk("DELETE", "/healthz", status=405) if ("delete", "/healthz") in DOC["paths"] else None
    finally:
        s.stop()
    # Every operation was seen answering 200.
    ok = {(m, t) for m, t, st in chk.seen if st == 200}
    assert {(m, t) for m, t in routes_h() if not t.startswith("/feed") or t == "/feeds"} <= ok, \
        routes_h() - ok


def test_auth_errors_are_documented():
    s = Server(env={"VECTORD_API_KEY": "k" * 32, "VECTORD_READ_API_KEY": "r" * 32})
    try:
        chk = Checker(s.client)
        chk("GET", "/collections", status=401)
        chk("PUT", "/collections/{c}", "/collections/x", {"dim": 2}, status=403,
            headers={"Authorization": "Bearer " + "r" * 32})
    finally:
        s.stop()


def test_feed_routes_answer_as_documented(db):
    pytest.importorskip("psycopg2", reason="python3-psycopg2 is needed for the feed tests")
    from test_feed import DIM, feed_server, insert_rows, wait_caught_up
    conn, dsn = db
    insert_rows(conn, 0, 40)
    with tempfile.TemporaryDirectory() as d:
        s = feed_server(dsn, os.path.join(d, "data"))
        try:
            wait_caught_up(s.client, conn)
            chk = Checker(s.client)
            chk("GET", "/feed")
            chk("GET", "/feed", "/feed?name=nope", status=404)
            feeds = chk("GET", "/feeds")
            assert len(feeds["result"]["feeds"]) == 1
            chk("POST", "/feed/reconcile")
            chk("POST", "/feed/reconcile", "/feed/reconcile?repair=true")
            cur = conn.cursor()
            cur.execute("SELECT pg_current_xact_id()::text")
            xid = cur.fetchone()[0]
            chk("POST", "/collections/{c}/search", f"/collections/memories/search?feed_xid={xid}",
                {"vector": [0.5] * DIM, "k": 3})
            chk("POST", "/collections/{c}/search", "/collections/memories/search?feed_lsn=0/10",
                {"vector": [0.5] * DIM, "k": 3}, status=400)
        finally:
            s.stop()
