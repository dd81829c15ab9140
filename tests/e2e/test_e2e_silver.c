/*
 * test_e2e_silver.c - silver you can trust, native binaries on the real
 * PostgreSQL and Kafka: transform runs on hand-made bronze pages (gzip and
 * zstd) recorded as finished extracts, so every bar's fate is known here.
 *
 *   - one bad bar per rule: each lands in silver.rejected_bars under that
 *     rule's name, the good bars in silver, the counts in the record and in
 *     the silver event;
 *   - a bar exactly on window_start is kept, one on window_end rejected;
 *   - two overlapping windows store the overlap once; a later execution's
 *     correction replaces the old value, and rebuilding the older execution
 *     afterwards does not bring the old value back;
 *   - day bars across DST (Polygon at New York midnight, Twelve Data's
 *     exchange dates), a minute window across the DST change, a holiday;
 *   - a second run of an execution (retry after FAILED, replay) leaves
 *     silver, the quarantine and the Parquet files as they were;
 *   - monthly partitions are made on demand; a bar of a month without one
 *     lands in the DEFAULT partition and moves once the month is made.
 */
#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"
#include "tf/buf.h"
#include "tf/exec.h"
#include "tf/gz.h"
#include "tf/kafka.h"
#include "tf/lake.h"
#include "tf/time.h"

#define API_KEY "silver-Secret-Key-3d71"
#define JOB     "e2e_silver"

static struct h_stack stack;

/* Sends a request and parses the JSON answer (caller deletes; NULL when none). */
static cJSON *call(const char *method, int port, const char *path, const char *body, long *status)
{
    return h_call(method, port, path, body, NULL, status);
}

