/*
 * lake.c - silver's copy in the lake: one Parquet file per (dataset, UTC
 * date), rebuilt whole from silver after each commit that touched it, from
 * the bars the run kept when silver still holds them, else read back.
 * docs/ARCHITECTURE.md (Silver's lake files).
 */
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf/json.h"
#include "tf/lake.h"
#include "parquet.h"
#include "tf/pg.h"
#include "tf/time.h"
#include "transform.h"

#define MAX_FILE_BYTES (2048u * 1024 * 1024)
#define POOL_SEARCH    256
#define LAKE_WORK_MEM  "128MB"

/* The rows of one partition, column by column. */
struct cols {
    size_t n, cap;
    const char **ticker, **span, **exec;
    int64_t *ts, *trades;
    double *o, *h, *l, *c, *v, *vw;
    unsigned char *has_v, *has_vw, *has_n;
    unsigned char *stamped; /* read back: the row carries the run's stamp (its key alone) */
    char **pool;            /* owned: every distinct string above */
    size_t npool, pool_cap;
};

static void cols_cleanup(struct cols *k)
{
    for (size_t i = 0; i < k->npool; i++)
        free(k->pool[i]);
    free(k->pool);
    free(k->ticker);
    free(k->span);
    free(k->exec);
    free(k->ts);
    free(k->trades);
    free(k->o);
    free(k->h);
    free(k->l);
    free(k->c);
    free(k->v);
    free(k->vw);
    free(k->has_v);
    free(k->has_vw);
    free(k->has_n);
    free(k->stamped);
    memset(k, 0, sizeof(*k));
}

/* Rows of a new struct cols: small, as most partitions a run touches are. */
#define COLS_FIRST 256

#define GROW(field, cap)                                                                           \
    do {                                                                                           \
        void *p_ = realloc((field), (cap) * sizeof(*(field)));                                     \
        if (!p_)                                                                                   \
            return TF_ERR_NOMEM;                                                                   \
        (field) = p_;                                                                              \
    } while (0)

static enum tf_rc cols_grow(struct cols *k)
{
    size_t cap = k->cap ? k->cap * 2 : COLS_FIRST;

    GROW(k->ticker, cap);
    GROW(k->span, cap);
    GROW(k->exec, cap);
    GROW(k->ts, cap);
    GROW(k->trades, cap);
    GROW(k->o, cap);
    GROW(k->h, cap);
    GROW(k->l, cap);
    GROW(k->c, cap);
    GROW(k->v, cap);
    GROW(k->vw, cap);
    GROW(k->has_v, cap);
    GROW(k->has_vw, cap);
    GROW(k->has_n, cap);
    GROW(k->stamped, cap);
    k->cap = cap;
    return TF_OK;
}

/*
 * One copy of s for the whole partition: the previous row's value, or one
 * of the last strings kept, or a new one.
 */
static const char *intern(struct cols *k, const char *prev, const char *s)
{
    char *copy;

    if (prev && strcmp(prev, s) == 0)
        return prev;
    for (size_t i = k->npool, seen = 0; i > 0 && seen < POOL_SEARCH; i--, seen++) {
        if (strcmp(k->pool[i - 1], s) == 0)
            return k->pool[i - 1];
    }
    if (k->npool == k->pool_cap) {
        size_t cap = k->pool_cap ? k->pool_cap * 2 : 64;
        char **p = realloc(k->pool, cap * sizeof(*p));
        if (!p)
            return NULL;
        k->pool = p;
        k->pool_cap = cap;
    }
    copy = strdup(s);
    if (!copy)
        return NULL;
    k->pool[k->npool++] = copy;
    return copy;
}

/* A text field as a C string in buf (cut to its size). */
static const char *text_of(const struct tf_pg_field *f, char *buf, size_t size)
{
    size_t n = f->len > 0 ? (size_t)f->len : 0;

    if (n >= size)
        n = size - 1;
    memcpy(buf, f->data, n);
    buf[n] = '\0';
    return buf;
}

/* A uuid field in its usual text form. */
static const char *uuid_of(const struct tf_pg_field *f, char buf[37])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    for (int i = 0; i < 16 && f->len == 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            buf[o++] = '-';
        buf[o++] = hex[f->data[i] >> 4];
        buf[o++] = hex[f->data[i] & 15];
    }
    buf[o] = '\0';
    return buf;
}

static double f64_of(const struct tf_pg_field *f, unsigned char *has)
{
    if (has)
        *has = f->len == 8;
    return f->len == 8 ? tf_pg_be_f64(f->data) : 0;
}

/* Appends one row's fields; stamped: the row is the key of a bar the run kept. */
static enum tf_rc cols_add(struct cols *k, const struct tf_pg_field *f, unsigned char stamped)
{
    size_t i = k->n;
    char ticker[128], span[64], exec[37];

    if (i == k->cap && cols_grow(k) != TF_OK)
        return TF_ERR_NOMEM;
    if (f[2].len != 8 || f[0].len < 0 || f[1].len < 0)
        return TF_ERR_INVALID;
    k->ticker[i] = intern(k, i ? k->ticker[i - 1] : NULL, text_of(&f[0], ticker, sizeof(ticker)));
    k->span[i] = intern(k, i ? k->span[i - 1] : NULL, text_of(&f[1], span, sizeof(span)));
    k->exec[i] = intern(k, i ? k->exec[i - 1] : NULL, uuid_of(&f[10], exec));
    if (!k->ticker[i] || !k->span[i] || !k->exec[i])
        return TF_ERR_NOMEM;
    k->ts[i] = (int64_t)tf_pg_be_u64(f[2].data) + TF_PG_EPOCH_US;
    k->o[i] = f64_of(&f[3], NULL);
    k->h[i] = f64_of(&f[4], NULL);
    k->l[i] = f64_of(&f[5], NULL);
    k->c[i] = f64_of(&f[6], NULL);
    k->v[i] = f64_of(&f[7], &k->has_v[i]);
    k->vw[i] = f64_of(&f[8], &k->has_vw[i]);
    k->has_n[i] = f[9].len == 8;
    k->trades[i] = k->has_n[i] ? (int64_t)tf_pg_be_u64(f[9].data) : 0;
    k->stamped[i] = stamped;
    k->n++;
    return TF_OK;
}

