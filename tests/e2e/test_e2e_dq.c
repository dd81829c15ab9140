/*
 * test_e2e_dq.c - data-quality rules, completeness and alerts, on the
 * native services with the real PostgreSQL and Kafka, and two real
 * listeners started here: an HTTP endpoint (libmicrohttpd) for the
 * webhook and an SMTP server (a socket speaking the protocol) for mail.
 *
 *   - PUT /v1/jobs refuses bad dq_rules with a 400 naming the problem and
 *     changes nothing; good rules are stored and shown;
 *   - an average-close check of AMZN (severity warn) failing: the stage
 *     succeeds, the result is recorded, the warning is on the record and
 *     the alert reaches both listeners with every field; the same check
 *     with a range that holds passes;
 *   - a completeness check of severity fail on a sparse ticker: the stage
 *     fails naming the check, with gold, completeness (100% for a normal
 *     ticker, less for the sparse one, against the calendar) and the
 *     results committed;
 *   - a webhook answering 500: the result stays, the alert is retried with
 *     backoff (mail, which took it, is not sent again) and is delivered
 *     once the endpoint recovers.
 */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../services/marketsim/gen.h"
#include "check.h"
#include "harness.h"
#include "tf/exec.h"
#include "tf/time.h"

#define SEED       3
#define API_KEY    "dq-Key-77e1b2"
#define HOOK_TOKEN "T0KEN-9f8e7d"
#define WS         "2024-03-05T14:30:00Z"
#define WE         "2024-03-05T21:00:00Z"

static struct h_stack stack;

/* ---- the webhook endpoint ---- */

#define MAX_HOOKS 32

struct hook_req {
    char method[8];
    char path[128];
    char ctype[64];
    char *body;
    int answered; /* the status it got */
};

static struct {
    pthread_mutex_t mu;
    struct hook_req reqs[MAX_HOOKS];
    int n;
    int fail; /* answer 500 while set */
    struct MHD_Daemon *d;
    int port;
} hook = {.mu = PTHREAD_MUTEX_INITIALIZER};

struct upload_buf {
    char *data;
    size_t len;
};

static enum MHD_Result hook_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_size, void **req_cls)
{
    struct upload_buf *b = *req_cls;
    struct MHD_Response *resp;
    enum MHD_Result ret;
    int status;
    const char *ct;

    (void)cls;
    (void)version;
    if (!b) {
        b = calloc(1, sizeof(*b));
        *req_cls = b;
        return b ? MHD_YES : MHD_NO;
    }
    if (*upload_size) {
        char *more = realloc(b->data, b->len + *upload_size + 1);
        if (!more)
            return MHD_NO;
        memcpy(more + b->len, upload_data, *upload_size);
        b->data = more;
        b->len += *upload_size;
        b->data[b->len] = '\0';
        *upload_size = 0;
        return MHD_YES;
    }
    ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    pthread_mutex_lock(&hook.mu);
    status = hook.fail ? 500 : 200;
    if (hook.n < MAX_HOOKS) {
        struct hook_req *r = &hook.reqs[hook.n++];
        snprintf(r->method, sizeof(r->method), "%s", method);
        snprintf(r->path, sizeof(r->path), "%s", url);
        snprintf(r->ctype, sizeof(r->ctype), "%s", ct ? ct : "");
        r->body = b->data ? b->data : strdup("");
        b->data = NULL;
        r->answered = status;
    }
    pthread_mutex_unlock(&hook.mu);
    resp = MHD_create_response_from_buffer(2, (void *)"ok", MHD_RESPMEM_PERSISTENT);
    ret = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void hook_done(void *cls, struct MHD_Connection *conn, void **req_cls,
                      enum MHD_RequestTerminationCode toe)
{
    struct upload_buf *b = *req_cls;

    (void)cls;
    (void)conn;
    (void)toe;
    if (b) {
        free(b->data);
        free(b);
    }
    *req_cls = NULL;
}

static int hook_start(void)
{
    const union MHD_DaemonInfo *info;

    hook.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, hook_handler, NULL,
                              MHD_OPTION_NOTIFY_COMPLETED, hook_done, NULL,
                              MHD_OPTION_LISTENING_ADDRESS_REUSE, 1U, MHD_OPTION_END);
    if (!hook.d)
        return -1;
    info = MHD_get_daemon_info(hook.d, MHD_DAEMON_INFO_BIND_PORT);
    hook.port = info ? info->port : 0;
    return hook.port > 0 ? 0 : -1;
}

