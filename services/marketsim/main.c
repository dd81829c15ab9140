/*
 * main.c - tickflow-marketsim: a stand-in for Polygon's aggregates API.
 *
 * Owns the process: configuration from the environment, the HTTP daemon,
 * routing, Polygon's status envelopes, and the shutdown on SIGINT/SIGTERM
 * (sigwait on a mask blocked before any thread starts, then the daemon is
 * stopped and everything freed). The bars themselves come from gen.c, the
 * aggregates endpoint lives in aggs.c.
 */
#include "marketsim.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf/cfg.h"
#include "tf/log.h"

#define AGGS_PATTERN "/v2/aggs/ticker/*/range/*/*/*/*"

struct marketsim_cfg {
    char *addr;
    long port;
    char *log_level;
    char *api_key;
    char *public_url;
    long seed;
};

#define KEY(n, type, field, def, flags, min, max)                                                  \
    {                                                                                              \
        n, type, offsetof(struct marketsim_cfg, field), def, flags, min, max                       \
    }

/* clang-format off */
static const struct tf_cfg_key cfg_keys[] = { /* alphabetical */
    KEY("TICKFLOW_HTTP_ADDR",            TF_CFG_STR, addr,       "0.0.0.0", 0,             0, 0),
    KEY("TICKFLOW_HTTP_PORT",            TF_CFG_INT, port,       "8090",    0,         0, 65535),
    KEY("TICKFLOW_LOG_LEVEL",            TF_CFG_STR, log_level,  "info",    0,             0, 0),
    KEY("TICKFLOW_MARKETSIM_API_KEY",    TF_CFG_STR, api_key,    NULL,      TF_CFG_SECRET, 0, 0),
    KEY("TICKFLOW_MARKETSIM_PUBLIC_URL", TF_CFG_STR, public_url, NULL,      0,             0, 0),
    KEY("TICKFLOW_MARKETSIM_SEED",       TF_CFG_INT, seed,       "42",      0,      0, LONG_MAX),
};
/* clang-format on */

