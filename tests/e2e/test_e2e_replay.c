/*
 * test_e2e_replay.c - replay from bronze, native binaries on the real
 * PostgreSQL and Kafka: a run of the whole pipeline against marketsim, then
 * the same execution triggered again, its bronze event redelivered, and
 * transform replayed (a new attempt from the same bronze objects).
 *
 * Silver (a checksum over ordered rows, values only), the quarantine, gold
 * (every column but updated_at) and the Parquet files (sha256) must come out
 * identical; marketsim must see no request; aggregate must run again on the
 * replay's silver event (a newer upstream attempt) and only then. The
 * Parquet files are read back by pyarrow and DuckDB and must equal
 * silver.bars row for row (tests/lake/check_silver_lake.py).
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"
#include "tf/buf.h"
#include "tf/exec.h"
#include "tf/json.h"
#include "tf/time.h"

#define API_KEY "replay-Secret-Key-9a12"
#define JOB     "e2e_replay"
#define SEED    13

static struct h_stack stack;

static cJSON *call(const char *method, int port, const char *path, const char *body, long *status)
{
    return h_call(method, port, path, body, NULL, status);
}

/* marketsim's count of data requests. */
static long long sim_requests(void)
{
    long status;
    cJSON *st = call("GET", stack.procs[H_MARKETSIM].port, "/_sim/stats", NULL, &status);
    long long n = cJSON_IsNumber(cJSON_GetObjectItem(st, "requests"))
                      ? (long long)h_jnum(st, "requests")
                      : -1;

    cJSON_Delete(st);
    return n;
}

static char *q_str(const char *sql)
{
    return h_pg_value(stack.db, sql, 0, NULL);
}

/* Checksums of silver, the quarantine and gold (values only, in order). */
struct snap {
    char *silver, *rejects, *gold;
    long long silver_rows, gold_rows;
};

static void snap_take(struct snap *s)
{
    s->silver = q_str("SELECT md5(string_agg((to_jsonb(b) - 'ingested_at')::text, '|'"
                      " ORDER BY ticker, timespan, ts)) FROM silver.bars b");
    s->rejects = q_str("SELECT md5(coalesce(string_agg((to_jsonb(r) - 'rejected_at' - 'attempt')"
                       "::text, '|' ORDER BY execution_id, object_uri, item), ''))"
                       " FROM silver.rejected_bars r");
    s->gold = q_str("SELECT md5(string_agg((to_jsonb(g) - 'updated_at')::text, '|'"
                    " ORDER BY (to_jsonb(g) - 'updated_at')::text)) FROM gold.bars_hourly g");
    s->silver_rows = h_pg_ll(stack.db, "SELECT count(*) FROM silver.bars", 0, NULL);
    s->gold_rows = h_pg_ll(stack.db, "SELECT count(*) FROM gold.bars_hourly", 0, NULL);
}

static void snap_free(struct snap *s)
{
    free(s->silver);
    free(s->rejects);
    free(s->gold);
}

/* Says which gold columns changed since public.gold_before (a failure's detail). */
static void gold_diff(void)
{
    PGresult *res = PQexec(
        stack.db, "SELECT k, count(*) FROM (SELECT j.key AS k FROM gold.bars_hourly g"
                  " JOIN public.gold_before b USING (ticker, source_timespan, bucket),"
                  " jsonb_each(to_jsonb(g) - 'updated_at') j"
                  " WHERE j.value IS DISTINCT FROM to_jsonb(b) -> j.key) d GROUP BY k ORDER BY k");

    for (int i = 0; i < PQntuples(res); i++)
        printf("# gold column %s differs in %s rows\n", PQgetvalue(res, i, 0),
               PQgetvalue(res, i, 1));
    PQclear(res);
}

/* transform's objects of execution id (its lake files), one page each (new array). */
static cJSON *lake_files(const char *id)
{
    cJSON *files = h_get_objects(stack.procs[H_TRANSFORM].port, id, 1);

    CHECK(files != NULL, "transform's objects of %s, page by page", id);
    return files;
}

