/*
 * pages.c - bronze pages into bars, and the rules a bar must pass to reach
 * silver.
 *
 * Each provider's pages have a parser of their own (polygon_page,
 * twelvedata_page) that turns every item of a page into a struct bar,
 * times in UTC epoch milliseconds; an item it cannot read is kept, already
 * rejected, so that the quarantine sees every item of every page. The rules
 * that follow (transform_validate) are the same for every provider.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tf/jscan.h"
#include "tf/json.h"
#include "tf/time.h"
#include "tf/tz.h"
#include "transform.h"

#define MS_MINUTE 60000LL
#define MS_HOUR   3600000LL
#define MS_DAY    86400000LL
/* Times beyond this many ms from the epoch (about 285,000 years) are not times. */
#define MS_LIMIT 9.0e15

/* A required number: 1 when present and finite. */
static int get_num(const cJSON *obj, const char *key, double *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
        return 0;
    *out = it->valuedouble;
    return 1;
}

/* An optional number: 1 present and finite, 0 absent or null, -1 anything else. */
static int opt_num(const cJSON *obj, const char *key, double *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

    if (!it || cJSON_IsNull(it))
        return 0;
    return get_num(obj, key, out) ? 1 : -1;
}

/* Room for count bars in pg. */
static enum tf_rc page_alloc(struct page *pg, int count, char *err, size_t errlen)
{
    if (count <= 0)
        return TF_OK;
    pg->bars = calloc((size_t)count, sizeof(*pg->bars));
    if (!pg->bars) {
        snprintf(err, errlen, "out of memory for a page of %d items", count);
        return TF_ERR_NOMEM;
    }
    return TF_OK;
}

/* Reads one Polygon result into b (b->rule set when it cannot). */
static void polygon_bar(const cJSON *item, struct bar *b)
{
    double t = 0, n = 0;
    int vw, nn;

    if (get_num(item, "t", &t) && fabs(t) < MS_LIMIT) {
        b->t = (long long)t;
        b->local = b->t;
        b->has_t = 1;
    }
    if (!get_num(item, "o", &b->o) || !get_num(item, "h", &b->h) || !get_num(item, "l", &b->l) ||
        !get_num(item, "c", &b->c) || !get_num(item, "v", &b->v)) {
        b->rule = RULE_NOT_FINITE;
        return;
    }
    b->has_v = 1;
    vw = opt_num(item, "vw", &b->vw);
    nn = opt_num(item, "n", &n);
    if (vw < 0 || nn < 0 || fabs(n) > MS_LIMIT) {
        b->rule = RULE_NOT_FINITE;
        return;
    }
    b->has_vw = vw;
    b->has_n = nn;
    b->n = (long long)n;
    if (!b->has_t)
        b->rule = get_num(item, "t", &t) ? RULE_TS_INVALID : RULE_NOT_FINITE;
}

/* A Polygon aggregates page: {"ticker", "results": [{"t" (ms), "o", ..., "v", "vw"?, "n"?}]}. */
static enum tf_rc polygon_page(const char *ticker, const cJSON *root, struct page *pg, char *err,
                               size_t errlen)
{
    const char *echoed = tf_json_str(root, "ticker");
    const cJSON *results = cJSON_GetObjectItemCaseSensitive(root, "results");
    const cJSON *item;
    enum tf_rc rc;

    snprintf(pg->ticker, sizeof(pg->ticker), "%s", echoed ? echoed : ticker);
    pg->day_ny = 1;
    rc = page_alloc(pg, cJSON_IsArray(results) ? cJSON_GetArraySize(results) : 0, err, errlen);
    if (rc != TF_OK || !pg->bars)
        return rc;
    cJSON_ArrayForEach(item, results)
    {
        struct bar *b = &pg->bars[pg->n];

        b->item = (int)pg->n;
        b->raw = item;
        polygon_bar(item, b);
        pg->n++;
    }
    return TF_OK;
}

/*
 * A Twelve Data number: a JSON string in decimal notation (what the vendor
 * sends) or a JSON number; finite. strtod() reads it under the C locale
 * (decimal point '.'): the services never call setlocale(). The character
 * check keeps out what strtod() would also take: blanks, hex, inf and nan.
 */
static int td_num(const cJSON *obj, const char *key, double *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    const char *s;
    char *end = NULL;
    double v;

    if (cJSON_IsNumber(it)) {
        if (!isfinite(it->valuedouble))
            return 0;
        *out = it->valuedouble;
        return 1;
    }
    if (!cJSON_IsString(it))
        return 0;
    s = it->valuestring;
    if (!*s || strspn(s, "0123456789+-.eE") != strlen(s))
        return 0;
    v = strtod(s, &end);
    if (end == s || *end || !isfinite(v))
        return 0;
    *out = v;
    return 1;
}