static void hook_stop(void)
{
    if (hook.d)
        MHD_stop_daemon(hook.d);
    for (int i = 0; i < hook.n; i++)
        free(hook.reqs[i].body);
}

/* Webhook requests whose body names execution id, and of them answered 200. */
static int hook_count(const char *id, int *ok)
{
    int n = 0;

    *ok = 0;
    pthread_mutex_lock(&hook.mu);
    for (int i = 0; i < hook.n; i++) {
        if (hook.reqs[i].body && strstr(hook.reqs[i].body, id)) {
            n++;
            *ok += hook.reqs[i].answered == 200;
        }
    }
    pthread_mutex_unlock(&hook.mu);
    return n;
}

/* The last accepted webhook body for id, parsed (caller deletes), with its request. */
static cJSON *hook_last(const char *id, struct hook_req *copy)
{
    cJSON *out = NULL;

    pthread_mutex_lock(&hook.mu);
    for (int i = hook.n - 1; i >= 0 && !out; i--) {
        if (hook.reqs[i].answered == 200 && hook.reqs[i].body && strstr(hook.reqs[i].body, id)) {
            out = cJSON_Parse(hook.reqs[i].body);
            *copy = hook.reqs[i];
            copy->body = NULL;
        }
    }
    pthread_mutex_unlock(&hook.mu);
    return out;
}

/* ---- the SMTP server ---- */

#define MAX_MAILS 32

struct mail {
    char from[128];
    char rcpt[256]; /* "a,b" */
    char *data;
};

static struct {
    pthread_mutex_t mu;
    struct mail mails[MAX_MAILS];
    int n;
    int fd;
    int port;
    atomic_int stop; /* set by the test, read by the sink's thread */
    pthread_t thr;
} smtp = {.mu = PTHREAD_MUTEX_INITIALIZER, .fd = -1};

/* Reads one CRLF line (without it) into line; 0 on success. */
static int smtp_line(int fd, char *buf, size_t *have, char *line, size_t cap)
{
    for (;;) {
        char *nl = memchr(buf, '\n', *have);
        ssize_t got;
        struct pollfd p = {fd, POLLIN, 0};

        if (nl) {
            size_t len = (size_t)(nl - buf);
            size_t keep = len > 0 && buf[len - 1] == '\r' ? len - 1 : len;
            if (keep >= cap)
                keep = cap - 1;
            memcpy(line, buf, keep);
            line[keep] = '\0';
            memmove(buf, nl + 1, *have - len - 1);
            *have -= len + 1;
            return 0;
        }
        if (*have >= 8191 || smtp.stop || poll(&p, 1, 10000) <= 0)
            return -1;
        got = recv(fd, buf + *have, 8192 - *have, 0);
        if (got <= 0)
            return -1;
        *have += (size_t)got;
    }
}

static void smtp_say(int fd, const char *s)
{
    if (send(fd, s, strlen(s), MSG_NOSIGNAL) < 0)
        return;
}

static void smtp_session(int fd)
{
    char buf[8192], line[1024];
    size_t have = 0;
    struct mail m;
    size_t dlen = 0;

    memset(&m, 0, sizeof(m));
    smtp_say(fd, "220 sink.test ESMTP\r\n");
    while (smtp_line(fd, buf, &have, line, sizeof(line)) == 0) {
        if (strncasecmp(line, "EHLO", 4) == 0) {
            smtp_say(fd, "250-sink.test\r\n250 8BITMIME\r\n");
        } else if (strncasecmp(line, "HELO", 4) == 0) {
            smtp_say(fd, "250 sink.test\r\n");
        } else if (strncasecmp(line, "MAIL FROM:", 10) == 0) {
            snprintf(m.from, sizeof(m.from), "%.120s", line + 10);
            smtp_say(fd, "250 OK\r\n");
        } else if (strncasecmp(line, "RCPT TO:", 8) == 0) {
            size_t l = strlen(m.rcpt);
            snprintf(m.rcpt + l, sizeof(m.rcpt) - l, "%s%.100s", l ? "," : "", line + 8);
            smtp_say(fd, "250 OK\r\n");
        } else if (strcasecmp(line, "DATA") == 0) {
            smtp_say(fd, "354 go on\r\n");
            free(m.data);
            m.data = calloc(1, 1);
            dlen = 0;
            while (m.data && smtp_line(fd, buf, &have, line, sizeof(line)) == 0 &&
                   strcmp(line, ".") != 0) {
                size_t l = strlen(line);
                char *more = realloc(m.data, dlen + l + 3);
                if (!more)
                    break;
                m.data = more;
                memcpy(m.data + dlen, line, l);
                memcpy(m.data + dlen + l, "\n", 2);
                dlen += l + 1;
            }
            pthread_mutex_lock(&smtp.mu);
            if (smtp.n < MAX_MAILS) {
                smtp.mails[smtp.n++] = m;
                m.data = NULL;
            }
            pthread_mutex_unlock(&smtp.mu);
            memset(m.from, 0, sizeof(m.from));
            memset(m.rcpt, 0, sizeof(m.rcpt));
            smtp_say(fd, "250 queued\r\n");
        } else if (strcasecmp(line, "QUIT") == 0) {
            smtp_say(fd, "221 bye\r\n");
            break;
        } else {
            smtp_say(fd, "250 OK\r\n");
        }
    }
    free(m.data);
    close(fd);
}

