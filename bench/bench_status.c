/*
 * bench_status.c - the status read of a big execution, against its target.
 *
 * One extract record holding 500 tickers' bronze objects (one page each, as
 * extract records them), inserted finished; then wrk (-t2 -c32 -d10s
 * --latency) reads GET /v1/executions/{id} of the extract service, and
 * then the first page of GET /v1/executions/{id}/objects, then GET
 * /healthz (the same server without the database: the floor this machine
 * allows at that moment, for reading the other two). The record must
 * stay small whatever the size of the run; the target is 5,000 requests a
 * second with a p99 of 10 ms on a 2-core machine. Ends with
 *   bench status: req_per_s=<n> p99_ms=<n> record_bytes=<n>
 *   bench status objects: req_per_s=<n> p99_ms=<n> page_bytes=<n> limit=<n>
 *   bench status floor: req_per_s=<n> p99_ms=<n>
 * and exits 1 when a request failed or an answer was not 200 (a figure
 * under its target is printed as such, not failed: machines differ).
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "tf/buf.h"
#include "tf/exec.h"

#define TICKERS    500
#define API_KEY    "bench-key"
#define JOB        "bench_status"
#define PAGE_LIMIT 100
#define WRK        "wrk -t2 -c32 -d10s --latency"
#define TARGET_RPS 5000.0
#define TARGET_P99 10.0

static struct h_stack stack;

struct wrk_figures {
    double req_per_s;
    double p99_ms;
    long requests;
    long non_2xx; /* "Non-2xx or 3xx responses" */
    long socket_errors;
};

/* A wrk duration ("812.00us", "4.10ms", "1.02s", "2.00m") in milliseconds; < 0 when unreadable. */
static double wrk_ms(const char *s)
{
    char *end = NULL;
    double v = strtod(s, &end);

    if (end == s)
        return -1;
    if (strncmp(end, "us", 2) == 0)
        return v / 1000;
    if (strncmp(end, "ms", 2) == 0)
        return v;
    if (*end == 's')
        return v * 1000;
    if (*end == 'm')
        return v * 60000;
    return -1;
}

/* Sums the numbers of a "Socket errors: connect 0, read 0, write 0, timeout 0" line. */
static long socket_errors(const char *s)
{
    long n = 0;

    while (*s) {
        char *end = NULL;
        long v = strtol(s, &end, 10);
        if (end != s) {
            n += v;
            s = end;
        } else {
            s++;
        }
    }
    return n;
}

/* Runs wrk on path of the extract service and reads its figures; 0 when it ran and parsed. */
static int run_wrk(const char *path, struct wrk_figures *w)
{
    char cmd[512], line[512];
    FILE *p;
    int status;

    memset(w, 0, sizeof(*w));
    w->req_per_s = w->p99_ms = -1;
    w->requests = -1;
    snprintf(cmd, sizeof(cmd), WRK " 'http://127.0.0.1:%d%s' 2>&1", stack.procs[H_EXTRACT].port,
             path);
    printf("%s\n", cmd);
    p = popen(cmd, "r");
    if (!p) {
        fprintf(stderr, "cannot run %s\n", cmd);
        return -1;
    }
    while (fgets(line, sizeof(line), p)) {
        const char *s = line + strspn(line, " \t");
        fputs(line, stdout);
        if (strncmp(s, "99%", 3) == 0)
            w->p99_ms = wrk_ms(s + 3 + strspn(s + 3, " \t"));
        else if (strncmp(s, "Requests/sec:", 13) == 0)
            w->req_per_s = strtod(s + 13, NULL);
        else if (strstr(s, " requests in "))
            w->requests = strtol(s, NULL, 10);
        else if (strncmp(s, "Non-2xx or 3xx responses:", 25) == 0)
            w->non_2xx = strtol(s + 25, NULL, 10);
        else if (strncmp(s, "Socket errors:", 14) == 0)
            w->socket_errors = socket_errors(s + 14);
    }
    status = pclose(p);
    if (status != 0 || w->req_per_s < 0 || w->p99_ms < 0 || w->requests <= 0) {
        fprintf(stderr, "wrk failed or printed no figures (is the wrk package installed?)\n");
        return -1;
    }
    if (w->non_2xx || w->socket_errors) {
        fprintf(stderr, "wrk: %ld answers not 2xx, %ld socket errors of %ld requests\n", w->non_2xx,
                w->socket_errors, w->requests);
        return -1;
    }
    return 0;
}

