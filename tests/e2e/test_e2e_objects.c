/*
 * test_e2e_objects.c - a record stays small whatever the size of the run,
 * and its objects are a resource of their own, on the native services.
 *
 *   - GET /v1/executions/{id}, the list and a POST's answer carry
 *     "objects_summary" (count, bytes, records, href), never the objects:
 *     a record of 500 objects stays under a few kilobytes;
 *   - GET /v1/executions/{id}/objects pages through them in byte order of
 *     uri: the pages add up to exactly the recorded list, whatever the
 *     page size, with uris a query string must escape; past the end is an
 *     empty page; a bad limit or cursor 400, an unknown execution 404;
 *   - each stage service serves its own stage's objects;
 *   - with one API connection, a burst of clients all get the record in turn;
 *   - a record written again (even by hand, updated_at untouched) is
 *     summed again: the summaries a service keeps are per row version.
 */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "harness.h"
#include "tf/buf.h"
#include "tf/exec.h"

#define API_KEY  "objects-Secret-Key-3b7"
#define SEED     5
#define JOB      "e2e_objects"
#define NOBJECTS 500
/* The longest cursor the services take (svc_http.c). */
#define AFTER_MAX 4096
/* What a record of NOBJECTS objects and NOBJECTS tickers may weigh. */
#define RECORD_MAX_BYTES 8192

static struct h_stack stack;

static cJSON *get(int port, const char *path, long *status)
{
    return h_call("GET", port, path, NULL, NULL, status);
}

/* Byte order of uri, as the resource lists them. */
static int by_uri(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;

    return strcmp(h_jstr(x, "uri"), h_jstr(y, "uri"));
}

/* A copy of objects (an array) sorted by uri (new). */
static cJSON *sorted(const cJSON *objects)
{
    int n = cJSON_GetArraySize(objects);
    const cJSON **v = calloc((size_t)n + 1, sizeof(*v));
    cJSON *out = cJSON_CreateArray();

    for (int i = 0; v && i < n; i++)
        v[i] = cJSON_GetArrayItem(objects, i);
    if (v)
        qsort(v, (size_t)n, sizeof(*v), by_uri);
    for (int i = 0; v && i < n; i++)
        cJSON_AddItemToArray(out, cJSON_Duplicate(v[i], 1));
    free(v);
    return out;
}

/*
 * NOBJECTS objects as extract records them, in no particular order, their
 * uris holding bytes a query string must escape (& + = % # ? space, UTF-8).
 */
static cJSON *make_objects(const char *id)
{
    static const char *const odd[] = {"&a=b", "+c", "%25", "#x?y", " z", "\xc3\xa9"};
    cJSON *objects = cJSON_CreateArray();

    for (int i = 0; i < NOBJECTS; i++) {
        int k = (i * 7) % NOBJECTS; /* 7 and 500 share no factor: each k once */
        char uri[512], sha[65];
        cJSON *o = cJSON_CreateObject();

        snprintf(uri, sizeof(uri),
                 "file:///lake/bronze/polygon/stocks/date=2024-03-04/job=" JOB "/exec=%s/"
                 "attempt=1/T%03d%s.page-0001.json.gz",
                 id, k, odd[k % 6]);
        for (int j = 0; j < 64; j++)
            sha[j] = "0123456789abcdef"[(k * 31 + j * 7) % 16];
        sha[64] = '\0';
        cJSON_AddStringToObject(o, "uri", uri);
        cJSON_AddNumberToObject(o, "bytes", 1000 + k);
        cJSON_AddNumberToObject(o, "raw_bytes", 5000 + k);
        cJSON_AddNumberToObject(o, "records", k);
        cJSON_AddStringToObject(o, "sha256", sha);
        cJSON_AddStringToObject(o, "encoding", "gzip");
        cJSON_AddNumberToObject(o, "page", 1);
        cJSON_AddItemToArray(objects, o);
    }
    return objects;
}

/* Records stage of id as finished with objects. */
static int add_record(const char *id, const char *stage, const cJSON *objects)
{
    char *text = cJSON_PrintUnformatted(objects);
    int rc = text ? h_add_finished(stack.db, id, stage, JOB, text) : -1;

    CHECK(rc == 0, "%s record of %s", stage, id);
    cJSON_free(text);
    return rc;
}

/* The summary a record carries, checked against count, bytes and records. */
static void check_summary_of(const cJSON *rec, const char *id, long long count, long long bytes,
                             long long records)
{
    const cJSON *sum = cJSON_GetObjectItemCaseSensitive(rec, "objects_summary");
    char href[128];

    snprintf(href, sizeof(href), "/v1/executions/%s/objects", id);
    CHECK(cJSON_GetObjectItemCaseSensitive(rec, "objects") == NULL, "%s: no objects inline",
          h_jstr(rec, "stage"));
    CHECK_EQ_INT(h_jnum(sum, "count"), count);
    CHECK_EQ_INT(h_jnum(sum, "bytes"), bytes);
    CHECK_EQ_INT(h_jnum(sum, "records"), records);
    CHECK_STR(h_jstr(sum, "href"), href);
}