/*
 * Reads one Twelve Data value: datetime ("YYYY-MM-DD HH:MM:SS", or
 * "YYYY-MM-DD" for daily bars) is wall-clock time in tz; a time that never
 * happens in tz (a DST gap) is ts_invalid. A time that happens twice (the
 * hour after a fall-back) is taken as the first; volume is optional (absent
 * or null: NULL in silver); Twelve Data has no VWAP or trade count.
 */
static void twelvedata_bar(const cJSON *item, const struct tf_tz *tz, struct bar *b)
{
    const char *dt = tf_json_str(item, "datetime");
    const cJSON *volume = cJSON_GetObjectItemCaseSensitive(item, "volume");
    size_t len = dt ? strlen(dt) : 0;
    int64_t local = 0, utc = 0;

    if ((len == 10 || (len == 19 && dt[10] == ' ')) && tf_time_parse(dt, &local) == TF_OK &&
        tf_tz_local_to_utc(tz, local, &utc) == TF_OK) {
        b->t = (long long)utc * 1000;
        b->local = (long long)local * 1000;
        b->has_t = 1;
    }
    if (!td_num(item, "open", &b->o) || !td_num(item, "high", &b->h) ||
        !td_num(item, "low", &b->l) || !td_num(item, "close", &b->c)) {
        b->rule = RULE_NOT_FINITE;
        return;
    }
    if (volume && !cJSON_IsNull(volume)) {
        if (!td_num(item, "volume", &b->v)) {
            b->rule = RULE_NOT_FINITE;
            return;
        }
        b->has_v = 1;
    }
    if (!b->has_t)
        b->rule = RULE_TS_INVALID;
}

/*
 * A Twelve Data time_series page: {"meta": {"symbol", "exchange_timezone"?},
 * "values": [{"datetime", "open", ..., "volume"?}], "status": "ok"}, in any
 * order (newest first by default). The datetimes are in
 * meta.exchange_timezone, UTC when it is absent (forex, crypto). The
 * vendor's "no data" error is an empty page; any other error fails the run.
 */
static enum tf_rc twelvedata_page(const char *ticker, const cJSON *root, struct page *pg, char *err,
                                  size_t errlen)
{
    const char *status = tf_json_str(root, "status");
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "meta");
    const cJSON *values = cJSON_GetObjectItemCaseSensitive(root, "values");
    const char *symbol = tf_json_str(meta, "symbol");
    const char *zone = tf_json_str(meta, "exchange_timezone");
    const struct tf_tz *tz = NULL;
    const cJSON *item;
    enum tf_rc rc;

    snprintf(pg->ticker, sizeof(pg->ticker), "%s", ticker);
    if (status && strcmp(status, "error") == 0) {
        const char *msg = tf_json_str(root, "message");

        if (tf_json_long(root, "code", 0) == 400 && msg &&
            strncmp(msg, "No data is available", 20) == 0)
            return TF_OK;
        snprintf(err, errlen, "bronze page for %s holds Twelve Data error %ld: %.200s", ticker,
                 tf_json_long(root, "code", 0), msg ? msg : "no message");
        return TF_ERR_INVALID;
    }
    if (!cJSON_IsArray(values)) {
        snprintf(err, errlen, "bronze page for %s has no values list", ticker);
        return TF_ERR_INVALID;
    }
    /* "SBIN" is how Twelve Data echoes "SBIN:NSE": the same ticker. */
    if (symbol) {
        size_t n = strlen(symbol);
        int same = strcasecmp(symbol, ticker) == 0 ||
                   (n > 0 && strncasecmp(symbol, ticker, n) == 0 && ticker[n] == ':');
        if (!same)
            snprintf(pg->ticker, sizeof(pg->ticker), "%s", symbol);
    }
    rc = tf_tz_get(zone ? zone : "UTC", &tz);
    if (rc != TF_OK) {
        snprintf(err, errlen, "bronze page for %s: exchange_timezone %.64s: %s", ticker,
                 zone ? zone : "UTC", tf_rc_str(rc));
        return rc;
    }
    rc = page_alloc(pg, cJSON_GetArraySize(values), err, errlen);
    if (rc != TF_OK || !pg->bars)
        return rc;
    cJSON_ArrayForEach(item, values)
    {
        struct bar *b = &pg->bars[pg->n];

        b->item = (int)pg->n;
        b->raw = item;
        twelvedata_bar(item, tz, b);
        pg->n++;
    }
    return TF_OK;
}