/* ---- bars kept from the load ---- */

/* Bytes one kept bar costs (struct cols' arrays). */
#define ROW_BYTES (3 * sizeof(char *) + 8 * sizeof(double) + 4)

/* What this process's runs keep at this moment, against the configured budget. */
static atomic_llong kept_bytes;

/* A distinct string of the kept bars; rows point at s, and a ticker's rank is its byte order. */
struct kept_str {
    uint32_t rank;
    char s[];
};

/* The bars a run loaded into one lake partition, in load order until sorted. */
struct kept_part {
    char provider[32], span[32];
    long long day;   /* days since the epoch */
    int dropped;     /* over budget or out of memory: read back instead */
    long long bytes; /* taken from the budget */
    const char *span_s;
    struct cols k;
};

struct lake_hold {
    struct tf_run *run;
    long long limit; /* the process's budget, bytes */
    char exec[37];
    char fetched[64];
    struct kept_part **parts;
    size_t nparts, parts_cap, last;
    struct kept_str **strs;
    size_t nstrs, strs_cap;
    int ranked;
};

static void part_drop(struct kept_part *p)
{
    cols_cleanup(&p->k);
    atomic_fetch_sub(&kept_bytes, p->bytes);
    p->bytes = 0;
    p->dropped = 1;
}

static void hold_free(void *arg)
{
    struct lake_hold *h = arg;

    if (!h)
        return;
    for (size_t i = 0; i < h->nparts; i++) {
        part_drop(h->parts[i]);
        free(h->parts[i]);
    }
    free(h->parts);
    for (size_t i = 0; i < h->nstrs; i++)
        free(h->strs[i]);
    free(h->strs);
    free(h);
}

void transform_lake_hold(struct tf_run *run, const char *fetched)
{
    long long mb = ((const struct transform_cfg *)tf_svc_stage_cfg(run->svc))->lake_memory_mb;
    struct lake_hold *h;

    if (mb <= 0 || !fetched || strlen(fetched) >= sizeof(h->fetched))
        return;
    h = calloc(1, sizeof(*h));
    if (!h)
        return;
    h->run = run;
    h->limit = mb * 1024 * 1024;
    /* As the read-back prints it: lower case. */
    for (size_t i = 0; i + 1 < sizeof(h->exec) && run->execution_id[i]; i++)
        h->exec[i] = (char)tolower((unsigned char)run->execution_id[i]);
    snprintf(h->fetched, sizeof(h->fetched), "%s", fetched);
    run->carry = h;
    run->carry_free = hold_free;
}

/* The one copy of s the hold keeps (NULL without memory). */
static const char *hold_str(struct lake_hold *h, const char *s)
{
    struct kept_str *e;
    size_t len = strlen(s);

    for (size_t i = h->nstrs; i > 0; i--) {
        if (strcmp(h->strs[i - 1]->s, s) == 0)
            return h->strs[i - 1]->s;
    }
    if (h->nstrs == h->strs_cap) {
        size_t cap = h->strs_cap ? h->strs_cap * 2 : 64;
        struct kept_str **p = realloc(h->strs, cap * sizeof(*p));
        if (!p)
            return NULL;
        h->strs = p;
        h->strs_cap = cap;
    }
    e = malloc(sizeof(*e) + len + 1);
    if (!e)
        return NULL;
    e->rank = 0;
    memcpy(e->s, s, len + 1);
    h->strs[h->nstrs++] = e;
    h->ranked = 0;
    return e->s;
}

static uint32_t rank_of(const char *s)
{
    return ((const struct kept_str *)(const void *)(s - offsetof(struct kept_str, s)))->rank;
}

/* The hold's partition of (provider, span, day), made on first use; NULL without memory. */
static struct kept_part *hold_part(struct lake_hold *h, const char *provider, const char *span,
                                   long long day)
{
    struct kept_part *p;

    if (h->last < h->nparts) {
        p = h->parts[h->last];
        if (p->day == day && strcmp(p->span, span) == 0 && strcmp(p->provider, provider) == 0)
            return p;
    }
    for (size_t i = 0; i < h->nparts; i++) {
        p = h->parts[i];
        if (p->day == day && strcmp(p->span, span) == 0 && strcmp(p->provider, provider) == 0) {
            h->last = i;
            return p;
        }
    }
    if (strlen(provider) >= sizeof(p->provider) || strlen(span) >= sizeof(p->span))
        return NULL;
    if (h->nparts == h->parts_cap) {
        size_t cap = h->parts_cap ? h->parts_cap * 2 : 8;
        struct kept_part **a = realloc(h->parts, cap * sizeof(*a));
        if (!a)
            return NULL;
        h->parts = a;
        h->parts_cap = cap;
    }
    p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    snprintf(p->provider, sizeof(p->provider), "%s", provider);
    snprintf(p->span, sizeof(p->span), "%s", span);
    p->day = day;
    p->span_s = hold_str(h, span);
    if (!p->span_s)
        p->dropped = 1;
    h->last = h->nparts;
    h->parts[h->nparts++] = p;
    return p;
}

