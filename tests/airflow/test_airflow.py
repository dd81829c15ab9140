"""Apache Airflow 3 running tickflow's DAGs (deploy/airflow/dags) against a real stack.

The stack (marketsim and the three services, with an API token) comes from
the stack program (tests/airflow/stack.c); Airflow runs from the pinned venv
(tests/env/airflow.sh) with an AIRFLOW_HOME and a SQLite metadata database of
this run's own. What it checks:

  imports    both DAGs import only airflow.sdk and the providers, with no
             warning; Airflow's DAG processor finds both without an import
             error; retries default to 2, 120 s apart, and follow
             TICKFLOW_DAG_RETRIES / TICKFLOW_DAG_RETRY_DELAY_SECONDS;
  window     ``airflow dags test tickflow_pipeline`` with an explicit window:
             every task succeeds, every stage's log names the run's UUID,
             the three services hold SUCCESS for it, and its gold rows equal
             those of the same window run by a direct POST to extract for a
             job of the same configuration;
  scheduled  the same DAG twice with no window: the second run's window
             starts at the first one's end less the job's overlap, and
             silver holds each bar once;
  failure    a stage that fails (marketsim's vendor error on the job's
             ticker) fails the run after its retries, with as many tries in
             Airflow and attempts in extract, the delay between them, and
             one alert on a local webhook naming the job, the UUID and the
             stage;
  daily      tickflow_daily backfilled over Thanksgiving week 2026 by
             Airflow's scheduler (api-server, scheduler, DAG processor):
             one execution (uuid5 of job and day) per open trading day,
             none for the holiday and the weekend, and the same backfill
             run again (reprocessing every run) makes no new execution.

Prints "ok - ..." / "not ok - ..." lines and "N passed, N failed" last.

Usage: test_airflow.py --stack BUILD/tests/airflow_stack --venv VENV --work DIR
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import http.server
import json
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "deploy" / "airflow" / "dags"
# tickflow_daily's namespace, as deploy/airflow/README.md gives it.
DAILY_NAMESPACE = uuid.UUID("142d1aa0-c640-4dfd-9a5d-5e0d7ae75dc0")
UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
STAGES = ("extract", "transform", "aggregate")
# Thanksgiving week 2026: Thursday 26 is a holiday, Friday 27 a half day.
WEEK = [date(2026, 11, 23) + timedelta(days=i) for i in range(7)]
OPEN_DAYS = [date(2026, 11, 23), date(2026, 11, 24), date(2026, 11, 25), date(2026, 11, 27)]
RUN_CONF = {"wait_seconds": 90, "poll_seconds": 120}

passed = 0
failed = 0


def check(cond: bool, name: str, detail: Any = "") -> bool:
    """Count and print one check."""
    global passed, failed
    if cond:
        passed += 1
        print(f"ok - {name}", flush=True)
    else:
        failed += 1
        print(f"not ok - {name}: {str(detail)[:1500]}", flush=True)
    return cond


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


class Stack:
    """The stack program: started here, told to quit at the end."""

    def __init__(self, program: str, work: Path) -> None:
        self.facts_path = work / "stack-facts.json"
        self.log = open(work / "stack.txt", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [program, str(self.facts_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"the stack did not start: {line!r} (see {work / 'stack.txt'})")
        self.facts = json.loads(self.facts_path.read_text())
        self.ports: dict[str, int] = self.facts["ports"]
        self.token: str = self.facts["token"]
        self.dsn: str = self.facts["dsn"]

    def stop(self) -> tuple[int, str]:
        """Tells it to quit; (exit status, what it printed after "ready")."""
        try:
            out, _ = self.proc.communicate("quit\n", timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        self.log.close()
        return self.proc.returncode, out

    def call(self, service: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """A request to a service of the stack (with the token); (status, JSON or text)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.ports[service]}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"},
        )
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                status, text = resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def sql(self, query: str) -> list[dict[str, Any]]:
        """Rows of a query on the stack's database (through psql, as JSON)."""
        wrapped = f"SELECT coalesce(json_agg(t), '[]'::json) FROM ({query}) t"
        out = subprocess.run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-d", self.dsn, "-c", wrapped],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if out.returncode != 0:
            raise RuntimeError(f"psql: {out.stderr.strip()} in {query}")
        return json.loads(out.stdout)

    def put_job(self, name: str, body: dict[str, Any]) -> None:
        status, ans = self.call("extract", "PUT", f"/v1/jobs/{name}", body)
        if status not in (200, 201):
            raise RuntimeError(f"PUT /v1/jobs/{name}: {status} {ans}")

    def wait_record(self, service: str, execution_id: str, seconds: float) -> dict[str, Any]:
        """The stage record once final (or the last one read)."""
        deadline = time.monotonic() + seconds
        record: Any = {}
        while time.monotonic() < deadline:
            status, record = self.call(service, "GET", f"/v1/executions/{execution_id}")
            if status == 200 and record.get("status") in ("SUCCESS", "FAILED"):
                return record
            time.sleep(0.5)
        return record if isinstance(record, dict) else {}


