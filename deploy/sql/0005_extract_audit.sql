-- One audit record per extract attempt: how the vendor was asked (the
-- request template, never the key), what it answered and what was kept.
CREATE TABLE tickflow.extract_audit (
    execution_id       uuid NOT NULL,
    attempt            integer NOT NULL,
    job_name           text NOT NULL,
    provider           text NOT NULL,
    request_template   text NOT NULL,
    requests           integer NOT NULL,
    retries            integer NOT NULL,
    pages              integer NOT NULL,
    bars               bigint NOT NULL,
    raw_bytes          bigint NOT NULL,
    stored_bytes       bigint NOT NULL,
    http_statuses      jsonb NOT NULL,  -- {"200": 12, "429": 1, "transport": 0}
    vendor_request_ids jsonb NOT NULL,  -- the first 1000
    tickers            jsonb NOT NULL,  -- {"AAPL": {"pages": 1, "bars": 390, "error": null}}
    started_at         timestamptz NOT NULL,
    finished_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (execution_id, attempt)
);