/* Adds one bar to p, within the budget; drops p when that cannot be. */
static void part_add(struct lake_hold *h, struct kept_part *p, const char *ticker,
                     const struct bar *b)
{
    struct cols *k = &p->k;
    size_t i = k->n;

    if (p->dropped)
        return;
    if (i == k->cap) {
        long long more = (long long)((k->cap ? k->cap : COLS_FIRST) * ROW_BYTES);

        if (atomic_fetch_add(&kept_bytes, more) + more > h->limit) {
            atomic_fetch_sub(&kept_bytes, more);
            tf_log_info(&h->run->log,
                        "lake rows of %s_%s kept past the memory budget: that partition is read"
                        " back instead",
                        p->provider, p->span);
            part_drop(p);
            return;
        }
        p->bytes += more;
        if (cols_grow(k) != TF_OK) {
            part_drop(p);
            return;
        }
    }
    k->ticker[i] = ticker;
    k->span[i] = p->span_s;
    k->exec[i] = h->exec;
    k->ts[i] = (int64_t)b->t * 1000;
    k->o[i] = b->o;
    k->h[i] = b->h;
    k->l[i] = b->l;
    k->c[i] = b->c;
    k->v[i] = b->has_v ? b->v : 0;
    k->vw[i] = b->has_vw ? b->vw : 0;
    k->trades[i] = b->has_n ? b->n : 0;
    k->has_v[i] = (unsigned char)(b->has_v != 0);
    k->has_vw[i] = (unsigned char)(b->has_vw != 0);
    k->has_n[i] = (unsigned char)(b->has_n != 0);
    k->stamped[i] = 0;
    k->n++;
}

void transform_lake_keep(struct tf_run *run, const char *provider, const char *span,
                         const struct page *pg)
{
    struct lake_hold *h = run->carry;
    const char *ticker;

    if (!h)
        return;
    ticker = hold_str(h, pg->ticker);
    for (size_t i = 0; i < pg->n; i++) {
        const struct bar *b = &pg->bars[i];
        long long day = tf_floor_div(b->t, 86400000);
        struct kept_part *p;

        if (b->rule)
            continue;
        p = hold_part(h, provider, span, day);
        if (!p)
            continue; /* that partition is read back */
        if (!ticker)
            part_drop(p);
        else
            part_add(h, p, ticker, b);
    }
}

static int cmp_str_ptr(const void *a, const void *b)
{
    const struct kept_str *x = *(const struct kept_str *const *)a;
    const struct kept_str *y = *(const struct kept_str *const *)b;

    return strcmp(x->s, y->s);
}

/* A kept row's sort key: ticker rank, time in the day, then load order. */
struct order {
    uint64_t key;
    uint32_t at;
};

static int cmp_order(const void *a, const void *b)
{
    const struct order *x = a, *y = b;

    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->at < y->at ? -1 : x->at > y->at;
}

#define GATHER(field, type)                                                                        \
    do {                                                                                           \
        type *t_ = malloc(m * sizeof(type));                                                       \
        if (!t_)                                                                                   \
            goto nomem;                                                                            \
        for (size_t j_ = 0; j_ < m; j_++)                                                          \
            t_[j_] = k->field[take[j_]];                                                           \
        free(k->field);                                                                            \
        k->field = t_;                                                                             \
    } while (0)

/*
 * Puts p's rows in file order (ticker bytes, then time) and, of bars with
 * the same key, keeps the one loaded last, as silver did. TF_ERR_NOMEM drops p.
 */
/* Ranks the kept strings in byte order, once (before any thread reads the ranks). */
static enum tf_rc hold_rank(struct lake_hold *h)
{
    struct kept_str **by;

    if (h->ranked)
        return TF_OK;
    by = malloc((h->nstrs ? h->nstrs : 1) * sizeof(*by));
    if (!by)
        return TF_ERR_NOMEM;
    memcpy(by, h->strs, h->nstrs * sizeof(*by));
    qsort(by, h->nstrs, sizeof(*by), cmp_str_ptr);
    for (size_t i = 0; i < h->nstrs; i++)
        by[i]->rank = (uint32_t)i;
    free(by);
    h->ranked = 1;
    return TF_OK;
}

static enum tf_rc part_order(struct lake_hold *h, struct kept_part *p)
{
    struct cols *k = &p->k;
    long long day_us = p->day * 86400000000LL;
    struct order *ord = NULL;
    uint32_t *take = NULL;
    size_t m = 0, n = k->n;
    int sorted = 1;

    /* The sort key has 24 bits for a string's rank. */
    if (h->nstrs >= (size_t)1 << 24) {
        part_drop(p);
        return TF_ERR_TOO_LARGE;
    }
    if (hold_rank(h) != TF_OK) {
        part_drop(p);
        return TF_ERR_NOMEM;
    }
    for (size_t i = 1; i < n && sorted; i++) {
        uint32_t a = rank_of(k->ticker[i - 1]), b = rank_of(k->ticker[i]);
        sorted = a < b || (a == b && k->ts[i - 1] < k->ts[i]);
    }
    if (sorted)
        return TF_OK;
    ord = malloc(n * sizeof(*ord));
    take = malloc(n * sizeof(*take));
    if (!ord || !take)
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        ord[i].key = (uint64_t)rank_of(k->ticker[i]) << 40 | (uint64_t)(k->ts[i] - day_us);
        ord[i].at = (uint32_t)i;
    }
    qsort(ord, n, sizeof(*ord), cmp_order);
    for (size_t i = 0; i < n; i++) {
        if (m > 0 && ord[i].key == ord[i - 1].key)
            m--; /* the later load of the same bar wins */
        take[m++] = ord[i].at;
    }
    free(ord);
    ord = NULL;
    GATHER(ticker, const char *);
    GATHER(span, const char *);
    GATHER(exec, const char *);
    GATHER(ts, int64_t);
    GATHER(trades, int64_t);
    GATHER(o, double);
    GATHER(h, double);
    GATHER(l, double);
    GATHER(c, double);
    GATHER(v, double);
    GATHER(vw, double);
    GATHER(has_v, unsigned char);
    GATHER(has_vw, unsigned char);
    GATHER(has_n, unsigned char);
    k->n = m;
    k->cap = m;
    free(take);
    return TF_OK;
