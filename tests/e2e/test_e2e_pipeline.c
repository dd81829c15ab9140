/*
 * test_e2e_pipeline.c - the whole pipeline, native binaries on the real
 * PostgreSQL and Kafka: marketsim, extract, transform and aggregate run as
 * processes against a database and topic prefix of this test's own.
 *
 * Expected values come from marketsim's generator, linked here, and are
 * computed in this file: silver must hold exactly the generated bars and
 * gold exactly their hourly rollups.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../services/marketsim/gen.h"
#include "check.h"
#include "harness.h"
#include "tf/exec.h"
#include "tf/kafka.h"
#include "tf/time.h"

#define SEED    7
#define API_KEY "e2e-Secret-Key-7c41d9"
#define PAGE    100
#define JOB     "e2e_job"

static const char *const tickers[] = {"AAPL", "MSFT", "QQQ.SPARSE"};
#define NTICKERS 3

static struct h_stack stack;

/* POSTs body to a service and parses the answer (caller deletes). */
static cJSON *post(int port, const char *body, long *status)
{
    return h_call("POST", port, "/v1/executions", body, NULL, status);
}

/* Records of one execution id, any stage. */
static long long rows_of(const char *id)
{
    const char *params[1] = {id};

    return h_pg_ll(stack.db, "SELECT count(*) FROM tickflow.job_execution WHERE execution_id = $1",
                   1, params);
}

static long long executions(void)
{
    return h_pg_ll(stack.db, "SELECT count(*) FROM tickflow.job_execution", 0, NULL);
}

static void body_for(char *out, size_t len, const char *id, const char *ws, const char *we)
{
    snprintf(out, len,
             "{\"execution_id\":\"%s\",\"job_name\":\"" JOB "\",\"window_start\":\"%s\","
             "\"window_end\":\"%s\"}",
             id, ws, we);
}

/* Bad requests: a clear 4xx with a JSON error, and no row left behind. */
static void test_bad_requests(void)
{
    static const struct {
        const char *body;
        long status;
        const char *code;
    } cases[] = {
        {"{\"execution_id\": ", 400, "invalid_json"},
        {"[1,2,3]", 400, "invalid_argument"},
        {"{\"execution_id\":\"not-a-uuid\",\"job_name\":\"" JOB "\"}", 400, "invalid_argument"},
        {"{\"execution_id\":\"00000000-0000-4000-8000-00000000000g\",\"job_name\":\"" JOB "\"}",
         400, "invalid_argument"},
        {"{\"execution_id\":\"6f1c2a52-0d4e-4c43-9a55-0b7a3a0c1d01\",\"job_name\":\"no_such\"}",
         404, "not_found"},
        {"{\"execution_id\":\"6f1c2a52-0d4e-4c43-9a55-0b7a3a0c1d02\",\"job_name\":\"" JOB "\","
         "\"window_start\":\"2024-03-05T00:00:00Z\",\"window_end\":\"2024-03-04T00:00:00Z\"}",
         400, "invalid_argument"},
        {"{\"execution_id\":\"6f1c2a52-0d4e-4c43-9a55-0b7a3a0c1d03\",\"job_name\":\"" JOB "\","
         "\"window_start\":\"yesterday\",\"window_end\":\"2024-03-04T00:00:00Z\"}",
         400, "invalid_argument"},
        {"{\"execution_id\":\"6f1c2a52-0d4e-4c43-9a55-0b7a3a0c1d04\",\"job_name\":\"" JOB "\","
         "\"wait_seconds\":-3}",
         400, "invalid_argument"},
    };
    long long before = executions();
    char *big = NULL;
    long status;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *ans = post(stack.procs[H_EXTRACT].port, cases[i].body, &status);
        cJSON *err = cJSON_GetObjectItemCaseSensitive(ans, "error");
        CHECK(status == cases[i].status, "case %zu: status %ld, want %ld", i, status,
              cases[i].status);
        CHECK(h_jstr(err, "code") && strcmp(h_jstr(err, "code"), cases[i].code) == 0,
              "case %zu: error code %s, want %s", i,
              h_jstr(err, "code") ? h_jstr(err, "code") : "-", cases[i].code);
        CHECK(h_jstr(err, "message") && strlen(h_jstr(err, "message")) > 10,
              "case %zu: error message present", i);
        cJSON_Delete(ans);
    }
    /* transform and aggregate need the previous stage. */
    {
        cJSON *ans = post(stack.procs[H_TRANSFORM].port,
                          "{\"execution_id\":\"6f1c2a52-0d4e-4c43-9a55-0b7a3a0c1d05\"}", &status);
        CHECK_EQ_INT(status, 404);
        cJSON_Delete(ans);
        ans = post(stack.procs[H_AGGREGATE].port, "{\"job_name\":\"" JOB "\"}", &status);
        CHECK_EQ_INT(status, 400);
        cJSON_Delete(ans);
    }
    /* Over the body limit: 413 before the body is read. */
    big = malloc(2u * 1024 * 1024 + 1);
    memset(big, ' ', 2u * 1024 * 1024);
    big[0] = '{';
    big[2u * 1024 * 1024 - 1] = '}';
    big[2u * 1024 * 1024] = '\0';
    cJSON_Delete(post(stack.procs[H_EXTRACT].port, big, &status));
    CHECK_EQ_INT(status, 413);
    free(big);
    {
        struct h_resp r;
        h_http("GET", stack.procs[H_EXTRACT].port,
               "/v1/executions/6f1c2a52-0d4e-4c43-9a55-0b7a3a0c1d09", NULL, NULL, &r);
        CHECK_EQ_INT(r.status, 404);
        h_resp_free(&r);
        h_http("DELETE", stack.procs[H_EXTRACT].port, "/v1/executions", NULL, NULL, &r);
        CHECK_EQ_INT(r.status, 405);
        h_resp_free(&r);
        h_http("GET", stack.procs[H_EXTRACT].port, "/v1/executions?status=SLEEPING", NULL, NULL,
               &r);
        CHECK_EQ_INT(r.status, 400);
        h_resp_free(&r);
    }
    CHECK(executions() == before, "bad requests left %lld rows", executions() - before);
}

