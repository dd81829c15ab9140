/*
 * test_int_migrate.c - the schema moves forward on a database that holds
 * data: a database at the previous version (every migration before the last
 * silver change) gets bars in several months, one in the DEFAULT partition,
 * quarantined bars and gold, then the current migrations run as a service
 * starting would run them. Every row is still there with the same values,
 * silver is partitioned by day with its key as the only index, and the
 * partition maker and the key still work on the migrated table.
 *
 * A database that lacks a migration numbered below its newest is refused,
 * never skipped: nothing is applied and the error names the migration.
 * Version 3 (the demo job once seeded there) is retired: a database that
 * applied it migrates on, and a new one gets no job.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"
#include "tf/migrations.h"
#include "tf/pg.h"

/* The version before silver went daily (deploy/sql/0010_silver_daily.sql). */
#define BEFORE 9

static PGconn *db;

static int sql_ok(const char *sql)
{
    PGresult *res = PQexec(db, sql);
    /* A retired migration holds only a comment: an empty query. */
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK ||
             PQresultStatus(res) == PGRES_EMPTY_QUERY;

    CHECK(ok, "%.80s: %s", sql, PQresultErrorMessage(res));
    PQclear(res);
    return ok;
}

/* Applies the embedded migrations up to version last, as tf_pg_migrate() records them. */
static void migrate_to(int last)
{
    sql_ok("CREATE SCHEMA IF NOT EXISTS tickflow;"
           "CREATE TABLE IF NOT EXISTS tickflow.schema_migrations (version int PRIMARY KEY,"
           " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())");
    for (size_t i = 0; i < tf_migrations_count && tf_migrations[i].version <= last; i++) {
        char version[16];
        const char *params[2] = {version, tf_migrations[i].name};
        PGresult *res;

        snprintf(version, sizeof(version), "%d", tf_migrations[i].version);
        sql_ok("BEGIN");
        sql_ok(tf_migrations[i].sql);
        res = PQexecParams(db,
                           "INSERT INTO tickflow.schema_migrations (version, name) VALUES ($1, $2)",
                           2, NULL, params, NULL, NULL, 0);
        CHECK(PQresultStatus(res) == PGRES_COMMAND_OK, "record %s", version);
        PQclear(res);
        sql_ok("COMMIT");
    }
}

/* Every silver row's values, in key order, as one digest. */
static char *silver_digest(void)
{
    return h_pg_value(db,
                      "SELECT count(*) || ':' || md5(coalesce(string_agg(concat_ws('|', ticker,"
                      " timespan, ts, open, high, low, close, volume, vwap, trades, execution_id,"
                      " ingested_at, provider, fetched_at), ',' ORDER BY ticker, timespan, ts),"
                      " '')) FROM silver.bars",
                      0, NULL);
}