nomem:
    free(ord);
    free(take);
    part_drop(p);
    return TF_ERR_NOMEM;
}

/* The kept partition for (provider, span, date), ordered; NULL when it must be read back. */
static struct kept_part *kept_for(struct tf_run *run, const char *provider, const char *span,
                                  const char *date)
{
    struct lake_hold *h = run->carry;
    int64_t t = 0;

    if (!h || tf_time_parse(date, &t) != TF_OK)
        return NULL;
    for (size_t i = 0; i < h->nparts; i++) {
        struct kept_part *p = h->parts[i];
        /* Another writer's partitions are read for their names alone. */
        if (p->day * 86400 == t && strcmp(p->span, span) == 0 &&
            strcmp(p->provider, provider) == 0 && !p->dropped)
            return part_order(h, p) == TF_OK ? p : NULL;
    }
    return NULL;
}

/*
 * Whether silver (inside the caller's transaction) still holds every bar of
 * p: as many rows stamped with the run's execution and fetch time as p has,
 * at the same times. *others: how many rows of the partition are not so
 * stamped. 1 yes, 0 no, -1 on a database error (the run's error set).
 */
static int kept_holds(struct tf_run *run, const struct kept_part *p, const char *date,
                      long long *others)
{
    const struct lake_hold *h = run->carry;
    char day_s[24];
    const char *params[6] = {p->provider, p->span, date, h->exec, h->fetched, day_s};
    long long day_us = p->day * 86400000000LL, sum = 0, n, s;
    PGresult *res;
    int holds;

    /* The sum below stays within 63 bits up to 100 million bars a day. */
    if (p->k.n > 100000000)
        return 0;
    snprintf(day_s, sizeof(day_s), "%lld", day_us);
    for (size_t i = 0; i < p->k.n; i++)
        sum += p->k.ts[i] - day_us;
    /* date_part is float8 (extract's numeric costs twice the time): exact
     * to the microsecond for the next couple of centuries. */
    res = tf_pg_exec(run->conn,
                     "WITH r AS (SELECT execution_id = $4::uuid AND fetched_at = $5::timestamptz"
                     "  AS kept, ts FROM silver.bars WHERE provider = $1 AND timespan = $2"
                     "  AND ts >= $3::timestamptz AND ts < $3::timestamptz + interval '1 day')"
                     " SELECT count(*) FILTER (WHERE kept), coalesce(sum((date_part('epoch', ts)"
                     "  * 1000000)::bigint - $6::bigint) FILTER (WHERE kept), 0),"
                     "  count(*) FILTER (WHERE NOT kept) FROM r",
                     6, params);
    if (!tf_pg_ok(res) || PQntuples(res) != 1) {
        tf_run_fail(run, "checking silver for the lake failed: sqlstate %s", tf_pg_sqlstate(res));
        PQclear(res);
        return -1;
    }
    n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    s = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    *others = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    PQclear(res);
    holds = n == (long long)p->k.n && s == sum;
    if (!holds)
        tf_log_info(&run->log,
                    "silver no longer holds the %zu bars kept for %s_%s %s as loaded (%lld"
                    " stamped rows): reading the partition back",
                    p->k.n, p->provider, p->span, date, n);
    return holds;
}

/* Compares row i of a with row j of b by ticker bytes, then time. */
static int row_cmp(const struct cols *a, size_t i, const struct cols *b, size_t j)
{
    int c = a->ticker[i] == b->ticker[j] ? 0 : strcmp(a->ticker[i], b->ticker[j]);

    if (c)
        return c;
    return a->ts[i] < b->ts[j] ? -1 : a->ts[i] > b->ts[j];
}

/* Appends row i of from to k (k has room). */
static void row_put(struct cols *k, const struct cols *from, size_t i)
{
    size_t j = k->n++;

    k->ticker[j] = from->ticker[i];
    k->span[j] = from->span[i];
    k->exec[j] = from->exec[i];
    k->ts[j] = from->ts[i];
    k->trades[j] = from->trades[i];
    k->o[j] = from->o[i];
    k->h[j] = from->h[i];
    k->l[j] = from->l[i];
    k->c[j] = from->c[i];
    k->v[j] = from->v[i];
    k->vw[j] = from->vw[i];
    k->has_v[j] = from->has_v[i];
    k->has_vw[j] = from->has_vw[i];
    k->has_n[j] = from->has_n[i];
}

/*
 * Merges the kept rows and the partition read back (its stamped rows as
 * keys alone) into out, whose strings stay owned by the two. Every stamped
 * row must be the key of a kept bar and every kept bar must have one: one
 * statement's snapshot then proves silver holds exactly the kept bars.
 * TF_FULL_READ when it does not: the partition is then read whole.
 */
static enum tf_rc merge(const struct cols *kept, const struct cols *back, struct cols *out)
{
    size_t i = 0, j = 0, want = kept->n + back->n;

