"""Request ids and logs: every answer carries X-Request-Id (the client's
when usable, a new one otherwise), error bodies name it, and log lines
written while serving the request carry it; the access log (access_log =
none | errors | all) gives method, route, status and duration; log_format =
json writes one JSON object per line."""
import json
import re
import subprocess

from conftest import BIN, Server


def access_lines(logs):
    return [l for l in logs.splitlines() if 'msg="access"' in l]


def test_request_ids_in_headers_error_bodies_and_logs():
    s = Server(args=["--set", "access_log=all", "--log-level", "debug"])
    try:
        c = s.client
        status, body, resp = c.request("PUT", "/collections/r", {"dim": 2}, raw=True)
        assert status == 200
        generated = resp.getheader("X-Request-Id")
        assert re.fullmatch(r"[0-9a-f]{20}", generated), generated
        # A usable id from the client is kept; errors name it in the body too.
        status, body, resp = c.request("GET", "/collections/nope", headers={"X-Request-Id": "trace-42:a.b"},
                                       raw=True)
        assert status == 404 and resp.getheader("X-Request-Id") == "trace-42:a.b"
        assert json.loads(body)["error"]["request_id"] == "trace-42:a.b"
        # Unusable ones (a space, a quote, too long) are replaced by a new id.
        seen = {generated}
        for bad in ("has space", 'quo"te', "x" * 65):
            _, _, resp = c.request("GET", "/collections", headers={"X-Request-Id": bad}, raw=True)
            rid = resp.getheader("X-Request-Id")
            assert re.fullmatch(r"[0-9a-f]{20}", rid) and rid not in seen, (bad, rid)
            seen.add(rid)
        # Routing errors and searches (offloaded to the request workers) too.
        status, body, resp = c.request("DELETE", "/healthz", headers={"X-Request-Id": "r-405"}, raw=True)
        assert status == 405 and json.loads(body)["error"]["request_id"] == "r-405"
        c.ok("PUT", "/collections/r/points", {"points": [{"id": 1, "vector": [1, 0]}]})
        status, body, resp = c.request("POST", "/collections/r/search", {"vector": [1, 0], "k": 1},
                                       headers={"X-Request-Id": "search-1"}, raw=True)
        assert status == 200 and resp.getheader("X-Request-Id") == "search-1"
    finally:
        logs = s.stop()
    access = access_lines(logs)
    line = [l for l in access if "request_id=trace-42:a.b" in l]
    assert len(line) == 1, access
    assert re.search(r'method=GET route="/collections/\{c\}" status=404 ms=[\d.]+ ', line[0]), line[0]
    assert any('route="/collections/{c}/search" status=200' in l and "request_id=search-1" in l for l in access)
    assert any("status=405" in l and "request_id=r-405" in l for l in access)
    # A line written while serving the request (the debug "request" line) carries its id.
    assert re.search(r'msg="request" method=GET path="/collections/nope".* request_id=trace-42:a\.b', logs), logs


def test_a_request_refused_before_routing_is_logged_as_unmatched():
    s = Server(args=["--set", "max_body_bytes=1024"])
    try:
        status, _, _ = s.client.request("PUT", "/collections/x/points", b"x" * 5000, raw=True,
                                        headers={"X-Request-Id": "big-1"})
        assert status == 413
    finally:
        logs = s.stop()
    line = [l for l in access_lines(logs) if "request_id=big-1" in l]
    assert len(line) == 1 and 'route="unmatched" status=413' in line[0], line


def test_access_log_settings():
    for setting, want_ok, want_error in (("none", False, False), ("errors", False, True), ("all", True, True)):
        s = Server(args=["--set", f"access_log={setting}"])
        try:
            s.client.ok("GET", "/collections")
            s.client.error("GET", "/collections/nope", status=404)
        finally:
            logs = s.stop()
        lines = access_lines(logs)
        assert any("status=200" in l for l in lines) == want_ok, (setting, lines)
        assert any("status=404" in l for l in lines) == want_error, (setting, lines)


def test_json_log_format():
    s = Server(args=["--set", "log_format=json", "--set", "access_log=all"])
    try:
        s.client.ok("PUT", "/collections/j", {"dim": 2})
        s.client.request("GET", "/collections/nope", headers={"X-Request-Id": 'id-"x"'})
    finally:
        logs = s.stop()
    entries = [json.loads(l) for l in logs.splitlines() if l.strip()]  # every line is one JSON object
    assert all({"ts", "level", "msg"} <= e.keys() for e in entries)
    listening = [e for e in entries if e["msg"] == "listening"][0]
    assert isinstance(listening["http_threads"], int) and listening["addr"].startswith("127.0.0.1:")
    access = [e for e in entries if e["msg"] == "access"]
    assert {(e["method"], e["route"], e["status"]) for e in access} >= {
        ("PUT", "/collections/{c}", 200), ("GET", "/collections/{c}", 404)}
    assert all(isinstance(e["ms"], (int, float)) and e["request_id"] for e in access)
    assert any(e["msg"] == "checkpoint" and e["reason"] == "shutdown" for e in entries)


def test_bad_log_settings_are_refused_at_start():
    for setting, message in (("log_format=xml", "log_format must be logfmt or json"),
                             ("access_log=some", "access_log must be none, errors or all")):
        r = subprocess.run([BIN, "--listen", "127.0.0.1:0", "--set", setting], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 2 and message in r.stderr, (r.returncode, r.stderr)