class Webhook:
    """A local HTTP listener that keeps what is POSTed to it."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                size = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(size).decode()
                outer.received.append(
                    {"path": self.path, "type": self.headers.get("Content-Type"), "body": body}
                )
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - its signature
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/tickflow"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Airflow:
    """Airflow's command line and servers on a home of this run's own."""

    def __init__(self, venv: Path, work: Path, stack: Stack, webhook: Webhook) -> None:
        self.bin = venv / "bin" / "airflow"
        self.home = work / "airflow-home"
        self.work = work
        shutil.rmtree(self.home, ignore_errors=True)
        self.home.mkdir(parents=True)
        self.db = self.home / "airflow.db"
        self.api_port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "TICKFLOW_DAG_"))}
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                # Writers wait for each other up to 60 s (SQLite's default: 5 s).
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.db}?timeout=60",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.api_port}/execution/",
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
                "AIRFLOW_VAR_TICKFLOW_ALERT_WEBHOOK_URL": webhook.url,
                "NO_COLOR": "1",
            }
        )
        for stage in STAGES:
            env[f"AIRFLOW_CONN_TICKFLOW_{stage.upper()}"] = json.dumps(
                {
                    "conn_type": "http",
                    "host": "127.0.0.1",
                    "port": stack.ports[stage],
                    "password": stack.token,
                }
            )
        self.env = env
        self.servers: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.starts: dict[str, int] = {}

    def run(
        self, *args: str, extra_env: dict[str, str] | None = None, timeout: float = 300
    ) -> tuple[int, str]:
        """Runs an airflow command; (exit status, stdout and stderr)."""
        env = dict(self.env)
        env.update(extra_env or {})
        out = subprocess.run(
            [str(self.bin), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
        return out.returncode, out.stdout

    def dags_test(
        self, name: str, dag_id: str, conf: dict[str, Any], extra_env: dict[str, str] | None = None
    ) -> tuple[int, str]:
        """``airflow dags test dag_id -c conf``; its output kept in the work folder as name.txt."""
        code, out = self.run("dags", "test", dag_id, "-c", json.dumps(conf), extra_env=extra_env)
        (self.work / f"{name}.txt").write_text(out)
        return code, out

    def start(self, *args: str, extra_env: dict[str, str] | None = None) -> None:
        env = dict(self.env)
        env.update(extra_env or {})
        self.starts[args[0]] = self.starts.get(args[0], 0) + 1
        name = f"{args[0]}-{self.starts[args[0]]}"
        log = open(self.work / f"airflow-{name}.txt", "w")  # noqa: SIM115 - the child keeps it
        proc = subprocess.Popen(
            [str(self.bin), *args], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self.servers.append((name, proc))

    def stop_servers(self, *names: str) -> None:
        """Stops the servers named (all by default): SIGTERM to each one's process
        group (its workers too), SIGKILL after 30 s."""
        stopping = [(n, p) for n, p in self.servers if not names or n.rsplit("-", 1)[0] in names]
        for _, proc in stopping:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for name, proc in stopping:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                print(f"# airflow {name} did not stop on SIGTERM; killed", flush=True)
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.servers = [(n, p) for n, p in self.servers if (n, p) not in stopping]

    def dead_server(self) -> str | None:
        """The name of a server that exited, or None."""
        for name, proc in self.servers:
            if proc.poll() is not None:
                return name
        return None

    @contextmanager
    def meta(self) -> Iterator[sqlite3.Connection]:
        """A read of Airflow's metadata database."""
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)
        conn.row_factory = sqlite3.Row
        try:
            yield conn
        finally:
            conn.close()


def task_segments(output: str) -> dict[str, list[str]]:
    """Each task's log lines in ``airflow dags test`` output (every try of it)."""
    segments: dict[str, list[str]] = {}
    current: str | None = None
    for line in output.splitlines():
        start = re.search(r"\[DAG TEST\] starting task_id=(\w+)", line)
        if start:
            current = start.group(1)
            segments.setdefault(current, [])
            continue
        if re.search(r"\[DAG TEST\] end task task_id=", line):
            current = None
            continue
        if current:
            segments[current].append(line)
    return segments


def ids_in(lines: list[str]) -> set[str]:
    return set(re.findall(r"execution_id=(" + UUID_RE + ")", "\n".join(lines)))


def last_run_id(af: Airflow, dag_id: str) -> str | None:
    """The run that Airflow made last for dag_id."""
    with af.meta() as db:
        row = db.execute(
            "SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)
        ).fetchone()
    return row["run_id"] if row else None


def task_states(af: Airflow, run_id: str) -> dict[str, tuple[str, int]]:
    with af.meta() as db:
        rows = db.execute(
            "SELECT task_id, state, try_number FROM task_instance WHERE run_id = ?", (run_id,)
        ).fetchall()
    return {r["task_id"]: (r["state"], r["try_number"]) for r in rows}