static void *smtp_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&smtp.stop)) {
        struct pollfd p = {smtp.fd, POLLIN, 0};
        if (poll(&p, 1, 200) <= 0)
            continue;
        int c = accept(smtp.fd, NULL, NULL);
        if (c >= 0)
            smtp_session(c);
    }
    return NULL;
}

static int smtp_start(void)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    int one = 1;

    smtp.fd = socket(AF_INET, SOCK_STREAM, 0);
    if (smtp.fd < 0)
        return -1;
    setsockopt(smtp.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(smtp.fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(smtp.fd, 8) != 0 ||
        getsockname(smtp.fd, (struct sockaddr *)&a, &alen) != 0)
        return -1;
    smtp.port = ntohs(a.sin_port);
    return pthread_create(&smtp.thr, NULL, smtp_main, NULL) == 0 ? 0 : -1;
}

static void smtp_stop(void)
{
    if (smtp.fd >= 0) {
        atomic_store(&smtp.stop, 1);
        pthread_join(smtp.thr, NULL);
        close(smtp.fd);
    }
    for (int i = 0; i < smtp.n; i++)
        free(smtp.mails[i].data);
}

/* Mails whose message names id; the last one copied into *copy (data: caller frees). */
static int mail_count(const char *id, struct mail *copy)
{
    int n = 0;

    memset(copy, 0, sizeof(*copy));
    pthread_mutex_lock(&smtp.mu);
    for (int i = 0; i < smtp.n; i++) {
        if (smtp.mails[i].data && strstr(smtp.mails[i].data, id)) {
            n++;
            free(copy->data);
            *copy = smtp.mails[i];
            copy->data = strdup(smtp.mails[i].data);
        }
    }
    pthread_mutex_unlock(&smtp.mu);
    return n;
}

/* ---- helpers ---- */

static cJSON *call(const char *method, int port, const char *path, const char *body, long *status)
{
    return h_call(method, port, path, body, "X-Tickflow-Actor: e2e", status);
}

/* Runs job over the test's window through aggregate; returns the aggregate record. */
static cJSON *run_job(const char *job, char id[TF_UUID_LEN + 1])
{
    char body[512];
    long status;

    tf_uuid_new(id);
    snprintf(body, sizeof(body),
             "{\"execution_id\":\"%s\",\"job_name\":\"%s\",\"window_start\":\"" WS "\","
             "\"window_end\":\"" WE "\"}",
             id, job);
    cJSON_Delete(call("POST", stack.procs[H_EXTRACT].port, "/v1/executions", body, &status));
    CHECK_EQ_INT(status, 202);
    return h_wait_stage(&stack, stack.procs[H_AGGREGATE].port, id, h_timeout(120));
}

/* Waits up to seconds for a query on id to give want; returns the last value. */
static long long wait_ll(const char *sql, const char *id, long long want, int seconds)
{
    const char *params[1] = {id};
    long long v = LLONG_MIN;

    for (int i = 0; i < h_timeout(seconds) * 10; i++) {
        v = h_pg_ll(stack.db, sql, 1, params);
        if (v == want)
            break;
        h_sleep_ms(100);
    }
    return v;
}

static double amzn_avg_close(void)
{
    struct ms_bar *bars = NULL;
    int64_t ws = 0, we = 0;
    double s = 0;
    size_t n;

    if (tf_time_parse(WS, &ws) != TF_OK || tf_time_parse(WE, &we) != TF_OK)
        return NAN;
    n = ms_gen_minute_bars(SEED, "AMZN", ws * 1000, we * 1000 - 1, &bars);
    for (size_t i = 0; i < n; i++)
        s += bars[i].c;
    free(bars);
    return n ? s / (double)n : NAN;
}

