-- Backfills: a range split into one execution per UTC day, run with bounded
-- concurrency. An execution of a backfill is released (queued) by the
-- backfill scheduler, never by the sweeper, so that at most `concurrency`
-- of them are in flight.

CREATE TABLE tickflow.backfill (
    backfill_id  uuid PRIMARY KEY,
    job_name     text NOT NULL REFERENCES tickflow.job_config (job_name),
    range_from   date NOT NULL,
    range_to     date NOT NULL,             -- inclusive
    concurrency  integer NOT NULL DEFAULT 2 CHECK (concurrency BETWEEN 1 AND 32),
    created_by   text NOT NULL DEFAULT 'api',
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (range_to >= range_from),
    CHECK (range_to - range_from < 366)
);

ALTER TABLE tickflow.job_execution
    ADD COLUMN backfill_id uuid REFERENCES tickflow.backfill (backfill_id),
    ADD COLUMN released_at timestamptz;

CREATE INDEX job_execution_backfill_idx
    ON tickflow.job_execution (backfill_id, status) WHERE backfill_id IS NOT NULL;

-- Per-job override of the provider's request budget (NULL: the provider's
-- free-tier default).
ALTER TABLE tickflow.job_config
    ADD COLUMN rate_limit_per_minute integer
        CHECK (rate_limit_per_minute IS NULL OR rate_limit_per_minute BETWEEN 1 AND 100000);