/* Generated bars of every ticker for [ws, we). */
struct expect {
    struct ms_bar *bars[NTICKERS];
    size_t n[NTICKERS];
    size_t total;
    size_t pages;
};

static void expect_make(struct expect *e, int64_t ws, int64_t we)
{
    memset(e, 0, sizeof(*e));
    for (int i = 0; i < NTICKERS; i++) {
        e->n[i] = ms_gen_minute_bars(SEED, tickers[i], ws * 1000, we * 1000 - 1, &e->bars[i]);
        e->total += e->n[i];
        e->pages += e->n[i] ? (e->n[i] + PAGE - 1) / PAGE : 1;
    }
}

static void expect_free(struct expect *e)
{
    for (int i = 0; i < NTICKERS; i++)
        free(e->bars[i]);
}

static double col(PGresult *res, int row, int c)
{
    return strtod(PQgetvalue(res, row, c), NULL);
}

/* Silver holds exactly the generated bars of each ticker, values unchanged. */
static void check_silver(const struct expect *e, int64_t ws, int64_t we)
{
    char wss[32], wes[32];

    tf_time_format(ws, wss, sizeof(wss));
    tf_time_format(we, wes, sizeof(wes));
    for (int i = 0; i < NTICKERS; i++) {
        const char *params[3] = {tickers[i], wss, wes};
        PGresult *res = PQexecParams(
            stack.db,
            "SELECT (extract(epoch FROM ts) * 1000)::bigint, open, high, low, close, volume,"
            " vwap, trades FROM silver.bars WHERE ticker = $1 AND timespan = '1minute'"
            " AND ts >= $2 AND ts < $3 ORDER BY ts",
            3, NULL, params, NULL, NULL, 0);
        int rows = PQntuples(res);
        double vol = 0, want_vol = 0;
        size_t mismatches = 0;

        CHECK(PQresultStatus(res) == PGRES_TUPLES_OK, "silver query");
        CHECK(rows == (int)e->n[i], "%s: %d silver rows, generated %zu", tickers[i], rows, e->n[i]);
        for (int r = 0; r < rows && r < (int)e->n[i]; r++) {
            const struct ms_bar *b = &e->bars[i][r];
            if (strtoll(PQgetvalue(res, r, 0), NULL, 10) != b->t_ms || col(res, r, 1) != b->o ||
                col(res, r, 2) != b->h || col(res, r, 3) != b->l || col(res, r, 4) != b->c ||
                col(res, r, 5) != b->v || col(res, r, 6) != b->vw ||
                strtoll(PQgetvalue(res, r, 7), NULL, 10) != b->n)
                mismatches++;
            vol += col(res, r, 5);
            want_vol += b->v;
        }
        CHECK(mismatches == 0, "%s: %zu silver bars differ from the generator", tickers[i],
              mismatches);
        if (rows > 0 && e->n[i] > 0) {
            const struct ms_bar *first = &e->bars[i][0];
            const struct ms_bar *last = &e->bars[i][e->n[i] - 1];
            CHECK_EQ_INT(strtoll(PQgetvalue(res, 0, 0), NULL, 10), first->t_ms);
            CHECK_EQ_DBL(col(res, 0, 1), first->o);
            CHECK_EQ_INT(strtoll(PQgetvalue(res, rows - 1, 0), NULL, 10), last->t_ms);
            CHECK_EQ_DBL(col(res, rows - 1, 4), last->c);
        }
        CHECK_EQ_DBL(vol, want_vol);
        PQclear(res);
    }
}

/* Gold holds each touched hour's rollup of the generated bars. */
static void check_gold(const struct expect *e, long long *gold_rows)
{
    *gold_rows = 0;
    for (int i = 0; i < NTICKERS; i++) {
        struct ms_bar *hours = NULL;
        size_t nh = ms_gen_rollup(e->bars[i], e->n[i], 1, "hour", &hours);
        size_t bad = 0;

        for (size_t h = 0; h < nh; h++) {
            char bucket[32];
            const char *params[2] = {tickers[i], bucket};
            PGresult *res;
            double vw_sum = 0, v_sum = 0;
            long long trades = 0, count = 0;

            tf_time_format(hours[h].t_ms / 1000, bucket, sizeof(bucket));
            /* VWAP and counts computed here from the same generated minutes. */
            for (size_t k = 0; k < e->n[i]; k++) {
                if (e->bars[i][k].t_ms / 3600000 == hours[h].t_ms / 3600000) {
                    vw_sum += e->bars[i][k].vw * e->bars[i][k].v;
                    v_sum += e->bars[i][k].v;
                    trades += e->bars[i][k].n;
                    count++;
                }
            }
            res = PQexecParams(stack.db,
                               "SELECT open, high, low, close, volume, vwap, trades, bar_count"
                               " FROM gold.bars_hourly WHERE ticker = $1"
                               " AND source_timespan = '1minute' AND bucket = $2",
                               2, NULL, params, NULL, NULL, 0);
            if (PQntuples(res) != 1) {
                bad++;
                CHECK(0, "%s %s: no gold row", tickers[i], bucket);
            } else if (col(res, 0, 0) != hours[h].o || col(res, 0, 1) != hours[h].h ||
                       col(res, 0, 2) != hours[h].l || col(res, 0, 3) != hours[h].c ||
                       col(res, 0, 4) != v_sum ||
                       fabs(col(res, 0, 5) - vw_sum / v_sum) > 1e-9 * (vw_sum / v_sum) ||
                       strtoll(PQgetvalue(res, 0, 6), NULL, 10) != trades ||
                       strtoll(PQgetvalue(res, 0, 7), NULL, 10) != count) {
                bad++;
                CHECK(0,
                      "%s %s: gold o=%s h=%s l=%s c=%s v=%s, want %.17g %.17g %.17g %.17g "
                      "%.17g",
                      tickers[i], bucket, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1),
                      PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 4),
                      hours[h].o, hours[h].h, hours[h].l, hours[h].c, v_sum);
            }
            PQclear(res);
        }
        CHECK(bad == 0 && nh > 0, "%s: %zu of %zu hourly rollups differ", tickers[i], bad, nh);
        *gold_rows += (long long)nh;
        free(hours);
    }
}