/* The record with execution id in a list of executions (borrowed), or NULL. */
static const cJSON *listed(const cJSON *list, const char *id)
{
    const cJSON *rec;

    cJSON_ArrayForEach(rec, cJSON_GetObjectItemCaseSensitive(list, "executions"))
    {
        if (h_jstr(rec, "execution_id") && strcmp(h_jstr(rec, "execution_id"), id) == 0)
            return rec;
    }
    return NULL;
}

/* GET path on the extract service answers status with an error object. */
static void check_refused(const char *path, long want)
{
    long status;
    cJSON *ans = get(stack.procs[H_EXTRACT].port, path, &status);

    CHECK(status == want && h_jstr(cJSON_GetObjectItemCaseSensitive(ans, "error"), "code"),
          "GET %s: %ld, want %ld with an error object", path, status, want);
    cJSON_Delete(ans);
}

/* A big extract record: small itself, its objects page by page. */
static void test_big_record(void)
{
    static const int limits[] = {1, 7, 100, 499, 500, 1000};
    char id[TF_UUID_LEN + 1], path[4096];
    const int port = stack.procs[H_EXTRACT].port;
    cJSON *objects, *want, *rec, *page;
    long long bytes = 0, records = 0;
    long status;
    size_t objects_len;
    struct h_resp r;

    tf_uuid_new(id);
    objects = make_objects(id);
    want = sorted(objects);
    {
        char *text = cJSON_PrintUnformatted(objects);
        objects_len = text ? strlen(text) : 0;
        cJSON_free(text);
    }
    for (int k = 0; k < NOBJECTS; k++) {
        bytes += 1000 + k;
        records += k;
    }
    if (add_record(id, "extract", objects) != 0)
        goto out;

    /* The record: a few kilobytes where its objects take over a hundred. */
    snprintf(path, sizeof(path), "/v1/executions/%s", id);
    CHECK(h_http("GET", port, path, NULL, NULL, &r) == 0 && r.status == 200, "GET the record");
    CHECK(r.body && strlen(r.body) < RECORD_MAX_BYTES && objects_len > 100000,
          "the record is %zu bytes, its objects %zu", r.body ? strlen(r.body) : 0, objects_len);
    rec = cJSON_Parse(r.body ? r.body : "");
    h_resp_free(&r);
    check_summary_of(rec, id, NOBJECTS, bytes, records);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(rec, "tickers")), NOBJECTS);
    cJSON_Delete(rec);
    /* The same in the list, and in a POST's answer for the known execution. */
    page = get(port, "/v1/executions?job_name=" JOB "&limit=1000", &status);
    CHECK_EQ_INT(status, 200);
    check_summary_of(listed(page, id), id, NOBJECTS, bytes, records);
    cJSON_Delete(page);
    snprintf(path, sizeof(path), "{\"execution_id\":\"%s\",\"job_name\":\"" JOB "\"}", id);
    rec = h_call("POST", port, "/v1/executions", path, NULL, &status);
    CHECK_EQ_INT(status, 200);
    check_summary_of(rec, id, NOBJECTS, bytes, records);
    cJSON_Delete(rec);

    /* Every page size gives exactly the recorded objects, in byte order of uri. */
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        cJSON *got = h_get_objects(port, id, limits[i]);
        CHECK(got && cJSON_Compare(got, want, 1), "limit %d: the pages add up to the record",
              limits[i]);
        cJSON_Delete(got);
    }
    /* Without a limit: 100, and the next page's link. */
    snprintf(path, sizeof(path), "/v1/executions/%s/objects", id);
    page = get(port, path, &status);
    CHECK_EQ_INT(status, 200);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(page, "objects")), 100);
    CHECK_EQ_INT(h_jnum(page, "total"), NOBJECTS);
    CHECK_EQ_INT(h_jnum(page, "limit"), 100);
    CHECK_STR(h_jstr(page, "execution_id"), id);
    CHECK_STR(h_jstr(page, "stage"), "extract");
    snprintf(path, sizeof(path), "/v1/executions/%s/objects?limit=100&after=", id);
    CHECK(h_jstr(page, "next") && strncmp(h_jstr(page, "next"), path, strlen(path)) == 0,
          "next: %s", h_jstr(page, "next") ? h_jstr(page, "next") : "(none)");
    CHECK(cJSON_Compare(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(page, "objects"), 99),
                        cJSON_GetArrayItem(want, 99), 1),
          "the first page ends with the 100th uri");
    cJSON_Delete(page);
    /* After the last object, or after anything sorting past every uri: an empty last page. */
    {
        static const char *const ends[] = {"", "%FF"};
        char last[2048] = "";
        const char *uri = h_jstr(cJSON_GetArrayItem(want, NOBJECTS - 1), "uri");
        size_t n = 0;

        for (; uri && *uri && n + 4 < sizeof(last); uri++)
            n += (size_t)snprintf(last + n, sizeof(last) - n, "%%%02X", (unsigned char)*uri);
        for (size_t i = 0; i < 2; i++) {
            snprintf(path, sizeof(path), "/v1/executions/%s/objects?after=%s", id,
                     i == 0 ? last : ends[i]);
            page = get(port, path, &status);
            CHECK_EQ_INT(status, 200);
            CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(page, "objects")), 0);
            CHECK_EQ_INT(h_jnum(page, "total"), NOBJECTS);
            CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(page, "next")), "no next page");
            cJSON_Delete(page);
        }
    }
    /* Bad arguments: 400 with the reason; an execution this stage does not know: 404. */
    {
        static const char *const bad[] = {"limit=0",   "limit=1001", "limit=-1",
                                          "limit=abc", "limit=5x",   "limit="};
        char *after = calloc(1, AFTER_MAX + 1 + 128);

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            snprintf(path, sizeof(path), "/v1/executions/%s/objects?%s", id, bad[i]);
            check_refused(path, 400);
        }
        if (after) {
            int n = snprintf(after, 128, "/v1/executions/%s/objects?after=", id);
            memset(after + n, 'a', AFTER_MAX + 1);
            check_refused(after, 400);
            after[n + AFTER_MAX] = '\0'; /* the longest cursor allowed */
            page = get(port, after, &status);
            CHECK_EQ_INT(status, 200);
            cJSON_Delete(page);
        }
        free(after);
        check_refused("/v1/executions/not-a-uuid/objects", 400);
        check_refused("/v1/executions/0b7a3a0c-1d99-4c43-9a55-6f1c2a520d4e/objects", 404);
        snprintf(path, sizeof(path), "/v1/executions/%s/objects", id);
        page = h_call("POST", port, path, "{}", NULL, &status);
        CHECK_EQ_INT(status, 405);
        cJSON_Delete(page);
        /* transform has no stage of this execution. */
        page = get(stack.procs[H_TRANSFORM].port, path, &status);
        CHECK_EQ_INT(status, 404);
        cJSON_Delete(page);
    }

    /* One more object, written by hand (updated_at untouched): summed again. */
    {
        const char *params[1] = {id};
        PGresult *res = PQexecParams(stack.db,
                                     "UPDATE tickflow.job_execution SET objects = objects ||"
                                     " '[{\"uri\":\"file:///zz\",\"bytes\":5,\"records\":1}]'"
                                     " WHERE execution_id = $1 AND stage = 'extract'",
                                     1, NULL, params, NULL, NULL, 0);
        CHECK(PQresultStatus(res) == PGRES_COMMAND_OK, "append an object");
        PQclear(res);
        for (int i = 0; i < 2; i++) { /* summed, then kept */
            rec = h_get_record(port, id);
            check_summary_of(rec, id, NOBJECTS + 1, bytes + 5, records + 1);
            cJSON_Delete(rec);
        }
        page = get(port, "/v1/executions?job_name=" JOB "&limit=5", &status);
        check_summary_of(listed(page, id), id, NOBJECTS + 1, bytes + 5, records + 1);
        cJSON_Delete(page);
        page = h_get_objects(port, id, 250);
        CHECK_EQ_INT(cJSON_GetArraySize(page), NOBJECTS + 1);
        CHECK_STR(h_jstr(cJSON_GetArrayItem(page, NOBJECTS), "uri"), "file:///zz");
        cJSON_Delete(page);
    }