/* Runs sql and checks that it succeeded; 0 when it did, -1 when not. */
static int sql_ok(const char *sql)
{
    PGresult *res = PQexec(stack.db, sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;

    CHECK(ok, "%s: %s", sql, PQresultErrorMessage(res));
    PQclear(res);
    return ok ? 0 : -1;
}

/*
 * Lands a hand-made page in the lake as extract would (gzip or zstd) and
 * appends its object to objects.
 */
static void land(const char *id, int pageno, const char *provider, const char *ticker,
                 const char *span, const char *encoding, const char *json, cJSON *objects)
{
    const struct h_page pg = {provider, NULL, ticker, span, encoding, pageno};
    char key[300];
    cJSON *o;

    snprintf(key, sizeof(key), "handmade/%s-%d.json.%s", id, pageno, encoding);
    o = h_lake_bronze_page(&stack, key, json, strlen(json), &pg);
    CHECK(o != NULL, "hand-made page %d landed", pageno);
    if (o)
        cJSON_AddItemToArray(objects, o);
}

/*
 * Records a finished extract of job over [ws, we) with the given objects,
 * fetched at fetched (its finished_at); takes objects. Writes the new id.
 */
static void extract_row(char id[TF_UUID_LEN + 1], const char *job, const char *ws, const char *we,
                        const char *tickers, const char *fetched, cJSON *objects)
{
    char *text = cJSON_PrintUnformatted(objects);
    const char *params[7] = {id, job, ws, we, tickers, text, fetched};
    PGresult *res =
        PQexecParams(stack.db,
                     "INSERT INTO tickflow.job_execution (execution_id, stage, job_name,"
                     " status, attempt, window_start, window_end, tickers, objects,"
                     " worker_id, started_at, finished_at, event_published_at)"
                     " VALUES ($1, 'extract', $2, 'SUCCESS', 1, $3, $4, $5, $6::jsonb,"
                     " 'handmade', $7, $7, now())",
                     7, NULL, params, NULL, NULL, 0);

    CHECK(PQresultStatus(res) == PGRES_COMMAND_OK, "hand-made extract: %s",
          PQresultErrorMessage(res));
    PQclear(res);
    cJSON_free(text);
    cJSON_Delete(objects);
}

/* POSTs to transform and waits for the outcome (caller deletes). */
static cJSON *transform(const char *id, int replay, long *status)
{
    char body[200];

    snprintf(body, sizeof(body), "{\"execution_id\":\"%s\",\"wait_seconds\":60%s}", id,
             replay ? ",\"replay\":true" : "");
    return call("POST", stack.procs[H_TRANSFORM].port, "/v1/executions", body, status);
}

static long long q_ll(const char *sql, const char *p1)
{
    const char *params[1] = {p1};

    return h_pg_ll(stack.db, sql, p1 ? 1 : 0, params);
}

static char *q_str(const char *sql, const char *p1)
{
    const char *params[1] = {p1};

    return h_pg_value(stack.db, sql, p1 ? 1 : 0, params);
}

/* Milliseconds of an ISO time. */
static long long ms(const char *iso)
{
    int64_t t = 0;

    CHECK(tf_time_parse(iso, &t) == TF_OK, "time %s", iso);
    return (long long)t * 1000;
}

/* A Polygon result item. */
static int pbar(char *out, size_t len, long long t, double o, double h, double l, double c,
                double v)
{
    return snprintf(out, len,
                    "{\"t\":%lld,\"o\":%.17g,\"h\":%.17g,\"l\":%.17g,\"c\":%.17g,\"v\":%.17g,"
                    "\"vw\":%.17g,\"n\":%d}",
                    t, o, h, l, c, v, (h + l) / 2, 7);
}

/* The event of execution id on the silver topic (caller deletes), NULL when none. */
static cJSON *silver_event(const char *id, int attempt)
{
    struct tf_kafka_consumer *cons = NULL;
    char group[96], err[256], full[128];
    cJSON *found = NULL;

    snprintf(group, sizeof(group), "%scheck-%ld-%d", stack.prefix, (long)getpid(), attempt);
    snprintf(full, sizeof(full), "%stickflow.silver.v1", stack.prefix);
    if (tf_kafka_consumer_new(getenv("TICKFLOW_KAFKA_BROKERS"), h_kafka_opts(), group, full, &cons,
                              err, sizeof(err)) != TF_OK) {
        CHECK(0, "consumer: %s", err);
        return NULL;
    }
    for (int i = 0; i < h_timeout(30) * 2 && !found; i++) {
        rd_kafka_message_t *msg = tf_kafka_consumer_poll(cons, 500);
        cJSON *ev;
        if (!msg)
            continue;
        ev = cJSON_ParseWithLength(msg->payload, msg->len);
        if (ev && h_jstr(ev, "execution_id") && strcmp(h_jstr(ev, "execution_id"), id) == 0 &&
            h_jnum(ev, "attempt") == attempt)
            found = ev;
        else
            cJSON_Delete(ev);
        rd_kafka_message_destroy(msg);
    }
    tf_kafka_consumer_free(cons);
    return found;
}

static const char *const rules[] = {"not_finite",           "ts_invalid",
                                    "price_not_positive",   "volume_negative",
                                    "high_below_low",       "high_below_open_close",
                                    "low_above_open_close", "ts_misaligned",
                                    "outside_window",       "duplicate"};

static char rules_id[TF_UUID_LEN + 1];

/* One bad bar per rule on one page, a page of a ticker outside the job, a zstd page. */
static void test_rules(void)
{
    char page[8192], item[400], page1[1500], *raw;
    size_t off = 0;
    long long t0 = ms("2024-03-04T14:30:00Z");
    long long m = 60000;
    cJSON *objects = cJSON_CreateArray(), *rec, *ev;
    long status;
    PGresult *res;

#define ADD(...)                                                                                   \
    do {                                                                                           \
        pbar(item, sizeof(item), __VA_ARGS__);                                                     \
        off +=                                                                                     \
            (size_t)snprintf(page + off, sizeof(page) - off, "%s%s", off > 40 ? "," : "", item);   \
    } while (0)

    off = (size_t)snprintf(page, sizeof(page), "{\"ticker\":\"GOOD\",\"results\":[");
    ADD(t0, 10, 11, 9, 10.5, 100);                             /* 0 on window_start: kept */
    ADD(t0 + m, 10.25, 11, 9.5, 10, 0);                        /* 1 kept (volume 0 is fine) */
    ADD(t0 + 2 * m, 0.1, 0.30000000000000004, 0.1, 0.2, 1e-7); /* 2 kept, exact doubles */
    off += (size_t)snprintf(page + off, sizeof(page) - off,
                            ",{\"t\":%lld,\"o\":10,\"h\":11,\"l\":9,\"v\":5}", t0 + 3 * m);
    /* 3 not_finite: no close */
    ADD(t0 + 4 * m, 0, 11, 9, 10, 5);                  /* 4 price_not_positive */
    ADD(t0 + 5 * m, 10, 11, 9, 10, -1);                /* 5 volume_negative */
    ADD(t0 + 6 * m, 9.5, 9, 10, 9.5, 5);               /* 6 high_below_low */
    ADD(t0 + 7 * m, 10, 10.5, 9, 11, 5);               /* 7 high_below_open_close */
    ADD(t0 + 8 * m, 10, 11, 10.2, 10.5, 5);            /* 8 low_above_open_close */
    ADD(t0 + 9 * m + 30000, 10, 11, 9, 10, 5);         /* 9 ts_misaligned */
    ADD(ms("2024-03-04T15:30:00Z"), 10, 11, 9, 10, 5); /* 10 outside_window: on window_end */
    ADD(t0 + 10 * m, 1, 1, 1, 1, 1);                   /* 11 duplicate: the later copy wins */
    ADD(t0 + 10 * m, 20, 22, 19, 21, 2);               /* 12 kept */
    ADD(100000000000000000LL, 10, 11, 9, 10, 5);       /* 13 ts_invalid: no time at all */
    snprintf(page + off, sizeof(page) - off, "]}");
    land("rules", 1, "polygon", "GOOD", "1minute", "gzip", page, objects);
    /* A ticker the job does not have: every bar is unknown_ticker. */
    off = (size_t)snprintf(page, sizeof(page), "{\"ticker\":\"ROGUE\",\"results\":[");
    ADD(t0, 10, 11, 9, 10, 5);
    ADD(t0 + m, 10, 11, 9, 10, 5);
    snprintf(page + off, sizeof(page) - off, "]}");
    land("rules", 2, "polygon", "ROGUE", "1minute", "gzip", page, objects);
    /* zstd bronze; the page names another ticker than its object: unknown_ticker. */
    off = (size_t)snprintf(page, sizeof(page), "{\"ticker\":\"OTHER\",\"results\":[");
    ADD(t0, 50, 51, 49, 50.5, 500);
    ADD(t0 + m, 50.5, 52, 50, 51, 600);
    snprintf(page + off, sizeof(page) - off, "]}");
    land("rules", 3, "polygon", "OTHER", "1minute", "zstd", page, objects);
    off = (size_t)snprintf(page, sizeof(page), "{\"ticker\":\"SPY\",\"results\":[");
    ADD(t0, 500, 501, 499, 500.5, 5000);
    snprintf(page + off, sizeof(page) - off, "]}");
    land("rules", 4, "polygon", "OTHER", "1minute", "zstd", page, objects);
#undef ADD

    tf_uuid_new(rules_id);
    extract_row(rules_id, JOB, "2024-03-04T14:30:00Z", "2024-03-04T15:30:00Z", "{GOOD,OTHER}",
                "2024-06-01T00:00:00Z", objects);
    rec = transform(rules_id, 0, &status);
    CHECK_EQ_INT(status, 200);
    CHECK_STR(h_jstr(rec, "status"), "SUCCESS");
    CHECK_EQ_INT(h_jnum(rec, "records_in"), 19);
    CHECK_EQ_INT(h_jnum(rec, "records_out"), 6);
    CHECK_EQ_INT(h_jnum(rec, "records_rejected"), 13);
    cJSON_Delete(rec);

    /* Each rule once, unknown_ticker three times, nothing else. */
    h_lake_uri(&stack, "handmade/rules-1.json.gzip", page1, sizeof(page1));
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        const char *params[3] = {rules_id, rules[i], page1};
        CHECK(h_pg_ll(stack.db,
                      "SELECT count(*) FROM silver.rejected_bars WHERE execution_id = $1"
                      " AND rule = $2 AND ticker = 'GOOD' AND page = 1 AND attempt = 1"
                      " AND job_name = '" JOB "' AND timespan = '1minute'"
                      " AND object_uri = $3",
                      3, params) == 1,
              "one bar rejected by %s", rules[i]);
    }
    CHECK_EQ_INT(q_ll("SELECT count(*) FROM silver.rejected_bars WHERE execution_id = $1"
                      " AND rule = 'unknown_ticker'",
                      rules_id),
                 3);
    CHECK_EQ_INT(q_ll("SELECT count(*) FROM silver.rejected_bars WHERE execution_id = $1"
                      " AND rule = 'unknown_ticker' AND ticker = 'SPY' AND page = 4",
                      rules_id),
                 1);
    CHECK_EQ_INT(
        q_ll("SELECT count(*) FROM silver.rejected_bars WHERE execution_id = $1", rules_id), 13);
    /* Where each came from and what it was. */
    raw = q_str("SELECT item || ' ' || (raw->>'o') || ' ' ||"
                " to_char(ts AT TIME ZONE 'UTC', 'HH24:MI:SS') FROM silver.rejected_bars"
                " WHERE execution_id = $1 AND rule = 'price_not_positive'",
                rules_id);
    CHECK_STR(raw, "4 0 14:34:00");
    free(raw);
    raw = q_str("SELECT item || ' ' || to_char(ts AT TIME ZONE 'UTC', 'HH24:MI:SS.MS')"
                " FROM silver.rejected_bars WHERE execution_id = $1 AND rule = 'ts_misaligned'",
                rules_id);
    CHECK_STR(raw, "9 14:39:30.000");
    free(raw);
    raw = q_str("SELECT item || ' ' || to_char(ts AT TIME ZONE 'UTC', 'HH24:MI') FROM"
                " silver.rejected_bars WHERE execution_id = $1 AND rule = 'outside_window'",
                rules_id);
    CHECK_STR(raw, "10 15:30");
    free(raw);
    raw = q_str("SELECT item || ' ' || (raw->>'c') FROM silver.rejected_bars"
                " WHERE execution_id = $1 AND rule = 'duplicate'",
                rules_id);
    CHECK_STR(raw, "11 1");
    free(raw);
    CHECK_EQ_INT(q_ll("SELECT count(*) FROM silver.rejected_bars WHERE execution_id = $1"
                      " AND rule = 'ts_invalid' AND ts IS NULL AND item = 13",
                      rules_id),
                 1);
    CHECK_EQ_INT(q_ll("SELECT count(*) FROM silver.rejected_bars WHERE execution_id = $1"
                      " AND rule = 'not_finite' AND NOT raw ? 'c' AND item = 3",
                      rules_id),
                 1);

    /* The good bars, values exact, the later duplicate's values kept. */
    res = PQexecParams(stack.db,
                       "SELECT ticker, to_char(ts AT TIME ZONE 'UTC', 'HH24:MI'), open, high,"
                       " low, close, volume, trades, provider FROM silver.bars"
                       " WHERE execution_id = $1 ORDER BY ticker, ts",
                       1, NULL, (const char *const[]){rules_id}, NULL, NULL, 0);
    CHECK_EQ_INT(PQntuples(res), 6);
    if (PQntuples(res) == 6) {
        static const char *const want[6][5] = {
            {"GOOD", "14:30", "10", "11", "100"},
            {"GOOD", "14:31", "10.25", "11", "0"},
            {"GOOD", "14:32", "0.1", "0.30000000000000004", "1e-07"},
            {"GOOD", "14:40", "20", "22", "2"},
            {"OTHER", "14:30", "50", "51", "500"},
            {"OTHER", "14:31", "50.5", "52", "600"},
        };
        for (int i = 0; i < 6; i++) {
            CHECK_STR(PQgetvalue(res, i, 0), want[i][0]);
            CHECK_STR(PQgetvalue(res, i, 1), want[i][1]);
            CHECK_STR(PQgetvalue(res, i, 2), want[i][2]);
            CHECK_STR(PQgetvalue(res, i, 3), want[i][3]);
            CHECK_STR(PQgetvalue(res, i, 6), want[i][4]);
            CHECK_STR(PQgetvalue(res, i, 7), "7");
            CHECK_STR(PQgetvalue(res, i, 8), "polygon");
        }
    }
    PQclear(res);
    /* The silver event carries the counts and the lake files. */
    ev = silver_event(rules_id, 1);
    CHECK(ev != NULL, "silver event");
    {
        const cJSON *counts = cJSON_GetObjectItemCaseSensitive(ev, "records");
        const cJSON *objs = cJSON_GetObjectItemCaseSensitive(ev, "objects");
        const cJSON *o0 = cJSON_GetArrayItem(objs, 0);
        CHECK_EQ_INT(h_jnum(counts, "in"), 19);
        CHECK_EQ_INT(h_jnum(counts, "out"), 6);
        CHECK_EQ_INT(h_jnum(counts, "rejected"), 13);
        CHECK_EQ_INT(cJSON_GetArraySize(objs), 1);
        CHECK(h_jstr(o0, "uri") &&
                  strstr(h_jstr(o0, "uri"), "/silver/polygon_1minute/date=2024-03-04/bars.parquet"),
              "the lake file of the day: %s", h_jstr(o0, "uri") ? h_jstr(o0, "uri") : "-");
        CHECK_EQ_INT(h_jnum(o0, "records"), 6);
        CHECK(h_jstr(o0, "sha256") && strlen(h_jstr(o0, "sha256")) == 64, "file sha256");
    }
    cJSON_Delete(ev);
}

