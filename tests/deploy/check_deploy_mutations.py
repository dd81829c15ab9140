#!/usr/bin/env python3
"""Shows that the rendered-manifest checks of check_deploy.py can fail.

Copies the repository's tracked and new files to a temporary directory, runs
check_deploy.py there once unchanged (every check must pass), then once per
mutation: one edit of one manifest, after which the named checks must fail.
The working tree is never touched.

Each mutation prints `ok - NAME` or `not ok - NAME: REASON`; the last line is
`N passed, N failed` and the exit status is 1 when any failed.

    python3 tests/deploy/check_deploy_mutations.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[2]
BASE = "deploy/k8s/base"
DEV = "deploy/k8s/overlays/dev"
CRON = "deploy/k8s/overlays/dev-cronjob"
COMPONENT = "deploy/k8s/components/cronjob"

RENDERS = "kustomize build renders the expected objects"
WORKLOAD = "every workload container has probes"
SELECTORS = "selector selects a rendered pod"
KEYS = "every referenced ConfigMap and Secret key exists"
IMAGES = "every image is pinned"


class Mutation(NamedTuple):
    name: str
    path: str
    old: str
    new: str
    # checks that must fail: (target, words of the check's name)
    fails: list[tuple[str, str]]


MUTATIONS = [
    Mutation(
        "a base resource left out changes the object count",
        f"{BASE}/kustomization.yaml",
        "  - lake-pvc.yaml\n",
        "",
        [(BASE, RENDERS), (DEV, RENDERS)],
    ),
    Mutation(
        "an overlay that does not build",
        f"{DEV}/kustomization.yaml",
        "  - ../../base\n",
        "  - ../../base\n  - missing.yaml\n",
        [(DEV, RENDERS), (DEV, WORKLOAD), (CRON, RENDERS)],
    ),
    Mutation(
        "a generated Secret outside the namespace",
        f"{DEV}/kustomization.yaml",
        "\nnamespace: tickflow\n",
        "\n",
        [(DEV, RENDERS)],
    ),
    Mutation(
        "marketsim without a readiness probe",
        f"{BASE}/marketsim.yaml",
        "          readinessProbe:\n",
        "          startupProbe:\n",
        [(BASE, WORKLOAD), (DEV, WORKLOAD)],
    ),
    Mutation(
        "kafka without a memory limit",
        f"{BASE}/kafka.yaml",
        '              cpu: "2"\n              memory: 1536Mi\n',
        '              cpu: "2"\n',
        [(BASE, WORKLOAD)],
    ),
    Mutation(
        "postgres keeps its capabilities",
        f"{BASE}/postgres.yaml",
        'drop: ["ALL"]',
        'drop: ["NET_RAW"]',
        [(BASE, WORKLOAD)],
    ),
    Mutation(
        "the CronJob with a writable root filesystem",
        f"{COMPONENT}/cronjob.yaml",
        "readOnlyRootFilesystem: true",
        "readOnlyRootFilesystem: false",
        [(CRON, WORKLOAD)],
    ),
    Mutation(
        "the CronJob may escalate privileges",
        f"{COMPONENT}/cronjob.yaml",
        "allowPrivilegeEscalation: false",
        "allowPrivilegeEscalation: true",
        [(CRON, WORKLOAD)],
    ),
    Mutation(
        "a Service selecting no pod",
        f"{BASE}/postgres.yaml",
        "spec:\n  selector:\n    app.kubernetes.io/name: postgres\n",
        "spec:\n  selector:\n    app.kubernetes.io/name: postgresql\n",
        [(BASE, SELECTORS)],
    ),
    Mutation(
        "a NetworkPolicy podSelector selecting no pod",
        f"{COMPONENT}/networkpolicy.yaml",
        "  podSelector:\n    matchLabels:\n      app.kubernetes.io/name: trigger\n",
        "  podSelector:\n    matchLabels:\n      app.kubernetes.io/name: triggers\n",
        [(CRON, SELECTORS)],
    ),
    Mutation(
        "a NetworkPolicy peer selecting no pod",
        f"{BASE}/networkpolicies.yaml",
        "              app.kubernetes.io/name: marketsim\n      ports:",
        "              app.kubernetes.io/name: market-sim\n      ports:",
        [(BASE, SELECTORS)],
    ),
    Mutation(
        "a Secret key that the template lacks",
        f"{BASE}/extract.yaml",
        "              - key: pg-dsn\n",
        "              - key: pg_dsn\n",
        [(BASE, KEYS), (DEV, KEYS)],
    ),
    Mutation(
        "the CronJob's token key missing from the dev Secret",
        f"{COMPONENT}/cronjob.yaml",
        "                  - key: api-token\n",
        "                  - key: api_token\n",
        [(CRON, KEYS)],
    ),
    Mutation(
        "a dev Secret without a key aggregate mounts",
        f"{DEV}/kustomization.yaml",
        "      - alert-webhook-url=\n",
        "",
        [(DEV, KEYS)],
    ),
    Mutation(
        "a ConfigMap key that is not generated",
        f"{BASE}/marketsim.yaml",
        "                  key: TICKFLOW_LOG_LEVEL\n",
        "                  key: TICKFLOW_LOGLEVEL\n",
        [(BASE, KEYS), (DEV, KEYS)],
    ),
    Mutation(
        "postgres on :latest",
        f"{BASE}/postgres.yaml",
        "image: postgres:15\n",
        "image: postgres:latest\n",
        [(BASE, IMAGES)],
    ),
    Mutation(
        "the curl image without a tag",
        f"{COMPONENT}/kustomization.yaml",
        '    newTag: "8.11.1"\n',
        "",
        [(CRON, IMAGES)],
    ),
    Mutation(
        "an overlay image entry that matches no container",
        f"{DEV}/kustomization.yaml",
        "  - name: tickflow/extract\n    newTag: dev\n",
        "  - name: tickflow/extracts\n    newTag: dev\n",
        [(DEV, IMAGES)],
    ),
    Mutation(
        "a patch that swaps an image the overlay names",
        f"{DEV}/kustomization.yaml",
        "patches:\n",
        "patches:\n  - target:\n      kind: Deployment\n      name: extract\n    patch: |-\n"
        "      - op: replace\n        path: /spec/template/spec/containers/0/image\n"
        "        value: tickflow/extract-debug:dev\n",
        [(DEV, IMAGES)],
    ),
    Mutation(
        "the component included by no overlay",
        f"{CRON}/kustomization.yaml",
        "components:\n  - ../../components/cronjob\n",
        "",
        [("kustomize", "every component is included by an overlay"), (CRON, RENDERS)],
    ),
    Mutation(
        "the bucket lake's overlay keeps the folder URI",
        "deploy/k8s/overlays/dev-s3/kustomization.yaml",
        "      - TICKFLOW_LAKE_URI=s3://tickflow-dev-lake/tickflow\n",
        "",
        [("k8s", "components/lake-s3 puts the lake in a bucket")],
    ),
    Mutation(
        "the bucket lake's keys mounted from the wrong Secret",
        "deploy/k8s/components/lake-s3/stage-patch.yaml",
        "      secretName: tickflow-lake-s3\n",
        "      secretName: tickflow-secrets\n",
        [("k8s", "components/lake-s3 puts the lake in a bucket")],
    ),
    Mutation(
        "compose: the stages wait for SeaweedFS even without the s3 profile",
        "docker-compose.yaml",
        "      condition: service_healthy\n      required: false\n",
        "      condition: service_healthy\n",
        [("compose", "profile s3 runs SeaweedFS")],
    ),
]


def copy_repo(dest: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "-z", "-co", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (f.decode() for f in files)):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def failing(root: Path) -> tuple[set[str], str]:
    """The failing checks' lines (after `not ok - `) and the closing line."""
    proc = subprocess.run(
        [sys.executable, str(root / "tests" / "deploy" / "check_deploy.py")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = {line[len("not ok - ") :] for line in proc.stdout.splitlines() if line.startswith("not ok - ")}
    return lines, proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-300:]


def main() -> int:
    results: list[tuple[str, list[str]]] = []
    with tempfile.TemporaryDirectory(prefix="tickflow-deploy-") as tmp:
        root = Path(tmp)
        copy_repo(root)
        names, last = failing(root)
        baseline = [f"fails {sorted(names)} ({last})"] if names else []
        results.append(("unchanged copy passes every check", baseline))
        for m in MUTATIONS:
            path = root / m.path
            original = path.read_text(encoding="utf-8")
            problems: list[str] = []
            if original.count(m.old) != 1:
                times = original.count(m.old)
                problems.append(f"{m.path}: the text to change occurs {times} times, not once")
            else:
                path.write_text(original.replace(m.old, m.new), encoding="utf-8")
                try:
                    names, last = failing(root)
                finally:
                    path.write_text(original, encoding="utf-8")
                for target, words in m.fails:
                    if not any(n.startswith(f"{target}: ") and words in n.split(": ")[1] for n in names):
                        got = sorted(n[:90] for n in names)
                        problems.append(f"no failing check '{target}: ...{words}...' (failed: {got})")
            results.append((f"mutation: {m.name}", problems))
    failed = 0
    for name, problems in results:
        if problems:
            failed += 1
            print(f"not ok - {name}: {'; '.join(problems)}")
        else:
            print(f"ok - {name}")
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
