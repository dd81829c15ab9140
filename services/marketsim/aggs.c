/*
 * aggs.c - Polygon's aggregates endpoint, served from the generator: the
 * request (path, query, cursor, key), Polygon's paging by base bars, the
 * JSON, and the "late" fault's hidden last minutes. README.md (How it
 * works) describes the paging.
 */
#include "marketsim.h"

#include "tf/json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gen.h"
#include "gen_internal.h"
#include "tf/time.h"

#define MS_PER_DAY     86400000LL
#define LIMIT_DEFAULT  5000L
#define LIMIT_MAX      50000L
#define MULTIPLIER_MAX 1000L
#define TICKER_MAX     32
#define CURSOR_MAX     256
#define BODY_MAX       (64u * 1024u * 1024u)

struct aggs_query {
    char ticker[TICKER_MAX + 1];
    long multiplier;
    const char *timespan; /* "minute", "hour" or "day" (static) */
    const char *from_s;   /* path segments as sent, echoed in next_url */
    const char *to_s;
    int64_t from_ms; /* inclusive */
    int64_t to_ms;   /* inclusive */
    int adjusted;
    int desc;
    long limit;
    int64_t known_ms; /* minutes from here on are withheld (late fault); else past MS_GEN_MAX_MS */
};

/* The base bars of [from_ms, to_ms] in request order, generated a day at a time. */
struct base_iter {
    uint64_t seed;
    const char *ticker;
    int equity;   /* sessions on weekdays only */
    int day_base; /* base bars are whole-day bars */
    int desc;
    int64_t from_ms;
    int64_t to_ms;
    int64_t known_ms;   /* day bars are built from the minutes before this only */
    int64_t day;        /* next day to load */
    int64_t last_day;   /* last day to load, inclusive */
    struct ms_bar *buf; /* owned: the loaded day's base bars, ascending */
    size_t n;
    size_t pos; /* asc: next index; desc: one past the next index */
};

/* One page: the base bars it used, in request order. */
struct page {
    struct ms_bar *base; /* owned */
    size_t n;
    size_t cap;
    int more;        /* base bars remain past this page */
    int64_t next_ms; /* asc: next page's from; desc: next page's to */
};

static int valid_ticker(const char *s)
{
    size_t n = strlen(s);

    if (n < 1 || n > TICKER_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == ':'))
            return 0;
    }
    return 1;
}

static int all_digits(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return 0;
    }
    return 1;
}

/* A decimal integer within [min, max], nothing else. */
static int parse_long(const char *s, long min, long max, long *out)
{
    char *end = NULL;
    long v;

    if (!s || !all_digits(s) || strlen(s) > 18)
        return 0;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return 0;
    *out = v;
    return 1;
}

/*
 * "YYYY-MM-DD" (a New York date, 1970..2200: from is its midnight, to its
 * last millisecond) or epoch milliseconds (up to 13 digits; bars exist up
 * to MS_GEN_MAX_MS), both inclusive.
 */
static int parse_time(const char *s, int is_to, int64_t *out)
{
    long long v;
    char *end = NULL;

    if (strlen(s) == 10 && s[4] == '-' && s[7] == '-') {
        int64_t sec;
        int64_t days;

        if (tf_time_parse(s, &sec) != TF_OK)
            return 0;
        days = tf_floor_div(sec, 86400);
        *out = is_to ? ms_gen_ny_midnight_ms(days + 1) - 1 : ms_gen_ny_midnight_ms(days);
        return 1;
    }
    if (!all_digits(s) || strlen(s) > 13)
        return 0;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end)
        return 0;
    *out = v;
    return 1;
}

static int parse_sort(const char *s, int *desc)
{
    if (strcmp(s, "asc") == 0)
        *desc = 0;
    else if (strcmp(s, "desc") == 0)
        *desc = 1;
    else
        return 0;
    return 1;
}