out:
    cJSON_Delete(want);
    cJSON_Delete(objects);
}

/* Each stage service answers for its own stage: transform's files, aggregate's none. */
static void test_each_stage(void)
{
    char id[TF_UUID_LEN + 1];
    cJSON *files =
        cJSON_Parse("[{\"uri\":\"file:///lake/silver/b/bars.parquet\",\"bytes\":20,\"records\":2},"
                    "{\"uri\":\"file:///lake/silver/a/bars.parquet\",\"bytes\":10,\"records\":1},"
                    "{\"uri\":\"file:///lake/silver/c/bars.parquet\",\"bytes\":30,\"records\":3}]");
    cJSON *none = cJSON_CreateArray();
    cJSON *rec, *got, *want;

    tf_uuid_new(id);
    if (add_record(id, "extract", none) != 0 || add_record(id, "transform", files) != 0 ||
        add_record(id, "aggregate", none) != 0)
        goto out;
    rec = h_get_record(stack.procs[H_TRANSFORM].port, id);
    check_summary_of(rec, id, 3, 60, 6);
    cJSON_Delete(rec);
    want = sorted(files);
    got = h_get_objects(stack.procs[H_TRANSFORM].port, id, 2);
    CHECK(got && cJSON_Compare(got, want, 1), "transform's files, a and b then c");
    cJSON_Delete(got);
    cJSON_Delete(want);
    for (int p = H_EXTRACT; p <= H_AGGREGATE; p += H_AGGREGATE - H_EXTRACT) {
        rec = h_get_record(stack.procs[p].port, id);
        check_summary_of(rec, id, 0, 0, 0);
        cJSON_Delete(rec);
        got = h_get_objects(stack.procs[p].port, id, 10);
        CHECK(got && cJSON_GetArraySize(got) == 0, "%s: no objects, one empty page",
              stack.procs[p].name);
        cJSON_Delete(got);
    }
out:
    cJSON_Delete(files);
    cJSON_Delete(none);
}