/* ---- Polygon pages read without a tree ---- */

/* A place in a page known to be well-formed JSON (tf_jscan_object said so). */
struct cursor {
    const char *p, *end;
};

static void skip_ws(struct cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

/* Steps over one value (any kind); the text is well-formed, so brackets balance. */
static void skip_value(struct cursor *c)
{
    int depth = 0;

    do {
        char ch = *c->p;

        if (ch == '"') {
            for (c->p++; c->p < c->end && *c->p != '"'; c->p++) {
                if (*c->p == '\\')
                    c->p++;
            }
            c->p++;
        } else if (ch == '{' || ch == '[') {
            depth++;
            c->p++;
        } else if (ch == '}' || ch == ']') {
            depth--;
            c->p++;
        } else if (ch == ',' || ch == ':' || ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') {
            c->p++;
        } else {
            while (c->p < c->end && !strchr(",:]} \t\n\r", *c->p))
                c->p++;
        }
    } while (depth > 0 && c->p < c->end);
}

/* Exact powers of ten as doubles (10^22 is the last one that is). */
static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/*
 * Reads the number at c as strtod() would, as cJSON reads it: exactly,
 * either by one correctly rounded operation on an integer below 2^53 and
 * an exact power of ten, or by strtod() itself. 0 when it is not a finite
 * number cJSON would read the same way (the page then takes the full parse).
 */
static int read_number(struct cursor *c, double *out)
{
    const char *start = c->p;
    unsigned long long m = 0;
    int digits = 0, frac = 0, exp = 0, neg = 0, eneg = 0;
    char buf[64];
    size_t len;

    if (c->p < c->end && *c->p == '-') {
        neg = 1;
        c->p++;
    }
    for (; c->p < c->end && *c->p >= '0' && *c->p <= '9'; c->p++, digits++)
        m = m * 10 + (unsigned)(*c->p - '0');
    if (c->p < c->end && *c->p == '.') {
        for (c->p++; c->p < c->end && *c->p >= '0' && *c->p <= '9'; c->p++, digits++, frac++)
            m = m * 10 + (unsigned)(*c->p - '0');
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
            eneg = *c->p++ == '-';
        for (; c->p < c->end && *c->p >= '0' && *c->p <= '9' && exp < 10000; c->p++)
            exp = exp * 10 + (*c->p - '0');
    }
    len = (size_t)(c->p - start);
    if (digits == 0 || len >= sizeof(buf) || (c->p < c->end && !strchr(",]} \t\n\r", *c->p)))
        return 0;
    exp = (eneg ? -exp : exp) - frac;
    if (digits <= 15 && exp >= -22 && exp <= 22) {
        double v = (double)m; /* below 10^15: exact */
        v = exp < 0 ? v / pow10_exact[-exp] : v * pow10_exact[exp];
        *out = neg ? -v : v;
        return 1;
    }
    memcpy(buf, start, len);
    buf[len] = '\0';
    *out = strtod(buf, NULL);
    return isfinite(*out);
}

/* The bar fields of a Polygon result, by key. */
enum { F_T, F_O, F_H, F_L, F_C, F_V, F_VW, F_N, F_COUNT };

static int field_of(const char *key, size_t n)
{
    static const char *const names[F_COUNT] = {"t", "o", "h", "l", "c", "v", "vw", "n"};

    for (int i = 0; i < F_COUNT; i++) {
        if (strlen(names[i]) == n && memcmp(names[i], key, n) == 0)
            return i;
    }
    return -1;
}

/* One result object at c into b; 0 when it is not a plain, complete, readable bar. */
static int fast_bar(struct cursor *c, struct bar *b)
{
    double v[F_COUNT];
    unsigned seen = 0, null = 0;

    if (*c->p != '{')
        return 0;
    c->p++;
    for (;;) {
        const char *key;
        int f;

        skip_ws(c);
        if (*c->p == '}')
            break;
        if (*c->p == ',') {
            c->p++;
            skip_ws(c);
        }
        key = ++c->p; /* past the opening quote */
        while (c->p < c->end && *c->p != '"' && *c->p != '\\')
            c->p++;
        if (c->p >= c->end || *c->p == '\\')
            return 0;
        f = field_of(key, (size_t)(c->p - key));
        c->p++;
        skip_ws(c);
        c->p++; /* ':' */
        skip_ws(c);
        if (f < 0) {
            skip_value(c);
            continue;
        }
        if (seen & (1u << f))
            return 0; /* a repeated key: cJSON's first-wins is the full parse's business */
        seen |= 1u << f;
        if ((f == F_VW || f == F_N) && c->end - c->p >= 4 && memcmp(c->p, "null", 4) == 0) {
            null |= 1u << f;
            c->p += 4;
            continue;
        }
        if (!read_number(c, &v[f]))
            return 0;
    }
    c->p++;
    /* t, o, h, l, c and v are required; vw and n may be missing or null. */
    if ((seen & 0x3f) != 0x3f || fabs(v[F_T]) >= MS_LIMIT ||
        ((seen & ~null & (1u << F_N)) && fabs(v[F_N]) > MS_LIMIT))
        return 0;
    b->t = (long long)v[F_T];
    b->local = b->t;
    b->has_t = 1;
    b->o = v[F_O];
    b->h = v[F_H];
    b->l = v[F_L];
    b->c = v[F_C];
    b->v = v[F_V];
    b->has_v = 1;
    b->has_vw = (seen & ~null & (1u << F_VW)) != 0;
    b->vw = b->has_vw ? v[F_VW] : 0;
    b->has_n = (seen & ~null & (1u << F_N)) != 0;
    b->n = b->has_n ? (long long)v[F_N] : 0;
    return 1;
}

/*
 * 0 when text holds what jscan takes and cJSON would not, or reads
 * otherwise: a surrogate escape (cJSON refuses a lone one) or a run of
 * number characters as long as cJSON's number buffer (64). Strings count
 * too, which only sends a few more pages to the full parse.
 */
static int plain_text(const char *text, size_t len)
{
    size_t run = 0;

    for (size_t i = 0; i < len; i++) {
        char c = text[i];

        if ((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
            if (++run >= 64)
                return 0;
            continue;
        }
        run = 0;
        if (c == '\\' && i + 3 < len && text[i + 1] == 'u' &&
            (text[i + 2] == 'd' || text[i + 2] == 'D') && strchr("89abAB", text[i + 3]))
            return 0;
    }
    return 1;
}

/*
 * A Polygon page read straight from its text: what polygon_page() makes of
 * the parsed tree, for the pages that are plain (every result an object of
 * finite numbers under unescaped keys, no key twice, nothing cJSON would
 * refuse). Returns 1 with pg
 * filled, bars without their raw item; 0 when the page is not plain (pg
 * left empty), and the full parse decides.
 */
static int polygon_fast(const char *ticker, const char *text, size_t len, struct page *pg)
{
    struct tf_jmember top[24];
    const struct tf_jmember *echoed, *results;
    struct cursor c;
    char name[128];
    int n = tf_jscan_object(text, len, top, (int)TF_ARRAY_LEN(top));
    char err[64];

    if (n < 0 || n > (int)TF_ARRAY_LEN(top) || !plain_text(text, len))
        return 0;
    /* cJSON finds a member by its key unescaped; jscan's keys are as written. */
    for (int i = 0; i < n; i++) {
        if (memchr(top[i].key, '\\', top[i].keylen))
            return 0;
    }
    echoed = tf_jscan_find(top, n, "ticker");
    results = tf_jscan_find(top, n, "results");
    if (echoed && (echoed->type != TF_J_STRING || memchr(echoed->val, '\\', echoed->vallen) ||
                   tf_jscan_string(echoed, name, sizeof(name)) < 0))
        return 0;
    snprintf(pg->ticker, sizeof(pg->ticker), "%s", echoed ? name : ticker);
    pg->day_ny = 1;
    if (!results || results->type != TF_J_ARRAY || results->count == 0)
        return 1;
    if (results->count > INT_MAX || page_alloc(pg, (int)results->count, err, sizeof(err)) != TF_OK)
        return 0;
    c.p = results->val + 1; /* past '[' */
    c.end = results->val + results->vallen;
    for (long i = 0; i < results->count; i++) {
        struct bar *b = &pg->bars[pg->n];

        skip_ws(&c);
        if (*c.p == ',') {
            c.p++;
            skip_ws(&c);
        }
        b->item = (int)pg->n;
        if (!fast_bar(&c, b)) {
            transform_page_cleanup(pg);
            return 0;
        }
        pg->n++;
    }
    return 1;
}

static const struct page_parser parsers[] = {
    {"polygon", polygon_page, polygon_fast},
    {"twelvedata", twelvedata_page, NULL},
};

const struct page_parser *transform_parser(const char *provider)
{
    for (size_t i = 0; i < TF_ARRAY_LEN(parsers); i++) {
        if (strcmp(parsers[i].provider, provider) == 0)
            return &parsers[i];
    }
    return NULL;
}

int transform_bar_size(const char *span, struct bar_size *out)
{
    static const struct {
        const char *name;
        enum span_unit unit;
    } units[] = {{"minute", SPAN_MINUTE}, {"hour", SPAN_HOUR}, {"day", SPAN_DAY}};
    char *end = NULL;
    long mult;

    if (!span || *span < '1' || *span > '9')
        return 0;
    mult = strtol(span, &end, 10);
    if (mult < 1 || mult > 100000)
        return 0;
    for (size_t i = 0; i < TF_ARRAY_LEN(units); i++) {
        if (strcmp(end, units[i].name) == 0) {
            out->mult = mult;
            out->unit = units[i].unit;
            return 1;
        }
    }
    return 0;
}

static long long floor_mod(long long a, long long m)
{
    long long r = a % m;

    return r < 0 ? r + m : r;
}

/*
 * 1 when the bar starts on the job's bar size: minute and hour bars on
 * multiples of their length (on the epoch for Polygon, on the exchange's
 * clock for Twelve Data, the same for zones a whole number of hours from
 * UTC); day bars at midnight: Twelve Data's exchange-local dates, Polygon's
 * at midnight New York time (stocks) or UTC (crypto and forex).
 */
static int aligned(const struct page *pg, const struct bar *b, const struct bar_size *size)
{
    long long len;

    if (size->unit == SPAN_DAY) {
        if (floor_mod(b->local, MS_DAY) == 0)
            return 1;
        if (!pg->day_ny)
            return 0;
        return floor_mod(b->t + (long long)tf_time_us_eastern_offset(b->t / 1000) * 1000, MS_DAY) ==
               0;
    }
    len = (size->unit == SPAN_MINUTE ? MS_MINUTE : MS_HOUR) * size->mult;
    return floor_mod(b->local, len) == 0;
}

static const char *bar_rule(const struct page *pg, const struct bar *b, const struct bar_size *size,
                            long long lo_ms, long long hi_ms)
{
    if (b->o <= 0 || b->h <= 0 || b->l <= 0 || b->c <= 0)
        return RULE_PRICE;
    if (b->has_v && b->v < 0)
        return RULE_VOLUME;
    if (b->h < b->l)
        return RULE_HIGH_LOW;
    if (b->h < (b->o > b->c ? b->o : b->c))
        return RULE_HIGH_OC;
    if (b->l > (b->o < b->c ? b->o : b->c))
        return RULE_LOW_OC;
    if (!aligned(pg, b, size))
        return RULE_MISALIGNED;
    if (b->t < lo_ms || b->t >= hi_ms)
        return RULE_OUTSIDE;
    return NULL;
}

/* Orders good bars by time, then by position in the page. */
static int cmp_time(const void *a, const void *b)
{
    const struct bar *x = *(const struct bar *const *)a;
    const struct bar *y = *(const struct bar *const *)b;

    if (x->t != y->t)
        return (x->t > y->t) - (x->t < y->t);
    return (x->item > y->item) - (x->item < y->item);
}

size_t transform_validate(struct page *pg, int known, const struct bar_size *size, long long lo_ms,
                          long long hi_ms)
{
    struct bar **good = NULL;
    size_t ngood = 0;

    for (size_t i = 0; i < pg->n; i++) {
        struct bar *b = &pg->bars[i];

        if (!known)
            b->rule = RULE_UNKNOWN_TICKER;
        if (!b->rule)
            b->rule = bar_rule(pg, b, size, lo_ms, hi_ms);
        ngood += b->rule == NULL;
    }
    if (ngood < 2)
        return ngood;
    good = malloc(ngood * sizeof(*good));
    if (!good)
        return ngood; /* duplicates then go to the load, where the later page position wins */
    ngood = 0;
    for (size_t i = 0; i < pg->n; i++) {
        if (!pg->bars[i].rule)
            good[ngood++] = &pg->bars[i];
    }
    /* Pages come in time order: sort only when one does not. */
    for (size_t i = 0; i + 1 < ngood; i++) {
        if (good[i]->t >= good[i + 1]->t) {
            qsort(good, ngood, sizeof(*good), cmp_time);
            break;
        }
    }
    for (size_t i = 0; i + 1 < ngood; i++) {
        if (good[i]->t == good[i + 1]->t)
            good[i]->rule = RULE_DUPLICATE; /* a later copy in the page wins */
    }
    {
        size_t left = 0;
        for (size_t i = 0; i < ngood; i++)
            left += good[i]->rule == NULL;
        ngood = left;
    }
    free(good);
    return ngood;
}

void transform_page_cleanup(struct page *pg)
{
    free(pg->bars);
    pg->bars = NULL;
    pg->n = 0;
}