static int parse_bool(const char *s, int *out)
{
    if (strcmp(s, "true") == 0)
        *out = 1;
    else if (strcmp(s, "false") == 0)
        *out = 0;
    else
        return 0;
    return 1;
}

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url without padding, as Polygon's cursors are. */
static void b64url_encode(const char *in, char *out, size_t outlen)
{
    size_t n = strlen(in);
    size_t o = 0;

    for (size_t i = 0; i < n && o + 5 < outlen; i += 3) {
        unsigned v = (unsigned char)in[i] << 16;
        size_t chunk = n - i < 3 ? n - i : 3;

        if (chunk > 1)
            v |= (unsigned char)in[i + 1] << 8;
        if (chunk > 2)
            v |= (unsigned char)in[i + 2];
        out[o++] = b64url[(v >> 18) & 63];
        out[o++] = b64url[(v >> 12) & 63];
        if (chunk > 1)
            out[o++] = b64url[(v >> 6) & 63];
        if (chunk > 2)
            out[o++] = b64url[v & 63];
    }
    out[o] = '\0';
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-' || c == '+')
        return 62;
    if (c == '_' || c == '/')
        return 63;
    return -1;
}

/* Decodes base64 or base64url, padded or not. Returns 0 on bad input. */
static int b64_decode(const char *in, char *out, size_t outlen)
{
    unsigned acc = 0;
    int bits = 0;
    size_t o = 0;

    for (; *in && *in != '='; in++) {
        int v = b64_value(*in);

        if (v < 0)
            return 0;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o + 1 >= outlen)
                return 0;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    for (; *in == '='; in++)
        ;
    if (*in)
        return 0;
    out[o] = '\0';
    return 1;
}

/* Applies a cursor ("limit=5000&sort=asc[&adjusted=false]") over the query values. */
static int apply_cursor(const char *cursor, struct aggs_query *q)
{
    char plain[CURSOR_MAX];
    char *p = plain;

    if (strlen(cursor) >= CURSOR_MAX || !b64_decode(cursor, plain, sizeof(plain)))
        return 0;
    while (*p) {
        char *amp = strchr(p, '&');
        char *eq;

        if (amp)
            *amp = '\0';
        eq = strchr(p, '=');
        if (!eq)
            return 0;
        *eq = '\0';
        if (strcmp(p, "limit") == 0) {
            if (!parse_long(eq + 1, 1, LIMIT_MAX, &q->limit))
                return 0;
        } else if (strcmp(p, "sort") == 0) {
            if (!parse_sort(eq + 1, &q->desc))
                return 0;
        } else if (strcmp(p, "adjusted") == 0) {
            if (!parse_bool(eq + 1, &q->adjusted))
                return 0;
        }
        if (!amp)
            break;
        p = amp + 1;
    }
    return 1;
}

/*
 * Checks the path and the query. Returns 0 with a message for a 400, or 1
 * with the query filled in.
 */