/* The event of execution id on topic, or NULL (caller deletes). */
static cJSON *find_event(const char *topic, const char *id, char *reason, size_t rlen)
{
    struct tf_kafka_consumer *cons = NULL;
    char group[96], err[256], full[128];
    cJSON *found = NULL;

    snprintf(group, sizeof(group), "%scheck-%ld-%s", stack.prefix, (long)getpid(), topic);
    snprintf(full, sizeof(full), "%s%s", stack.prefix, topic);
    if (tf_kafka_consumer_new(getenv("TICKFLOW_KAFKA_BROKERS"), h_kafka_opts(), group, full, &cons,
                              err, sizeof(err)) != TF_OK) {
        CHECK(0, "consumer: %s", err);
        return NULL;
    }
    for (int i = 0; i < h_timeout(30) * 2 && !found; i++) {
        rd_kafka_message_t *msg = tf_kafka_consumer_poll(cons, 500);
        char hid[64] = "";
        if (!msg)
            continue;
        tf_kafka_header(msg, "execution_id", hid, sizeof(hid));
        if (strcmp(hid, id) == 0) {
            found = cJSON_ParseWithLength(msg->payload, msg->len);
            if (!found)
                found = cJSON_CreateString("(not json)");
            if (reason)
                tf_kafka_header(msg, "reason", reason, rlen);
        }
        rd_kafka_message_destroy(msg);
    }
    tf_kafka_consumer_free(cons);
    return found;
}

