"""The container image, built and run for real: deploy/Dockerfile is built
from this repository with podman (offline: the base image is made locally by
scripts/container-base through Debian's apt mirror), then run with buildah's
chroot isolation (machines that cannot start full containers, CI's among
them, can still run that). Checked: the image's configuration (numeric user
10001, the HEALTHCHECK kept by the docker format, the port, SIGTERM), that
vectord inside answers /readyz, takes a write and a search, passes its own
HEALTHCHECK command, runs as uid 10001, and on SIGTERM checkpoints and exits
0; started again, it recovers the write from the checkpoint. The image size
is printed (pytest -s) and written to build-container/image-size.txt.

The image is built once, in the plain pass: the sanitized pass skips it
(the image does not contain the binary under test)."""
import json
import re
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import SANITIZED, Client

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASE = "localhost/vectord-base:bookworm"
IMAGE = "localhost/vectord:test"

pytestmark = [
    pytest.mark.skipif(SANITIZED, reason="the image is built and run once, in the unsanitized pass"),
    pytest.mark.skipif(not all(shutil.which(t) for t in ("podman", "buildah", "mmdebstrap")),
                       reason="podman, buildah and mmdebstrap are needed (scripts/setup-deps installs them)"),
]


def run(*cmd, timeout=900):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, (cmd, r.stdout[-3000:], r.stderr[-3000:])
    return r.stdout


