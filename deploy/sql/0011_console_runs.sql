-- The console's list of runs (GET /v1/runs): executions newest first, keyed
-- by their extract record's (created_at, window_start, execution_id), all of
-- them or one job's, read a page at a time from an index however many
-- executions there are.

CREATE INDEX job_execution_runs_idx
    ON tickflow.job_execution (created_at, window_start, execution_id)
    WHERE stage = 'extract';
CREATE INDEX job_execution_job_runs_idx
    ON tickflow.job_execution (job_name, created_at, window_start, execution_id)
    WHERE stage = 'extract';
-- The runs with a stage not (yet) successful, for the console's FAILED and
-- RUNNING filters: a few rows, however many runs succeeded.
CREATE INDEX job_execution_unsettled_idx
    ON tickflow.job_execution (status, execution_id)
    WHERE status <> 'SUCCESS';