static void test_pipeline(void)
{
    int64_t ws = 0, we = 0;
    struct expect e;
    char id[TF_UUID_LEN + 1], body[512];
    cJSON *first = NULL, *again = NULL, *rec = NULL, *ev = NULL;
    long status;
    long long gold_rows = 0;
    const char *id_param[1] = {id};

    CHECK(tf_time_parse("2024-03-04T14:30:00Z", &ws) == TF_OK, "parse");
    CHECK(tf_time_parse("2024-03-04T21:00:00Z", &we) == TF_OK, "parse");
    expect_make(&e, ws, we);
    CHECK_EQ_INT(e.n[0], 390);
    tf_uuid_new(id);
    body_for(body, sizeof(body), id, "2024-03-04T14:30:00Z", "2024-03-04T21:00:00Z");

    first = post(stack.procs[H_EXTRACT].port, body, &status);
    CHECK_EQ_INT(status, 202);
    CHECK_STR(h_jstr(first, "execution_id"), id);
    CHECK_STR(h_jstr(first, "stage"), "extract");
    /* The same trigger again: the first record, not a second run. */
    again = post(stack.procs[H_EXTRACT].port, body, &status);
    CHECK_EQ_INT(status, 200);
    CHECK_STR(h_jstr(again, "execution_id"), id);
    CHECK_STR(h_jstr(again, "created_at"), h_jstr(first, "created_at"));
    /* Both answers count the objects instead of listing them. */
    CHECK(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(first, "objects_summary")) &&
              cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(again, "objects_summary")) &&
              !cJSON_GetObjectItemCaseSensitive(first, "objects") &&
              !cJSON_GetObjectItemCaseSensitive(again, "objects"),
          "a POST answers with objects_summary, not objects");
    cJSON_Delete(again);
    /* The same id for another job: a conflict. */
    snprintf(body, sizeof(body), "{\"execution_id\":\"%s\",\"job_name\":\"demo_us_equities\"}", id);
    cJSON_Delete(post(stack.procs[H_EXTRACT].port, body, &status));
    CHECK_EQ_INT(status, 409);

    /* Kafka carries it through transform and aggregate. */
    rec = h_wait_stage(&stack, stack.procs[H_AGGREGATE].port, id, 120);
    CHECK(rec && strcmp(h_jstr(rec, "status"), "SUCCESS") == 0, "aggregate finished: %s",
          rec ? h_jstr(rec, "status") : "timeout");
    cJSON_Delete(rec);
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT count(*) FROM tickflow.job_execution WHERE execution_id = $1"
                         " AND status = 'SUCCESS' AND attempt = 1",
                         1, id_param),
                 3);

    rec = h_get_record(stack.procs[H_EXTRACT].port, id);
    CHECK_EQ_INT(h_jnum(rec, "records_out"), e.total);
    {
        /* The record counts the pages; they are listed one page of objects at a time. */
        const cJSON *sum = cJSON_GetObjectItemCaseSensitive(rec, "objects_summary");
        cJSON *objects = h_get_objects(stack.procs[H_EXTRACT].port, id, 2);
        const cJSON *o;
        double bytes = 0, records = 0;

        CHECK(cJSON_GetObjectItemCaseSensitive(rec, "objects") == NULL, "no objects inline");
        CHECK_EQ_INT(h_jnum(sum, "count"), e.pages);
        CHECK_EQ_INT(cJSON_GetArraySize(objects), e.pages);
        cJSON_ArrayForEach(o, objects)
        {
            /* marketsim answers gzip when asked: those bytes are the bronze object. */
            const char *uri = h_jstr(o, "uri") ? h_jstr(o, "uri") : "";
            struct tf_buf got;
            char sha[65];
            tf_buf_init(&got, 64u << 20);
            CHECK_STR(h_jstr(o, "encoding"), "gzip");
            CHECK(strstr(uri, ".json.gz") != NULL, "gzip object name %s", uri);
            CHECK(h_lake_read(&stack, uri, &got) >= 2 && (unsigned char)got.data[0] == 0x1f &&
                      (unsigned char)got.data[1] == 0x8b,
                  "%s starts with gzip's magic", uri);
            CHECK(h_jnum(o, "bytes") < h_jnum(o, "raw_bytes") / 2, "stored %.0f of %.0f bytes",
                  h_jnum(o, "bytes"), h_jnum(o, "raw_bytes"));
            tf_buf_cleanup(&got);
            CHECK_EQ_INT(h_lake_sha256(&stack, uri, sha), h_jnum(o, "bytes"));
            CHECK_STR(sha, h_jstr(o, "sha256"));
            bytes += h_jnum(o, "bytes");
            records += h_jnum(o, "records");
        }
        CHECK_EQ_INT(h_jnum(sum, "bytes"), bytes);
        CHECK_EQ_INT(h_jnum(sum, "records"), e.total);
        CHECK_EQ_INT(records, e.total);
        cJSON_Delete(objects);
    }
    cJSON_Delete(rec);
    rec = h_get_record(stack.procs[H_TRANSFORM].port, id);
    CHECK_EQ_INT(h_jnum(rec, "records_out"), e.total);
    CHECK_EQ_INT(h_jnum(rec, "records_rejected"), 0);
    {
        /* transform's objects: the day's Parquet file, as recorded. */
        cJSON *files = h_get_objects(stack.procs[H_TRANSFORM].port, id, 1);
        const cJSON *f = cJSON_GetArrayItem(files, 0);
        char sha[65];
        CHECK_EQ_INT(cJSON_GetArraySize(files), 1);
        CHECK_EQ_INT(h_jnum(cJSON_GetObjectItemCaseSensitive(rec, "objects_summary"), "count"), 1);
        CHECK_EQ_INT(h_lake_sha256(&stack, h_jstr(f, "uri") ? h_jstr(f, "uri") : "", sha),
                     h_jnum(f, "bytes"));
        CHECK_STR(sha, h_jstr(f, "sha256"));
        cJSON_Delete(files);
    }
    cJSON_Delete(rec);

    /* The attempt's audit: what was asked and answered, never the key. */
    {
        char path[128];
        struct h_resp r;
        cJSON *audit, *a;
        snprintf(path, sizeof(path), "/v1/executions/%s/audit", id);
        h_http("GET", stack.procs[H_EXTRACT].port, path, NULL, NULL, &r);
        CHECK_EQ_INT(r.status, 200);
        CHECK(strstr(r.body, API_KEY) == NULL, "no key in the audit");
        audit = cJSON_Parse(r.body);
        a = cJSON_GetArrayItem(cJSON_GetObjectItem(audit, "attempts"), 0);
        CHECK_EQ_INT(h_jnum(a, "requests"), e.pages);
        CHECK_EQ_INT(h_jnum(a, "pages"), e.pages);
        CHECK_EQ_INT(h_jnum(a, "retries"), 0);
        CHECK_EQ_INT(h_jnum(a, "bars"), e.total);
        CHECK_EQ_INT(h_jnum(cJSON_GetObjectItem(a, "http_statuses"), "2xx"), e.pages);
        CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(a, "vendor_request_ids")), e.pages);
        CHECK(h_jstr(a, "request_template") && strstr(h_jstr(a, "request_template"), "apiKey=***"),
              "template with the key masked");
        CHECK(h_jnum(a, "raw_bytes") > 2 * h_jnum(a, "stored_bytes"), "bronze is compressed");
        CHECK_EQ_INT(h_jnum(cJSON_GetObjectItem(cJSON_GetObjectItem(a, "tickers"), "AAPL"), "bars"),
                     e.n[0]);
        cJSON_Delete(audit);
        h_resp_free(&r);
    }
    check_silver(&e, ws, we);
    check_gold(&e, &gold_rows);
    CHECK_EQ_INT(gold_rows, 3 * 7 - (e.n[2] ? 0 : 7));
    rec = h_get_record(stack.procs[H_AGGREGATE].port, id);
    CHECK_EQ_INT(h_jnum(rec, "records_out"), gold_rows);
    CHECK_EQ_INT(h_jnum(rec, "records_in"), e.total);
    cJSON_Delete(rec);

    /* Each stage's event went out with the record's counts. */
    ev = find_event("tickflow.bronze.v1", id, NULL, 0);
    CHECK(ev && h_jstr(ev, "stage") && strcmp(h_jstr(ev, "stage"), "extract") == 0, "bronze event");
    CHECK_STR(h_jstr(ev, "schema"), "tickflow.stage_event");
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(ev, "objects")), e.pages);
    cJSON_Delete(ev);
    ev = find_event("tickflow.silver.v1", id, NULL, 0);
    CHECK_EQ_INT(h_jnum(cJSON_GetObjectItemCaseSensitive(ev, "records"), "out"), e.total);
    cJSON_Delete(ev);
    ev = find_event("tickflow.gold.v1", id, NULL, 0);
    CHECK_STR(h_jstr(ev, "status"), "SUCCESS");
    CHECK_EQ_INT(h_jnum(cJSON_GetObjectItemCaseSensitive(ev, "records"), "out"), gold_rows);
    cJSON_Delete(ev);

    /* Posting to transform after the chain ran it does not run it again. */
    snprintf(body, sizeof(body), "{\"execution_id\":\"%s\"}", id);
    rec = h_get_record(stack.procs[H_TRANSFORM].port, id);
    again = post(stack.procs[H_TRANSFORM].port, body, &status);
    CHECK_EQ_INT(status, 200);
    CHECK_STR(h_jstr(again, "finished_at"), h_jstr(rec, "finished_at"));
    CHECK_EQ_INT(h_jnum(again, "attempt"), 1);
    cJSON_Delete(again);
    cJSON_Delete(rec);
    again = post(stack.procs[H_AGGREGATE].port, body, &status);
    CHECK_EQ_INT(status, 200);
    CHECK_EQ_INT(h_jnum(again, "attempt"), 1);
    cJSON_Delete(again);

    cJSON_Delete(first);
    expect_free(&e);
}

/*
 * Airflow style: one execution driven stage by stage over HTTP, its window
 * overlapping the first run's. Each stage runs once whichever trigger
 * wins, and the overlap leaves every bar once.
 */