/* md5 of silver rows, rejects and lake files of everything (values only). */
static void snapshot(char *out, size_t len)
{
    char *s = q_str("SELECT md5(coalesce(string_agg(x, '|' ORDER BY x), ''))"
                    " FROM (SELECT concat_ws(',', ticker, timespan, ts, open, high, low, close,"
                    " volume, vwap, trades, execution_id, provider, fetched_at) AS x"
                    " FROM silver.bars) s",
                    NULL);
    char *r = q_str("SELECT md5(coalesce(string_agg(x, '|' ORDER BY x), ''))"
                    " FROM (SELECT concat_ws(',', execution_id, job_name, ticker, timespan, ts,"
                    " rule, raw, object_uri, page, item) AS x FROM silver.rejected_bars) s",
                    NULL);

    snprintf(out, len, "%s/%s", s ? s : "-", r ? r : "-");
    free(s);
    free(r);
}

/* sha256 of the lake file of (dataset, date). */
static void file_sha(const char *dataset, const char *date, char out[65])
{
    char key[300], uri[1500];

    snprintf(key, sizeof(key), "silver/%s/date=%s/bars.parquet", dataset, date);
    h_lake_uri(&stack, key, uri, sizeof(uri));
    CHECK(h_lake_sha256(&stack, uri, out) > 0, "the lake file %s reads", uri);
}