static void test_migrate_with_data(void)
{
    char *before, *after, *rejected_before, *rejected_after, *gold_before, *gold_after;
    char err[512];

    migrate_to(BEFORE);
    CHECK_EQ_INT(h_pg_ll(db, "SELECT max(version) FROM tickflow.schema_migrations", 0, NULL),
                 BEFORE);
    /* Bars over two months (made the old way) and one in a month nobody made. */
    sql_ok("SELECT silver.ensure_bars_partitions('2024-02-01', '2024-04-01')");
    sql_ok("INSERT INTO silver.bars (ticker, timespan, ts, open, high, low, close, volume, vwap,"
           " trades, execution_id, provider, fetched_at)"
           " SELECT t, '1minute', timestamptz '2024-02-28 14:30:00+00' + m * interval '1 minute'"
           "  + d * interval '1 day', 100 + m / 7.0, 101 + m / 7.0, 99 + m / 7.0, 100.5 + m / 7.0,"
           "  CASE WHEN m % 5 = 0 THEN NULL ELSE m * 10.0 END,"
           "  CASE WHEN m % 3 = 0 THEN NULL ELSE 100.25 END, CASE WHEN m % 4 = 0 THEN NULL"
           "  ELSE m END, '6a1f0c3e-1111-4a6b-9c1d-000000000001', 'polygon',"
           "  '2024-03-05 00:00:00+00'"
           " FROM unnest(ARRAY['AAPL', 'MSFT', 'X:BTCUSD']) t, generate_series(0, 389) m,"
           "  generate_series(0, 3) d");
    sql_ok("INSERT INTO silver.bars (ticker, timespan, ts, open, high, low, close, volume,"
           " execution_id) VALUES ('LOST', '1minute', '2024-09-02 14:30:00+00', 1, 1, 1, 1, 1,"
           " '6a1f0c3e-1111-4a6b-9c1d-000000000002')");
    CHECK_EQ_INT(h_pg_ll(db, "SELECT count(*) FROM silver.bars_default", 0, NULL), 1);
    sql_ok("INSERT INTO silver.rejected_bars (execution_id, attempt, job_name, ticker, timespan,"
           " ts, rule, raw, object_uri, page, item) VALUES ('6a1f0c3e-1111-4a6b-9c1d-000000000001',"
           " 1, 'job', 'AAPL', '1minute', '2024-02-28 14:30:00+00', 'high_below_low',"
           " '{\"o\":1}', 'bronze/x.json.gz', 1, 0)");
    sql_ok("SELECT gold.ensure_partitions('bars_daily', '2024-02-01', '2024-03-31')");
    sql_ok("INSERT INTO gold.bars_daily (ticker, source_timespan, trading_day, market,"
           " first_bar, last_bar, open, high, low, close, volume, vwap, trades, bar_count,"
           " execution_id) VALUES ('AAPL', '1minute', '2024-02-28', 'us_equity',"
           " '2024-02-28 14:30:00+00', '2024-02-28 20:59:00+00', 1, 2, 0.5, 1.5, 10, 1.2, 3,"
           " 390, '6a1f0c3e-1111-4a6b-9c1d-000000000001')");
    before = silver_digest();
    rejected_before = h_pg_value(db,
                                 "SELECT md5(string_agg(r::text, ',')) FROM"
                                 " silver.rejected_bars r",
                                 0, NULL);
    gold_before =
        h_pg_value(db, "SELECT md5(string_agg(g::text, ',')) FROM gold.bars_daily g", 0, NULL);

    /* What a service does at start. */
    CHECK(tf_pg_migrate(db, err, sizeof(err)) == TF_OK, "migrate: %s", err);
    CHECK_EQ_INT(h_pg_ll(db, "SELECT max(version) FROM tickflow.schema_migrations", 0, NULL),
                 tf_pg_schema_version());

    after = silver_digest();
    rejected_after = h_pg_value(db,
                                "SELECT md5(string_agg(r::text, ',')) FROM"
                                " silver.rejected_bars r",
                                0, NULL);
    gold_after =
        h_pg_value(db, "SELECT md5(string_agg(g::text, ',')) FROM gold.bars_daily g", 0, NULL);
    CHECK(before && after && strcmp(before, after) == 0, "silver kept every value: %s -> %s",
          before ? before : "-", after ? after : "-");
    CHECK(before && strncmp(before, "4681:", 5) == 0, "the rows before: %s", before ? before : "-");
    CHECK(rejected_before && rejected_after && strcmp(rejected_before, rejected_after) == 0,
          "the quarantine kept");
    CHECK(gold_before && gold_after && strcmp(gold_before, gold_after) == 0, "gold kept");
    /* One partition per day that holds bars (4 days, and the lost bar's), none left over. */
    CHECK_EQ_INT(h_pg_ll(db,
                         "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON"
                         " c.oid = i.inhrelid WHERE i.inhparent = 'silver.bars'::regclass"
                         " AND c.relname ~ '^bars_[0-9]{4}_[0-9]{2}_[0-9]{2}$'",
                         0, NULL),
                 5);
    CHECK_EQ_INT(h_pg_ll(db, "SELECT count(*) FROM silver.bars_2024_09_02", 0, NULL), 1);
    CHECK_EQ_INT(h_pg_ll(db, "SELECT count(*) FROM silver.bars_2024_03_01", 0, NULL), 3 * 390);
    CHECK_EQ_INT(h_pg_ll(db, "SELECT count(*) FROM silver.bars_default", 0, NULL), 0);
    CHECK_EQ_INT(h_pg_ll(db,
                         "SELECT count(*) FROM pg_class WHERE relnamespace ="
                         " 'silver'::regnamespace AND relname LIKE 'bars_monthly%'",
                         0, NULL),
                 0);
    CHECK_EQ_INT(h_pg_ll(db,
                         "SELECT count(*) FROM pg_indexes WHERE schemaname = 'silver'"
                         " AND tablename = 'bars'",
                         0, NULL),
                 1);
    /* The key still holds, and the partition maker makes days. */
    {
        PGresult *res = PQexec(db, "INSERT INTO silver.bars (ticker, timespan, ts, open, high, low,"
                                   " close, execution_id) VALUES ('AAPL', '1minute',"
                                   " '2024-02-28 14:30:00+00', 1, 1, 1, 1, gen_random_uuid())");
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        CHECK(state && strcmp(state, "23505") == 0, "a second copy of a bar is refused: %s",
              PQresultErrorMessage(res));
        PQclear(res);
    }
    CHECK_EQ_INT(
        h_pg_ll(db, "SELECT silver.ensure_bars_partitions('2024-05-01', '2024-05-04')", 0, NULL),
        3);
    CHECK_EQ_INT(
        h_pg_ll(db, "SELECT silver.ensure_bars_partitions('2024-05-01', '2024-05-04')", 0, NULL),
        0);
    free(before);
    free(after);
    free(rejected_before);
    free(rejected_after);
    free(gold_before);
    free(gold_after);
}

