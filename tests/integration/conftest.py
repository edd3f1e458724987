"""Integration-test harness: starts the real vectord binary on a free loopback
port with its own data directory and talks to it over HTTP/1.1 keep-alive.

VECTORD_BIN names the binary (meson sets it). Every server started here is
stopped with SIGTERM at the end of its test and must exit 0: under the
sanitizer build that also asserts that shutdown leaks nothing.
"""
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

BIN = os.environ.get("VECTORD_BIN", os.path.join(os.path.dirname(__file__), "../../build/vectord"))


def _sanitized(path):
    """Whether the binary under test was built with a sanitizer (its memory
    use is then the sanitizer's, not vectord's)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return False
    if b"__asan_init" in data or b"__tsan_init" in data:
        return True
    try:
        out = subprocess.run(["ldd", path], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "libasan" in out or "libtsan" in out


SANITIZED = _sanitized(BIN)


TOOLS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools")


def node_tools(why):
    """tests/tools with its npm packages installed (npm ci) from the committed
    lockfile, again whenever the lockfile is newer than the installed tree.
    Skips, saying why they are needed, where node or npm is missing."""
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.skip(f"node and npm are needed {why} (apt-get install nodejs npm)")
    stamp = os.path.join(TOOLS, "node_modules", ".package-lock.json")
    if not os.path.exists(stamp) or os.path.getmtime(stamp) < os.path.getmtime(os.path.join(TOOLS, "package-lock.json")):
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=TOOLS, capture_output=True, text=True,
                           timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
    return TOOLS


def wait_indexed(client, name, timeout=300):
    """Waits until the collection's graph holds every acknowledged point
    (index_backlog 0: the graph is built behind the writes). For tests that
    look at what a graph walk does; answers are right before it too."""
    deadline = time.time() + timeout
    while client.ok("GET", f"/collections/{name}")["index_backlog"]:
        assert time.time() < deadline, f"{name}: the graph did not catch up in {timeout} s"
        time.sleep(0.05)


def proc_status(pid, field):
    """A /proc/PID/status figure in bytes (VmRSS, VmHWM: peak RSS)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


class Client:
    """A keep-alive HTTP client for one server."""

    def __init__(self, port):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def request(self, method, path, body=None, headers=None, raw=False):
        hdrs = {"Content-Type": "application/json"}
        hdrs.update(headers or {})
        data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=data, headers=hdrs)
                resp = self.conn.getresponse()
                payload = resp.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closes a connection after an early error (e.g. 413); reconnect once.
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                if attempt:
                    raise
        if raw:
            return resp.status, payload, resp
        ctype = resp.getheader("Content-Type", "")
        doc = json.loads(payload) if ctype.startswith("application/json") else payload.decode()
        return resp.status, doc

    def ok(self, method, path, body=None):
        status, doc = self.request(method, path, body)
        assert status == 200, (method, path, status, doc)
        assert set(doc) == {"result", "time_ms"}, doc
        return doc["result"]

    def error(self, method, path, body=None, status=400, code=None, headers=None):
        got, doc = self.request(method, path, body, headers=headers)
        assert got == status, (method, path, got, doc)
        assert set(doc) == {"error"} and set(doc["error"]) == {"code", "message", "request_id"}, doc
        assert doc["error"]["message"], doc
        if code:
            assert doc["error"]["code"] == code, doc
        return doc["error"]

    def close(self):
        self.conn.close()


class Server:
    def __init__(self, args=(), env=None, data_dir=None, preexec=None):
        self.tmp = tempfile.TemporaryDirectory(prefix="vectord-it-")
        self.data_dir = data_dir or os.path.join(self.tmp.name, "data")
        self.log_path = os.path.join(self.tmp.name, "vectord.log")
        self.log = open(self.log_path, "w+b")
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("VECTORD_")}
        full_env.update(env or {})
        cmd = [BIN, "--listen", "127.0.0.1:0", "--data-dir", self.data_dir, *args]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log, env=full_env,
                                     preexec_fn=preexec)
        self.port = self._wait_port()
        self.client = Client(self.port)

    def _wait_port(self):
        # Generous: recovery replays the WAL first, and sanitizer or coverage
        # builds on a loaded machine are many times slower than a release one.
        deadline = time.time() + 120
        while time.time() < deadline:
            text = self.logs()
            m = (re.search(r'msg="listening" addr=127\.0\.0\.1:(\d+)', text) or  # logfmt, or json:
                 re.search(r'"msg":"listening","addr":"127\.0\.0\.1:(\d+)"', text))
            if m and ('msg="ready"' in text or '"msg":"ready"' in text):
                return int(m.group(1))
            if self.proc.poll() is not None:
                raise RuntimeError("vectord exited early:\n" + text)
            time.sleep(0.02)
        raise RuntimeError("vectord did not start:\n" + self.logs())

    def logs(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def kill(self):
        """SIGKILL: a crash. Returns the log; the data dir stays for a restart."""
        self.client.close()
        self.proc.kill()
        self.proc.wait(timeout=60)
        self.log.close()
        logs = self.logs()
        self.tmp.cleanup()
        # A killed server's exit code says nothing: a sanitizer's report would be lost.
        for mark in ("WARNING: ThreadSanitizer", "ERROR: AddressSanitizer", "runtime error:"):
            assert mark not in logs, f"vectord reported before it was killed:\n{logs[-4000:]}"
        return logs

    def stop(self, expect_code=0):
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        self.log.close()
        logs = self.logs()
        self.tmp.cleanup()
        assert code == expect_code, f"vectord exited {code}:\n{logs[-4000:]}"
        return logs


@pytest.fixture
def server():
    s = Server()
    yield s
    s.stop()


@pytest.fixture
def client(server):
    return server.client