/* A second run of the same execution leaves everything as it was. */
static void test_rerun_identical(void)
{
    char before[80], after[80], sha1[65], sha2[65];
    cJSON *rec;
    long status;

    snapshot(before, sizeof(before));
    file_sha("polygon_1minute", "2024-03-04", sha1);
    CHECK(strcmp(sha1, "missing") != 0, "the lake file exists");
    /* The same trigger again: the first record. */
    rec = transform(rules_id, 0, &status);
    CHECK_EQ_INT(status, 200);
    CHECK_EQ_INT(h_jnum(rec, "attempt"), 1);
    cJSON_Delete(rec);
    /* A replay: a new attempt, the same result. */
    rec = transform(rules_id, 1, &status);
    CHECK_EQ_INT(status, 200);
    CHECK_STR(h_jstr(rec, "status"), "SUCCESS");
    CHECK_EQ_INT(h_jnum(rec, "attempt"), 2);
    CHECK_EQ_INT(h_jnum(rec, "records_in"), 19);
    CHECK_EQ_INT(h_jnum(rec, "records_out"), 6);
    CHECK_EQ_INT(h_jnum(rec, "records_rejected"), 13);
    cJSON_Delete(rec);
    snapshot(after, sizeof(after));
    file_sha("polygon_1minute", "2024-03-04", sha2);
    CHECK_STR(after, before);
    CHECK_STR(sha2, sha1);
    CHECK_EQ_INT(q_ll("SELECT count(*) FROM silver.rejected_bars WHERE execution_id = $1"
                      " AND attempt = 2",
                      rules_id),
                 13);
    /* A replay of a failed run after the cause is gone: the same path. */
    sql_ok("UPDATE tickflow.job_execution SET status = 'FAILED', error = 'made up'"
           " WHERE stage = 'transform' AND execution_id = (SELECT execution_id FROM"
           " silver.rejected_bars LIMIT 1)");
    rec = transform(rules_id, 1, &status);
    CHECK_STR(h_jstr(rec, "status"), "SUCCESS");
    CHECK_EQ_INT(h_jnum(rec, "attempt"), 3);
    cJSON_Delete(rec);
    snapshot(after, sizeof(after));
    file_sha("polygon_1minute", "2024-03-04", sha2);
    CHECK_STR(after, before);
    CHECK_STR(sha2, sha1);
}

/* Ten one-minute bars from start, closing at base + i. */
static void minutes(char *page, size_t len, const char *ticker, long long start, int count,
                    double base)
{
    size_t off = (size_t)snprintf(page, len, "{\"ticker\":\"%s\",\"results\":[", ticker);
    char item[300];

    for (int i = 0; i < count; i++) {
        pbar(item, sizeof(item), start + i * 60000LL, base + i, base + i + 1, base + i - 1,
             base + i, 100 + i);
        off += (size_t)snprintf(page + off, len - off, "%s%s", i ? "," : "", item);
    }
    snprintf(page + off, len - off, "]}");
}

