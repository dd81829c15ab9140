#!/usr/bin/env python3
"""Checks of tickflow's deployment files.

Covers docker/Dockerfile, docker-compose.yaml, deploy/k8s (kustomize) and
deploy/airflow. No Docker engine or cluster is needed: python3 with PyYAML
(Debian: python3-yaml, which tests/env/deps.sh installs) and Go 1.26 or newer,
with which tests/env/kustomize.sh builds the pinned kustomize on first use.

deploy/k8s is checked as kustomize renders it: `kustomize build` of the base
and of every overlay under deploy/k8s/overlays (run from the repository root),
then per rendering: the object count per kind (EXPECTED_OBJECTS), probes,
resources and a restricted securityContext on every workload container,
selectors that select rendered pods, ConfigMap and Secret keys that exist
(the base renders no Secret: its keys come from base/secret.template.yaml),
and images that are pinned and are what the kustomizations' `images:` say.
Every component under deploy/k8s/components must be included by an overlay.
tests/deploy/check_deploy_mutations.py shows each of those checks failing.

Each check prints `ok - NAME` or `not ok - NAME: REASON`; the last line is
`N passed, N failed` and the exit status is 1 when any check failed.

    python3 tests/deploy/check_deploy.py
"""

from __future__ import annotations

import ast
import base64
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

try:
    import yaml
except ImportError:  # pragma: no cover - reported as a failure, not a crash
    yaml = None
    # Debian's interpreter has python3-yaml (tests/env/deps.sh) when the python3
    # found first (a pyenv or venv one) lacks PyYAML.
    _DEBIAN_PY = "/usr/bin/python3"
    if sys.executable != _DEBIAN_PY and os.access(_DEBIAN_PY, os.X_OK) and not os.environ.get("TF_NO_REEXEC"):
        if subprocess.run([_DEBIAN_PY, "-c", "import yaml"], capture_output=True).returncode == 0:
            os.environ["TF_NO_REEXEC"] = "1"
            os.execv(_DEBIAN_PY, [_DEBIAN_PY, *sys.argv])

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yaml"
K8S = ROOT / "deploy" / "k8s"
K8S_BASE = K8S / "base"
DAG = ROOT / "deploy" / "airflow" / "dags" / "tickflow_pipeline.py"
AIRFLOW_README = ROOT / "deploy" / "airflow" / "README.md"
KUSTOMIZE_SH = ROOT / "tests" / "env" / "kustomize.sh"
SECRET_TEMPLATE = K8S_BASE / "secret.template.yaml"
NAMESPACE = "tickflow"

# What `kustomize build` must give for each kustomization: kind -> count.
_BASE_OBJECTS = {
    "Namespace": 1,
    "ServiceAccount": 1,
    "ConfigMap": 2,
    "PersistentVolumeClaim": 1,
    "Service": 8,
    "Deployment": 4,
    "StatefulSet": 2,
    "HorizontalPodAutoscaler": 3,
    "PodDisruptionBudget": 3,
    "NetworkPolicy": 7,
}
EXPECTED_OBJECTS = {
    # no Secret: the base leaves tickflow-secrets to the operator (secret.template.yaml)
    "deploy/k8s/base": _BASE_OBJECTS,
    "deploy/k8s/overlays/dev": {**_BASE_OBJECTS, "Secret": 1},
    "deploy/k8s/overlays/dev-cronjob": {**_BASE_OBJECTS, "Secret": 1, "CronJob": 1, "NetworkPolicy": 8},
    # the lake in a bucket: no lake PVC, a second Secret (the bucket's keys)
    "deploy/k8s/overlays/dev-s3": {
        **{k: v for k, v in _BASE_OBJECTS.items() if k != "PersistentVolumeClaim"},
        "Secret": 2,
    },
}

# Containers that may write to their root filesystem: (kind, workload, container) -> why.
WRITABLE_ROOT = {
    ("StatefulSet", "kafka", "kafka"): "the image renders its configuration into /opt/kafka/config at start",
}

STAGES = ("extract", "transform", "aggregate")
SERVICES = STAGES + ("marketsim",)
MAKEFILE = ROOT / "Makefile"
HTTP_PORT = 8080
HOST_PORTS = {"extract": 8081, "transform": 8082, "aggregate": 8083, "marketsim": 8090}
LAKE_PATH = "/var/lib/tickflow/lake"

BUILD_DEPS = {
    "build-essential",
    "pkg-config",
    "libmicrohttpd-dev",
    "libcurl4-openssl-dev",
    "libcjson-dev",
    "libpq-dev",
    "librdkafka-dev",
    "libssl-dev",
    "uuid-dev",
    "zlib1g-dev",
    "libzstd-dev",
}
RUNTIME_DEPS = {
    "libmicrohttpd12",
    "libcurl4",
    "libcjson1",
    "libpq5",
    "librdkafka1",
    "libssl3",
    "libuuid1",
    "zlib1g",
    "libzstd1",
    "ca-certificates",
    "curl",
}

# Shared libraries the binaries may link, and the Debian package of each that the
# runtime stage must install (None: part of every Debian base image).
SONAME_PACKAGES = {
    "libmicrohttpd.so.12": "libmicrohttpd12",
    "libcurl.so.4": "libcurl4",
    "libcjson.so.1": "libcjson1",
    "libpq.so.5": "libpq5",
    "librdkafka.so.1": "librdkafka1",
    "libssl.so.3": "libssl3",
    "libcrypto.so.3": "libssl3",
    "libuuid.so.1": "libuuid1",
    "libz.so.1": "zlib1g",
    "libzstd.so.1": "libzstd1",
    "libc.so.6": None,
    "libm.so.6": None,
    "libpthread.so.0": None,
    "libdl.so.2": None,
    "librt.so.1": None,
    "libgcc_s.so.1": None,
    "ld-linux-x86-64.so.2": None,
    "ld-linux-aarch64.so.1": None,
}

SECRET_VARS = {
    "TICKFLOW_PG_DSN",
    "TICKFLOW_API_TOKEN",
    "POLYGON_API_KEY",
    "TWELVEDATA_API_KEY",
    "TICKFLOW_MARKETSIM_API_KEY",
}
KNOWN_ENV = (
    SECRET_VARS
    | {f"{v}_FILE" for v in SECRET_VARS}
    | {
        "TICKFLOW_KAFKA_BROKERS",
        "TICKFLOW_KAFKA_TOPIC_PREFIX",
        "TICKFLOW_HTTP_PORT",
        "TICKFLOW_HTTP_ADDR",
        "TICKFLOW_LAKE_URI",
        "TICKFLOW_POLYGON_BASE_URL",
        "TICKFLOW_TWELVEDATA_BASE_URL",
        "TICKFLOW_LOG_LEVEL",
        "TICKFLOW_WORKERS",
        "TICKFLOW_WORKER_ID",
        "TICKFLOW_MARKETSIM_SEED",
        "TICKFLOW_MARKETSIM_API_KEY",
    }
)
LOG_LEVELS = {"debug", "info", "warn", "error"}

# A value that is obviously not a secret: a placeholder, a variable reference,
# a template, or a development-only value that says so.
PLACEHOLDER = re.compile(r"CHANGE_?ME|REPLACE_?ME|<[^<>]+>|\$\{|\{\{|^\$|^[A-Z][A-Z_]*$|^$")
DEV_VALUE = re.compile(r"(?i)dev|demo|example")

RESULTS: list[tuple[str, list[str]]] = []
NOTES: list[str] = []


# --------------------------------------------------------------------------
# helpers


def check(name):
    """Register a check: the function returns a list of problems (empty = ok)."""

    def wrap(fn):
        try:
            problems = list(fn() or [])
        except Exception as exc:  # a crash is a failure with its reason
            problems = [f"{type(exc).__name__}: {exc}"]
        RESULTS.append((name, problems))
        return fn

    return wrap


