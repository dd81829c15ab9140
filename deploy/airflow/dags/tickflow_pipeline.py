"""tickflow pipeline: one execution per DAG run, driven stage by stage.

``create_execution_id`` makes a UUID (uuid4) and hands it to the stage tasks
through XCom. ``extract``, ``transform`` and ``aggregate`` each POST
``/v1/executions`` with that UUID and ``wait_seconds`` to their service, wait
for the stage record to reach a final status, and fail unless it is SUCCESS.

The services also chain by themselves through Kafka. Both paths are safe
together: a stage runs at most once per (execution_id, stage), so a POST that
arrives after the Kafka event (or a task retry) answers with the record that
already exists instead of starting a second run.

Connections (HTTP type, Login empty, Password = the service's API token when
TICKFLOW_API_TOKEN is set): ``tickflow_extract``, ``tickflow_transform``,
``tickflow_aggregate``. Optional Variable ``tickflow_slack_webhook_url``: a
Slack incoming-webhook URL for failure alerts. See ../README.md.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow import DAG
from airflow.exceptions import AirflowException, AirflowFailException
from airflow.models import Variable
from airflow.models.param import Param
from airflow.operators.python import PythonOperator
from airflow.providers.http.hooks.http import HttpHook

log = logging.getLogger(__name__)

DAG_ID = "tickflow_pipeline"
JOB_NAME = "demo_us_equities"
STAGES = ("extract", "transform", "aggregate")
CONN_IDS = {stage: f"tickflow_{stage}" for stage in STAGES}
SLACK_WEBHOOK_VARIABLE = "tickflow_slack_webhook_url"

WAIT_SECONDS = 300  # server-side wait of one POST
POLL_SECONDS = 1800  # then poll GET /v1/executions/{id} this long
POLL_INTERVAL = 10
STAGE_TIMEOUT = timedelta(seconds=WAIT_SECONDS + POLL_SECONDS + 300)

PENDING_STATUSES = {"PENDING", "RUNNING"}
# A retry cannot fix these: bad request, auth, unknown job, conflicting body.
NON_RETRYABLE_HTTP = {400, 401, 403, 404, 409, 413, 422}


def create_execution_id() -> str:
    """Return (and so push to XCom) the UUID shared by every stage of this run."""
    execution_id = str(uuid.uuid4())
    log.info("execution_id=%s", execution_id)
    return execution_id


def _headers(conn_id: str) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    token = HttpHook.get_connection(conn_id).password
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _record(stage: str, response: Any) -> dict[str, Any]:
    code = response.status_code
    if code in NON_RETRYABLE_HTTP:
        raise AirflowFailException(f"{stage}: HTTP {code}: {response.text[:500]}")
    if code >= 300:
        raise AirflowException(f"{stage}: HTTP {code}: {response.text[:500]}")
    try:
        return response.json()
    except ValueError as exc:
        raise AirflowException(f"{stage}: HTTP {code} without a JSON body") from exc


def run_stage(stage: str, **context: Any) -> dict[str, Any]:
    """POST the execution to one stage and wait until its record is final."""
    execution_id = context["ti"].xcom_pull(task_ids="create_execution_id")
    if not execution_id:
        raise AirflowFailException("no execution_id from create_execution_id")
    params = context["params"]
    wait_seconds = int(params["wait_seconds"])
    body: dict[str, Any] = {
        "execution_id": execution_id,
        "job_name": params["job_name"],
        "wait_seconds": wait_seconds,
    }
    for key in ("window_start", "window_end"):
        if params.get(key):
            body[key] = params[key]

    conn_id = CONN_IDS[stage]
    headers = _headers(conn_id)
    options = {"check_response": False, "timeout": wait_seconds + 30}
    log.info("%s: POST /v1/executions execution_id=%s job=%s", stage, execution_id, body["job_name"])
    response = HttpHook(method="POST", http_conn_id=conn_id).run(
        "/v1/executions", data=json.dumps(body), headers=headers, extra_options=options
    )
    record = _record(stage, response)

    getter = HttpHook(method="GET", http_conn_id=conn_id)
    deadline = time.monotonic() + int(params["poll_seconds"])
    while record.get("status") in PENDING_STATUSES and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL)
        record = _record(
            stage,
            getter.run(
                f"/v1/executions/{execution_id}",
                headers=headers,
                extra_options={"check_response": False, "timeout": 30},
            ),
        )

    status = record.get("status")
    if record.get("execution_id") not in (None, execution_id):
        raise AirflowFailException(f"{stage}: answer for another execution: {record.get('execution_id')}")
    if status != "SUCCESS":
        # Retried by Airflow: the same execution_id is POSTed again and the
        # service answers with (or resumes) that stage's record.
        raise AirflowException(
            f"{stage}: execution {execution_id} ended {status}: {record.get('error') or 'no error given'}"
        )
    log.info("%s: execution %s SUCCESS %s", stage, execution_id, json.dumps(record, sort_keys=True)[:1000])
    return record


def alert_on_failure(context: dict[str, Any]) -> None:
    """Log the failure and, when configured, post it to Slack. Never raises."""
    ti = context.get("task_instance")
    execution_id = None
    with contextlib.suppress(Exception):  # alerting must not fail
        execution_id = ti.xcom_pull(task_ids="create_execution_id") if ti else None
    text = (
        f":red_circle: tickflow {DAG_ID}.{getattr(ti, 'task_id', '?')} failed"
        f" run={context.get('run_id')} execution_id={execution_id}"
        f" error={str(context.get('exception'))[:500]}"
        f" log={getattr(ti, 'log_url', '')}"
    )
    log.error(text)
    try:
        url = Variable.get(SLACK_WEBHOOK_VARIABLE, default_var=None)
        if url:
            req = urllib.request.Request(
                url,
                data=json.dumps({"text": text}).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - URL is operator-configured
                resp.read()
    except Exception as exc:  # pragma: no cover - alerting must not fail
        log.warning("Slack alert not sent: %s", type(exc).__name__)


default_args = {
    "owner": "data-platform",
    "depends_on_past": False,
    "retries": 2,
    "retry_delay": timedelta(minutes=2),
    "on_failure_callback": alert_on_failure,
}

with DAG(
    dag_id=DAG_ID,
    description="tickflow: extract -> transform -> aggregate for one execution UUID",
    schedule="@hourly",
    start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=3),
    default_args=default_args,
    params={
        "job_name": Param(JOB_NAME, type="string", minLength=1),
        "window_start": Param(None, type=["null", "string"], description="ISO-8601; empty: incremental"),
        "window_end": Param(None, type=["null", "string"], description="ISO-8601; empty: now"),
        "wait_seconds": Param(WAIT_SECONDS, type="integer", minimum=0, maximum=3600),
        "poll_seconds": Param(POLL_SECONDS, type="integer", minimum=0),
    },
    tags=["tickflow"],
    doc_md=__doc__,
) as dag:
    execution_id_task = PythonOperator(
        task_id="create_execution_id",
        python_callable=create_execution_id,
    )
    stage_tasks = [
        PythonOperator(
            task_id=stage,
            python_callable=run_stage,
            op_kwargs={"stage": stage},
            execution_timeout=STAGE_TIMEOUT,
        )
        for stage in STAGES
    ]
    execution_id_task >> stage_tasks[0] >> stage_tasks[1] >> stage_tasks[2]
