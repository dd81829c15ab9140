"""What the tickflow DAGs share: calls to the services, waiting for a stage
record to be final, the retry settings, and the failure alert's text and
delivery.

Not a DAG (``.airflowignore`` keeps the DAG processor off it); the DAG files
import it from the DAGs folder, which Airflow puts on ``sys.path``.

Connections (HTTP type, Login empty, Password = the services' API token when
they have one): ``tickflow_extract``, ``tickflow_transform``,
``tickflow_aggregate``. Variable ``tickflow_alert_webhook_url`` (optional): a
URL that gets ``{"text": ...}`` by POST when a task fails for good (a Slack
incoming webhook takes that shape as it is). See ../README.md.
"""

from __future__ import annotations

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
# Read when the Variable above is not set: its name before the alert was generic.
OLD_SLACK_WEBHOOK_VARIABLE = "tickflow_slack_webhook_url"

WAIT_SECONDS = 300  # server-side wait of one POST
POLL_SECONDS = 1800  # then poll GET /v1/executions/{id} this long
POLL_INTERVAL = 10
STAGE_TIMEOUT = timedelta(seconds=WAIT_SECONDS + POLL_SECONDS + 300)

PENDING_STATUSES = {"PENDING", "RUNNING"}
# A retry cannot fix these: bad request, auth, unknown job, conflicting body.
NON_RETRYABLE_HTTP = {400, 401, 403, 404, 409, 413, 422}


def _env_count(name: str) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise ValueError(f"{name} must be a whole number of 0 or more, not {raw!r}")
    return int(raw)


def retry_overrides() -> dict[str, Any]:
    """default_args entries from TICKFLOW_DAG_RETRIES and TICKFLOW_DAG_RETRY_DELAY_SECONDS.

    Read when the DAG file is parsed, so they must be set where that
    happens: for the DAG processor (and the scheduler), or for
    ``airflow dags test``. An unset variable leaves the DAG's default.
    """
    out: dict[str, Any] = {}
    retries = _env_count("TICKFLOW_DAG_RETRIES")
    delay = _env_count("TICKFLOW_DAG_RETRY_DELAY_SECONDS")
    if retries is not None:
        out["retries"] = retries
    if delay is not None:
        out["retry_delay"] = timedelta(seconds=delay)
    return out


def _headers(conn_id: str) -> dict[str, str]:
    """JSON headers, with the connection's password as a bearer token when it has one."""
    out = {"Content-Type": "application/json", "Accept": "application/json"}
    token = HttpHook.get_connection(conn_id).password
    if token:
        out["Authorization"] = f"Bearer {token}"
    return out


def call(
    stage: str, method: str, path: str, body: Mapping[str, Any] | None = None, timeout: int = 30
) -> dict[str, Any]:
    """Send a request to a stage's service and return its JSON answer.

    Raises AirflowFailException (no retry) on an answer a retry cannot
    change, AirflowException (retried) on any other error.
    """
    conn_id = CONN_IDS[stage]
    response = HttpHook(method=method, http_conn_id=conn_id).run(
        path,
        data=json.dumps(body) if body is not None else None,
        headers=_headers(conn_id),
        extra_options={"check_response": False, "timeout": timeout},
    )
    code = response.status_code
    what = f"{stage}: {method} {path}"
    if code in NON_RETRYABLE_HTTP:
        raise AirflowFailException(f"{what}: HTTP {code}: {response.text[:500]}")
    if code >= 300:
        raise AirflowException(f"{what}: HTTP {code}: {response.text[:500]}")
    try:
        return response.json()
    except ValueError as exc:
        raise AirflowException(f"{what}: HTTP {code} without a JSON body") from exc


def wait_final(stage: str, execution_id: str, record: dict[str, Any], poll_seconds: int) -> dict[str, Any]:
    """Poll the stage record of execution_id until it is final (or poll_seconds pass)."""
    deadline = time.monotonic() + poll_seconds
    while record.get("status") in PENDING_STATUSES and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL)
        record = call(stage, "GET", f"/v1/executions/{execution_id}")
    if record.get("execution_id") not in (None, execution_id):
        raise AirflowFailException(f"{stage}: answer for another execution: {record.get('execution_id')}")
    return record


def failure_text(context: Mapping[str, Any], job_name: Any, execution_id: Any) -> str:
    """The alert of a task that failed for good: DAG, stage (task), job, UUID, run, try, error."""
    ti = context.get("task_instance")
    return (
        f"tickflow {getattr(ti, 'dag_id', '?')}: stage {getattr(ti, 'task_id', '?')} failed"
        f" job={job_name} execution_id={execution_id} run={context.get('run_id')}"
        f" try={getattr(ti, 'try_number', '?')} error={str(context.get('exception'))[:500]}"
    )


def post_alert(text: str) -> None:
    """POST {"text": text} to the alert webhook when its Variable is set. Never raises."""
    try:
        url = Variable.get(ALERT_WEBHOOK_VARIABLE, default=None) or Variable.get(
            OLD_SLACK_WEBHOOK_VARIABLE, default=None
        )
        if not url:
            return
        req = urllib.request.Request(
            url,
            data=json.dumps({"text": text}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - URL is operator-configured
            resp.read()
        log.info("failure alert sent")
    except Exception as exc:  # alerting must not fail the callback
        log.warning("failure alert not sent: %s", type(exc).__name__)