def rel(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def load_yaml_docs(path: Path) -> list:
    with path.open(encoding="utf-8") as fh:
        return [d for d in yaml.safe_load_all(fh) if d is not None]


def deploy_yaml_files() -> list[Path]:
    files = [COMPOSE] if COMPOSE.exists() else []
    for top in (ROOT / "docker", ROOT / "deploy"):
        if top.is_dir():
            files += sorted(p for p in top.rglob("*") if p.suffix in (".yaml", ".yml"))
    return files


def dig(obj, *keys, default=None):
    for k in keys:
        if isinstance(obj, dict) and k in obj:
            obj = obj[k]
        elif isinstance(obj, list) and isinstance(k, int) and -len(obj) <= k < len(obj):
            obj = obj[k]
        else:
            return default
    return obj


def makefile_binaries() -> dict[str, str]:
    """service -> binary name that `make all` puts in build/bin (Makefile SERVICES)."""
    services = SERVICES
    if MAKEFILE.is_file():
        m = re.search(r"^SERVICES\s*:?=\s*(.+)$", MAKEFILE.read_text(encoding="utf-8"), re.M)
        if m:
            services = tuple(m.group(1).split())
    return {svc: f"tickflow-{svc}" for svc in services}


# The command line every image carries beside its service (docker/Dockerfile's runtime stage).
CTL_COPY = re.compile(r"--from=build\s+(\S*/)?build/bin/tickflowctl\s+/usr/local/bin/(tickflowctl)?$")


KEY_LITERAL = re.compile(r'\b\w*KEY\(\s*"((?:TICKFLOW|POLYGON|TWELVEDATA)_[A-Z0-9_]+)"(.*?)\)', re.S)


def code_keys() -> dict[str, dict[str, bool]]:
    """Configuration keys each service's C sources read: service -> {name: secret}.

    A service whose sources hold no key table yet is left out."""

    def keys_in(paths) -> dict[str, bool]:
        out: dict[str, bool] = {}
        for p in paths:
            for m in KEY_LITERAL.finditer(p.read_text(encoding="utf-8", errors="replace")):
                out[m.group(1)] = out.get(m.group(1), False) or "SECRET" in m.group(2)
        return out

    common = sorted((ROOT / "common").rglob("*.[ch]")) if (ROOT / "common").is_dir() else []
    common_keys = keys_in(common)
    result = {}
    for svc in SERVICES:
        src = sorted((ROOT / "services" / svc).glob("*.[ch]"))
        own = keys_in(src)
        text = "".join(p.read_text(encoding="utf-8", errors="replace") for p in src)
        if "TF_SVC_KEYS" in text or "tf_svc_main" in text:
            own = {**common_keys, **own}
        if own:
            result[svc] = own
    return result


def reads(keys: dict[str, bool], name: str) -> bool:
    return name in keys or (name.endswith("_FILE") and keys.get(name[:-5]) is True)


def known_env() -> set[str]:
    names = set(KNOWN_ENV)
    for keys in code_keys().values():
        names |= set(keys) | {f"{k}_FILE" for k, secret in keys.items() if secret}
    return names


def deploy_env_by_service() -> dict[str, dict[str, set[str]]]:
    """Variables the deployment files give each service: service -> {source: names}."""
    out: dict[str, dict[str, set[str]]] = {svc: {} for svc in SERVICES}
    svcs = load_yaml_docs(COMPOSE)[0].get("services", {})
    for svc in SERVICES:
        env = svcs.get(svc, {}).get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) if "=" in e else (e, None) for e in env)
        out[svc]["docker-compose.yaml"] = set(env)
    objs = base_objects()
    maps = {o["metadata"]["name"]: o.get("data") or {} for o in objs if o.get("kind") == "ConfigMap"}
    for name, dep in of_kind(objs, "Deployment").items():
        if name not in out:
            continue
        names = set()
        for c in containers(dep):
            names |= {e["name"] for e in c.get("env") or []}
            for ref in c.get("envFrom") or []:
                names |= set(maps.get(dig(ref, "configMapRef", "name"), {}))
        out[name]["deploy/k8s/base"] = names
    return out


# --- Dockerfile -------------------------------------------------------------


class Stage:
    def __init__(self, name: str, base: str):
        self.name, self.base, self.instrs = name, base, []

    def all(self, instr: str) -> list[str]:
        return [a for i, a in self.instrs if i == instr]

    def last(self, instr: str):
        found = self.all(instr)
        return found[-1] if found else None


