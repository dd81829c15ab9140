/*
 * main.c - tickflow-marketsim: a stand-in for Polygon's aggregates and
 * Twelve Data's time_series, for development and tests only. Owns the
 * process: settings, the HTTP daemon, routing, the faults drawn for each
 * data request, the /_sim control API (README.md), and the shutdown.
 */
#include "marketsim.h"

#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "tf/cfg.h"
#include "tf/gz.h"
#include "tf/hash.h"
#include "tf/json.h"
#include "tf/log.h"

#define AGGS_PATTERN "/v2/aggs/ticker/*/range/*/*/*/*"
#define CTL_BODY_MAX (64u * 1024u)

#define POLYGON_429                                                                                \
    "You've exceeded the maximum requests per minute, please wait or upgrade your subscription "   \
    "to continue. https://polygon.io/pricing"
#define POLYGON_403                                                                                \
    "You are not entitled to this data. Please upgrade your plan at https://polygon.io/pricing"
#define TD_429                                                                                     \
    "You have run out of API credits for the current minute. 9 API credits were used, with the "   \
    "current limit being 8. Wait for the next minute or consider switching to a higher tier "      \
    "plan at https://twelvedata.com/pricing"
#define TD_403                                                                                     \
    "**symbol** %s is available exclusively with pro or enterprise plans. Consider upgrading "     \
    "your API Key now at https://twelvedata.com/pricing"
#define BODY_500 "500 Internal Server Error\n"
#define BODY_503                                                                                   \
    "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n"      \
    "<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n</body>\r\n</html>\r\n"
#define BODY_MALFORMED "<html>gateway error</html>"

struct marketsim_cfg {
    char *addr;
    long port;
    char *log_level;
    char *api_key;
    char *public_url;
    long seed;
    long gzip;
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
    KEY("TICKFLOW_MARKETSIM_GZIP",       TF_CFG_INT, gzip,       "1",       0,             0, 1),
    KEY("TICKFLOW_MARKETSIM_PUBLIC_URL", TF_CFG_STR, public_url, NULL,      0,             0, 0),
    KEY("TICKFLOW_MARKETSIM_SEED",       TF_CFG_INT, seed,       "42",      0,      0, LONG_MAX),
};
/* clang-format on */

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
    uint64_t h = tf_fnv1a64_str(TF_FNV1A64_INIT, tf_http_logctx(req)->req);
    uint64_t hi, lo;

    h = tf_fnv1a64_str(h, tf_http_path(req));
    h ^= mix64(atomic_fetch_add(&served, 1) + 1);
    hi = mix64(h);
    lo = mix64(hi ^ h);
    snprintf(out, outlen, "%016llx%016llx", (unsigned long long)hi, (unsigned long long)lo);
}

int marketsim_key_matches(const char *want, const char *got)
{
    size_t wl = strlen(want);
    size_t gl = strlen(got);
    unsigned char diff = 0;

    for (size_t i = 0; i < wl; i++)
        diff |= (unsigned char)(want[i] ^ (i < gl ? got[i] : 0));
    return diff == 0 && wl == gl;
}

/* 1 when an Accept-Encoding value takes gzip (listed, and not with q=0). */
static int accepts_gzip(const char *value)
{
    const char *p = value;

    while (p && *p) {
        size_t n, k;

        p += strspn(p, " \t,");
        n = strcspn(p, ",");     /* one coding, e.g. "gzip;q=0.5" */
        k = strcspn(p, " \t;,"); /* its name */
        if (k == 4 && strncasecmp(p, "gzip", 4) == 0) {
            const char *q = p + k + strspn(p + k, " \t;");
            if (q < p + n && strncasecmp(q, "q=", 2) == 0)
                return strtod(q + 2, NULL) > 0;
            return 1;
        }
        p += n;
    }
    return 0;
}

void marketsim_reply(struct marketsim_call *call, enum tf_rc rc, const char *content_type,
                     char *body, size_t len)
{
    /* Like the providers' front ends: gzip for a client that takes it. */
    if (body && call->app->gzip && accepts_gzip(tf_http_header(call->req, "Accept-Encoding"))) {
        struct tf_buf packed;

        tf_buf_init(&packed, len + len / 2 + 1024);
        if (tf_gzip(body, len, &packed) == TF_OK) {
            free(body);
            len = packed.len;
            body = tf_buf_take(&packed);
            tf_http_set_header(call->req, "Content-Encoding", "gzip");
        }
        tf_buf_cleanup(&packed);
        tf_http_set_header(call->req, "Vary", "Accept-Encoding");
    }
    /* Cut after any coding, as a connection that breaks off would. */
    if (call->fault.kind == MARKETSIM_FAULT_TRUNCATE && body) {
        len /= 2;
        body[len] = '\0';
    }
    tf_http_reply_take(call->req, tf_rc_http_status(rc), content_type, body, len);
}

void marketsim_reply_json(struct marketsim_call *call, enum tf_rc outcome, enum tf_rc built,
                          struct tf_buf *buf)
{
    size_t len = buf->len;

