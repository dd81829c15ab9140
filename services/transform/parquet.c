/*
 * parquet.c - tickflow's Parquet writer: flat files, dictionary and PLAIN
 * pages compressed with ZSTD, statistics, the Thrift compact footer; the
 * same input gives the same bytes. docs/ARCHITECTURE.md (Silver's lake
 * files).
 */
#include "parquet.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "tf/hash.h"

/* parquet.thrift enums */
enum { PT_INT64 = 2, PT_DOUBLE = 5, PT_BYTE_ARRAY = 6 };
enum { CONV_UTF8 = 0, CONV_TIMESTAMP_MICROS = 10 };
enum { REP_REQUIRED = 0, REP_OPTIONAL = 1 };
enum { ENC_PLAIN = 0, ENC_RLE = 3, ENC_RLE_DICTIONARY = 8 };
enum { CODEC_ZSTD = 6 };
enum { PAGE_DATA = 0, PAGE_DICTIONARY = 2 };
#define FORMAT_VERSION 2
#define CREATED_BY     "tickflow"

/* ---------------------------------------------------------------------------
 * Thrift compact protocol: a writer with a sticky error, so a struct is
 * written as a plain sequence of calls and checked once at the end.
 */
enum {
    TC_TRUE = 1,
    TC_FALSE = 2,
    TC_I16 = 4,
    TC_I32 = 5,
    TC_I64 = 6,
    TC_BINARY = 8,
    TC_LIST = 9,
    TC_STRUCT = 12
};
#define TW_DEPTH 16

struct tw {
    struct tf_buf *buf;
    enum tf_rc rc;
    int depth;
    int last[TW_DEPTH]; /* last field id written at each struct depth */
};

static void tw_init(struct tw *tw, struct tf_buf *buf)
{
    tw->buf = buf;
    tw->rc = TF_OK;
    tw->depth = 0;
    tw->last[0] = 0;
}

static void tw_bytes(struct tw *tw, const void *p, size_t n)
{
    if (tw->rc == TF_OK)
        tw->rc = tf_buf_append(tw->buf, p, n);
}

static void tw_byte(struct tw *tw, unsigned v)
{
    unsigned char c = (unsigned char)v;

    tw_bytes(tw, &c, 1);
}