def parse_dockerfile(path: Path) -> tuple[list[Stage], dict[str, str]]:
    lines, buf = [], ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        stripped = raw.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if buf and stripped.startswith("#"):
            continue  # comment inside a continued instruction
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        lines.append(buf + stripped)
        buf = ""
    if buf:
        lines.append(buf)
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in lines:
        instr, _, args = line.partition(" ")
        instr, args = instr.upper(), args.strip()
        if instr == "FROM":
            m = re.match(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$", args, re.I)
            if not m:
                raise ValueError(f"cannot parse FROM {args!r}")
            base = re.sub(r"\$\{?(\w+)\}?", lambda v: global_args.get(v.group(1), v.group(0)), m.group(1))
            stages.append(Stage((m.group(2) or f"#{len(stages)}").lower(), base))
        elif not stages:
            if instr == "ARG":
                k, _, v = args.partition("=")
                global_args[k.strip()] = v.strip().strip('"')
        else:
            stages[-1].instrs.append((instr, args))
    return stages, global_args


def stage_chain(stages: list[Stage], name: str) -> list[Stage]:
    """The stage and the stages it is built FROM, nearest first."""
    by_name = {s.name: s for s in stages}
    chain, cur = [], by_name.get(name)
    while cur is not None and cur not in chain:
        chain.append(cur)
        cur = by_name.get(cur.base.lower())
    return chain


def effective(stages: list[Stage], name: str, instr: str):
    for st in stage_chain(stages, name):
        value = st.last(instr)
        if value is not None:
            return value
    return None


def apt_packages(stage_list: list[Stage]) -> set[str]:
    pkgs: set[str] = set()
    for st in stage_list:
        for run in st.all("RUN"):
            for m in re.finditer(r"apt-get\s+install\s+([^&;|]+)", run):
                pkgs |= {w for w in m.group(1).split() if not w.startswith("-")}
    return pkgs


def user_is_numeric_nonroot(user: str | None) -> bool:
    if not user:
        return False
    uid, _, gid = user.partition(":")
    return uid.isdigit() and int(uid) != 0 and (not gid or (gid.isdigit() and int(gid) != 0))


# --- Kubernetes ---------------------------------------------------------------


def kustomization(dirpath: Path) -> dict:
    return load_yaml_docs(dirpath / "kustomization.yaml")[0]


def render_targets() -> list[Path]:
    """The kustomizations the checks render: the base and every overlay."""
    overlays = sorted(p.parent for p in (K8S / "overlays").glob("*/kustomization.yaml"))
    return [K8S_BASE] + overlays


_KUSTOMIZE: dict[str, object] = {}


def kustomize_bin() -> str:
    """Path of the pinned kustomize, installed by tests/env/kustomize.sh on first use."""
    if "bin" not in _KUSTOMIZE:
        proc = subprocess.run(["bash", str(KUSTOMIZE_SH)], capture_output=True, text=True, timeout=1200)
        lines = proc.stdout.strip().splitlines()
        if proc.returncode != 0 or not lines:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            _KUSTOMIZE["bin"] = RuntimeError(f"{rel(KUSTOMIZE_SH)} failed: {last}")
        else:
            _KUSTOMIZE["bin"] = lines[-1]
    found = _KUSTOMIZE["bin"]
    if isinstance(found, Exception):
        raise found
    return str(found)


_RENDERED: dict[Path, object] = {}

COMPOSE_RENDER_SH = ROOT / "tests" / "env" / "compose-render.sh"
_COMPOSE_RENDER: dict[str, object] = {}


def compose_config(*args: str) -> dict:
    """docker-compose.yaml as the real Compose loader (compose-go, the one
    `docker compose config` uses) resolves it with args (--profile, --env):
    the project as JSON, parsed. Raises with the loader's error."""
    if "bin" not in _COMPOSE_RENDER:
        proc = subprocess.run(["bash", str(COMPOSE_RENDER_SH)], capture_output=True, text=True, timeout=1200)
        lines = proc.stdout.strip().splitlines()
        _COMPOSE_RENDER["bin"] = (
            lines[-1]
            if proc.returncode == 0 and lines
            else RuntimeError(f"{rel(COMPOSE_RENDER_SH)} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
        )
    found = _COMPOSE_RENDER["bin"]
    if isinstance(found, Exception):
        raise found
    proc = subprocess.run(
        [str(found), "-f", str(COMPOSE), *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip()[-400:] or f"compose-render exited {proc.returncode}")
    return json.loads(proc.stdout)


def render(d: Path) -> list[dict]:
    """`kustomize build <d>` from the repository root, parsed: one dict per object."""
    if d not in _RENDERED:
        try:
            proc = subprocess.run(
                [kustomize_bin(), "build", rel(d)], cwd=ROOT, capture_output=True, text=True, timeout=120
            )
            if proc.returncode != 0:
                last = (proc.stderr.strip().splitlines() or ["failed"])[-1]
                raise RuntimeError(f"kustomize build {rel(d)}: {last[:300]}")
            _RENDERED[d] = [o for o in yaml.safe_load_all(proc.stdout) if isinstance(o, dict)]
        except Exception as exc:  # every check of this target fails with the same reason
            _RENDERED[d] = exc
    found = _RENDERED[d]
    if isinstance(found, Exception):
        raise found
    return list(found)


def base_objects() -> list[dict]:
    """The base as kustomize renders it."""
    return render(K8S_BASE)


def of_kind(objs: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objs if o.get("kind") == kind}


# kustomize appends "-" and a 10-character hash to generated ConfigMap and Secret names.
HASH_SUFFIX = re.compile(r"-[a-z0-9]{10}$")


def generated(objs: list[dict], name: str, kind: str = "ConfigMap") -> dict[str, str]:
    """Data of the generated ConfigMap (or Secret) `name`, with or without its hash suffix."""
    for o in objs:
        rendered = dig(o, "metadata", "name", default="")
        if o.get("kind") == kind and (rendered == name or HASH_SUFFIX.sub("", rendered) == name):
            return dict(o.get("data") or {})
    return {}


def keys_of(obj: dict) -> set[str]:
    return set(obj.get("data") or {}) | set(obj.get("binaryData") or {}) | set(obj.get("stringData") or {})


WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")


def pod_template(workload: dict) -> dict:
    if workload.get("kind") == "CronJob":
        return dig(workload, "spec", "jobTemplate", "spec", "template", default={}) or {}
    return dig(workload, "spec", "template", default={}) or {}


def pod_spec(workload: dict) -> dict:
    return pod_template(workload).get("spec") or {}


def containers(workload: dict) -> list[dict]:
    spec = pod_spec(workload)
    return (spec.get("initContainers") or []) + (spec.get("containers") or [])


def port_value(container: dict, port) -> int | None:
    if isinstance(port, int):
        return port
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return p.get("containerPort")
    return None


def labels_match(selector: dict, labels: dict) -> bool:
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        val, op = labels.get(expr["key"]), expr["operator"]
        if op == "In" and val not in expr.get("values", []):
            return False
        if op == "NotIn" and val in expr.get("values", []):
            return False
        if op == "Exists" and val is None:
            return False
        if op == "DoesNotExist" and val is not None:
            return False
    return True


# --- Airflow -------------------------------------------------------------------


def dag_tree() -> ast.Module:
    return ast.parse(DAG.read_text(encoding="utf-8"), filename=str(DAG))


def module_assign(tree: ast.Module, name: str):
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return node.value
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
            return node.value
    return None


def dict_entries(node) -> dict:
    if isinstance(node, ast.Dict):
        return {k.value: v for k, v in zip(node.keys, node.values) if isinstance(k, ast.Constant)}
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
        return {kw.arg: kw.value for kw in node.keywords if kw.arg}
    return {}


def timedelta_seconds(node) -> float | None:
    if not (
        isinstance(node, ast.Call)
        and getattr(node.func, "id", getattr(node.func, "attr", None)) == "timedelta"
    ):
        return None
    unit = {"weeks": 604800, "days": 86400, "hours": 3600, "minutes": 60, "seconds": 1, "milliseconds": 0.001}
    total = 0.0
    for kw in node.keywords:
        if kw.arg not in unit or not isinstance(kw.value, ast.Constant):
            return None
        total += kw.value.value * unit[kw.arg]
    positional = ["days", "seconds"]
    for i, arg in enumerate(node.args[:2]):
        if not isinstance(arg, ast.Constant):
            return None
        total += arg.value * unit[positional[i]]
    return total


def string_constants(tree: ast.AST) -> set[str]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.add(node.value)
    return out


# --------------------------------------------------------------------------
# checks


@check("PyYAML is available")
def _():
    return [] if yaml else ["install python3-yaml (Debian) or PyYAML"]


@check("deployment files exist")
def _():
    wanted = [
        DOCKERFILE,
        ROOT / "docker" / "README.md",
        COMPOSE,
        K8S_BASE / "kustomization.yaml",
        K8S / "overlays" / "dev" / "kustomization.yaml",
        DAG,
        AIRFLOW_README,
    ]
    return [f"missing {rel(p)}" for p in wanted if not p.is_file()]


@check("every YAML file parses")
def _():
    problems = []
    for path in deploy_yaml_files():
        try:
            load_yaml_docs(path)
        except yaml.YAMLError as exc:
            problems.append(f"{rel(path)}: {str(exc).splitlines()[0]}")
    return problems


@check("Dockerfile: debian:bookworm-slim stages build, extract, transform, aggregate, marketsim")
def _():
    stages, _ = parse_dockerfile(DOCKERFILE)
    names = {s.name for s in stages}
    problems = [f"no stage {n!r}" for n in ("build",) + SERVICES if n not in names]
    for st in stages:
        if st.base.lower() not in names and st.base != "debian:bookworm-slim":
            problems.append(f"stage {st.name} is FROM {st.base}, not debian:bookworm-slim")
    return problems


@check("Dockerfile: build stage installs the build deps and runs make all")
def _():
    stages, _ = parse_dockerfile(DOCKERFILE)
    chain = stage_chain(stages, "build")
    problems = (
        [f"build deps missing: {sorted(BUILD_DEPS - apt_packages(chain))}"]
        if BUILD_DEPS - apt_packages(chain)
        else []
    )
    runs = " ".join(r for st in chain for r in st.all("RUN"))
    if not re.search(r"\bmake\b[^&;|]*\ball\b", runs):
        problems.append("no `make ... all` in the build stage")
    if not any(a.split()[0] in (".", "./") for st in chain for a in st.all("COPY") if not a.startswith("--")):
        problems.append("build stage does not COPY the repository (context: repo root)")
    return problems


@check("Dockerfile: each service target installs the runtime libraries only")
def _():
    stages, _ = parse_dockerfile(DOCKERFILE)
    problems = []
    for svc in SERVICES:
        chain = stage_chain(stages, svc)
        if any(st.name == "build" for st in chain):
            problems.append(f"{svc} is built FROM the build stage")
        pkgs = apt_packages(chain)
        if RUNTIME_DEPS - pkgs:
            problems.append(f"{svc} lacks {sorted(RUNTIME_DEPS - pkgs)}")
        if pkgs & BUILD_DEPS - {"pkg-config"}:
            problems.append(f"{svc} installs build deps {sorted(pkgs & BUILD_DEPS)}")
    return problems


@check("Dockerfile: each target copies only its own Makefile binary from build/bin and runs it")
def _():
    stages, _ = parse_dockerfile(DOCKERFILE)
    problems = []
    binaries = makefile_binaries()
    problems += [f"Makefile builds no binary for {svc}" for svc in SERVICES if svc not in binaries]
    problems += [
        f"no Dockerfile target for Makefile service {svc}"
        for svc in binaries
        if svc not in {st.name for st in stages}
    ]
    for svc in SERVICES:
        chain = stage_chain(stages, svc)
        copies = [
            a for st in chain for a in st.all("COPY") if "--from=" in a and not CTL_COPY.search(a)
        ]
        binary = binaries.get(svc, f"tickflow-{svc}")
        want = re.compile(rf"--from=build\s+(\S*/)?build/bin/{re.escape(binary)}\s+(\S+)$")
        matches = [want.search(c) for c in copies]
        if len(copies) != 1 or not matches[0]:
            problems.append(f"{svc}: expected one COPY --from=build .../build/bin/{binary}, found {copies}")
            continue
        dest = matches[0].group(2)
        dest_bin = dest + binary if dest.endswith("/") else dest
        entry = effective(stages, svc, "ENTRYPOINT")
        try:
            argv = yaml.safe_load(entry) if entry else None
        except yaml.YAMLError:
            argv = None
        if not (isinstance(argv, list) and argv and argv[0] == dest_bin):
            problems.append(f"{svc}: ENTRYPOINT {entry!r} is not exec-form {dest_bin!r}")
    return problems


@check("Dockerfile: each target has tickflowctl in /usr/local/bin")
def _():
    stages, _ = parse_dockerfile(DOCKERFILE)
    return [
        f"{svc}: no COPY --from=build .../build/bin/tickflowctl /usr/local/bin/tickflowctl"
        for svc in SERVICES
        if not any(CTL_COPY.search(a) for st in stage_chain(stages, svc) for a in st.all("COPY"))
    ]


@check("Dockerfile: each target runs as a numeric non-root USER")
def _():
    stages, _ = parse_dockerfile(DOCKERFILE)
    problems = []
    for svc in SERVICES:
        user = effective(stages, svc, "USER")
        if not user_is_numeric_nonroot(user):
            problems.append(f"{svc}: USER {user!r} (need a numeric uid other than 0 for runAsNonRoot)")
    return problems


@check("Dockerfile: each target has a curl HEALTHCHECK on /healthz and EXPOSE 8080")
def _():
    stages, _ = parse_dockerfile(DOCKERFILE)
    problems = []
    for svc in SERVICES:
        hc = effective(stages, svc, "HEALTHCHECK") or ""
        if "curl" not in hc or "/healthz" not in hc:
            problems.append(f"{svc}: HEALTHCHECK {hc!r}")
        exposed = " ".join(a for st in stage_chain(stages, svc) for a in st.all("EXPOSE"))
        if str(HTTP_PORT) not in exposed.split() and f"{HTTP_PORT}/tcp" not in exposed.split():
            problems.append(f"{svc}: no EXPOSE {HTTP_PORT}")
    return problems


@check("Dockerfile: build context excludes .git, build/ and .run/")
def _():
    ignore = DOCKERFILE.with_name("Dockerfile.dockerignore")
    if not ignore.is_file():
        return [f"missing {rel(ignore)}"]
    entries = {line.strip().rstrip("/") for line in ignore.read_text().splitlines()}
    return [f"{rel(ignore)} lacks {e}" for e in (".git", "build", ".run") if e not in entries]


@check("compose: services postgres:15, apache/kafka:3.9.1, marketsim, extract, transform, aggregate")
def _():
    svcs = load_yaml_docs(COMPOSE)[0].get("services", {})
    problems = [f"no service {s}" for s in ("postgres", "kafka") + SERVICES if s not in svcs]
    if dig(svcs, "postgres", "image") != "postgres:15":
        problems.append(f"postgres image is {dig(svcs, 'postgres', 'image')!r}")
    if dig(svcs, "kafka", "image") != "apache/kafka:3.9.1":
        problems.append(f"kafka image is {dig(svcs, 'kafka', 'image')!r}")
    return problems


@check("compose: built services use existing docker/Dockerfile targets")
def _():
    svcs = load_yaml_docs(COMPOSE)[0]["services"]
    stages, _ = parse_dockerfile(DOCKERFILE)
    names = {s.name for s in stages}
    problems = []
    for name, svc in svcs.items():
        build = svc.get("build")
        if build is None:
            continue
        if not isinstance(build, dict):
            problems.append(f"{name}: build must name a target")
            continue
        dockerfile = (
            COMPOSE.parent / build.get("context", ".") / build.get("dockerfile", "Dockerfile")
        ).resolve()
        if dockerfile != DOCKERFILE.resolve():
            problems.append(f"{name}: builds {dockerfile}, not docker/Dockerfile")
        if build.get("target") not in names:
            problems.append(f"{name}: target {build.get('target')!r} is not a Dockerfile stage")
        elif name in SERVICES and build["target"] != name:
            problems.append(f"{name}: built from target {build['target']!r}")
    for svc in SERVICES:
        if not dig(svcs, svc, "build"):
            problems.append(f"{svc}: not built from docker/Dockerfile")
    return problems


@check("compose: postgres and kafka healthchecks (pg_isready, broker API)")
def _():
    svcs = load_yaml_docs(COMPOSE)[0]["services"]
    problems = []
    pg = " ".join(map(str, dig(svcs, "postgres", "healthcheck", "test", default=[]) or []))
    if "pg_isready" not in pg:
        problems.append(f"postgres healthcheck {pg!r} does not run pg_isready")
    kafka = " ".join(map(str, dig(svcs, "kafka", "healthcheck", "test", default=[]) or []))
    if not re.search(r"kafka-(broker-api-versions|topics|metadata-quorum)\.sh", kafka):
        problems.append(f"kafka healthcheck {kafka!r} does not ask the broker")
    for name in ("postgres", "kafka"):
        if not dig(svcs, name, "volumes"):
            problems.append(f"{name}: no data volume")
    return problems


@check("compose: depends_on waits for healthy services that have a healthcheck")
def _():
    svcs = load_yaml_docs(COMPOSE)[0]["services"]
    stages, _ = parse_dockerfile(DOCKERFILE)
    problems = []

    def has_healthcheck(name: str) -> bool:
        svc = svcs.get(name, {})
        if svc.get("healthcheck", {}).get("disable"):
            return False
        if svc.get("healthcheck", {}).get("test"):
            return True
        target = dig(svc, "build", "target")
        return bool(target and effective(stages, target, "HEALTHCHECK"))

    for name, svc in svcs.items():
        deps = svc.get("depends_on") or {}
        if isinstance(deps, list):
            problems.append(f"{name}: depends_on without condition")
            continue
        for dep, spec in deps.items():
            if dep not in svcs:
                problems.append(f"{name}: depends on unknown {dep}")
            elif (spec or {}).get("condition") != "service_healthy":
                problems.append(f"{name} -> {dep}: condition is not service_healthy")
            elif not has_healthcheck(dep):
                problems.append(f"{name} -> {dep}: {dep} has no healthcheck")
    for stage in STAGES:
        if not {"postgres", "kafka"} <= set(svcs.get(stage, {}).get("depends_on") or {}):
            problems.append(f"{stage} does not wait for postgres and kafka")
    if "marketsim" not in (svcs.get("extract", {}).get("depends_on") or {}):
        problems.append("extract does not wait for marketsim")
    return problems


@check("compose: host ports 8081/8082/8083 and marketsim 8090 map to 8080")
def _():
    svcs = load_yaml_docs(COMPOSE)[0]["services"]
    problems = []
    for svc, host in HOST_PORTS.items():
        ports = [str(p) for p in svcs.get(svc, {}).get("ports", [])]
        if not any(re.fullmatch(rf"(?:[\d.]+:)?{host}:{HTTP_PORT}(?:/tcp)?", p) for p in ports):
            problems.append(f"{svc}: ports {ports}, want {host}:{HTTP_PORT}")
    return problems


@check("compose: one lake volume shared by extract, transform and aggregate")
def _():
    doc = load_yaml_docs(COMPOSE)[0]
    svcs, problems, sources = doc["services"], [], set()
    for svc in STAGES:
        env = svcs[svc].get("environment") or {}
        # the default of ${TICKFLOW_LAKE_URI:-...}: the folder unless a bucket is named
        lake = re.sub(r"^\$\{\w+:-(.*)\}$", r"\1", str(env.get("TICKFLOW_LAKE_URI") or "")) or None
        mounts = [str(v) for v in svcs[svc].get("volumes") or []]
        hit = [m.split(":")[0] for m in mounts if m.split(":")[1:2] == [lake]]
        if not lake or not hit:
            problems.append(f"{svc}: TICKFLOW_LAKE_URI {lake!r} is not a mounted volume ({mounts})")
        sources.update(hit)
    if len(sources) > 1:
        problems.append(f"stages mount different lake volumes: {sorted(sources)}")
    for src in sources:
        if src not in (doc.get("volumes") or {}):
            problems.append(f"volume {src} is not declared")
    return problems


@check("compose: tickflow services set only known variables, marketsim as provider")
def _():
    svcs = load_yaml_docs(COMPOSE)[0]["services"]
    problems = []
    for svc in SERVICES:
        env = svcs[svc].get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) if "=" in e else (e, None) for e in env)
        known = known_env()
        problems += [f"{svc}: unknown variable {k}" for k in env if k not in known]
        problems += [f"{svc}: sets both {k} and {k}_FILE" for k in env if f"{k}_FILE" in env]
        if svc in STAGES:
            problems += [
                f"{svc}: no {k}" for k in ("TICKFLOW_PG_DSN", "TICKFLOW_KAFKA_BROKERS") if k not in env
            ]
        level = re.sub(r"^\$\{\w+:-(.*)\}$", r"\1", str(env.get("TICKFLOW_LOG_LEVEL", "info")))
        if level not in LOG_LEVELS:
            problems.append(f"{svc}: TICKFLOW_LOG_LEVEL {level!r}")
    extract = svcs["extract"].get("environment") or {}
    if "http://marketsim:8080" not in str(extract.get("TICKFLOW_POLYGON_BASE_URL")):
        problems.append("extract: TICKFLOW_POLYGON_BASE_URL does not default to http://marketsim:8080")
    return problems


@check("compose: profile s3 runs SeaweedFS with the stages' lake keys, healthy once the bucket exists")
def _():
    doc = load_yaml_docs(COMPOSE)[0]
    svcs, problems = doc["services"], []
    sw = svcs.get("seaweedfs") or {}
    if sw.get("profiles") != ["s3"]:
        problems.append(f"seaweedfs: profiles {sw.get('profiles')!r}, want ['s3']")
    health = " ".join(map(str, dig(sw, "healthcheck", "test", default=[]) or []))
    if "--aws-sigv4" not in health or "-X PUT" not in health:
        problems.append("seaweedfs: the health check does not make the bucket with a signed PUT")
    conf = {c.get("source"): c.get("target") for c in sw.get("configs") or []}
    if conf.get("seaweedfs-s3") != "/etc/seaweedfs/s3.json" or "-s3.config=/etc/seaweedfs/s3.json" not in sw.get(
        "command", []
    ):
        problems.append("seaweedfs: its identities are not the config seaweedfs-s3")
    content = str(dig(doc, "configs", "seaweedfs-s3", "content", default=""))
    for svc in STAGES:
        env = svcs[svc].get("environment") or {}
        for k, v in (("TICKFLOW_LAKE_S3_ACCESS_KEY_ID", "accessKey"), ("TICKFLOW_LAKE_S3_SECRET_ACCESS_KEY", "secretKey")):
            if not env.get(k) or f'"{v}": "{env[k]}"' not in content:
                problems.append(f"{svc}: {k} {env.get(k)!r} is not the SeaweedFS identity's {v}")
        if "seaweedfs:8333" not in str(env.get("TICKFLOW_LAKE_S3_ENDPOINT")):
            problems.append(f"{svc}: TICKFLOW_LAKE_S3_ENDPOINT does not default to the s3 profile's SeaweedFS")
        dep = (svcs[svc].get("depends_on") or {}).get("seaweedfs") or {}
        if dep.get("required") is not False:
            problems.append(f"{svc}: depends on seaweedfs without required: false (the folder lake needs no bucket)")
    return problems


@check("compose: the Compose loader (compose-go) resolves it; the s3 profile adds SeaweedFS and the bucket lake")
def _():
    problems = []
    plain = compose_config()
    s3 = compose_config("--profile", "s3", "--env", "TICKFLOW_LAKE_URI=s3://tickflow/lake")
    if "seaweedfs" in plain["services"]:
        problems.append("seaweedfs runs without the s3 profile")
    if "seaweedfs" not in s3["services"]:
        problems.append("seaweedfs does not run with the s3 profile")
        return problems
    sw_env = s3["services"]["seaweedfs"].get("environment") or {}
    content = str(dig(s3, "configs", "seaweedfs-s3", "content", default=""))
    for svc in STAGES:
        env = plain["services"][svc].get("environment") or {}
        if env.get("TICKFLOW_LAKE_URI") != LAKE_PATH:
            problems.append(f"{svc}: without a bucket, TICKFLOW_LAKE_URI is {env.get('TICKFLOW_LAKE_URI')!r}")
        env = s3["services"][svc].get("environment") or {}
        uri = env.get("TICKFLOW_LAKE_URI", "")
        if not uri.startswith(f"s3://{sw_env.get('LAKE_BUCKET')}/"):
            problems.append(f"{svc}: lake {uri!r} is not in the bucket SeaweedFS makes ({sw_env.get('LAKE_BUCKET')!r})")
        if env.get("TICKFLOW_LAKE_S3_ACCESS_KEY_ID") != sw_env.get("LAKE_KEY") or (
            f'"accessKey": "{env.get("TICKFLOW_LAKE_S3_ACCESS_KEY_ID")}"' not in content
        ):
            problems.append(f"{svc}: its lake key is not SeaweedFS's identity")
        if dig(s3, "services", svc, "depends_on", "seaweedfs", "condition") != "service_healthy":
            problems.append(f"{svc}: does not wait for SeaweedFS to be healthy")
    return problems


@check("k8s: components/lake-s3 puts the lake in a bucket: keys as files, no lake PVC; dev-s3 names a bucket")
def _():
    objs, problems = render(K8S / "overlays" / "dev-s3"), []
    comp = K8S / "components" / "lake-s3"
    if "secret.template.yaml" in (kustomization(comp).get("resources") or []):
        problems.append("components/lake-s3: secret.template.yaml is listed as a resource")
    if of_kind(objs, "PersistentVolumeClaim"):
        problems.append("dev-s3 still renders a lake PVC")
    uri = generated(objs, "tickflow-config").get("TICKFLOW_LAKE_URI", "")
    if not uri.startswith("s3://"):
        problems.append(f"dev-s3: TICKFLOW_LAKE_URI={uri!r}")
    keys = keys_of(load_yaml_docs(comp / "secret.template.yaml")[0])
    for name, dep in of_kind(objs, "Deployment").items():
        if name not in STAGES:
            continue
        spec = pod_spec(dep)
        vols = {v["name"]: v for v in spec.get("volumes") or []}
        if any("persistentVolumeClaim" in v for v in vols.values()):
            problems.append(f"{name}: still mounts a PVC")
        secret = dig(vols.get("lake-s3", {}), "secret", "secretName")
        if secret != "tickflow-lake-s3":
            problems.append(f"{name}: no volume of the Secret tickflow-lake-s3")
        env = {e["name"]: e.get("value") for c in spec["containers"] for e in c.get("env") or []}
        for var, key in (
            ("TICKFLOW_LAKE_S3_ACCESS_KEY_ID_FILE", "access-key-id"),
            ("TICKFLOW_LAKE_S3_SECRET_ACCESS_KEY_FILE", "secret-access-key"),
        ):
            if env.get(var) != f"/var/run/secrets/tickflow-lake-s3/{key}":
                problems.append(f"{name}: {var}={env.get(var)!r}")
            if key not in keys:
                problems.append(f"components/lake-s3/secret.template.yaml lacks {key}")
    return problems


@check("compose: kafka is one KRaft broker+controller with a valid cluster id")
def _():
    env = dig(load_yaml_docs(COMPOSE)[0], "services", "kafka", "environment", default={}) or {}
    problems = []
    if set(str(env.get("KAFKA_PROCESS_ROLES", "")).split(",")) != {"broker", "controller"}:
        problems.append(f"KAFKA_PROCESS_ROLES {env.get('KAFKA_PROCESS_ROLES')!r}")
    if any("ZOOKEEPER" in k for k in env):
        problems.append("ZooKeeper settings present")
    if "kafka:9092" not in str(env.get("KAFKA_ADVERTISED_LISTENERS")):
        problems.append("broker does not advertise kafka:9092 to the other containers")
    cid = str(env.get("CLUSTER_ID", ""))
    try:
        ok = len(cid) == 22 and len(base64.urlsafe_b64decode(cid + "==")) == 16
    except ValueError:
        ok = False
    if not ok:
        problems.append(f"CLUSTER_ID {cid!r} is not a base64 UUID")
    return problems


@check("kustomize: every listed resource, generator file and patch exists")
def _():
    problems = []
    kfiles = sorted(K8S.rglob("kustomization.yaml"))
    if not kfiles:
        return ["no kustomization.yaml under deploy/k8s"]
    for kf in kfiles:
        k, d = load_yaml_docs(kf)[0], kf.parent
        paths = list(k.get("resources", []) or []) + list(k.get("components", []) or [])
        for gen in (k.get("configMapGenerator") or []) + (k.get("secretGenerator") or []):
            paths += gen.get("envs", []) or []
            paths += [f.split("=", 1)[-1] for f in gen.get("files", []) or []]
        paths += [p["path"] for p in k.get("patches", []) or [] if isinstance(p, dict) and "path" in p]
        paths += list(k.get("patchesStrategicMerge", []) or [])
        for p in paths:
            target = d / p
            if "://" in p:
                problems.append(f"{rel(kf)}: remote resource {p}")
            elif not (target.is_file() or (target / "kustomization.yaml").is_file()):
                problems.append(f"{rel(kf)}: {p} does not exist")
    return problems


@check("kustomize: base images are the four tickflow images, pinned, not :latest")
def _():
    k = kustomization(K8S_BASE)
    images = {i["name"]: i for i in k.get("images", []) or []}
    problems = [f"no image entry for tickflow/{s}" for s in SERVICES if f"tickflow/{s}" not in images]
    for i in images.values():
        if str(i.get("newTag", "")) in ("", "latest"):
            problems.append(f"{i['name']}: tag {i.get('newTag')!r}")
    for o in of_kind(base_objects(), "StatefulSet").values():
        for c in containers(o):
            if c["image"].endswith(":latest") or ":" not in c["image"]:
                problems.append(f"{c['image']} is not pinned")
    return problems


@check("k8s: Deployments for the 3 stages and marketsim")
def _():
    deps = of_kind(base_objects(), "Deployment")
    return [f"no Deployment {s}" for s in SERVICES if s not in deps]


@check("k8s: liveness on /healthz and readiness on /readyz at the HTTP port")
def _():
    problems = []
    cm = generated(base_objects(), "tickflow-config")
    if cm.get("TICKFLOW_HTTP_PORT") not in (None, str(HTTP_PORT)):
        problems.append(f"ConfigMap TICKFLOW_HTTP_PORT={cm.get('TICKFLOW_HTTP_PORT')}")
    for name, dep in of_kind(base_objects(), "Deployment").items():
        for c in pod_spec(dep).get("containers", []):
            for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
                get = dig(c, probe, "httpGet")
                if not get:
                    problems.append(f"{name}/{c['name']}: no {probe} httpGet")
                    continue
                if get.get("path") != path:
                    problems.append(f"{name}/{c['name']}: {probe} path {get.get('path')} != {path}")
                if port_value(c, get.get("port")) != HTTP_PORT:
                    problems.append(f"{name}/{c['name']}: {probe} port {get.get('port')} is not {HTTP_PORT}")
    return problems


@check("k8s: stage and marketsim variables are all known tickflow variables")
def _():
    problems = []
    known = known_env()
    maps = {
        o["metadata"]["name"]: o.get("data") or {} for o in base_objects() if o.get("kind") == "ConfigMap"
    }
    overlay_maps = {
        o["metadata"]["name"]: o.get("data") or {}
        for o in render(K8S / "overlays" / "dev")
        if o.get("kind") == "ConfigMap"
    }
    for cm_name, data in list(maps.items()) + list(overlay_maps.items()):
        problems += [f"ConfigMap {cm_name}: unknown variable {k}" for k in data if k not in known]
        if "TICKFLOW_LOG_LEVEL" in data and data["TICKFLOW_LOG_LEVEL"] not in LOG_LEVELS:
            problems.append(f"ConfigMap {cm_name}: TICKFLOW_LOG_LEVEL={data['TICKFLOW_LOG_LEVEL']}")
        problems += [
            f"ConfigMap {cm_name}: secret {k} must come from the Secret" for k in data if k in SECRET_VARS
        ]
    for name, dep in of_kind(base_objects(), "Deployment").items():
        for c in containers(dep):
            names = {e["name"] for e in c.get("env") or []}
            problems += [f"{name}: sets both {k} and {k}_FILE" for k in names if f"{k}_FILE" in names]
            for e in c.get("env") or []:
                if e["name"] not in known:
                    problems.append(f"{name}: unknown variable {e['name']}")
                if e["name"] in SECRET_VARS and "value" in e:
                    problems.append(f"{name}: {e['name']} given in clear; use {e['name']}_FILE")
            for ref in c.get("envFrom") or []:
                cm = dig(ref, "configMapRef", "name")
                if cm and cm not in maps:
                    problems.append(f"{name}: envFrom unknown ConfigMap {cm}")
    return problems


@check("k8s: *_FILE variables point at keys of the mounted Secret")
def _():
    problems = []
    for name, dep in of_kind(base_objects(), "Deployment").items():
        spec = pod_spec(dep)
        secret_vols = {v["name"]: v["secret"] for v in spec.get("volumes") or [] if "secret" in v}
        for c in spec.get("containers", []):
            mounts = {
                m["mountPath"].rstrip("/"): m for m in c.get("volumeMounts") or [] if m["name"] in secret_vols
            }
            for e in c.get("env") or []:
                if not e["name"].endswith("_FILE"):
                    continue
                path = e.get("value", "")
                mdir, _, fname = path.rpartition("/")
                mount = mounts.get(mdir)
                if not mount:
                    problems.append(f"{name}: {e['name']}={path} is not in a mounted Secret")
                    continue
                if not mount.get("readOnly"):
                    problems.append(f"{name}: secret mount {mdir} is not readOnly")
                items = secret_vols[mount["name"]].get("items")
                if items is not None and fname not in {i["path"] for i in items}:
                    problems.append(f"{name}: {e['name']} file {fname} is not an item of the Secret volume")
    return problems


@check("k8s: Secrets hold placeholders only; the template is not applied")
def _():
    problems = []
    base_k = kustomization(K8S_BASE)
    template = K8S_BASE / "secret.template.yaml"
    if not template.is_file():
        problems.append("no base/secret.template.yaml")
    if "secret.template.yaml" in (base_k.get("resources") or []):
        problems.append("secret.template.yaml is listed as a resource")
    for path in sorted(K8S.rglob("*.yaml")):
        for doc in load_yaml_docs(path):
            if isinstance(doc, dict) and doc.get("kind") == "Secret":
                values = dict(doc.get("stringData") or {})
                for k, v in (doc.get("data") or {}).items():
                    values[k] = base64.b64decode(v).decode("utf-8", "replace")
                for k, v in values.items():
                    if not PLACEHOLDER.search(str(v)):
                        problems.append(f"{rel(path)}: {k} is not a placeholder")
    keys_used = set()
    for o in base_objects():
        for v in pod_spec(o).get("volumes") or []:
            keys_used |= {i["key"] for i in dig(v, "secret", "items", default=[]) or []}
        for c in containers(o):
            for e in c.get("env") or []:
                ref = dig(e, "valueFrom", "secretKeyRef")
                if ref:
                    keys_used.add(ref["key"])
    if template.is_file():
        tkeys = set((load_yaml_docs(template)[0].get("stringData") or {}).keys())
        problems += [f"template lacks key {k} used by a workload" for k in sorted(keys_used - tkeys)]
    for kf in sorted(K8S.rglob("kustomization.yaml")):
        for gen in load_yaml_docs(kf)[0].get("secretGenerator") or []:
            for lit in gen.get("literals") or []:
                k, _, v = lit.partition("=")
                if not (PLACEHOLDER.search(v) or DEV_VALUE.search(v)):
                    problems.append(
                        f"{rel(kf)}: generated secret {k} is neither a placeholder nor marked dev/demo"
                    )
            if gen.get("files") or gen.get("envs"):
                problems.append(f"{rel(kf)}: secretGenerator reads files; keep secrets out of the repository")
    return problems


@check("k8s: Services select existing pods on named container ports")
def _():
    objs, problems = base_objects(), []
    pods = [(n, o) for kind in ("Deployment", "StatefulSet") for n, o in of_kind(objs, kind).items()]
    services = of_kind(objs, "Service")
    for name, svc in services.items():
        sel = dig(svc, "spec", "selector") or {}
        targets = [
            (n, o)
            for n, o in pods
            if sel
            and labels_match({"matchLabels": sel}, dig(o, "spec", "template", "metadata", "labels") or {})
        ]
        if not targets:
            problems.append(f"Service {name} selects no workload")
        for port in dig(svc, "spec", "ports") or []:
            tp = port.get("targetPort", port.get("port"))
            for n, o in targets:
                if not any(port_value(c, tp) for c in containers(o)):
                    problems.append(f"Service {name}: targetPort {tp} not on {n}")
    for s in SERVICES:
        if s not in services:
            problems.append(f"no Service {s}")
    for kind_name, sts in of_kind(objs, "StatefulSet").items():
        gov = services.get(dig(sts, "spec", "serviceName"))
        if not gov or dig(gov, "spec", "clusterIP") != "None":
            problems.append(f"StatefulSet {kind_name}: serviceName is not a headless Service")
    return problems


@check("k8s: a HorizontalPodAutoscaler and a PodDisruptionBudget per stage")
def _():
    objs, problems = base_objects(), []
    deps = of_kind(objs, "Deployment")
    hpas = {
        dig(h, "spec", "scaleTargetRef", "name"): h for h in of_kind(objs, "HorizontalPodAutoscaler").values()
    }
    pdbs = list(of_kind(objs, "PodDisruptionBudget").values())
    partitions = int(generated(objs, "tickflow-config").get("TICKFLOW_KAFKA_PARTITIONS", 3))
    for s in ("transform", "aggregate"):
        if dig(hpas.get(s), "spec", "maxReplicas", default=0) > partitions:
            problems.append(f"HPA {s}: maxReplicas above the {partitions} topic partitions")
    for s in STAGES:
        hpa = hpas.get(s)
        if not hpa or dig(hpa, "spec", "scaleTargetRef", "kind") != "Deployment":
            problems.append(f"no HPA for Deployment {s}")
        elif (
            not 1 <= dig(hpa, "spec", "minReplicas", default=1) <= dig(hpa, "spec", "maxReplicas", default=0)
        ):
            problems.append(f"HPA {s}: minReplicas/maxReplicas out of order")
        if s in deps and "replicas" in deps[s]["spec"]:
            problems.append(f"Deployment {s} sets replicas although an HPA owns them")
        labels = dig(deps.get(s, {}), "spec", "template", "metadata", "labels") or {}
        if not any(labels and labels_match(dig(p, "spec", "selector") or {}, labels) for p in pdbs):
            problems.append(f"no PodDisruptionBudget selects {s}")
    for p in pdbs:
        if dig(p, "spec", "minAvailable") not in (None, 0) and dig(p, "spec", "maxUnavailable") is None:
            problems.append(
                f"PDB {p['metadata']['name']}: minAvailable blocks drains at one replica; use maxUnavailable"
            )
    return problems


@check("k8s: default-deny NetworkPolicy, DNS egress, and an ingress rule for every workload")
def _():
    objs, problems = base_objects(), []
    nps = list(of_kind(objs, "NetworkPolicy").values())
    deny = [
        n
        for n in nps
        if dig(n, "spec", "podSelector") == {}
        and {"Ingress", "Egress"} <= set(dig(n, "spec", "policyTypes") or [])
        and not dig(n, "spec", "ingress")
        and not dig(n, "spec", "egress")
    ]
    if not deny:
        problems.append("no default-deny policy (podSelector {}, Ingress and Egress, no rules)")
    dns = any(
        p.get("port") == 53
        for n in nps
        for rule in dig(n, "spec", "egress") or []
        for p in rule.get("ports") or []
    )
    if not dns:
        problems.append("no DNS (port 53) egress rule")
    for kind in ("Deployment", "StatefulSet"):
        for name, o in of_kind(objs, kind).items():
            labels = dig(o, "spec", "template", "metadata", "labels") or {}
            allowed = [
                n
                for n in nps
                if dig(n, "spec", "ingress") and labels_match(dig(n, "spec", "podSelector") or {}, labels)
            ]
            if not allowed:
                problems.append(f"{kind}/{name}: no ingress allowed by any policy")
    stage_labels = {"app.kubernetes.io/name": "extract"}
    for dest, port in (("postgres", 5432), ("kafka", 9092), ("marketsim", 8080)):
        ok = any(
            labels_match(dig(n, "spec", "podSelector") or {}, stage_labels)
            and any(
                any(
                    dig(t, "podSelector", "matchLabels", "app.kubernetes.io/name") == dest
                    for t in rule.get("to") or []
                )
                and any(p.get("port") == port for p in rule.get("ports") or [])
                for rule in dig(n, "spec", "egress") or []
            )
            for n in nps
        )
        if not ok:
            problems.append(f"extract may not reach {dest}:{port}")
    return problems


@check("k8s: ReadWriteMany lake PVC mounted by the stages at TICKFLOW_LAKE_URI")
def _():
    objs, problems = base_objects(), []
    pvcs = of_kind(objs, "PersistentVolumeClaim")
    lake_uri = generated(objs, "tickflow-config").get("TICKFLOW_LAKE_URI")
    if lake_uri != LAKE_PATH:
        problems.append(f"ConfigMap TICKFLOW_LAKE_URI={lake_uri!r}")
    claims = {n for n, p in pvcs.items() if "ReadWriteMany" in (dig(p, "spec", "accessModes") or [])}
    if not claims:
        problems.append("no ReadWriteMany PersistentVolumeClaim")
    for name, dep in of_kind(objs, "Deployment").items():
        if name not in STAGES:
            continue
        vols = {
            v["name"]: dig(v, "persistentVolumeClaim", "claimName")
            for v in pod_spec(dep).get("volumes") or []
        }
        mounted = [
            m
            for c in pod_spec(dep)["containers"]
            for m in c.get("volumeMounts") or []
            if vols.get(m["name"]) in claims and m["mountPath"] == lake_uri
        ]
        if not mounted:
            problems.append(f"{name}: lake PVC not mounted at {lake_uri}")
    return problems


@check("k8s: PostgreSQL 15 and Kafka 3.9.1 (KRaft) StatefulSets with volumes")
def _():
    sts, problems = of_kind(base_objects(), "StatefulSet"), []
    for name, image in (("postgres", "postgres:15"), ("kafka", "apache/kafka:3.9.1")):
        o = sts.get(name)
        if not o:
            problems.append(f"no StatefulSet {name}")
            continue
        if [c["image"] for c in containers(o)] != [image]:
            problems.append(f"{name}: images {[c['image'] for c in containers(o)]}")
        if not dig(o, "spec", "volumeClaimTemplates"):
            problems.append(f"{name}: no volumeClaimTemplates")
        if not all(dig(c, p) for c in containers(o) for p in ("readinessProbe", "livenessProbe")):
            problems.append(f"{name}: probes missing")
        if pod_spec(o).get("enableServiceLinks") is not False:
            problems.append(
                f"{name}: enableServiceLinks must be false (Service env vars clash with the image's)"
            )
    env = {e["name"]: e.get("value") for c in containers(sts.get("kafka", {})) for e in c.get("env") or []}
    if set(str(env.get("KAFKA_PROCESS_ROLES", "")).split(",")) != {"broker", "controller"}:
        problems.append("kafka: not in KRaft combined mode")
    brokers = generated(base_objects(), "tickflow-config").get("TICKFLOW_KAFKA_BROKERS", "")
    services = of_kind(base_objects(), "Service")
    for b in filter(None, brokers.split(",")):
        host = b.split(":")[0].split(".")[0]
        if host not in services:
            problems.append(f"TICKFLOW_KAFKA_BROKERS host {host} is not a Service")
    return problems


@check("no real-looking secret in the deployment files")
def _():
    problems = []
    token_patterns = [
        re.compile(r"AKIA[0-9A-Z]{16}"),
        re.compile(r"xox[abprs]-[0-9A-Za-z-]{10,}"),
        re.compile(r"hooks\.slack\.com/services/T[0-9A-Z]+/"),
        re.compile(r"gh[pousr]_[A-Za-z0-9]{30,}"),
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
        re.compile(r"\b(?:sk|rk)_live_[0-9A-Za-z]{10,}"),
    ]
    assign = re.compile(
        r"(?i)(api[_-]?key|apikey|token|secret|passw(?:or)?d)[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9_\-+/=.]{16,})"
    )
    userinfo = re.compile(r"://[^/\s:@]*:([^@\s/]+)@")
    files = [COMPOSE] + [
        p
        for top in (ROOT / "docker", K8S, ROOT / "deploy" / "airflow")
        for p in sorted(top.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    ]
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        for n, line in enumerate(text.splitlines(), 1):
            where = f"{rel(path)}:{n}"
            for pat in token_patterns:
                if pat.search(line):
                    problems.append(f"{where}: looks like a credential ({pat.pattern})")
            for m in assign.finditer(line):
                value = m.group(2)
                randomish = re.search(r"[A-Za-z]", value) and re.search(r"\d", value)
                if (
                    randomish
                    and not value.startswith("/")
                    and not (PLACEHOLDER.search(value) or DEV_VALUE.search(value))
                ):
                    problems.append(f"{where}: {m.group(1)} has a real-looking value")
            for m in userinfo.finditer(line):
                value = m.group(1)
                if not (PLACEHOLDER.search(value) or DEV_VALUE.search(value) or value == "tickflow"):
                    problems.append(f"{where}: password in a URL")
    return problems


@check("Airflow DAG parses and is a DAG with id tickflow_pipeline")
def _():
    tree = dag_tree()
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "DAG"]
    if not calls:
        return ["no DAG(...) call"]
    ids = [kw.value for c in calls for kw in c.keywords if kw.arg == "dag_id"]
    resolved = [
        v.value
        if isinstance(v, ast.Constant)
        else getattr(module_assign(tree, getattr(v, "id", "")), "value", None)
        for v in ids
    ]
    return [] if "tickflow_pipeline" in resolved else [f"dag_id is {resolved}"]


@check("Airflow DAG: retries=2, retry_delay 2 minutes, on_failure_callback alert")
def _():
    tree = dag_tree()
    args = dict_entries(module_assign(tree, "default_args"))
    problems = []
    if not args:
        return ["no default_args dict"]
    retries = args.get("retries")
    if not (isinstance(retries, ast.Constant) and retries.value == 2):
        problems.append("retries is not 2")
    if timedelta_seconds(args.get("retry_delay")) != 120:
        problems.append("retry_delay is not timedelta(minutes=2)")
    cb = args.get("on_failure_callback")
    funcs = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    if not (isinstance(cb, ast.Name) and cb.id in funcs):
        problems.append("on_failure_callback is not a function of the module")
    else:
        body = string_constants(funcs[cb.id]) | {
            n.attr for n in ast.walk(funcs[cb.id]) if isinstance(n, ast.Attribute)
        }
        if not ({"error", "exception", "warning"} & body):
            problems.append("failure callback does not log")
    uses_default_args = any(
        kw.arg == "default_args"
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "DAG"
        for kw in n.keywords
    )
    if not uses_default_args:
        problems.append("DAG(...) does not take default_args")
    return problems


@check("Airflow DAG: first task creates a uuid4 passed by XCom")
def _():
    tree = dag_tree()
    problems = []
    uuid_funcs = {
        f.name
        for f in ast.walk(tree)
        if isinstance(f, ast.FunctionDef)
        and any(
            isinstance(n, ast.Attribute) and n.attr == "uuid4" or isinstance(n, ast.Name) and n.id == "uuid4"
            for n in ast.walk(f)
        )
    }
    if not uuid_funcs:
        return ["no function calls uuid4()"]
    first = None
    for n in ast.walk(tree):
        if isinstance(n, ast.Call) and any(
            kw.arg == "python_callable" and getattr(kw.value, "id", None) in uuid_funcs for kw in n.keywords
        ):
            first = next(
                (
                    kw.value.value
                    for kw in n.keywords
                    if kw.arg == "task_id" and isinstance(kw.value, ast.Constant)
                ),
                None,
            )
    if not first:
        problems.append("no task runs the uuid4 function")
    elif "xcom_pull" not in {
        n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
    } or first not in string_constants(tree) - {""}:
        problems.append("the stages do not xcom_pull the execution id")
    else:
        pulls = [
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.Call) and getattr(n.func, "attr", None) == "xcom_pull"
        ]
        if not any(
            isinstance(kw.value, ast.Constant) and kw.value.value == first for p in pulls for kw in p.keywords
        ):
            problems.append(f"no xcom_pull(task_ids={first!r})")
    return problems