    while (out->cap < want) {
        if (cols_grow(out) != TF_OK)
            return TF_ERR_NOMEM;
    }
    while (i < kept->n || j < back->n) {
        int c = i == kept->n ? 1 : j == back->n ? -1 : row_cmp(kept, i, back, j);

        if (c < 0 || (c == 0) != (back->stamped[j] != 0))
            return TF_FULL_READ; /* a kept bar gone, or another row in its place */
        if (c == 0) {
            row_put(out, kept, i++);
            j++;
        } else {
            row_put(out, back, j++);
        }
    }
    return TF_OK;
}

/* The lake's reads of one partition; COPY takes no parameters, so settings
 * carry the names, and the day's bounds are constants (%s, %s). */
#define LAKE_WHERE                                                                                 \
    " WHERE provider = current_setting('tickflow.lake_provider')"                                  \
    " AND timespan = current_setting('tickflow.lake_timespan')"                                    \
    " AND ts >= %s AND ts < %s"
#define LAKE_ORDER " ORDER BY ticker COLLATE \"C\", ts) TO STDOUT (FORMAT binary)"
/* The whole partition. */
#define LAKE_COPY_SQL                                                                              \
    "COPY (SELECT ticker, timespan, ts, open, high, low, close, volume, vwap, trades,"             \
    " execution_id FROM silver.bars" LAKE_WHERE LAKE_ORDER
/* The same, with the rows stamped with the run's execution and fetch time as keys alone. */
#define LAKE_COPY_STAMPED_SQL                                                                      \
    "COPY (SELECT ticker, timespan, ts, CASE WHEN NOT k THEN open END,"                            \
    " CASE WHEN NOT k THEN high END, CASE WHEN NOT k THEN low END,"                                \
    " CASE WHEN NOT k THEN close END, CASE WHEN NOT k THEN volume END,"                            \
    " CASE WHEN NOT k THEN vwap END, CASE WHEN NOT k THEN trades END,"                             \
    " CASE WHEN NOT k THEN execution_id END, k"                                                    \
    " FROM (SELECT *, execution_id = current_setting('tickflow.lake_execution')::uuid"             \
    " AND fetched_at = current_setting('tickflow.lake_fetched')::timestamptz AS k"                 \
    " FROM silver.bars" LAKE_WHERE ") b" LAKE_ORDER

/* Where read_rows() puts the rows, and whether they carry a stamp. */
struct read_into {
    struct cols *k;
    int stamped;
};

static enum tf_rc read_row(void *arg, const struct tf_pg_field *f)
{
    const struct read_into *in = arg;

    return cols_add(in->k, f, in->stamped && f[11].len == 1 && f[11].data[0]);
}

/*
 * Reads one partition's rows from silver (inside the caller's transaction)
 * as one binary COPY: no number printed by the server and read back here.
 * With h, the rows stamped with h's execution and fetch time come as keys
 * alone (k->stamped).
 * COPY takes no parameters, so the partition's names travel as
 * transaction-local settings set by a parameterised statement, and its
 * day as constants of our own making.
 */
static enum tf_rc read_rows(struct tf_run *run, const char *provider, const char *span,
                            const char *date, const struct lake_hold *h, struct cols *k)
{
    const char *params[4] = {provider, span, h ? h->exec : "", h ? h->fetched : ""};
    PGresult *res = tf_pg_exec(run->conn,
                               "SELECT set_config('tickflow.lake_provider', $1, true),"
                               " set_config('tickflow.lake_timespan', $2, true),"
                               " set_config('tickflow.lake_execution', $3, true),"
                               " set_config('tickflow.lake_fetched', $4, true)",
                               4, params);
    struct read_into in = {k, h != NULL};
    char state[6] = "", lo[48], hi[48], sql[2048];
    enum tf_rc rc = tf_pg_ok(res) ? TF_OK : TF_ERR_DB;
    int64_t day = 0;

    if (rc != TF_OK)
        snprintf(state, sizeof(state), "%s", tf_pg_sqlstate(res));
    PQclear(res);
    if (rc == TF_OK && tf_time_parse(date, &day) != TF_OK)
        rc = TF_ERR_INVALID;
    tf_pg_time_literal(day, lo);
    tf_pg_time_literal(day + 86400, hi);
    if (h)
        snprintf(sql, sizeof(sql), LAKE_COPY_STAMPED_SQL, lo, hi);
    else
        snprintf(sql, sizeof(sql), LAKE_COPY_SQL, lo, hi);
    if (rc == TF_OK)
        rc = tf_pg_copy_out(run->conn, sql, h ? 12 : 11, read_row, &in, state);
    if (rc == TF_ERR_DB)
        tf_run_fail(run, "reading silver for the lake failed: sqlstate %s", state);
    else if (rc != TF_OK)
        tf_run_fail(run, "reading silver for the lake failed: %s",
                    rc == TF_ERR_NOMEM ? "out of memory" : tf_rc_str(rc));
    return rc;
}