/* The number after "key: " in text, or NAN. */
static double field_num(const char *text, const char *key)
{
    const char *p = text ? strstr(text, key) : NULL;

    return p ? strtod(p + strlen(key), NULL) : NAN;
}

/* ---- tests ---- */

static void test_put_validation(void)
{
    static const struct {
        const char *rules;
        const char *says;
    } cases[] = {
        {"{\"check\":\"avg_close_between\"}", "list"},
        {"[{\"check\":\"median_close\",\"value\":1}]", "unknown check"},
        {"[{\"value\":1}]", "check is required"},
        {"[{\"check\":\"min_completeness\",\"value\":0.9,\"colour\":\"red\"}]", "unknown field"},
        {"[{\"check\":\"avg_close_between\",\"ticker\":\"AMZN\",\"min\":100}]", "max is required"},
        {"[{\"check\":\"max_gap_minutes\",\"value\":\"15\"}]", "must be a number"},
        {"[{\"check\":\"avg_close_between\",\"ticker\":\"AMZN\",\"min\":250,\"max\":100}]",
         "greater than max"},
        {"[{\"check\":\"freshness_minutes\",\"value\":30,\"severity\":\"panic\"}]", "severity"},
        {"[{\"check\":\"min_completeness\",\"value\":1.5}]", "ratio"},
        {"[{\"check\":\"min_completeness\",\"value\":0.9,\"ticker\":\"TSLA\"}]",
         "not one of the job's tickers"},
        {"[{\"check\":\"max_gap_minutes\",\"value\":-1}]", "minutes"},
        {"[17]", "must be an object"},
    };
    long long before = h_pg_ll(
        stack.db, "SELECT count(*) FROM tickflow.job_config WHERE job_name = 'dq_put'", 0, NULL);
    char body[1024];
    long status;
    cJSON *ans;

    CHECK_EQ_INT(before, 0);
    for (size_t i = 0; i < TF_ARRAY_LEN(cases); i++) {
        const char *msg;
        snprintf(body, sizeof(body),
                 "{\"provider\":\"polygon\",\"tickers\":[\"AMZN\",\"AAPL\"],\"dq_rules\":%s}",
                 cases[i].rules);
        ans = call("PUT", stack.procs[H_EXTRACT].port, "/v1/jobs/dq_put", body, &status);
        msg = h_jstr(cJSON_GetObjectItem(ans, "error"), "message");
        CHECK(status == 400, "case %zu: status %ld", i, status);
        CHECK(msg && strstr(msg, cases[i].says), "case %zu: message \"%s\" says \"%s\"", i,
              msg ? msg : "-", cases[i].says);
        cJSON_Delete(ans);
    }
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT count(*) FROM tickflow.job_config WHERE job_name = 'dq_put'", 0,
                         NULL),
                 0);
    /* A good set is stored as sent and shown by GET. */
    ans = call("PUT", stack.procs[H_EXTRACT].port, "/v1/jobs/dq_put",
               "{\"provider\":\"polygon\",\"tickers\":[\"AMZN\",\"AAPL\"],\"dq_rules\":["
               "{\"check\":\"avg_close_between\",\"ticker\":\"AMZN\",\"min\":100,\"max\":250,"
               "\"severity\":\"warn\"},{\"check\":\"min_completeness\",\"value\":0.95,"
               "\"severity\":\"fail\"},{\"check\":\"max_gap_minutes\",\"value\":15},"
               "{\"check\":\"freshness_minutes\",\"value\":30}]}",
               &status);
    CHECK_EQ_INT(status, 201);
    cJSON_Delete(ans);
    ans = call("GET", stack.procs[H_EXTRACT].port, "/v1/jobs/dq_put", NULL, &status);
    CHECK_EQ_INT(status, 200);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(ans, "dq_rules")), 4);
    CHECK_STR(h_jstr(cJSON_GetArrayItem(cJSON_GetObjectItem(ans, "dq_rules"), 1), "severity"),
              "fail");
    cJSON_Delete(ans);
    /* A PUT without dq_rules replaces them with none. */
    ans = call("PUT", stack.procs[H_EXTRACT].port, "/v1/jobs/dq_put",
               "{\"provider\":\"polygon\",\"tickers\":[\"AMZN\"]}", &status);
    CHECK_EQ_INT(status, 200);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(ans, "dq_rules")), 0);
    cJSON_Delete(ans);
}