/* The job (500 tickers) and its finished extract record with one object per ticker. */
static int make_execution(char id[TF_UUID_LEN + 1])
{
    struct tf_buf objects;
    enum tf_rc rc = TF_OK;
    int ok;

    tf_uuid_new(id);
    if (h_add_job_tickers(stack.db, JOB, "S", TICKERS) != 0)
        return -1;
    tf_buf_init(&objects, 16u << 20);
    for (int k = 0; k < TICKERS && rc == TF_OK; k++) {
        char sha[65];
        for (int i = 0; i < 64; i++)
            sha[i] = "0123456789abcdef"[(k * 7 + i * 13) % 16];
        sha[64] = '\0';
        rc = tf_buf_printf(
            &objects,
            "%s{\"uri\":\"file:///lake/bronze/polygon/stocks/date=2024-03-04/job=" JOB
            "/exec=%s/attempt=1/S%04d.page-0001.json.gz\",\"bytes\":%d,\"raw_bytes\":%d,"
            "\"records\":390,\"sha256\":\"%s\",\"encoding\":\"gzip\",\"provider\":\"polygon\","
            "\"dataset\":\"stocks\",\"ticker\":\"S%04d\",\"timespan\":\"1minute\",\"page\":1,"
            "\"http_status\":200,\"vendor_request_id\":\"req-%08x\"}",
            k ? "," : "[", id, k, 9000 + k, 41000 + k, sha, k, (unsigned)(k * 2654435761u));
    }
    if (rc == TF_OK)
        rc = tf_buf_puts(&objects, "]");
    ok = rc == TF_OK && h_add_finished(stack.db, id, "extract", JOB, objects.data) == 0;
    tf_buf_cleanup(&objects);
    return ok ? 0 : -1;
}

/* GETs path once: the size of its 200 answer, or -1. */
static long answer_bytes(const char *path)
{
    struct h_resp r;
    long n = -1;

    if (h_http("GET", stack.procs[H_EXTRACT].port, path, NULL, NULL, &r) == 0 && r.status == 200 &&
        r.body)
        n = (long)strlen(r.body);
    else
        fprintf(stderr, "GET %s: %ld %s\n", path, r.status, r.body ? r.body : "");
    h_resp_free(&r);
    return n;
}

static const char *verdict(const struct wrk_figures *w)
{
    return w->req_per_s >= TARGET_RPS && w->p99_ms <= TARGET_P99 ? "on target" : "BELOW TARGET";
}

int main(void)
{
    char id[TF_UUID_LEN + 1], path[160], page_path[200];
    struct wrk_figures rec, page, floor;
    long record_bytes, page_bytes;
    int rc = 1;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (h_stack_start(&stack, "benchstatus", API_KEY, 1, NULL) != 0) {
        fprintf(stderr, "the stack did not start (see %s)\n", stack.dir);
        goto out;
    }
    if (make_execution(id) != 0)
        goto out;
    snprintf(path, sizeof(path), "/v1/executions/%s", id);
    snprintf(page_path, sizeof(page_path), "/v1/executions/%s/objects?limit=%d", id, PAGE_LIMIT);
    record_bytes = answer_bytes(path);
    page_bytes = answer_bytes(page_path);
    if (record_bytes < 0 || run_wrk(path, &rec) != 0)
        goto out;
    printf("bench status: req_per_s=%.0f p99_ms=%.2f record_bytes=%ld (%s: >= %.0f req/s,"
           " p99 <= %.0f ms)\n",
           rec.req_per_s, rec.p99_ms, record_bytes, verdict(&rec), TARGET_RPS, TARGET_P99);
    if (page_bytes < 0 || run_wrk(page_path, &page) != 0)
        goto out;
    printf("bench status objects: req_per_s=%.0f p99_ms=%.2f page_bytes=%ld limit=%d\n",
           page.req_per_s, page.p99_ms, page_bytes, PAGE_LIMIT);
    /* The floor: the same server answering without the database. */
    if (run_wrk("/healthz", &floor) != 0)
        goto out;
    printf("bench status floor: req_per_s=%.0f p99_ms=%.2f (GET /healthz, no database: what"
           " this machine allows now)\n",
           floor.req_per_s, floor.p99_ms);
    rc = 0;
out:
    if (h_stack_stop(&stack) != 0)
        rc = 1;
    return rc;
}
