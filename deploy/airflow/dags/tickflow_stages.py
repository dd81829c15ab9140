"""What the tickflow DAGs share: driving one stage of an execution over HTTP,
the retry settings, and the failure alert.

Not a DAG (``.airflowignore`` keeps the DAG processor off it); the DAG files
import it from the DAGs folder, which Airflow puts on ``sys.path``.

Connections (HTTP type, Login empty, Password = the services' API token when
they have one): ``tickflow_extract``, ``tickflow_transform``,
``tickflow_aggregate``. Variable ``tickflow_alert_webhook_url`` (optional): a
URL that gets ``{"text": ...}`` by POST when a task fails for good (a Slack
incoming webhook takes that shape as it is). See ../README.md.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import urllib.request
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from airflow.providers.http.hooks.http import HttpHook
from airflow.sdk import Variable
from airflow.sdk.exceptions import AirflowException, AirflowFailException

log = logging.getLogger(__name__)

STAGES = ("extract", "transform", "aggregate")
CONN_IDS = {stage: f"tickflow_{stage}" for stage in STAGES}
ALERT_WEBHOOK_VARIABLE = "tickflow_alert_webhook_url"
# The first task of each DAG: it hands the execution over by XCom.
PLAN_TASK_IDS = ("create_execution_id", "plan_day")
# Read when the Variable above is not set: its name before the alert was generic.
OLD_SLACK_WEBHOOK_VARIABLE = "tickflow_slack_webhook_url"

WAIT_SECONDS = 300  # server-side wait of one POST
POLL_SECONDS = 1800  # then poll GET /v1/executions/{id} this long
POLL_INTERVAL = 10
STAGE_TIMEOUT = timedelta(seconds=WAIT_SECONDS + POLL_SECONDS + 300)

PENDING_STATUSES = {"PENDING", "RUNNING"}
# A retry cannot fix these: bad request, auth, unknown job, conflicting body.
NON_RETRYABLE_HTTP = {400, 401, 403, 404, 409, 413, 422}


def _env_number(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise ValueError(f"{name} must be a whole number of 0 or more, not {raw!r}")
    return int(raw)


def retry_settings() -> tuple[int, timedelta]:
    """Retries of every task and the delay between them, read when the DAG file is parsed.

    TICKFLOW_DAG_RETRIES (default 2) and TICKFLOW_DAG_RETRY_DELAY_SECONDS
    (default 120) in the environment of whatever parses the DAG: the DAG
    processor, or ``airflow dags test``.
    """
    retries = _env_number("TICKFLOW_DAG_RETRIES", 2)
    delay = _env_number("TICKFLOW_DAG_RETRY_DELAY_SECONDS", 120)
    return retries, timedelta(seconds=delay)


def headers(conn_id: str) -> dict[str, str]:
    """JSON headers, with the connection's password as a bearer token when it has one."""
    out = {"Content-Type": "application/json", "Accept": "application/json"}
    token = HttpHook.get_connection(conn_id).password
    if token:
        out["Authorization"] = f"Bearer {token}"
    return out


def answer(what: str, response: Any) -> dict[str, Any]:
    """The JSON body of a service's answer; raises on an error status."""
    code = response.status_code
    if code in NON_RETRYABLE_HTTP:
        raise AirflowFailException(f"{what}: HTTP {code}: {response.text[:500]}")
    if code >= 300:
        raise AirflowException(f"{what}: HTTP {code}: {response.text[:500]}")
    try:
        return response.json()
    except ValueError as exc:
        raise AirflowException(f"{what}: HTTP {code} without a JSON body") from exc


def run_stage(stage: str, request: Mapping[str, Any], wait_seconds: int, poll_seconds: int) -> dict[str, Any]:
    """POST the execution to one stage, wait until its record is final, fail unless SUCCESS.

    request holds execution_id and job_name, and window_start and
    window_end when the window is explicit (else the job's incremental one).
    """
    execution_id = request["execution_id"]
    body: dict[str, Any] = {
        "execution_id": execution_id,
        "job_name": request["job_name"],
        "wait_seconds": wait_seconds,
    }
    for key in ("window_start", "window_end"):
        if request.get(key):
            body[key] = request[key]

    conn_id = CONN_IDS[stage]
    hdrs = headers(conn_id)
    log.info("%s: POST /v1/executions execution_id=%s job=%s", stage, execution_id, body["job_name"])
    response = HttpHook(method="POST", http_conn_id=conn_id).run(
        "/v1/executions",
        data=json.dumps(body),
        headers=hdrs,
        extra_options={"check_response": False, "timeout": wait_seconds + 30},
    )
    record = answer(stage, response)

    getter = HttpHook(method="GET", http_conn_id=conn_id)
    deadline = time.monotonic() + poll_seconds
    while record.get("status") in PENDING_STATUSES and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL)
        record = answer(
            stage,
            getter.run(
                f"/v1/executions/{execution_id}",
                headers=hdrs,
                extra_options={"check_response": False, "timeout": 30},
            ),
        )

    status = record.get("status")
    if record.get("execution_id") not in (None, execution_id):
        raise AirflowFailException(f"{stage}: answer for another execution: {record.get('execution_id')}")
    if status != "SUCCESS":
        # Retried by Airflow: the same execution_id is POSTed again and the
        # service runs the failed stage again while it has attempts left.
        raise AirflowException(
            f"{stage}: execution {execution_id} ended {status}: {record.get('error') or 'no error given'}"
        )
    log.info(
        "%s: execution %s SUCCESS window %s to %s",
        stage,
        execution_id,
        record.get("window_start"),
        record.get("window_end"),
    )
    return record


def get_json(stage: str, path: str) -> dict[str, Any]:
    """GET path from a stage's service and return its JSON body."""
    conn_id = CONN_IDS[stage]
    response = HttpHook(method="GET", http_conn_id=conn_id).run(
        path, headers=headers(conn_id), extra_options={"check_response": False, "timeout": 30}
    )
    return answer(f"{stage} GET {path}", response)


def alert_on_failure(context: Mapping[str, Any]) -> None:
    """Log the failure and, when the webhook Variable is set, POST it there. Never raises.

    The text names the DAG, the failed task (the stage), the job, the
    execution UUID, the run and the error; the body is {"text": ...}.
    """
    ti = context.get("task_instance")
    params = context.get("params") or {}
    job_name = params.get("job_name")
    execution_id = None
    with contextlib.suppress(Exception):  # alerting must not fail
        first = None
        for task_id in PLAN_TASK_IDS:
            if ti is not None and ti.task.dag.has_task(task_id):
                first = ti.xcom_pull(task_ids=task_id)
        if isinstance(first, Mapping):
            execution_id = first.get("execution_id")
            job_name = first.get("job_name") or job_name
        elif isinstance(first, str):
            execution_id = first
    text = (
        f"tickflow {getattr(ti, 'dag_id', '?')}: stage {getattr(ti, 'task_id', '?')} failed"
        f" job={job_name} execution_id={execution_id} run={context.get('run_id')}"
        f" try={getattr(ti, 'try_number', '?')} error={str(context.get('exception'))[:500]}"
    )
    log.error(text)
    try:
        url = Variable.get(ALERT_WEBHOOK_VARIABLE, default=None) or Variable.get(
            OLD_SLACK_WEBHOOK_VARIABLE, default=None
        )
        if url:
            req = urllib.request.Request(
                url,
                data=json.dumps({"text": text}).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - URL is operator-configured
                resp.read()
            log.info("failure alert sent")
    except Exception as exc:  # alerting must not fail
        log.warning("failure alert not sent: %s", type(exc).__name__)