/* Encodes the rows as Parquet into out. */
static enum tf_rc encode(struct tf_run *run, const struct cols *k, struct tf_buf *out)
{
    const struct tf_pq_column cols[] = {
        {"ticker", TF_PQ_STRING, 0, k->ticker, NULL},
        {"timespan", TF_PQ_STRING, 0, k->span, NULL},
        {"ts", TF_PQ_TIMESTAMP_US, 0, k->ts, NULL},
        {"open", TF_PQ_DOUBLE, 0, k->o, NULL},
        {"high", TF_PQ_DOUBLE, 0, k->h, NULL},
        {"low", TF_PQ_DOUBLE, 0, k->l, NULL},
        {"close", TF_PQ_DOUBLE, 0, k->c, NULL},
        {"volume", TF_PQ_DOUBLE, 1, k->v, k->has_v},
        {"vwap", TF_PQ_DOUBLE, 1, k->vw, k->has_vw},
        {"trades", TF_PQ_INT64, 1, k->trades, k->has_n},
        {"execution_id", TF_PQ_STRING, 0, k->exec, NULL},
    };
    char err[256];
    enum tf_rc rc = tf_pq_write(cols, TF_ARRAY_LEN(cols), k->n, 0, out, err, sizeof(err));

    if (rc != TF_OK)
        tf_run_fail(run, "Parquet encoding failed: %s", err);
    return rc;
}

/*
 * The rows of tickflow.lake_pending for a partition, read under its lock:
 * their seqs as an array literal into seqs, and the executions that owe
 * the file other than run's own attempt into execs ([id, attempt] each).
 * Every one was committed with its silver rows before this read, so the
 * file about to be read from silver covers them all. The count of rows,
 * or -1 (run's error set).
 */
static long owed_rows(struct tf_run *run, const char *const part[3], struct tf_buf *seqs,
                      cJSON *execs)
{
    PGresult *res = tf_pg_exec(run->conn,
                               "SELECT seq, execution_id, attempt FROM tickflow.lake_pending"
                               " WHERE provider = $1 AND timespan = $2 AND day = $3::date"
                               " ORDER BY seq",
                               3, part);
    long n = tf_pg_ok(res) ? PQntuples(res) : -1;
    enum tf_rc rc = tf_buf_puts(seqs, "{");

    if (n < 0)
        tf_run_fail(run, "cannot read the lake files owed: sqlstate %s", tf_pg_sqlstate(res));
    for (long i = 0; i < n && rc == TF_OK; i++) {
        const char *id = PQgetvalue(res, (int)i, 1);
        int attempt = (int)strtol(PQgetvalue(res, (int)i, 2), NULL, 10);

        rc = tf_buf_printf(seqs, "%s%s", i ? "," : "", PQgetvalue(res, (int)i, 0));
        if (rc == TF_OK && !(strcmp(id, run->execution_id) == 0 && attempt == run->attempt)) {
            cJSON *e = cJSON_CreateArray();

            cJSON_AddItemToArray(e, cJSON_CreateString(id));
            cJSON_AddItemToArray(e, cJSON_CreateNumber(attempt));
            cJSON_AddItemToArray(execs, e);
        }
    }
    if (rc == TF_OK)
        rc = tf_buf_puts(seqs, "}");
    PQclear(res);
    if (n >= 0 && rc != TF_OK) {
        tf_run_fail(run, "lake: out of memory");
        n = -1;
    }
    return n;
}

/*
 * The file o is written: the owed rows seen go, and o is listed on the
 * records of the other executions that owed it (those whose transform
 * died before writing it), in the transaction that holds the file's lock.
 */
static enum tf_rc owed_paid(struct tf_run *run, const struct tf_buf *seqs, const cJSON *execs,
                            const cJSON *o)
{
    const char *params[1] = {seqs->data};
    PGresult *res = tf_pg_exec(
        run->conn, "DELETE FROM tickflow.lake_pending WHERE seq = ANY($1::bigint[])", 1, params);
    enum tf_rc rc = tf_pg_ok(res) ? TF_OK : TF_ERR_DB;
    cJSON *one = cJSON_CreateArray();
    const cJSON *e;

    if (rc != TF_OK)
        tf_run_fail(run, "cannot settle the lake files owed: sqlstate %s", tf_pg_sqlstate(res));
    PQclear(res);
    if (one && o)
        cJSON_AddItemReferenceToArray(one, (cJSON *)o);
    cJSON_ArrayForEach(e, execs)
    {
        const char *id = cJSON_GetStringValue(cJSON_GetArrayItem(e, 0));
        int attempt = (int)cJSON_GetNumberValue(cJSON_GetArrayItem(e, 1));
        enum tf_rc arc;

        if (rc != TF_OK || !one || !id)
            break;
        /* A record no longer at that attempt's SUCCESS keeps what it has. */
        arc = tf_exec_add_objects(run->conn, id, "transform", attempt, one);
        if (arc != TF_OK && arc != TF_ERR_CONFLICT) {
            tf_run_fail(run, "cannot list the lake file on %s: %s", id, tf_rc_str(arc));
            rc = arc;
        }
    }
    cJSON_Delete(one);
    return rc;
}

/*
 * Rewrites one (dataset, date) file and lists it in run->objects. The
 * sweeper (sweeping) writes only a file still owed and not being written.
 */