/* A database whose migrations have a hole below its newest: refused, nothing applied. */
static void test_migrate_hole(void)
{
    char err[512] = "";
    long long tables;
    int newest = tf_pg_schema_version();

    /* The demo job is no migration's: a new database has no job at all. */
    CHECK_EQ_INT(h_pg_ll(db, "SELECT count(*) FROM tickflow.job_config", 0, NULL), 0);
    CHECK(newest > 5, "this binary carries migrations past 5 (%d)", newest);
    /* A database that never ran migration 5 but ran the later ones. */
    sql_ok("DELETE FROM tickflow.schema_migrations WHERE version = 5");
    tables = h_pg_ll(db,
                     "SELECT count(*) FROM pg_tables WHERE schemaname IN ('tickflow',"
                     " 'silver', 'gold')",
                     0, NULL);
    CHECK(tf_pg_migrate(db, err, sizeof(err)) == TF_ERR_CONFLICT, "a hole is refused: %s", err);
    CHECK(strstr(err, "migration 5 (extract_audit)") != NULL, "the error names it: %s", err);
    {
        char at[32];

        snprintf(at, sizeof(at), "at version %d", newest);
        CHECK(strstr(err, at) != NULL, "the error says the database's version: %s", err);
    }
    CHECK(strstr(err, "deploy/sql/0005_extract_audit.sql") != NULL, "and the file: %s", err);
    CHECK_EQ_INT(
        h_pg_ll(db, "SELECT count(*) FROM tickflow.schema_migrations WHERE version = 5", 0, NULL),
        0);
    CHECK_EQ_INT(h_pg_ll(db,
                         "SELECT count(*) FROM pg_tables WHERE schemaname IN ('tickflow',"
                         " 'silver', 'gold')",
                         0, NULL),
                 tables);
    /* Refused again on the next start, and fine once the hole is filled. */
    CHECK(tf_pg_migrate(db, err, sizeof(err)) == TF_ERR_CONFLICT, "refused again");
    sql_ok("INSERT INTO tickflow.schema_migrations (version, name) VALUES (5, 'extract_audit')");
    CHECK(tf_pg_migrate(db, err, sizeof(err)) == TF_OK, "whole again: %s", err);
    CHECK_EQ_INT(h_pg_ll(db, "SELECT count(*) FROM tickflow.schema_migrations", 0, NULL),
                 (long long)tf_migrations_count);
}

/* Version 3 once seeded the demo job: a database that applied it migrates on, keeping its rows. */
static void test_retired_seed(void)
{
    char err[512] = "";

    sql_ok("SET client_min_messages = warning; DROP SCHEMA tickflow CASCADE;"
           " DROP SCHEMA silver CASCADE; DROP SCHEMA gold CASCADE");
    migrate_to(2);
    /* What 0003_seed_demo.sql did until it was retired. */
    sql_ok("INSERT INTO tickflow.job_config (job_name, provider, tickers, multiplier, timespan,"
           " interval_seconds, overlap_seconds, updated_by) VALUES ('demo_us_equities', 'polygon',"
           " ARRAY['AAPL', 'MSFT', 'AMZN'], 1, 'minute', 86400, 300, 'seed')");
    sql_ok("INSERT INTO tickflow.schema_migrations (version, name) VALUES (3, 'seed_demo')");
    CHECK(tf_pg_migrate(db, err, sizeof(err)) == TF_OK, "on from version 3: %s", err);
    CHECK_EQ_INT(h_pg_ll(db, "SELECT max(version) FROM tickflow.schema_migrations", 0, NULL),
                 tf_pg_schema_version());
    CHECK_EQ_INT(h_pg_ll(db,
                         "SELECT count(*) FROM tickflow.job_config WHERE job_name ="
                         " 'demo_us_equities' AND updated_by = 'seed'",
                         0, NULL),
                 1);
}

int main(void)
{
    const char *base = getenv("TICKFLOW_PG_DSN");
    char name[64], dsn[1024];

    setvbuf(stdout, NULL, _IOLBF, 0);
    snprintf(name, sizeof(name), "tickflow_migrate_%ld", (long)getpid());
    if (!base || h_pg_create_db(base, name, dsn, sizeof(dsn)) != 0) {
        CHECK(0, "no database (TICKFLOW_PG_DSN=%s)", base ? base : "unset");
        return check_summary();
    }
    db = PQconnectdb(dsn);
    CHECK(PQstatus(db) == CONNECTION_OK, "connect: %s", PQerrorMessage(db));
    if (PQstatus(db) == CONNECTION_OK) {
        test_migrate_with_data();
        test_migrate_hole();
        test_retired_seed();
    }
    PQfinish(db);
    h_pg_drop_db(base, name);
    return check_summary();
}
