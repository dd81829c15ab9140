-- Gold in depth: hourly and daily rollups partitioned by month, derived
-- columns (returns, 20-period moving average, realised volatility),
-- completeness against the trading calendar, data-quality results with
-- their alert outbox.
--
-- Derived columns, on both rollup tables, per (ticker, source_timespan),
-- against the previous bucket that exists for that pair:
--   ret     close / previous close - 1 (NULL for the first bucket)
--   log_ret ln(close / previous close)
--   ma20    mean close of the 20 most recent buckets (this one included);
--           NULL until 20 buckets exist
--   vol20   SAMPLE standard deviation (n - 1) of the 20 most recent log
--           returns, NOT annualised (per bucket: hourly or daily); NULL
--           until 20 log returns exist

-- Creates the monthly partitions of gold.<parent> covering [from_d, to_d]
-- that do not exist yet, under a lock so that concurrent writers create
-- each once. Returns how many it made.
CREATE FUNCTION gold.ensure_partitions(parent text, from_d date, to_d date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    m date := date_trunc('month', from_d)::date;
    part text;
    made integer := 0;
    lo text;
    hi text;
BEGIN
    IF parent NOT IN ('bars_hourly', 'bars_daily') THEN
        RAISE EXCEPTION 'no partitioned gold table %', parent;
    END IF;
    WHILE m <= to_d LOOP
        part := parent || '_p' || to_char(m, 'YYYYMM');
        IF to_regclass('gold.' || part) IS NULL THEN
            PERFORM pg_advisory_xact_lock(hashtext('tickflow.gold.partitions'));
            IF to_regclass('gold.' || part) IS NULL THEN
                IF parent = 'bars_hourly' THEN
                    lo := to_char(m, 'YYYY-MM-DD') || ' 00:00:00+00';
                    hi := to_char((m + interval '1 month')::date, 'YYYY-MM-DD') || ' 00:00:00+00';
                ELSE
                    lo := to_char(m, 'YYYY-MM-DD');
                    hi := to_char((m + interval '1 month')::date, 'YYYY-MM-DD');
                END IF;
                EXECUTE format('CREATE TABLE gold.%I PARTITION OF gold.%I'
                               ' FOR VALUES FROM (%L) TO (%L)', part, parent, lo, hi);
                made := made + 1;
            END IF;
        END IF;
        m := (m + interval '1 month')::date;
    END LOOP;
    RETURN made;
END
$$;

ALTER TABLE gold.bars_hourly RENAME TO bars_hourly_v1;
ALTER INDEX gold.bars_hourly_pkey RENAME TO bars_hourly_v1_pkey;

CREATE TABLE gold.bars_hourly (
    ticker          text NOT NULL,
    source_timespan text NOT NULL,
    bucket          timestamptz NOT NULL,   -- start of the UTC hour
    open            double precision NOT NULL,
    high            double precision NOT NULL,
    low             double precision NOT NULL,
    close           double precision NOT NULL,
    volume          double precision,       -- NULL when no bar had a volume
    vwap            double precision,       -- NULL when no volume
    trades          bigint,                 -- NULL when no bar had a count
    bar_count       integer NOT NULL,
    ret             double precision,
    log_ret         double precision,
    ma20            double precision,
    vol20           double precision,
    execution_id    uuid NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ticker, source_timespan, bucket)
) PARTITION BY RANGE (bucket);

CREATE TABLE gold.bars_daily (
    ticker          text NOT NULL,
    source_timespan text NOT NULL,
    trading_day     date NOT NULL,          -- the market's trading day (tf_cal_trading_day)
    market          text NOT NULL CHECK (market IN ('us_equity', 'crypto', 'forex')),
    first_bar       timestamptz NOT NULL,
    last_bar        timestamptz NOT NULL,
    open            double precision NOT NULL,
    high            double precision NOT NULL,
    low             double precision NOT NULL,
    close           double precision NOT NULL,
    volume          double precision,
    vwap            double precision,
    trades          bigint,
    bar_count       integer NOT NULL,
    ret             double precision,
    log_ret         double precision,
    ma20            double precision,
    vol20           double precision,
    execution_id    uuid NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ticker, source_timespan, trading_day)
) PARTITION BY RANGE (trading_day);

-- The hourly rows written before this migration move over.
SELECT gold.ensure_partitions('bars_hourly', min(bucket)::date, max(bucket)::date)
FROM gold.bars_hourly_v1 HAVING count(*) > 0;
INSERT INTO gold.bars_hourly (ticker, source_timespan, bucket, open, high, low, close, volume,
                              vwap, trades, bar_count, execution_id, updated_at)
SELECT ticker, source_timespan, bucket, open, high, low, close, volume, vwap, trades, bar_count,
       execution_id, updated_at
FROM gold.bars_hourly_v1;
DROP TABLE gold.bars_hourly_v1;

-- Completeness of each execution's window per ticker: bars the trading
-- calendar expects against the bars silver holds (ratio NULL when none
-- were expected; it may pass 1 when a source sends bars outside the
-- session).
CREATE TABLE gold.completeness (
    execution_id    uuid NOT NULL,
    job_name        text NOT NULL,
    ticker          text NOT NULL,
    market          text NOT NULL,
    source_timespan text NOT NULL,
    window_start    timestamptz NOT NULL,
    window_end      timestamptz NOT NULL,
    expected        bigint NOT NULL,
    actual          bigint NOT NULL,
    ratio           double precision,
    computed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (execution_id, ticker)
);
CREATE INDEX completeness_job_idx ON gold.completeness (job_name, ticker, window_start);

-- One row per (execution, rule, ticker): what a data-quality rule of the
-- job measured and whether it passed. A failed rule carries its alert's
-- delivery state (the outbox): pending until every configured channel took
-- it (sent), or until the attempts run out (failed).
CREATE TABLE gold.dq_results (
    execution_id    uuid NOT NULL,
    rule_no         integer NOT NULL,          -- index in job_config.dq_rules
    ticker          text NOT NULL,
    job_name        text NOT NULL,
    check_name      text NOT NULL,
    severity        text NOT NULL CHECK (severity IN ('warn', 'fail')),
    value           double precision,          -- NULL: nothing to measure
    threshold       text NOT NULL,             -- "[100, 250]", ">= 0.95", "<= 15"
    threshold_min   double precision,
    threshold_max   double precision,
    passed          boolean NOT NULL,
    message         text NOT NULL,
    checked_at      timestamptz NOT NULL DEFAULT now(),
    alert_state     text NOT NULL DEFAULT 'none'
                    CHECK (alert_state IN ('none', 'pending', 'sent', 'failed')),
    alert_attempts  integer NOT NULL DEFAULT 0,
    alert_channels  text[] NOT NULL DEFAULT '{}',  -- channels that took it
    alert_last_error text,
    alert_next_at   timestamptz,
    alert_sent_at   timestamptz,
    PRIMARY KEY (execution_id, rule_no, ticker)
);
CREATE INDEX dq_results_job_idx ON gold.dq_results (job_name, checked_at);
CREATE INDEX dq_results_pending_idx ON gold.dq_results (alert_next_at)
    WHERE alert_state = 'pending';
