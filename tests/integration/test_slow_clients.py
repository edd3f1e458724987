"""Slow clients (small numbers; bench/soak.py --slow runs 1,000): idle
connections, requests sent one byte at a time, and bodies that stop half
way must not stop a normal client from being served, and what they hold is
given back when the idle timeout closes them."""
import json
import socket
import re
import time

from conftest import Client, Server
from slowclients import SlowClients


def metric(c, name):
    _, text = c.request("GET", "/metrics")
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


def search_request(body):
    data = json.dumps(body).encode()
    return (b"POST /collections/m/search HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(data)) + data


def timed_searches(port, n):
    """n searches on a fresh keep-alive connection: their latencies (s)."""
    c = Client(port)
    out = []
    try:
        for i in range(n):
            t = time.time()
            c.ok("POST", "/collections/m/search", {"vector": [1, i % 7, 0, 0, 0, 0, 0, 1], "k": 5})
            out.append(time.time() - t)
    finally:
        c.close()
    return out


def test_idle_trickling_and_stalled_clients_do_not_stop_a_normal_client():
    s = Server(args=["--set", "connection_timeout_s=3"])
    try:
        c = s.client
        c.ok("PUT", "/collections/m", {"dim": 8, "index": {"type": "hnsw"}})
        c.ok("PUT", "/collections/m/points",
             {"points": [{"id": i, "vector": [i % 5, i % 3, 1, 0, 0, 1, i % 2, 1]} for i in range(300)]})
        before = timed_searches(s.port, 30)
        req = search_request({"vector": [1, 0, 0, 0, 0, 0, 0, 1], "k": 3})
        with SlowClients(s.port, 150, "idle") as idle, \
                SlowClients(s.port, 40, "trickle", req, interval=0.005) as trickle, \
                SlowClients(s.port, 20, "stalled", req) as stalled:
            time.sleep(0.5)
            during = timed_searches(s.port, 60)
            # Writes and probes go on too.
            c2 = Client(s.port)
            c2.ok("PUT", "/collections/m/points", {"points": [{"id": 1000, "vector": [1] * 8}]})
            assert c2.request("GET", "/healthz")[0] == 200
            c2.close()
            held = metric(c, "vectord_http_body_bytes")
            # The idle timeout (3 s) closes the idle and stalled connections;
            # the trickling ones keep sending, so they stay and get answers.
            deadline = time.time() + 20
            while time.time() < deadline and (stalled.closed_by_server < 20 or idle.closed_by_server < 150
                                              or sum(trickle.statuses.values()) < 40):
                time.sleep(0.2)
            assert idle.closed_by_server >= 150, idle.closed_by_server
            assert stalled.closed_by_server >= 20, stalled.closed_by_server
            assert set(trickle.statuses) == {200} and sum(trickle.statuses.values()) >= 40, trickle.statuses
            assert stalled.statuses == {} and idle.statuses == {}
        # Half-received bodies were held while their connections lived, and
        # released when the timeout closed them.
        assert held and held > 0
        deadline = time.time() + 10
        while time.time() < deadline and metric(c, "vectord_http_body_bytes") != 0:
            time.sleep(0.1)
        assert metric(c, "vectord_http_body_bytes") == 0
        print(f"normal client: median {sorted(before)[15] * 1e3:.2f} ms before, "
              f"{sorted(during)[30] * 1e3:.2f} ms with 210 slow connections; max {max(during) * 1e3:.1f} ms")
    finally:
        s.stop()


def test_slowloris_cannot_hold_the_server_and_probes_get_in():
    """The issue's case: max_connections=50 and 80 sockets each sending a
    request one byte every 2 s used to keep /healthz unanswered for ever
    (each byte reset the idle timeout). Now each newcomer past the cap evicts
    the connection idle longest, and a request line or head that takes too
    long is cut at its deadline."""
    s = Server(args=["--set", "max_connections=50", "--set", "connection_timeout_s=4",
                     "--set", "request_head_timeout_s=3"])
    try:
        c = s.client
        c.ok("PUT", "/collections/m", {"dim": 8})
        req = search_request({"vector": [1, 0, 0, 0, 0, 0, 0, 1], "k": 3})
        with SlowClients(s.port, 80, "trickle", req, interval=2.0) as loris:
            time.sleep(1.0)
            for _ in range(5):
                t = time.time()
                probe = Client(s.port)
                assert probe.request("GET", "/healthz")[0] == 200
                probe.close()
                assert time.time() - t < 2.0, time.time() - t
                time.sleep(1.0)
            assert len(timed_searches(s.port, 10)) == 10
            assert metric(c, 'vectord_http_connections_closed_total{reason="evicted"}') >= 30
            assert loris.statuses == {}, loris.statuses  # none ever got a request through
        # Below the cap, the deadlines close them: a request line that takes
        # longer than connection_timeout_s, a head longer than request_head_timeout_s.
        closed = lambda r: metric(c, 'vectord_http_connections_closed_total{reason="%s"}' % r) or 0
        with SlowClients(s.port, 5, "trickle", req, interval=2.0):
            head = socket.create_connection(("127.0.0.1", s.port), timeout=10)
            head.sendall(b"POST /collections/m/search HTTP/1.1\r\n")
            t0 = time.time()
            for b in b"Host: x\r\nX-Slow: aaaaaaaaaaaa":
                head.sendall(bytes([b]))
                head.settimeout(0.5)
                try:
                    if head.recv(1) == b"":
                        break
                except socket.timeout:
                    pass
            took = time.time() - t0
            assert 3.0 <= took < 6.0, took
            head.close()
            deadline = time.time() + 10
            while time.time() < deadline and closed("idle_deadline") < 5:
                time.sleep(0.2)
        assert closed("head_deadline") == 1
        assert closed("idle_deadline") >= 5
    finally:
        s.stop()


def test_a_body_slower_than_the_minimum_rate_is_cut():
    s = Server(args=["--set", "request_head_timeout_s=2", "--set", "request_body_min_rate=1000"])
    try:
        c = s.client
        c.ok("PUT", "/collections/m", {"dim": 8})
        sock = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        sock.sendall(b"PUT /collections/m/points HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 5000\r\n\r\n")
        t0 = time.time()
        closed_at = None
        while time.time() - t0 < 10:
            try:
                sock.sendall(b" ")
            except OSError:
                closed_at = time.time() - t0
                break
            sock.settimeout(0.3)
            try:
                if sock.recv(1) == b"":
                    closed_at = time.time() - t0
                    break
            except socket.timeout:
                pass
            except OSError:
                closed_at = time.time() - t0
                break
        assert closed_at is not None and 2.0 <= closed_at < 5.0, closed_at
        assert metric(c, 'vectord_http_connections_closed_total{reason="body_too_slow"}') == 1
    finally:
        s.stop()