static uint64_t fnv1a_step(uint64_t h, const char *s)
{
    for (; s && *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/*
 * Like Polygon's, a request id is new for every answer, so a repeated
 * request gets other bytes (the bars stay the same).
 */
void marketsim_request_id(struct tf_http_req *req, char *out, size_t outlen)
{
    static atomic_ullong served;
    uint64_t h = fnv1a_step(0xcbf29ce484222325ULL, tf_http_logctx(req)->req);
    uint64_t hi, lo;

    h = fnv1a_step(h, tf_http_path(req));
    h ^= mix64(atomic_fetch_add(&served, 1) + 1);
    hi = mix64(h);
    lo = mix64(hi ^ h);
    snprintf(out, outlen, "%016llx%016llx", (unsigned long long)hi, (unsigned long long)lo);
}

enum tf_rc marketsim_json_str(struct tf_buf *buf, const char *s)
{
    enum tf_rc rc = tf_buf_puts(buf, "\"");

    for (; rc == TF_OK && *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\')
            rc = tf_buf_printf(buf, "\\%c", c);
        else if (c < 0x20)
            rc = tf_buf_printf(buf, "\\u%04x", c);
        else
            rc = tf_buf_append(buf, s, 1);
    }
    if (rc == TF_OK)
        rc = tf_buf_puts(buf, "\"");
    return rc;
}

void marketsim_reply_status(struct tf_http_req *req, int status, const char *rid, const char *st,
                            const char *field, const char *msg)
{
    struct tf_buf buf;
    enum tf_rc rc;
    size_t len;

    tf_buf_init(&buf, 64 * 1024);
    rc = tf_buf_printf(&buf, "{\"status\":\"%s\",\"request_id\":\"%s\",\"%s\":", st, rid, field);
    if (rc == TF_OK)
        rc = marketsim_json_str(&buf, msg);
    if (rc == TF_OK)
        rc = tf_buf_puts(&buf, "}");
    if (status >= 500)
        tf_log_error(tf_http_logctx(req), "reply %d: %s", status, msg);
    else
        tf_log_info(tf_http_logctx(req), "reply %d: %s", status, msg);
    if (rc != TF_OK) {
        tf_buf_cleanup(&buf);
        tf_http_reply_take(req, 500, "application/json", NULL, 0);
        return;
    }
    len = buf.len;
    tf_http_reply_take(req, status, "application/json", tf_buf_take(&buf), len);
}

static void reply_ok(struct tf_http_req *req)
{
    static const char body[] = "{\"status\":\"ok\"}";
    char *copy = strdup(body);

    tf_http_reply_take(req, 200, "application/json", copy, copy ? sizeof(body) - 1 : 0);
}

static void handle(struct tf_http_req *req, void *ud)
{
    struct marketsim_app *app = ud;
    const char *path = tf_http_path(req);
    const char *method = tf_http_method(req);
    int is_get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    char caps[5][128];
    char rid[33];

    marketsim_request_id(req, rid, sizeof(rid));
    if (strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0) {
        if (is_get) {
            reply_ok(req);
            return;
        }
    } else if (tf_http_match(path, AGGS_PATTERN, caps, 5)) {
        if (is_get) {
            marketsim_handle_aggs(req, app, caps, rid);
            return;
        }
    } else {
        marketsim_reply_status(req, 404, rid, "NOT_FOUND", "message", "Not found");
        return;
    }
    tf_http_set_header(req, "Allow", "GET, HEAD");
    marketsim_reply_status(req, 405, rid, "ERROR", "error", "Method not allowed");
}

static void ignore_sigpipe(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPIPE, &sa, NULL);
}

/* Strips trailing slashes so that next_url is "<base>/v2/...". */
static void trim_slashes(char *s)
{
    size_t n = s ? strlen(s) : 0;

    while (n > 0 && s[n - 1] == '/')
        s[--n] = '\0';
}

int main(void)
{
    struct marketsim_cfg cfg;
    struct marketsim_app app;
    struct tf_http_server *srv = NULL; /* owned: stopped at out */
    struct tf_http_opts opts;
    enum tf_log_level level = TF_LOG_INFO;
    sigset_t stop;
    char err[2048];
    int ret = 1;
    int sig = 0;

    memset(&cfg, 0, sizeof(cfg));
    memset(&app, 0, sizeof(app));
    tf_log_init("marketsim", TF_LOG_INFO);
    if (tf_cfg_load(cfg_keys, TF_ARRAY_LEN(cfg_keys), tf_cfg_getenv, NULL, &cfg, err,
                    sizeof(err)) != TF_OK) {
        tf_log_error(NULL, "bad configuration: %s", err);
        ret = 2;
        goto out;
    }
    if (tf_log_level_parse(cfg.log_level, &level) != TF_OK) {
        tf_log_error(NULL, "bad configuration: TICKFLOW_LOG_LEVEL: expected debug, info, warn "
                           "or error");
        ret = 2;
        goto out;
    }
    tf_log_init("marketsim", level);
    tf_cfg_log(cfg_keys, TF_ARRAY_LEN(cfg_keys), &cfg);
    trim_slashes(cfg.public_url);
    app.seed = (uint64_t)cfg.seed;
    app.api_key = cfg.api_key;
    app.public_url = cfg.public_url && *cfg.public_url ? cfg.public_url : NULL;
    atomic_init(&app.port, (int)cfg.port);

    /* Block the stop signals before the daemon's threads exist, so that
     * only sigwait() below ever sees them. */
    ignore_sigpipe();
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    memset(&opts, 0, sizeof(opts));
    opts.addr = cfg.addr;
    opts.port = cfg.port;
    opts.handler = handle;
    opts.ud = &app;
    if (tf_http_start(&opts, &srv, err, sizeof(err)) != TF_OK) {
        tf_log_error(NULL, "http: %s", err);
        goto out;
    }
    atomic_store(&app.port, tf_http_port(srv));
    tf_log_info(NULL, "listening port=%d", atomic_load(&app.port));

    if (sigwait(&stop, &sig) != 0) {
        tf_log_error(NULL, "sigwait failed");
        goto out;
    }
    tf_log_info(NULL, "stopping on %s", sig == SIGINT ? "SIGINT" : "SIGTERM");
    ret = 0;
out:
    tf_http_stop(srv);
    tf_cfg_cleanup(cfg_keys, TF_ARRAY_LEN(cfg_keys), &cfg);
    if (ret == 0)
        tf_log_info(NULL, "stopped");
    return ret;
}