/* Waits until stage's record of id has attempt >= attempt and is final. */
static cJSON *wait_attempt(int port, const char *id, int attempt)
{
    for (int i = 0; i < h_timeout(60) * 10 && h_stack_alive(&stack); i++) {
        cJSON *rec = h_get_record(port, id);
        const char *st = h_jstr(rec, "status");
        if (st && h_jnum(rec, "attempt") >= attempt &&
            (strcmp(st, "SUCCESS") == 0 || strcmp(st, "FAILED") == 0))
            return rec;
        cJSON_Delete(rec);
        h_sleep_ms(100);
    }
    return NULL;
}

/*
 * Writes what silver holds for each Parquet object of transform's record
 * of id to path (see tests/lake/check_silver_lake.py) and runs the check;
 * returns its exit status.
 */
static int lake_check(const char *id, const char *path)
{
    cJSON *files = lake_files(id);
    const cJSON *o;
    struct tf_buf out;
    FILE *f;
    char cmd[2048];
    int first = 1, status;
    enum tf_rc rc;

    tf_buf_init(&out, 1u << 30);
    rc = tf_buf_puts(&out, "{\"files\":[");
    cJSON_ArrayForEach(o, files)
    {
        const char *uri = h_jstr(o, "uri");
        const char *params[2] = {h_jstr(o, "dataset"), h_jstr(o, "date")};
        PGresult *res;

        if (!uri || !params[0] || !params[1])
            continue;
        res = PQexecParams(stack.db,
                           "SELECT ticker, timespan, (extract(epoch FROM ts) * 1000000)::bigint,"
                           " open, high, low, close, volume, vwap, trades, execution_id"
                           " FROM silver.bars WHERE provider || '_' || timespan = $1"
                           " AND ts >= $2::timestamptz AND ts < $2::timestamptz + interval '1 day'"
                           " ORDER BY ticker COLLATE \"C\", ts",
                           2, NULL, params, NULL, NULL, 0);
        CHECK(PQresultStatus(res) == PGRES_TUPLES_OK, "silver rows of %s", uri);
        CHECK_EQ_INT(PQntuples(res), h_jnum(o, "records"));
        rc = rc ? rc : tf_buf_printf(&out, "%s{\"path\":", first ? "" : ",");
        /* A file as its path, a bucket's object as its s3:// URI. */
        rc = rc ? rc : tf_json_append_str(&out, strncmp(uri, "file://", 7) == 0 ? uri + 7 : uri);
        rc = rc ? rc : tf_buf_puts(&out, ",\"rows\":[");
        for (int r = 0; r < PQntuples(res) && rc == TF_OK; r++) {
            rc = tf_buf_printf(&out, "%s[", r ? "," : "");
            for (int c = 0; c < 11 && rc == TF_OK; c++) {
                const char *v = PQgetvalue(res, r, c);
                if (c)
                    rc = tf_buf_puts(&out, ",");
                if (rc != TF_OK)
                    break;
                if (PQgetisnull(res, r, c))
                    rc = tf_buf_puts(&out, "null");
                else if (c <= 1 || c == 10)
                    rc = tf_json_append_str(&out, v);
                else if (c == 2 || c == 9)
                    rc = tf_buf_puts(&out, v);
                else
                    rc = tf_buf_printf(&out, "%.17g", strtod(v, NULL));
            }
            rc = rc ? rc : tf_buf_puts(&out, "]");
        }
        rc = rc ? rc : tf_buf_puts(&out, "]}");
        first = 0;
        PQclear(res);
    }
    rc = rc ? rc : tf_buf_puts(&out, "]}");
    CHECK(rc == TF_OK, "expected rows written");
    cJSON_Delete(files);
    f = fopen(path, "w");
    CHECK(f && fwrite(out.data, 1, out.len, f) == out.len, "write %s", path);
    if (f)
        fclose(f);
    tf_buf_cleanup(&out);
    snprintf(cmd, sizeof(cmd), ".run/venv/bin/python tests/lake/check_silver_lake.py '%s'", path);
    status = system(cmd);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    /* Apache Spark too, where the suite asks for it (tests/run.sh: the plain build). */
    if (getenv("TF_TEST_SPARK")) {
        snprintf(cmd, sizeof(cmd),
                 "py=$(bash tests/env/spark.sh) && \"$py\" tests/lake/check_spark.py '%s'", path);
        status = system(cmd);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/*
 * Replays transform (body) as attempt: it succeeds at once, and its lake
 * files are the nfiles of the first run, byte for byte. Returns its record.
 */
static cJSON *replay_transform(const char *body, int attempt, int nfiles, char shas[][65])
{
    long status;
    cJSON *rec = call("POST", stack.procs[H_TRANSFORM].port, "/v1/executions", body, &status);
    cJSON *files = lake_files(h_jstr(rec, "execution_id") ? h_jstr(rec, "execution_id") : "");

    CHECK_EQ_INT(status, 200);
    CHECK_STR(h_jstr(rec, "status"), "SUCCESS");
    CHECK_EQ_INT(h_jnum(rec, "attempt"), attempt);
    CHECK_EQ_INT(h_jnum(cJSON_GetObjectItemCaseSensitive(rec, "objects_summary"), "count"), nfiles);
    CHECK_EQ_INT(cJSON_GetArraySize(files), nfiles);
    for (int i = 0; i < nfiles && i < 4; i++) {
        char now[65];
        const cJSON *o = cJSON_GetArrayItem(files, i);
        CHECK_STR(h_jstr(o, "sha256"), shas[i]);
        h_lake_sha256(&stack, h_jstr(o, "uri") ? h_jstr(o, "uri") : "", now);
        CHECK_STR(now, shas[i]);
    }
    cJSON_Delete(files);
    return rec;
}

static void test_replay(void)
{
    char id[TF_UUID_LEN + 1], body[512], path[700];
    const char *idp[1] = {id};
    struct snap before, after;
    cJSON *first = NULL, *rec = NULL, *objs;
    long status;
    long long requests, consumed;
    char shas[4][65];
    int nfiles;

    tf_uuid_new(id);
    snprintf(body, sizeof(body),
             "{\"execution_id\":\"%s\",\"job_name\":\"" JOB "\",\"window_start\":"
             "\"2024-03-04T14:30:00Z\",\"window_end\":\"2024-03-05T21:00:00Z\"}",
             id);
    cJSON_Delete(call("POST", stack.procs[H_EXTRACT].port, "/v1/executions", body, &status));
    CHECK_EQ_INT(status, 202);
    rec = h_wait_stage(&stack, stack.procs[H_AGGREGATE].port, id, 120);
    CHECK(rec && strcmp(h_jstr(rec, "status"), "SUCCESS") == 0, "pipeline ran: %s",
          rec ? h_jstr(rec, "status") : "timeout");
    cJSON_Delete(rec);

    /* Two days: two lake files, each listed with its rows, size and checksum. */
    first = h_get_record(stack.procs[H_TRANSFORM].port, id);
    objs = lake_files(id);
    nfiles = cJSON_GetArraySize(objs);
    CHECK_EQ_INT(nfiles, 2);
    CHECK_EQ_INT(h_jnum(first, "records_rejected"), 0);
    {
        const cJSON *sum = cJSON_GetObjectItemCaseSensitive(first, "objects_summary");
        double total = 0, bytes = 0;
        for (int i = 0; i < nfiles && i < 4; i++) {
            const cJSON *o = cJSON_GetArrayItem(objs, i);
            CHECK_EQ_INT(h_lake_sha256(&stack, h_jstr(o, "uri") ? h_jstr(o, "uri") : "", shas[i]),
                         h_jnum(o, "bytes"));
            CHECK_STR(shas[i], h_jstr(o, "sha256"));
            CHECK_STR(h_jstr(o, "dataset"), "polygon_1minute");
            CHECK_STR(h_jstr(o, "date"), i == 0 ? "2024-03-04" : "2024-03-05");
            total += h_jnum(o, "records");
            bytes += h_jnum(o, "bytes");
        }
        CHECK_EQ_INT(total, h_jnum(first, "records_out"));
        CHECK_EQ_INT(h_jnum(sum, "count"), nfiles);
        CHECK_EQ_INT(h_jnum(sum, "records"), total);
        CHECK_EQ_INT(h_jnum(sum, "bytes"), bytes);
    }
    cJSON_Delete(objs);
    snprintf(path, sizeof(path), "%s/lake-expected.json", stack.dir);
    CHECK_EQ_INT(lake_check(id, path), 0);

    snap_take(&before);
    {
        PGresult *res = PQexec(stack.db, "CREATE TABLE public.gold_before AS"
                                         " SELECT * FROM gold.bars_hourly");
        PQclear(res);
    }
    CHECK(before.silver_rows > 700 && before.gold_rows > 10, "silver %lld, gold %lld rows",
          before.silver_rows, before.gold_rows);
    requests = sim_requests();
    CHECK(requests > 0, "marketsim served the extract (%lld)", requests);

    /* The same trigger again, and the bronze event redelivered: nothing runs. */
    snprintf(body, sizeof(body), "{\"execution_id\":\"%s\"}", id);
    rec = call("POST", stack.procs[H_TRANSFORM].port, "/v1/executions", body, &status);
    CHECK_EQ_INT(status, 200);
    CHECK_EQ_INT(h_jnum(rec, "attempt"), 1);
    cJSON_Delete(rec);
    consumed = h_metric(stack.procs[H_TRANSFORM].port, "tickflow_events_consumed_total");
    CHECK(h_send_event(stack.db, stack.prefix, "tickflow.bronze.v1", id, "extract") == 0,
          "bronze event sent again");
    /* Settled: transform committed past it, having done whatever it was going to do. */
    CHECK(h_wait_consumed(stack.prefix, "tickflow.bronze.v1", "transform", 30) == 0,
          "transform settled the bronze event sent again");
    CHECK(h_metric(stack.procs[H_TRANSFORM].port, "tickflow_events_consumed_total") > consumed,
          "transform read it");
    rec = h_get_record(stack.procs[H_TRANSFORM].port, id);
    CHECK_EQ_INT(h_jnum(rec, "attempt"), 1);
    CHECK_STR(h_jstr(rec, "finished_at"), h_jstr(first, "finished_at"));
    cJSON_Delete(rec);

    /* The replay: a new attempt of transform, then of aggregate, from the same bronze. */
    snprintf(body, sizeof(body), "{\"execution_id\":\"%s\",\"replay\":true,\"wait_seconds\":60}",
             id);
    rec = replay_transform(body, 2, nfiles, shas);
    CHECK_EQ_INT(h_jnum(rec, "records_out"), h_jnum(first, "records_out"));
    cJSON_Delete(rec);
    rec = wait_attempt(stack.procs[H_AGGREGATE].port, id, 2);
    CHECK(rec != NULL, "aggregate ran again on the replay's event");
    CHECK_STR(h_jstr(rec, "status"), "SUCCESS");
    CHECK_EQ_INT(h_jnum(rec, "attempt"), 2);
    cJSON_Delete(rec);
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT upstream_attempt FROM tickflow.job_execution"
                         " WHERE execution_id = $1 AND stage = 'aggregate'",
                         1, idp),
                 2);
    snap_take(&after);
    CHECK_STR(after.silver, before.silver);
    CHECK_STR(after.rejects, before.rejects);
    CHECK_STR(after.gold, before.gold);
    if (strcmp(after.gold ? after.gold : "", before.gold ? before.gold : "") != 0)
        gold_diff();
    CHECK_EQ_INT(after.silver_rows, before.silver_rows);
    CHECK_EQ_INT(after.gold_rows, before.gold_rows);
    CHECK_EQ_INT(sim_requests(), requests);
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT attempt FROM tickflow.job_execution"
                         " WHERE execution_id = $1 AND stage = 'extract'",
                         1, idp),
                 1);
    snap_free(&after);

    /* The replay's silver event again: aggregate has consumed it, nothing runs. */
    consumed = h_metric(stack.procs[H_AGGREGATE].port, "tickflow_events_consumed_total");
    CHECK(h_send_event(stack.db, stack.prefix, "tickflow.silver.v1", id, "transform") == 0,
          "silver event sent again");
    CHECK(h_wait_consumed(stack.prefix, "tickflow.silver.v1", "aggregate", 30) == 0,
          "aggregate settled the silver event sent again");
    CHECK(h_metric(stack.procs[H_AGGREGATE].port, "tickflow_events_consumed_total") > consumed,
          "aggregate read it");
    rec = h_get_record(stack.procs[H_AGGREGATE].port, id);
    CHECK_EQ_INT(h_jnum(rec, "attempt"), 2);
    cJSON_Delete(rec);

    /* aggregate replayed on its own: the same gold again. */
    rec = call("POST", stack.procs[H_AGGREGATE].port, "/v1/executions", body, &status);
    CHECK_EQ_INT(status, 200);
    CHECK_STR(h_jstr(rec, "status"), "SUCCESS");
    CHECK_EQ_INT(h_jnum(rec, "attempt"), 3);
    cJSON_Delete(rec);
    snap_take(&after);
    CHECK_STR(after.gold, before.gold);
    CHECK_STR(after.silver, before.silver);
    snap_free(&after);

    /* The lake still equals silver after the replays. */
    CHECK_EQ_INT(lake_check(id, path), 0);

    /* So far each file was written from the bars the run kept from its load. */
    CHECK_EQ_INT(h_file_count(stack.procs[H_TRANSFORM].log, "read_back=0 "), 2 * nfiles);
    /* Without memory for that, transform reads the days back from silver: the same bytes. */
    CHECK_EQ_INT(h_stop(&stack.procs[H_TRANSFORM]), 0);
    CHECK_EQ_INT(h_stack_setenv(&stack, "TICKFLOW_TRANSFORM_LAKE_MEMORY_MB=0",
                                "TICKFLOW_TRANSFORM_LAKE_MEMORY_MB"),
                 0);
    CHECK_EQ_INT(h_stack_restart(&stack, H_TRANSFORM), 0);
    cJSON_Delete(replay_transform(body, 3, nfiles, shas));
    CHECK_EQ_INT(h_file_count(stack.procs[H_TRANSFORM].log, "kept=0 read_back="), nfiles);
    CHECK_EQ_INT(h_file_count(stack.procs[H_TRANSFORM].log, "read_back=0 "), 2 * nfiles);
    snap_free(&before);
    cJSON_Delete(first);
}

static int add_job(void)
{
    PGresult *res =
        PQexec(stack.db, "INSERT INTO tickflow.job_config (job_name, provider, tickers,"
                         " multiplier, timespan, page_limit, updated_by) VALUES ('" JOB "',"
                         " 'polygon', '{AAPL,MSFT,QQQ.SPARSE}', 1, 'minute', 100, 'e2e')");
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;

    CHECK(ok, "job insert: %s", PQresultErrorMessage(res));
    PQclear(res);
    return ok ? 0 : -1;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (h_stack_start(&stack, "replay", API_KEY, SEED, NULL) == 0 && add_job() == 0)
        test_replay();
    else
        CHECK(0, "the stack did not start (see %s)", stack.dir);
    CHECK_EQ_INT(h_stack_stop(&stack), 0);
    return check_summary();
}