static void tw_varint(struct tw *tw, uint64_t v)
{
    unsigned char b[10];
    size_t n = 0;

    while (v >= 0x80) {
        b[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    b[n++] = (unsigned char)v;
    tw_bytes(tw, b, n);
}

static uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static void tw_field(struct tw *tw, int id, int type)
{
    int delta = id - tw->last[tw->depth];

    if (delta > 0 && delta <= 15) {
        tw_byte(tw, (unsigned)(delta << 4 | type));
    } else {
        tw_byte(tw, (unsigned)type);
        tw_varint(tw, zigzag(id));
    }
    tw->last[tw->depth] = id;
}

static void tw_i32(struct tw *tw, int id, int32_t v)
{
    tw_field(tw, id, TC_I32);
    tw_varint(tw, zigzag(v));
}

static void tw_i16(struct tw *tw, int id, int16_t v)
{
    tw_field(tw, id, TC_I16);
    tw_varint(tw, zigzag(v));
}

static void tw_i64(struct tw *tw, int id, int64_t v)
{
    tw_field(tw, id, TC_I64);
    tw_varint(tw, zigzag(v));
}

static void tw_bool(struct tw *tw, int id, int v)
{
    tw_field(tw, id, v ? TC_TRUE : TC_FALSE);
}

static void tw_bin(struct tw *tw, int id, const void *p, size_t n)
{
    tw_field(tw, id, TC_BINARY);
    tw_varint(tw, n);
    tw_bytes(tw, p, n);
}

static void tw_str(struct tw *tw, int id, const char *s)
{
    tw_bin(tw, id, s, strlen(s));
}

/* Opens a nested struct context (after its field or list header). */
static void tw_push(struct tw *tw)
{
    if (tw->depth + 1 >= TW_DEPTH) {
        if (tw->rc == TF_OK)
            tw->rc = TF_ERR_INVALID;
        return;
    }
    tw->depth++;
    tw->last[tw->depth] = 0;
}

static void tw_struct(struct tw *tw, int id)
{
    tw_field(tw, id, TC_STRUCT);
    tw_push(tw);
}

/* Ends the current struct (a field's or a list element's) with STOP. */
static void tw_end(struct tw *tw)
{
    tw_byte(tw, 0);
    if (tw->depth > 0)
        tw->depth--;
}

static void tw_list(struct tw *tw, int id, int elem_type, size_t n)
{
    tw_field(tw, id, TC_LIST);
    if (n < 15) {
        tw_byte(tw, (unsigned)(n << 4 | (unsigned)elem_type));
    } else {
        tw_byte(tw, 0xf0u | (unsigned)elem_type);
        tw_varint(tw, n);
    }
}

/* A struct element of a list: its fields follow, then tw_end. */
static void tw_elem_struct(struct tw *tw)
{
    tw_push(tw);
}

/* ---------------------------------------------------------------------------
 * Per-call state.
 */
struct chunk_meta {
    int64_t start;        /* first page (dictionary or data) */
    int64_t data_offset;  /* first data page */
    int64_t dict_offset;  /* -1: no dictionary page */
    int64_t uncompressed; /* pages with their headers */
    int64_t compressed;
    int64_t null_count;
    int32_t data_pages;
    int has_minmax;
    unsigned char min[8], max[8]; /* PLAIN int64/double */
    const char *smin, *smax;      /* strings: borrowed from the input */
    size_t smin_len, smax_len;
};

struct dict_entry {
    const char *s;
    size_t len;
    uint32_t hash;
};

struct dict {
    struct dict_entry *entries;
    size_t n, cap;
    uint32_t *slots; /* index + 1; 0 = empty */
    size_t nslots;
    size_t bytes; /* PLAIN size of the entries */
};

struct pq {
    const struct tf_pq_column *cols;
    size_t ncols, nrows;
    struct tf_pq_opts o;
    struct tf_buf *out;
    size_t base;
    ZSTD_CCtx *cctx;
    struct tf_buf page; /* uncompressed page */
    struct tf_buf hdr;  /* page header */
    unsigned char *z;   /* compressed page */
    size_t z_cap;
    uint32_t *lv; /* levels or dictionary indices of one page */
    size_t lv_cap;
    struct dict dict;
    struct chunk_meta *meta; /* ngroups x ncols */
    size_t ngroups;
    char *err;
    size_t errlen;
};

static enum tf_rc fail(struct pq *pq, enum tf_rc rc, const char *fmt, ...) TF_PRINTF(3, 4);

static enum tf_rc fail(struct pq *pq, enum tf_rc rc, const char *fmt, ...)
{
    va_list ap;

    if (pq->err && pq->errlen) {
        va_start(ap, fmt);
        vsnprintf(pq->err, pq->errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static int is_present(const struct tf_pq_column *col, size_t row)
{
    return !col->present || col->present[row];
}

static const char *str_at(const struct tf_pq_column *col, size_t row)
{
    return ((const char *const *)col->values)[row];
}

static void put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Returns 1 when s[0..n) is well-formed UTF-8 (no overlongs, surrogates or
   code points past U+10FFFF). */
static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned c = s[i];
        size_t len;
        uint32_t cp;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i < len)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3fu);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}

static enum tf_rc validate(struct pq *pq)
{
    if (!pq->cols || pq->ncols == 0)
        return fail(pq, TF_ERR_INVALID, "no columns");
    if (pq->ncols > INT32_MAX || pq->nrows > INT64_MAX)
        return fail(pq, TF_ERR_INVALID, "too many columns or rows");
    for (size_t c = 0; c < pq->ncols; c++) {
        const struct tf_pq_column *col = &pq->cols[c];

        if (!col->name || !col->name[0])
            return fail(pq, TF_ERR_INVALID, "column %zu: no name", c);
        if (!utf8_valid((const unsigned char *)col->name, strlen(col->name)))
            return fail(pq, TF_ERR_INVALID, "column %zu: name is not UTF-8", c);
        for (size_t k = 0; k < c; k++) {
            if (strcmp(pq->cols[k].name, col->name) == 0)
                return fail(pq, TF_ERR_INVALID, "column %zu: name \"%s\" repeated", c, col->name);
        }
        if (col->type != TF_PQ_STRING && col->type != TF_PQ_INT64 && col->type != TF_PQ_DOUBLE &&
            col->type != TF_PQ_TIMESTAMP_US)
            return fail(pq, TF_ERR_INVALID, "column \"%s\": unknown type %d", col->name,
                        (int)col->type);
        if (pq->nrows && !col->values)
            return fail(pq, TF_ERR_INVALID, "column \"%s\": no values", col->name);
        const char *prev = NULL;

        for (size_t r = 0; r < pq->nrows; r++) {
            const char *s;

            if (!is_present(col, r)) {
                if (!col->optional)
                    return fail(pq, TF_ERR_INVALID,
                                "column \"%s\": REQUIRED column has a null at row %zu", col->name,
                                r);
                continue;
            }
            if (col->type != TF_PQ_STRING)
                continue;
            s = str_at(col, r);
            if (!s)
                return fail(pq, TF_ERR_INVALID, "column \"%s\": NULL string at row %zu", col->name,
                            r);
            /* The same string as the last one checked (callers share copies): done. */
            if (s == prev)
                continue;
            prev = s;
            if (!utf8_valid((const unsigned char *)s, strlen(s)))
                return fail(pq, TF_ERR_INVALID, "column \"%s\": row %zu is not UTF-8", col->name,
                            r);
        }
    }
    for (size_t k = 0; k < pq->o.nkv; k++) {
        if (!pq->o.kv || !pq->o.kv[k].key)
            return fail(pq, TF_ERR_INVALID, "key_value_metadata %zu: no key", k);
    }
    return TF_OK;
}

/* ---------------------------------------------------------------------------
 * RLE / bit-packed hybrid (levels and dictionary indices).
 */

/* 1 when v[i..i+8) exist and are all equal. */
static int run_of_8(const uint32_t *v, size_t i, size_t n)
{
    if (n - i < 8)
        return 0;
    for (size_t k = 1; k < 8; k++) {
        if (v[i + k] != v[i])
            return 0;
    }
    return 1;
}

/* Appends n values of width bits (1..32) to tw's buffer. */
static void rle_hybrid(struct tw *tw, const uint32_t *v, size_t n, int width)
{
    size_t i = 0;
    size_t vbytes = ((size_t)width + 7) / 8;

    while (i < n) {
        size_t start = i;
        size_t groups = 0;
        uint64_t acc = 0;
        int nbits = 0;

        if (run_of_8(v, i, n)) {
            unsigned char b[4];

            while (i < n && v[i] == v[start])
                i++;
            tw_varint(tw, (uint64_t)(i - start) << 1);
            put_le32(b, v[start]);
            tw_bytes(tw, b, vbytes);
            continue;
        }
        /* Literal groups of 8 until a run of 8 starts (the last may be padded). */
        do {
            i += 8;
            groups++;
        } while (i < n && !run_of_8(v, i, n));
        tw_varint(tw, (uint64_t)groups << 1 | 1);
        for (size_t k = start; k < start + groups * 8; k++) {
            acc |= (uint64_t)(k < n ? v[k] : 0) << nbits;
            nbits += width;
            while (nbits >= 8) {
                tw_byte(tw, (unsigned)(acc & 0xff));
                acc >>= 8;
                nbits -= 8;
            }
        }
        if (i > n)
            i = n;
    }
}

static int bit_width(size_t max_value)
{
    int w = 0;

    while (max_value) {
        w++;
        max_value >>= 1;
    }
    return w ? w : 1;
}

/* ---------------------------------------------------------------------------
 * Dictionary of one string column chunk.
 */
static uint32_t hash_bytes(const char *s, size_t n)
{
    return tf_fnv1a32(TF_FNV1A32_INIT, s, n);
}

static void dict_reset(struct dict *d)
{
    d->n = 0;
    d->bytes = 0;
    if (d->slots)
        memset(d->slots, 0, d->nslots * sizeof(*d->slots));
}

static void dict_free(struct dict *d)
{
    free(d->entries);
    free(d->slots);
    memset(d, 0, sizeof(*d));
}

/* Index of s in the dictionary, or -1. */
static long dict_find(const struct dict *d, const char *s, size_t len, uint32_t h, size_t *slot)
{
    size_t mask = d->nslots - 1;
    size_t i = h & mask;

    for (;;) {
        uint32_t e = d->slots[i];

        if (!e) {
            *slot = i;
            return -1;
        }
        if (d->entries[e - 1].hash == h && d->entries[e - 1].len == len &&
            memcmp(d->entries[e - 1].s, s, len) == 0)
            return (long)(e - 1);
        i = (i + 1) & mask;
    }
}

static enum tf_rc dict_grow(struct dict *d)
{
    size_t nslots = d->nslots ? d->nslots * 2 : 1024;
    uint32_t *slots = calloc(nslots, sizeof(*slots));

    if (!slots)
        return TF_ERR_NOMEM;
    free(d->slots);
    d->slots = slots;
    d->nslots = nslots;
    for (size_t k = 0; k < d->n; k++) {
        size_t i = d->entries[k].hash & (nslots - 1);

        while (slots[i])
            i = (i + 1) & (nslots - 1);
        slots[i] = (uint32_t)(k + 1);
    }
    return TF_OK;
}

/* Adds s when new. *idx gets its index. TF_ERR_TOO_LARGE past the caps. */
static enum tf_rc dict_add(struct dict *d, const char *s, uint32_t *idx)
{
    size_t len = strlen(s);
    uint32_t h = hash_bytes(s, len);
    size_t slot = 0;
    long found;
    enum tf_rc rc;

    if (!d->nslots) {
        rc = dict_grow(d);
        if (rc != TF_OK)
            return rc;
    }
    found = dict_find(d, s, len, h, &slot);
    if (found >= 0) {
        *idx = (uint32_t)found;
        return TF_OK;
    }
    if (d->n >= TF_PQ_DICT_MAX_ENTRIES || d->bytes + 4 + len > TF_PQ_DICT_MAX_BYTES)
        return TF_ERR_TOO_LARGE;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 256;
        struct dict_entry *e = realloc(d->entries, cap * sizeof(*e));

        if (!e)
            return TF_ERR_NOMEM;
        d->entries = e;
        d->cap = cap;
    }
    d->entries[d->n].s = s;
    d->entries[d->n].len = len;
    d->entries[d->n].hash = h;
    d->n++;
    d->bytes += 4 + len;
    *idx = (uint32_t)(d->n - 1);
    if (d->n * 2 > d->nslots)
        return dict_grow(d); /* rehashes the new entry too */
    d->slots[slot] = (uint32_t)d->n;
    return TF_OK;
}

static uint32_t dict_index(const struct dict *d, const char *s)
{
    size_t len = strlen(s);
    size_t slot = 0;
    long found = dict_find(d, s, len, hash_bytes(s, len), &slot);

    return found < 0 ? 0 : (uint32_t)found; /* always found: built from the same rows */
}

/* Builds the dictionary of rows [r0, r1) of a string column. *use is 1
   when the chunk should use it (it fits the caps and each entry is used at
   least twice on average), 0 for PLAIN. */
static enum tf_rc dict_build(struct pq *pq, const struct tf_pq_column *col, size_t r0, size_t r1,
                             int *use)
{
    size_t nonnull = 0;
    const char *prev = NULL;
    uint32_t idx;
    enum tf_rc rc;

    *use = 0;
    dict_reset(&pq->dict);
    if (pq->o.no_dictionary)
        return TF_OK;
    for (size_t r = r0; r < r1; r++) {
        if (!is_present(col, r))
            continue;
        nonnull++;
        if (str_at(col, r) == prev)
            continue; /* the same string as the last one added */
        prev = str_at(col, r);
        rc = dict_add(&pq->dict, prev, &idx);
        if (rc == TF_ERR_TOO_LARGE)
            return TF_OK;
        if (rc != TF_OK)
            return rc;
    }
    *use = nonnull > 0 && pq->dict.n * 2 <= nonnull;
    return TF_OK;
}

/* ---------------------------------------------------------------------------
 * Statistics.
 */
static int bytes_less(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);

    return c < 0 || (c == 0 && alen < blen);
}

