"""API keys: no key → 401 (with WWW-Authenticate), the read-only key reads and
searches but cannot write (403), the admin key does everything; both header
forms; keys from files; probes and metrics open unless configured closed;
SIGHUP replaces the keys without a restart."""
import os
import signal
import tempfile
import time

from conftest import Server

ADMIN, READ = "admin-secret-1", "read-secret-2"
BODY = {"vector": [1, 0, 0, 0], "k": 1}


def hdr(key, form="bearer"):
    return {"Authorization": f"Bearer {key}"} if form == "bearer" else {"api-key": key}


def test_admin_and_read_only_keys():
    s = Server(env={"VECTORD_API_KEY": ADMIN, "VECTORD_READ_API_KEY": READ})
    try:
        c = s.client
        st, doc, resp = c.request("GET", "/collections", raw=True)
        assert st == 401 and resp.getheader("WWW-Authenticate", "").startswith("Bearer")
        st, doc = c.request("GET", "/collections")
        assert doc["error"]["code"] == "unauthorized" and "Bearer" in doc["error"]["message"]
        c.error("GET", "/collections", status=401, code="unauthorized", headers=hdr("wrong"))
        c.error("GET", "/collections", status=401, code="unauthorized", headers=hdr(ADMIN + "x"))
        # admin: everything, in either header form
        st, _ = c.request("PUT", "/collections/a", {"dim": 4}, headers=hdr(ADMIN))
        assert st == 200
        st, _ = c.request("PUT", "/collections/a/points", {"points": [{"id": 1, "vector": [1, 0, 0, 0]}]},
                          headers=hdr(ADMIN, "api-key"))
        assert st == 200
        st, _ = c.request("POST", "/admin/checkpoint", headers={"Authorization": f"bearer {ADMIN}"})
        assert st == 200
        # read-only: reads and searches, no writes
        for method, path, body in [("GET", "/collections", None), ("GET", "/collections/a", None),
                                   ("GET", "/collections/a/points/1", None),
                                   ("POST", "/collections/a/search", BODY),
                                   ("POST", "/collections/a/search/batch", {"searches": [BODY]})]:
            st, doc = c.request(method, path, body, headers=hdr(READ))
            assert st == 200, (path, doc)
        for method, path, body in [("PUT", "/collections/b", {"dim": 4}),
                                   ("PUT", "/collections/a/points", {"points": [{"id": 2, "vector": [1, 1, 1, 1]}]}),
                                   ("POST", "/collections/a/points/delete", {"ids": [1]}),
                                   ("DELETE", "/collections/a", None),
                                   ("POST", "/collections/a/snapshot", None)]:
            c.error(method, path, body, status=403, code="forbidden", headers=hdr(READ))
        # probes and metrics are open by default
        assert c.request("GET", "/healthz")[0] == 200
        assert c.request("GET", "/readyz")[0] == 200
        assert c.request("GET", "/metrics")[0] == 200
        # the point survived the refused delete
        st, doc = c.request("GET", "/collections/a/points/1", headers=hdr(READ))
        assert st == 200
    finally:
        s.stop()


def test_closed_metrics_and_key_files():
    with tempfile.TemporaryDirectory() as d:
        kf = os.path.join(d, "admin.key")
        with open(kf, "w") as f:
            f.write(ADMIN + "\n")  # as a Secret file often is
        s = Server(args=["--set", f"api_key_file={kf}", "--set", "auth_open_metrics=0",
                         "--set", "auth_open_probes=0"])
        try:
            c = s.client
            c.error("GET", "/metrics", status=401)
            c.error("GET", "/readyz", status=401)
            assert c.request("GET", "/metrics", headers=hdr(ADMIN))[0] == 200
            assert c.request("GET", "/collections", headers=hdr(ADMIN))[0] == 200
        finally:
            s.stop()


def test_sighup_replaces_the_keys():
    with tempfile.TemporaryDirectory() as d:
        conf = os.path.join(d, "vectord.conf")
        with open(conf, "w") as f:
            f.write("[security]\napi_key = first-key\n")
        s = Server(args=["--config", conf])
        try:
            c = s.client
            assert c.request("GET", "/collections", headers=hdr("first-key"))[0] == 200
            with open(conf, "w") as f:
                f.write("[server]\nlog_level = debug\n[security]\napi_key = second-key\n")
            s.proc.send_signal(signal.SIGHUP)
            deadline = time.time() + 10
            while 'msg="SIGHUP: reloaded"' not in s.logs() and time.time() < deadline:
                time.sleep(0.05)
            assert 'msg="SIGHUP: reloaded" log_level=debug auth=on' in s.logs()
            c.error("GET", "/collections", status=401, headers=hdr("first-key"))
            assert c.request("GET", "/collections", headers=hdr("second-key"))[0] == 200
            # a broken file keeps the running keys
            with open(conf, "w") as f:
                f.write("[security]\nno_such_setting = 1\n")
            s.proc.send_signal(signal.SIGHUP)
            deadline = time.time() + 10
            while "configuration not reloaded" not in s.logs() and time.time() < deadline:
                time.sleep(0.05)
            assert c.request("GET", "/collections", headers=hdr("second-key"))[0] == 200
        finally:
            s.stop()