@check(
    "Airflow DAG: POSTs /v1/executions to extract, transform, aggregate with wait_seconds and checks SUCCESS"
)
def _():
    tree = dag_tree()
    consts = string_constants(tree)
    problems = [
        f"missing {s!r}"
        for s in ("/v1/executions", "wait_seconds", "execution_id", "SUCCESS", "POST")
        if s not in consts
    ]
    problems += [f"stage {s} not called" for s in STAGES if s not in consts]
    if not any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.RShift) for n in ast.walk(tree)):
        problems.append("tasks are not chained with >>")
    readme = AIRFLOW_README.read_text(encoding="utf-8") if AIRFLOW_README.is_file() else ""
    problems += [
        f"connection tickflow_{s} not documented in {rel(AIRFLOW_README)}"
        for s in STAGES
        if f"tickflow_{s}" not in readme
    ]
    return problems


@check("variables given to each service are read by its C code")
def _():
    keys = code_keys()
    problems = []
    for svc, sources in deploy_env_by_service().items():
        if svc not in keys:
            NOTES.append(f"{svc}: no configuration keys in its C sources yet, not compared")
            continue
        for where, names in sources.items():
            problems += [f"{where}: {svc} ignores {n}" for n in sorted(names) if not reads(keys[svc], n)]
    return problems


