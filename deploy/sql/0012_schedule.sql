-- The built-in schedule (services/extract/schedule.c): one row per job that
-- carries a "schedule", with the spec as PUT /v1/jobs/{job} gave it, the
-- next tick (NULL: never again) and what the last tick did. A replica takes
-- a due row with FOR UPDATE SKIP LOCKED and moves next_at past now in the
-- same transaction that inserts the execution, so each tick starts at most
-- one execution however many replicas run.

CREATE TABLE tickflow.job_schedule (
    job_name          text PRIMARY KEY REFERENCES tickflow.job_config (job_name) ON DELETE CASCADE,
    spec              jsonb NOT NULL,
    next_at           timestamptz,
    last_at           timestamptz,           -- the tick last taken (its due time)
    last_fired_at     timestamptz,           -- when a replica took it
    last_outcome      text,                  -- started, skipped: <why>, error: <why>
    last_execution_id uuid,                  -- the execution the schedule started last
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_schedule_due_idx ON tickflow.job_schedule (next_at) WHERE next_at IS NOT NULL;

-- Executions the schedule starts say so.
ALTER TABLE tickflow.job_execution DROP CONSTRAINT job_execution_trigger_check;
ALTER TABLE tickflow.job_execution ADD CONSTRAINT job_execution_trigger_check
    CHECK (trigger IN ('http', 'kafka', 'sweep', 'schedule'));
