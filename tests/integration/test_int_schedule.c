/*
 * test_int_schedule.c - the scheduler's round (extract_schedule_round)
 * against the real PostgreSQL, with the clock given: eight replicas taking
 * the same twenty due ticks at once start exactly one execution each;
 * ticks missed during an outage start one execution whose window reaches
 * back to the last good one (at most 31 days); a tick with no complete bar
 * to fetch starts nothing and says why; a tick while the last scheduled
 * execution is in flight waits, and starts once that execution ends; a
 * disabled job is never taken.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "extract/schedule.h"
#include "harness.h"
#include "tf/exec.h"
#include "tf/pg.h"
#include "tf/time.h"
#include "tf/tz.h"

#define RACE_JOBS     20
#define RACE_REPLICAS 8

static PGconn *db;
static char dsn[1024];

/* Adds job (X:BTCUSD, 1-minute bars, an hour's interval, 5 minutes' overlap), every
 * minute on the schedule, its next tick at due. */
static void add_job(const char *job, int enabled, int64_t due)
{
    char due_s[24];
    const char *params[3] = {job, enabled ? "t" : "f", due_s};

    snprintf(due_s, sizeof(due_s), "%lld", (long long)due);
    CHECK(
        h_sql(db,
              "INSERT INTO tickflow.job_config (job_name, provider, tickers, multiplier, timespan,"
              " interval_seconds, overlap_seconds, enabled)"
              " VALUES ($1, 'polygon', '{X:BTCUSD}', 1, 'minute', 3600, 300, $2)",
              2, params) == 0,
        "job %s", job);
    CHECK(h_sql(db,
                "INSERT INTO tickflow.job_schedule (job_name, spec, next_at)"
                " VALUES ($1, '{\"every_seconds\": 60}', to_timestamp($2::bigint))",
                2, (const char *const[]){job, due_s}) == 0,
          "schedule %s", job);
}

/* Records a finished extract of job whose window ends at end, as an earlier run leaves it. */
static void add_done(const char *job, int64_t end, const char *status)
{
    char id[TF_UUID_LEN + 1], end_s[24];
    const char *params[4] = {id, job, end_s, status};

    tf_uuid_new(id);
    snprintf(end_s, sizeof(end_s), "%lld", (long long)end);
    CHECK(h_sql(db,
                "INSERT INTO tickflow.job_execution (execution_id, stage, job_name, status,"
                " window_start, window_end, tickers, started_at, finished_at)"
                " VALUES ($1, 'extract', $2, $4, to_timestamp($3::bigint) - interval '1 hour',"
                " to_timestamp($3::bigint), '{X:BTCUSD}', now(), CASE WHEN $4 = 'SUCCESS'"
                " THEN now() END)",
                4, params) == 0,
          "finished run of %s", job);
    if (strcmp(status, "SUCCESS") != 0)
        CHECK(h_sql(db,
                    "UPDATE tickflow.job_schedule SET last_execution_id = $1 WHERE job_name = $2",
                    2, params) == 0,
              "last execution of %s", job);
}

static long long count(const char *sql, const char *job)
{
    const char *params[1] = {job};

    return h_pg_ll(db, sql, job ? 1 : 0, params);
}

static char *value(const char *sql, const char *job)
{
    const char *params[1] = {job};

    return h_pg_value(db, sql, 1, params);
}

struct replica {
    pthread_barrier_t *go;
    int64_t now;
    int taken;
    int started;
};

static void *replica_main(void *arg)
{
    struct replica *r = arg;
    PGconn *conn = PQconnectdb(dsn);
    struct tf_exec_ids ids = {NULL, 0};

    pthread_barrier_wait(r->go);
    r->taken = PQstatus(conn) == CONNECTION_OK ? extract_schedule_round(conn, r->now, &ids) : -2;
    r->started = ids.n;
    tf_exec_ids_cleanup(&ids);
    PQfinish(conn);
    return NULL;
}