static enum tf_rc rewrite(struct tf_run *run, const char *provider, const char *span,
                          const char *date, int sweeping)
{
    char dataset[160], key[400], err[512];
    const char *lock_params[2] = {dataset, date};
    const char *part[3] = {provider, span, date};
    struct tf_lake_obj lo;
    struct cols k, back, both;
    const struct cols *rows = NULL;
    struct kept_part *kept = kept_for(run, provider, span, date);
    struct tf_buf file, seqs;
    enum tf_rc rc;
    cJSON *o = NULL, *execs = cJSON_CreateArray();
    int64_t started = tf_time_mono_ms(), read_ms = started;
    size_t nrows = 0;
    int skip = 0;

    snprintf(dataset, sizeof(dataset), "%s_%s", provider, span);
    snprintf(key, sizeof(key), "silver/%s/date=%s/bars.parquet", dataset, date);
    memset(&k, 0, sizeof(k));
    memset(&back, 0, sizeof(back));
    memset(&both, 0, sizeof(both));
    tf_buf_init(&file, MAX_FILE_BYTES);
    tf_buf_init(&seqs, (size_t)64 << 20);
    rc = execs ? tf_pg_cmd(run->conn, "BEGIN") : TF_ERR_NOMEM;
    if (rc != TF_OK) {
        tf_run_fail(run, "cannot open the lake transaction");
        goto out;
    }
    {
        /* The sweeper leaves a file being written to its writer. */
        PGresult *res =
            tf_pg_exec(run->conn,
                       sweeping ? "SELECT pg_try_advisory_xact_lock("
                                  "hashtext('tickflow.lake'), hashtext($1 || '/' || $2))"
                                : "SELECT pg_advisory_xact_lock(hashtext('tickflow.lake'),"
                                  " hashtext($1 || '/' || $2))",
                       2, lock_params);
        rc = tf_pg_ok(res) ? TF_OK : TF_ERR_DB;
        if (rc != TF_OK)
            tf_run_fail(run, "cannot lock lake partition %s: sqlstate %s", key,
                        tf_pg_sqlstate(res));
        else if (sweeping && strcmp(PQgetvalue(res, 0, 0), "t") != 0)
            skip = 1;
        PQclear(res);
    }
    if (rc == TF_OK && !skip) {
        long owed = owed_rows(run, part, &seqs, execs);

        if (owed < 0)
            rc = TF_ERR_DB;
        else if (sweeping && owed == 0)
            skip = 1; /* another sweeper wrote it meanwhile */
    }
    if (skip) {
        if (tf_pg_cmd(run->conn, "ROLLBACK") != TF_OK) {
            tf_run_fail(run, "cannot release lake partition %s", key);
            rc = TF_ERR_DB;
        }
        goto out;
    }
    /* A day of a busy dataset is a million rows to sort: in memory, not on disk. */
    if (rc == TF_OK)
        rc = tf_pg_cmd(run->conn, "SET LOCAL work_mem = '" LAKE_WORK_MEM "'");
    if (rc == TF_OK && kept) {
        long long others = 0;
        int holds = kept_holds(run, kept, date, &others);

        if (holds < 0)
            rc = TF_ERR_DB;
        else if (holds && others == 0)
            rows = &kept->k;
        else if (holds) {
            rc = read_rows(run, provider, span, date, run->carry, &back);
            if (rc == TF_OK)
                rc = merge(&kept->k, &back, &both);
            if (rc == TF_OK) {
                rows = &both;
            } else if (rc == TF_FULL_READ) {
                tf_log_info(&run->log,
                            "silver no longer holds the bars kept for %s as loaded:"
                            " reading it back",
                            key);
                cols_cleanup(&back);
                cols_cleanup(&both);
                rc = TF_OK;
            } else if (rc == TF_ERR_NOMEM) {
                tf_run_fail(run, "lake partition %s: out of memory", key);
            }
        }
    }
    if (rc == TF_OK && !rows) {
        rc = read_rows(run, provider, span, date, NULL, &k);
        rows = &k;
    }
    read_ms = tf_time_mono_ms();
    if (rc == TF_OK)
        rc = encode(run, rows, &file);
    if (rc == TF_OK) {
        rc =
            tf_lake_replace(tf_svc_lake(run->svc), key, file.data, file.len, &lo, err, sizeof(err));
        if (rc != TF_OK)
            tf_run_fail(run, "lake partition %s: %s", key, err);
    }
    if (rc == TF_OK) {
        nrows = rows->n;
        o = cJSON_CreateObject();
        if (o) {
            cJSON_AddStringToObject(o, "uri", lo.uri);
            cJSON_AddNumberToObject(o, "bytes", (double)lo.bytes);
            cJSON_AddNumberToObject(o, "records", (double)nrows);
            cJSON_AddStringToObject(o, "sha256", lo.sha256);
            cJSON_AddStringToObject(o, "format", "parquet");
            cJSON_AddStringToObject(o, "dataset", dataset);
            cJSON_AddStringToObject(o, "date", date);
        }
        rc = owed_paid(run, &seqs, execs, o);
    }
    /* Commit or not, the transaction held the lock, the cursor and what was owed. */
    if (tf_pg_cmd(run->conn, rc == TF_OK ? "COMMIT" : "ROLLBACK") != TF_OK && rc == TF_OK) {
        tf_run_fail(run, "cannot release lake partition %s", key);
        rc = TF_ERR_DB;
    }
    if (rc != TF_OK)
        goto out;
    tf_log_info(&run->log,
                "lake file written key=%s rows=%zu kept=%zu read_back=%zu bytes=%lld read_ms=%lld"
                " ms=%lld%s",
                key, nrows, rows == &k ? 0 : kept->k.n, rows == &k ? nrows : nrows - kept->k.n,
                lo.bytes, (long long)(read_ms - started), (long long)(tf_time_mono_ms() - started),
                sweeping ? " (owed by a transform that did not write it)" : "");
    if (o && !sweeping) {
        cJSON_AddItemToArray(run->objects, o);
        o = NULL;
    }
out:
    cJSON_Delete(o);
    cJSON_Delete(execs);
    tf_buf_cleanup(&seqs);
    tf_buf_cleanup(&file);
    cols_cleanup(&k);
    cols_cleanup(&back);
    /* both borrowed every string: only its arrays go */
    cols_cleanup(&both);
    if (kept)
        part_drop(kept); /* written: its memory goes back to the budget */
    return rc;
}

