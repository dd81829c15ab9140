"""tickflow pipeline: one execution per DAG run, driven stage by stage.

``create_execution_id`` makes a UUID (uuid4) and hands it to the stage tasks
through XCom. ``extract``, ``transform`` and ``aggregate`` each POST
``/v1/executions`` with that UUID and ``wait_seconds`` to their service, wait
for the stage record to reach a final status, and fail unless it is SUCCESS.
With no window in the run's conf, extract takes the job's incremental window.

The services also chain by themselves through Kafka. Both paths are safe
together: a stage runs at most once per (execution_id, stage), so a POST that
arrives after the Kafka event (or a task retry) answers with the record that
already exists instead of starting a second run; a retry of a FAILED stage
runs it again while the job has attempts left.

Connections ``tickflow_extract``, ``tickflow_transform``,
``tickflow_aggregate``; Variable ``tickflow_alert_webhook_url`` (optional);
retries 2, 2 minutes apart, unless TICKFLOW_DAG_RETRIES /
TICKFLOW_DAG_RETRY_DELAY_SECONDS say otherwise where the DAG is parsed.
See ../README.md.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, Param
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from tickflow_stages import (
    POLL_SECONDS,
    STAGE_TIMEOUT,
    WAIT_SECONDS,
    call,
    failure_text,
    post_alert,
    retry_overrides,
    wait_final,
)

log = logging.getLogger(__name__)

DAG_ID = "tickflow_pipeline"
JOB_NAME = "demo_us_equities"
STAGES = ("extract", "transform", "aggregate")


def create_execution_id() -> str:
    """Return (and so push to XCom) the UUID shared by every stage of this run."""
    execution_id = str(uuid.uuid4())
    log.info("execution_id=%s", execution_id)
    return execution_id


def run_stage(stage: str, **context: Any) -> dict[str, Any]:
    """POST this run's execution to one stage, wait until its record is final, fail unless SUCCESS."""
    params = context["params"]
    execution_id = context["ti"].xcom_pull(task_ids="create_execution_id")
    if not execution_id:
        raise AirflowFailException("no execution_id from create_execution_id")
    wait_seconds = int(params["wait_seconds"])
    body: dict[str, Any] = {
        "execution_id": execution_id,
        "job_name": params["job_name"],
        "wait_seconds": wait_seconds,
    }
    for key in ("window_start", "window_end"):
        if params.get(key):
            body[key] = params[key]
    log.info("%s: POST /v1/executions execution_id=%s job=%s", stage, execution_id, body["job_name"])
    record = call(stage, "POST", "/v1/executions", body, timeout=wait_seconds + 30)
    record = wait_final(stage, execution_id, record, int(params["poll_seconds"]))
    if record.get("status") != "SUCCESS":
        # Retried by Airflow: the same execution_id is POSTed again and the
        # service runs the failed stage again while it has attempts left.
        raise AirflowException(
            f"{stage}: execution {execution_id} ended {record.get('status')}: {record.get('error') or 'no error given'}"
        )
    log.info(
        "%s: execution %s SUCCESS, window %s to %s",
        stage,
        execution_id,
        record.get("window_start"),
        record.get("window_end"),
    )
    return record


def alert_on_failure(context: dict[str, Any]) -> None:
    """Log a task that failed for good and post it to the alert webhook. Never raises."""
    execution_id = None
    with contextlib.suppress(Exception):  # alerting must not fail
        execution_id = context["task_instance"].xcom_pull(task_ids="create_execution_id")
    text = failure_text(context, context.get("params", {}).get("job_name"), execution_id)
    log.error(text)
    post_alert(text)


default_args = {
    "owner": "data-platform",
    "depends_on_past": False,
    "retries": 2,
    "retry_delay": timedelta(minutes=2),
    "on_failure_callback": alert_on_failure,
}
default_args.update(retry_overrides())

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
