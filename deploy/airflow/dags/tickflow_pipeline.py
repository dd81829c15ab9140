"""tickflow pipeline: one execution per DAG run, driven stage by stage.

``create_execution_id`` makes a UUID (uuid4) and hands it to the stage tasks
through XCom. ``extract``, ``transform`` and ``aggregate`` each POST
``/v1/executions`` with that UUID and ``wait_seconds`` to their service, wait
for the stage record to reach a final status, and fail unless it is SUCCESS.
With no window in the run's conf, extract takes the job's incremental window.

The services also chain by themselves through Kafka. Both paths are safe
together: a stage runs at most once per (execution_id, stage), so a POST that
arrives after the Kafka event (or a task retry) answers with the record that
already exists instead of starting a second run.

Connections ``tickflow_extract``, ``tickflow_transform``,
``tickflow_aggregate``; Variable ``tickflow_alert_webhook_url`` (optional);
retries from TICKFLOW_DAG_RETRIES and TICKFLOW_DAG_RETRY_DELAY_SECONDS at
parse time (default 2, 120 s). See ../README.md.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, Param
from tickflow_stages import (
    POLL_SECONDS,
    STAGE_TIMEOUT,
    STAGES,
    WAIT_SECONDS,
    alert_on_failure,
    retry_settings,
    run_stage,
)

log = logging.getLogger(__name__)

DAG_ID = "tickflow_pipeline"
JOB_NAME = "demo_us_equities"


def create_execution_id() -> str:
    """Return (and so push to XCom) the UUID shared by every stage of this run."""
    execution_id = str(uuid.uuid4())
    log.info("execution_id=%s", execution_id)
    return execution_id


def stage_task(stage: str, **context: Any) -> dict[str, Any]:
    """Run one stage of this run's execution with the run's parameters."""
    params = context["params"]
    request = {
        "execution_id": context["ti"].xcom_pull(task_ids="create_execution_id"),
        "job_name": params["job_name"],
        "window_start": params.get("window_start"),
        "window_end": params.get("window_end"),
    }
    return run_stage(stage, request, int(params["wait_seconds"]), int(params["poll_seconds"]))


retries, retry_delay = retry_settings()

with DAG(
    dag_id=DAG_ID,
    description="tickflow: extract -> transform -> aggregate for one execution UUID",
    schedule="@hourly",
    start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=3),
    default_args={
        "owner": "data-platform",
        "depends_on_past": False,
        "retries": retries,
        "retry_delay": retry_delay,
        "on_failure_callback": alert_on_failure,
    },
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
            python_callable=stage_task,
            op_kwargs={"stage": stage},
            execution_timeout=STAGE_TIMEOUT,
        )
        for stage in STAGES
    ]
    execution_id_task >> stage_tasks[0] >> stage_tasks[1] >> stage_tasks[2]
