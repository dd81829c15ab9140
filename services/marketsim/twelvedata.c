/*
 * twelvedata.c - Twelve Data's GET /time_series, served from the generator:
 * the key, the parameters and their error bodies (HTTP 200 with
 * {"code","message","status":"error"}, as the vendor does); tdseries.c
 * computes and prints the bars. The choices the vendor's docs leave open
 * are listed in README.md.
 */
#include "marketsim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gen_internal.h"
#include "tdseries.h"
#include "tf/time.h"

#define BODY_MAX (16u * 1024u * 1024u)

#define MSG_401                                                                                    \
    "**apikey** parameter is incorrect or not specified. You can get your free API key "           \
    "instantly following this link: https://twelvedata.com/pricing. If you believe that "          \
    "everything is correct, you can contact us at https://twelvedata.com/contact/customer"
#define MSG_NO_SYMBOL                                                                              \
    "**symbol** or **figi** parameter is missing or invalid. Please provide a valid symbol "       \
    "according to API documentation: https://twelvedata.com/docs#reference-data"
#define MSG_NO_DATA                                                                                \
    "No data is available on the specified dates. Try setting different start/end dates."

void marketsim_td_reply_error(struct marketsim_call *call, enum tf_rc outcome, int code,
                              const char *msg)
{
    struct tf_buf buf;
    enum tf_rc rc;

    tf_buf_init(&buf, 64 * 1024);
    rc = marketsim_td_render_error(&buf, code, msg);
    tf_log_info(tf_http_logctx(call->req), "reply %d code=%d: %s", tf_rc_http_status(outcome), code,
                msg);
    marketsim_reply_json(call, outcome, rc, &buf);
}

int marketsim_td_auth(struct marketsim_call *call)
{
    const char *key = tf_http_query(call->req, "apikey");
    const char *auth;

    if (!key || !*key) {
        auth = tf_http_header(call->req, "Authorization");
        key = auth && strncasecmp(auth, "apikey ", 7) == 0 ? auth + 7 : NULL;
    }
    if (!key || !*key || (call->app->api_key && !marketsim_key_matches(call->app->api_key, key))) {
        marketsim_td_reply_error(call, TF_OK, 401, MSG_401);
        return 0;
    }
    return 1;
}

/* A decimal integer, nothing else. */
static int parse_long(const char *s, long *out)
{
    char *end = NULL;
    long v;

    if (!s || !*s || strlen(s) > 18 || strspn(s, "0123456789") != strlen(s))
        return 0;
    v = strtol(s, &end, 10);
    if (*end)
        return 0;
    *out = v;
    return 1;
}

/*
 * Reads and checks the parameters into *q. Returns 1, or 0 with the error
 * code and message for the answer.
 */