static int parse_query(struct tf_http_req *req, char caps[][128], struct aggs_query *q, char *msg,
                       size_t msglen)
{
    static const char *const spans[] = {"minute", "hour", "day"};
    static const char *const unsupported[] = {"second", "week", "month", "quarter", "year"};
    const char *v;

    memset(q, 0, sizeof(*q));
    q->adjusted = 1;
    q->limit = LIMIT_DEFAULT;
    q->known_ms = MS_GEN_MAX_MS + 1;
    if (!valid_ticker(caps[0])) {
        snprintf(msg, msglen,
                 "Invalid ticker '%.40s': use 1 to %d characters of A-Z, 0-9, '.' "
                 "and ':'",
                 caps[0], TICKER_MAX);
        return 0;
    }
    snprintf(q->ticker, sizeof(q->ticker), "%s", caps[0]);
    if (!parse_long(caps[1], 1, MULTIPLIER_MAX, &q->multiplier)) {
        snprintf(msg, msglen, "Invalid multiplier '%.40s': use an integer from 1 to %ld", caps[1],
                 MULTIPLIER_MAX);
        return 0;
    }
    for (size_t i = 0; i < TF_ARRAY_LEN(spans); i++) {
        if (strcmp(caps[2], spans[i]) == 0)
            q->timespan = spans[i];
    }
    if (!q->timespan) {
        int known = 0;

        for (size_t i = 0; i < TF_ARRAY_LEN(unsupported); i++)
            known |= strcmp(caps[2], unsupported[i]) == 0;
        snprintf(msg, msglen, "%s timespan '%.40s': use minute, hour or day",
                 known ? "Unsupported" : "Invalid", caps[2]);
        return 0;
    }
    q->from_s = caps[3];
    q->to_s = caps[4];
    if (!parse_time(q->from_s, 0, &q->from_ms)) {
        snprintf(msg, msglen,
                 "Could not parse the time parameter: 'from'. Use YYYY-MM-DD or "
                 "Unix MS Timestamps");
        return 0;
    }
    if (!parse_time(q->to_s, 1, &q->to_ms)) {
        snprintf(msg, msglen,
                 "Could not parse the time parameter: 'to'. Use YYYY-MM-DD or "
                 "Unix MS Timestamps");
        return 0;
    }
    v = tf_http_query(req, "adjusted");
    if (v && !parse_bool(v, &q->adjusted)) {
        snprintf(msg, msglen, "Invalid adjusted '%.40s': use true or false", v);
        return 0;
    }
    v = tf_http_query(req, "sort");
    if (v && !parse_sort(v, &q->desc)) {
        snprintf(msg, msglen, "Invalid sort '%.40s': use asc or desc", v);
        return 0;
    }
    v = tf_http_query(req, "limit");
    if (v && !parse_long(v, 1, LIMIT_MAX, &q->limit)) {
        snprintf(msg, msglen, "Invalid limit '%.40s': use an integer from 1 to %ld", v, LIMIT_MAX);
        return 0;
    }
    v = tf_http_query(req, "cursor");
    if (v && !apply_cursor(v, q)) {
        snprintf(msg, msglen, "Invalid cursor");
        return 0;
    }
    return 1;
}

/* The key the client sent: ?apiKey= first, then "Authorization: Bearer". */
static const char *presented_key(struct tf_http_req *req)
{
    const char *key = tf_http_query(req, "apiKey");
    const char *auth;

    if (key && *key)
        return key;
    auth = tf_http_header(req, "Authorization");
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0 && auth[7])
        return auth + 7;
    return NULL;
}

int marketsim_polygon_auth(struct marketsim_call *call)
{
    const char *key = presented_key(call->req);

    if (!key) {
        marketsim_reply_status(call, TF_ERR_AUTH, "ERROR", "error", "API Key was not provided");
        return 0;
    }
    if (call->app->api_key && !marketsim_key_matches(call->app->api_key, key)) {
        marketsim_reply_status(call, TF_ERR_AUTH, "ERROR", "error", "Unknown API Key");
        return 0;
    }
    return 1;
}

static void iter_init(struct base_iter *it, uint64_t seed, const struct aggs_query *q)
{
    int64_t first, last;

    memset(it, 0, sizeof(*it));
    it->seed = seed;
    it->ticker = q->ticker;
    it->equity = ms_gen_asset(q->ticker) == MS_ASSET_EQUITY;
    it->day_base = strcmp(q->timespan, "day") == 0;
    it->known_ms = q->known_ms;
    it->desc = q->desc;
    it->from_ms = q->from_ms < MS_GEN_MIN_MS ? MS_GEN_MIN_MS : q->from_ms;
    it->to_ms = q->to_ms > MS_GEN_MAX_MS ? MS_GEN_MAX_MS : q->to_ms;
    if (it->day_base) {
        first = ms_gen_ny_day(it->from_ms);
        last = ms_gen_ny_day(it->to_ms);
    } else { /* a session lies inside one UTC day */
        first = tf_floor_div(it->from_ms, MS_PER_DAY);
        last = tf_floor_div(it->to_ms, MS_PER_DAY);
    }
    it->day = it->desc ? last : first;
    it->last_day = it->desc ? first : last;
}

static void iter_cleanup(struct base_iter *it)
{
    free(it->buf);
    it->buf = NULL;
}