static void put_job(const char *name, const char *tickers, const char *rules)
{
    char path[96], body[2048];
    long status;

    snprintf(path, sizeof(path), "/v1/jobs/%s", name);
    snprintf(body, sizeof(body),
             "{\"provider\":\"polygon\",\"tickers\":%s,\"interval_seconds\":86400,"
             "\"dq_rules\":%s}",
             tickers, rules);
    cJSON_Delete(call("PUT", stack.procs[H_EXTRACT].port, path, body, &status));
    CHECK(status == 201, "job %s created: %ld", name, status);
}

/* The object whose uri is uri of a list of objects (GET /v1/executions/{id}/objects). */
static const cJSON *object_of(const cJSON *objects, const char *uri)
{
    const cJSON *o;

    cJSON_ArrayForEach(o, objects)
    {
        if (h_jstr(o, "uri") && strcmp(h_jstr(o, "uri"), uri) == 0)
            return o;
    }
    return NULL;
}

static void test_warn_check(void)
{
    double avg = amzn_avg_close();
    char rules[1024], id[TF_UUID_LEN + 1];
    const char *params[1] = {id};
    cJSON *rec, *hookj, *objects;
    const cJSON *dq, *tf;
    struct hook_req hr;
    struct mail m;
    int ok = 0;

    CHECK(!isnan(avg) && avg > 0, "AMZN average close %g", avg);
    /* Rule 0 cannot hold (the average is below it); rule 1 holds. */
    snprintf(rules, sizeof(rules),
             "[{\"check\":\"avg_close_between\",\"ticker\":\"AMZN\",\"min\":%.4f,\"max\":%.4f},"
             "{\"check\":\"avg_close_between\",\"ticker\":\"AMZN\",\"min\":%.4f,\"max\":%.4f,"
             "\"severity\":\"fail\"},"
             "{\"check\":\"min_completeness\",\"value\":1,\"severity\":\"fail\"},"
             "{\"check\":\"max_gap_minutes\",\"value\":1,\"severity\":\"fail\"},"
             "{\"check\":\"freshness_minutes\",\"value\":0,\"severity\":\"fail\"}]",
             avg + 10, avg + 20, avg - 5, avg + 5);
    put_job("dq_warn", "[\"AMZN\",\"AAPL\"]", rules);
    rec = run_job("dq_warn", id);
    CHECK(rec && strcmp(h_jstr(rec, "status"), "SUCCESS") == 0,
          "a failed warn check leaves the stage SUCCESS: %s (%s)",
          rec ? h_jstr(rec, "status") : "timeout",
          rec && h_jstr(rec, "error") ? h_jstr(rec, "error") : "");
    /* The record counts aggregate's four objects; the warning is on its dq_results object. */
    CHECK_EQ_INT(h_jnum(cJSON_GetObjectItem(rec, "objects_summary"), "count"), 4);
    objects = h_get_objects(stack.procs[H_AGGREGATE].port, id, 3);
    CHECK_EQ_INT(cJSON_GetArraySize(objects), 4);
    dq = object_of(objects, "postgres:gold.dq_results");
    CHECK_EQ_INT(h_jnum(dq, "records"), 8);
    CHECK_EQ_INT(h_jnum(dq, "failed"), 1);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(dq, "warnings")), 1);
    {
        const char *w =
            cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(dq, "warnings"), 0));
        CHECK(w && strstr(w, "avg_close_between") && strstr(w, "AMZN"), "warning on the record: %s",
              w ? w : "-");
    }
    cJSON_Delete(objects);
    cJSON_Delete(rec);
    /* Every result is recorded, the failed one with its value and threshold. */
    CHECK_EQ_INT(h_pg_ll(stack.db, "SELECT count(*) FROM gold.dq_results WHERE execution_id = $1",
                         1, params),
                 8);
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT count(*) FROM gold.dq_results WHERE execution_id = $1"
                         " AND passed",
                         1, params),
                 7);
    {
        char *v = h_pg_value(stack.db,
                             "SELECT value || ' ' || threshold || ' ' || severity || ' ' ||"
                             " check_name || ' ' || ticker FROM gold.dq_results"
                             " WHERE execution_id = $1 AND NOT passed",
                             1, params);
        CHECK(v && fabs(strtod(v, NULL) - avg) < 1e-9 * avg, "value %s, want %.10g", v ? v : "-",
              avg);
        CHECK(v && strstr(v, "warn avg_close_between AMZN"), "result row: %s", v ? v : "-");
        free(v);
    }
    /* The passing checks measured what they should. */
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT count(*) FROM gold.dq_results WHERE execution_id = $1"
                         " AND ((check_name = 'min_completeness' AND value = 1)"
                         " OR (check_name = 'max_gap_minutes' AND value = 1)"
                         " OR (check_name = 'freshness_minutes' AND value = 0))",
                         1, params),
                 6);
    /* The alert reaches both listeners, once, with every field. */
    CHECK_EQ_INT(wait_ll("SELECT count(*) FROM gold.dq_results WHERE execution_id = $1"
                         " AND alert_state = 'sent' AND alert_attempts = 1"
                         " AND alert_channels = '{webhook,mail}'",
                         id, 1, 30),
                 1);
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT count(*) FROM gold.dq_results WHERE execution_id = $1"
                         " AND alert_state = 'none'",
                         1, params),
                 7);
    CHECK_EQ_INT(hook_count(id, &ok), 1);
    CHECK_EQ_INT(ok, 1);
    hookj = hook_last(id, &hr);
    CHECK_STR(hr.method, "POST");
    CHECK_STR(hr.path, "/hooks/" HOOK_TOKEN);
    CHECK(strstr(hr.ctype, "application/json") != NULL, "content type %s", hr.ctype);
    tf = cJSON_GetObjectItem(hookj, "tickflow");
    CHECK_STR(h_jstr(tf, "job_name"), "dq_warn");
    CHECK_STR(h_jstr(tf, "execution_id"), id);
    CHECK_STR(h_jstr(tf, "check"), "avg_close_between");
    CHECK_STR(h_jstr(tf, "severity"), "warn");
    CHECK(fabs(h_jnum(tf, "value") - avg) < 1e-9 * avg, "webhook value %.10g", h_jnum(tf, "value"));
    CHECK(h_jstr(tf, "threshold") && h_jstr(tf, "threshold")[0] == '[', "threshold %s",
          h_jstr(tf, "threshold") ? h_jstr(tf, "threshold") : "-");
    CHECK(h_jstr(tf, "message") && strstr(h_jstr(tf, "message"), "AMZN"), "message names AMZN");
    CHECK(h_jstr(hookj, "text") && strstr(h_jstr(hookj, "text"), "dq_warn"), "Slack text");
    cJSON_Delete(hookj);
    CHECK_EQ_INT(mail_count(id, &m), 1);
    CHECK(strstr(m.from, "tickflow@example.com") != NULL, "envelope from %s", m.from);
    CHECK(strstr(m.rcpt, "ops@example.com") && strstr(m.rcpt, "data@example.com"),
          "two recipients: %s", m.rcpt);
    CHECK(m.data && strstr(m.data, "Subject: [tickflow] warn dq_warn avg_close_between"),
          "subject");
    CHECK(m.data && strstr(m.data, "job: dq_warn"), "mail job");
    CHECK(m.data && strstr(m.data, "check: avg_close_between"), "mail check");
    CHECK(m.data && strstr(m.data, "threshold: ["), "mail threshold");
    CHECK(fabs(field_num(m.data, "value: ") - avg) < 1e-6 * avg, "mail value %g",
          field_num(m.data, "value: "));
    {
        char line[64];
        snprintf(line, sizeof(line), "execution_id: %s", id);
        CHECK(m.data && strstr(m.data, line), "mail execution id");
    }
    free(m.data);
}

