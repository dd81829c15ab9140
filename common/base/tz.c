/*
 * tz.c - IANA time zones from TZif files (RFC 8536): the checked file
 * reader, the footer's POSIX TZ rule, local-to-UTC conversion, and the
 * cache behind tf_tz_get() (one mutex; zones live until tf_tz_cleanup()).
 * libc's TZ state is never touched.
 */
#include "tf/tz.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tf/time.h"

#define TZ_DEFAULT_DIR "/usr/share/zoneinfo"
#define TZ_FILE_MAX    (256 * 1024) /* tzdata's largest zone is under 8 KiB */
#define TZ_HEADER_LEN  44
#define TZ_TYPES_MAX   256 /* a transition names its type in one byte */
#define TZ_FOOTER_MAX  255
/* RFC 8536 3.2: utoff SHOULD be in -89999..93599 (more than -25 h, less than 26 h). */
#define TZ_UTOFF_MIN (-89999)
#define TZ_UTOFF_MAX 93599
/* The Gregorian calendar repeats every 400 years, which are whole weeks. */
#define TZ_SEC_PER_400Y (INT64_C(146097) * 86400)

/* A footer rule date: Jn (1..365, Feb 29 never counted), n (0..365), Mm.w.d. */
struct tz_rule_date {
    char kind;    /* 'J', 'N' or 'M' */
    int n;        /* J and N: the day; M: the month, 1..12 */
    int week;     /* M: 1..5, 5 meaning the last */
    int wday;     /* M: 0 = Sunday .. 6 */
    int32_t time; /* local time of day of the change, -167 h .. 167 h */
};

/* The footer's POSIX TZ string. Offsets are east positive, unlike POSIX's. */
struct tz_rule {
    int32_t std_off;
    int32_t dst_off;
    int has_dst;
    struct tz_rule_date start; /* to DST, in standard time */
    struct tz_rule_date end;   /* back to standard, in DST */
};

struct tf_tz {
    struct tf_tz *next; /* the cache list */
    char name[TF_TZ_NAME_MAX + 1];
    uint32_t timecnt;
    uint32_t typecnt;
    int64_t *trans;      /* owned: timecnt instants, strictly ascending */
    uint8_t *trans_type; /* owned: timecnt indices into utoff, each < typecnt */
    int32_t utoff[TZ_TYPES_MAX];
    int has_rule; /* the footer is not empty */
    struct tz_rule rule;
};

/* Built in, so UTC works without tzdata; never freed. */
static const struct tf_tz utc_zone = {.name = "UTC", .typecnt = 1};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tf_tz *cache;    /* under cache_lock */
static char tz_root[PATH_MAX]; /* under cache_lock */
static int tz_root_read;       /* under cache_lock */

/* ---- bytes ---------------------------------------------------------------------------------- */

struct cursor {
    const unsigned char *p;
    size_t left;
};