/*
 * The writers of one run's lake files: each takes the next partition and
 * rewrites it on a connection of its own, with a copy of the run whose
 * objects and error are its own; they are gathered in partition order.
 */
struct lake_writers {
    struct tf_run *run;
    const cJSON **parts;
    struct tf_run *subs; /* one per partition */
    enum tf_rc *rcs;
    size_t nparts;
    size_t next; /* under mu */
    pthread_mutex_t mu;
};

static void write_parts(struct lake_writers *w, PGconn *conn)
{
    for (;;) {
        struct tf_run *sub;
        size_t i;

        pthread_mutex_lock(&w->mu);
        i = w->next++;
        pthread_mutex_unlock(&w->mu);
        if (i >= w->nparts)
            return;
        sub = &w->subs[i];
        sub->conn = conn;
        w->rcs[i] = sub->objects ? rewrite(sub, tf_json_str(w->parts[i], "provider"),
                                           tf_json_str(w->parts[i], "timespan"),
                                           tf_json_str(w->parts[i], "date"), 0)
                                 : TF_ERR_NOMEM;
    }
}

struct lake_helper {
    struct lake_writers *w;
    PGconn *conn;
    pthread_t thr;
};

static void *helper_main(void *arg)
{
    struct lake_helper *h = arg;

    write_parts(h->w, h->conn);
    return NULL;
}

enum tf_rc transform_lake(struct tf_run *run)
{
    struct lake_writers w;
    struct lake_helper helper = {&w, NULL, 0};
    const cJSON *p;
    enum tf_rc rc = TF_OK;
    int started = 0;
    size_t i = 0;

    memset(&w, 0, sizeof(w));
    w.run = run;
    w.nparts = (size_t)cJSON_GetArraySize(run->state);
    if (w.nparts == 0)
        return TF_OK;
    if (run->carry && hold_rank(run->carry) != TF_OK) {
        struct lake_hold *h = run->carry;

        /* Without ranks the kept bars cannot be ordered: every day is read back. */
        for (size_t k = 0; k < h->nparts; k++)
            part_drop(h->parts[k]);
    }
    w.parts = calloc(w.nparts, sizeof(*w.parts));
    w.subs = calloc(w.nparts, sizeof(*w.subs));
    w.rcs = calloc(w.nparts, sizeof(*w.rcs));
    if (!w.parts || !w.subs || !w.rcs) {
        free(w.parts);
        free(w.subs);
        free(w.rcs);
        tf_run_fail(run, "lake: out of memory");
        return TF_ERR_NOMEM;
    }
    cJSON_ArrayForEach(p, run->state)
    {
        w.parts[i] = p;
        w.subs[i] = *run;
        w.subs[i].error[0] = '\0';
        w.subs[i].objects = cJSON_CreateArray();
        i++;
    }
    pthread_mutex_init(&w.mu, NULL);
    /* Two writers when there are several files and a second connection:
     * one encodes while the other's database reads run. */
    if (w.nparts > 1)
        helper.conn = tf_svc_conn_try(run->svc);
    if (helper.conn)
        started = pthread_create(&helper.thr, NULL, helper_main, &helper) == 0;
    write_parts(&w, run->conn);
    if (started)
        pthread_join(helper.thr, NULL);
    tf_svc_conn_put(run->svc, helper.conn);
    pthread_mutex_destroy(&w.mu);
    for (i = 0; i < w.nparts; i++) {
        cJSON *o;

        /* The first error is kept; the other partitions are still written. */
        if (w.rcs[i] != TF_OK && rc == TF_OK) {
            rc = w.rcs[i];
            snprintf(run->error, sizeof(run->error), "%s",
                     w.subs[i].error[0] ? w.subs[i].error : "lake: out of memory");
        }
        while (w.subs[i].objects && (o = cJSON_DetachItemFromArray(w.subs[i].objects, 0)))
            cJSON_AddItemToArray(run->objects, o);
        cJSON_Delete(w.subs[i].objects);
    }
    free(w.parts);
    free(w.subs);
    free(w.rcs);
    return rc;
}

void transform_lake_tick(struct tf_svc *svc, PGconn *conn)
{
    static unsigned round;
    char grace[24];
    const char *params[1] = {grace};
    PGresult *res;

    /* Every fourth tick (2 s); the sweeper's thread is the only caller. */
    if (round++ % 4 != 0)
        return;
    /* Owed past the heartbeat timeout: its transform is dead, or failed to write. */
    snprintf(grace, sizeof(grace), "%ld", tf_svc_cfg(svc)->heartbeat_timeout);
    res = tf_pg_exec(conn,
                     "SELECT provider, timespan, day::text FROM tickflow.lake_pending"
                     " GROUP BY provider, timespan, day"
                     " HAVING min(since) < now() - make_interval(secs => $1::int)"
                     " ORDER BY min(seq) LIMIT 8",
                     1, params);
    if (!tf_pg_ok(res)) {
        tf_log_warn(NULL, "lake: cannot read the files owed: sqlstate %s", tf_pg_sqlstate(res));
        PQclear(res);
        return;
    }
    for (int i = 0; i < PQntuples(res) && !tf_svc_stopping(svc); i++) {
        struct tf_run run;

        memset(&run, 0, sizeof(run));
        run.svc = svc;
        run.conn = conn;
        run.attempt = -1; /* no execution of its own: every owing one gets the file */
        if (rewrite(&run, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), 1) !=
            TF_OK)
            tf_log_warn(NULL, "lake: the file owed for %s_%s on %s is not written yet: %s",
                        PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
                        run.error[0] ? run.error : "no detail");
    }
    PQclear(res);
}
