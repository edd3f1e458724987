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

from conftest import BIN, node_tools

yaml = pytest.importorskip("yaml", reason="python3-yaml is needed to read the manifests")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY = os.path.join(ROOT, "deploy")


def settings():
    out = subprocess.run([BIN, "--help"], capture_output=True, text=True, timeout=30).stdout
    return set(re.findall(r"\]\s+(\w+)\s+default", out))


def manifest_files():
    """(path relative to deploy/k8s, document) for every manifest, the
    optional monitoring/ ones included."""
    out = []
    for top, _, names in sorted(os.walk(os.path.join(DEPLOY, "k8s"))):
        for name in sorted(n for n in names if n.endswith((".yaml", ".yml"))):
            path = os.path.join(top, name)
            with open(path) as f:
                out += [(os.path.relpath(path, os.path.join(DEPLOY, "k8s")), d) for d in yaml.safe_load_all(f) if d]
    return out


def manifests():
    return {(d["kind"], d["metadata"]["name"]): d for _, d in manifest_files()}


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


# apiVersion -> the module of kubernetes-models that has its types
TYPE_MODULES = {
    "v1": "kubernetes-models/v1",
    "apps/v1": "kubernetes-models/apps/v1",
    "policy/v1": "kubernetes-models/policy/v1",
    "monitoring.coreos.com/v1": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1",
}


def tools_dir():
    return node_tools("to validate the manifests")