static void chunk_stats(const struct tf_pq_column *col, size_t r0, size_t r1, struct chunk_meta *m)
{
    int64_t imin = 0, imax = 0;
    double dmin = 0, dmax = 0;
    const char *prev = NULL;
    int have = 0;

    for (size_t r = r0; r < r1; r++) {
        if (!is_present(col, r)) {
            m->null_count++;
            continue;
        }
        if (col->type == TF_PQ_STRING) {
            const char *s = str_at(col, r);
            size_t len;

            if (s == prev)
                continue; /* the same string again changes neither bound */
            prev = s;
            len = strlen(s);

            if (!have || bytes_less(s, len, m->smin, m->smin_len)) {
                m->smin = s;
                m->smin_len = len;
            }
            if (!have || bytes_less(m->smax, m->smax_len, s, len)) {
                m->smax = s;
                m->smax_len = len;
            }
            have = 1;
        } else if (col->type == TF_PQ_DOUBLE) {
            double v = ((const double *)col->values)[r];

            if (v != v) /* NaN takes no part in min/max */
                continue;
            if (!have || v < dmin)
                dmin = v;
            if (!have || v > dmax)
                dmax = v;
            have = 1;
        } else {
            int64_t v = ((const int64_t *)col->values)[r];

            if (!have || v < imin)
                imin = v;
            if (!have || v > imax)
                imax = v;
            have = 1;
        }
    }
    m->has_minmax = have;
    if (!have || col->type == TF_PQ_STRING)
        return;
    if (col->type == TF_PQ_DOUBLE) {
        uint64_t bits;

        /* Zero bounds are written as -0.0 (min) and +0.0 (max), as the spec asks. */
        if (dmin == 0)
            dmin = -0.0;
        if (dmax == 0)
            dmax = 0.0;
        memcpy(&bits, &dmin, 8);
        put_le64(m->min, bits);
        memcpy(&bits, &dmax, 8);
        put_le64(m->max, bits);
    } else {
        put_le64(m->min, (uint64_t)imin);
        put_le64(m->max, (uint64_t)imax);
    }
}

