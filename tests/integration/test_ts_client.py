"""The TypeScript VectorStore client (examples/typescript) against a running
vectord: compiled with Debian's tsc, run with node. Skipped, saying why, when
either is missing."""
import json
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import Server

EXAMPLE = os.path.join(os.path.dirname(__file__), "../../examples/typescript")


def test_typescript_client_round_trip():
    node, tsc = shutil.which("node") or shutil.which("nodejs"), shutil.which("tsc")
    if not node or not tsc:
        pytest.skip("node or tsc missing (apt-get install nodejs node-typescript)")
    with tempfile.TemporaryDirectory(prefix="vectord-ts-") as out:
        r = subprocess.run([tsc, "-p", EXAMPLE, "--outDir", out], capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        for key in (None, "admin-key-for-ts"):
            s = Server(env={"VECTORD_API_KEY": key} if key else None)
            try:
                args = [node, os.path.join(out, "smoke.js"), f"http://127.0.0.1:{s.port}"]
                r = subprocess.run(args + ([key] if key else []), capture_output=True, text=True,
                                   timeout=120)
                assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr
            finally:
                s.stop()


def test_the_client_packs_as_an_npm_package_with_its_types():
    npm, tsc = shutil.which("npm"), shutil.which("tsc")
    if not npm or not tsc:
        pytest.skip("npm or tsc missing (apt-get install npm node-typescript)")
    with tempfile.TemporaryDirectory(prefix="vectord-ts-pack-") as tmp:
        pkg = os.path.join(tmp, "client")
        shutil.copytree(EXAMPLE, pkg, ignore=shutil.ignore_patterns("build", "node_modules"))
        r = subprocess.run([npm, "pack", "--json", "--pack-destination", tmp], cwd=pkg, capture_output=True,
                           text=True, timeout=300, env={**os.environ, "npm_config_update_notifier": "false"})
        assert r.returncode == 0, r.stdout + r.stderr
        files = {f["path"] for f in json.loads(r.stdout[r.stdout.index("["):])[0]["files"]}
        assert {"build/vector-store.js", "build/vector-store.d.ts", "package.json"} <= files, files
        assert not any(f.startswith("smoke") or f.endswith("smoke.js") for f in files), files
        with open(os.path.join(pkg, "build", "vector-store.d.ts")) as f:
            types = f.read()
        for name in ("class VectorStore", "searchBatch", "feedLsn", "stale: number"):
            assert name in types, name
