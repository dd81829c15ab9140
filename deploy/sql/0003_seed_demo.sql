-- The demo job: three liquid US equities, 1-minute bars.
INSERT INTO tickflow.job_config (job_name, provider, tickers, multiplier, timespan,
                                 interval_seconds, overlap_seconds, updated_by)
VALUES ('demo_us_equities', 'polygon', ARRAY['AAPL', 'MSFT', 'AMZN'], 1, 'minute',
        86400, 300, 'seed')
ON CONFLICT (job_name) DO NOTHING;
