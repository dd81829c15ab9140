-- Silver: typed, deduplicated bars keyed by (ticker, timespan, ts).
-- Gold: hourly OHLCV rollups per ticker.

CREATE SCHEMA IF NOT EXISTS silver;
CREATE SCHEMA IF NOT EXISTS gold;

CREATE TABLE silver.bars (
    ticker        text NOT NULL,
    timespan      text NOT NULL,          -- e.g. 1minute, 5minute, 1hour, 1day
    ts            timestamptz NOT NULL,   -- start of the bar, UTC
    open          double precision NOT NULL,
    high          double precision NOT NULL,
    low           double precision NOT NULL,
    close         double precision NOT NULL,
    volume        double precision NOT NULL,
    vwap          double precision,
    trades        bigint,
    execution_id  uuid NOT NULL,
    ingested_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ticker, timespan, ts)
);
CREATE INDEX silver_bars_execution_idx ON silver.bars (execution_id);

CREATE TABLE gold.bars_hourly (
    ticker        text NOT NULL,
    source_timespan text NOT NULL,
    bucket        timestamptz NOT NULL,   -- start of the hour, UTC
    open          double precision NOT NULL,
    high          double precision NOT NULL,
    low           double precision NOT NULL,
    close         double precision NOT NULL,
    volume        double precision NOT NULL,
    vwap          double precision,
    trades        bigint,
    bar_count     integer NOT NULL,
    execution_id  uuid NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ticker, source_timespan, bucket)
);
