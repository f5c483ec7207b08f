"""Lints and renders helm/clearinghouse offline (helm-python-sdk: Helm's Go SDK, no helm binary), then
validates every rendered manifest against the Kubernetes schemas (kubernetes-validate --strict), for
the default values and for helm/ci/production.yaml; and shows that each values file in helm/ci/bad/ is
rejected with a message naming the wrong key. Run by scripts/check-helm.sh."""

import pathlib
import subprocess
import sys
import tempfile
import tomllib

import helm_python as helm
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "clearinghouse"
CI = ROOT / "helm" / "ci"
KUBE_VERSION = "1.31.0"
failures = []


def load(path):
    return yaml.safe_load(path.read_text()) or {}


def lint(name, values):
    report = helm.lint(str(CHART), values, strict=True, kube_version=f"v{KUBE_VERSION}")
    problems = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2] + [{"error": e} for e in report.get("errors", []) or []]
    for p in problems:
        failures.append(f"lint [{name}]: {p}")
    print(f"lint [{name}]: {len(problems)} problem(s)")


def render_and_validate(name, values):
    with helm.Chart.load(str(CHART)) as chart:
        chart.validate_schema(values)
        manifests = chart.render(values, name="ch", namespace="clearing", is_install=True)
    # The service's config file must be TOML that `clearing serve --config` reads (version 1).
    config = [d for d in yaml.safe_load_all(manifests["clearinghouse/templates/configmap.yaml"]) if d][0]
    parsed = tomllib.loads(config["data"]["clearing.toml"])
    if parsed.get("version") != 1 or parsed.get("store") != "redis" or not parsed.get("redis_url"):
        failures.append(f"[{name}] clearing.toml: {parsed}")
    check_bundled_redis(name, manifests)
    check_withdrawable_credentials(name, values, parsed, manifests)
    with tempfile.TemporaryDirectory() as d:
        files = []
        kinds = []
        for template, text in sorted(manifests.items()):
            if not template.endswith((".yaml", ".yml")):
                continue
            docs = [doc for doc in yaml.safe_load_all(text) if doc]
            for i, doc in enumerate(docs):
                kinds.append(doc["kind"])
                f = pathlib.Path(d) / f"{pathlib.Path(template).stem}-{i}.yaml"
                f.write_text(yaml.safe_dump(doc))
                files.append(str(f))
        r = subprocess.run(
            [sys.executable, "-m", "kubernetes_validate", "--strict", "-k", KUBE_VERSION, *files],
            capture_output=True,
            text=True,
        )
        if r.returncode != 0:
            failures.append(f"kubernetes-validate [{name}]:\n{r.stdout}{r.stderr}")
        print(f"render [{name}]: {len(files)} manifests ({', '.join(sorted(set(kinds)))}); kubernetes-validate --strict: {'ok' if r.returncode == 0 else 'FAILED'}")
        return kinds


def check_bundled_redis(name, manifests):
    """The bundled Redis runs the start script the tests run (files/redis-start.sh, byte for byte), with
    the settings clearing requires (issue 27)."""
    text = manifests.get("clearinghouse/templates/redis.yaml", "")
    docs = [d for d in yaml.safe_load_all(text) if d]
    if not docs:
        return
    script = (CHART / "files" / "redis-start.sh").read_text()
    shipped = [d["data"]["redis-start.sh"] for d in docs if d["kind"] == "ConfigMap"]
    if shipped != [script.rstrip("\n")]:
        failures.append(f"[{name}] the Redis ConfigMap does not carry files/redis-start.sh as it is")
    sts = [d for d in docs if d["kind"] == "StatefulSet"][0]
    c = sts["spec"]["template"]["spec"]["containers"][0]
    argv = c["command"] + c["args"]
    for need in (["/opt/redis-start/redis-start.sh", "/data"], ["--appendfsync", "always"], ["--aof-load-truncated", "no"]):
        if not any(argv[i : i + len(need)] == need for i in range(len(argv))):
            failures.append(f"[{name}] the Redis container does not run {' '.join(need)}: {argv}")
    print(f"redis [{name}]: starts through files/redis-start.sh with appendfsync always, aof-load-truncated no")


def check_withdrawable_credentials(name, values, config, manifests):
    """Issue 33: with a CRL Secret, every TLS side is given its CRL file; Secrets are mounted as whole
    directories (a subPath mount never sees a Secret update, so a revocation would need a rollout)."""
    crl = (values.get("tls") or {}).get("crlSecretName")
    docs = [d for t, text in manifests.items() if t.endswith(".yaml") for d in yaml.safe_load_all(text) if d]
    for d in docs:
        spec = (d.get("spec") or {}).get("template", {}).get("spec", {})
        for c in spec.get("containers", []):
            for m in c.get("volumeMounts", []):
                if "subPath" in m:
                    failures.append(f"[{name}] {d['metadata']['name']}: {m['name']} is mounted with subPath")
    if not crl:
        return
    if config.get("tls_crl") != "/etc/clearing/crl/clients.crl":
        failures.append(f"[{name}] clearing.toml has no tls_crl: {config}")
    argv = [a for d in docs if d["kind"] == "Deployment" for c in d["spec"]["template"]["spec"]["containers"] for a in c.get("args", [])]
    for flag in ("--tls-crl", "--clearing-tls-crl"):
        if flag not in argv:
            failures.append(f"[{name}] no container runs with {flag}")
    print(f"credentials [{name}]: CRLs from Secret {crl} wired to clearing, adapters and gateway; no subPath mounts")


def rejected(path):
    first = path.read_text().splitlines()[0]
    expect = first.split("expect:", 1)[1].strip()
    values = load(path)
    try:
        with helm.Chart.load(str(CHART)) as chart:
            chart.validate_schema(values)
            chart.render(values, name="ch", namespace="clearing")
    except helm.HelmError as e:
        msg = str(e)
        if expect not in msg:
            failures.append(f"{path.name}: rejected, but the message does not name {expect!r}: {msg}")
        print(f"rejected [{path.name}]: {' '.join(msg.split())[:200]}")
        return
    failures.append(f"{path.name}: accepted, should have been rejected")


default_kinds = render_and_validate("default values", {})
lint("default values", {})
for k in ["Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "CronJob", "StatefulSet", "ConfigMap"]:
    if k not in default_kinds:
        failures.append(f"default values render no {k}")
# clearing and the national gateway, each with its Service, PDB and HPA.
for k in ["Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget"]:
    if default_kinds.count(k) != 2:
        failures.append(f"default values: expected 2 {k} (clearing, gateway), got {default_kinds.count(k)}")
prod = load(CI / "production.yaml")
prod_kinds = render_and_validate("production.yaml", prod)
lint("production.yaml", prod)
if "StatefulSet" in prod_kinds:
    failures.append("production.yaml uses external Redis but a StatefulSet was rendered")
if prod_kinds.count("Deployment") != 4:
    failures.append(f"production.yaml: expected 4 Deployments (clearing, gateway, 2 adapters), got {prod_kinds.count('Deployment')}")
if "Ingress" not in prod_kinds:
    failures.append("production.yaml enables the gateway's Ingress but none was rendered")
for bad in sorted((CI / "bad").glob("*.yaml")):
    rejected(bad)

if failures:
    print("\n".join(["", "HELM CHECK FAILED:"] + failures))
    sys.exit(1)
print("helm chart: ok")