def kustomization_file(d: Path) -> dict:
    for name in ("kustomization.yaml", "kustomization.yml", "Kustomization"):
        if (d / name).is_file():
            return load_yaml_docs(d / name)[0]
    raise FileNotFoundError(f"no kustomization in {rel(d)}")


def image_rules(d: Path) -> dict[str, dict]:
    """The `images:` entries in force after kustomize builds `d`: name -> entry.

    Resources (bases) are transformed first, then components, then `d`'s own
    list, so the outermost entry for a name wins."""
    k, rules = kustomization_file(d), {}
    for ref in list(k.get("resources") or []) + list(k.get("components") or []):
        sub = (d / ref).resolve()
        if sub.is_dir():
            rules.update(image_rules(sub))
    for entry in k.get("images") or []:
        rules[entry["name"]] = {**rules.get(entry["name"], {}), **entry}
    return rules


def included_dirs(d: Path) -> set[Path]:
    """Every kustomization or component directory that building `d` reads."""
    k, out = kustomization_file(d), {d.resolve()}
    for ref in list(k.get("resources") or []) + list(k.get("components") or []):
        sub = (d / ref).resolve()
        if sub.is_dir():
            out |= included_dirs(sub)
    return out


def split_image(image: str) -> tuple[str, str, str]:
    """(repository, tag, digest) of an image reference; tag and digest may be ''."""
    ref, _, digest = image.partition("@")
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1 :], digest
    return ref, "", digest