def pipeline_run(
    af: Airflow, name: str, conf: dict[str, Any], extra_env: dict[str, str] | None = None
) -> tuple[int, str, str | None, dict[str, list[str]]]:
    """One ``dags test`` of tickflow_pipeline: (exit, output, the run's UUID, task segments).

    Unless extra_env says otherwise, a task retries once after 5 s: a run
    that should pass fails its checks on a retry rather than wait minutes.
    """
    env = {"TICKFLOW_DAG_RETRIES": "1", "TICKFLOW_DAG_RETRY_DELAY_SECONDS": "5"}
    env.update(extra_env or {})
    code, out = af.dags_test(name, "tickflow_pipeline", conf, env)
    segs = task_segments(out)
    made = ids_in(segs.get("create_execution_id", []))
    return code, out, (made.pop() if len(made) == 1 else None), segs


# ---- imports ----

IMPORT_PROBE = r"""
import importlib.util, json, sys, warnings
sys.path.insert(0, sys.argv[1])
# Airflow sets its warning filters when it is first imported: import it
# first, then record everything that importing a DAG file warns about.
import airflow.sdk
out = {}
for path in sys.argv[2:]:
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        spec = importlib.util.spec_from_file_location("probe_" + str(len(out)), path)
        mod = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(mod)
            error = None
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
    dag = getattr(mod, "dag", None)
    out[path] = {
        "error": error,
        "warnings": [f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in got],
        "retries": {t.task_id: [t.retries, t.retry_delay.total_seconds()] for t in dag.tasks} if dag else {},
    }
print(json.dumps(out))
"""

ALLOWED_AIRFLOW_IMPORTS = re.compile(r"^airflow\.(sdk(\.exceptions)?|providers\.(standard|http)(\..+)?)$")


