"""vectord-router as a test process (tests/integration/test_router.py): a
cluster of partitioned vectord replicas fed from one PostgreSQL table, and
the router in front of them."""
import os
import re
import subprocess
import tempfile
import time

from conftest import BIN, Client, Server

ROUTER_BIN = os.environ.get("VECTORD_ROUTER_BIN", os.path.join(os.path.dirname(BIN), "vectord-router"))


class Router:
    def __init__(self, args, env=None):
        self.tmp = tempfile.TemporaryDirectory(prefix="vectord-router-")
        self.log_path = os.path.join(self.tmp.name, "router.log")
        self.log = open(self.log_path, "w+b")
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("VECTORD_")}
        full_env.update(env or {})
        cmd = [ROUTER_BIN, "--listen", "127.0.0.1:0", "--qdrant-listen", "127.0.0.1:0",
               "--probe-interval-ms", "200", *args]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log, env=full_env)
        deadline = time.time() + 60
        while time.time() < deadline:
            text = self.logs()
            ports = re.findall(r'msg="listening" addr=127\.0\.0\.1:(\d+) dialect=(\w+)', text)
            if 'msg="ready"' in text and len(ports) == 2:
                self.port = int([p for p, d in ports if d == "native"][0])
                self.qdrant_port = int([p for p, d in ports if d == "qdrant"][0])
                break
            if self.proc.poll() is not None:
                raise RuntimeError("vectord-router exited early:\n" + text)
            time.sleep(0.02)
        else:
            raise RuntimeError("vectord-router did not start:\n" + self.logs())
        self.client = Client(self.port)
        self.qdrant = Client(self.qdrant_port)

    def logs(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_ready(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.client.request("GET", "/readyz")[0] == 200:
                return
            time.sleep(0.05)
        raise AssertionError("router not ready: " + self.logs()[-2000:])

    def stop(self):
        self.client.close()
        self.qdrant.close()
        self.proc.terminate()
        code = self.proc.wait(timeout=30)
        self.log.close()
        logs = self.logs()
        self.tmp.cleanup()
        assert code == 0, f"vectord-router exited {code}:\n{logs[-3000:]}"
        return logs


def qdrant_port(server):
    return int(re.search(r'msg="listening \(Qdrant API\)" addr=127\.0\.0\.1:(\d+)', server.logs()).group(1))


def replica_url(server):
    return f"http://127.0.0.1:{server.port}|http://127.0.0.1:{qdrant_port(server)}"


def partition_args(servers_by_partition):
    """--partition lists for the router: one per partition, its replicas' URLs."""
    args = []
    for reps in servers_by_partition:
        args += ["--partition", ",".join(replica_url(s) for s in reps)]
    return args
