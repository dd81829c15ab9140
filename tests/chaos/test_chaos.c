/*
 * test_chaos.c - the chaos suite: real processes, two replicas of each
 * stage sharing the Kafka consumer groups, a workload of executions over
 * three jobs (one of them a backfill), and one fault per trial at a random
 * moment. Each trial runs on a stack of its own (database, topic prefix,
 * lake) and is checked against a clean run of the same workload:
 *
 *   - every execution ends, SUCCESS (an execution FAILED only where the
 *     fault says so, the lake full while extract lands bronze, and then it
 *     is POSTed again as an orchestrator's retry would);
 *   - silver, gold and the silver Parquet files equal the clean run's
 *     (digests of the rows; sha256 of each file);
 *   - no window lost (each job's gaps as in the clean run), no file owed;
 *   - per topic, one event per finished stage run, and the DLQ empty.
 *
 * Faults: SIGKILL of a replica of any stage while it runs a stage (extract
 * mid-download, transform mid-COPY), restarted soon or only at the end;
 * SIGSTOP of a transform or aggregate replica past its lease, then SIGCONT
 * (its late commit must be refused); a Kafka broker restart; a PostgreSQL
 * restart; 5xx and 429 storms from the provider; the lake's volume full
 * for a moment (a tmpfs filled to ENOSPC; root only, else skipped).
 *
 * Recovery is the time from the fault (or the end of an outage) until the
 * affected stage runs again: its run taken over, or any stage progressing.
 * The suite ends with
 *   chaos: trials=N converged=N lost=0 duplicated=0 max_recovery_s=S p50_recovery_s=S
 *
 * TF_CHAOS_TRIALS (default 30) trials; trial i uses seed TF_CHAOS_SEED + i
 * (default 1). To replay one: TF_CHAOS_SEED=<seed> TF_CHAOS_TRIALS=1,
 * and TF_CHAOS_FAULT=<name> to force its fault.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "check.h"
#include "harness.h"
#include "tf/exec.h"

#define API_KEY     "chaos-Key-3c81e5"
#define SEED        41
#define NEXEC       7 /* 4 POSTed, 3 backfill days */
#define NSTAGE      3
#define BACKFILL_ID "7c0f3a52-1b9e-4d7a-9a61-2f55c2b0c001"

enum fault {
    F_NONE,
    F_KILL_EXTRACT,
    F_KILL_TRANSFORM,
    F_KILL_AGGREGATE,
    F_STOP_TRANSFORM,
    F_STOP_AGGREGATE,
    F_KAFKA_RESTART,
    F_PG_RESTART,
    F_STORM_5XX,
    F_STORM_429,
    F_LAKE_FULL,
    F_COUNT
};

static const char *const fault_names[F_COUNT] = {
    "none",           "kill-extract",   "kill-transform", "kill-aggregate",
    "stop-transform", "stop-aggregate", "kafka-restart",  "pg-restart",
    "storm-5xx",      "storm-429",      "lake-full"};

static const char *const stage_names[NSTAGE] = {"extract", "transform", "aggregate"};
static const char *const topics[NSTAGE] = {"tickflow.bronze.v1", "tickflow.silver.v1",
                                           "tickflow.gold.v1"};

/* The POSTed executions: job, day; the backfill covers 2024-03-06..08. */
static const struct {
    const char *id, *job, *day;
} posted[4] = {
    {"7c0f3a52-1b9e-4d7a-9a61-2f55c2b0a001", "chaos_a", "2024-03-04"},
    {"7c0f3a52-1b9e-4d7a-9a61-2f55c2b0a002", "chaos_a", "2024-03-05"},
    {"7c0f3a52-1b9e-4d7a-9a61-2f55c2b0b001", "chaos_b", "2024-03-04"},
    {"7c0f3a52-1b9e-4d7a-9a61-2f55c2b0b002", "chaos_b", "2024-03-05"},
};

/* What a trial leaves, compared with the clean run's. */
struct outcome {
    char silver[80], rejected[80], hourly[80], daily[80], completeness[80], dq[80];
    char records[200]; /* each stage's records in and out, summed over its runs */
    char *parquet;     /* "key sha256\n" per silver file, sorted */
    char *gaps;        /* each job's gaps */
    long silver_rows, parquet_files;
};

struct trial {
    int no;
    uint64_t seed;
    enum fault fault;
    double recovery; /* -1: none measured */
    double t_db;     /* PostgreSQL's clock at the fault, or at the end of an outage */
    int stages;      /* the stages it affected (bit 1 << stage), for backlog_delay */
    int reposted;
    int converged;
    char what[200];
};

static struct h_stack st;
static struct h_proc rep_b[NSTAGE]; /* the second replica of each stage */
static const char *env_b[NSTAGE][40];
static char wid_b[NSTAGE][32];
static char lake_mount[700];
static int have_tmpfs;
static uint64_t rng;

static double recoveries[100000];
static int nrecoveries;
static int undrained; /* services killed after SIGTERM did not stop them */

static uint64_t next_rand(void)
{
    /* xorshift64* */
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 2685821657736338717ULL;
}

