-- Silver in depth.
--
-- silver.bars becomes range-partitioned by ts: one partition per UTC month,
-- created on demand by transform (silver.ensure_bars_partitions) before it
-- loads, plus a DEFAULT partition as a safety net for a month nobody made.
-- The key stays (ticker, timespan, ts); two columns join it:
--   provider    who sent the bar now stored (its lake dataset is
--               <provider>_<timespan>, e.g. polygon_1minute);
--   fetched_at  when extract fetched the bronze page the bar came from (the
--               finish of the extract stage). A load replaces a stored bar
--               only with one fetched at the same time or later, so the
--               latest ingestion wins and a replay of an old execution
--               never undoes a newer correction.
--
-- silver.rejected_bars is the quarantine: every bar transform would not
-- load, with the rule that refused it, the raw item and where it came from.
-- A run deletes its execution's rows before writing its own, so a retry or
-- a replay leaves them once.
--
-- job_execution.upstream_attempt is the attempt of the previous stage a
-- finished run consumed; a newer upstream attempt (a replay) runs the stage
-- again.

ALTER TABLE silver.bars RENAME TO bars_unpartitioned;
ALTER TABLE silver.bars_unpartitioned RENAME CONSTRAINT bars_pkey TO bars_unpartitioned_pkey;
ALTER INDEX silver.silver_bars_execution_idx RENAME TO bars_unpartitioned_execution_idx;

CREATE TABLE silver.bars (
    ticker        text NOT NULL,
    timespan      text NOT NULL,          -- e.g. 1minute, 5minute, 1hour, 1day
    ts            timestamptz NOT NULL,   -- start of the bar, UTC
    open          double precision NOT NULL,
    high          double precision NOT NULL,
    low           double precision NOT NULL,
    close         double precision NOT NULL,
    volume        double precision,
    vwap          double precision,
    trades        bigint,
    execution_id  uuid NOT NULL,
    ingested_at   timestamptz NOT NULL DEFAULT now(),
    provider      text NOT NULL DEFAULT 'polygon',
    fetched_at    timestamptz NOT NULL DEFAULT '-infinity',
    PRIMARY KEY (ticker, timespan, ts)
) PARTITION BY RANGE (ts);

CREATE INDEX silver_bars_execution_idx ON silver.bars (execution_id);
-- The lake's reads: one dataset's bars of one UTC day.
CREATE INDEX silver_bars_span_ts_idx ON silver.bars (timespan, ts);

CREATE TABLE silver.bars_default PARTITION OF silver.bars DEFAULT;

-- Makes the monthly partitions of silver.bars that cover [lo, hi), named
-- bars_YYYY_MM, at most 240 per call (beyond that, bars land in the
-- DEFAULT partition). Bars already in the DEFAULT partition for a new month
-- move into it. Safe when called concurrently: creation is serialised by
-- an advisory lock, and an existing month costs one catalog lookup.
-- Returns how many partitions it made.
CREATE FUNCTION silver.ensure_bars_partitions(lo timestamptz, hi timestamptz)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    m      timestamptz := date_trunc('month', lo AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    next_m timestamptz;
    part   text;
    made   integer := 0;
    months integer := 0;
BEGIN
    WHILE m < hi AND months < 240 LOOP
        next_m := (date_trunc('month', m AT TIME ZONE 'UTC') + interval '1 month')
                  AT TIME ZONE 'UTC';
        part := 'bars_' || to_char(m AT TIME ZONE 'UTC', 'YYYY_MM');
        IF to_regclass('silver.' || part) IS NULL THEN
            PERFORM pg_advisory_xact_lock(hashtext('tickflow.silver.partitions'));
            IF to_regclass('silver.' || part) IS NULL THEN
                IF EXISTS (SELECT 1 FROM silver.bars_default WHERE ts >= m AND ts < next_m) THEN
                    EXECUTE format('CREATE TABLE silver.%I (LIKE silver.bars INCLUDING DEFAULTS)',
                                   part);
                    EXECUTE format('WITH moved AS (DELETE FROM silver.bars_default'
                                   ' WHERE ts >= $1 AND ts < $2 RETURNING *)'
                                   ' INSERT INTO silver.%I SELECT * FROM moved', part)
                        USING m, next_m;
                    EXECUTE format('ALTER TABLE silver.bars ATTACH PARTITION silver.%I'
                                   ' FOR VALUES FROM (%L) TO (%L)', part, m, next_m);
                ELSE
                    EXECUTE format('CREATE TABLE silver.%I PARTITION OF silver.bars'
                                   ' FOR VALUES FROM (%L) TO (%L)', part, m, next_m);
                END IF;
                made := made + 1;
            END IF;
        END IF;
        m := next_m;
        months := months + 1;
    END LOOP;
    RETURN made;
END
$$;

-- The existing rows move over, into the months they need.
SELECT silver.ensure_bars_partitions(m, m + interval '1 day')
  FROM (SELECT DISTINCT date_trunc('month', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS m
          FROM silver.bars_unpartitioned) months;

INSERT INTO silver.bars (ticker, timespan, ts, open, high, low, close, volume, vwap, trades,
                         execution_id, ingested_at, provider, fetched_at)
SELECT b.ticker, b.timespan, b.ts, b.open, b.high, b.low, b.close, b.volume, b.vwap, b.trades,
       b.execution_id, b.ingested_at,
       coalesce((SELECT c.provider FROM tickflow.job_execution e
                   JOIN tickflow.job_config c USING (job_name)
                  WHERE e.execution_id = b.execution_id LIMIT 1), 'polygon'),
       b.ingested_at
  FROM silver.bars_unpartitioned b;

DROP TABLE silver.bars_unpartitioned;

CREATE TABLE silver.rejected_bars (
    execution_id  uuid NOT NULL,
    attempt       integer NOT NULL,
    job_name      text NOT NULL,
    ticker        text NOT NULL,
    timespan      text NOT NULL,
    ts            timestamptz,            -- NULL when the item has no readable time
    rule          text NOT NULL CHECK (rule IN (
                      'not_finite', 'ts_invalid', 'price_not_positive', 'volume_negative',
                      'high_below_low', 'high_below_open_close', 'low_above_open_close',
                      'ts_misaligned', 'outside_window', 'unknown_ticker', 'duplicate')),
    raw           jsonb NOT NULL,         -- the item as the provider sent it
    object_uri    text NOT NULL,          -- the bronze page
    page          integer NOT NULL,
    item          integer NOT NULL,       -- position in the page, from 0
    rejected_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (execution_id, object_uri, item)
);
CREATE INDEX rejected_bars_key_idx ON silver.rejected_bars (ticker, timespan, ts);
CREATE INDEX rejected_bars_rule_idx ON silver.rejected_bars (rule, rejected_at);

ALTER TABLE tickflow.job_execution ADD COLUMN upstream_attempt integer;