    if (built != TF_OK) {
        tf_buf_cleanup(buf);
        tf_http_reply_take(call->req, tf_rc_http_status(TF_ERR_INTERNAL), "application/json", NULL,
                           0);
        return;
    }
    marketsim_reply(call, outcome, "application/json", tf_buf_take(buf), len);
}

void marketsim_reply_status(struct marketsim_call *call, enum tf_rc outcome, const char *st,
                            const char *field, const char *msg)
{
    int status = tf_rc_http_status(outcome);
    struct tf_buf buf;
    enum tf_rc rc;

    tf_buf_init(&buf, 64 * 1024);
    rc = tf_buf_printf(&buf, "{\"status\":\"%s\",\"request_id\":\"%s\",\"%s\":", st, call->rid,
                       field);
    if (rc == TF_OK)
        rc = tf_json_append_str(&buf, msg);
    if (rc == TF_OK)
        rc = tf_buf_puts(&buf, "}");
    if (status >= 500)
        tf_log_error(tf_http_logctx(call->req), "reply %d: %s", status, msg);
    else
        tf_log_info(tf_http_logctx(call->req), "reply %d: %s", status, msg);
    marketsim_reply_json(call, outcome, rc, &buf);
}

/* Answers text (copied) with rc's status (TF_OK: 200). */
static void reply_text(struct tf_http_req *req, enum tf_rc rc, const char *content_type,
                       const char *text)
{
    char *copy = strdup(text);

    tf_http_reply_take(req, tf_rc_http_status(rc), content_type, copy, copy ? strlen(text) : 0);
}

static void reply_ok(struct tf_http_req *req)
{
    reply_text(req, TF_OK, "application/json", "{\"status\":\"ok\"}");
}

/* Answers the buffer's JSON (or a 500 when rc says building it failed). */
static void reply_buf(struct tf_http_req *req, struct tf_buf *buf, enum tf_rc rc)
{
    size_t len = buf->len;

    if (rc != TF_OK) {
        tf_buf_cleanup(buf);
        tf_http_reply_rc(req, rc, "cannot build the answer");
        return;
    }
    tf_http_reply_take(req, TF_HTTP_OK, "application/json", tf_buf_take(buf), len);
}

/* POST, GET and DELETE /_sim/faults. */
static void handle_faults(struct tf_http_req *req, struct marketsim_app *app, const char *method)
{
    struct marketsim_fault_rule rules[MARKETSIM_MAX_RULES];
    struct tf_buf buf;
    char err[256];
    const char *body;
    size_t n = 0;
    size_t len;

    if (strcmp(method, "POST") == 0) {
        body = tf_http_body(req, &len);
        if (marketsim_faults_parse(body, len, rules, &n, err, sizeof(err)) != TF_OK) {
            tf_http_reply_rc_code(req, TF_ERR_INVALID, "invalid", "%s", err);
            return;
        }
        marketsim_faults_replace(app->ctl, rules, n);
        tf_log_info(tf_http_logctx(req), "faults: %zu rules set", n);
    } else if (strcmp(method, "DELETE") == 0) {
        marketsim_faults_replace(app->ctl, NULL, 0);
        tf_log_info(tf_http_logctx(req), "faults: cleared");
    } else if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        tf_http_set_header(req, "Allow", "GET, HEAD, POST, DELETE");
        tf_http_reply_method(req, "GET, POST, DELETE");
        return;
    }
    tf_buf_init(&buf, CTL_BODY_MAX);
    reply_buf(req, &buf, marketsim_faults_render(app->ctl, &buf));
}

/* GET and DELETE /_sim/stats. */
static void handle_stats(struct tf_http_req *req, struct marketsim_app *app, const char *method)
{
    struct tf_buf buf;

    if (strcmp(method, "DELETE") == 0) {
        marketsim_stats_reset(app->ctl);
    } else if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        tf_http_set_header(req, "Allow", "GET, HEAD, DELETE");
        tf_http_reply_method(req, "GET, DELETE");
        return;
    }
    tf_buf_init(&buf, 64u * 1024u * 1024u);
    reply_buf(req, &buf, marketsim_stats_render(app->ctl, &buf));
}