def airflow_imports(path: Path) -> list[str]:
    """The airflow modules a file imports (from its text)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names if a.name.split(".")[0] == "airflow"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "airflow":
            names.append(node.module)
    return names


def probe_imports(af: Airflow, files: list[Path], extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    env = dict(af.env)
    env.update(extra_env or {})
    py = af.bin.parent / "python"
    out = subprocess.run(
        [str(py), "-c", IMPORT_PROBE, str(DAGS), *map(str, files)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if out.returncode != 0:
        raise RuntimeError(f"import probe: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_imports(af: Airflow) -> None:
    files = [DAGS / "tickflow_pipeline.py", DAGS / "tickflow_daily.py", DAGS / "tickflow_stages.py"]
    for f in files:
        names = airflow_imports(f)
        bad = [n for n in names if not ALLOWED_AIRFLOW_IMPORTS.match(n)]
        check(
            bool(names) and not bad,
            f"imports: {f.name} imports only airflow.sdk and the providers",
            bad or names,
        )

    dag_files = files[:2]
    got = probe_imports(af, dag_files)
    for f in dag_files:
        r = got[str(f)]
        check(r["error"] is None, f"imports: {f.name} imports", r["error"])
        check(
            r["warnings"] == [],
            f"imports: {f.name} raises no warning (deprecation or other) on import",
            r["warnings"],
        )
        tasks = r["retries"]
        check(
            len(tasks) == 4 and all(v == [2, 120.0] for v in tasks.values()),
            f"imports: {f.name}'s tasks retry twice, 120 s apart, by default",
            tasks,
        )
    # The probe sees a deprecated import when there is one.
    old = af.work / "deprecated_import.py"
    old.write_text("from airflow.operators.python import PythonOperator  # noqa: F401\n")
    got_old = probe_imports(af, [old])[str(old)]
    check(
        any("Deprecat" in w for w in got_old["warnings"]),
        "imports: the probe reports a deprecated import (airflow.operators.python)",
        got_old,
    )
    got = probe_imports(af, dag_files, {"TICKFLOW_DAG_RETRIES": "5", "TICKFLOW_DAG_RETRY_DELAY_SECONDS": "7"})
    for f in dag_files:
        tasks = got[str(f)]["retries"]
        check(
            len(tasks) == 4 and all(v == [5, 7.0] for v in tasks.values()),
            f"imports: {f.name} takes TICKFLOW_DAG_RETRIES=5 and TICKFLOW_DAG_RETRY_DELAY_SECONDS=7",
            tasks,
        )
    got = probe_imports(af, dag_files[:1], {"TICKFLOW_DAG_RETRIES": "two"})
    check(
        "TICKFLOW_DAG_RETRIES" in str(got[str(dag_files[0])]["error"]),
        "imports: TICKFLOW_DAG_RETRIES=two is an import error that names it",
        got,
    )

    code, out = af.run("dags", "reserialize")
    check(code == 0, "imports: airflow dags reserialize", out[-1500:])
    code, out = af.run("dags", "list", "-o", "json")
    listed = re.search(r"^\[.*\]$", out, re.M)
    ids = sorted(d["dag_id"] for d in json.loads(listed.group(0))) if listed else []
    check(
        ids == ["tickflow_daily", "tickflow_pipeline"],
        "imports: airflow dags list shows both DAGs (and only them)",
        out[-1500:],
    )
    code, out = af.run("dags", "list-import-errors", "-o", "json")
    errors = re.search(r"^\[.*\]$", out, re.M)
    check(
        code == 0 and errors is not None and json.loads(errors.group(0)) == [],
        "imports: airflow dags list-import-errors is empty",
        out[-1500:],
    )


# ---- window ----

GOLD_QUERIES = {
    "bars_hourly": "SELECT * FROM gold.bars_hourly WHERE execution_id = '{id}' ORDER BY ticker, source_timespan, bucket",
    "bars_daily": "SELECT * FROM gold.bars_daily WHERE execution_id = '{id}' ORDER BY ticker, source_timespan, trading_day",
}
NOT_COMPARED = {"execution_id", "updated_at"}


def test_window(af: Airflow, stack: Stack) -> None:
    job = {
        "provider": "polygon",
        "tickers": ["AAPL", "MSFT"],
        "interval_seconds": 86400,
        "overlap_seconds": 0,
    }
    stack.put_job("af_window", job)
    stack.put_job("af_direct", job)
    ws, we = "2026-11-17T00:00:00Z", "2026-11-18T00:00:00Z"
    conf = {"job_name": "af_window", "window_start": ws, "window_end": we, **RUN_CONF}
    code, out, eid, segs = pipeline_run(af, "dags-test-window", conf)
    check(code == 0, "window: airflow dags test tickflow_pipeline -c {window} exits 0", out[-2000:])
    run_id = last_run_id(af, "tickflow_pipeline")
    states = task_states(af, run_id) if run_id else {}
    check(
        states == {t: ("success", 1) for t in ("create_execution_id", *STAGES)},
        "window: every task succeeded at its first try",
        states,
    )
    check(eid is not None, "window: create_execution_id logged one UUID", segs.get("create_execution_id"))
    for stage in STAGES:
        seen = ids_in(segs.get(stage, []))
        check(seen == {eid}, f"window: the {stage} task's log carries the run's UUID and no other", seen)
    if eid is None:
        return
    for stage in STAGES:
        status, rec = stack.call(stage, "GET", f"/v1/executions/{eid}")
        check(
            status == 200
            and rec.get("status") == "SUCCESS"
            and rec.get("window_start") == ws
            and rec.get("window_end") == we,
            f"window: {stage} holds SUCCESS for the UUID over the window",
            rec,
        )
    rows = stack.sql(
        f"SELECT stage, status, job_name FROM tickflow.job_execution WHERE execution_id = '{eid}' ORDER BY stage"
    )
    check(
        rows == [{"stage": s, "status": "SUCCESS", "job_name": "af_window"} for s in sorted(STAGES)],
        "window: job_execution has the three stages SUCCESS",
        rows,
    )
    # Gold is keyed by (ticker, source_timespan, bucket), not by job: the
    # direct run below rewrites the same rows, so the Airflow run's are kept first.
    ours = {t: stack.sql(q.format(id=eid)) for t, q in GOLD_QUERIES.items()}
    check(
        len(ours["bars_hourly"]) >= 2 * 6 and len(ours["bars_daily"]) == 2,
        "window: gold has the UUID's hourly and daily rows (two tickers, one session)",
        {t: len(v) for t, v in ours.items()},
    )

    direct = str(uuid.uuid4())
    status, rec = stack.call(
        "extract",
        "POST",
        "/v1/executions",
        {
            "execution_id": direct,
            "job_name": "af_direct",
            "window_start": ws,
            "window_end": we,
            "wait_seconds": 90,
        },
    )
    check(
        status == 200 and rec.get("status") == "SUCCESS",
        "window: the direct POST to extract with wait_seconds succeeded",
        rec,
    )
    agg = stack.wait_record("aggregate", direct, 120)
    check(agg.get("status") == "SUCCESS", "window: the direct run reached gold through Kafka", agg)
    theirs = {t: stack.sql(q.format(id=direct)) for t, q in GOLD_QUERIES.items()}
    for table in GOLD_QUERIES:
        a, b = ours[table], theirs[table]
        diffs = []
        if len(a) != len(b):
            diffs.append(f"{len(a)} rows against {len(b)}")
        for ra, rb in zip(a, b, strict=False):
            for col in ra:
                if col not in NOT_COMPARED and ra[col] != rb.get(col):
                    diffs.append(f"{col}: {ra[col]!r} != {rb.get(col)!r} in {ra}")
        cols = sorted(set(a[0]) - NOT_COMPARED) if a else []
        check(
            bool(a) and not diffs,
            f"window: gold.{table} of the Airflow run equals the direct run's, column by column ({len(a)} rows, {len(cols)} columns)",
            diffs[:5],
        )


# ---- scheduled ----


def test_scheduled_first(af: Airflow, stack: Stack) -> dict[str, Any]:
    stack.put_job(
        "af_incr",
        {"provider": "polygon", "tickers": ["X:BTCUSD"], "interval_seconds": 3600, "overlap_seconds": 300},
    )
    code, out, eid, _ = pipeline_run(af, "dags-test-incremental-1", {"job_name": "af_incr", **RUN_CONF})
    check(code == 0 and eid is not None, "scheduled: the first run with no window succeeded", out[-2000:])
    if not eid:
        return {}
    _, rec = stack.call("extract", "GET", f"/v1/executions/{eid}")
    start, end = parse_time(rec["window_start"]), parse_time(rec["window_end"])
    check(
        rec.get("status") == "SUCCESS" and end - start == timedelta(hours=1) and end.second == 0,
        "scheduled: the first window is the job's interval (an hour) up to a whole minute",
        rec,
    )
    return rec


def test_scheduled_second(af: Airflow, stack: Stack, first: dict[str, Any]) -> None:
    if not first:
        check(False, "scheduled: the second run", "no first run")
        return
    end1 = parse_time(first["window_end"])
    # The next window ends at the minute of now: wait for a minute after the first's end.
    wait = (end1 + timedelta(seconds=61) - datetime.now(timezone.utc)).total_seconds()
    if wait > 0:
        time.sleep(wait)
    code, out, eid, _ = pipeline_run(af, "dags-test-incremental-2", {"job_name": "af_incr", **RUN_CONF})
    check(
        code == 0 and eid is not None and eid != first["execution_id"],
        "scheduled: the second run succeeded with a UUID of its own",
        out[-2000:],
    )
    if not eid:
        return
    _, rec = stack.call("extract", "GET", f"/v1/executions/{eid}")
    rows = stack.sql(
        "SELECT execution_id, window_start, window_end FROM tickflow.job_execution"
        " WHERE job_name = 'af_incr' AND stage = 'extract' ORDER BY window_start"
    )
    start2 = parse_time(rec["window_start"])
    check(
        start2 == end1 - timedelta(seconds=300),
        "scheduled: the second window starts at the first one's end less overlap_seconds (300)",
        {"first": first, "second": rec},
    )
    check(
        len(rows) == 2
        and rows[1]["execution_id"] == eid
        and datetime.fromisoformat(rows[1]["window_start"]) == end1 - timedelta(seconds=300)
        and datetime.fromisoformat(rows[0]["window_end"]) == end1,
        "scheduled: job_execution holds the same two windows",
        rows,
    )
    check(parse_time(rec["window_end"]) > end1, "scheduled: the second window ends after the first", rec)
    dups = stack.sql(
        "SELECT ticker, timespan, ts, count(*) AS n FROM silver.bars WHERE ticker = 'X:BTCUSD'"
        " GROUP BY ticker, timespan, ts HAVING count(*) > 1"
    )
    overlap = stack.sql(
        "SELECT count(*) AS n FROM silver.bars WHERE ticker = 'X:BTCUSD'"
        f" AND ts >= '{iso(end1 - timedelta(seconds=300))}' AND ts < '{iso(end1)}'"
    )
    check(dups == [], "scheduled: silver has no duplicate (ticker, timespan, ts)", dups[:5])
    check(overlap[0]["n"] == 5, "scheduled: the overlap's five minutes are in silver once each", overlap)


# ---- failure ----


def test_failure(af: Airflow, stack: Stack, webhook: Webhook) -> None:
    stack.put_job(
        "af_fail",
        {"provider": "polygon", "tickers": ["IBM"], "interval_seconds": 86400, "overlap_seconds": 0},
    )
    rules = {"rules": [{"ticker": "IBM", "fault": "error200", "times": -1}]}
    status, ans = stack.call("marketsim", "POST", "/_sim/faults", rules)
    check(status == 200, "failure: marketsim answers IBM with the vendor's entitlement error", ans)
    before = len(webhook.received)
    delay = 3
    conf = {
        "job_name": "af_fail",
        "window_start": "2026-11-18T00:00:00Z",
        "window_end": "2026-11-19T00:00:00Z",
        **RUN_CONF,
    }
    try:
        code, out, eid, _ = pipeline_run(
            af,
            "dags-test-failure",
            conf,
            {"TICKFLOW_DAG_RETRIES": "1", "TICKFLOW_DAG_RETRY_DELAY_SECONDS": str(delay)},
        )
    finally:
        stack.call("marketsim", "DELETE", "/_sim/faults")
    check(
        code != 0 and "DagRun failed" in out,
        "failure: airflow dags test exits non-zero, the run failed",
        out[-1500:],
    )
    run_id = last_run_id(af, "tickflow_pipeline")
    states = task_states(af, run_id) if run_id else {}
    check(
        states.get("extract") == ("failed", 2)
        and states.get("transform", ("",))[0] == "upstream_failed"
        and states.get("aggregate", ("",))[0] == "upstream_failed",
        "failure: extract failed after 2 tries (TICKFLOW_DAG_RETRIES=1), the stages after it did not run",
        states,
    )
    with af.meta() as db:
        tries = db.execute(
            "SELECT try_number, state, start_date, end_date FROM task_instance_history"
            " WHERE run_id = ? AND task_id = 'extract' ORDER BY try_number",
            (run_id,),
        ).fetchall()
        last = db.execute(
            "SELECT start_date FROM task_instance WHERE run_id = ? AND task_id = 'extract'", (run_id,)
        ).fetchone()
    gap = None
    if len(tries) == 1 and last:
        gap = (
            datetime.fromisoformat(last["start_date"]) - datetime.fromisoformat(tries[0]["end_date"])
        ).total_seconds()
    check(
        len(tries) == 1 and gap is not None and delay <= gap < delay + 30,
        f"failure: the second try started {delay} s or more after the first ended (TICKFLOW_DAG_RETRY_DELAY_SECONDS={delay})",
        {"history": [dict(r) for r in tries], "gap": gap},
    )
    if eid is None:
        check(False, "failure: the run's UUID", out[-1500:])
        return
    _, rec = stack.call("extract", "GET", f"/v1/executions/{eid}")
    check(
        rec.get("status") == "FAILED" and rec.get("attempt") == 2,
        "failure: extract's record is FAILED after 2 attempts, one per Airflow try",
        rec,
    )
    n = stack.sql(
        "SELECT count(DISTINCT execution_id) AS n FROM tickflow.job_execution WHERE job_name = 'af_fail'"
    )
    check(n == [{"n": 1}], "failure: the retry ran the same execution again (one execution for the job)", n)
    alerts = webhook.received[before:]
    check(len(alerts) == 1, "failure: one alert reached the webhook (after the last try only)", alerts)
    if alerts:
        body: Any = None
        try:
            body = json.loads(alerts[0]["body"])
        except ValueError:
            pass
        text = body.get("text", "") if isinstance(body, dict) else ""
        check(
            isinstance(body, dict) and list(body) == ["text"] and alerts[0]["type"] == "application/json",
            'failure: the alert is JSON {"text": ...} (a Slack incoming webhook\'s shape)',
            alerts[0],
        )
        check(
            "job=af_fail" in text and f"execution_id={eid}" in text and "stage extract failed" in text,
            "failure: the alert names the job, the UUID and the failed stage",
            text,
        )


# ---- daily ----


def wait_for(what: str, cond: Callable[[], Any], seconds: float, af: Airflow) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        dead = af.dead_server()
        if dead:
            raise RuntimeError(f"airflow {dead} exited while waiting for {what} (see airflow-{dead}.txt)")
        time.sleep(1)
    raise RuntimeError(f"timed out after {seconds:.0f} s waiting for {what}")


def backfill_done(af: Airflow, backfill_id: int) -> bool:
    with af.meta() as db:
        row = db.execute("SELECT completed_at FROM backfill WHERE id = ?", (backfill_id,)).fetchone()
    return bool(row and row["completed_at"])


def backfill_runs_done(af: Airflow, backfill_id: int) -> bool:
    """Every day of WEEK has a run of this backfill, and each has finished."""
    runs = daily_runs(af)
    return len(runs) == len(WEEK) and all(
        r["backfill_id"] == backfill_id and r["state"] in ("success", "failed") for r in runs.values()
    )


def daily_runs(af: Airflow) -> dict[date, dict[str, Any]]:
    """tickflow_daily's runs by day (logical date), with their tasks' states and tries."""
    with af.meta() as db:
        runs = db.execute(
            "SELECT run_id, logical_date, state, backfill_id FROM dag_run WHERE dag_id = 'tickflow_daily'"
        ).fetchall()
        tis = db.execute(
            "SELECT run_id, task_id, state, try_number FROM task_instance WHERE dag_id = 'tickflow_daily'"
        ).fetchall()
    out: dict[date, dict[str, Any]] = {}
    for r in runs:
        day = datetime.fromisoformat(r["logical_date"]).date()
        tasks = {t["task_id"]: (t["state"], t["try_number"]) for t in tis if t["run_id"] == r["run_id"]}
        out[day] = {
            "run_id": r["run_id"],
            "state": r["state"],
            "backfill_id": r["backfill_id"],
            "tasks": tasks,
        }
    return out


def backfill(af: Airflow, name: str, *extra: str) -> tuple[int, str]:
    """``airflow backfill create`` over WEEK; its output kept in the work folder as name.txt."""
    conf = {"job_name": "af_daily", **RUN_CONF}
    code, out = af.run(
        "backfill",
        "create",
        "--dag-id",
        "tickflow_daily",
        "--from-date",
        WEEK[0].isoformat(),
        "--to-date",
        WEEK[-1].isoformat(),
        "--dag-run-conf",
        json.dumps(conf),
        "--max-active-runs",
        "4",
        *extra,
    )
    (af.work / f"{name}.txt").write_text(out)
    return code, out


def create_backfill(af: Airflow, name: str, *extra: str) -> int | None:
    """Creates the backfill over WEEK and returns its id (None, said, when it cannot be made).

    On SQLite a writer that loses a race gets "database is locked"; Airflow
    then removes what it had made of the backfill, for the caller to try
    again, which this does up to four times.
    """
    for attempt in range(1, 5):
        code, out = backfill(af, f"{name}-{attempt}", *extra)
        if code == 0 and "Created backfill" in out:
            with af.meta() as db:
                row = db.execute(
                    "SELECT max(id) AS id FROM backfill WHERE dag_id = 'tickflow_daily' AND completed_at IS NULL"
                ).fetchone()
            return row["id"] if row else None
        if "database is locked" not in out:
            print(f"# airflow backfill create failed (see {name}-{attempt}.txt): {out[-800:]}", flush=True)
            return None
        print(f"# airflow backfill create: database is locked; again (see {name}-{attempt}.txt)", flush=True)
        time.sleep(2)
    return None


def executions_by_day(stack: Stack) -> list[dict[str, Any]]:
    return stack.sql(
        "SELECT (window_start AT TIME ZONE 'UTC')::date::text AS day, execution_id::text AS id,"
        " count(*) AS stages, bool_and(status = 'SUCCESS') AS ok, max(attempt) AS attempts,"
        " bool_and(window_end = window_start + interval '1 day') AS whole_day"
        " FROM tickflow.job_execution WHERE job_name = 'af_daily' GROUP BY 1, 2 ORDER BY 1, 2"
    )


def test_daily(af: Airflow, stack: Stack) -> None:
    try:
        daily_backfills(af, stack)
    finally:
        af.stop_servers()


def daily_backfills(af: Airflow, stack: Stack) -> None:
    stack.put_job(
        "af_daily",
        {"provider": "polygon", "tickers": ["NVDA", "AMZN"], "interval_seconds": 86400, "overlap_seconds": 0},
    )
    retry = {"TICKFLOW_DAG_RETRIES": "1", "TICKFLOW_DAG_RETRY_DELAY_SECONDS": "5"}
    code, out = af.run("dags", "unpause", "tickflow_daily")
    check(code == 0, "daily: airflow dags unpause tickflow_daily", out[-1000:])
    # The first backfill is made before the scheduler and the DAG processor
    # write to the database; it waits for them.
    t0 = time.monotonic()
    first = create_backfill(af, "backfill-1")
    check(first is not None, "daily: airflow backfill create over 2026-11-23..29", first)
    if first is None:
        return
    af.start("api-server", "--port", str(af.api_port), "--workers", "1", "--host", "127.0.0.1")
    af.start("scheduler", extra_env=retry)
    af.start("dag-processor", extra_env=retry)

    def api_up() -> bool:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{af.api_port}/api/v2/monitor/health", timeout=5
            ) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    wait_for("the api-server's health", api_up, 120, af)
    print(
        f"# airflow api-server, scheduler and dag-processor up in {time.monotonic() - t0:.1f} s", flush=True
    )
    wait_for("the first backfill to complete", lambda: backfill_done(af, first), 300, af)
    print(f"# first backfill complete in {time.monotonic() - t0:.1f} s", flush=True)
    runs = daily_runs(af)
    check(sorted(runs) == WEEK, "daily: one DAG run per day of the week", sorted(runs))
    open_ok = all(
        runs[d]["state"] == "success"
        and all(runs[d]["tasks"].get(t, ("",))[0] == "success" for t in ("plan_day", *STAGES))
        for d in OPEN_DAYS
        if d in runs
    )
    check(
        open_ok, "daily: on open days every task succeeded", {d.isoformat(): runs.get(d) for d in OPEN_DAYS}
    )
    closed = [d for d in WEEK if d not in OPEN_DAYS]
    closed_ok = all(
        d in runs
        and runs[d]["state"] == "success"
        and runs[d]["tasks"].get("plan_day", ("",))[0] == "success"
        and all(runs[d]["tasks"].get(t, ("",))[0] == "skipped" for t in STAGES)
        for d in closed
    )
    check(
        closed_ok,
        "daily: the holiday and the weekend succeeded with the stages skipped",
        {d.isoformat(): runs.get(d) for d in closed},
    )

    want = [
        {
            "day": d.isoformat(),
            "id": str(uuid.uuid5(DAILY_NAMESPACE, f"af_daily/{d.isoformat()}")),
            "stages": 3,
            "ok": True,
            "attempts": 1,
            "whole_day": True,
        }
        for d in OPEN_DAYS
    ]
    got = executions_by_day(stack)
    check(
        got == want,
        "daily: job_execution holds one execution per open trading day (uuid5 of job and day), three stages SUCCESS each, none for 26, 28, 29",
        got,
    )
    logs_ok = []
    for d in OPEN_DAYS:
        if d not in runs:
            continue
        eid = str(uuid.uuid5(DAILY_NAMESPACE, f"af_daily/{d.isoformat()}"))
        for stage in STAGES:
            f = (
                af.home
                / "logs"
                / "dag_id=tickflow_daily"
                / f"run_id={runs[d]['run_id']}"
                / f"task_id={stage}"
                / "attempt=1.log"
            )
            logs_ok.append(f.is_file() and eid in f.read_text())
    check(len(logs_ok) == 12 and all(logs_ok), "daily: each stage task's log names its day's UUID", logs_ok)

    # Reprocessing clears every run in one long write: made, like the first,
    # while the scheduler and the DAG processor are stopped.
    t0 = time.monotonic()
    af.stop_servers("scheduler", "dag-processor")
    second = create_backfill(af, "backfill-2", "--reprocess-behavior", "completed")
    check(second is not None, "daily: the same backfill again, reprocessing completed runs", second)
    if second is None:
        return
    af.start("scheduler", extra_env=retry)
    af.start("dag-processor", extra_env=retry)
    # The scheduler marks a backfill complete every 30 s; its runs' states say it sooner.
    wait_for("the second backfill's runs to finish", lambda: backfill_runs_done(af, second), 300, af)
    print(f"# second backfill's runs finished in {time.monotonic() - t0:.1f} s", flush=True)
    runs = daily_runs(af)
    again = (
        all(
            runs[d]["backfill_id"] == second
            and runs[d]["state"] == "success"
            # ran again: its second try at least (a busy machine may cost a retry)
            and runs[d]["tasks"].get("plan_day", ("", 0))[0] == "success"
            and runs[d]["tasks"].get("plan_day", ("", 0))[1] >= 2
            for d in WEEK
            if d in runs
        )
        and len(runs) == 7
    )
    check(
        again,
        "daily: the second backfill ran every day's run again",
        {d.isoformat(): r for d, r in runs.items()},
    )
    stage_again = all(
        runs[d]["tasks"].get(t, ("", 0))[0] == "success" and runs[d]["tasks"].get(t, ("", 0))[1] >= 2
        for d in OPEN_DAYS
        if d in runs
        for t in STAGES
    )
    check(
        stage_again,
        "daily: and every stage of the open days again",
        {d.isoformat(): runs.get(d) for d in OPEN_DAYS},
    )
    got2 = executions_by_day(stack)
    check(got2 == want, "daily: no new execution and no new attempt after the second backfill", got2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stack", required=True)
    ap.add_argument("--venv", required=True, type=Path)
    ap.add_argument("--work", required=True, type=Path)
    args = ap.parse_args()
    args.work = args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    stack: Stack | None = None
    webhook = Webhook()
    af: Airflow | None = None
    t_all = time.monotonic()
    try:
        stack = Stack(args.stack, args.work)
        af = Airflow(args.venv, args.work, stack, webhook)
        t0 = time.monotonic()
        code, out = af.run("db", "migrate")
        if not check(code == 0, "airflow db migrate on a SQLite database of this run", out[-2000:]):
            return 1
        print(f"# airflow db migrate in {time.monotonic() - t0:.1f} s", flush=True)
        # Write-ahead logging (kept in the file): readers do not block the
        # writer, so the scheduler, the DAG processor, the api-server and
        # the command line share the database without "database is locked".
        with sqlite3.connect(af.db) as db:
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        check(mode == "wal", "Airflow's SQLite database in write-ahead-log mode", mode)
        steps: list[tuple[str, Callable[[], Any]]] = []
        first: dict[str, Any] = {}

        def scheduled_first() -> None:
            first.update(test_scheduled_first(af, stack))

        steps = [
            ("imports", lambda: test_imports(af)),
            ("scheduled (first run)", scheduled_first),
            ("window", lambda: test_window(af, stack)),
            ("failure", lambda: test_failure(af, stack, webhook)),
            ("daily", lambda: test_daily(af, stack)),
            # Last: its window must end a minute or more after the first run's.
            ("scheduled (second run)", lambda: test_scheduled_second(af, stack, first)),
        ]
        for name, step in steps:
            t0 = time.monotonic()
            try:
                step()
            except Exception as exc:  # one part's crash fails it, the others still run
                check(False, f"{name}: ran to the end", f"{type(exc).__name__}: {exc}")
            print(f"# {name}: {time.monotonic() - t0:.1f} s", flush=True)
    except Exception as exc:
        check(False, "the stack and Airflow started", f"{type(exc).__name__}: {exc}")
    finally:
        if af is not None:
            af.stop_servers()
        webhook.close()
        if stack is not None:
            code, said = stack.stop()
            check(
                code == 0,
                "the stack stopped cleanly",
                f"exit {code}: {said.strip()} (see {args.work / 'stack.txt'})",
            )
    print(f"# {time.monotonic() - t_all:.1f} s in all", flush=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
