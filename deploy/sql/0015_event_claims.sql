-- One publisher per unpublished stage event. A finished record whose event
-- has not gone out is re-published by a sweeper; with two replicas of a
-- stage, both sweepers (and the worker still waiting on a broker that was
-- away) could publish it, and the event went out two or three times. A
-- sweeper now claims the records it publishes, and claims only those whose
-- worker has had its whole delivery timeout.

ALTER TABLE tickflow.job_execution ADD COLUMN IF NOT EXISTS event_claimed_at timestamptz;