static void test_fail_check_and_completeness(void)
{
    char id[TF_UUID_LEN + 1];
    const char *params[1] = {id};
    struct ms_bar *bars = NULL;
    int64_t ws = 0, we = 0;
    long long sparse;
    cJSON *rec;
    struct mail m;
    int ok;

    CHECK(tf_time_parse(WS, &ws) == TF_OK && tf_time_parse(WE, &we) == TF_OK, "parse");
    sparse = (long long)ms_gen_minute_bars(SEED, "QQQ.SPARSE", ws * 1000, we * 1000 - 1, &bars);
    free(bars);
    CHECK(sparse > 0 && sparse < 390, "the sparse ticker skips minutes: %lld", sparse);
    put_job("dq_fail", "[\"AAPL\",\"QQQ.SPARSE\"]",
            "[{\"check\":\"min_completeness\",\"value\":0.99,\"severity\":\"fail\"}]");
    rec = run_job("dq_fail", id);
    CHECK(rec && strcmp(h_jstr(rec, "status"), "FAILED") == 0, "a failed fail check: %s",
          rec ? h_jstr(rec, "status") : "timeout");
    CHECK(rec && h_jstr(rec, "error") && strstr(h_jstr(rec, "error"), "min_completeness") &&
              strstr(h_jstr(rec, "error"), "QQQ.SPARSE"),
          "the error names the check: %s",
          rec && h_jstr(rec, "error") ? h_jstr(rec, "error") : "-");
    CHECK_EQ_INT(h_jnum(rec, "records_out"), 7 * 2);
    cJSON_Delete(rec);
    /* Gold, completeness and the results were committed before the stage failed. */
    CHECK_EQ_INT(h_pg_ll(stack.db, "SELECT count(*) FROM gold.bars_hourly WHERE execution_id = $1",
                         1, params),
                 14);
    CHECK_EQ_INT(h_pg_ll(stack.db, "SELECT count(*) FROM gold.bars_daily WHERE execution_id = $1",
                         1, params),
                 2);
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT count(*) FROM gold.completeness WHERE execution_id = $1"
                         " AND ticker = 'AAPL' AND market = 'us_equity' AND expected = 390"
                         " AND actual = 390 AND ratio = 1 AND job_name = 'dq_fail'",
                         1, params),
                 1);
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT actual FROM gold.completeness WHERE execution_id = $1"
                         " AND ticker = 'QQQ.SPARSE' AND expected = 390 AND ratio < 1",
                         1, params),
                 sparse);
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT count(*) FROM gold.dq_results WHERE execution_id = $1"
                         " AND severity = 'fail' AND ((ticker = 'AAPL' AND passed AND value = 1)"
                         " OR (ticker = 'QQQ.SPARSE' AND NOT passed AND value < 0.99))",
                         1, params),
                 2);
    CHECK_EQ_INT(wait_ll("SELECT count(*) FROM gold.dq_results WHERE execution_id = $1"
                         " AND alert_state = 'sent'",
                         id, 1, 30),
                 1);
    CHECK_EQ_INT(hook_count(id, &ok), 1);
    CHECK_EQ_INT(mail_count(id, &m), 1);
    CHECK(m.data && strstr(m.data, "severity: fail"), "mail severity");
    free(m.data);
    /* The same, over HTTP. */
    {
        char path[128];
        long status;
        cJSON *q, *c;
        snprintf(path, sizeof(path), "/v1/executions/%s/quality", id);
        q = call("GET", stack.procs[H_AGGREGATE].port, path, NULL, &status);
        CHECK_EQ_INT(status, 200);
        c = cJSON_GetArrayItem(cJSON_GetObjectItem(q, "completeness"), 0);
        CHECK_STR(h_jstr(c, "ticker"), "AAPL");
        CHECK_EQ_INT(h_jnum(c, "expected"), 390);
        CHECK_EQ_INT(h_jnum(c, "actual"), 390);
        CHECK(h_jnum(c, "ratio") == 1, "AAPL ratio 1");
        c = cJSON_GetArrayItem(cJSON_GetObjectItem(q, "completeness"), 1);
        CHECK_STR(h_jstr(c, "ticker"), "QQQ.SPARSE");
        CHECK_EQ_INT(h_jnum(c, "actual"), sparse);
        CHECK_STR(h_jstr(c, "window_start"), WS);
        CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(q, "checks")), 2);
        c = cJSON_GetArrayItem(cJSON_GetObjectItem(q, "checks"), 1);
        CHECK_STR(h_jstr(c, "check"), "min_completeness");
        CHECK_STR(h_jstr(c, "ticker"), "QQQ.SPARSE");
        CHECK(cJSON_IsFalse(cJSON_GetObjectItem(c, "passed")), "QQQ.SPARSE failed");
        CHECK_STR(h_jstr(c, "threshold"), ">= 0.99");
        CHECK_STR(h_jstr(cJSON_GetObjectItem(c, "alert"), "state"), "sent");
        cJSON_Delete(q);
        cJSON_Delete(call("GET", stack.procs[H_AGGREGATE].port,
                          "/v1/executions/6f1c2a52-0d4e-4c43-9a55-0b7a3a0c1d99/quality", NULL,
                          &status));
        CHECK_EQ_INT(status, 404);
        cJSON_Delete(call("GET", stack.procs[H_AGGREGATE].port, "/v1/executions/nope/quality", NULL,
                          &status));
        CHECK_EQ_INT(status, 400);
        q = call("GET", stack.procs[H_AGGREGATE].port, "/openapi.json", NULL, &status);
        CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(q, "paths"),
                                  "/v1/executions/{execution_id}/quality") != NULL,
              "the route is in the OpenAPI document");
        cJSON_Delete(q);
    }
    /* The FAILED event went out on the gold topic. */
    {
        long with = 0;
        h_topic_scan(stack.prefix, "tickflow.gold.v1", id, &with);
        CHECK_EQ_INT(with, 1);
    }
}