/* ---------------------------------------------------------------------------
 * Pages.
 */
static enum tf_rc reserve_u32(struct pq *pq, size_t n)
{
    uint32_t *p;

    if (n <= pq->lv_cap)
        return TF_OK;
    p = realloc(pq->lv, n * sizeof(*p));
    if (!p)
        return TF_ERR_NOMEM;
    pq->lv = p;
    pq->lv_cap = n;
    return TF_OK;
}

/* Compresses pq->page and appends header + body to the output. */
static enum tf_rc emit_page(struct pq *pq, int type, int32_t num_values, int encoding,
                            struct chunk_meta *m)
{
    size_t bound = ZSTD_compressBound(pq->page.len);
    size_t zlen;
    struct tw tw;
    enum tf_rc rc;

    if (pq->page.len > INT32_MAX)
        return fail(pq, TF_ERR_TOO_LARGE, "page of %zu bytes", pq->page.len);
    if (bound > pq->z_cap) {
        unsigned char *z = realloc(pq->z, bound);

        if (!z)
            return TF_ERR_NOMEM;
        pq->z = z;
        pq->z_cap = bound;
    }
    zlen = ZSTD_compressCCtx(pq->cctx, pq->z, pq->z_cap, pq->page.data, pq->page.len,
                             pq->o.zstd_level);
    if (ZSTD_isError(zlen))
        return fail(pq, TF_ERR_NOMEM, "zstd: %s", ZSTD_getErrorName(zlen));
    if (zlen > INT32_MAX)
        return fail(pq, TF_ERR_TOO_LARGE, "compressed page of %zu bytes", zlen);

