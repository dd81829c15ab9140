-- Request budgets per provider key, shared by every replica: a token bucket
-- that holds up to a minute's worth of requests and refills continuously.
-- The bucket is named by a hash of the key, never the key.
CREATE TABLE tickflow.rate_bucket (
    bucket      text PRIMARY KEY,            -- provider:sha256(key)[0:16]
    tokens      double precision NOT NULL,
    per_minute  integer NOT NULL CHECK (per_minute > 0),
    updated_at  timestamptz NOT NULL
);

-- What a running stage is doing right now, for people watching it
-- (e.g. waiting for the provider's request budget).
ALTER TABLE tickflow.job_execution ADD COLUMN detail text;

-- How long an extract attempt waited for its request budget.
ALTER TABLE tickflow.extract_audit ADD COLUMN quota_wait_ms bigint NOT NULL DEFAULT 0;
