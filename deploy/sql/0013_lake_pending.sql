-- Silver's lake files owed (services/transform/lake.c): transform's
-- transaction that commits silver rows adds one row per (dataset, date)
-- file they touch, and the rebuild of that file deletes the rows it saw
-- (by seq) in the transaction that releases the file's lock. A row that
-- outlives the heartbeat timeout belongs to a transform that died between
-- its commit and its file, or whose write failed (the bucket was away):
-- the sweeper of any transform rebuilds the file from silver then, and
-- lists it on the execution's record.

CREATE TABLE tickflow.lake_pending (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider     text NOT NULL,
    timespan     text NOT NULL,
    day          date NOT NULL,
    execution_id uuid NOT NULL,
    attempt      integer NOT NULL,
    since        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX lake_pending_part_idx ON tickflow.lake_pending (provider, timespan, day);
CREATE INDEX lake_pending_since_idx ON tickflow.lake_pending (since);