static void test_race(void)
{
    int64_t now = tf_time_now();
    int64_t due = now - now % 60;
    pthread_barrier_t go;
    pthread_t thr[RACE_REPLICAS];
    struct replica rep[RACE_REPLICAS];
    int taken = 0, started = 0, failed = 0;
    struct tf_exec_ids ids = {NULL, 0};

    for (int i = 0; i < RACE_JOBS; i++) {
        char job[32];

        snprintf(job, sizeof(job), "race_%02d", i);
        add_job(job, 1, due);
    }
    pthread_barrier_init(&go, NULL, RACE_REPLICAS);
    for (int i = 0; i < RACE_REPLICAS; i++) {
        rep[i] = (struct replica){&go, now, 0, 0};
        pthread_create(&thr[i], NULL, replica_main, &rep[i]);
    }
    for (int i = 0; i < RACE_REPLICAS; i++) {
        pthread_join(thr[i], NULL);
        failed += rep[i].taken < 0;
        taken += rep[i].taken > 0 ? rep[i].taken : 0;
        started += rep[i].started;
    }
    pthread_barrier_destroy(&go);
    CHECK_EQ_INT(failed, 0);
    CHECK_EQ_INT(taken, RACE_JOBS);
    CHECK_EQ_INT(started, RACE_JOBS);
    CHECK_EQ_INT(count("SELECT count(*) FROM tickflow.job_execution WHERE job_name LIKE 'race_%'"
                       " AND stage = 'extract' AND trigger = 'schedule' AND status = 'PENDING'",
                       NULL),
                 RACE_JOBS);
    CHECK_EQ_INT(count("SELECT count(DISTINCT job_name) FROM tickflow.job_execution"
                       " WHERE job_name LIKE 'race_%'",
                       NULL),
                 RACE_JOBS);
    /* Each row: its tick recorded, the next one the minute after, the execution linked. */
    {
        char due_s[24];
        const char *params[1] = {due_s};

        snprintf(due_s, sizeof(due_s), "%lld", (long long)due);
        CHECK_EQ_INT(h_pg_ll(db,
                             "SELECT count(*) FROM tickflow.job_schedule s"
                             " WHERE job_name LIKE 'race_%' AND last_outcome = 'started'"
                             " AND last_at = to_timestamp($1::bigint)"
                             " AND next_at = to_timestamp($1::bigint) + interval '1 minute'"
                             " AND EXISTS (SELECT 1 FROM tickflow.job_execution e"
                             "   WHERE e.execution_id = s.last_execution_id"
                             "   AND e.job_name = s.job_name)",
                             1, params),
                     RACE_JOBS);
    }
    /* The same instant again: nothing is due any more. */
    CHECK_EQ_INT(extract_schedule_round(db, now, &ids), 0);
    CHECK_EQ_INT(ids.n, 0);
    tf_exec_ids_cleanup(&ids);
}

static void test_catch_up(void)
{
    int64_t now = tf_time_now();
    int64_t minute = now - now % 60;
    struct tf_exec_ids ids = {NULL, 0};
    char *outcome, *window;
    char want[128], a[32], b[32];

    /* Down for ten minutes: the last good window ended then, ten ticks went by. */
    add_job("outage", 1, minute - 600);
    add_done("outage", minute - 600, "SUCCESS");
    CHECK_EQ_INT(extract_schedule_round(db, now, &ids), 1);
    CHECK_EQ_INT(ids.n, 1);
    CHECK_EQ_INT(count("SELECT count(*) FROM tickflow.job_execution WHERE job_name = $1"
                       " AND trigger = 'schedule'",
                       "outage"),
                 1);
    outcome = value("SELECT last_outcome FROM tickflow.job_schedule WHERE job_name = $1", "outage");
    CHECK(outcome && strcmp(outcome, "started (10 missed ticks caught up in one window)") == 0,
          "outcome: %s", outcome ? outcome : "(none)");
    free(outcome);
    /* One window: from the last end less the overlap to now, on the minute. */
    window = ids.n
                 ? h_pg_value(db,
                              "SELECT window_start || '/' || window_end FROM tickflow.job_execution"
                              " WHERE execution_id = $1",
                              1, (const char *const[]){ids.id[0]})
                 : NULL;
    tf_time_format(minute - 600 - 300, a, sizeof(a));
    tf_time_format(minute, b, sizeof(b));
    snprintf(want, sizeof(want), "%s/%s", a, b);
    {
        char s1[24], s2[24];
        char *w;

        snprintf(s1, sizeof(s1), "%lld", (long long)(minute - 900));
        snprintf(s2, sizeof(s2), "%lld", (long long)minute);
        w = h_pg_value(db, "SELECT to_timestamp($1::bigint) || '/' || to_timestamp($2::bigint)", 2,
                       (const char *const[]){s1, s2});
        CHECK(window && w && strcmp(window, w) == 0, "window %s, want %s (%s)",
              window ? window : "(none)", w ? w : "?", want);
        free(w);
    }
    free(window);
    CHECK_EQ_INT(count("SELECT count(*) FROM tickflow.job_schedule WHERE job_name = $1"
                       " AND next_at > now() AND next_at <= now() + interval '1 minute'",
                       "outage"),
                 1);
    tf_exec_ids_cleanup(&ids);

    /* Forty days behind: one window of 31 days, no more. */
    add_job("far_behind", 1, minute - 40 * 86400);
    add_done("far_behind", minute - 40 * 86400, "SUCCESS");
    CHECK_EQ_INT(extract_schedule_round(db, now, &ids), 1);
    CHECK_EQ_INT(count("SELECT extract(epoch FROM window_end - window_start)::bigint"
                       " FROM tickflow.job_execution WHERE job_name = $1 AND trigger = 'schedule'",
                       "far_behind"),
                 31LL * 86400);
    CHECK_EQ_INT(count("SELECT count(*) FROM tickflow.job_execution WHERE job_name = $1"
                       " AND trigger = 'schedule'",
                       "far_behind"),
                 1);
    tf_exec_ids_cleanup(&ids);
}