    tf_buf_reset(&pq->hdr);
    tw_init(&tw, &pq->hdr);
    tw_i32(&tw, 1, type);
    tw_i32(&tw, 2, (int32_t)pq->page.len);
    tw_i32(&tw, 3, (int32_t)zlen);
    if (type == PAGE_DATA) {
        tw_struct(&tw, 5);
        tw_i32(&tw, 1, num_values);
        tw_i32(&tw, 2, encoding);
        tw_i32(&tw, 3, ENC_RLE);
        tw_i32(&tw, 4, ENC_RLE);
        tw_end(&tw);
    } else {
        tw_struct(&tw, 7);
        tw_i32(&tw, 1, num_values);
        tw_i32(&tw, 2, encoding);
        tw_end(&tw);
    }
    tw_end(&tw);
    if (tw.rc != TF_OK)
        return tw.rc;

    if (type == PAGE_DICTIONARY)
        m->dict_offset = (int64_t)(pq->out->len - pq->base);
    else if (m->data_pages++ == 0)
        m->data_offset = (int64_t)(pq->out->len - pq->base);
    rc = tf_buf_append(pq->out, pq->hdr.data, pq->hdr.len);
    if (rc == TF_OK)
        rc = tf_buf_append(pq->out, pq->z, zlen);
    if (rc != TF_OK)
        return fail(pq, rc, "output buffer: %s", tf_rc_str(rc));
    m->uncompressed += (int64_t)(pq->hdr.len + pq->page.len);
    m->compressed += (int64_t)(pq->hdr.len + zlen);
    return TF_OK;
}

static enum tf_rc write_dict_page(struct pq *pq, struct chunk_meta *m)
{
    struct tw tw;

    tf_buf_reset(&pq->page);
    tw_init(&tw, &pq->page);
    for (size_t k = 0; k < pq->dict.n; k++) {
        unsigned char b[4];

        put_le32(b, (uint32_t)pq->dict.entries[k].len);
        tw_bytes(&tw, b, 4);
        tw_bytes(&tw, pq->dict.entries[k].s, pq->dict.entries[k].len);
    }
    if (tw.rc != TF_OK)
        return tw.rc;
    return emit_page(pq, PAGE_DICTIONARY, (int32_t)pq->dict.n, ENC_PLAIN, m);
}

/* Encodes rows [r0, r1) of col as one data page. */
static enum tf_rc write_data_page(struct pq *pq, const struct tf_pq_column *col, size_t r0,
                                  size_t r1, int use_dict, struct chunk_meta *m)
{
    size_t n = r1 - r0;
    size_t nv = 0;
    struct tw tw;
    enum tf_rc rc;

    rc = reserve_u32(pq, n);
    if (rc != TF_OK)
        return rc;
    tf_buf_reset(&pq->page);
    tw_init(&tw, &pq->page);
    if (col->optional) {
        size_t at;

        for (size_t r = r0; r < r1; r++)
            pq->lv[r - r0] = (uint32_t)is_present(col, r);
        tw_bytes(&tw, "\0\0\0\0", 4); /* length, patched below */
        at = pq->page.len;
        rle_hybrid(&tw, pq->lv, n, 1);
        if (tw.rc == TF_OK)
            put_le32((unsigned char *)pq->page.data + at - 4, (uint32_t)(pq->page.len - at));
    }
    if (use_dict) {
        int width = bit_width(pq->dict.n - 1);
        const char *prev = NULL;
        uint32_t prev_index = 0;

        for (size_t r = r0; r < r1; r++) {
            const char *s;

            if (!is_present(col, r))
                continue;
            s = str_at(col, r);
            if (s != prev) {
                prev = s;
                prev_index = dict_index(&pq->dict, s);
            }
            pq->lv[nv++] = prev_index;
        }
        tw_byte(&tw, (unsigned)width);
        rle_hybrid(&tw, pq->lv, nv, width);
    } else if (col->type != TF_PQ_STRING) {
        /* Eight little-endian bytes a value, written straight into the page. */
        if (tw.rc == TF_OK)
            tw.rc = tf_buf_reserve(&pq->page, n * 8);
        if (tw.rc == TF_OK) {
            unsigned char *at = (unsigned char *)pq->page.data + pq->page.len;
            const unsigned char *v = col->values;

            for (size_t r = r0; r < r1; r++) {
                uint64_t bits;

                if (!is_present(col, r))
                    continue;
                memcpy(&bits, v + r * 8, 8); /* a double's or an int64's bits */
                put_le64(at, bits);
                at += 8;
            }
            pq->page.len = (size_t)(at - (unsigned char *)pq->page.data);
        }
    } else {
        for (size_t r = r0; r < r1; r++) {
            unsigned char b[4];
            const char *s;
            size_t len;

            if (!is_present(col, r))
                continue;
            s = str_at(col, r);
            len = strlen(s);
            if (len > UINT32_MAX)
                return fail(pq, TF_ERR_TOO_LARGE, "column \"%s\": string too long", col->name);
            put_le32(b, (uint32_t)len);
            tw_bytes(&tw, b, 4);
            tw_bytes(&tw, s, len);
        }
    }
    if (tw.rc != TF_OK)
        return tw.rc;
    return emit_page(pq, PAGE_DATA, (int32_t)n, use_dict ? ENC_RLE_DICTIONARY : ENC_PLAIN, m);
}

