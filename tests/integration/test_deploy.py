"""deploy/: the Dockerfile, docker-compose.yml and Kubernetes manifests are
checked against the binary they ship: yamllint passes, every VECTORD_*
variable they set is a real setting, the ConfigMap's vectord.conf is a valid
configuration, probes point at /healthz and /readyz, and the runtime image
installs the Debian package of every shared library vectord links against.
(Docker itself is not needed: nothing is built or run here.)"""
import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from conftest import BIN

yaml = pytest.importorskip("yaml", reason="python3-yaml is needed to read the manifests")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY = os.path.join(ROOT, "deploy")


def settings():
    out = subprocess.run([BIN, "--help"], capture_output=True, text=True, timeout=30).stdout
    return set(re.findall(r"\]\s+(\w+)\s+default", out))


def manifests():
    docs = []
    for name in sorted(os.listdir(os.path.join(DEPLOY, "k8s"))):
        with open(os.path.join(DEPLOY, "k8s", name)) as f:
            docs += [d for d in yaml.safe_load_all(f) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def test_yamllint():
    if not shutil.which("yamllint"):
        pytest.skip("yamllint is not installed (apt-get install yamllint)")
    r = subprocess.run(["yamllint", "-s", "-c", os.path.join(ROOT, ".yamllint"), DEPLOY],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_variable_is_a_setting():
    known = settings()
    assert "feed_dsn" in known and "api_key" in known
    m = manifests()
    sts = m[("StatefulSet", "vectord")]
    names = [e["name"] for e in sts["spec"]["template"]["spec"]["containers"][0]["env"]]
    with open(os.path.join(DEPLOY, "docker-compose.yml")) as f:
        compose = yaml.safe_load(f)
    names += list(compose["services"]["vectord"]["environment"])
    with open(os.path.join(DEPLOY, "Dockerfile")) as f:
        names += re.findall(r"\b(VECTORD_[A-Z_]+)=", f.read())
    assert names
    for n in names:
        assert n.startswith("VECTORD_") and n[8:].lower() in known, n


def test_configmap_is_a_valid_configuration():
    conf = manifests()[("ConfigMap", "vectord-config")]["data"]["vectord.conf"]
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
        f.write(conf)
    try:
        r = subprocess.run([BIN, "--config", f.name, "--print-config"], capture_output=True, text=True, timeout=30,
                           env={k: v for k, v in os.environ.items() if not k.startswith("VECTORD_")})
        assert r.returncode == 0, r.stderr
        assert "feed_dim = 1536" in r.stdout
    finally:
        os.unlink(f.name)


def test_statefulset_probes_volumes_and_lifecycle():
    m = manifests()
    sts = m[("StatefulSet", "vectord")]["spec"]
    pod = sts["template"]["spec"]
    c = pod["containers"][0]
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pod["terminationGracePeriodSeconds"] >= 30
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert sts["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    assert any(v["mountPath"] == "/var/lib/vectord" for v in c["volumeMounts"])
    feed_name = [e for e in c["env"] if e["name"] == "VECTORD_FEED_NAME"][0]
    assert feed_name["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"  # unique per replica
    assert m[("PodDisruptionBudget", "vectord")]["spec"]["minAvailable"] >= 1
    assert m[("Service", "vectord-headless")]["spec"]["clusterIP"] == "None"


def test_dockerfile_installs_every_runtime_library():
    with open(os.path.join(DEPLOY, "Dockerfile")) as f:
        text = f.read()
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    assert len(stages) == 2 and stages[1].startswith("debian:12-slim")
    runtime = stages[1]
    assert re.search(r"^USER vectord$", runtime, re.M)
    assert "HEALTHCHECK" in runtime and "/healthz" in runtime and "VOLUME /var/lib/vectord" in runtime
    installed = set(re.findall(r"\b(lib[a-z0-9.+-]+)", runtime.split("rm -rf")[0]))
    # The libraries vectord itself names (DT_NEEDED); apt brings their own dependencies.
    needed = re.findall(r"NEEDED\s+(\S+)", subprocess.run(["objdump", "-p", BIN], capture_output=True,
                                                          text=True).stdout)
    paths = dict(re.findall(r"^\s*(\S+) => (/\S+)", subprocess.run(["ldd", BIN], capture_output=True,
                                                                   text=True).stdout, re.M))
    assert "libpq.so.5" in needed
    missing = []
    for soname in needed:
        path = os.path.realpath(paths[soname])
        r = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
        if r.returncode != 0 and path.startswith("/lib"):  # merged /usr: dpkg knows one of the two
            r = subprocess.run(["dpkg", "-S", "/usr" + path], capture_output=True, text=True)
        if r.returncode != 0 and path.startswith("/usr/lib"):
            r = subprocess.run(["dpkg", "-S", path[4:]], capture_output=True, text=True)
        pkg = r.stdout.split(":")[0] if r.returncode == 0 else "?"
        if pkg in ("libc6", "libgcc-s1") or re.match(r"lib(a|ub|t)san", pkg):
            continue  # in every Debian image, or sanitizer builds only
        if pkg not in installed:
            missing.append((soname, pkg))
    assert not missing, f"runtime image lacks {missing}; installed {sorted(installed)}"


def exported_metrics():
    """The metric names of /metrics of a running server with a (disconnected)
    feed, after a search, a shadow search and a sampled search, so per-feed
    and per-collection series are present."""
    from conftest import Server
    s = Server(args=["--set", "recall_sample_every=1", "--set", "feed_dsn=host=127.0.0.1 port=1",
                     "--set", "feed_collection=m"])
    try:
        c = s.client
        c.ok("PUT", "/collections/m", {"dim": 2})
        c.ok("PUT", "/collections/m/points", {"points": [{"id": 1, "vector": [1, 0]}]})
        c.ok("POST", "/collections/m/search", {"vector": [1, 0]})
        c.ok("POST", "/collections/m/search/shadow", {"vector": [1, 0], "baseline": {"ids": [1]}})
        _, text = c.request("GET", "/metrics")
    finally:
        s.stop()
    names = set(re.findall(r"^((?:vectord|process)_[a-z_]+)", text, re.M))
    # a histogram's family, beside its _bucket, _sum and _count series
    return names | {re.sub(r"_(bucket|sum|count)$", "", n) for n in names}


def series_used(expr):
    """vectord_* and process_* names in a PromQL expression (histogram
    _bucket/_sum/_count series map to their family, as /metrics lists them)."""
    names = set(re.findall(r"\b((?:vectord|process)_[a-z_]+)", expr))
    return {re.sub(r"_bucket$", "", n) if n.endswith("_bucket") else n for n in names}


def test_prometheus_rules_reference_metrics_vectord_exports():
    """Every vectord_* series in deploy/prometheus/vectord-rules.yml exists in
    /metrics of a running server."""
    with open(os.path.join(DEPLOY, "prometheus", "vectord-rules.yml")) as f:
        rules = yaml.safe_load(f)
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    recorded = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    used = set()
    for e in exprs:
        used |= set(re.findall(r"\b(vectord_[a-z_]+)", e))
        for name in re.findall(r"\b(vectord:[a-z_0-9:]+)", e):
            assert name in recorded, name
    exported = exported_metrics()
    missing = sorted(used - exported)
    assert not missing, f"rules use metrics vectord does not export: {missing}"


def test_grafana_dashboard_parses_and_queries_only_exported_metrics():
    with open(os.path.join(DEPLOY, "grafana", "vectord-dashboard.json")) as f:
        dash = json.load(f)
    assert dash["uid"] and dash["panels"], dash.keys()
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    used = set()
    for p in dash["panels"]:
        assert p["targets"], p["title"]
        for t in p["targets"]:
            used |= series_used(t["expr"])
    # what the issue asks the dashboard to show
    for family in ("vectord_http_request_duration_seconds", "vectord_http_requests_total",
                   "vectord_feed_staleness_seconds", "vectord_wal_sync_seconds", "vectord_recall_hits_total",
                   "vectord_collection_memory_bytes"):
        assert family in used, family
    missing = sorted(used - exported_metrics())
    assert not missing, f"the dashboard queries metrics vectord does not export: {missing}"