/*
 * Overlapping windows store the overlap once; a later fetch's correction
 * wins, also over a rebuild of the older execution.
 */
static void test_overlap_and_correction(void)
{
    char a[TF_UUID_LEN + 1], b[TF_UUID_LEN + 1], c[TF_UUID_LEN + 1], page[16384];
    char sha1[65], sha2[65];
    cJSON *objects, *rec;
    long status;
    char *v;

    /* A: 16:00-16:20 in two pages; B: 16:10-16:30, the same values on the overlap. */
    objects = cJSON_CreateArray();
    minutes(page, sizeof(page), "OVL", ms("2024-03-05T16:00:00Z"), 10, 100);
    land("ovl-a", 1, "polygon", "OVL", "1minute", "gzip", page, objects);
    minutes(page, sizeof(page), "OVL", ms("2024-03-05T16:10:00Z"), 10, 110);
    land("ovl-a", 2, "polygon", "OVL", "1minute", "gzip", page, objects);
    tf_uuid_new(a);
    extract_row(a, JOB, "2024-03-05T16:00:00Z", "2024-03-05T16:20:00Z", "{OVL}",
                "2024-06-02T00:00:00Z", objects);
    objects = cJSON_CreateArray();
    minutes(page, sizeof(page), "OVL", ms("2024-03-05T16:10:00Z"), 20, 110);
    land("ovl-b", 1, "polygon", "OVL", "1minute", "gzip", page, objects);
    tf_uuid_new(b);
    extract_row(b, JOB, "2024-03-05T16:10:00Z", "2024-03-05T16:30:00Z", "{OVL}",
                "2024-06-02T01:00:00Z", objects);
    cJSON_Delete(transform(a, 0, &status));
    rec = transform(b, 0, &status);
    CHECK_STR(h_jstr(rec, "status"), "SUCCESS");
    CHECK_EQ_INT(h_jnum(rec, "records_out"), 20);
    cJSON_Delete(rec);
    CHECK_EQ_INT(q_ll("SELECT count(*) FROM silver.bars WHERE ticker = 'OVL'", NULL), 30);
    CHECK_EQ_INT(q_ll("SELECT count(DISTINCT ts) FROM silver.bars WHERE ticker = 'OVL'", NULL), 30);
    CHECK_EQ_INT(q_ll("SELECT count(*) FROM silver.bars WHERE ticker = 'OVL'"
                      " AND execution_id = $1",
                      b),
                 20);
    /* C, fetched later, corrects 16:15 (a later page of C wins over an earlier one too). */
    objects = cJSON_CreateArray();
    land("ovl-c", 1, "polygon", "OVL", "1minute", "gzip",
         "{\"ticker\":\"OVL\",\"results\":[{\"t\":1709655300000,\"o\":115,\"h\":130,"
         "\"l\":114,\"c\":120,\"v\":1}]}",
         objects);
    land("ovl-c", 2, "polygon", "OVL", "1minute", "gzip",
         "{\"ticker\":\"OVL\",\"results\":[{\"t\":1709655300000,\"o\":115,\"h\":130,"
         "\"l\":114,\"c\":125.5,\"v\":2}]}",
         objects);
    tf_uuid_new(c);
    extract_row(c, JOB, "2024-03-05T16:15:00Z", "2024-03-05T16:16:00Z", "{OVL}",
                "2024-06-03T00:00:00Z", objects);
    rec = transform(c, 0, &status);
    CHECK_STR(h_jstr(rec, "status"), "SUCCESS");
    CHECK_EQ_INT(h_jnum(rec, "records_in"), 2);
    CHECK_EQ_INT(h_jnum(rec, "records_out"), 2); /* both pages' bars loaded; the later one kept */
    cJSON_Delete(rec);
    v = q_str("SELECT close || ' ' || volume || ' ' || (execution_id = $1)::text"
              " FROM silver.bars WHERE ticker = 'OVL' AND ts = '2024-03-05T16:15:00Z'",
              c);
    CHECK_STR(v, "125.5 2 true");
    free(v);
    /* C's day was written from its one kept bar and the 29 others read back. */
    CHECK_EQ_INT(h_file_count(stack.procs[H_TRANSFORM].log, "rows=30 kept=1 read_back=29 "), 1);
    file_sha("polygon_1minute", "2024-03-05", sha1);
    /* Rebuilding B (fetched before C) does not bring the old value back; silver no
     * longer holds all B's bars, so the day is read back whole: the same file. */
    rec = transform(b, 1, &status);
    CHECK_STR(h_jstr(rec, "status"), "SUCCESS");
    CHECK_EQ_INT(h_jnum(rec, "attempt"), 2);
    cJSON_Delete(rec);
    CHECK_EQ_INT(h_file_count(stack.procs[H_TRANSFORM].log, "rows=30 kept=0 read_back=30 "), 1);
    file_sha("polygon_1minute", "2024-03-05", sha2);
    CHECK_STR(sha2, sha1);
    v = q_str("SELECT close || ' ' || (execution_id = $1)::text"
              " FROM silver.bars WHERE ticker = 'OVL' AND ts = '2024-03-05T16:15:00Z'",
              c);
    CHECK_STR(v, "125.5 true");
    free(v);
    CHECK_EQ_INT(q_ll("SELECT count(*) FROM silver.bars WHERE ticker = 'OVL'", NULL), 30);
}