/* Hands out the next n bytes, or returns 0 when fewer are left. */
static int take(struct cursor *c, uint64_t n, const unsigned char **out)
{
    if (n > c->left)
        return 0;
    *out = c->p;
    c->p += n;
    c->left -= (size_t)n;
    return 1;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int32_t be32s(const unsigned char *p)
{
    uint32_t u = be32(p);

    return u <= INT32_MAX ? (int32_t)u : -(int32_t)(~u) - 1;
}

static int64_t be64s(const unsigned char *p)
{
    uint64_t u = (uint64_t)be32(p) << 32 | be32(p + 4);

    return u <= INT64_MAX ? (int64_t)u : -(int64_t)(~u) - 1;
}

/* ---- the POSIX TZ footer -------------------------------------------------------------------- */

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* Reads 1..max_digits decimal digits. */
static int number(const char **p, int max_digits, int *out)
{
    const char *s = *p;
    int v = 0, n = 0;

    while (n < max_digits && is_digit(s[n])) {
        v = v * 10 + (s[n] - '0');
        n++;
    }
    if (n == 0 || is_digit(s[n]))
        return 0;
    *p = s + n;
    *out = v;
    return 1;
}

/* A zone abbreviation: three or more letters, or <[A-Za-z0-9+-]+>. */
static int rule_name(const char **p)
{
    const char *s = *p;
    size_t n = 0;

    if (*s == '<') {
        s++;
        while (is_alpha(s[n]) || is_digit(s[n]) || s[n] == '+' || s[n] == '-')
            n++;
        if (n == 0 || s[n] != '>')
            return 0;
        *p = s + n + 1;
        return 1;
    }
    while (is_alpha(s[n]))
        n++;
    if (n < 3)
        return 0;
    *p = s + n;
    return 1;
}

/* [+-]hh[:mm[:ss]] with hh <= max_h, as signed seconds. */
static int rule_hms(const char **p, int max_h, int32_t *out)
{
    const char *s = *p;
    int sign = 1, h, m = 0, sec = 0;

    if (*s == '+' || *s == '-') {
        sign = *s == '-' ? -1 : 1;
        s++;
    }
    if (!number(&s, 3, &h) || h > max_h)
        return 0;
    if (*s == ':') {
        s++;
        if (!number(&s, 2, &m) || m > 59)
            return 0;
        if (*s == ':') {
            s++;
            if (!number(&s, 2, &sec) || sec > 59)
                return 0;
        }
    }
    *out = sign * (h * 3600 + m * 60 + sec);
    *p = s;
    return 1;
}

/* Jn, n or Mm.w.d, then an optional /time (RFC 8536 3.3.1 allows -167..167 h). */
static int rule_date(const char **p, struct tz_rule_date *d)
{
    const char *s = *p;

    if (*s == 'J') {
        s++;
        d->kind = 'J';
        if (!number(&s, 3, &d->n) || d->n < 1 || d->n > 365)
            return 0;
    } else if (*s == 'M') {
        s++;
        d->kind = 'M';
        if (!number(&s, 2, &d->n) || d->n < 1 || d->n > 12 || *s++ != '.')
            return 0;
        if (!number(&s, 1, &d->week) || d->week < 1 || d->week > 5 || *s++ != '.')
            return 0;
        if (!number(&s, 1, &d->wday) || d->wday > 6)
            return 0;
    } else {
        d->kind = 'N';
        if (!number(&s, 3, &d->n) || d->n > 365)
            return 0;
    }
    d->time = 2 * 3600;
    if (*s == '/') {
        s++;
        if (!rule_hms(&s, 167, &d->time))
            return 0;
    }
    *p = s;
    return 1;
}

/* STDoffset[DST[offset][,start[/time],end[/time]]], the whole string. */
static int rule_parse(const char *s, struct tz_rule *r)
{
    int32_t off;

    memset(r, 0, sizeof(*r));
    if (!rule_name(&s) || !rule_hms(&s, 24, &off))
        return 0;
    r->std_off = -off;
    if (*s == '\0')
        return 1;
    if (!rule_name(&s))
        return 0;
    r->has_dst = 1;
    r->dst_off = r->std_off + 3600;
    if (*s != ',' && *s != '\0') {
        if (!rule_hms(&s, 24, &off))
            return 0;
        r->dst_off = -off;
    }
    if (*s == '\0') {
        /* POSIX leaves the dates to the implementation; glibc and tzcode use the US rule. */
        r->start = (struct tz_rule_date){'M', 3, 2, 0, 2 * 3600};
        r->end = (struct tz_rule_date){'M', 11, 1, 0, 2 * 3600};
        return 1;
    }
    if (*s++ != ',' || !rule_date(&s, &r->start) || *s++ != ',' || !rule_date(&s, &r->end))
        return 0;
    return *s == '\0';
}

static int is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Day number (days since 1970-01-01) of a rule date in year y. */
static int64_t rule_day(const struct tz_rule_date *d, int y)
{
    int64_t jan1 = tf_days_from_civil(y, 1, 1);
    int64_t first, end, day;

    if (d->kind == 'J')
        return jan1 + d->n - 1 + (is_leap(y) && d->n >= 60);
    if (d->kind == 'N')
        return jan1 + d->n;
    first = tf_days_from_civil(y, d->n, 1);
    end = d->n == 12 ? tf_days_from_civil(y + 1, 1, 1) : tf_days_from_civil(y, d->n + 1, 1);
    day = first + (d->wday - tf_weekday(first) + 7) % 7 + 7 * (d->week - 1);
    while (day >= end)
        day -= 7;
    return day;
}

/*
 * The rule's offset at t, and the next instant after t at which it may
 * change. The rule repeats every 400 years, so t is first brought within
 * 400 years of 1970, which keeps every year an int. The offset is that of
 * the latest start or end at or before t among five years around t (a DST
 * start wins a tie with an end, as in all-year DST "EST5EDT,0/0,J365/25").
 */
static void rule_eval(const struct tz_rule *r, int64_t t, int32_t *off, int64_t *next)
{
    int64_t tr = t % TZ_SEC_PER_400Y;
    int64_t best = INT64_MIN, soonest = INT64_MAX;
    int y, m, d;

    *off = r->std_off;
    *next = INT64_MAX;
    if (!r->has_dst)
        return;
    tf_civil_from_days(tf_floor_div(tr + r->std_off, 86400), &y, &m, &d);
    for (int yy = y - 2; yy <= y + 2; yy++) {
        for (int k = 0; k < 2; k++) {
            const struct tz_rule_date *date = k == 0 ? &r->start : &r->end;
            int32_t before = k == 0 ? r->std_off : r->dst_off;
            int64_t at = rule_day(date, yy) * 86400 + date->time - before;

            if (at <= tr && (at > best || (at == best && k == 0))) {
                best = at;
                *off = k == 0 ? r->dst_off : r->std_off;
            }
            if (at > tr && at < soonest)
                soonest = at;
        }
    }
    /* soonest - tr is at most a few years, but t + it may pass INT64_MAX. */
    *next = t > INT64_MAX - (soonest - tr) ? INT64_MAX : t + (soonest - tr);
}

/* ---- the TZif file -------------------------------------------------------------------------- */

struct tzif_counts {
    uint32_t isut, isstd, leap, time, type, chars;
};

static int read_header(struct cursor *c, char *version, struct tzif_counts *n)
{
    const unsigned char *h;

    if (!take(c, TZ_HEADER_LEN, &h) || memcmp(h, "TZif", 4) != 0)
        return 0;
    *version = (char)h[4];
    if (*version != '\0' && (*version < '2' || *version > '9'))
        return 0;
    n->isut = be32(h + 20);
    n->isstd = be32(h + 24);
    n->leap = be32(h + 28);
    n->time = be32(h + 32);
    n->type = be32(h + 36);
    n->chars = be32(h + 40);
    if (n->type == 0 || n->type > TZ_TYPES_MAX || n->chars == 0)
        return 0;
    if ((n->isut != 0 && n->isut != n->type) || (n->isstd != 0 && n->isstd != n->type))
        return 0;
    /* Leap-second ("right/") zones count TAI-like seconds: not supported. */
    return n->leap == 0;
}

/* Bytes in a data block whose times are tsize (4 or 8) bytes; no overflow in 64 bits. */
static uint64_t block_len(const struct tzif_counts *n, unsigned tsize)
{
    return (uint64_t)n->time * (tsize + 1) + (uint64_t)n->type * 6 + n->chars +
           (uint64_t)n->leap * (tsize + 4) + n->isstd + n->isut;
}

/* Reads one data block into tz (which owns what is allocated, even on failure). */
static enum tf_rc read_block(struct cursor *c, const struct tzif_counts *n, unsigned tsize,
                             struct tf_tz *tz)
{
    const unsigned char *times, *idx, *types, *rest;

    if (!take(c, block_len(n, tsize), &times))
        return TF_ERR_INVALID;
    idx = times + (size_t)n->time * tsize;
    types = idx + n->time;
    rest = types + (size_t)n->type * 6; /* abbreviations, then the isstd and isut bytes */

    tz->timecnt = n->time;
    tz->typecnt = n->type;
    tz->trans = malloc(n->time ? n->time * sizeof(*tz->trans) : 1);
    tz->trans_type = malloc(n->time ? n->time : 1);
    if (!tz->trans || !tz->trans_type)
        return TF_ERR_NOMEM;
    for (uint32_t i = 0; i < n->time; i++) {
        tz->trans[i] = tsize == 8 ? be64s(times + 8 * (size_t)i) : be32s(times + 4 * (size_t)i);
        tz->trans_type[i] = idx[i];
        if (idx[i] >= n->type || (i > 0 && tz->trans[i] <= tz->trans[i - 1]))
            return TF_ERR_INVALID;
    }
    for (uint32_t i = 0; i < n->type; i++) {
        const unsigned char *tt = types + 6 * (size_t)i;

        tz->utoff[i] = be32s(tt);
        if (tz->utoff[i] < TZ_UTOFF_MIN || tz->utoff[i] > TZ_UTOFF_MAX || tt[4] > 1 ||
            tt[5] >= n->chars)
            return TF_ERR_INVALID;
    }
    for (uint32_t i = 0; i < n->isstd + n->isut; i++) {
        if (rest[n->chars + i] > 1)
            return TF_ERR_INVALID;
    }
    return TF_OK;
}

/* "\n<POSIX TZ string>\n" after the version 2+ data; an empty string means no rule. */
static enum tf_rc read_footer(struct cursor *c, struct tf_tz *tz)
{
    const unsigned char *s, *nl;
    char rule[TZ_FOOTER_MAX + 1];
    size_t len;

    if (c->left < 2 || c->p[0] != '\n')
        return TF_ERR_INVALID;
    s = c->p + 1;
    nl = memchr(s, '\n', c->left - 1);
    if (!nl)
        return TF_ERR_INVALID;
    len = (size_t)(nl - s);
    if (len > TZ_FOOTER_MAX || memchr(s, '\0', len))
        return TF_ERR_INVALID;
    if (len == 0)
        return TF_OK;
    memcpy(rule, s, len);
    rule[len] = '\0';
    if (!rule_parse(rule, &tz->rule))
        return TF_ERR_INVALID;
    tz->has_rule = 1;
    return TF_OK;
}

static enum tf_rc parse_tzif(const unsigned char *data, size_t len, struct tf_tz *tz)
{
    struct cursor c = {data, len};
    struct tzif_counts n1, n2;
    const unsigned char *skip;
    char version, version2;
    enum tf_rc rc;

    if (!read_header(&c, &version, &n1))
        return TF_ERR_INVALID;
    if (version == '\0')
        return read_block(&c, &n1, 4, tz);
    if (!take(&c, block_len(&n1, 4), &skip)) /* the 32-bit data, superseded */
        return TF_ERR_INVALID;
    if (!read_header(&c, &version2, &n2) || version2 != version)
        return TF_ERR_INVALID;
    rc = read_block(&c, &n2, 8, tz);
    if (rc != TF_OK)
        return rc;
    return read_footer(&c, tz);
}

enum tf_rc tf_tz_parse(const void *data, size_t len, struct tf_tz **out)
{
    enum tf_rc rc = TF_OK;
    struct tf_tz *tz = NULL; /* owned: tf_tz_free at out unless handed over */

    *out = NULL;
    tz = calloc(1, sizeof(*tz));
    if (!tz) {
        rc = TF_ERR_NOMEM;
        goto out;
    }
    rc = parse_tzif(data, len, tz);
    if (rc != TF_OK)
        goto out;
    *out = tz;
    tz = NULL;
out:
    tf_tz_free(tz);
    return rc;
}

enum tf_rc tf_tz_load_file(const char *path, struct tf_tz **out)
{
    enum tf_rc rc = TF_OK;
    unsigned char *buf = NULL; /* owned: free at out */
    int fd = -1;               /* owned: close at out */
    struct stat st;
    size_t size, got = 0;

    *out = NULL;
    /* O_NONBLOCK: a FIFO planted in the tree must not hang the caller. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        rc = (errno == ENOENT || errno == ENOTDIR) ? TF_ERR_NOT_FOUND : TF_ERR_IO;
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        rc = TF_ERR_IO;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = TF_ERR_NOT_FOUND;
        goto out;
    }
    if (st.st_size > TZ_FILE_MAX) {
        rc = TF_ERR_INVALID;
        goto out;
    }
    size = (size_t)st.st_size;
    buf = malloc(size ? size : 1);
    if (!buf) {
        rc = TF_ERR_NOMEM;
        goto out;
    }
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = TF_ERR_IO;
            goto out;
        }
        if (r == 0)
            break; /* shrank under us: parse what is there */
        got += (size_t)r;
    }
    rc = tf_tz_parse(buf, got, out);
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}