/* Loads the next day that has base bars. Returns 1, 0 at the end, -1 out of memory. */
static int iter_load(struct base_iter *it)
{
    while (it->desc ? it->day >= it->last_day : it->day <= it->last_day) {
        int64_t day = it->day;
        int wd = tf_weekday(day);

        it->day += it->desc ? -1 : 1;
        free(it->buf);
        it->buf = NULL;
        it->n = 0;
        if (it->equity && (wd == 0 || wd == 6))
            continue;
        if (it->day_base) {
            struct ms_bar *mins = NULL;
            int64_t t = ms_gen_ny_midnight_ms(day);
            int64_t end = ms_gen_ny_midnight_ms(day + 1);
            size_t nmin;

            if (t < it->from_ms || t > it->to_ms)
                continue;
            if (end > it->known_ms)
                end = it->known_ms;
            nmin = ms_gen_minute_bars(it->seed, it->ticker, t, end - 1, &mins);
            if (nmin == 0)
                continue;
            it->n = ms_gen_rollup(mins, nmin, 1, "day", &it->buf);
            free(mins);
            if (it->n == 0)
                return -1;
        } else {
            int64_t lo = day * MS_PER_DAY;
            int64_t hi = lo + MS_PER_DAY - 1;

            it->n = ms_gen_minute_bars(it->seed, it->ticker, lo < it->from_ms ? it->from_ms : lo,
                                       hi > it->to_ms ? it->to_ms : hi, &it->buf);
        }
        if (it->n > 0) {
            it->pos = it->desc ? it->n : 0;
            return 1;
        }
    }
    return 0;
}

/* The next base bar in request order. Returns 1, 0 at the end, -1 out of memory. */
static int iter_next(struct base_iter *it, struct ms_bar *out)
{
    for (;;) {
        int r;

        if (!it->desc && it->pos < it->n) {
            *out = it->buf[it->pos++];
            return 1;
        }
        if (it->desc && it->pos > 0) {
            *out = it->buf[--it->pos];
            return 1;
        }
        r = iter_load(it);
        if (r <= 0)
            return r;
    }
}

static int page_push(struct page *pg, const struct ms_bar *b)
{
    if (pg->n == pg->cap) {
        size_t ncap = pg->cap ? pg->cap * 2 : 512;
        struct ms_bar *grown = realloc(pg->base, ncap * sizeof(*grown));

        if (!grown)
            return 0;
        pg->base = grown;
        pg->cap = ncap;
    }
    pg->base[pg->n++] = *b;
    return 1;
}

static int64_t bucket_start(const struct aggs_query *q, int64_t t_ms)
{
    int64_t start = 0, end = 0;

    ms_gen_bucket(t_ms, q->multiplier, q->timespan, &start, &end);
    return start;
}

/*
 * Reads up to q->limit base bars (more only to finish a first bar that is
 * larger than the limit), drops a trailing bar that continues past the page,
 * and says where the next page starts.
 */
static enum tf_rc build_page(const struct aggs_query *q, uint64_t seed, struct page *pg)
{
    enum tf_rc rc = TF_OK;
    struct base_iter it;
    struct ms_bar b;
    int r = 0;

    iter_init(&it, seed, q);
    while (pg->n < (size_t)q->limit) {
        r = iter_next(&it, &b);
        if (r <= 0)
            break;
        if (!page_push(pg, &b)) {
            r = -1;
            break;
        }
    }
    if (r >= 0 && pg->n == (size_t)q->limit)
        r = iter_next(&it, &b); /* peek: is there more, and in the same bucket? */
    if (r > 0) {
        int64_t last = bucket_start(q, pg->base[pg->n - 1].t_ms);

        if (bucket_start(q, b.t_ms) == last) {
            size_t k = pg->n - 1;

            while (k > 0 && bucket_start(q, pg->base[k - 1].t_ms) == last)
                k--;
            if (k > 0) {
                pg->n = k; /* that bar starts the next page */
            } else {       /* one bar larger than the limit: finish it */
                do {
                    if (!page_push(pg, &b)) {
                        r = -1;
                        break;
                    }
                    r = iter_next(&it, &b);
                } while (r > 0 && bucket_start(q, b.t_ms) == last);
            }
        }
    }
    if (r < 0) {
        rc = TF_ERR_NOMEM;
        goto out;
    }
    pg->more = r > 0;
    if (pg->more) {
        int64_t start = 0, end = 0;

        ms_gen_bucket(pg->base[pg->n - 1].t_ms, q->multiplier, q->timespan, &start, &end);
        pg->next_ms = q->desc ? start - 1 : end;
    }
out:
    iter_cleanup(&it);
    return rc;
}

