-- Control schema: job configuration and one execution record per
-- (execution_id, stage). Status moves are compare-and-set UPDATEs.

CREATE TABLE tickflow.job_config (
    job_name          text PRIMARY KEY
                      CHECK (job_name ~ '^[a-z][a-z0-9_]{0,62}$'),
    provider          text NOT NULL CHECK (provider IN ('polygon', 'twelvedata')),
    dataset           text NOT NULL DEFAULT 'aggs',
    tickers           text[] NOT NULL CHECK (cardinality(tickers) BETWEEN 1 AND 5000),
    multiplier        integer NOT NULL DEFAULT 1 CHECK (multiplier BETWEEN 1 AND 1440),
    timespan          text NOT NULL DEFAULT 'minute'
                      CHECK (timespan IN ('minute', 'hour', 'day')),
    adjusted          boolean NOT NULL DEFAULT true,
    page_limit        integer NOT NULL DEFAULT 50000 CHECK (page_limit BETWEEN 1 AND 50000),
    interval_seconds  integer NOT NULL DEFAULT 3600 CHECK (interval_seconds > 0),
    overlap_seconds   integer NOT NULL DEFAULT 300 CHECK (overlap_seconds >= 0),
    max_attempts      integer NOT NULL DEFAULT 3 CHECK (max_attempts BETWEEN 1 AND 20),
    lake_prefix       text,
    dq_rules          jsonb NOT NULL DEFAULT '[]',
    enabled           boolean NOT NULL DEFAULT true,
    updated_by        text NOT NULL DEFAULT 'migration',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (overlap_seconds < interval_seconds)
);

CREATE TABLE tickflow.job_execution (
    execution_id       uuid NOT NULL,
    stage              text NOT NULL CHECK (stage IN ('extract', 'transform', 'aggregate')),
    job_name           text NOT NULL REFERENCES tickflow.job_config (job_name),
    status             text NOT NULL DEFAULT 'PENDING'
                       CHECK (status IN ('PENDING', 'RUNNING', 'SUCCESS', 'FAILED', 'ZOMBIE')),
    attempt            integer NOT NULL DEFAULT 0,
    max_attempts       integer NOT NULL DEFAULT 3,
    trigger            text NOT NULL DEFAULT 'http' CHECK (trigger IN ('http', 'kafka', 'sweep')),
    window_start       timestamptz NOT NULL,
    window_end         timestamptz NOT NULL,
    tickers            text[] NOT NULL,
    objects            jsonb NOT NULL DEFAULT '[]',
    records_in         bigint NOT NULL DEFAULT 0,
    records_out        bigint NOT NULL DEFAULT 0,
    records_rejected   bigint NOT NULL DEFAULT 0,
    error              text,
    worker_id          text,
    event_published_at timestamptz,
    heartbeat_at       timestamptz,
    started_at         timestamptz,
    finished_at        timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (execution_id, stage),
    CHECK (window_end > window_start)
);

CREATE INDEX job_execution_job_idx
    ON tickflow.job_execution (job_name, stage, status, window_end);
CREATE INDEX job_execution_unpublished_idx
    ON tickflow.job_execution (stage, finished_at)
    WHERE event_published_at IS NULL AND status IN ('SUCCESS', 'FAILED');
CREATE INDEX job_execution_running_idx
    ON tickflow.job_execution (stage, heartbeat_at) WHERE status = 'RUNNING';