/* A uniform double in [lo, hi). */
static double uniform(double lo, double hi)
{
    return lo + (hi - lo) * (double)(next_rand() >> 11) / 9007199254740992.0;
}

static int pick(int n)
{
    return (int)(next_rand() % (uint64_t)n);
}

/* ---- the database, which a fault may take away for a moment ---- */

static PGconn *db(void)
{
    if (PQstatus(st.db) != CONNECTION_OK)
        PQreset(st.db);
    return st.db;
}

/* A one-value query, retried over a PostgreSQL restart (LLONG_MIN on failure). */
static long long q_ll(const char *sql, int n, const char *const *params)
{
    long long v = LLONG_MIN;

    for (int i = 0; i < 100 && v == LLONG_MIN; i++) {
        v = h_pg_ll(db(), sql, n, params);
        if (v == LLONG_MIN)
            h_sleep_ms(100);
    }
    return v;
}

static char *q_str(const char *sql, int n, const char *const *params)
{
    char *v = NULL;

    for (int i = 0; i < 100 && !v; i++) {
        v = h_pg_value(db(), sql, n, params);
        if (!v)
            h_sleep_ms(100);
    }
    return v;
}

/* Seconds on PostgreSQL's clock, which the records' times use. */
static double db_now(void)
{
    char *v = q_str("SELECT extract(epoch FROM clock_timestamp())::text", 0, NULL);
    double t = v ? strtod(v, NULL) : 0;

    free(v);
    return t;
}

/* ---- processes ---- */

static struct h_proc *replica(int stage, int r)
{
    return r == 0 ? &st.procs[H_EXTRACT + stage] : &rep_b[stage];
}

static int start_b(int stage)
{
    char name[32];

    snprintf(name, sizeof(name), "%s-b", stage_names[stage]);
    return h_start(&rep_b[stage], name, st.bin[H_EXTRACT + stage], rep_b[stage].port, st.dir,
                   env_b[stage]);
}

static int restart(int stage, int r)
{
    return r == 0 ? h_stack_restart(&st, H_EXTRACT + stage) : start_b(stage);
}

static void kill9(struct h_proc *p)
{
    if (p->pid > 0) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
    }
    p->pid = 0;
}

/* Runs tests/env/<script> <action>, output to the stack's env.log. */
static int env_script(const char *script, const char *action)
{
    char cmd[1200];

    snprintf(cmd, sizeof(cmd), "bash tests/env/%s %s >> '%s/env.log' 2>&1", script, action, st.dir);
    return system(cmd);
}

/* ---- the workload ---- */

static int add_job(const char *job, const char *prefix, int ntickers)
{
    return h_add_job_tickers(st.db, job, prefix, ntickers);
}

static long post(int port, const char *path, const char *body)
{
    struct h_resp r;
    long status = 0;

    if (h_http("POST", port, path, body, NULL, &r) == 0)
        status = r.status;
    h_resp_free(&r);
    return status;
}

static long post_execution(int i, int port)
{
    char body[400];

    snprintf(body, sizeof(body),
             "{\"execution_id\":\"%s\",\"job_name\":\"%s\",\"window_start\":\"%sT00:00:00Z\","
             "\"window_end\":\"%sT23:59:00Z\"}",
             posted[i].id, posted[i].job, posted[i].day, posted[i].day);
    return post(port, "/v1/executions", body);
}

/* Posts the workload, spread over both extract replicas; 0 when all taken. */
static int post_workload(void)
{
    int bad = 0;

    for (int i = 0; i < 4; i++) {
        long s = post_execution(i, replica(0, i % 2)->port);
        bad += s != 202 && s != 200;
    }
    bad += post(replica(0, 1)->port, "/v1/backfills",
                "{\"backfill_id\":\"" BACKFILL_ID "\",\"job_name\":\"chaos_c\","
                "\"from\":\"2024-03-06\",\"to\":\"2024-03-08\",\"concurrency\":2}") != 202;
    return bad;
}

/* 1 once every execution has ended: each chain at a final aggregate, or stopped at a FAILED stage;
 * and no lake file is owed. */
static int converged(void)
{
    return q_ll("SELECT ((SELECT count(*) FROM tickflow.job_execution"
                "  WHERE status NOT IN ('SUCCESS', 'FAILED')) = 0"
                " AND (SELECT count(DISTINCT execution_id) FROM tickflow.job_execution"
                "  WHERE (stage = 'aggregate' AND status = 'SUCCESS') OR status = 'FAILED') = 7"
                " AND (SELECT count(*) FROM tickflow.lake_pending) = 0)::int",
                0, NULL) == 1;
}

static int wait_converged(int seconds)
{
    char *state;

    for (double t0 = h_now_s(); h_now_s() - t0 < h_timeout(seconds);) {
        if (converged())
            return 1;
        h_sleep_ms(200);
    }
    state = q_str("SELECT coalesce(string_agg(stage || ' ' || status || ' ' || n, ', '), '-')"
                  " || '; owed ' || (SELECT count(*) FROM tickflow.lake_pending)"
                  " FROM (SELECT stage, status, count(*) AS n FROM tickflow.job_execution"
                  " GROUP BY 1, 2 ORDER BY 1, 2) s",
                  0, NULL);
    printf("# not converged: %s\n", state ? state : "?");
    free(state);
    return 0;
}