static int parse_request(struct tf_http_req *req, struct marketsim_td_query *q, int *code,
                         char *msg, size_t msglen)
{
    const char *sym = tf_http_query(req, "symbol");
    const char *interval = tf_http_query(req, "interval");
    const char *start = tf_http_query(req, "start_date");
    const char *end = tf_http_query(req, "end_date");
    const char *size = tf_http_query(req, "outputsize");
    const char *order = tf_http_query(req, "order");
    const char *tz = tf_http_query(req, "timezone");
    int64_t now_ms = tf_time_now() * 1000;

    memset(q, 0, sizeof(*q));
    *code = 400;
    switch (marketsim_td_symbol_parse(sym, &q->sym)) {
    case MARKETSIM_TD_SYMBOL_OK:
        break;
    case MARKETSIM_TD_SYMBOL_MISSING:
        snprintf(msg, msglen, "%s", MSG_NO_SYMBOL);
        return 0;
    case MARKETSIM_TD_SYMBOL_BATCH:
        snprintf(msg, msglen,
                 "marketsim answers one **symbol** per request: batch requests (%.60s) are not "
                 "supported",
                 sym);
        return 0;
    default:
        *code = 404;
        snprintf(msg, msglen,
                 "**symbol** %.40s not found. Please specify it correctly according to API "
                 "documentation: https://twelvedata.com/docs#reference-data",
                 sym);
        return 0;
    }
    if (!interval || !*interval) {
        snprintf(msg, msglen,
                 "**interval** parameter is missing or invalid. Supported intervals: %s",
                 MARKETSIM_TD_INTERVALS);
        return 0;
    }
    q->iv = marketsim_td_interval_get(interval);
    if (!q->iv) {
        snprintf(msg, msglen, "Invalid **interval** provided: %.40s. Supported intervals: %s",
                 interval, MARKETSIM_TD_INTERVALS);
        return 0;
    }
    q->zone = marketsim_td_exchange_zone(q->sym.asset);
    if (tz && *tz && strcasecmp(tz, "Exchange") != 0) {
        enum marketsim_td_zone zone;

        if (strcasecmp(tz, "UTC") == 0) {
            zone = MARKETSIM_TD_UTC;
        } else if (strcmp(tz, "America/New_York") == 0) {
            zone = MARKETSIM_TD_NEW_YORK;
        } else {
            snprintf(msg, msglen,
                     "Invalid **timezone** provided: %.60s. marketsim supports Exchange, UTC and "
                     "America/New_York",
                     tz);
            return 0;
        }
        if (q->iv->minutes != 1440) /* 1day bars are always exchange days */
            q->zone = zone;
    }
    q->start_ms = MS_GEN_MIN_MS;
    if (start && !marketsim_td_parse_date(start, q->zone, &q->start_ms)) {
        snprintf(msg, msglen,
                 "Invalid **start_date** provided: %.40s. Use YYYY-MM-DD or YYYY-MM-DD HH:MM:SS",
                 start);
        return 0;
    }
    q->end_ms = now_ms;
    q->known_ms = now_ms;
    if (end) {
        if (!marketsim_td_parse_date(end, q->zone, &q->end_ms)) {
            snprintf(msg, msglen,
                     "Invalid **end_date** provided: %.40s. Use YYYY-MM-DD or YYYY-MM-DD HH:MM:SS",
                     end);
            return 0;
        }
        q->known_ms = INT64_MAX;
    }
    q->outputsize = start || end ? MARKETSIM_TD_OUTPUTSIZE_MAX : MARKETSIM_TD_OUTPUTSIZE_DEFAULT;
    if (size && (!parse_long(size, &q->outputsize) || q->outputsize < 1 ||
                 q->outputsize > MARKETSIM_TD_OUTPUTSIZE_MAX)) {
        snprintf(msg, msglen, "**outputsize** parameter must be between 1 and %ld",
                 MARKETSIM_TD_OUTPUTSIZE_MAX);
        return 0;
    }
    if (order && strcasecmp(order, "asc") == 0) {
        q->asc = 1;
    } else if (order && strcasecmp(order, "desc") != 0) {
        snprintf(msg, msglen, "Invalid **order** provided: %.40s. Supported: asc, desc", order);
        return 0;
    }
    return 1;
}

/*
 * A late fault: minutes from late_minutes before the end of the window's
 * data (its last bar, or the window's end if sooner) are not known yet.
 */
static void apply_late(struct marketsim_td_query *q, uint64_t seed, long late_minutes)
{
    int64_t top = q->end_ms < q->known_ms ? q->end_ms : q->known_ms;
    int64_t last = 0;
    int64_t cut;

    if (top <= q->start_ms || !ms_gen_last_minute(seed, q->sym.canon, q->start_ms, top - 1, &last))
        return;
    cut = last + 60000 < top ? last + 60000 : top;
    q->known_ms = cut - (int64_t)late_minutes * 60000;
}

void marketsim_handle_time_series(struct marketsim_call *call)
{
    struct marketsim_td_query q;
    struct ms_bar *bars = NULL; /* owned: freed at out */
    struct tf_buf buf;          /* owned: cleaned up at out */
    char msg[512];
    size_t n = 0;
    size_t len;
    int code = 400;
    enum tf_rc rc;

    tf_buf_init(&buf, BODY_MAX);
    if (!parse_request(call->req, &q, &code, msg, sizeof(msg))) {
        marketsim_td_reply_error(call, TF_OK, code, msg);
        goto out;
    }
    if (call->fault.kind == MARKETSIM_FAULT_LATE)
        apply_late(&q, call->app->seed, call->fault.late_minutes);
    rc = marketsim_td_series(call->app->seed, &q, &bars, &n);
    if (rc == TF_OK && n == 0) {
        marketsim_td_reply_error(call, TF_OK, 400, MSG_NO_DATA);
        goto out;
    }
    if (rc == TF_OK)
        rc = marketsim_td_render(&buf, &q, bars, n);
    if (rc != TF_OK) {
        snprintf(msg, sizeof(msg), "Internal error: %s", tf_rc_str(rc));
        tf_log_error(tf_http_logctx(call->req), "time_series: %s", msg);
        marketsim_td_reply_error(call, TF_ERR_INTERNAL, 500, msg);
        goto out;
    }
    len = buf.len;
    marketsim_reply(call, TF_OK, "application/json", tf_buf_take(&buf), len);
out:
    tf_buf_cleanup(&buf);
    free(bars);
}
