"""Process lifecycle: configuration precedence, data-dir lock, clean shutdown."""
import os
import signal
import subprocess
import tempfile

from conftest import BIN, Server


def run(args, env=None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("VECTORD_")}
    full_env.update(env or {})
    return subprocess.run([BIN, *args], capture_output=True, text=True, env=full_env, timeout=60)


def test_print_config_precedence():
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
        f.write("[server]\nlisten = 127.0.0.1:7000\nlog_level = warn\n[limits]\nmax_k = 50\nmax_dim = 70\n")
        path = f.name
    try:
        r = run(["--config", path, "--set", "max_dim=90", "--print-config"],
                env={"VECTORD_MAX_K": "60", "VECTORD_MAX_DIM": "80"})
        assert r.returncode == 0, r.stderr
        out = r.stdout
        assert "listen = 127.0.0.1:7000" in out      # file over default
        assert "log_level = warn" in out
        assert "max_k = 60" in out                    # env over file
        assert "max_dim = 90" in out                  # flag over env
        r = run(["--print-config"], env={"VECTORD_CONFIG": path})
        assert "max_k = 50" in r.stdout
    finally:
        os.unlink(path)


def test_bad_configuration_exits_2_with_a_message():
    r = run(["--set", "max_k=0"])
    assert r.returncode == 2 and "max_k" in r.stderr
    r = run(["--frobnicate"])
    assert r.returncode == 2 and "unknown argument" in r.stderr
    r = run(["--help"])
    assert r.returncode == 0 and "--listen" in r.stdout
    r = run(["--version"])
    assert r.returncode == 0 and r.stdout.startswith("vectord ")


def test_shipped_config_file_starts_the_server():
    conf = os.path.join(os.path.dirname(__file__), "../../config/vectord.conf")
    s = Server(args=["--config", conf])
    try:
        assert s.client.ok("GET", "/readyz")["status"] == "ready"
    finally:
        s.stop()


def test_data_dir_is_locked():
    s = Server()
    try:
        r = run(["--listen", "127.0.0.1:0", "--data-dir", s.data_dir])
        assert r.returncode != 0
        assert "locked by another vectord" in r.stderr
    finally:
        s.stop()


def test_sigint_and_sigterm_shut_down_cleanly():
    for sig in (signal.SIGINT, signal.SIGTERM):
        s = Server(args=["--log-level", "debug"])
        c = s.client
        c.ok("PUT", "/collections/m", {"dim": 2, "payload_indexes": {"a": "keyword"}})
        c.ok("PUT", "/collections/m/points", {"points": [
            {"id": i, "vector": [i + 1.0, 1.0], "payload": {"a": f"x{i % 3}", "n": {"deep": [i]}}}
            for i in range(100)]})
        s.proc.send_signal(sig)
        logs = s.stop(expect_code=0)
        assert 'msg="shutting down"' in logs and 'msg="stopped"' in logs
        assert 'level=debug msg="request" method=PUT' in logs
        for line in logs.splitlines():
            if line.startswith("ts="):
                assert " level=" in line and " msg=\"" in line, line


def test_extra_feed_sections_in_the_config_file():
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
        f.write("[feed.agents]\nfeed_table = AgentMemory\nfeed_collection = agent_memories\n")
        path = f.name
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
        f.write("[feed.bad name]\nfeed_table = X\n")
        bad = f.name
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
        f.write("[feed.agents]\nfeed_frobnicate = 1\n")
        unknown = f.name
    try:
        r = run(["--config", path, "--print-config"])
        assert r.returncode == 0, r.stderr
        extra = r.stdout.split("[feed.agents]")[1]
        assert "feed_name = agents" in extra and "feed_table = AgentMemory" in extra
        assert "feed_collection = agent_memories" in extra and "feed_batch_rows = 2000" in extra
        r = run(["--config", bad, "--print-config"])
        assert r.returncode == 2 and "feed name" in r.stderr
        r = run(["--config", unknown, "--print-config"])
        assert r.returncode == 2 and "feed_frobnicate" in r.stderr
    finally:
        for p in (path, bad, unknown):
            os.unlink(p)