static void test_webhook_recovers(void)
{
    char id[TF_UUID_LEN + 1];
    const char *params[1] = {id};
    cJSON *rec;
    struct mail m;
    int ok = 0;
    char *err;

    put_job("dq_retry", "[\"AMZN\"]",
            "[{\"check\":\"avg_close_between\",\"ticker\":\"AMZN\",\"min\":1,\"max\":2}]");
    pthread_mutex_lock(&hook.mu);
    hook.fail = 1;
    pthread_mutex_unlock(&hook.mu);
    rec = run_job("dq_retry", id);
    CHECK(rec && strcmp(h_jstr(rec, "status"), "SUCCESS") == 0, "stage SUCCESS: %s",
          rec ? h_jstr(rec, "status") : "timeout");
    cJSON_Delete(rec);
    /* The result is there at once; the alert keeps failing on the webhook. */
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT count(*) FROM gold.dq_results WHERE execution_id = $1"
                         " AND NOT passed",
                         1, params),
                 1);
    CHECK(wait_ll("SELECT count(*) FROM gold.dq_results WHERE execution_id = $1"
                  " AND alert_state = 'pending' AND alert_attempts >= 3",
                  id, 1, 40) == 1,
          "three failed attempts");
    err = h_pg_value(stack.db,
                     "SELECT alert_last_error || ' ' || alert_channels::text FROM gold.dq_results"
                     " WHERE execution_id = $1",
                     1, params);
    CHECK(err && strstr(err, "500") && strstr(err, "{mail}"), "state says why: %s",
          err ? err : "-");
    CHECK(err && !strstr(err, HOOK_TOKEN), "no token in the error");
    free(err);
    CHECK(hook_count(id, &ok) >= 3, "the webhook was tried again");
    CHECK_EQ_INT(ok, 0);
    /* Backoff: attempts are spaced out, not one per tick. */
    CHECK(h_pg_ll(stack.db,
                  "SELECT (extract(epoch FROM alert_next_at - now()) * 1000)::bigint"
                  " FROM gold.dq_results WHERE execution_id = $1",
                  1, params) > 0,
          "next attempt scheduled later");
    pthread_mutex_lock(&hook.mu);
    hook.fail = 0;
    pthread_mutex_unlock(&hook.mu);
    CHECK_EQ_INT(wait_ll("SELECT count(*) FROM gold.dq_results WHERE execution_id = $1"
                         " AND alert_state = 'sent' AND alert_channels = '{webhook,mail}'"
                         " AND alert_sent_at IS NOT NULL",
                         id, 1, 60),
                 1);
    hook_count(id, &ok);
    CHECK_EQ_INT(ok, 1);
    /* Mail took it on the first attempt and was not sent again. */
    CHECK_EQ_INT(mail_count(id, &m), 1);
    free(m.data);
    CHECK(!h_file_contains(stack.procs[H_AGGREGATE].log, HOOK_TOKEN), "no token in the log");
}