static void test_stage_by_stage_overlap(void)
{
    char id[TF_UUID_LEN + 1], body[512];
    int64_t ws = 0, we = 0, all_ws = 0;
    struct expect e;
    cJSON *rec;
    long status;
    const char *id_param[1] = {id};

    CHECK(tf_time_parse("2024-03-04T20:00:00Z", &ws) == TF_OK, "parse");
    CHECK(tf_time_parse("2024-03-05T16:00:00Z", &we) == TF_OK, "parse");
    CHECK(tf_time_parse("2024-03-04T14:30:00Z", &all_ws) == TF_OK, "parse");
    tf_uuid_new(id);
    snprintf(body, sizeof(body),
             "{\"execution_id\":\"%s\",\"job_name\":\"" JOB "\",\"window_start\":"
             "\"2024-03-04T20:00:00Z\",\"window_end\":\"2024-03-05T16:00:00Z\","
             "\"wait_seconds\":60}",
             id);
    rec = post(stack.procs[H_EXTRACT].port, body, &status);
    CHECK_EQ_INT(status, 200);
    CHECK_STR(h_jstr(rec, "status"), "SUCCESS");
    cJSON_Delete(rec);
    snprintf(body, sizeof(body), "{\"execution_id\":\"%s\",\"wait_seconds\":60}", id);
    rec = post(stack.procs[H_TRANSFORM].port, body, &status);
    CHECK_EQ_INT(status, 200);
    CHECK_STR(h_jstr(rec, "status"), "SUCCESS");
    cJSON_Delete(rec);
    rec = post(stack.procs[H_AGGREGATE].port, body, &status);
    CHECK_EQ_INT(status, 200);
    CHECK_STR(h_jstr(rec, "status"), "SUCCESS");
    cJSON_Delete(rec);
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT count(*) FROM tickflow.job_execution WHERE execution_id = $1"
                         " AND attempt = 1",
                         1, id_param),
                 3);
    /* Both windows together: each generated bar exactly once. */
    expect_make(&e, all_ws, we);
    check_silver(&e, all_ws, we);
    {
        long long gold_rows = 0;
        check_gold(&e, &gold_rows);
    }
    expect_free(&e);
}

/*
 * A failed stage: the provider refuses a ticker. The record says why (and
 * not the key); the orchestrator's retry runs it again until the job's
 * attempts are spent, then gets the last record back.
 */
static void test_failed_stage_retry(void)
{
    char id[TF_UUID_LEN + 1], body[512];
    cJSON *rec;
    long status;
    PGresult *res = PQexec(stack.db, "INSERT INTO tickflow.job_config (job_name, provider, tickers,"
                                     " max_attempts, updated_by) VALUES ('e2e_bad', 'polygon',"
                                     " '{AAPL,bad-ticker}', 2, 'e2e')");

    CHECK(PQresultStatus(res) == PGRES_COMMAND_OK, "job insert");
    PQclear(res);
    tf_uuid_new(id);
    snprintf(body, sizeof(body),
             "{\"execution_id\":\"%s\",\"job_name\":\"e2e_bad\",\"window_start\":"
             "\"2024-03-04T14:30:00Z\",\"window_end\":\"2024-03-04T15:30:00Z\","
             "\"wait_seconds\":60}",
             id);
    rec = post(stack.procs[H_EXTRACT].port, body, &status);
    CHECK_EQ_INT(status, 200);
    CHECK_STR(h_jstr(rec, "status"), "FAILED");
    CHECK_EQ_INT(h_jnum(rec, "attempt"), 1);
    CHECK(h_jstr(rec, "error") && strstr(h_jstr(rec, "error"), "HTTP 400") &&
              !strstr(h_jstr(rec, "error"), API_KEY),
          "error names the provider's answer: %s",
          h_jstr(rec, "error") ? h_jstr(rec, "error") : "-");
    cJSON_Delete(rec);
    rec = post(stack.procs[H_EXTRACT].port, body, &status);
    CHECK_EQ_INT(status, 200);
    CHECK_STR(h_jstr(rec, "status"), "FAILED");
    CHECK_EQ_INT(h_jnum(rec, "attempt"), 2);
    /* The retry fetched AAPL again (other bytes: a new request id) into its own objects. */
    CHECK(h_jstr(rec, "error") && strstr(h_jstr(rec, "error"), "bad-ticker") &&
              strstr(h_jstr(rec, "error"), "HTTP 400"),
          "the retry fails on the provider's answer, not on its own bronze: %s",
          h_jstr(rec, "error") ? h_jstr(rec, "error") : "-");
    {
        char attempt2[128];
        snprintf(attempt2, sizeof(attempt2), "exec=%s/attempt=2/AAPL.page-0001.json", id);
        CHECK_EQ_INT(h_lake_paths_containing(&stack, attempt2), 1);
    }
    cJSON_Delete(rec);
    rec = post(stack.procs[H_EXTRACT].port, body, &status);
    CHECK_EQ_INT(status, 200);
    CHECK_EQ_INT(h_jnum(rec, "attempt"), 2);
    cJSON_Delete(rec);
    /* Nothing downstream ran. */
    rec = h_get_record(stack.procs[H_TRANSFORM].port, id);
    CHECK(rec == NULL, "no transform record for a failed extract");
    cJSON_Delete(rec);
}

/* An ISO-8601 member of a record as epoch seconds (-1 when absent or bad). */
static int64_t rec_time(const cJSON *rec, const char *key)
{
    int64_t t = -1;

    if (!h_jstr(rec, key) || tf_time_parse(h_jstr(rec, key), &t) != TF_OK)
        return -1;
    return t;
}

/* Reads one stage record straight from the database (new object). */
static cJSON *db_record(const char *id, const char *stage)
{
    cJSON *rec = NULL;

    return tf_exec_get(stack.db, id, stage, &rec) == TF_OK ? rec : NULL;
}

/*
 * A worker that died mid-run: its stage stays RUNNING with a stale
 * heartbeat. The sweeper declares it ZOMBIE, another attempt takes it, and
 * the execution completes.
 */
static void test_zombie_recovery(void)
{
    char id[TF_UUID_LEN + 1];
    const char *params[1] = {id};
    PGresult *res;
    cJSON *rec;

    tf_uuid_new(id);
    res = PQexecParams(stack.db,
                       "INSERT INTO tickflow.job_execution (execution_id, stage, job_name,"
                       " status, attempt, window_start, window_end, tickers, worker_id,"
                       " started_at, heartbeat_at) VALUES ($1, 'extract', '" JOB "', 'RUNNING',"
                       " 1, '2024-03-08T14:30:00Z', '2024-03-08T15:30:00Z', '{AAPL}',"
                       " 'crashed-worker', now() - interval '1 hour', now() - interval '1 hour')",
                       1, NULL, params, NULL, NULL, 0);
    CHECK(PQresultStatus(res) == PGRES_COMMAND_OK, "crashed run inserted: %s",
          PQresultErrorMessage(res));
    PQclear(res);
    rec = h_wait_stage(&stack, stack.procs[H_AGGREGATE].port, id, 60);
    CHECK(rec && strcmp(h_jstr(rec, "status"), "SUCCESS") == 0, "completed after the crash: %s",
          rec ? h_jstr(rec, "status") : "timeout");
    cJSON_Delete(rec);
    rec = db_record(id, "extract");
    CHECK_EQ_INT(h_jnum(rec, "attempt"), 2);
    CHECK(h_jstr(rec, "worker_id") && strcmp(h_jstr(rec, "worker_id"), "crashed-worker") != 0,
          "a live worker took over");
    CHECK_EQ_INT(h_jnum(rec, "records_out"), 60);
    cJSON_Delete(rec);
}