static void sleep_ms(long ms)
{
    struct timespec ts;

    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/*
 * Gives the fault drawn for the call, when it replaces the normal answer.
 * Returns 1 when it answered (or dropped the connection), 0 when the normal
 * answer should follow (no fault, or slow, truncate and late, which shape it).
 */
static int serve_fault(struct marketsim_call *call, const char *ticker)
{
    const struct marketsim_fault *f = &call->fault;
    int polygon = strcmp(call->provider, MARKETSIM_POLYGON) == 0;
    char value[32];
    char msg[256];

    if (f->kind == MARKETSIM_FAULT_NONE)
        return 0;
    tf_log_info(tf_http_logctx(call->req), "fault %s provider=%s ticker=%s",
                marketsim_fault_name(f->kind), call->provider, ticker);
    switch (f->kind) {
    case MARKETSIM_FAULT_429:
        snprintf(value, sizeof(value), "%ld", f->retry_after);
        tf_http_set_header(call->req, "Retry-After", value);
        if (polygon)
            marketsim_reply_status(call, TF_ERR_RATE_LIMITED, "ERROR", "error", POLYGON_429);
        else
            marketsim_td_reply_error(call, TF_ERR_RATE_LIMITED, 429, TD_429);
        return 1;
    case MARKETSIM_FAULT_500:
        reply_text(call->req, TF_ERR_INTERNAL, "text/plain", BODY_500);
        return 1;
    case MARKETSIM_FAULT_503:
        if (f->retry_after_set) {
            snprintf(value, sizeof(value), "%ld", f->retry_after);
            tf_http_set_header(call->req, "Retry-After", value);
        }
        reply_text(call->req, TF_ERR_UNAVAILABLE, "text/html", BODY_503);
        return 1;
    case MARKETSIM_FAULT_MALFORMED:
        reply_text(call->req, TF_OK, "text/html", BODY_MALFORMED);
        return 1;
    case MARKETSIM_FAULT_ERROR200:
        if (polygon) {
            marketsim_reply_status(call, TF_OK, "NOT_AUTHORIZED", "message", POLYGON_403);
        } else {
            snprintf(msg, sizeof(msg), TD_403, ticker);
            marketsim_td_reply_error(call, TF_OK, 403, msg);
        }
        return 1;
    case MARKETSIM_FAULT_RESET:
        tf_http_drop(call->req); /* the connection closes without a byte of answer */
        return 1;
    case MARKETSIM_FAULT_SLOW:
        sleep_ms(f->delay_ms);
        return 0;
    default: /* truncate and late shape the normal answer */
        return 0;
    }
}

static void call_init(struct marketsim_call *call, struct tf_http_req *req,
                      struct marketsim_app *app, const char *provider)
{
    memset(call, 0, sizeof(*call));
    call->req = req;
    call->app = app;
    call->provider = provider;
    marketsim_request_id(req, call->rid, sizeof(call->rid));
}

/* A Polygon or Twelve Data request: counted, checked for its key, faulted, served. */
static void handle_data(struct tf_http_req *req, struct marketsim_app *app, const char *provider,
                        char caps[][128])
{
    int polygon = strcmp(provider, MARKETSIM_POLYGON) == 0;
    struct marketsim_call call;
    char ticker[64];

    call_init(&call, req, app, provider);
    if (polygon) {
        snprintf(ticker, sizeof(ticker), "%s", caps[0]);
    } else { /* Twelve Data's symbols are case-insensitive */
        const char *sym = tf_http_query(req, "symbol");
        size_t i = 0;

        for (; sym && sym[i] && i + 1 < sizeof(ticker); i++)
            ticker[i] = (char)toupper((unsigned char)sym[i]);
        ticker[i] = '\0';
    }
    marketsim_stats_count(app->ctl, provider, ticker);
    if (polygon ? !marketsim_polygon_auth(&call) : !marketsim_td_auth(&call))
        return;
    marketsim_faults_take(app->ctl, provider, ticker, &call.fault);
    if (serve_fault(&call, ticker))
        return;
    if (polygon)
        marketsim_handle_aggs(&call, caps);
    else
        marketsim_handle_time_series(&call);
}

static void handle(struct tf_http_req *req, void *ud)
{
    struct marketsim_app *app = ud;
    const char *path = tf_http_path(req);
    const char *method = tf_http_method(req);
    int is_get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    struct marketsim_call call;
    char caps[5][128];

    if (strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0) {
        if (is_get) {
            reply_ok(req);
            return;
        }
    } else if (strcmp(path, "/_sim/faults") == 0) {
        handle_faults(req, app, method);
        return;
    } else if (strcmp(path, "/_sim/stats") == 0) {
        handle_stats(req, app, method);
        return;
    } else if (tf_http_match(path, AGGS_PATTERN, caps, 5)) {
        if (is_get) {
            handle_data(req, app, MARKETSIM_POLYGON, caps);
            return;
        }
    } else if (strcmp(path, "/time_series") == 0) {
        if (is_get) {
            handle_data(req, app, MARKETSIM_TWELVEDATA, caps);
            return;
        }
    } else {
        call_init(&call, req, app, MARKETSIM_POLYGON);
        marketsim_reply_status(&call, TF_ERR_NOT_FOUND, "NOT_FOUND", "message", "Not found");
        return;
    }
    call_init(&call, req, app, MARKETSIM_POLYGON);
    tf_http_set_header(req, "Allow", "GET, HEAD");
    marketsim_reply_status(&call, TF_ERR_METHOD, "ERROR", "error", "Method not allowed");
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
    app.gzip = (int)cfg.gzip;
    app.api_key = cfg.api_key;
    app.public_url = cfg.public_url && *cfg.public_url ? cfg.public_url : NULL;
    atomic_init(&app.port, (int)cfg.port);
    app.ctl = marketsim_ctl_new();
    if (!app.ctl) {
        tf_log_error(NULL, "out of memory");
        goto out;
    }

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
    marketsim_ctl_free(app.ctl);
    tf_cfg_cleanup(cfg_keys, TF_ARRAY_LEN(cfg_keys), &cfg);
    if (ret == 0)
        tf_log_info(NULL, "stopped");
    return ret;
}