/*
 * Day bars across the DST change (Polygon: New York midnight or UTC
 * midnight; Twelve Data: exchange-local dates), minutes across it, and a
 * holiday with no bars.
 */
static void test_dst_and_holiday(void)
{
    char id[TF_UUID_LEN + 1], page[4096];
    cJSON *objects, *rec;
    long status;

    sql_ok("INSERT INTO tickflow.job_config (job_name, provider, tickers, timespan, updated_by)"
           " VALUES ('e2e_days', 'polygon', '{DAYS,X:BTCUSD}', 'day', 'e2e'),"
           " ('e2e_tddays', 'twelvedata', '{TDD}', 'day', 'e2e')");
    objects = cJSON_CreateArray();
    /* Fri 8 Mar 05:00Z (EST midnight), Mon 11 Mar 04:00Z (EDT midnight): kept;
     * Mon 11 Mar 05:00Z is 01:00 EDT: misaligned. */
    snprintf(page, sizeof(page),
             "{\"ticker\":\"DAYS\",\"results\":[{\"t\":%lld,\"o\":1,\"h\":2,\"l\":1,\"c\":2,"
             "\"v\":10},{\"t\":%lld,\"o\":2,\"h\":3,\"l\":2,\"c\":3,\"v\":10},{\"t\":%lld,"
             "\"o\":3,\"h\":4,\"l\":3,\"c\":4,\"v\":10}]}",
             ms("2024-03-08T05:00:00Z"), ms("2024-03-11T04:00:00Z"), ms("2024-03-11T05:00:00Z"));
    land("days", 1, "polygon", "DAYS", "1day", "gzip", page, objects);
    snprintf(page, sizeof(page),
             "{\"ticker\":\"X:BTCUSD\",\"results\":[{\"t\":%lld,\"o\":1,\"h\":2,\"l\":1,"
             "\"c\":2,\"v\":10}]}",
             ms("2024-03-10T00:00:00Z"));
    land("days", 2, "polygon", "X:BTCUSD", "1day", "gzip", page, objects);
    tf_uuid_new(id);
    extract_row(id, "e2e_days", "2024-03-08T00:00:00Z", "2024-03-12T00:00:00Z", "{DAYS,X:BTCUSD}",
                "2024-06-04T00:00:00Z", objects);
    rec = transform(id, 0, &status);
    CHECK_STR(h_jstr(rec, "status"), "SUCCESS");
    CHECK_EQ_INT(h_jnum(rec, "records_out"), 3);
    CHECK_EQ_INT(h_jnum(rec, "records_rejected"), 1);
    cJSON_Delete(rec);
    CHECK_EQ_INT(q_ll("SELECT count(*) FROM silver.rejected_bars WHERE execution_id = $1"
                      " AND rule = 'ts_misaligned' AND ts = '2024-03-11T05:00:00Z'",
                      id),
                 1);
    /* Twelve Data dates in New York, across the change: local midnights. */
    objects = cJSON_CreateArray();
    land("tddays", 1, "twelvedata", "TDD", "1day", "gzip",
         "{\"meta\":{\"symbol\":\"TDD\",\"exchange_timezone\":\"America/New_York\"},"
         "\"values\":[{\"datetime\":\"2024-03-11\",\"open\":\"2\",\"high\":\"3\",\"low\":\"2\","
         "\"close\":\"3\",\"volume\":\"5\"},{\"datetime\":\"2024-03-08\",\"open\":\"1\","
         "\"high\":\"2\",\"low\":\"1\",\"close\":\"2\",\"volume\":\"5\"},{\"datetime\":"
         "\"2024-03-07 09:30:00\",\"open\":\"1\",\"high\":\"2\",\"low\":\"1\",\"close\":\"2\"}],"
         "\"status\":\"ok\"}",
         objects);
    tf_uuid_new(id);
    extract_row(id, "e2e_tddays", "2024-03-07T00:00:00Z", "2024-03-12T00:00:00Z", "{TDD}",
                "2024-06-04T00:00:00Z", objects);
    rec = transform(id, 0, &status);
    CHECK_STR(h_jstr(rec, "status"), "SUCCESS");
    CHECK_EQ_INT(h_jnum(rec, "records_out"), 2);
    CHECK_EQ_INT(h_jnum(rec, "records_rejected"), 1);
    cJSON_Delete(rec);
    CHECK_EQ_INT(q_ll("SELECT count(*) FROM silver.bars WHERE ticker = 'TDD' AND timespan ="
                      " '1day' AND ts IN ('2024-03-08T05:00:00Z', '2024-03-11T04:00:00Z')",
                      NULL),
                 2);
    CHECK_EQ_INT(q_ll("SELECT count(*) FROM silver.rejected_bars WHERE execution_id = $1"
                      " AND rule = 'ts_misaligned'",
                      id),
                 1);
    /* Minutes across the DST change: 09:30 New York is 14:30Z, then 13:30Z. */
    objects = cJSON_CreateArray();
    minutes(page, sizeof(page), "GOOD", ms("2024-03-08T14:30:00Z"), 2, 10);
    land("dst", 1, "polygon", "GOOD", "1minute", "gzip", page, objects);
    minutes(page, sizeof(page), "GOOD", ms("2024-03-11T13:30:00Z"), 2, 10);
    land("dst", 2, "polygon", "GOOD", "1minute", "gzip", page, objects);
    tf_uuid_new(id);
    extract_row(id, JOB, "2024-03-08T14:00:00Z", "2024-03-11T21:00:00Z", "{GOOD}",
                "2024-06-04T00:00:00Z", objects);
    rec = transform(id, 0, &status);
    CHECK_STR(h_jstr(rec, "status"), "SUCCESS");
    CHECK_EQ_INT(h_jnum(rec, "records_out"), 4);
    CHECK_EQ_INT(h_jnum(rec, "records_rejected"), 0);
    cJSON_Delete(rec);
    /* Independence Day: the market is shut, the page empty, the run fine. */
    objects = cJSON_CreateArray();
    land("holiday", 1, "polygon", "GOOD", "1minute", "gzip",
         "{\"ticker\":\"GOOD\",\"queryCount\":0,\"resultsCount\":0,\"results\":[]}", objects);
    tf_uuid_new(id);
    extract_row(id, JOB, "2024-07-04T13:30:00Z", "2024-07-04T20:00:00Z", "{GOOD}",
                "2024-07-05T00:00:00Z", objects);
    rec = transform(id, 0, &status);
    CHECK_STR(h_jstr(rec, "status"), "SUCCESS");
    CHECK_EQ_INT(h_jnum(rec, "records_in"), 0);
    CHECK_EQ_INT(h_jnum(rec, "records_out"), 0);
    CHECK_EQ_INT(h_jnum(cJSON_GetObjectItemCaseSensitive(rec, "objects_summary"), "count"), 0);
    cJSON_Delete(rec);
}