/*
 * A worker that died between recording SUCCESS and publishing the event:
 * the record is the outbox, the sweeper sends the event, the next stages run.
 */
static void test_publish_after_crash(void)
{
    char id[TF_UUID_LEN + 1], src[TF_UUID_LEN + 1];
    const char *params[2] = {id, src};
    char *from = h_pg_value(stack.db,
                            "SELECT execution_id FROM tickflow.job_execution WHERE stage ="
                            " 'extract' AND status = 'SUCCESS' AND job_name = '" JOB "'"
                            " AND window_start = '2024-03-04T14:30:00Z' LIMIT 1",
                            0, NULL);
    cJSON *rec;

    CHECK(from != NULL, "a finished extract to copy");
    if (!from)
        return;
    snprintf(src, sizeof(src), "%s", from);
    free(from);
    /* Same bronze objects, finished a minute ago, event never sent. */
    CHECK(h_copy_extract(stack.db, src, 0, id) == 0, "unpublished run inserted");
    rec = h_wait_stage(&stack, stack.procs[H_AGGREGATE].port, id, 60);
    CHECK(rec && strcmp(h_jstr(rec, "status"), "SUCCESS") == 0, "completed from the outbox: %s",
          rec ? h_jstr(rec, "status") : "timeout");
    cJSON_Delete(rec);
    rec = db_record(id, "transform");
    CHECK_EQ_INT(h_jnum(rec, "records_out"), 1100);
    cJSON_Delete(rec);
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT count(*) FROM tickflow.job_execution WHERE execution_id = $1"
                         " AND stage = 'extract' AND event_published_at IS NOT NULL",
                         1, params),
                 1);
}

/* A redelivered event of a finished execution changes nothing. */
static void test_redelivered_event(void)
{
    char *id = h_pg_value(stack.db,
                          "SELECT execution_id FROM tickflow.job_execution WHERE stage ="
                          " 'transform' AND status = 'SUCCESS' ORDER BY finished_at LIMIT 1",
                          0, NULL);
    cJSON *before = NULL, *after = NULL;
    long long consumed;

    CHECK(id != NULL, "a finished execution");
    if (!id)
        return;
    before = db_record(id, "transform");
    consumed = h_metric(stack.procs[H_TRANSFORM].port, "tickflow_events_consumed_total");
    CHECK(h_send_event(stack.db, stack.prefix, "tickflow.bronze.v1", id, "extract") == 0,
          "its bronze event sent again");
    /* Settled: transform committed past it, having done whatever it was going to do. */
    CHECK(h_wait_consumed(stack.prefix, "tickflow.bronze.v1", "transform", 30) == 0,
          "transform settled the redelivered event");
    CHECK(h_metric(stack.procs[H_TRANSFORM].port, "tickflow_events_consumed_total") > consumed,
          "transform read the redelivered event");
    after = db_record(id, "transform");
    CHECK_EQ_INT(h_jnum(after, "attempt"), 1);
    CHECK_STR(h_jstr(after, "finished_at"), h_jstr(before, "finished_at"));
    cJSON_Delete(before);
    cJSON_Delete(after);
    free(id);
}

/*
 * Without a window, extract takes the next one: from the end of the last
 * good window less the overlap, to now truncated to the bar. When there is
 * no new complete bar, the answer is 409 and nothing is created.
 */
static void test_incremental_window(void)
{
    char id[TF_UUID_LEN + 1], body[256];
    int64_t now = tf_time_now();
    int64_t today = now - now % 86400;
    cJSON *rec;
    long status;
    PGresult *res = PQexec(stack.db, "INSERT INTO tickflow.job_config (job_name, provider,"
                                     " tickers, timespan, interval_seconds, overlap_seconds,"
                                     " updated_by) VALUES ('e2e_daily', 'polygon', '{MSFT}',"
                                     " 'day', 259200, 3600, 'e2e')");

    CHECK(PQresultStatus(res) == PGRES_COMMAND_OK, "daily job");
    PQclear(res);
    tf_uuid_new(id);
    snprintf(body, sizeof(body),
             "{\"execution_id\":\"%s\",\"job_name\":\"e2e_daily\",\"wait_seconds\":60}", id);
    rec = post(stack.procs[H_EXTRACT].port, body, &status);
    CHECK_EQ_INT(status, 200);
    CHECK_STR(h_jstr(rec, "status"), "SUCCESS");
    CHECK_EQ_INT(rec_time(rec, "window_end"), today);
    CHECK_EQ_INT(rec_time(rec, "window_start"), today - 3 * 86400);
    cJSON_Delete(rec);
    /* Nothing new today: up to date, and no record left behind. (The first
     * run's transform and aggregate records may still be arriving through
     * Kafka, so only the request's own id is counted.) */
    tf_uuid_new(id);
    snprintf(body, sizeof(body), "{\"execution_id\":\"%s\",\"job_name\":\"e2e_daily\"}", id);
    rec = post(stack.procs[H_EXTRACT].port, body, &status);
    CHECK_EQ_INT(status, 409);
    {
        cJSON *e = cJSON_GetObjectItem(rec, "error");
        CHECK(h_jstr(e, "message") && strstr(h_jstr(e, "message"), "up to date"), "says why: %s",
              h_jstr(e, "message") ? h_jstr(e, "message") : "-");
    }
    cJSON_Delete(rec);
    CHECK_EQ_INT(rows_of(id), 0);
    /* A window in the future is refused. */
    tf_uuid_new(id);
    body_for(body, sizeof(body), id, "2100-01-01T00:00:00Z", "2100-01-02T00:00:00Z");
    cJSON_Delete(post(stack.procs[H_EXTRACT].port, body, &status));
    CHECK_EQ_INT(status, 400);
    CHECK_EQ_INT(rows_of(id), 0);
}