# Volume (and projected volume) sources that name a ConfigMap or Secret: (field, kind, name field).
VOLUME_SOURCES = (("configMap", "ConfigMap", "name"), ("secret", "Secret", "secretName"))


def workloads(objs: list[dict]) -> list[dict]:
    return [o for o in objs if o.get("kind") in WORKLOAD_KINDS]


def where_of(o: dict, c: dict | None = None) -> str:
    name = f"{o.get('kind')}/{dig(o, 'metadata', 'name')}"
    return f"{name}/{c['name']}" if c else name


def selects_any(selector: dict, pods: list[dict]) -> bool:
    return any(labels_match(selector, p) for p in pods)


def template_secret_keys() -> dict[str, set[str]]:
    doc = load_yaml_docs(SECRET_TEMPLATE)[0]
    return {doc["metadata"]["name"]: keys_of(doc)}


def render_checks() -> None:
    stages, _ = parse_dockerfile(DOCKERFILE)
    image_uid = (effective(stages, "extract", "USER") or "").split(":")[0]
    targets = render_targets()

    @check("kustomize: every component is included by an overlay (so it is rendered and checked)")
    def _():
        used = set().union(*(included_dirs(t) for t in targets))
        comps = sorted(p.parent for p in (K8S / "components").glob("*/kustomization.yaml"))
        return [f"{rel(c)} is included by no overlay" for c in comps if c.resolve() not in used]

    for target in targets:
        t = rel(target)

        @check(f"{t}: kustomize build renders the expected objects, all in namespace {NAMESPACE}")
        def _(target=target, t=t):
            objs = render(target)
            got = dict(sorted(Counter(o.get("kind") for o in objs).items()))
            want = EXPECTED_OBJECTS.get(t)
            if want is None:
                return [f"no expected object count for {t}: add it to EXPECTED_OBJECTS ({got})"]
            problems = []
            if got != dict(sorted(want.items())):
                diff = {
                    k: f"{got.get(k, 0)} (want {want.get(k, 0)})"
                    for k in sorted(set(got) | set(want))
                    if got.get(k, 0) != want.get(k, 0)
                }
                problems.append(f"{len(objs)} objects, want {sum(want.values())}: {diff}")
            for o in objs:
                ns = dig(o, "metadata", "namespace")
                if o.get("kind") != "Namespace" and ns != NAMESPACE:
                    problems.append(f"{where_of(o)} in namespace {ns!r}")
            return problems

        @check(f"{t}: every workload container has probes, requests and limits, a restricted securityContext")
        def _(target=target):
            problems = []
            for o in workloads(render(target)):
                spec, kind, name = pod_spec(o), o["kind"], o["metadata"]["name"]
                pod_sc = spec.get("securityContext") or {}
                if spec.get("automountServiceAccountToken") is not False:
                    problems.append(f"{where_of(o)}: service account token mounted")
                if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
                    problems.append(f"{where_of(o)}: shares a host namespace")
                init = {c["name"] for c in spec.get("initContainers") or []}
                for c in containers(o):
                    sc, w = c.get("securityContext") or {}, where_of(o, c)
                    # a Job's pod runs to completion: probes would only restart it
                    if kind in ("Deployment", "StatefulSet", "DaemonSet") and c["name"] not in init:
                        probes = ("livenessProbe", "readinessProbe")
                        problems += [f"{w}: no {p}" for p in probes if not c.get(p)]
                    for section in ("requests", "limits"):
                        for res in ("cpu", "memory"):
                            if dig(c, "resources", section, res) is None:
                                problems.append(f"{w}: no resources.{section}.{res}")
                    if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
                        problems.append(f"{w}: runAsNonRoot is not true")
                    if sc.get("runAsUser", pod_sc.get("runAsUser")) in (0, "0"):
                        problems.append(f"{w}: runAsUser 0")
                    if sc.get("allowPrivilegeEscalation") is not False:
                        problems.append(f"{w}: allowPrivilegeEscalation is not false")
                    if "ALL" not in (dig(sc, "capabilities", "drop") or []):
                        problems.append(f"{w}: capabilities.drop lacks ALL")
                    if dig(sc, "capabilities", "add"):
                        problems.append(f"{w}: adds capabilities {dig(sc, 'capabilities', 'add')}")
                    if sc.get("privileged"):
                        problems.append(f"{w}: privileged")
                    writable = (kind, name, c["name"]) in WRITABLE_ROOT
                    if sc.get("readOnlyRootFilesystem") is not True and not writable:
                        problems.append(f"{w}: readOnlyRootFilesystem is not true")
                    seccomp = dig(sc, "seccompProfile", "type") or dig(pod_sc, "seccompProfile", "type")
                    if seccomp != "RuntimeDefault":
                        problems.append(f"{w}: seccompProfile is {seccomp!r}, not RuntimeDefault")
                    if split_image(c.get("image", ""))[0].startswith("tickflow/"):
                        uid = str(sc.get("runAsUser", pod_sc.get("runAsUser")))
                        if uid != image_uid:
                            problems.append(f"{w}: runAsUser {uid} is not the image's uid {image_uid}")
            return problems

        @check(f"{t}: every Service, NetworkPolicy and PodDisruptionBudget selector selects a rendered pod")
        def _(target=target):
            objs, problems = render(target), []
            pods = [pod_template(o).get("metadata", {}).get("labels") or {} for o in workloads(objs)]
            for o in workloads(objs):
                sel = dig(o, "spec", "selector")
                if o["kind"] != "CronJob" and sel and not labels_match(sel, pods[workloads(objs).index(o)]):
                    problems.append(f"{where_of(o)}: its selector does not match its pod template")
            for name, svc in of_kind(objs, "Service").items():
                sel = dig(svc, "spec", "selector") or {}
                if not sel:
                    problems.append(f"Service/{name}: no selector")
                elif not selects_any({"matchLabels": sel}, pods):
                    problems.append(f"Service/{name}: selector {sel} selects no pod")
            for name, pdb in of_kind(objs, "PodDisruptionBudget").items():
                sel = dig(pdb, "spec", "selector") or {}
                if not sel or not selects_any(sel, pods):
                    problems.append(f"PodDisruptionBudget/{name}: selector {sel} selects no pod")
            for name, np in of_kind(objs, "NetworkPolicy").items():
                sel = dig(np, "spec", "podSelector")
                if sel is None:
                    problems.append(f"NetworkPolicy/{name}: no podSelector")
                elif not selects_any(sel, pods):
                    problems.append(f"NetworkPolicy/{name}: podSelector {sel} selects no pod")
                peers = [p for r in dig(np, "spec", "ingress") or [] for p in r.get("from") or []]
                peers += [p for r in dig(np, "spec", "egress") or [] for p in r.get("to") or []]
                for peer in peers:
                    # a peer with a namespaceSelector picks pods of other namespaces
                    if "podSelector" in peer and "namespaceSelector" not in peer:
                        if not selects_any(peer["podSelector"] or {}, pods):
                            peer_sel = peer["podSelector"]
                            problems.append(f"NetworkPolicy/{name}: peer {peer_sel} selects no pod")
            return problems

        secret_note = (
            f" (Secret keys from {rel(SECRET_TEMPLATE)}: the base renders no Secret)"
            if t == rel(K8S_BASE)
            else ""
        )

        @check(f"{t}: every referenced ConfigMap and Secret key exists{secret_note}")
        def _(target=target, from_template=bool(secret_note)):
            objs, problems = render(target), []
            maps = {o["metadata"]["name"]: keys_of(o) for o in objs if o.get("kind") == "ConfigMap"}
            secrets = {o["metadata"]["name"]: keys_of(o) for o in objs if o.get("kind") == "Secret"}
            if from_template:
                if secrets:
                    problems.append(f"renders Secrets {sorted(secrets)}; it should render none")
                secrets = template_secret_keys()

            def need(
                w: str, kind: str, name: str | None, key: str | None = None, optional: bool = False
            ) -> None:
                pool = maps if kind == "ConfigMap" else secrets
                if optional:
                    return
                if name not in pool:
                    problems.append(f"{w}: {kind} {name!r} is not rendered")
                elif key is not None and key not in pool[name]:
                    problems.append(f"{w}: {kind} {name} has no key {key!r}")

            for o in workloads(objs):
                for c in containers(o):
                    w = where_of(o, c)
                    for ref in c.get("envFrom") or []:
                        for field, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                            if field in ref:
                                opt = ref[field].get("optional", False)
                                need(w, kind, ref[field].get("name"), optional=opt)
                    for e in c.get("env") or []:
                        for field, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                            ref = dig(e, "valueFrom", field)
                            if ref:
                                need(w, kind, ref.get("name"), ref.get("key"), ref.get("optional", False))
                sources = []
                for v in pod_spec(o).get("volumes") or []:
                    sources.append(v)
                    sources += dig(v, "projected", "sources", default=[]) or []
                for v in sources:
                    for field, kind, name_field in VOLUME_SOURCES:
                        src = v.get(field)
                        if not src:
                            continue
                        name = src.get(name_field, src.get("name"))
                        optional = src.get("optional", False)
                        need(where_of(o), kind, name, optional=optional)
                        for item in src.get("items") or []:
                            need(where_of(o), kind, name, item.get("key"), optional)
            return problems

        @check(f"{t}: every image is pinned and is what the kustomizations' images: say")
        def _(target=target):
            objs, problems = render(target), []
            rules = image_rules(target)
            wanted = {
                (r.get("newName") or name): (r.get("newName") or name)
                + (f":{r['newTag']}" if r.get("newTag") else "")
                + (f"@{r['digest']}" if r.get("digest") else "")
                for name, r in rules.items()
            }
            seen: set[str] = set()
            for o in workloads(objs):
                for c in containers(o):
                    image, w = c.get("image", ""), where_of(o, c)
                    repo, tag, digest = split_image(image)
                    if not digest and tag in ("", "latest"):
                        problems.append(f"{w}: image {image!r} is not pinned (no tag or :latest, no digest)")
                    if repo in wanted:
                        seen.add(repo)
                        if image != wanted[repo]:
                            problems.append(f"{w}: image {image!r}, the kustomizations say {wanted[repo]!r}")
            problems += [f"images: entry for {r} matches no container" for r in sorted(set(wanted) - seen)]
            return problems