/* Daily partitions on demand; the DEFAULT partition catches a day without one. */
static void test_partitions(void)
{
    char id[TF_UUID_LEN + 1], page[2048];
    cJSON *objects, *rec;
    long status;

    CHECK_EQ_INT(q_ll("SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                      " WHERE i.inhparent = 'silver.bars'::regclass"
                      " AND c.relname IN ('bars_2024_03_04', 'bars_2024_07_04', 'bars_default')",
                      NULL),
                 3);
    /* Silver's key is its only index: loads pay for nothing else. */
    CHECK_EQ_INT(q_ll("SELECT count(*) FROM pg_indexes WHERE schemaname = 'silver'"
                      " AND tablename = 'bars'",
                      NULL),
                 1);
    /* A bar on a day with no partition yet goes to DEFAULT... */
    sql_ok("INSERT INTO silver.bars (ticker, timespan, ts, open, high, low, close, volume,"
           " execution_id) VALUES ('LOST', '1minute', '2024-09-03T14:30:00Z', 1, 1, 1, 1, 1,"
           " gen_random_uuid())");
    CHECK_EQ_INT(q_ll("SELECT count(*) FROM silver.bars_default", NULL), 1);
    /* ...and moves when a run makes the day. */
    objects = cJSON_CreateArray();
    minutes(page, sizeof(page), "GOOD", ms("2024-09-03T14:31:00Z"), 3, 10);
    land("sept", 1, "polygon", "GOOD", "1minute", "gzip", page, objects);
    tf_uuid_new(id);
    extract_row(id, JOB, "2024-09-03T14:30:00Z", "2024-09-03T15:00:00Z", "{GOOD}",
                "2024-09-04T00:00:00Z", objects);
    rec = transform(id, 0, &status);
    CHECK_STR(h_jstr(rec, "status"), "SUCCESS");
    cJSON_Delete(rec);
    CHECK_EQ_INT(q_ll("SELECT count(*) FROM silver.bars_default", NULL), 0);
    CHECK_EQ_INT(q_ll("SELECT count(*) FROM silver.bars_2024_09_03", NULL), 4);
    CHECK_EQ_INT(q_ll("SELECT count(*) FROM silver.bars WHERE ts >= '2024-09-01'", NULL), 4);
    /* The month after the window is made ahead of time. */
    CHECK_EQ_INT(q_ll("SELECT count(*) FROM pg_class WHERE relnamespace = 'silver'::regnamespace"
                      " AND relname = 'bars_2024_10_03'",
                      NULL),
                 1);
}

/* Bad replays: a clear 4xx, nothing changed. */
static void test_bad_replays(void)
{
    char body[200], id[TF_UUID_LEN + 1];
    /* Rows of this test's executions only: events of earlier tests may still
     * be landing in other executions' records meanwhile. */
    long long rows = q_ll("SELECT count(*) FROM tickflow.job_execution WHERE execution_id = $1"
                          " AND stage <> 'aggregate'",
                          rules_id);
    char unknown[TF_UUID_LEN + 1];
    cJSON *rec;
    long status;

    tf_uuid_new(id);
    memcpy(unknown, id, sizeof(unknown));
    rec = transform(id, 1, &status);
    CHECK_EQ_INT(status, 404);
    cJSON_Delete(rec);
    snprintf(body, sizeof(body), "{\"execution_id\":\"%s\",\"replay\":\"yes\"}", rules_id);
    rec = call("POST", stack.procs[H_TRANSFORM].port, "/v1/executions", body, &status);
    CHECK_EQ_INT(status, 400);
    CHECK(strstr(h_jstr(cJSON_GetObjectItem(rec, "error"), "message"), "replay") != NULL,
          "says what is wrong");
    cJSON_Delete(rec);
    /* An extract that failed has nothing to replay from. */
    tf_uuid_new(id);
    {
        const char *params[1] = {id};
        PGresult *res = PQexecParams(
            stack.db,
            "INSERT INTO tickflow.job_execution (execution_id, stage, job_name, status, attempt,"
            " window_start, window_end, tickers, error, finished_at) VALUES ($1, 'extract', '" JOB
            "', 'FAILED', 1, '2024-03-06T14:30:00Z', '2024-03-06T15:30:00Z', '{GOOD}', 'made up',"
            " now())",
            1, NULL, params, NULL, NULL, 0);
        CHECK(PQresultStatus(res) == PGRES_COMMAND_OK, "failed extract: %s",
              PQresultErrorMessage(res));
        PQclear(res);
    }
    rec = transform(id, 1, &status);
    CHECK_EQ_INT(status, 409);
    CHECK(strstr(h_jstr(cJSON_GetObjectItem(rec, "error"), "message"), "FAILED") != NULL,
          "says why");
    cJSON_Delete(rec);
    /* extract has nothing upstream to replay from: it would call the vendor. */
    snprintf(body, sizeof(body), "{\"execution_id\":\"%s\",\"replay\":true}", rules_id);
    rec = call("POST", stack.procs[H_EXTRACT].port, "/v1/executions", body, &status);
    CHECK_EQ_INT(status, 400);
    cJSON_Delete(rec);
    CHECK_EQ_INT(q_ll("SELECT count(*) FROM tickflow.job_execution WHERE execution_id = $1"
                      " AND stage <> 'aggregate'",
                      rules_id),
                 rows);
    CHECK_EQ_INT(
        q_ll("SELECT count(*) FROM tickflow.job_execution WHERE execution_id = $1", unknown), 0);
    CHECK_EQ_INT(q_ll("SELECT count(*) FROM tickflow.job_execution WHERE execution_id = $1", id),
                 1);
}

