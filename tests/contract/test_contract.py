"""schemathesis against each service's /openapi.json on a running stack.

The stack (marketsim and the three services, with an API token) comes from
the stack program (tests/airflow/stack.c). For each of extract, transform
and aggregate, schemathesis (the pinned CLI) generates requests from the
service's own document, with the token, a fixed seed and a bounded number of
examples, and checks every response. Its JSON report gives one line here
per service and check class:

  ok - extract: status_code_conformance
  not ok - extract: status_code_conformance: ST103 in GET /v1/jobs/{job_name}

and the run ends with "N passed, N failed" (tests/run.sh reads it). The full
output of each service's run, with a curl line per failure, is in WORK.

Usage: test_contract.py --stack PROGRAM --schemathesis CLI --config TOML --work DIR
                        [--examples N] [--seed N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SERVICES = ("extract", "transform", "aggregate")

# The checks run, each a line per service; schemathesis's failure codes by check.
# Not positive_data_acceptance: rules across fields (window_end after
# window_start, a window of at most 31 days and not in the future, a
# backfill's from <= to < today, interval_seconds at least one bar, a
# provider's own tickers and bar sizes) are beyond what a schema says, and a
# request that breaks one is rightly a 400.
CHECKS: dict[str, tuple[str, ...]] = {
    "not_a_server_error": ("ST101", "ST102"),
    "status_code_conformance": ("ST103",),
    "content_type_conformance": ("ST104", "ST105", "ST106"),
    "response_headers_conformance": ("ST107",),
    "response_schema_conformance": ("ST108", "ST109", "ST110", "ST111"),
    "negative_data_rejection": ("ST201",),
    "unsupported_method": ("ST204",),
    "allow_header_conformance": ("ST205",),
    "ignored_auth": ("ST401",),
}

passed = 0
failed = 0


def check(cond: bool, name: str, detail: str = "") -> bool:
    global passed, failed
    if cond:
        passed += 1
        print(f"ok - {name}")
    else:
        failed += 1
        print(f"not ok - {name}" + (f": {detail}" if detail else ""))
    sys.stdout.flush()
    return cond


class Stack:
    """The stack program: started here, told to quit at the end."""

    def __init__(self, program: str, work: Path) -> None:
        facts_path = work / "stack-facts.json"
        self.log = open(work / "stack.txt", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [program, str(facts_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            self.stop()
            raise RuntimeError(f"the stack did not start: {line!r} (see {work / 'stack.txt'})")
        facts = json.loads(facts_path.read_text())
        self.ports: dict[str, int] = facts["ports"]
        self.token: str = facts["token"]
        self.dir: str = facts["dir"]

    def stop(self) -> tuple[int, str]:
        """Tells it to quit; (exit status, what it printed after "ready")."""
        try:
            out, _ = self.proc.communicate("quit\n", timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        self.log.close()
        return self.proc.returncode, out


def run_service(args: argparse.Namespace, stack: Stack, service: str, work: Path) -> dict[str, Any] | None:
    """schemathesis against one service; its JSON report, or None when it wrote none."""
    out_dir = work / service
    out_dir.mkdir(parents=True, exist_ok=True)
    report = out_dir / "report.json"
    report.unlink(missing_ok=True)
    cmd = [
        args.schemathesis,
        "--config-file",
        str(Path(args.config).resolve()),
        "--no-color",
        "run",
        f"http://127.0.0.1:{stack.ports[service]}/openapi.json",
        "--header",
        f"Authorization: Bearer {stack.token}",
        "--checks",
        ",".join(CHECKS),
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(args.examples),
        "--seed",
        str(args.seed),
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--continue-on-failure",
        "--request-timeout",
        "30",
        "--report",
        "json",
        "--report-json-path",
        str(report.resolve()),
    ]
    t0 = time.monotonic()
    with open(out_dir / "schemathesis.txt", "w") as log:
        # In its folder: schemathesis keeps a cache (.schemathesis/) where it runs.
        code = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=out_dir, check=False).returncode
    seconds = time.monotonic() - t0
    if not report.exists():
        print(f"# {service}: schemathesis exited {code} without a report (see {out_dir / 'schemathesis.txt'})")
        return None
    data: dict[str, Any] = json.loads(report.read_text())
    cases = data.get("test_cases", {})
    ops = data.get("operations", {})
    print(
        f"# {service}: {ops.get('tested', 0)} operations, {cases.get('generated', 0)} test cases"
        f" in {seconds:.1f} s (exit {code}; {out_dir / 'schemathesis.txt'})"
    )
    return data


def judge(service: str, data: dict[str, Any] | None) -> None:
    """One line per check class from a service's report."""
    if data is None:
        check(False, f"{service}: schemathesis ran", "no report")
        return
    check(
        data.get("complete") is True and not data.get("errors") and data.get("operations", {}).get("errored", 0) == 0,
        f"{service}: schemathesis ran every operation without an error",
        json.dumps(data.get("errors"))[:2000],
    )
    by_code: dict[str, list[str]] = {}
    for f in data.get("failures", []):
        by_code.setdefault(f["code"], []).extend(f.get("operations", []))
    known = {code for codes in CHECKS.values() for code in codes}
    for name, codes in CHECKS.items():
        found = [f"{c} in {', '.join(sorted(set(by_code[c])))}" for c in codes if c in by_code]
        check(not found, f"{service}: {name}", "; ".join(found))
    other = [f"{c} in {', '.join(sorted(set(ops)))}" for c, ops in by_code.items() if c not in known]
    check(not other, f"{service}: no other failure", "; ".join(other))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stack", required=True)
    ap.add_argument("--schemathesis", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--examples", type=int, default=100)
    ap.add_argument("--seed", type=int, default=20240304)
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    try:
        stack = Stack(args.stack, work)
    except (OSError, RuntimeError) as e:
        check(False, "the stack started", str(e))
        print(f"{passed} passed, {failed} failed")
        return 1
    print(f"# stack up in {time.monotonic() - t0:.1f} s (logs in {stack.dir}); seed {args.seed},"
          f" at most {args.examples} examples per operation and phase")
    try:
        for service in SERVICES:
            judge(service, run_service(args, stack, service, work))
    finally:
        code, out = stack.stop()
    check(code == 0, "the stack stopped cleanly", out.strip())
    print(f"# contract run in {time.monotonic() - t0:.1f} s")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
