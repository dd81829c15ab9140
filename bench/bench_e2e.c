/*
 * bench_e2e.c - a whole run as a user meets it, against the floor of the
 * work, in one run on the running stack (marketsim, the three services,
 * real PostgreSQL and Kafka).
 *
 *   bench_e2e            (make bench-e2e) one execution of a 500-ticker job
 *                        over 5 trading days of 1-minute bars: from the POST
 *                        to extract until aggregate's record is final. The
 *                        limit is psql's \copy of exactly the bars silver
 *                        ends up holding (ticker, timespan, ts, open, high,
 *                        low, close, volume, vwap, trades) into a fresh
 *                        table keyed by (ticker, timespan, ts), no other
 *                        index. Three rounds, the two sides taking turns,
 *                        each from empty silver and gold; medians. Ends with
 *   bench e2e: bars=<n> seconds=<s> bars_per_s=<n> copy_rows_per_s=<n> ratio=<r>
 *              extract_s=<s> transform_s=<s> aggregate_s=<s> peak_rss_mb=<n>
 *                        (one line); the stage split is each stage's own
 *                        record (finished_at - started_at). With a bucket
 *                        set (make bench-e2e sources .run/s3.env; not with
 *                        BENCH_NO_BUCKET=1) a second stack whose lake is in
 *                        the bucket runs the same execution in each round,
 *                        right after the folder's, and a second line says
 *   bench e2e bucket: bars=<n> seconds=<s> bars_per_s=<n> ratio=<r> of_folder=<f> ...
 *                        where of_folder is the bucket's throughput over
 *                        the folder's (the bucket's cost: 1 - of_folder).
 *   bench_e2e backfill   (make bench-backfill) the same job through
 *                        POST /v1/backfills over 20 trading days, from the
 *                        POST until the last day's aggregate is final; bars
 *                        per second, the projected time of a year of the job
 *                        (252 trading days), peak RSS and PostgreSQL's size
 *                        per million bars.
 *
 * The services' peak RSS is their VmHWM.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "tf/exec.h"

#define TICKERS 500
#define API_KEY "bench-key"
#define JOB     "bench_e2e"
#define ROUNDS  3 /* BENCH_ROUNDS=1 for a quick look */
/* Five trading days: Monday 2024-03-04 to Friday 2024-03-08. */
#define WS "2024-03-04T00:00:00Z"
#define WE "2024-03-09T00:00:00Z"
/* Twenty trading days (Good Friday, 2024-03-29, is a holiday). */
#define BF_FROM           "2024-03-04"
#define BF_TO             "2024-04-01"
#define BF_DAYS           20
#define YEAR_TRADING_DAYS 252

/* The stacks: the lake in a folder, and (bench-e2e) in a bucket; cur is the one measured. */
static struct h_stack folder_stack, bucket_stack;
static struct h_stack *cur = &folder_stack;

/* CPU seconds (user + system) a process has used so far. */
static double cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    unsigned long ut = 0, st = 0;
    FILE *f;
    char *p;

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    f = fopen(path, "r");
    if (!f)
        return 0;
    p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
    fclose(f);
    /* After the name: state and 11 more fields, then utime and stime. */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Empties silver, the quarantine and gold, as both sides start from. */
static int empty_tables(void)
{
    return h_sql(cur->db,
                 "TRUNCATE silver.bars, silver.rejected_bars, gold.bars_hourly,"
                 " gold.bars_daily, gold.completeness, gold.dq_results",
                 0, NULL) ||
                   h_sql(cur->db, "VACUUM ANALYZE silver.bars", 0, NULL)
               ? -1
               : 0;
}