def linked_library_check():
    readelf = shutil.which("readelf")
    bins = {svc: ROOT / "build" / "bin" / b for svc, b in makefile_binaries().items()}
    if not readelf or not all(p.is_file() for p in bins.values()):
        NOTES.append("build/bin not built (or no readelf): linked libraries not compared with the image")
        return

    @check("Dockerfile: runtime packages provide every library the built binaries link")
    def _():
        stages, _ = parse_dockerfile(DOCKERFILE)
        problems = []
        for svc, path in bins.items():
            out = subprocess.run(
                [readelf, "-d", str(path)], capture_output=True, text=True, check=True
            ).stdout
            pkgs = apt_packages(stage_chain(stages, svc))
            for soname in re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out):
                if soname not in SONAME_PACKAGES:
                    problems.append(
                        f"{path.name} links {soname}: add its package to the runtime stage"
                        " and to SONAME_PACKAGES"
                    )
                elif SONAME_PACKAGES[soname] and SONAME_PACKAGES[soname] not in pkgs:
                    problems.append(f"{svc} image lacks {SONAME_PACKAGES[soname]} for {soname}")
        return problems


if yaml is not None:
    linked_library_check()
    render_checks()


def main() -> int:
    failed = 0
    for name, problems in RESULTS:
        if problems:
            failed += 1
            print(f"not ok - {name}: {'; '.join(problems)}")
        else:
            print(f"ok - {name}")
    for note in NOTES:
        print(f"# {note}")
    print(f"{len(RESULTS) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