def test_manifests_validate_against_the_kubernetes_schemas():
    """Every manifest against the API's JSON schema (types, required fields,
    formats) with kubernetes-models, and against its TypeScript types, which
    also refuse fields the API does not have (kubectl's strict validation)."""
    tools = tools_dir()
    docs = [{"file": f, "doc": d} for f, d in manifest_files()]
    assert {d["doc"]["kind"] for d in docs} >= {"StatefulSet", "Service", "ConfigMap", "Secret",
                                                 "PodDisruptionBudget", "PodMonitor"}
    r = subprocess.run(["node", os.path.join(tools, "validate-k8s.mjs")], input=json.dumps(docs),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("\nok ") + r.stdout.startswith("ok ") == len(docs), r.stdout
    if not shutil.which("tsc"):
        pytest.skip("tsc is needed for the unknown-field check (apt-get install node-typescript)")
    lines = []
    for i, d in enumerate(docs):
        kind, module = d["doc"]["kind"], TYPE_MODULES[d["doc"]["apiVersion"]]
        lines.append(f'import type {{ I{kind} as T{i} }} from "{module}/{kind}";')
        lines.append(f"export const doc{i}: T{i} = {json.dumps(d['doc'])}; // {d['file']}")
    check = os.path.join(tools, ".manifests-check.ts")
    with open(check, "w") as f:
        f.write("\n".join(lines) + "\n")
    try:
        r = subprocess.run(["tsc", "--noEmit", "--strict", "--module", "node16", "--moduleResolution", "node16",
                            check], cwd=tools, capture_output=True, text=True, timeout=300)
    finally:
        os.unlink(check)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_schema_checks_catch_a_wrong_manifest():
    tools = tools_dir()
    sts = json.loads(json.dumps(manifests()[("StatefulSet", "vectord")]))
    sts["spec"]["replicas"] = "two"
    r = subprocess.run(["node", os.path.join(tools, "validate-k8s.mjs")],
                       input=json.dumps([{"file": "x", "doc": sts}]), capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "replicas must be integer" in r.stdout, r.stdout + r.stderr


# The restricted Pod Security Standard's rules for a pod spec, as the
# Kubernetes documentation lists them (Pod Security Standards, "Restricted").
ALLOWED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                   "projected", "secret"}


def restricted_violations(pod):
    bad = []
    psc = pod.get("securityContext", {})
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key):
            bad.append(key)
    for v in pod.get("volumes", []):
        kinds = set(v) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            bad.append(f"volume {v['name']} of type {kinds - ALLOWED_VOLUMES}")
    if psc.get("runAsUser") == 0:
        bad.append("pod runAsUser 0")
    for c in pod.get("initContainers", []) + pod["containers"]:
        sc = c.get("securityContext", {})
        name = c["name"]
        if sc.get("privileged"):
            bad.append(f"{name}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            bad.append(f"{name}: allowPrivilegeEscalation must be false")
        caps = sc.get("capabilities", {})
        if "ALL" not in caps.get("drop", []):
            bad.append(f"{name}: capabilities must drop ALL")
        if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            bad.append(f"{name}: adds capabilities")
        if sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
            bad.append(f"{name}: runAsNonRoot")
        if sc.get("runAsUser", psc.get("runAsUser", 1)) == 0:
            bad.append(f"{name}: runAsUser 0")
        seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            bad.append(f"{name}: seccompProfile RuntimeDefault or Localhost")
        if any(p.get("hostPort") for p in c.get("ports", [])):
            bad.append(f"{name}: hostPort")
    return bad


def test_statefulset_meets_the_restricted_pod_security_standard():
    pod = manifests()[("StatefulSet", "vectord")]["spec"]["template"]["spec"]
    assert restricted_violations(pod) == []
    # The rules can fail: the same pod with one rule broken each time.
    for breaking in (lambda p: p["containers"][0]["securityContext"].pop("allowPrivilegeEscalation"),
                     lambda p: p["securityContext"].pop("seccompProfile"),
                     lambda p: p["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
                     lambda p: p["containers"][0]["securityContext"]["capabilities"].update(drop=[])):
        broken = json.loads(json.dumps(pod))
        breaking(broken)
        assert restricted_violations(broken), breaking
    c = pod["containers"][0]
    sc, psc = c["securityContext"], pod["securityContext"]
    assert isinstance(psc["runAsUser"], int) and psc["runAsUser"] == 10001  # the image's USER
    # A read-only root with the data volume and /tmp writable.
    assert sc["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert not mounts["/var/lib/vectord"].get("readOnly") and not mounts["/tmp"].get("readOnly")
    tmp = [v for v in pod["volumes"] if v["name"] == mounts["/tmp"]["name"]][0]
    assert "emptyDir" in tmp


def test_statefulset_spreads_replicas_and_pins_its_image():
    pod = manifests()[("StatefulSet", "vectord")]["spec"]["template"]["spec"]
    spread = [t["topologyKey"] for t in pod.get("topologySpreadConstraints", [])]
    anti = [t.get("podAffinityTerm", t)["topologyKey"]
            for kind in ("preferredDuringSchedulingIgnoredDuringExecution",
                         "requiredDuringSchedulingIgnoredDuringExecution")
            for t in pod.get("affinity", {}).get("podAntiAffinity", {}).get(kind, [])]
    assert "kubernetes.io/hostname" in spread + anti
    image = pod["containers"][0]["image"]
    name, _, tag = image.rpartition(":")
    assert ("@sha256:" in image or (name and tag and tag != "latest" and "/" not in tag)), image


def test_service_does_not_claim_replicas_share_writes():
    with open(os.path.join(DEPLOY, "k8s", "service.yaml")) as f:
        text = " ".join(f.read().replace("#", " ").split())
    assert "writes go to any" not in text.lower()
    assert "do not share writes" in text


def test_comments_point_only_at_files_in_the_repository():
    """A path named in a comment of deploy/ (docs/X.md, deploy/…, scripts/…)
    must exist in the repository."""
    named = []
    for top, _, names in os.walk(DEPLOY):
        for name in names:
            path = os.path.join(top, name)
            with open(path, errors="replace") as f:
                text = f.read()
            comments = "\n".join(re.findall(r"(?:^|\s)(?:#|--|//) ?(.*)$", text, re.M))
            if name.endswith(".json"):
                comments = text  # JSON has no comments: descriptions name files
            for ref in re.findall(r"\b((?:docs|deploy|scripts|tests|bench|config|examples)/[\w./-]*\w)", comments):
                named.append((os.path.relpath(path, ROOT), ref))
    assert named, "no paths found: the pattern is wrong"
    missing = [(src, ref) for src, ref in named if not os.path.exists(os.path.join(ROOT, ref))]
    assert not missing, missing


def test_dockerfile_installs_every_runtime_library():
    with open(os.path.join(DEPLOY, "Dockerfile")) as f:
        text = f.read()
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    assert len(stages) == 2 and stages[1].startswith("${RUNTIME_IMAGE}")
    assert re.search(r"^ARG RUNTIME_IMAGE=docker.io/library/debian:12-slim$", text, re.M)
    runtime = stages[1]
    assert re.search(r"^USER 10001:10001$", runtime, re.M)  # numeric: runAsNonRoot can verify it
    assert "HEALTHCHECK" in runtime and "/healthz" in runtime and "VOLUME /var/lib/vectord" in runtime
    installed = set(re.findall(r"\b(lib[a-z0-9.+-]+)", runtime.split("rm -rf")[0]))
    # The libraries vectord and vectord-router name (DT_NEEDED); apt brings their own dependencies.
    from router import ROUTER_BIN
    needed, paths = [], {}
    for binary in (BIN, ROUTER_BIN):
        needed += re.findall(r"NEEDED\s+(\S+)", subprocess.run(["objdump", "-p", binary], capture_output=True,
                                                                text=True).stdout)
        paths.update(re.findall(r"^\s*(\S+) => (/\S+)", subprocess.run(["ldd", binary], capture_output=True,
                                                                        text=True).stdout, re.M))
    assert "libpq.so.5" in needed and "libcurl.so.4" in needed
    missing = []
    for soname in sorted(set(needed)):
        if soname.startswith("ld-linux"):
            continue  # the dynamic loader (thread-local storage may name it): libc6
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


# ---- the partitioned layout (docs/PARTITIONS.md) ---------------------------

def test_partitioned_manifests_are_the_generators_output():
    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run([os.path.join(ROOT, "scripts", "k8s-partitions"), "--out", d],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        for name in ("partitions.yaml", "router.yaml"):
            with open(os.path.join(d, name)) as a, open(os.path.join(DEPLOY, "k8s", "partitioned", name)) as b:
                assert a.read() == b.read(), f"deploy/k8s/partitioned/{name} is stale: run scripts/k8s-partitions"


def partitioned():
    m = manifests()
    parts = sorted((d for (kind, _), d in m.items()
                    if kind == "StatefulSet" and d["metadata"]["labels"].get("app") == "vectord-partition"),
                   key=lambda d: d["metadata"]["name"])
    return m, parts


def env_of(container):
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_each_partition_is_a_statefulset_with_its_share_and_its_budget():
    m, parts = partitioned()
    assert len(parts) == 3
    selected = []
    for p, sts in enumerate(parts):
        name = sts["metadata"]["name"]
        assert name == f"vectord-p{p}"
        spec = sts["spec"]
        pod = spec["template"]["spec"]
        assert restricted_violations(pod) == []
        env = env_of(pod["containers"][0])
        assert env["VECTORD_FEED_PARTITION"] == f"{p}/3" and env["VECTORD_FEED_PARTITION_COLUMN"] == "userId"
        assert env["VECTORD_FEED_NAME"]["fieldRef"]["fieldPath"] == "metadata.name"  # unique per pod
        labels = spec["template"]["metadata"]["labels"]
        assert spec["selector"]["matchLabels"] == labels and labels["partition"] == name
        # Its pods' DNS names (vectord-pP-R.vectord-pP), which the router's pattern names.
        svc = m[("Service", spec["serviceName"])]
        assert svc["spec"]["clusterIP"] == "None" and svc["spec"]["selector"] == labels
        # A drain never takes a partition's last ready replica.
        pdb = m[("PodDisruptionBudget", name)]
        assert pdb["spec"]["selector"]["matchLabels"] == labels and pdb["spec"]["minAvailable"] >= 1
        assert spec["replicas"] > pdb["spec"]["minAvailable"], "a drain could never evict a pod"
        selected.append(labels)
        # Spread: the replicas of one partition on different nodes.
        spread = pod["topologySpreadConstraints"][0]
        assert spread["labelSelector"]["matchLabels"] == labels
    # No selector of the single-set layout picks partition pods (nor the reverse).
    single = m[("Service", "vectord")]["spec"]["selector"]
    assert all(any(labels.get(k) != v for k, v in single.items()) for labels in selected)


def test_the_router_deployment_names_every_partition():
    m, parts = partitioned()
    dep = m[("Deployment", "vectord-router")]
    pod = dep["spec"]["template"]["spec"]
    assert restricted_violations(pod) == []
    c = pod["containers"][0]
    assert c["command"] == ["/usr/local/bin/vectord-router"]
    args = c["args"]
    pattern = args[args.index("--partition-pattern") + 1]
    assert int(args[args.index("--partitions") + 1]) == len(parts)
    reps = int(args[args.index("--replicas") + 1])
    for p, sts in enumerate(parts):
        assert sts["spec"]["replicas"] == reps
        host = pattern.replace("{p}", str(p)).replace("{r}", "0").split("//")[1].split(":")[0]
        assert host == f"{sts['metadata']['name']}-0.{sts['spec']['serviceName']}", host
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert m[("PodDisruptionBudget", "vectord-router")]["spec"]["minAvailable"] >= 1
    assert dep["spec"]["replicas"] >= 2
    svc = m[("Service", "vectord-router")]
    assert {p["name"] for p in svc["spec"]["ports"]} == {"http", "qdrant"}
    # The router's options are ones vectord-router takes.
    from router import ROUTER_BIN
    usage = subprocess.run([ROUTER_BIN, "--help"], capture_output=True, text=True, timeout=30).stdout
    for a in args + [e["name"] for e in c["env"]]:
        if a.startswith("--") or a.startswith("VECTORD_ROUTER_"):
            assert a in usage or a.replace("VECTORD_ROUTER_", "") in usage, a


def test_router_rules_reference_metrics_the_router_exports():
    """Every vectord_router_* series in deploy/prometheus/vectord-router-rules.yml
    exists in /metrics of a running router (with a next generation, so the
    generation="next" series are there too)."""
    from conftest import Server
    from router import Router
    with open(os.path.join(DEPLOY, "prometheus", "vectord-router-rules.yml")) as f:
        rules = yaml.safe_load(f)
    used = {n for g in rules["groups"] for r in g["rules"] for n in re.findall(r"\b(vectord_router_[a-z_]+)", r["expr"])}
    s = Server()
    router = Router(["--partition", f"http://127.0.0.1:{s.port}", "--next-partition", "http://127.0.0.1:1"])
    try:
        _, text = router.client.request("GET", "/metrics")
    finally:
        router.stop()
        s.stop()
    exported = set(re.findall(r"^(vectord_router_[a-z_]+)", text, re.M))
    assert used and not sorted(used - exported), sorted(used - exported)
    assert 'generation="next"' in text and 'generation="current"' in text