/* Where the data page that starts at r0 ends: page_rows rows or page_bytes
   bytes of values, whichever comes first. */
static size_t page_end(const struct pq *pq, const struct tf_pq_column *col, size_t r0, size_t r1,
                       int use_dict)
{
    size_t limit = r1 - r0 < pq->o.page_rows ? r1 : r0 + pq->o.page_rows;
    size_t bytes = 0;
    size_t r = r0;

    if (col->type != TF_PQ_STRING || use_dict)
        return limit; /* fixed width: page_rows already bounds the bytes */
    while (r < limit && bytes < pq->o.page_bytes) {
        if (is_present(col, r))
            bytes += 4 + strlen(str_at(col, r));
        r++;
    }
    return r;
}

static enum tf_rc write_chunk(struct pq *pq, size_t c, size_t r0, size_t r1, struct chunk_meta *m)
{
    const struct tf_pq_column *col = &pq->cols[c];
    int use_dict = 0;
    enum tf_rc rc;

    m->start = (int64_t)(pq->out->len - pq->base);
    m->dict_offset = -1;
    chunk_stats(col, r0, r1, m);
    if (col->type == TF_PQ_STRING) {
        rc = dict_build(pq, col, r0, r1, &use_dict);
        if (rc != TF_OK)
            return rc;
    }
    if (use_dict) {
        rc = write_dict_page(pq, m);
        if (rc != TF_OK)
            return rc;
    }
    for (size_t p0 = r0; p0 < r1;) {
        size_t p1 = page_end(pq, col, p0, r1, use_dict);

        rc = write_data_page(pq, col, p0, p1, use_dict, m);
        if (rc != TF_OK)
            return rc;
        p0 = p1;
    }
    return TF_OK;
}

/* ---------------------------------------------------------------------------
 * Footer.
 */
static void write_schema(struct tw *tw, const struct pq *pq)
{
    tw_list(tw, 2, TC_STRUCT, pq->ncols + 1);
    tw_elem_struct(tw);
    tw_str(tw, 4, "schema");
    tw_i32(tw, 5, (int32_t)pq->ncols);
    tw_end(tw);
    for (size_t c = 0; c < pq->ncols; c++) {
        const struct tf_pq_column *col = &pq->cols[c];

        tw_elem_struct(tw);
        tw_i32(tw, 1,
               col->type == TF_PQ_STRING   ? PT_BYTE_ARRAY
               : col->type == TF_PQ_DOUBLE ? PT_DOUBLE
                                           : PT_INT64);
        tw_i32(tw, 3, col->optional ? REP_OPTIONAL : REP_REQUIRED);
        tw_str(tw, 4, col->name);
        if (col->type == TF_PQ_STRING) {
            tw_i32(tw, 6, CONV_UTF8);
            tw_struct(tw, 10); /* LogicalType */
            tw_struct(tw, 1);  /* STRING */
            tw_end(tw);
            tw_end(tw);
        } else if (col->type == TF_PQ_TIMESTAMP_US) {
            tw_i32(tw, 6, CONV_TIMESTAMP_MICROS);
            tw_struct(tw, 10); /* LogicalType */
            tw_struct(tw, 8);  /* TIMESTAMP */
            tw_bool(tw, 1, 1); /* isAdjustedToUTC */
            tw_struct(tw, 2);  /* unit: TimeUnit */
            tw_struct(tw, 2);  /* MICROS */
            tw_end(tw);
            tw_end(tw);
            tw_end(tw);
            tw_end(tw);
        }
        tw_end(tw);
    }
}

