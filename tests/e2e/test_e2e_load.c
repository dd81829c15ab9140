/*
 * test_e2e_load.c - the stage API under load, on the real stack.
 *
 *   - 1,000 POSTs of one execution id at once (libcurl multi, one
 *     connection each): every caller ends with 202 or 200 for that id
 *     (retrying, as a client should, a 429 after its Retry-After or a
 *     connection the server refused); the database holds exactly one
 *     execution, which runs once through gold.
 *   - 200 executions over 20 jobs posted at once: all SUCCESS through
 *     gold, and each stage topic carries exactly 200 events.
 */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "harness.h"
#include "tf/exec.h"

#define API_KEY "load-Key-3e91"
#define SEED    37
#define CALLERS 1000
#define JOBS    20
#define PER_JOB 10
#define BURST   (JOBS * PER_JOB)

static struct h_stack stack;

/* One caller: its handle, what it was last answered, how often it tried. */
struct caller {
    CURL *h;
    struct curl_slist *hdrs;
    char body[4096];
    size_t len;
    long status;
    int tries;
    double not_before; /* a retry waits for this time */
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct caller *c = ud;
    size_t k = size * n, room = sizeof(c->body) - 1 - c->len;

    memcpy(c->body + c->len, p, k < room ? k : room);
    c->len += k < room ? k : room;
    c->body[c->len] = '\0';
    return k;
}

static void caller_arm(CURLM *multi, struct caller *c, const char *url, const char *payload)
{
    c->len = 0;
    c->body[0] = '\0';
    c->status = 0;
    c->tries++;
    curl_easy_reset(c->h);
    curl_easy_setopt(c->h, CURLOPT_URL, url);
    curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, payload);
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, c->hdrs);
    curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c->h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->h, CURLOPT_PRIVATE, c);
    curl_easy_setopt(c->h, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c->h, CURLOPT_FORBID_REUSE, 1L);
    curl_multi_add_handle(multi, c->h);
}

/*
 * Posts payload to url from n callers at once; each retries a 429 (after
 * its Retry-After) or a refused connection until it gets another answer.
 * Returns how many tries there were in all.
 */
static long post_all(struct caller *cs, int n, const char *url, const char *payload)
{
    CURLM *multi = curl_multi_init();
    int running = 0, pending = n;
    long tries = 0;
    double deadline = h_now_s() + h_timeout(180);

    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)n);
    for (int i = 0; i < n; i++) {
        cs[i].h = curl_easy_init();
        cs[i].hdrs = curl_slist_append(NULL, "Content-Type: application/json");
        caller_arm(multi, &cs[i], url, payload);
    }
    while (pending > 0 && h_now_s() < deadline) {
        CURLMsg *msg;
        int left;

        curl_multi_perform(multi, &running);
        while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
            struct caller *c = NULL;

            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &c->status);
            curl_multi_remove_handle(multi, msg->easy_handle);
            if (msg->data.result != CURLE_OK || c->status == 429 || c->status == 0) {
                c->not_before = h_now_s() + (c->status == 429 ? 1.0 : 0.2);
                c->status = -1; /* to be tried again */
            } else {
                pending--;
            }
        }
        for (int i = 0; i < n; i++)
            if (cs[i].status == -1 && h_now_s() >= cs[i].not_before)
                caller_arm(multi, &cs[i], url, payload);
        curl_multi_poll(multi, NULL, 0, 50, NULL);
    }
    for (int i = 0; i < n; i++) {
        tries += cs[i].tries;
        curl_multi_remove_handle(multi, cs[i].h);
        curl_easy_cleanup(cs[i].h);
        curl_slist_free_all(cs[i].hdrs);
    }
    curl_multi_cleanup(multi);
    return tries;
}