void tf_tz_free(struct tf_tz *tz)
{
    if (!tz)
        return;
    free(tz->trans);
    free(tz->trans_type);
    free(tz);
}

/* ---- offsets -------------------------------------------------------------------------------- */

/* The offset at t and the next instant after t at which it may change (INT64_MAX: never). */
static void lookup(const struct tf_tz *tz, int64_t t, int32_t *off, int64_t *next)
{
    uint32_t n = tz->timecnt, lo = 0, hi;

    if (n == 0 || t >= tz->trans[n - 1]) {
        if (tz->has_rule) {
            rule_eval(&tz->rule, t, off, next);
            return;
        }
        *off = tz->utoff[n ? tz->trans_type[n - 1] : 0];
        *next = INT64_MAX;
        return;
    }
    if (t < tz->trans[0]) {
        *off = tz->utoff[0];
        *next = tz->trans[0];
        return;
    }
    /* trans[lo] <= t < trans[hi] */
    hi = n - 1;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;

        if (tz->trans[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    *off = tz->utoff[tz->trans_type[lo]];
    *next = tz->trans[hi];
}

int tf_tz_offset(const struct tf_tz *tz, int64_t utc_sec)
{
    int32_t off;
    int64_t next;

    lookup(tz, utc_sec, &off, &next);
    return off;
}

/*
 * An answer u satisfies u + offset(u) == local_sec, and offsets are bounded,
 * so u lies in [local - TZ_UTOFF_MAX, local - TZ_UTOFF_MIN]. Walk the spans
 * of constant offset covering that window in time order; the first span
 * that contains local - its offset gives the earliest answer (an overlap
 * has two, a gap none).
 */
enum tf_rc tf_tz_local_to_utc(const struct tf_tz *tz, int64_t local_sec, int64_t *utc_sec)
{
    int64_t t, hi;

    if (local_sec < INT64_MIN + 86400 * 2 || local_sec > INT64_MAX - 86400 * 2)
        return TF_ERR_INVALID;
    t = local_sec - TZ_UTOFF_MAX;
    hi = local_sec - TZ_UTOFF_MIN;
    for (;;) {
        int32_t off;
        int64_t next, u;

        lookup(tz, t, &off, &next);
        u = local_sec - off; /* >= t: the first span starts at or before the window */
        if (u >= t && u < next) {
            *utc_sec = u;
            return TF_OK;
        }
        if (next > hi)
            return TF_ERR_INVALID;
        t = next;
    }
}

/* ---- the cache ------------------------------------------------------------------------------ */

/* Segments of [A-Za-z0-9_+-] joined by single '/'; '.' is not allowed, so no "." or "..". */
static int valid_name(const char *name)
{
    size_t len, seg = 0;

    if (!name)
        return 0;
    len = strnlen(name, TF_TZ_NAME_MAX + 1);
    if (len == 0 || len > TF_TZ_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];

        if (ch == '/') {
            if (seg == 0)
                return 0;
            seg = 0;
            continue;
        }
        if (!is_alpha(ch) && !is_digit(ch) && ch != '_' && ch != '+' && ch != '-')
            return 0;
        seg++;
    }
    return seg > 0;
}

enum tf_rc tf_tz_get(const char *name, const struct tf_tz **out)
{
    enum tf_rc rc = TF_OK;
    struct tf_tz *tz = NULL; /* owned: tf_tz_free at out unless cached */
    char path[PATH_MAX];
    int n;

    *out = NULL;
    if (!valid_name(name))
        return TF_ERR_INVALID;
    if (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0) {
        *out = &utc_zone;
        return TF_OK;
    }
    pthread_mutex_lock(&cache_lock);
    for (const struct tf_tz *it = cache; it; it = it->next) {
        if (strcmp(it->name, name) == 0) {
            *out = it;
            goto out;
        }
    }
    if (!tz_root_read) {
        const char *env = getenv("TZDIR");

        snprintf(tz_root, sizeof(tz_root), "%s", env && *env ? env : TZ_DEFAULT_DIR);
        tz_root_read = 1;
    }
    n = snprintf(path, sizeof(path), "%s/%s", tz_root, name);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        rc = TF_ERR_INVALID;
        goto out;
    }
    rc = tf_tz_load_file(path, &tz);
    if (rc != TF_OK)
        goto out;
    memcpy(tz->name, name, strlen(name) + 1);
    tz->next = cache;
    cache = tz;
    *out = tz;
    tz = NULL;
out:
    pthread_mutex_unlock(&cache_lock);
    tf_tz_free(tz);
    return rc;
}

void tf_tz_cleanup(void)
{
    pthread_mutex_lock(&cache_lock);
    while (cache) {
        struct tf_tz *tz = cache;

        cache = tz->next;
        tf_tz_free(tz);
    }
    tz_root_read = 0;
    tz_root[0] = '\0';
    pthread_mutex_unlock(&cache_lock);
}
