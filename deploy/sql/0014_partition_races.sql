-- Partitions made by two sessions at once. Each function takes an advisory
-- lock and looks again before it creates a partition, but the second look
-- can read a catalog cache that predates the other session's commit (an
-- advisory lock does not refresh it), and the CREATE then failed with
-- duplicate_table (42P07): two transform replicas writing the same new day
-- made one of them fail its run. A partition another session made first is
-- now taken as made.

CREATE OR REPLACE FUNCTION silver.ensure_bars_partitions(lo timestamptz, hi timestamptz)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    d      timestamptz := date_trunc('day', lo AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    next_d timestamptz;
    part   text;
    made   integer := 0;
    days   integer := 0;
BEGIN
    WHILE d < hi AND days < 400 LOOP
        next_d := d + interval '1 day';
        part := 'bars_' || to_char(d AT TIME ZONE 'UTC', 'YYYY_MM_DD');
        IF to_regclass('silver.' || part) IS NULL THEN
            PERFORM pg_advisory_xact_lock(hashtext('tickflow.silver.partitions'));
            IF to_regclass('silver.' || part) IS NULL THEN
                BEGIN
                    IF EXISTS (SELECT 1 FROM silver.bars_default WHERE ts >= d AND ts < next_d) THEN
                        EXECUTE format('CREATE TABLE silver.%I (LIKE silver.bars INCLUDING DEFAULTS)',
                                       part);
                        EXECUTE format('WITH moved AS (DELETE FROM silver.bars_default'
                                       ' WHERE ts >= $1 AND ts < $2 RETURNING *)'
                                       ' INSERT INTO silver.%I SELECT * FROM moved', part)
                            USING d, next_d;
                        EXECUTE format('ALTER TABLE silver.bars ATTACH PARTITION silver.%I'
                                       ' FOR VALUES FROM (%L) TO (%L)', part, d, next_d);
                    ELSE
                        EXECUTE format('CREATE TABLE silver.%I PARTITION OF silver.bars'
                                       ' FOR VALUES FROM (%L) TO (%L)', part, d, next_d);
                    END IF;
                    made := made + 1;
                EXCEPTION WHEN duplicate_table THEN
                    NULL;  -- another session made it first
                END;
            END IF;
        END IF;
        d := next_d;
        days := days + 1;
    END LOOP;
    RETURN made;
END
$$;

CREATE OR REPLACE FUNCTION gold.ensure_partitions(parent text, from_d date, to_d date) RETURNS integer
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
                BEGIN
                    EXECUTE format('CREATE TABLE gold.%I PARTITION OF gold.%I'
                                   ' FOR VALUES FROM (%L) TO (%L)', part, parent, lo, hi);
                    made := made + 1;
                EXCEPTION WHEN duplicate_table THEN
                    NULL;  -- another session made it first
                END;
            END IF;
        END IF;
        m := (m + interval '1 month')::date;
    END LOOP;
    RETURN made;
END
$$;