/* Sets transform's TICKFLOW_TRANSFORM_LAKE_MEMORY_MB (NULL: its default) and restarts it. */
static void transform_memory(const char *setting)
{
    CHECK_EQ_INT(h_stack_setenv(&stack, setting, "TICKFLOW_TRANSFORM_LAKE_MEMORY_MB"), 0);
    CHECK_EQ_INT(h_stop(&stack.procs[H_TRANSFORM]), 0);
    CHECK_EQ_INT(h_stack_restart(&stack, H_TRANSFORM), 0);
}

/*
 * A day with more bars than transform may keep in memory (10,080 against
 * 1 MB, about 11,000): the partition is read back from silver instead, and
 * the file is the same as the one written from kept bars.
 */
static void test_memory_budget(void)
{
    static char page[262144];
    char id[TF_UUID_LEN + 1], sha1[65], sha2[65];
    const char *log = stack.procs[H_TRANSFORM].log;
    int over = h_file_count(log, "kept past the memory budget");
    cJSON *objects = cJSON_CreateArray(), *rec;
    long status;

    sql_ok("INSERT INTO tickflow.job_config (job_name, provider, tickers, timespan, updated_by)"
           " VALUES ('e2e_budget', 'polygon', '{BG0,BG1,BG2,BG3,BG4,BG5,BG6}', 'minute', 'e2e')");
    for (int k = 0; k < 7; k++) {
        char ticker[16];
        snprintf(ticker, sizeof(ticker), "BG%d", k);
        minutes(page, sizeof(page), ticker, ms("2024-03-06T00:00:00Z"), 1440, 100 + k);
        land("budget", k + 1, "polygon", ticker, "1minute", "zstd", page, objects);
    }
    tf_uuid_new(id);
    extract_row(id, "e2e_budget", "2024-03-06T00:00:00Z", "2024-03-07T00:00:00Z",
                "{BG0,BG1,BG2,BG3,BG4,BG5,BG6}", "2024-06-05T00:00:00Z", objects);
    transform_memory("TICKFLOW_TRANSFORM_LAKE_MEMORY_MB=1");
    rec = transform(id, 0, &status);
    CHECK_STR(h_jstr(rec, "status"), "SUCCESS");
    CHECK_EQ_INT(h_jnum(rec, "records_out"), 10080);
    cJSON_Delete(rec);
    CHECK_EQ_INT(h_file_count(log, "kept past the memory budget"), over + 1);
    CHECK_EQ_INT(h_file_count(log, "rows=10080 kept=0 read_back=10080 "), 1);
    file_sha("polygon_1minute", "2024-03-06", sha1);
    CHECK(strcmp(sha1, "missing") != 0, "the lake file exists");
    /* With the default budget a replay keeps every bar: the same bytes. */
    transform_memory(NULL);
    rec = transform(id, 1, &status);
    CHECK_STR(h_jstr(rec, "status"), "SUCCESS");
    CHECK_EQ_INT(h_jnum(rec, "attempt"), 2);
    cJSON_Delete(rec);
    CHECK_EQ_INT(h_file_count(log, "rows=10080 kept=10080 read_back=0 "), 1);
    file_sha("polygon_1minute", "2024-03-06", sha2);
    CHECK_STR(sha2, sha1);
}

static int add_job(void)
{
    return sql_ok("INSERT INTO tickflow.job_config (job_name, provider, tickers, multiplier,"
                  " timespan, updated_by) VALUES ('" JOB "', 'polygon', '{GOOD,OTHER,OVL}', 1,"
                  " 'minute', 'e2e')");
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (h_stack_start(&stack, "silver", API_KEY, 5, NULL) == 0 && add_job() == 0) {
        test_rules();
        test_rerun_identical();
        test_overlap_and_correction();
        test_dst_and_holiday();
        test_partitions();
        test_bad_replays();
        test_memory_budget();
    } else {
        CHECK(0, "the stack did not start (see %s)", stack.dir);
    }
    CHECK_EQ_INT(h_stack_stop(&stack), 0);
    return check_summary();
}
