"""tickflow daily: yesterday's trading day for a job, once a day (D-1).

Each run covers one UTC day, [D 00:00Z, D+1 00:00Z): the run's data
interval, which the daily timetable ends at the midnight that closes the
day, so the run that starts just after midnight takes the day before.
``day`` in the run's conf names another day.

``plan_day`` asks extract's calendar (``GET /v1/jobs/{job}/days``) what the
day is for the job's markets: a closed day (weekend, holiday) skips the
stages, and the run still succeeds. Otherwise it hands on the execution's
UUID, ``uuid5(DAILY_NAMESPACE, "<job>/<YYYY-MM-DD>")``: the same for every
run of that job and day, so a retry, a re-run, a catch-up and a backfill
all converge on one execution per day (the services answer a known UUID
with its record, and run a failed stage again while it has attempts left).
Then ``extract``, ``transform`` and ``aggregate`` run it as
tickflow_pipeline does.

Connections, the alert Variable and the retry settings are those of
tickflow_pipeline; the alert names the day's UUID. See ../README.md.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator, ShortCircuitOperator
from airflow.sdk import DAG, CronDataIntervalTimetable, Param
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

DAG_ID = "tickflow_daily"
JOB_NAME = "demo_us_equities"
STAGES = ("extract", "transform", "aggregate")
# uuid5(DAILY_NAMESPACE, "<job>/<YYYY-MM-DD>") is a day's execution UUID.
DAILY_NAMESPACE = uuid.UUID("142d1aa0-c640-4dfd-9a5d-5e0d7ae75dc0")


def daily_execution_id(job_name: str, day: date) -> str:
    """The one execution UUID of job_name's day."""
    return str(uuid.uuid5(DAILY_NAMESPACE, f"{job_name}/{day.isoformat()}"))


def run_day(context: Any) -> date:
    """The UTC day this run covers: conf's ``day``, else the day its data interval starts."""
    given = context["params"].get("day")
    if given:
        return date.fromisoformat(given)
    return context["data_interval_start"].astimezone(timezone.utc).date()


def plan_day(**context: Any) -> dict[str, Any] | bool:
    """The day's execution (to XCom), or False when the job's markets are closed that day."""
    job_name = context["params"]["job_name"]
    day = run_day(context)
    start = datetime.combine(day, time(0, 0), tzinfo=timezone.utc)
    end = start + timedelta(days=1)
    if end > datetime.now(timezone.utc):
        raise AirflowFailException(f"{day} has not ended yet (UTC); run it after {end.isoformat()}")
    calendar = call("extract", "GET", f"/v1/jobs/{job_name}/days?from={day}&to={day}")
    states = {d.get("day"): d.get("state") for d in calendar.get("days", [])}
    state = states.get(day.isoformat())
    if state is None:
        raise AirflowFailException(f"extract's calendar of job {job_name} has no {day}: {calendar}")
    if state == "closed":
        log.info("job %s: %s is closed for its markets; nothing to run", job_name, day)
        return False
    plan = {
        "execution_id": daily_execution_id(job_name, day),
        "job_name": job_name,
        "day": day.isoformat(),
        "window_start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "window_end": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    log.info("job %s: %s is %s: execution_id=%s", job_name, day, state, plan["execution_id"])
    return plan


def run_stage(stage: str, **context: Any) -> dict[str, Any]:
    """POST the day's execution to one stage, wait until its record is final, fail unless SUCCESS."""
    plan = context["ti"].xcom_pull(task_ids="plan_day")
    if not plan:
        raise AirflowFailException("no plan from plan_day")
    params = context["params"]
    execution_id = plan["execution_id"]
    wait_seconds = int(params["wait_seconds"])
    body = {
        "execution_id": execution_id,
        "job_name": plan["job_name"],
        "window_start": plan["window_start"],
        "window_end": plan["window_end"],
        "wait_seconds": wait_seconds,
    }
    log.info(
        "%s: POST /v1/executions execution_id=%s job=%s day=%s",
        stage,
        execution_id,
        plan["job_name"],
        plan["day"],
    )
    record = call(stage, "POST", "/v1/executions", body, timeout=wait_seconds + 30)
    record = wait_final(stage, execution_id, record, int(params["poll_seconds"]))
    if record.get("status") != "SUCCESS":
        raise AirflowException(
            f"{stage}: execution {execution_id} ended {record.get('status')}: {record.get('error') or 'no error given'}"
        )
    log.info("%s: execution %s SUCCESS", stage, execution_id)
    return record


def alert_on_failure(context: dict[str, Any]) -> None:
    """Log a task that failed for good and post it to the alert webhook. Never raises."""
    plan = None
    with contextlib.suppress(Exception):  # alerting must not fail
        plan = context["task_instance"].xcom_pull(task_ids="plan_day")
    job_name = context.get("params", {}).get("job_name")
    execution_id = None
    if isinstance(plan, dict):
        job_name, execution_id = plan.get("job_name", job_name), plan.get("execution_id")
    text = failure_text(context, job_name, execution_id)
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
    description="tickflow: yesterday's trading day, one execution per (job, day)",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=3,
    dagrun_timeout=timedelta(hours=3),
    default_args=default_args,
    params={
        "job_name": Param(JOB_NAME, type="string", minLength=1),
        "day": Param(
            None,
            type=["null", "string"],
            pattern=r"^\d{4}-\d{2}-\d{2}$",
            description="YYYY-MM-DD (UTC); empty: the day of the run's data interval",
        ),
        "wait_seconds": Param(WAIT_SECONDS, type="integer", minimum=0, maximum=3600),
        "poll_seconds": Param(POLL_SECONDS, type="integer", minimum=0),
    },
    tags=["tickflow"],
    doc_md=__doc__,
) as dag:
    plan_task = ShortCircuitOperator(task_id="plan_day", python_callable=plan_day)
    stage_tasks = [
        PythonOperator(
            task_id=stage,
            python_callable=run_stage,
            op_kwargs={"stage": stage},
            execution_timeout=STAGE_TIMEOUT,
        )
        for stage in STAGES
    ]
    plan_task >> stage_tasks[0] >> stage_tasks[1] >> stage_tasks[2]