@pytest.fixture(scope="module")
def image():
    run(os.path.join(ROOT, "scripts", "container-base"), BASE)
    run("podman", "build", "--isolation=chroot", "--network=host", "--format", "docker",
        "--pull=never", "--layers=false", "--build-arg", f"BUILD_IMAGE={BASE}",
        "--build-arg", f"RUNTIME_IMAGE={BASE}", "-f", os.path.join(ROOT, "deploy", "Dockerfile"),
        "-t", IMAGE, ROOT)
    yield json.loads(run("podman", "image", "inspect", IMAGE))[0]
    # Built afresh each run: the image is removed (the base stays for the next run).
    subprocess.run(["podman", "rmi", "-f", IMAGE], capture_output=True, timeout=120)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Container:
    """One working container of the image, run with `buildah run` the way
    the image's ENTRYPOINT runs it, listening on a free loopback port."""

    def __init__(self, config):
        self.config = config
        self.name = run("buildah", "from", "--pull-never", IMAGE).strip()
        self.port = free_port()
        self.qdrant_port = free_port()
        self.proc = None

    def start(self):
        entry = self.config["Entrypoint"]
        self.proc = subprocess.Popen(
            ["buildah", "run", "--isolation=chroot", "--network=host", self.name, "--", *entry,
             "--listen", f"127.0.0.1:{self.port}", "--set", f"qdrant_listen=127.0.0.1:{self.qdrant_port}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                assert self.proc.poll() is None, self.proc.stdout.read()
                assert time.time() < deadline, "vectord in the container did not listen within 60 s"
                time.sleep(0.2)
        c = Client(self.port)
        while c.request("GET", "/readyz")[0] != 200:  # listening comes before recovery ends
            assert time.time() < deadline, "vectord in the container was not ready within 60 s"
            time.sleep(0.2)
        return c

    def vectord_pid(self):
        """The vectord process inside (the container's main process): the
        runtime's SIGTERM goes to it, as `podman stop` would send it."""
        want = f"127.0.0.1:{self.port}"
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if argv and argv[0] == self.config["Entrypoint"][0].encode() and want.encode() in argv:
                return int(pid)
        raise AssertionError("no vectord process found for the container")

    def stop(self):
        os.kill(self.vectord_pid(), signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=60)
        return self.proc.returncode, out

    def exec(self, *cmd):
        return subprocess.run(["buildah", "run", "--isolation=chroot", "--network=host", self.name, "--", *cmd],
                              capture_output=True, text=True, timeout=60)

    def remove(self):
        if self.proc and self.proc.poll() is None:
            # buildah's SIGKILL does not reach the process inside the chroot: kill vectord itself.
            try:
                os.kill(self.vectord_pid(), signal.SIGKILL)
            except (AssertionError, ProcessLookupError):
                pass
            self.proc.kill()
            self.proc.wait()
        subprocess.run(["buildah", "rm", self.name], capture_output=True, timeout=60)


def test_image_configuration(image):
    cfg = image["Config"]
    assert cfg["User"] == "10001:10001", cfg["User"]  # numeric: runAsNonRoot can verify it
    assert "6480/tcp" in cfg["ExposedPorts"] and "6333/tcp" in cfg["ExposedPorts"]
    assert "VECTORD_QDRANT_LISTEN=0.0.0.0:6333" in cfg["Env"], cfg["Env"]
    assert cfg["StopSignal"] == "SIGTERM"
    assert "/var/lib/vectord" in cfg["Volumes"]
    assert cfg["Entrypoint"][0] == "/usr/local/bin/vectord"
    health = image.get("Healthcheck")  # kept by the docker format; OCI has no field for it
    assert health and "/healthz" in " ".join(health["Test"]), image.keys()
    size_mb = image["Size"] / 1e6
    os.makedirs(os.path.join(ROOT, "build-container"), exist_ok=True)
    with open(os.path.join(ROOT, "build-container", "image-size.txt"), "w") as f:
        f.write(f"{IMAGE} {size_mb:.0f} MB\n")
    print(f"\nimage {IMAGE}: {size_mb:.0f} MB")
    assert size_mb < 400, size_mb


def test_dockerignore_keeps_build_outputs_out():
    with open(os.path.join(ROOT, ".dockerignore")) as f:
        rules = {line.strip() for line in f if line.strip() and not line.startswith("#")}
    assert {".git", "build*"} <= rules, rules


def test_image_serves_checkpoints_on_sigterm_and_recovers(image):
    box = Container(image["Config"])
    try:
        c = box.start()
        c.ok("PUT", "/collections/notes", {"dim": 3, "metric": "cosine"})
        c.ok("PUT", "/collections/notes/points",
             {"points": [{"id": 1, "vector": [1, 0, 0], "payload": {"k": "a"}},
                         {"id": 2, "vector": [0, 1, 0], "payload": {"k": "b"}}]})
        hits = c.ok("POST", "/collections/notes/search", {"vector": [0.9, 0.1, 0], "k": 1})
        assert [h["id"] for h in hits] == [1], hits
        # The Qdrant-compatible listener answers in the container too.
        q = Client(box.qdrant_port)
        status, doc = q.request("POST", "/collections/notes/points/search", {"vector": [0.9, 0.1, 0], "limit": 1})
        assert status == 200 and doc["result"][0]["id"] == 1, doc
        q.close()
        # The image's own HEALTHCHECK command, pointed at this container's port.
        check = " ".join(image["Healthcheck"]["Test"][1:]).replace("6480", str(box.port))
        r = box.exec("sh", "-c", check)
        assert r.returncode == 0, (r.stdout, r.stderr)
        # vectord-router ships in the same image, its libraries with it.
        r = box.exec("/usr/local/bin/vectord-router", "--help")
        assert r.returncode == 0 and "--partition-pattern" in r.stdout, (r.stdout, r.stderr)
        uid = int([l for l in open(f"/proc/{box.vectord_pid()}/status") if l.startswith("Uid:")][0].split()[1])
        assert uid == 10001
        c.close()
        code, out = box.stop()
        assert code == 0, out
        assert 'msg="checkpoint" reason=shutdown' in out, out
        # Started again in the same container: the write is back, from the checkpoint.
        c = box.start()
        got = c.ok("GET", "/collections/notes")
        assert got["points_count"] == 2, got
        c.close()
        code, out = box.stop()
        assert code == 0, out
        assert re.search(r'msg="ready" .*snapshots=[1-9]', out), out
    finally:
        box.remove()