int main(void)
{
    char env[5][256];
    const char *extra[8];

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (hook_start() != 0 || smtp_start() != 0) {
        CHECK(0, "listeners did not start");
        return check_summary();
    }
    snprintf(env[0], sizeof(env[0]),
             "TICKFLOW_ALERT_WEBHOOK_URL=http://127.0.0.1:%d/hooks/" HOOK_TOKEN, hook.port);
    snprintf(env[1], sizeof(env[1]), "TICKFLOW_ALERT_SMTP_URL=smtp://127.0.0.1:%d", smtp.port);
    snprintf(env[2], sizeof(env[2]), "TICKFLOW_ALERT_MAIL_TO=ops@example.com,data@example.com");
    snprintf(env[3], sizeof(env[3]), "TICKFLOW_ALERT_MAIL_FROM=tickflow@example.com");
    snprintf(env[4], sizeof(env[4]), "TICKFLOW_ALERT_RETRY_MS=500");
    for (int i = 0; i < 5; i++)
        extra[i] = env[i];
    extra[5] = "TICKFLOW_ALERT_TIMEOUT_MS=3000";
    extra[6] = NULL;
    if (h_stack_start(&stack, "dq", API_KEY, SEED, extra) == 0) {
        test_put_validation();
        test_warn_check();
        test_fail_check_and_completeness();
        test_webhook_recovers();
    } else {
        CHECK(0, "the stack did not start (see %s)", stack.dir);
    }
    CHECK_EQ_INT(h_stack_stop(&stack), 0);
    hook_stop();
    smtp_stop();
    return check_summary();
}