static void test_skips(void)
{
    int64_t now = tf_time_now();
    int64_t minute = now - now % 60;
    struct tf_exec_ids ids = {NULL, 0};
    char *outcome;

    /* In flight: the last scheduled execution is still RUNNING. */
    add_job("busy", 1, minute);
    add_done("busy", minute - 60, "RUNNING");
    /* Up to date: the last good window ends at this minute. */
    add_job("current", 1, minute);
    add_done("current", minute, "SUCCESS");
    /* Disabled: due, but never taken. */
    add_job("off", 0, minute - 3600);

    /* Only "current" is taken: it starts nothing and says why. */
    CHECK_EQ_INT(extract_schedule_round(db, now, &ids), 1);
    CHECK_EQ_INT(ids.n, 0);
    CHECK_EQ_INT(count("SELECT count(*) FROM tickflow.job_execution WHERE job_name IN"
                       " ('busy', 'current', 'off') AND trigger = 'schedule'",
                       NULL),
                 0);
    outcome =
        value("SELECT last_outcome FROM tickflow.job_schedule WHERE job_name = $1", "current");
    CHECK(outcome && strstr(outcome, "skipped: job current is up to date"), "current: %s",
          outcome ? outcome : "(none)");
    free(outcome);
    CHECK_EQ_INT(count("SELECT count(*) FROM tickflow.job_schedule WHERE job_name = $1"
                       " AND next_at > now()",
                       "current"),
                 1);
    /* "busy" waits, still due, until its execution ends; then its tick starts at once. */
    CHECK_EQ_INT(count("SELECT count(*) FROM tickflow.job_schedule WHERE job_name = $1"
                       " AND next_at <= now() AND last_at IS NULL",
                       "busy"),
                 1);
    CHECK_EQ_INT(extract_schedule_round(db, now, &ids), 0);
    CHECK(h_sql(db,
                "UPDATE tickflow.job_execution SET status = 'SUCCESS', finished_at = now()"
                " WHERE job_name = 'busy'",
                0, NULL) == 0,
          "busy's execution ends");
    CHECK_EQ_INT(extract_schedule_round(db, now, &ids), 1);
    CHECK_EQ_INT(ids.n, 1);
    outcome = value("SELECT last_outcome FROM tickflow.job_schedule WHERE job_name = $1", "busy");
    CHECK(outcome && strcmp(outcome, "started") == 0, "busy: %s", outcome ? outcome : "(none)");
    free(outcome);
    CHECK_EQ_INT(count("SELECT count(*) FROM tickflow.job_execution WHERE job_name = $1"
                       " AND trigger = 'schedule'",
                       "busy"),
                 1);
    /* "off" is never taken. */
    CHECK_EQ_INT(count("SELECT count(*) FROM tickflow.job_schedule WHERE job_name = $1"
                       " AND next_at < now() - interval '59 minutes' AND last_at IS NULL",
                       "off"),
                 1);
    tf_exec_ids_cleanup(&ids);
}

int main(void)
{
    const char *base = getenv("TICKFLOW_PG_DSN");
    char dbname[64], err[512];

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!base) {
        CHECK(0, "TICKFLOW_PG_DSN must be set (tests/env/up.sh)");
        return check_summary();
    }
    snprintf(dbname, sizeof(dbname), "tickflow_schedule_%ld", (long)getpid());
    if (h_pg_create_db(base, dbname, dsn, sizeof(dsn)) != 0) {
        CHECK(0, "cannot create database %s", dbname);
        return check_summary();
    }
    db = PQconnectdb(dsn);
    CHECK(PQstatus(db) == CONNECTION_OK, "connect");
    CHECK(tf_pg_migrate(db, err, sizeof(err)) == TF_OK, "migrate: %s", err);
    test_race();
    test_catch_up();
    test_skips();
    PQfinish(db);
    h_pg_drop_db(base, dbname);
    tf_tz_cleanup();
    return check_summary();
}