/* One of the clients of test_burst: GETs path n times, counting the answers equal to want. */
struct burst {
    pthread_t thr;
    const char *path, *want;
    int n, same;
};

static void *burst_main(void *arg)
{
    struct burst *b = arg;

    for (int i = 0; i < b->n; i++) {
        struct h_resp r;
        if (h_http("GET", stack.procs[H_EXTRACT].port, b->path, NULL, NULL, &r) == 0 &&
            r.status == 200 && r.body && strcmp(r.body, b->want) == 0)
            b->same++;
        h_resp_free(&r);
    }
    return NULL;
}

/*
 * Many clients at once on the one API connection this stack has
 * (TICKFLOW_API_CONNECTIONS=1): each waits its turn, none is refused, and
 * every answer is the record.
 */
static void test_burst(void)
{
    enum { CLIENTS = 16, EACH = 25 };
    char id[TF_UUID_LEN + 1], path[128];
    struct burst b[CLIENTS];
    struct h_resp first;
    cJSON *none = cJSON_CreateArray();

    tf_uuid_new(id);
    if (add_record(id, "extract", none) != 0)
        goto out;
    snprintf(path, sizeof(path), "/v1/executions/%s", id);
    CHECK(h_http("GET", stack.procs[H_EXTRACT].port, path, NULL, NULL, &first) == 0 &&
              first.status == 200,
          "GET the record");
    for (int i = 0; i < CLIENTS; i++) {
        b[i] = (struct burst){.path = path, .want = first.body ? first.body : "", .n = EACH};
        CHECK(pthread_create(&b[i].thr, NULL, burst_main, &b[i]) == 0, "client %d", i);
    }
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(b[i].thr, NULL);
        CHECK(b[i].same == EACH, "client %d: %d of %d answers were the record", i, b[i].same, EACH);
    }
    h_resp_free(&first);
out:
    cJSON_Delete(none);
}

/* The route is in every stage service's OpenAPI document, with the record's summary. */
static void test_openapi(void)
{
    for (int p = H_EXTRACT; p <= H_AGGREGATE; p++) {
        long status;
        cJSON *doc = get(stack.procs[p].port, "/openapi.json", &status);
        const cJSON *paths = cJSON_GetObjectItemCaseSensitive(doc, "paths");
        const cJSON *schemas = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(doc, "components"), "schemas");
        const cJSON *props = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(schemas, "ExecutionRecord"), "properties");

        CHECK_EQ_INT(status, 200);
        CHECK(cJSON_GetObjectItemCaseSensitive(paths, "/v1/executions/{execution_id}/objects"),
              "%s: the objects route", stack.procs[p].name);
        CHECK(cJSON_GetObjectItemCaseSensitive(props, "objects_summary") &&
                  !cJSON_GetObjectItemCaseSensitive(props, "objects"),
              "%s: the record's summary", stack.procs[p].name);
        CHECK(cJSON_GetObjectItemCaseSensitive(schemas, "ObjectsPage"), "%s: the page",
              stack.procs[p].name);
        cJSON_Delete(doc);
    }
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    static const char *const env[] = {"TICKFLOW_API_CONNECTIONS=1", NULL};

    if (h_stack_start(&stack, "objects", API_KEY, SEED, env) == 0 &&
        h_add_job_tickers(stack.db, JOB, "T", NOBJECTS) == 0) {
        test_big_record();
        test_each_stage();
        test_burst();
        test_openapi();
    } else {
        CHECK(0, "the stack did not start (see %s)", stack.dir);
    }
    CHECK_EQ_INT(h_stack_stop(&stack), 0);
    return check_summary();
}