/* Runs a psql command line (-c text); returns 0 when it succeeded. */
static int psql(const char *command)
{
    char cmd[8192];
    int status;

    snprintf(cmd, sizeof(cmd), "psql -X -q -v ON_ERROR_STOP=1 '%s' -c \"%s\"", cur->dsn, command);
    status = system(cmd);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* Saves the bars silver holds as COPY text, the limit's input. */
static int dump_silver(const char *path)
{
    char cmd[1024];

    snprintf(cmd, sizeof(cmd),
             "\\copy (SELECT ticker, timespan, ts, open, high, low, close, volume, vwap, trades"
             " FROM silver.bars) TO '%s'",
             path);
    return psql(cmd);
}

/*
 * The limit: psql's \copy of the rows into a fresh table keyed by
 * (ticker, timespan, ts). Returns seconds, < 0 on failure.
 */
static double copy_limit(const char *path)
{
    char cmd[1024];
    double t;

    if (h_sql(cur->db,
              "CREATE TABLE public.bench_copy (ticker text NOT NULL, timespan text NOT NULL,"
              " ts timestamptz NOT NULL, open float8 NOT NULL, high float8 NOT NULL,"
              " low float8 NOT NULL, close float8 NOT NULL, volume float8, vwap float8,"
              " trades bigint, PRIMARY KEY (ticker, timespan, ts))",
              0, NULL))
        return -1;
    snprintf(cmd, sizeof(cmd),
             "\\copy public.bench_copy (ticker, timespan, ts, open, high, low, close, volume,"
             " vwap, trades) FROM '%s'",
             path);
    h_pg_checkpoint(cur->db);
    t = h_now_s();
    if (psql(cmd) != 0)
        return -1;
    t = h_now_s() - t;
    return h_sql(cur->db, "DROP TABLE public.bench_copy", 0, NULL) ? -1 : t;
}

/* The seconds a stage's own record says it took (finished_at - started_at). */
static double stage_seconds(const char *id, const char *stage)
{
    const char *params[2] = {id, stage};
    char *v = h_pg_value(cur->db,
                         "SELECT extract(epoch FROM finished_at - started_at)"
                         " FROM tickflow.job_execution WHERE execution_id = $1 AND stage = $2",
                         2, params);
    double s = v ? strtod(v, NULL) : -1;

    free(v);
    return s;
}

/* Polls (every 20 ms) until sql answers a row with "t"; 0, or -1 after a long wait. */
static int wait_true(const char *sql, int n, const char *const *params)
{
    for (int i = 0; i < h_timeout(3600) * 50; i++) {
        char *v = h_pg_value(cur->db, sql, n, params);
        int yes = v && strcmp(v, "t") == 0;

        free(v);
        if (yes)
            return 0;
        if (!h_stack_alive(cur))
            return -1;
        h_sleep_ms(20);
    }
    return -1;
}

/* POSTs body to extract's path; 0 when it answered 202. */
static int post_extract(const char *path, const char *body)
{
    struct h_resp resp;
    int ok = h_http("POST", cur->procs[H_EXTRACT].port, path, body, NULL, &resp) == 0 &&
             resp.status == 202;

    if (!ok)
        fprintf(stderr, "POST %s: %ld %s\n", path, resp.status, resp.body ? resp.body : "");
    h_resp_free(&resp);
    return ok ? 0 : -1;
}

struct round {
    double seconds, extract_s, transform_s, aggregate_s;
    long long bars;
};

/* One execution of the job, from the POST to extract until gold is final. */
static int e2e_round(struct round *r)
{
    char id[TF_UUID_LEN + 1], body[512];
    const char *params[1] = {id};
    char *status;
    double t0, cpu[H_NPROCS];

    tf_uuid_new(id);
    snprintf(body, sizeof(body),
             "{\"execution_id\":\"%s\",\"job_name\":\"" JOB "\",\"window_start\":\"" WS "\","
             "\"window_end\":\"" WE "\"}",
             id);
    h_pg_checkpoint(cur->db);
    for (int i = 0; i < H_NPROCS; i++)
        cpu[i] = cpu_s(cur->procs[i].pid);
    t0 = h_now_s();
    if (post_extract("/v1/executions", body) != 0)
        return -1;
    if (wait_true("SELECT bool_or(status = 'FAILED') OR (count(*) FILTER (WHERE stage ="
                  " 'aggregate' AND status = 'SUCCESS') = 1) FROM tickflow.job_execution"
                  " WHERE execution_id = $1",
                  1, params) != 0)
        return -1;
    r->seconds = h_now_s() - t0;
    printf("cpu seconds:");
    for (int i = 0; i < H_NPROCS; i++)
        printf(" %s %.2f", cur->procs[i].name, cpu_s(cur->procs[i].pid) - cpu[i]);
    printf("\n");
    status = h_pg_value(cur->db,
                        "SELECT string_agg(stage || '=' || status, ' ' ORDER BY created_at)"
                        " FROM tickflow.job_execution WHERE execution_id = $1",
                        1, params);
    r->bars =
        h_pg_ll(cur->db, "SELECT count(*) FROM silver.bars WHERE execution_id = $1", 1, params);
    r->extract_s = stage_seconds(id, "extract");
    r->transform_s = stage_seconds(id, "transform");
    r->aggregate_s = stage_seconds(id, "aggregate");
    {
        long long out = h_pg_ll(cur->db,
                                "SELECT records_out FROM tickflow.job_execution"
                                " WHERE execution_id = $1 AND stage = 'transform'",
                                1, params);
        long long days = h_pg_ll(
            cur->db, "SELECT count(*) FROM gold.bars_daily WHERE execution_id = $1", 1, params);
        int ok = status && strstr(status, "aggregate=SUCCESS") && r->bars > 0 && out == r->bars &&
                 days == (long long)TICKERS * 5;

        if (!ok)
            fprintf(stderr,
                    "bench e2e: %s, silver %lld bars (transform out %lld), %lld daily"
                    " gold rows\n",
                    status ? status : "-", r->bars, out, days);
        free(status);
        return ok ? 0 : -1;
    }
}

static long peak_rss_mb(void)
{
    long kb = 0;

    for (int i = H_EXTRACT; i <= H_AGGREGATE; i++) {
        long k = h_vm_hwm_kb(cur->procs[i].pid);
        printf("%s peak rss %.0f MB\n", cur->procs[i].name, k / 1024.0);
        kb = k > kb ? k : kb;
    }
    return (kb + 1023) / 1024;
}

/* The medians of a variant's rounds. */
struct medians {
    double total, ex, tr, ag;
};

static struct medians medians_of(const struct round *r, long rounds)
{
    double total[ROUNDS], ex[ROUNDS], tr[ROUNDS], ag[ROUNDS];

    for (long i = 0; i < rounds; i++) {
        total[i] = r[i].seconds;
        ex[i] = r[i].extract_s;
        tr[i] = r[i].transform_s;
        ag[i] = r[i].aggregate_s;
    }
    return (struct medians){h_median(total, (int)rounds), h_median(ex, (int)rounds),
                            h_median(tr, (int)rounds), h_median(ag, (int)rounds)};
}

/* A round of the variant on stack st; its line printed. 0 when it ran. */
static int variant_round(struct h_stack *st, const char *name, int i, struct round *r, double cp)
{
    cur = st;
    if (empty_tables() != 0 || e2e_round(r) != 0 || empty_tables() != 0)
        return -1;
    printf("round %d %s: %lld bars in %.2f s (extract %.2f s, transform %.2f s, aggregate"
           " %.2f s); \\copy %.2f s; ratio %.2f\n",
           i + 1, name, r->bars, r->seconds, r->extract_s, r->transform_s, r->aggregate_s, cp,
           cp / r->seconds);
    return 0;
}

/*
 * Rounds of the folder lake, then of the bucket lake when one is set
 * (with_bucket), then the \\copy limit, taking turns; medians of each.
 */
static int bench_e2e(int with_bucket)
{
    char path[700];
    long rounds = getenv("BENCH_ROUNDS") ? strtol(getenv("BENCH_ROUNDS"), NULL, 10) : ROUNDS;
    struct round r[ROUNDS], b[ROUNDS];
    double cp[ROUNDS], c;
    struct medians m, mb;

    snprintf(path, sizeof(path), "%s/silver.copy", folder_stack.dir);
    if (rounds < 1 || rounds > ROUNDS)
        rounds = ROUNDS;
    for (int i = 0; i < rounds; i++) {
        cur = &folder_stack;
        if (empty_tables() != 0 || e2e_round(&r[i]) != 0)
            return -1;
        if (i == 0 && dump_silver(path) != 0)
            return -1;
        if (empty_tables() != 0)
            return -1;
        cp[i] = copy_limit(path);
        if (cp[i] <= 0)
            return -1;
        printf("round %d folder: %lld bars in %.2f s (extract %.2f s, transform %.2f s, aggregate"
               " %.2f s); \\copy %.2f s; ratio %.2f\n",
               i + 1, r[i].bars, r[i].seconds, r[i].extract_s, r[i].transform_s, r[i].aggregate_s,
               cp[i], cp[i] / r[i].seconds);
        if (with_bucket && variant_round(&bucket_stack, "bucket", i, &b[i], cp[i]) != 0)
            return -1;
    }
    c = h_median(cp, (int)rounds);
    m = medians_of(r, rounds);
    cur = &folder_stack;
    printf("bench e2e: bars=%lld seconds=%.2f bars_per_s=%.0f copy_rows_per_s=%.0f ratio=%.2f"
           " extract_s=%.2f transform_s=%.2f aggregate_s=%.2f peak_rss_mb=%ld\n",
           r[0].bars, m.total, (double)r[0].bars / m.total, (double)r[0].bars / c, c / m.total,
           m.ex, m.tr, m.ag, peak_rss_mb());
    if (!with_bucket)
        return 0;
    if (b[0].bars != r[0].bars) {
        fprintf(stderr, "bench e2e: the bucket run kept %lld bars, the folder run %lld\n",
                b[0].bars, r[0].bars);
        return -1;
    }
    /* of_folder: the bucket's end-to-end throughput over the folder's (target >= 0.80). */
    mb = medians_of(b, rounds);
    cur = &bucket_stack;
    printf("bench e2e bucket: bars=%lld seconds=%.2f bars_per_s=%.0f ratio=%.2f of_folder=%.2f"
           " extract_s=%.2f transform_s=%.2f aggregate_s=%.2f peak_rss_mb=%ld\n",
           b[0].bars, mb.total, (double)b[0].bars / mb.total, c / mb.total, m.total / mb.total,
           mb.ex, mb.tr, mb.ag, peak_rss_mb());
    return 0;
}

static int bench_backfill(void)
{
    char body[256], bid[TF_UUID_LEN + 1], path[128];
    const char *params[1] = {bid};
    long long db0, db1, bars;
    double t0, s;

    tf_uuid_new(bid);
    if (empty_tables() != 0)
        return -1;
    h_sql(cur->db, "VACUUM", 0, NULL);
    db0 = h_pg_ll(cur->db, "SELECT pg_database_size(current_database())", 0, NULL);
    snprintf(body, sizeof(body),
             "{\"backfill_id\":\"%s\",\"job_name\":\"" JOB "\",\"from\":\"" BF_FROM "\","
             "\"to\":\"" BF_TO "\",\"concurrency\":%s}",
             bid, getenv("BENCH_CONCURRENCY") ? getenv("BENCH_CONCURRENCY") : "2");
    h_pg_checkpoint(cur->db);
    t0 = h_now_s();
    if (post_extract("/v1/backfills", body) != 0)
        return -1;
    /* The backfill's own word: SUCCESS once every day has reached gold. */
    snprintf(path, sizeof(path), "/v1/backfills/%s", bid);
    for (;;) {
        long code = 0;
        cJSON *bf = h_call("GET", cur->procs[H_EXTRACT].port, path, NULL, NULL, &code);
        const char *st = h_jstr(bf, "status");
        int done = st && strcmp(st, "RUNNING") != 0;

        if (done)
            printf("backfill %s: %s, %.0f days through gold\n", bid, st, h_jnum(bf, "completed"));
        cJSON_Delete(bf);
        if (done)
            break;
        if (code != 200 || !h_stack_alive(cur) || h_now_s() - t0 > h_timeout(3600)) {
            fprintf(stderr, "bench backfill: GET %s answered %ld\n", path, code);
            return -1;
        }
        h_sleep_ms(50);
    }
    s = h_now_s() - t0;
    {
        long long failed = h_pg_ll(cur->db,
                                   "SELECT count(*) FROM tickflow.job_execution e WHERE"
                                   " e.execution_id IN (SELECT execution_id FROM"
                                   " tickflow.job_execution WHERE backfill_id = $1)"
                                   " AND e.status <> 'SUCCESS'",
                                   1, params);
        bars = h_pg_ll(cur->db, "SELECT count(*) FROM silver.bars", 0, NULL);
        if (failed != 0 || bars <= 0) {
            fprintf(stderr, "bench backfill: %lld stage records not SUCCESS, %lld bars\n", failed,
                    bars);
            return -1;
        }
    }
    h_sql(cur->db, "CHECKPOINT", 0, NULL);
    db1 = h_pg_ll(cur->db, "SELECT pg_database_size(current_database())", 0, NULL);
    {
        double rate = (double)bars / s;
        double year_bars = (double)bars / BF_DAYS * YEAR_TRADING_DAYS;

        printf("bench backfill: trading_days=%d bars=%lld seconds=%.1f bars_per_s=%.0f"
               " projected_year_min=%.1f peak_rss_mb=%ld pg_mb_per_million_bars=%.0f\n",
               BF_DAYS, bars, s, rate, year_bars / rate / 60, peak_rss_mb(),
               (double)(db1 - db0) / 1048576.0 / ((double)bars / 1e6));
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const char *const env[] = {NULL};
    int backfill = argc > 1 && strcmp(argv[1], "backfill") == 0;
    /* bench-e2e measures the bucket lake too when a bucket is set (.run/s3.env). */
    int with_bucket = !backfill && getenv("TICKFLOW_LAKE_S3_BUCKET") && !getenv("BENCH_NO_BUCKET");
    int rc = 1;

    setvbuf(stdout, NULL, _IOLBF, 0);
    unsetenv("TF_TEST_LAKE");
    if (h_stack_start(&folder_stack, backfill ? "benchbf" : "benche2e", API_KEY, 1, env) != 0) {
        fprintf(stderr, "the stack did not start (see %s)\n", folder_stack.dir);
        goto out;
    }
    if (h_add_job_tickers(folder_stack.db, JOB, "E", TICKERS) != 0)
        goto out;
    if (with_bucket) {
        setenv("TF_TEST_LAKE", "s3", 1);
        if (h_stack_start(&bucket_stack, "benche2es3", API_KEY, 1, env) != 0) {
            fprintf(stderr, "the bucket stack did not start (see %s)\n", bucket_stack.dir);
            goto out;
        }
        if (h_add_job_tickers(bucket_stack.db, JOB, "E", TICKERS) != 0)
            goto out;
        printf("lakes: folder %s, bucket %s\n", folder_stack.lake_uri, bucket_stack.lake_uri);
    }
    cur = &folder_stack;
    rc = (backfill ? bench_backfill() : bench_e2e(with_bucket)) == 0 ? 0 : 1;
out:
    if (h_stack_stop(&folder_stack) != 0)
        rc = 1;
    if (with_bucket && h_stack_stop(&bucket_stack) != 0)
        rc = 1;
    return rc;
}