static void test_one_id(void)
{
    struct caller *cs = calloc(CALLERS, sizeof(*cs));
    char id[TF_UUID_LEN + 1], url[128], payload[512];
    const char *idp[1] = {id};
    int accepted = 0, again = 0, other = 0, same_id = 0;
    long tries;
    cJSON *rec;

    if (!cs)
        return;
    tf_uuid_new(id);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/executions", stack.procs[H_EXTRACT].port);
    snprintf(payload, sizeof(payload),
             "{\"execution_id\":\"%s\",\"job_name\":\"load_0\",\"window_start\":"
             "\"2024-03-04T14:30:00Z\",\"window_end\":\"2024-03-04T21:00:00Z\"}",
             id);
    tries = post_all(cs, CALLERS, url, payload);
    for (int i = 0; i < CALLERS; i++) {
        cJSON *b = cJSON_Parse(cs[i].body);

        accepted += cs[i].status == 202;
        again += cs[i].status == 200;
        other += cs[i].status != 202 && cs[i].status != 200;
        same_id += h_jstr(b, "execution_id") && strcmp(h_jstr(b, "execution_id"), id) == 0;
        cJSON_Delete(b);
    }
    printf("# %d callers, %ld tries: %d accepted, %d already there, %d other\n", CALLERS, tries,
           accepted, again, other);
    CHECK_EQ_INT(accepted, 1);
    CHECK_EQ_INT(again, CALLERS - 1);
    CHECK_EQ_INT(same_id, CALLERS);
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT count(*) FROM tickflow.job_execution WHERE execution_id = $1"
                         " AND stage = 'extract'",
                         1, idp),
                 1);
    rec = h_wait_stage(&stack, stack.procs[H_AGGREGATE].port, id, 120);
    CHECK(rec && strcmp(h_jstr(rec, "status"), "SUCCESS") == 0, "the execution ran: %s",
          rec ? h_jstr(rec, "status") : "timeout");
    cJSON_Delete(rec);
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT count(*) FROM tickflow.job_execution WHERE execution_id = $1", 1,
                         idp),
                 3);
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT max(attempt) FROM tickflow.job_execution WHERE execution_id = $1",
                         1, idp),
                 1);
    free(cs);
}

static void test_burst(void)
{
    static const char *const days[PER_JOB] = {"04", "05", "06", "07", "08",
                                              "11", "12", "13", "14", "15"};
    static const char *const topics[] = {"tickflow.bronze.v1", "tickflow.silver.v1",
                                         "tickflow.gold.v1"};
    char body[512];
    int accepted = 0, done = 0;
    long long ok = -1;

    for (int j = 0; j < JOBS; j++) {
        for (int k = 0; k < PER_JOB; k++) {
            long status;

            snprintf(body, sizeof(body),
                     "{\"job_name\":\"load_%d\",\"window_start\":\"2024-03-%sT14:30:00Z\","
                     "\"window_end\":\"2024-03-%sT21:00:00Z\"}",
                     j, days[k], days[k]);
            cJSON_Delete(
                h_call("POST", stack.procs[H_EXTRACT].port, "/v1/executions", body, NULL, &status));
            accepted += status == 202;
        }
    }
    CHECK_EQ_INT(accepted, BURST);
    for (int i = 0; i < h_timeout(600) * 2 && !done; i++) {
        ok = h_pg_ll(stack.db,
                     "SELECT count(*) FROM tickflow.job_execution WHERE stage = 'aggregate'"
                     " AND status IN ('SUCCESS', 'FAILED') AND job_name LIKE 'load\\_%'",
                     0, NULL);
        done = ok >= BURST + 1; /* and the one of test_one_id */
        if (!done)
            h_sleep_ms(500);
    }
    CHECK_EQ_INT(h_pg_ll(stack.db,
                         "SELECT count(*) FROM tickflow.job_execution WHERE status = 'SUCCESS'"
                         " AND job_name LIKE 'load\\_%'",
                         0, NULL),
                 3 * (BURST + 1));
    for (size_t t = 0; t < sizeof(topics) / sizeof(topics[0]); t++) {
        long with = 0;
        long n = h_topic_scan(stack.prefix, topics[t], "\"load_", &with);

        CHECK(n == BURST + 1 && with == BURST + 1, "%s: %ld events (%ld of the jobs), want %d",
              topics[t], n, with, BURST + 1);
    }
}

int main(void)
{
    static const char *const env[] = {"TICKFLOW_HTTP_CLIENT_CONNECTIONS=1000", NULL};
    int jobs_ok = 1;

    setvbuf(stdout, NULL, _IOLBF, 0);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (h_stack_start(&stack, "load", API_KEY, SEED, env) == 0) {
        for (int j = 0; j < JOBS && jobs_ok; j++) {
            char name[32], prefix[16];

            snprintf(name, sizeof(name), "load_%d", j);
            snprintf(prefix, sizeof(prefix), "L%02d", j);
            jobs_ok = h_add_job_tickers(stack.db, name, prefix, 1) == 0;
        }
        CHECK(jobs_ok, "the jobs");
        test_one_id();
        test_burst();
    } else {
        CHECK(0, "the stack did not start (see %s)", stack.dir);
    }
    CHECK_EQ_INT(h_stack_stop(&stack), 0);
    curl_global_cleanup();
    return check_summary();
}