static void write_column_meta(struct tw *tw, const struct tf_pq_column *col,
                              const struct chunk_meta *m, size_t rows)
{
    int dict = m->dict_offset >= 0;
    int enc[3];
    size_t nenc = 0;

    enc[nenc++] = ENC_PLAIN; /* data pages, or the dictionary page */
    if (col->optional)
        enc[nenc++] = ENC_RLE; /* definition levels */
    if (dict)
        enc[nenc++] = ENC_RLE_DICTIONARY;
    tw_struct(tw, 3);
    tw_i32(tw, 1,
           col->type == TF_PQ_STRING   ? PT_BYTE_ARRAY
           : col->type == TF_PQ_DOUBLE ? PT_DOUBLE
                                       : PT_INT64);
    tw_list(tw, 2, TC_I32, nenc);
    for (size_t k = 0; k < nenc; k++)
        tw_varint(tw, zigzag(enc[k]));
    tw_list(tw, 3, TC_BINARY, 1);
    tw_varint(tw, strlen(col->name));
    tw_bytes(tw, col->name, strlen(col->name));
    tw_i32(tw, 4, CODEC_ZSTD);
    tw_i64(tw, 5, (int64_t)rows);
    tw_i64(tw, 6, m->uncompressed);
    tw_i64(tw, 7, m->compressed);
    tw_i64(tw, 9, m->data_offset);
    if (dict)
        tw_i64(tw, 11, m->dict_offset);
    tw_struct(tw, 12); /* Statistics */
    tw_i64(tw, 3, m->null_count);
    if (m->has_minmax) {
        if (col->type == TF_PQ_STRING) {
            tw_bin(tw, 5, m->smax, m->smax_len);
            tw_bin(tw, 6, m->smin, m->smin_len);
        } else {
            tw_bin(tw, 5, m->max, 8);
            tw_bin(tw, 6, m->min, 8);
        }
        tw_bool(tw, 7, 1); /* is_max_value_exact */
        tw_bool(tw, 8, 1); /* is_min_value_exact */
    }
    tw_end(tw);
    tw_list(tw, 13, TC_STRUCT, dict ? 2 : 1); /* encoding_stats */
    if (dict) {
        tw_elem_struct(tw);
        tw_i32(tw, 1, PAGE_DICTIONARY);
        tw_i32(tw, 2, ENC_PLAIN);
        tw_i32(tw, 3, 1);
        tw_end(tw);
    }
    tw_elem_struct(tw);
    tw_i32(tw, 1, PAGE_DATA);
    tw_i32(tw, 2, dict ? ENC_RLE_DICTIONARY : ENC_PLAIN);
    tw_i32(tw, 3, m->data_pages);
    tw_end(tw);
    tw_end(tw);
}

static enum tf_rc write_footer(struct pq *pq)
{
    size_t start = pq->out->len;
    size_t rpg = pq->o.rows_per_group;
    unsigned char tail[8];
    struct tw tw;

    tw_init(&tw, pq->out);
    tw_i32(&tw, 1, FORMAT_VERSION);
    write_schema(&tw, pq);
    tw_i64(&tw, 3, (int64_t)pq->nrows);
    tw_list(&tw, 4, TC_STRUCT, pq->ngroups);
    for (size_t g = 0; g < pq->ngroups; g++) {
        size_t r0 = g * rpg;
        size_t rows = pq->nrows - r0 < rpg ? pq->nrows - r0 : rpg;
        const struct chunk_meta *gm = &pq->meta[g * pq->ncols];
        int64_t unc = 0, comp = 0;

        tw_elem_struct(&tw);
        tw_list(&tw, 1, TC_STRUCT, pq->ncols);
        for (size_t c = 0; c < pq->ncols; c++) {
            tw_elem_struct(&tw);
            tw_i64(&tw, 2, gm[c].start);
            write_column_meta(&tw, &pq->cols[c], &gm[c], rows);
            tw_end(&tw);
            unc += gm[c].uncompressed;
            comp += gm[c].compressed;
        }
        tw_i64(&tw, 2, unc);
        tw_i64(&tw, 3, (int64_t)rows);
        tw_i64(&tw, 5, gm[0].start);
        tw_i64(&tw, 6, comp);
        if (g <= INT16_MAX)
            tw_i16(&tw, 7, (int16_t)g);
        tw_end(&tw);
    }
    if (pq->o.nkv) {
        tw_list(&tw, 5, TC_STRUCT, pq->o.nkv);
        for (size_t k = 0; k < pq->o.nkv; k++) {
            tw_elem_struct(&tw);
            tw_str(&tw, 1, pq->o.kv[k].key);
            if (pq->o.kv[k].value)
                tw_str(&tw, 2, pq->o.kv[k].value);
            tw_end(&tw);
        }
    }
    tw_str(&tw, 6, CREATED_BY);
    tw_list(&tw, 7, TC_STRUCT, pq->ncols); /* column_orders */
    for (size_t c = 0; c < pq->ncols; c++) {
        tw_elem_struct(&tw);
        tw_struct(&tw, 1); /* TYPE_ORDER: TypeDefinedOrder */
        tw_end(&tw);
        tw_end(&tw);
    }
    tw_end(&tw);
    if (tw.rc != TF_OK)
        return fail(pq, tw.rc, "footer: %s", tf_rc_str(tw.rc));
    if (pq->out->len - start > UINT32_MAX)
        return fail(pq, TF_ERR_TOO_LARGE, "footer too large");
    put_le32(tail, (uint32_t)(pq->out->len - start));
    memcpy(tail + 4, "PAR1", 4);
    tw_bytes(&tw, tail, 8);
    if (tw.rc != TF_OK)
        return fail(pq, tw.rc, "footer: %s", tf_rc_str(tw.rc));
    return TF_OK;
}