/* An event that is not a stage event goes to the dead-letter topic with a reason. */
static void test_dead_letter(void)
{
    const char *id = "0d3b8f0e-5a5e-4c1c-8a8e-3f0c6f7e9d11";
    char reason[256] = "";
    cJSON *ev;

    CHECK(h_produce(stack.prefix, "tickflow.bronze.v1", id, "{not json") == 0, "bad event sent");
    ev = find_event("tickflow.dlq.v1", id, reason, sizeof(reason));
    CHECK(ev != NULL, "the bad event reached the dead-letter topic");
    CHECK(strstr(reason, "JSON") != NULL, "reason names the problem: %s", reason);
    CHECK_EQ_INT(h_metric(stack.procs[H_TRANSFORM].port, "tickflow_dead_letters_total"), 1);
    cJSON_Delete(ev);
}

/* The API key appears nowhere: logs, records, events, lake paths. */
static void test_no_secret_anywhere(void)
{
    for (int i = 1; i < 4; i++)
        CHECK(!h_file_contains(stack.procs[i].log, API_KEY), "%s log holds the key",
              stack.procs[i].name);
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT count(*) FROM tickflow.job_execution e"
                         " WHERE e::text LIKE '%' || $1 || '%'",
                         1, (const char *const[]){API_KEY}),
                 0);
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT count(*) FROM tickflow.extract_audit a"
                         " WHERE a::text LIKE '%' || $1 || '%'",
                         1, (const char *const[]){API_KEY}),
                 0);
    CHECK_EQ_INT(h_lake_paths_containing(&stack, API_KEY), 0);
    CHECK(h_lake_paths_containing(&stack, "page-0001.json") >= NTICKERS, "bronze pages exist");
    /* Every stage event this stack published, on every topic. */
    {
        static const char *const topics[] = {"tickflow.bronze.v1", "tickflow.silver.v1",
                                             "tickflow.gold.v1", "tickflow.dlq.v1"};
        long events = 0, with_key = 0;
        for (size_t t = 0; t < sizeof(topics) / sizeof(topics[0]); t++)
            events += h_topic_scan(stack.prefix, topics[t], API_KEY, &with_key);
        CHECK(events >= 9, "%ld events read", events);
        CHECK_EQ_INT(with_key, 0);
    }
}

/*
 * Polygon's forex (C:) and crypto (X:) tickers at 5-minute bars: the
 * sessions (24/7 crypto, Sunday-to-Friday forex) and the roll-up to the
 * job's bar size come through exactly as generated.
 */
static void test_polygon_fx_crypto(void)
{
    static const char *const fx[] = {"X:BTCUSD", "C:EURUSD"};
    const char *ws_s = "2024-03-09T00:00:00Z", *we_s = "2024-03-11T00:00:00Z"; /* a weekend */
    char id[TF_UUID_LEN + 1], body[512];
    int64_t ws = 0, we = 0;
    long status;
    cJSON *rec;
    PGresult *res =
        PQexec(stack.db, "INSERT INTO tickflow.job_config (job_name, provider, tickers,"
                         " multiplier, timespan, page_limit, updated_by) VALUES ('e2e_fx',"
                         " 'polygon', '{X:BTCUSD,C:EURUSD}', 5, 'minute', 1000, 'e2e')");

    CHECK(PQresultStatus(res) == PGRES_COMMAND_OK, "fx job: %s", PQresultErrorMessage(res));
    PQclear(res);
    CHECK(tf_time_parse(ws_s, &ws) == TF_OK && tf_time_parse(we_s, &we) == TF_OK, "parse");
    tf_uuid_new(id);
    snprintf(body, sizeof(body),
             "{\"execution_id\":\"%s\",\"job_name\":\"e2e_fx\",\"window_start\":\"%s\","
             "\"window_end\":\"%s\"}",
             id, ws_s, we_s);
    cJSON_Delete(post(stack.procs[H_EXTRACT].port, body, &status));
    CHECK_EQ_INT(status, 202);
    rec = h_wait_stage(&stack, stack.procs[H_TRANSFORM].port, id, 120);
    CHECK(rec && strcmp(h_jstr(rec, "status"), "SUCCESS") == 0, "fx transform: %s",
          rec ? h_jstr(rec, "status") : "timeout");
    cJSON_Delete(rec);
    for (size_t i = 0; i < 2; i++) {
        struct ms_bar *mins = NULL, *bars = NULL;
        size_t nm = ms_gen_minute_bars(SEED, fx[i], ws * 1000, we * 1000 - 1, &mins);
        size_t nb = ms_gen_rollup(mins, nm, 5, "minute", &bars);
        const char *params[3] = {fx[i], ws_s, we_s};
        PGresult *r = PQexecParams(stack.db,
                                   "SELECT (extract(epoch FROM ts) * 1000)::bigint, open, high,"
                                   " low, close, volume FROM silver.bars WHERE ticker = $1"
                                   " AND timespan = '5minute' AND ts >= $2 AND ts < $3"
                                   " ORDER BY ts",
                                   3, NULL, params, NULL, NULL, 0);
        size_t differ = 0;

        CHECK(PQntuples(r) == (int)nb, "%s: %d silver bars, generated %zu", fx[i], PQntuples(r),
              nb);
        size_t vol_ulps = 0;
        for (int k = 0; k < PQntuples(r) && k < (int)nb; k++) {
            double v = strtod(PQgetvalue(r, k, 5), NULL);
            differ += strtoll(PQgetvalue(r, k, 0), NULL, 10) != bars[k].t_ms ||
                      strtod(PQgetvalue(r, k, 1), NULL) != bars[k].o ||
                      strtod(PQgetvalue(r, k, 4), NULL) != bars[k].c ||
                      fabs(v - bars[k].v) > 1e-9 * fabs(bars[k].v);
            vol_ulps += v != bars[k].v;
        }
        CHECK(differ == 0, "%s: %zu bars differ", fx[i], differ);
        if (vol_ulps)
            printf("# %s: %zu volume sums differ in the last bits (printed with %%.15g)\n", fx[i],
                   vol_ulps);
        PQclear(r);
        free(mins);
        free(bars);
    }
    /* Crypto trades all weekend (576 five-minute bars); forex only from Sunday 17:00 New York. */
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT count(*) FROM silver.bars WHERE ticker = 'X:BTCUSD'"
                         " AND timespan = '5minute' AND ts >= '2024-03-09' AND ts < '2024-03-11'",
                         0, NULL),
                 576);
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT count(*) FROM silver.bars WHERE ticker = 'C:EURUSD'"
                         " AND timespan = '5minute' AND ts < '2024-03-10T21:00:00Z'"
                         " AND ts >= '2024-03-09'",
                         0, NULL),
                 0);
}

