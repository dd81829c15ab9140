/*
 * test_e2e_settings.c - each stage's settings are loaded by the runtime
 * with its own: a service started with bad values exits 2 before touching
 * anything, naming every bad key of both tables at once, and never prints
 * a secret. Each service binary runs in an environment of only the
 * variables given here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "check.h"
#include "tf/buf.h"

#define SECRET "s3cr3t-value-never-printed"

/* Runs service with exactly env (a space-separated list of NAME=value)
 * and returns its exit code; its output (stdout and stderr) goes to out. */
static int run_service(const char *service, const char *env, struct tf_buf *out)
{
    const char *dir = getenv("TF_BIN_DIR") ? getenv("TF_BIN_DIR") : "build/bin";
    char cmd[2048], chunk[4096];
    size_t n;
    FILE *p;
    int status;

    snprintf(cmd, sizeof(cmd), "env -i PATH=/usr/bin:/bin %s timeout 20 %s/tickflow-%s 2>&1", env,
             dir, service);
    p = popen(cmd, "r");
    if (!p)
        return -1;
    while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
        if (tf_buf_append(out, chunk, n) != TF_OK)
            break;
    status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static const char *text(const struct tf_buf *b)
{
    return b->data ? b->data : "";
}

static int count(const char *s, const char *needle)
{
    int n = 0;

    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* A stage's bad setting and the runtime's are both named in one report. */
static void test_both_tables_reported(void)
{
    struct tf_buf out;

    tf_buf_init(&out, 1 << 20);
    CHECK_EQ_INT(run_service("extract",
                             "TICKFLOW_WORKERS=0 TICKFLOW_EXTRACT_CONCURRENCY=0"
                             " TICKFLOW_POLYGON_RATE_PER_MINUTE=x POLYGON_API_KEY=" SECRET,
                             &out),
                 2);
    CHECK_EQ_INT(count(text(&out), "configuration errors"), 1);
    CHECK(strstr(text(&out), "TICKFLOW_WORKERS: expected an integer in 1..64"), "%s", text(&out));
    CHECK(strstr(text(&out), "TICKFLOW_EXTRACT_CONCURRENCY: expected an integer in 1..64"), "%s",
          text(&out));
    CHECK(strstr(text(&out), "TICKFLOW_POLYGON_RATE_PER_MINUTE"), "%s", text(&out));
    CHECK(strstr(text(&out), "TICKFLOW_KAFKA_BROKERS"), "required and missing: %s", text(&out));
    CHECK(strstr(text(&out), "TICKFLOW_PG_DSN"), "required and missing: %s", text(&out));
    CHECK(!strstr(text(&out), SECRET), "no secret printed: %s", text(&out));
    tf_buf_cleanup(&out);
}

/* transform's and aggregate's own settings (aggregate's alert channels
 * included) go through the same loader. */
static void test_stage_keys(void)
{
    struct tf_buf out;

    tf_buf_init(&out, 1 << 20);
    CHECK_EQ_INT(run_service("transform",
                             "TICKFLOW_KAFKA_BROKERS=127.0.0.1:1 TICKFLOW_PG_DSN=postgresql:///x"
                             " TICKFLOW_TRANSFORM_LAKE_MEMORY_MB=70000",
                             &out),
                 2);
    CHECK(strstr(text(&out), "TICKFLOW_TRANSFORM_LAKE_MEMORY_MB: expected an integer in 0..65536"),
          "%s", text(&out));
    CHECK(!strstr(text(&out), "TICKFLOW_KAFKA_BROKERS:"), "good keys are not reported: %s",
          text(&out));
    tf_buf_cleanup(&out);

    tf_buf_init(&out, 1 << 20);
    CHECK_EQ_INT(run_service("aggregate",
                             "TICKFLOW_KAFKA_BROKERS=127.0.0.1:1 TICKFLOW_PG_DSN=postgresql:///x"
                             " TICKFLOW_ALERT_RETRY_MS=5 TICKFLOW_ALERT_MAX_ATTEMPTS=0"
                             " TICKFLOW_HTTP_PORT=70000",
                             &out),
                 2);
    CHECK(strstr(text(&out), "TICKFLOW_ALERT_RETRY_MS: expected an integer in 100..3600000"), "%s",
          text(&out));
    CHECK(strstr(text(&out), "TICKFLOW_ALERT_MAX_ATTEMPTS: expected an integer in 1..100"), "%s",
          text(&out));
    CHECK(strstr(text(&out), "TICKFLOW_HTTP_PORT: expected an integer in 0..65535"), "%s",
          text(&out));
    /* One report: aggregate no longer loads its settings a second way. */
    CHECK_EQ_INT(count(text(&out), "configuration errors"), 1);
    tf_buf_cleanup(&out);
}

int main(void)
{
    test_both_tables_reported();
    test_stage_keys();
    return check_summary();
}