/* ---------------------------------------------------------------------------
 * Entry points.
 */
enum tf_rc tf_pq_write_opts(const struct tf_pq_column *cols, size_t ncols, size_t nrows,
                            const struct tf_pq_opts *opts, struct tf_buf *out, char *err,
                            size_t errlen)
{
    struct pq pq;
    enum tf_rc rc;

    memset(&pq, 0, sizeof(pq));
    pq.cols = cols;
    pq.ncols = ncols;
    pq.nrows = nrows;
    pq.out = out;
    pq.base = out->len;
    pq.err = err;
    pq.errlen = errlen;
    if (err && errlen)
        err[0] = '\0';
    if (opts)
        pq.o = *opts;
    if (!pq.o.rows_per_group)
        pq.o.rows_per_group = TF_PQ_DEFAULT_GROUP_ROWS;
    if (!pq.o.page_rows)
        pq.o.page_rows = TF_PQ_DEFAULT_PAGE_ROWS;
    if (pq.o.page_rows > (size_t)INT32_MAX / 8)
        pq.o.page_rows = (size_t)INT32_MAX / 8;
    if (!pq.o.page_bytes)
        pq.o.page_bytes = TF_PQ_DEFAULT_PAGE_BYTES;
    if (!pq.o.zstd_level)
        pq.o.zstd_level = TF_PQ_DEFAULT_ZSTD_LEVEL;
    tf_buf_init(&pq.page, INT32_MAX);
    tf_buf_init(&pq.hdr, 1u << 20);

    rc = validate(&pq);
    if (rc != TF_OK)
        goto out;
    pq.ngroups = (nrows + pq.o.rows_per_group - 1) / pq.o.rows_per_group;
    if (pq.ngroups) {
        pq.meta = calloc(pq.ngroups * ncols, sizeof(*pq.meta));
        if (!pq.meta) {
            rc = fail(&pq, TF_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
    pq.cctx = ZSTD_createCCtx();
    if (!pq.cctx) {
        rc = fail(&pq, TF_ERR_NOMEM, "out of memory");
        goto out;
    }
    rc = tf_buf_append(out, "PAR1", 4);
    if (rc != TF_OK) {
        rc = fail(&pq, rc, "output buffer: %s", tf_rc_str(rc));
        goto out;
    }
    for (size_t g = 0; g < pq.ngroups; g++) {
        size_t r0 = g * pq.o.rows_per_group;
        size_t r1 = nrows - r0 < pq.o.rows_per_group ? nrows : r0 + pq.o.rows_per_group;

        for (size_t c = 0; c < ncols; c++) {
            rc = write_chunk(&pq, c, r0, r1, &pq.meta[g * ncols + c]);
            if (rc != TF_OK) {
                if (err && errlen && !err[0])
                    fail(&pq, rc, "column \"%s\": %s", cols[c].name, tf_rc_str(rc));
                goto out;
            }
        }
    }
    rc = write_footer(&pq);
out:
    if (rc != TF_OK) {
        out->len = pq.base;
        if (out->data)
            out->data[out->len] = '\0';
    }
    ZSTD_freeCCtx(pq.cctx);
    dict_free(&pq.dict);
    free(pq.meta);
    free(pq.lv);
    free(pq.z);
    tf_buf_cleanup(&pq.page);
    tf_buf_cleanup(&pq.hdr);
    return rc;
}

enum tf_rc tf_pq_write(const struct tf_pq_column *cols, size_t ncols, size_t nrows,
                       size_t rows_per_group, struct tf_buf *out, char *err, size_t errlen)
{
    struct tf_pq_opts opts;

    memset(&opts, 0, sizeof(opts));
    opts.rows_per_group = rows_per_group;
    return tf_pq_write_opts(cols, ncols, nrows, &opts, out, err, errlen);
}