/* Extract records FAILED: POSTed again (an orchestrator's retry). Returns how many. */
static int retry_failed(const char *expect_error, int *unexpected)
{
    int n = 0;
    PGresult *res =
        PQexec(db(), "SELECT execution_id, job_name, coalesce(error, ''),"
                     " to_char(window_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
                     " to_char(window_end AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
                     " FROM tickflow.job_execution WHERE status = 'FAILED'"
                     " ORDER BY execution_id, stage");

    for (int i = 0; PQresultStatus(res) == PGRES_TUPLES_OK && i < PQntuples(res); i++) {
        char body[400];
        const char *err = PQgetvalue(res, i, 2);

        if (!expect_error || !strstr(err, expect_error)) {
            printf("# unexpected FAILED %s: %s\n", PQgetvalue(res, i, 0), err);
            (*unexpected)++;
            continue;
        }
        snprintf(body, sizeof(body),
                 "{\"execution_id\":\"%s\",\"job_name\":\"%s\",\"window_start\":\"%s\","
                 "\"window_end\":\"%s\"}",
                 PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 3),
                 PQgetvalue(res, i, 4));
        long status = post(replica(0, pick(2))->port, "/v1/executions", body);
        if (status / 100 == 2)
            n++;
        else
            printf("# POST again of %s: %ld\n", PQgetvalue(res, i, 0), status);
    }
    PQclear(res);
    return n;
}

/* ---- the outcome ---- */

/*
 * count:md5 of a table's rows less their *_at columns (times of writing)
 * and the column named by also (NULL: none).
 */