/* The job this test runs: three tickers, one of them sparse, 100 base bars a page. */
static int add_job(void)
{
    char span[] = "{AAPL,MSFT,QQQ.SPARSE}";
    const char *params[1] = {span};
    PGresult *res =
        PQexecParams(stack.db,
                     "INSERT INTO tickflow.job_config (job_name, provider, tickers, multiplier,"
                     " timespan, page_limit, interval_seconds, overlap_seconds, updated_by)"
                     " VALUES ('" JOB "', 'polygon', $1, 1, 'minute', 100, 86400, 300, 'e2e')",
                     1, NULL, params, NULL, NULL, 0);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;

    CHECK(ok, "job insert: %s", PQresultErrorMessage(res));
    PQclear(res);
    return ok ? 0 : -1;
}

/* A number the database answers (sql with one $1 = param, or none), -1 when none. */
static double db_num(const char *sql, const char *param)
{
    const char *params[1] = {param};
    char *v = h_pg_value(stack.db, sql, param ? 1 : 0, params);
    double d = v ? strtod(v, NULL) : -1;

    free(v);
    return d;
}

/*
 * A stage record's start and finish are wall-clock times: transform held
 * inside its transaction, until it has run 2 s, by another session holding a
 * ticker's silver lock records that time, within what the test saw from the
 * POST to the final record (not its transaction's start as its finish).
 */
static void test_recorded_time(void)
{
    static const char now_sql[] = "SELECT extract(epoch FROM clock_timestamp())";
    char id[TF_UUID_LEN + 1], body[512];
    PGconn *holder = PQconnectdb(stack.dsn);
    PGresult *res;
    cJSON *rec;
    long status;
    double before, after, recorded, start, finish, seen;
    struct timespec t0, t1;
    const char *idp[1] = {id};
    int held = 0;

    /* The lock first: the transform that extract's event starts waits for it. */
    res = PQexec(holder, "BEGIN; SELECT pg_advisory_xact_lock(hashtext('tickflow.silver'),"
                         " hashtext('AAPL'))");
    CHECK(PQresultStatus(res) == PGRES_TUPLES_OK, "lock: %s", PQerrorMessage(holder));
    PQclear(res);
    before = db_num(now_sql, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    tf_uuid_new(id);
    snprintf(body, sizeof(body),
             "{\"execution_id\":\"%s\",\"job_name\":\"" JOB "\",\"window_start\":"
             "\"2024-03-06T14:30:00Z\",\"window_end\":\"2024-03-06T16:00:00Z\","
             "\"wait_seconds\":60}",
             id);
    rec = post(stack.procs[H_EXTRACT].port, body, &status);
    CHECK_STR(h_jstr(rec, "status"), "SUCCESS");
    cJSON_Delete(rec);
    /* Held until transform has run 2 s, waiting for the lock (the one advisory lock
     * requested and not granted in the stack's database). */
    for (double end = h_now_s() + h_timeout(60);
         !held && h_now_s() < end && h_stack_alive(&stack);) {
        held = h_pg_ll(stack.db,
                       "SELECT count(*) FROM tickflow.job_execution WHERE execution_id = $1"
                       " AND stage = 'transform' AND status = 'RUNNING'"
                       " AND clock_timestamp() - started_at >= interval '2 s' AND EXISTS"
                       " (SELECT 1 FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
                       "  WHERE d.datname = current_database() AND l.locktype = 'advisory'"
                       "  AND NOT l.granted)",
                       1, idp) == 1;
        if (!held)
            h_sleep_ms(100);
    }
    CHECK(held, "transform waited 2 s for the silver lock");
    res = PQexec(holder, "COMMIT");
    PQclear(res);
    rec = h_wait_stage(&stack, stack.procs[H_TRANSFORM].port, id, 60);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    after = db_num(now_sql, NULL);
    CHECK(rec && strcmp(h_jstr(rec, "status"), "SUCCESS") == 0, "transform: %s",
          rec ? h_jstr(rec, "status") : "timeout");
    cJSON_Delete(rec);
    seen = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    start = db_num("SELECT extract(epoch FROM started_at) FROM tickflow.job_execution"
                   " WHERE execution_id = $1 AND stage = 'transform'",
                   id);
    finish = db_num("SELECT extract(epoch FROM finished_at) FROM tickflow.job_execution"
                    " WHERE execution_id = $1 AND stage = 'transform'",
                    id);
    recorded = finish - start;
    CHECK(recorded >= 2.0 && recorded <= seen,
          "transform recorded %.3f s; the test held it 2 s and saw %.3f s in all", recorded, seen);
    CHECK(start >= before && finish <= after,
          "transform's record [%.3f, %.3f] lies outside what the test saw [%.3f, %.3f]", start,
          finish, before, after);
    PQfinish(holder);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (h_stack_start(&stack, "e2e", API_KEY, SEED, NULL) == 0 && add_job() == 0) {
        test_bad_requests();
        test_pipeline();
        test_stage_by_stage_overlap();
        test_recorded_time();
        test_failed_stage_retry();
        test_zombie_recovery();
        test_publish_after_crash();
        test_redelivered_event();
        test_incremental_window();
        test_polygon_fx_crypto();
        test_dead_letter();
        test_no_secret_anywhere();
    } else {
        CHECK(0, "the stack did not start (see %s)", stack.dir);
    }
    CHECK_EQ_INT(h_stack_stop(&stack), 0);
    return check_summary();
}