static enum tf_rc put_bar(struct tf_buf *buf, const struct ms_bar *b, int comma)
{
    /* {"v":%.15g,"vw":%.15g,"o":%.15g,"c":%.15g,"h":%.15g,"l":%.15g,"t":%lld,"n":%lld} */
    static const char *const keys[6] = {
        "{\"v\":", ",\"vw\":", ",\"o\":", ",\"c\":", ",\"h\":", ",\"l\":"};
    const double vals[6] = {b->v, b->vw, b->o, b->c, b->h, b->l};
    char line[320];
    size_t len = 0;
    int n;

    if (comma)
        line[len++] = ',';
    for (int i = 0; i < 6; i++) {
        size_t k = strlen(keys[i]);
        memcpy(line + len, keys[i], k);
        len += k;
        len += ms_fmt_g15(line + len, vals[i]);
    }
    n = snprintf(line + len, sizeof(line) - len, ",\"t\":%lld,\"n\":%lld}", (long long)b->t_ms,
                 b->n);
    if (n < 0 || (size_t)n >= sizeof(line) - len)
        return TF_ERR_INVALID;
    return tf_buf_append(buf, line, len + (size_t)n);
}

/* The base of next_url: the configured public URL, else http://<Host>. */
static void public_base(struct tf_http_req *req, struct marketsim_app *app, char *out,
                        size_t outlen)
{
    const char *host = tf_http_header(req, "Host");
    size_t n = host ? strlen(host) : 0;
    int ok = n > 0 && n < 256;

    if (app->public_url) {
        snprintf(out, outlen, "%s", app->public_url);
        return;
    }
    for (size_t i = 0; ok && i < n; i++) {
        char c = host[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '.' || c == '-' || c == ':' || c == '[' || c == ']';
    }
    if (ok)
        snprintf(out, outlen, "http://%s", host);
    else
        snprintf(out, outlen, "http://127.0.0.1:%d", atomic_load(&app->port));
}

static enum tf_rc render(struct tf_buf *buf, const struct aggs_query *q, const char *rid,
                         const struct ms_bar *res, size_t nres, size_t query_count,
                         const char *next_url)
{
    enum tf_rc rc;

    rc = tf_buf_printf(buf,
                       "{\"ticker\":\"%s\",\"queryCount\":%zu,\"resultsCount\":%zu,"
                       "\"adjusted\":%s",
                       q->ticker, query_count, nres, q->adjusted ? "true" : "false");
    if (rc == TF_OK && nres > 0) {
        rc = tf_buf_puts(buf, ",\"results\":[");
        for (size_t i = 0; rc == TF_OK && i < nres; i++)
            rc = put_bar(buf, &res[q->desc ? nres - 1 - i : i], i > 0);
        if (rc == TF_OK)
            rc = tf_buf_puts(buf, "]");
    }
    if (rc == TF_OK)
        rc =
            tf_buf_printf(buf, ",\"status\":\"OK\",\"request_id\":\"%s\",\"count\":%zu", rid, nres);
    if (rc == TF_OK && next_url) {
        rc = tf_buf_puts(buf, ",\"next_url\":");
        if (rc == TF_OK)
            rc = tf_json_append_str(buf, next_url);
    }
    if (rc == TF_OK)
        rc = tf_buf_puts(buf, "}");
    return rc;
}

/*
 * A late fault: the window ends late_minutes before the end of its data
 * (the last bar in it, or the window's end if sooner), and day bars are
 * built from the minutes before that cut only.
 */
static void apply_late(struct aggs_query *q, uint64_t seed, long late_minutes)
{
    int64_t last = 0;
    int64_t cut;

    if (q->from_ms > q->to_ms || !ms_gen_last_minute(seed, q->ticker, q->from_ms, q->to_ms, &last))
        return;
    cut = last + 60000 < q->to_ms + 1 ? last + 60000 : q->to_ms + 1;
    cut -= (int64_t)late_minutes * 60000;
    q->known_ms = cut;
    if (strcmp(q->timespan, "day") != 0 && q->to_ms > cut - 1)
        q->to_ms = cut - 1;
}

void marketsim_handle_aggs(struct marketsim_call *call, char caps[][128])
{
    struct tf_http_req *req = call->req;
    struct marketsim_app *app = call->app;
    struct aggs_query q;
    struct page pg = {0};      /* pg.base owned: freed at out */
    struct ms_bar *res = NULL; /* owned: freed at out */
    char *next_url = NULL;     /* owned: freed at out */
    struct tf_buf buf;         /* owned: cleaned up at out */
    char msg[256];
    size_t nres = 0;
    size_t len;
    enum tf_rc rc = TF_OK;

    tf_buf_init(&buf, BODY_MAX);
    if (!parse_query(req, caps, &q, msg, sizeof(msg))) {
        marketsim_reply_status(call, TF_ERR_INVALID, "ERROR", "error", msg);
        goto out;
    }
    if (call->fault.kind == MARKETSIM_FAULT_LATE)
        apply_late(&q, app->seed, call->fault.late_minutes);
    /* "ZZ..." tickers are unknown to the vendor: 200 and no bars, as Polygon answers. */
    if (strncmp(q.ticker, "ZZ", 2) != 0 && q.from_ms <= q.to_ms) {
        rc = build_page(&q, app->seed, &pg);
        if (rc != TF_OK)
            goto out;
    }
    if (pg.n > 0) {
        if (q.desc) { /* the rollup wants ascending bars */
            for (size_t i = 0; i < pg.n / 2; i++) {
                struct ms_bar tmp = pg.base[i];
                pg.base[i] = pg.base[pg.n - 1 - i];
                pg.base[pg.n - 1 - i] = tmp;
            }
        }
        nres = ms_gen_rollup(pg.base, pg.n, q.multiplier, q.timespan, &res);
        if (nres == 0) {
            rc = TF_ERR_NOMEM;
            goto out;
        }
    }
    if (pg.more) {
        char base[300];
        char plain[96];
        char cursor[140];
        struct tf_buf url;

        public_base(req, app, base, sizeof(base));
        snprintf(plain, sizeof(plain), "limit=%ld&sort=%s%s", q.limit, q.desc ? "desc" : "asc",
                 q.adjusted ? "" : "&adjusted=false");
        b64url_encode(plain, cursor, sizeof(cursor));
        tf_buf_init(&url, 4096);
        if (q.desc)
            rc = tf_buf_printf(&url, "%s/v2/aggs/ticker/%s/range/%ld/%s/%s/%lld?cursor=%s", base,
                               q.ticker, q.multiplier, q.timespan, q.from_s, (long long)pg.next_ms,
                               cursor);
        else
            rc = tf_buf_printf(&url, "%s/v2/aggs/ticker/%s/range/%ld/%s/%lld/%s?cursor=%s", base,
                               q.ticker, q.multiplier, q.timespan, (long long)pg.next_ms, q.to_s,
                               cursor);
        next_url = tf_buf_take(&url);
        if (rc != TF_OK)
            goto out;
    }
    rc = render(&buf, &q, call->rid, res, nres, pg.n, next_url);
    if (rc != TF_OK)
        goto out;
    len = buf.len;
    marketsim_reply(call, TF_OK, "application/json", tf_buf_take(&buf), len);
out:
    if (rc != TF_OK) {
        snprintf(msg, sizeof(msg), "Internal error: %s", tf_rc_str(rc));
        marketsim_reply_status(call, TF_ERR_INTERNAL, "ERROR", "error", msg);
    }
    tf_buf_cleanup(&buf);
    free(next_url);
    free(res);
    free(pg.base);
}