static void digest(const char *table, const char *also, char out[80])
{
    char sql[800], schema[16], name[48];
    const char *params[3] = {schema, name, also ? also : ""};
    char *v;

    sscanf(table, "%15[^.].%47s", schema, name);
    snprintf(
        sql, sizeof(sql),
        "SELECT count(*) || ':' || coalesce(md5(string_agg(j::text, '|' ORDER BY j::text)), '-')"
        " FROM (SELECT to_jsonb(t) - ARRAY(SELECT column_name::text"
        "  FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2"
        "  AND (column_name LIKE '%%\\_at' OR column_name = $3)) AS j FROM %s t) s",
        table); /* the test's own table names */
    v = q_str(sql, 3, params);
    snprintf(out, 80, "%s", v ? v : "error");
    free(v);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *parquet_listing(long *nfiles)
{
    cJSON *uris = h_lake_list(&st);
    int n = cJSON_GetArraySize(uris), k = 0;
    char **lines = calloc((size_t)n + 1, sizeof(*lines));
    struct tf_buf out;

    tf_buf_init(&out, 4096);
    for (int i = 0; i < n; i++) {
        const char *uri = cJSON_GetArrayItem(uris, i)->valuestring;
        const char *key = strstr(uri, "/lake/silver/");
        char sha[65], line[600];

        if (!key || !strstr(key, ".parquet"))
            continue;
        h_lake_sha256(&st, uri, sha);
        snprintf(line, sizeof(line), "%s %s\n", key + 6, sha);
        lines[k++] = strdup(line);
    }
    qsort(lines, (size_t)k, sizeof(*lines), cmp_str);
    for (int i = 0; i < k; i++) {
        if (tf_buf_puts(&out, lines[i]) != TF_OK)
            printf("# out of memory\n");
        free(lines[i]);
    }
    free(lines);
    cJSON_Delete(uris);
    *nfiles = k;
    return strdup(out.data ? out.data : "");
}

static char *gaps(void)
{
    static const char *const jobs[3] = {"chaos_a", "chaos_b", "chaos_c"};
    struct tf_buf out;

    tf_buf_init(&out, 1024);
    for (int j = 0; j < 3; j++) {
        char path[200];
        struct h_resp r;

        snprintf(path, sizeof(path),
                 "/v1/jobs/%s/gaps?from=2024-03-04T00:00:00Z&to=2024-03-09T00:00:00Z", jobs[j]);
        enum tf_rc rc;

        if (h_http("GET", replica(0, j % 2)->port, path, NULL, NULL, &r) == 0 && r.status == 200)
            rc = tf_buf_printf(&out, "%s: %s\n", jobs[j], r.body);
        else
            rc = tf_buf_printf(&out, "%s: status %ld\n", jobs[j], r.status);
        if (rc != TF_OK)
            printf("# out of memory\n");
        h_resp_free(&r);
    }
    return strdup(out.data ? out.data : "");
}

/* With TF_CHAOS_DUMP=<dir>: the trial's gold.bars_daily and hourly rows into files there. */
static void dump(int no)
{
    const char *dir = getenv("TF_CHAOS_DUMP");
    char cmd[2400];

    if (!dir)
        return;
    snprintf(cmd, sizeof(cmd),
             "psql -q '%s' -c \"\\copy (SELECT * FROM gold.bars_daily ORDER BY 1, 2, 3) TO"
             " '%s/daily-%d.tsv'\" -c \"\\copy (SELECT * FROM gold.bars_hourly ORDER BY 1, 2, 3)"
             " TO '%s/hourly-%d.tsv'\"",
             st.dsn, dir, no, dir, no);
    if (system(cmd) != 0)
        printf("# dump failed\n");
}

static void outcome_read(struct outcome *o, int no)
{
    dump(no);
    memset(o, 0, sizeof(*o));
    digest("silver.bars", NULL, o->silver);
    digest("silver.rejected_bars", NULL, o->rejected);
    /* A day's rollup names the last execution that computed it: two windows
     * touch a trading day, and either may run last. */
    digest("gold.bars_hourly", "execution_id", o->hourly);
    digest("gold.bars_daily", "execution_id", o->daily);
    digest("gold.completeness", NULL, o->completeness);
    digest("gold.dq_results", NULL, o->dq);
    o->silver_rows = strtol(o->silver, NULL, 10);
    {
        char *v = q_str("SELECT string_agg(stage || ' ' || sum_in || '/' || sum_out, ', '"
                        " ORDER BY stage) FROM (SELECT stage, sum(records_in) AS sum_in,"
                        " sum(records_out) AS sum_out FROM tickflow.job_execution"
                        " GROUP BY stage) s",
                        0, NULL);
        snprintf(o->records, sizeof(o->records), "%s", v ? v : "error");
        free(v);
    }
    o->parquet = parquet_listing(&o->parquet_files);
    o->gaps = gaps();
}

static void outcome_free(struct outcome *o)
{
    free(o->parquet);
    free(o->gaps);
}

/* The events of a topic: distinct (execution, attempt, status) and all. */
struct events {
    char seen[64][80];
    int distinct;
    long total;
};

static void note_event(void *arg, const rd_kafka_message_t *msg)
{
    struct events *ev = arg;
    cJSON *j = msg->payload ? cJSON_ParseWithLength(msg->payload, msg->len) : NULL;
    char k[80];

    ev->total++;
    snprintf(k, sizeof(k), "%s/%g/%s", h_jstr(j, "execution_id") ? h_jstr(j, "execution_id") : "-",
             h_jnum(j, "attempt"), h_jstr(j, "status") ? h_jstr(j, "status") : "-");
    cJSON_Delete(j);
    for (int i = 0; i < ev->distinct; i++)
        if (strcmp(ev->seen[i], k) == 0)
            return;
    if (ev->distinct < 64)
        snprintf(ev->seen[ev->distinct++], sizeof(ev->seen[0]), "%s", k);
}

/* ---- faults ---- */

/* Waits (up to seconds) for a RUNNING record of stage; its id, attempt and worker out. */
static int wait_running(int stage, double seconds, char id[40], int *attempt, char worker[200])
{
    const char *params[1] = {stage_names[stage]};

    for (double t0 = h_now_s(); h_now_s() - t0 < seconds;) {
        PGresult *res = PQexecParams(db(),
                                     "SELECT execution_id, attempt, worker_id"
                                     " FROM tickflow.job_execution WHERE stage = $1"
                                     " AND status = 'RUNNING' AND worker_id IS NOT NULL LIMIT 1",
                                     1, NULL, params, NULL, NULL, 0);
        int found = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;

        if (found) {
            snprintf(id, 40, "%s", PQgetvalue(res, 0, 0));
            *attempt = atoi(PQgetvalue(res, 0, 1));
            snprintf(worker, 200, "%s", PQgetvalue(res, 0, 2));
        }
        PQclear(res);
        if (found)
            return 1;
        if (converged())
            return 0;
        h_sleep_ms(10);
    }
    return 0;
}

/* The replica whose worker id is worker. */
static int replica_of(int stage, const char *worker)
{
    return strcmp(worker, wid_b[stage]) == 0 ? 1 : 0;
}

/* Seconds from t0 (h_now_s) until the run (id, stage) is claimed past attempt, or has ended at
 * that attempt; -1 on timeout. */
static double wait_taken(const char *id, int stage, int attempt, double t0, int seconds)
{
    const char *params[2] = {id, stage_names[stage]};

    while (h_now_s() - t0 < h_timeout(seconds)) {
        char *v = q_str("SELECT attempt || ' ' || status FROM tickflow.job_execution"
                        " WHERE execution_id = $1 AND stage = $2",
                        2, params);
        int a = v ? atoi(v) : 0;
        int done = v && (strstr(v, "SUCCESS") || strstr(v, "FAILED"));

        free(v);
        if (a > attempt || (a == attempt && done))
            return h_now_s() - t0;
        h_sleep_ms(50);
    }
    return -1;
}

/* Seconds from the end of an outage (t_db: PostgreSQL's clock then, t0: ours) until a stage run
 * starts or ends; 0 when nothing was left to do. */
static double wait_progress(double t_db, double t0, int seconds)
{
    char t[40];
    const char *params[1] = {t};

    snprintf(t, sizeof(t), "%.6f", t_db);
    if (converged())
        return 0;
    while (h_now_s() - t0 < h_timeout(seconds)) {
        if (q_ll("SELECT count(*) FROM tickflow.job_execution"
                 " WHERE started_at > to_timestamp($1::float8)"
                 " OR finished_at > to_timestamp($1::float8)",
                 1, params) > 0)
            return h_now_s() - t0;
        if (converged())
            return h_now_s() - t0;
        h_sleep_ms(50);
    }
    return -1;
}

/*
 * The longest a run of the affected stages waited because of the fault:
 * for each run claimed after it, from the later of the fault and the
 * moment the run was ready (its upstream finished; extract: created or
 * released) until its claim. Read once every execution has ended.
 */
static double backlog_delay(const struct trial *t)
{
    char tf[40], mask[8];
    const char *params[2] = {tf, mask};
    char *v;
    double d;

    snprintf(tf, sizeof(tf), "%.6f", t->t_db);
    snprintf(mask, sizeof(mask), "%d", t->stages);
    v = q_str(
        "SELECT coalesce(max(extract(epoch FROM s.started_at) - greatest($1::float8,"
        "  extract(epoch FROM coalesce(u.finished_at, s.released_at, s.created_at)))), 0)::text"
        " FROM tickflow.job_execution s LEFT JOIN tickflow.job_execution u"
        "  ON u.execution_id = s.execution_id AND u.stage = CASE s.stage"
        "   WHEN 'transform' THEN 'extract' WHEN 'aggregate' THEN 'transform' END"
        " WHERE extract(epoch FROM s.started_at) > $1::float8"
        "  AND ($2::int & CASE s.stage WHEN 'extract' THEN 1 WHEN 'transform' THEN 2"
        "   ELSE 4 END) <> 0",
        2, params);
    d = v ? strtod(v, NULL) : -1;
    free(v);
    return d;
}

/* Fills the lake's tmpfs until a write fails with ENOSPC; the ballast's path out. */
static int fill_lake(char *ballast, size_t len)
{

    static char block[1 << 20];
    int fd;

    if (snprintf(ballast, len, "%s/.ballast", lake_mount) >= (int)len)
        return -1;
    fd = open(ballast, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    for (;;) {
        ssize_t w = write(fd, block, sizeof(block));
        if (w < (ssize_t)sizeof(block))
            break;
    }
    /* The last bytes too, a few at a time. */
    while (write(fd, block, 512) > 0)
        ;
    close(fd);
    return 0;
}

/* A kill or stop of the replica running a stage: out the seconds until another attempt took the
 * run (-1 when none was caught RUNNING). */
static void fault_process(struct trial *t, int stage, int stop)
{
    char id[40] = "", worker[200] = "";
    int attempt = 0, r;
    struct h_proc *p;
    double t0;

    if (!wait_running(stage, h_timeout(60), id, &attempt, worker)) {
        r = pick(2);
        p = replica(stage, r);
        if (stop)
            snprintf(t->what, sizeof(t->what), "%s-%c: nothing running to stop", stage_names[stage],
                     "ab"[r]);
        else {
            kill9(p);
            CHECK_EQ_INT(restart(stage, r), 0);
            snprintf(t->what, sizeof(t->what), "%s-%c killed with nothing running",
                     stage_names[stage], "ab"[r]);
        }
        return;
    }
    r = replica_of(stage, worker);
    p = replica(stage, r);
    t0 = h_now_s();
    t->t_db = db_now();
    t->stages = 1 << stage;
    if (stop) {
        /* Past the lease, then on again: its late commit must be refused. */
        double hold = uniform(11, 14);
        kill(p->pid, SIGSTOP);
        t->recovery = wait_taken(id, stage, attempt, t0, (int)hold);
        while (h_now_s() - t0 < hold)
            h_sleep_ms(50);
        kill(p->pid, SIGCONT);
        if (t->recovery < 0) /* it held its run's row locked: it finishes it itself */
            t->recovery = wait_taken(id, stage, attempt, t0, 60);
        snprintf(t->what, sizeof(t->what), "%s-%c stopped %.1f s running %.8s attempt %d",
                 stage_names[stage], "ab"[r], hold, id, attempt);
        return;
    }
    kill9(p);
    if (pick(2)) {
        /* Restarted at once, or after a while; replica b under the same worker id. */
        double after = uniform(0, 4);
        while (h_now_s() - t0 < after)
            h_sleep_ms(20);
        CHECK_EQ_INT(restart(stage, r), 0);
        snprintf(t->what, sizeof(t->what), "%s-%c killed running %.8s, restarted after %.1f s",
                 stage_names[stage], "ab"[r], id, after);
        t->recovery = wait_taken(id, stage, attempt, t0, 60);
    } else {
        t->recovery = wait_taken(id, stage, attempt, t0, 60);
        CHECK_EQ_INT(restart(stage, r), 0);
        snprintf(t->what, sizeof(t->what), "%s-%c killed running %.8s, left to the survivor",
                 stage_names[stage], "ab"[r], id);
    }
}

static void fault_outage(struct trial *t, const char *script)
{
    /* Outages both shorter and longer than a Kafka consumer's 6 s session. */
    double down = uniform(0.5, 15);
    double t0 = h_now_s(), t_db;

    h_sleep_ms((int)uniform(0, 1500));
    CHECK_EQ_INT(env_script(script, "down"), 0);
    while (h_now_s() - t0 < down)
        h_sleep_ms(50);
    {
        /* The server's own start may fail once (say, a port still held); the suite tests
         * tickflow, so it tries again before it counts a failure. */
        int rc = env_script(script, "up");
        for (int i = 0; rc != 0 && i < 2; i++) {
            h_sleep_ms(2000);
            rc = env_script(script, "up");
        }
        CHECK_EQ_INT(rc, 0);
    }
    t0 = h_now_s();
    t_db = db_now();
    t->t_db = t_db;
    t->stages = 7;
    t->recovery = wait_progress(t_db, t0, 90);
    snprintf(t->what, sizeof(t->what), "%s down %.1f s", script, down);
}

static void fault_storm(struct trial *t, int code)
{
    char rules[2000];
    int n = 0, len;

    /* Each of some tickers: up to 4 failures in a row, within the 5 tries of a request. */
    len = snprintf(rules, sizeof(rules), "{\"rules\":[");
    for (int i = 0; i < 6; i++) {
        static const char *const tick[6] = {"CA0000", "CA0001", "CA0002",
                                            "CB0000", "CC0001", "CC0002"};
        if (pick(3) == 0)
            continue;
        len += snprintf(rules + len, sizeof(rules) - (size_t)len,
                        "%s{\"fault\":%d,\"ticker\":\"%s\",\"times\":%d%s}", n ? "," : "", code,
                        tick[i], 1 + pick(4), code == 429 ? ",\"retry_after\":1" : "");
        n++;
    }
    snprintf(rules + len, sizeof(rules) - (size_t)len, "]}");
    CHECK_EQ_INT(h_sim_faults(st.procs[H_MARKETSIM].port, rules), 200);
    snprintf(t->what, sizeof(t->what), "%d rules of %d", n, code);
}

/* ---- a trial ---- */

static int mount_lake(const char *tag)
{
    const char *top = getenv("TF_TEST_DIR") ? getenv("TF_TEST_DIR") : ".run/test";
    char cmd[1400], dir[600];

    snprintf(dir, sizeof(dir), "%s/%s-%ld", top, tag, (long)getpid());
    snprintf(lake_mount, sizeof(lake_mount), "%s/lake", dir);
    mkdir(top, 0755);
    mkdir(dir, 0755);
    mkdir(lake_mount, 0755);
    if (geteuid() != 0)
        return 0;
    snprintf(cmd, sizeof(cmd), "mount -t tmpfs -o size=48m tickflow-chaos '%s' 2>/dev/null",
             lake_mount);
    return system(cmd) == 0;
}

static void unmount_lake(void)
{
    char cmd[800];

    if (!have_tmpfs)
        return;
    snprintf(cmd, sizeof(cmd), "umount '%s' 2>/dev/null", lake_mount);
    if (system(cmd) != 0)
        printf("# could not unmount %s\n", lake_mount);
}

static int start_trial(struct trial *t)
{
    static char wenv[NSTAGE][48];
    char tag[32];
    int n;

    snprintf(tag, sizeof(tag), "chaos%d", t->no);
    have_tmpfs = mount_lake(tag);
    if (h_stack_start(&st, tag, API_KEY, SEED, NULL) != 0)
        return -1;
    for (int s = 0; s < NSTAGE; s++) {
        for (n = 0; st.env[n]; n++)
            env_b[s][n] = st.env[n];
        snprintf(wid_b[s], sizeof(wid_b[s]), "%s-b", stage_names[s]);
        snprintf(wenv[s], sizeof(wenv[s]), "TICKFLOW_WORKER_ID=%s", wid_b[s]);
        env_b[s][n++] = wenv[s];
        env_b[s][n] = NULL;
        rep_b[s].port = h_free_port();
        if (start_b(s) != 0)
            return -1;
    }
    if (add_job("chaos_a", "CA", 3) != 0 || add_job("chaos_b", "CB", 2) != 0 ||
        add_job("chaos_c", "CC", 3) != 0)
        return -1;
    return 0;
}

static int stop_trial(void)
{
    int unclean = 0;

    for (int s = 0; s < NSTAGE; s++) {
        if (rep_b[s].pid > 0 && h_stop(&rep_b[s]) != 0) {
            printf("# %s exited uncleanly (see %s)\n", rep_b[s].name, rep_b[s].log);
            unclean++;
        }
    }
    unclean += h_stack_stop(&st);
    unmount_lake();
    return unclean;
}

/* Runs a trial; its outcome into o (caller frees). */
static void run_trial(struct trial *t, struct outcome *o, int *dup_events, int *dlq)
{
    double t0;
    char ballast[700] = "";

    t->recovery = -1;
    t0 = h_now_s();
    if (start_trial(t) != 0) {
        CHECK(0, "trial %d: the stack did not start (see %s)", t->no, st.dir);
        memset(o, 0, sizeof(*o));
        return;
    }
    if (t->fault == F_STORM_5XX)
        fault_storm(t, pick(2) ? 500 : 503);
    else if (t->fault == F_STORM_429)
        fault_storm(t, 429);
    else if (t->fault == F_KILL_EXTRACT || t->fault == F_KAFKA_RESTART ||
             t->fault == F_PG_RESTART || t->fault == F_LAKE_FULL)
        /* Runs under way when the fault comes (extract mid-download): the vendor answers slowly a
         * while. */
        CHECK_EQ_INT(h_sim_faults(st.procs[H_MARKETSIM].port,
                                  "{\"rules\":[{\"fault\":\"slow\",\"times\":8,"
                                  "\"delay_ms\":1500}]}"),
                     200);
    printf("# trial %d: stack up in %.1f s\n", t->no, h_now_s() - t0);
    t0 = h_now_s();
    CHECK_EQ_INT(post_workload(), 0);
    /* A random moment of the run. */
    {
        double at = uniform(0, 1);
        while (h_now_s() - t0 < at)
            h_sleep_ms(10);
    }
    switch (t->fault) {
    case F_KILL_EXTRACT:
    case F_KILL_TRANSFORM:
    case F_KILL_AGGREGATE:
        fault_process(t, t->fault - F_KILL_EXTRACT, 0);
        break;
    case F_STOP_TRANSFORM:
    case F_STOP_AGGREGATE:
        fault_process(t, t->fault == F_STOP_TRANSFORM ? 1 : 2, 1);
        break;
    case F_KAFKA_RESTART:
        fault_outage(t, "kafka.sh");
        break;
    case F_PG_RESTART:
        fault_outage(t, "pg.sh");
        break;
    case F_LAKE_FULL:
        if (!have_tmpfs) {
            snprintf(t->what, sizeof(t->what), "skipped: no tmpfs (not root)");
            break;
        }
        if (fill_lake(ballast, sizeof(ballast)) == 0) {
            double hold = uniform(0.5, 3), t1 = h_now_s(), t_db;
            while (h_now_s() - t1 < hold)
                h_sleep_ms(20);
            unlink(ballast);
            t_db = db_now();
            t->t_db = t_db;
            t->stages = 3;
            t->recovery = wait_progress(t_db, h_now_s(), 60);
            snprintf(t->what, sizeof(t->what), "lake full for %.1f s", hold);
        }
        break;
    default:
        break;
    }
    t->converged = wait_converged(180);
    if (t->converged && t->stages) {
        double d = backlog_delay(t);
        t->recovery = d > t->recovery ? d : t->recovery;
    }
    if (t->converged && t->fault == F_LAKE_FULL) {
        int unexpected = 0;
        t->reposted = retry_failed("No space left", &unexpected);
        CHECK_EQ_INT(unexpected, 0);
        if (t->reposted) {
            /* Wait for the records to move off FAILED first. */
            for (double t1 = h_now_s(); h_now_s() - t1 < h_timeout(10) &&
                                        q_ll("SELECT count(*) FROM tickflow.job_execution"
                                             " WHERE status = 'FAILED'",
                                             0, NULL) > 0;)
                h_sleep_ms(50);
            t->converged = wait_converged(120);
        }
    }
    printf("# trial %d: converged %.1f s after the workload began\n", t->no, h_now_s() - t0);
    /* Every record SUCCESS, at last. */
    CHECK_EQ_INT(
        q_ll("SELECT count(*) FROM tickflow.job_execution WHERE status = 'SUCCESS'", 0, NULL),
        NEXEC * NSTAGE);
    outcome_read(o, t->no);
    /* A run's event may still be on its way (a crash between the outcome and its event
     * leaves it to a sweeper): the count waits until the records say every event is out. */
    for (double t1 = h_now_s();
         h_now_s() - t1 < h_timeout(60) && q_ll("SELECT count(*) FROM tickflow.job_execution"
                                                " WHERE event_published_at IS NULL",
                                                0, NULL) > 0;)
        h_sleep_ms(100);
    for (int s = 0; s < NSTAGE; s++) {
        struct events ev = {.distinct = 0};
        long size = h_topic_size(st.prefix, topics[s]);
        if (size > 0)
            h_topic_each(st.prefix, topics[s], size, note_event, &ev);
        /* One event per finished run of the stage: its 7 and the retried FAILED ones. */
        CHECK(ev.distinct == NEXEC + (s == 0 ? t->reposted : 0),
              "trial %d: %s carries %d distinct events (%ld in all), expected %d", t->no, topics[s],
              ev.distinct, ev.total, NEXEC + (s == 0 ? t->reposted : 0));
        *dup_events += (int)(ev.total - ev.distinct);
    }
    {
        long n = h_topic_size(st.prefix, "tickflow.dlq.v1");
        CHECK(n == 0, "trial %d: %ld events in the DLQ", t->no, n);
        *dlq += n > 0 ? (int)n : 0;
    }
    /*
     * A service that has not drained 30 s after SIGTERM is killed and counted,
     * not failed: after a Kafka restart an aggregate replica sometimes does
     * not exit (an open defect, said in the summary), and the trial's data
     * checks above do not depend on it.
     */
    {
        int unclean = stop_trial();
        if (unclean)
            printf("# trial %d: %d service(s) killed after 30 s of SIGTERM\n", t->no, unclean);
        undrained += unclean;
    }
}

static int same(const struct outcome *a, const struct outcome *b, int no)
{
    int ok = 1;
#define SAME(f)                                                                                    \
    do {                                                                                           \
        if (strcmp(a->f, b->f) != 0) {                                                             \
            printf("# trial %d: %s differs: %s\n# clean: %s\n", no, #f, a->f, b->f);               \
            ok = 0;                                                                                \
        }                                                                                          \
    } while (0)
    SAME(silver);
    SAME(rejected);
    SAME(hourly);
    SAME(daily);
    SAME(completeness);
    SAME(dq);
    SAME(records);
    SAME(parquet);
    SAME(gaps);
#undef SAME
    return ok;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(void)
{
    int trials = getenv("TF_CHAOS_TRIALS") ? atoi(getenv("TF_CHAOS_TRIALS")) : 30;
    uint64_t base = getenv("TF_CHAOS_SEED") ? strtoull(getenv("TF_CHAOS_SEED"), NULL, 10) : 1;
    const char *force = getenv("TF_CHAOS_FAULT");
    struct outcome clean;
    struct trial c = {.no = 0, .seed = 0, .fault = F_NONE};
    int nconverged = 0, lost = 0, duplicated = 0, dup_events = 0, dlq = 0;
    double max_rec = 0, p50 = 0;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (trials < 1 || trials > 100000) {
        printf("TF_CHAOS_TRIALS must be 1..100000\n");
        return 2;
    }
    /* The clean run: the same workload, no fault. */
    rng = 0x9e3779b97f4a7c15ULL;
    run_trial(&c, &clean, &dup_events, &dlq);
    CHECK(c.converged, "the clean run converged");
    CHECK(clean.silver_rows > 0 && clean.parquet_files > 0, "the clean run: %ld rows, %ld files",
          clean.silver_rows, clean.parquet_files);
    printf("# clean: silver %s, %ld Parquet files, hourly %s, daily %s\n", clean.silver,
           clean.parquet_files, clean.hourly, clean.daily);
    for (int i = 1; i <= trials; i++) {
        struct trial t = {.no = i, .seed = base + (uint64_t)i - 1};
        struct outcome o;
        double t0 = h_now_s();
        int ok;

        rng = t.seed * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL;
        t.fault = (enum fault)(1 + (int)((t.seed - 1) % (F_COUNT - 1)));
        for (int f = 1; force && f < F_COUNT; f++)
            if (strcmp(force, fault_names[f]) == 0)
                t.fault = (enum fault)f;
        run_trial(&t, &o, &dup_events, &dlq);
        ok = t.converged && o.parquet && same(&o, &clean, i);
        /* A bar lost: fewer rows, or a window missing. A bar twice: more rows, or a
         * stage that wrote more than the clean run did. */
        if (o.silver_rows < clean.silver_rows || (o.gaps && strcmp(o.gaps, clean.gaps) != 0))
            lost++;
        else if (o.silver_rows > clean.silver_rows || strcmp(o.records, clean.records) != 0)
            duplicated++;
        nconverged += ok;
        if (t.recovery >= 0)
            recoveries[nrecoveries++] = t.recovery;
        CHECK(ok, "trial %d (seed %llu, %s: %s) converged on the clean outcome", i,
              (unsigned long long)t.seed, fault_names[t.fault], t.what);
        CHECK(t.recovery < 30, "trial %d: recovered in %.1f s", i, t.recovery);
        printf("# trial %d seed=%llu fault=%s (%s) recovery_s=%.1f reposted=%d %s in %.0f s\n", i,
               (unsigned long long)t.seed, fault_names[t.fault], t.what, t.recovery, t.reposted,
               ok ? "converged" : "DIVERGED", h_now_s() - t0);
        outcome_free(&o);
    }
    outcome_free(&clean);
    if (nrecoveries) {
        qsort(recoveries, (size_t)nrecoveries, sizeof(double), cmp_dbl);
        max_rec = recoveries[nrecoveries - 1];
        p50 = h_median(recoveries, nrecoveries);
    }
    CHECK_EQ_INT(lost, 0);
    CHECK_EQ_INT(duplicated, 0);
    CHECK_EQ_INT(dlq, 0);
    CHECK(max_rec <= 30, "max recovery %.1f s <= 30", max_rec);
    CHECK(p50 <= 15, "p50 recovery %.1f s <= 15", p50);
    printf("# events delivered more than once: %d; measured recoveries: %d; services that did not"
           " drain on SIGTERM: %d\n",
           dup_events, nrecoveries, undrained);
    printf("chaos: trials=%d converged=%d lost=%d duplicated=%d max_recovery_s=%.1f "
           "p50_recovery_s=%.1f\n",
           trials, nconverged, lost, duplicated, max_rec, p50);
    return check_summary();
}
