/*
 * pq_read.c - the test-only Parquet reader behind pq_read.h: a Thrift
 * compact-protocol decoder for the footer (FileMetaData, schema, row
 * groups, column chunks, statistics) and the page headers, the
 * RLE/bit-packed hybrid, PLAIN values, dictionaries and ZSTD. It shares no
 * code with the writer it checks (services/transform/parquet.c); both
 * follow parquet-format's parquet.thrift and Encodings.md.
 *
 * Every read goes through a cursor that knows where its bytes end, so a
 * malformed file gives TF_ERR_INVALID and a reason, never a read out of
 * bounds; counts are checked against the bytes left before anything is
 * allocated for them.
 */
#include "pq_read.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

/* parquet.thrift enums and union members */
enum { PT_INT64 = 2, PT_DOUBLE = 5, PT_BYTE_ARRAY = 6 };
enum { CONV_UTF8 = 0, CONV_TIMESTAMP_MICROS = 10 };
enum { REP_REQUIRED = 0, REP_OPTIONAL = 1 };
enum { ENC_PLAIN = 0, ENC_RLE = 3, ENC_RLE_DICTIONARY = 8 };
enum { CODEC_ZSTD = 6 };
enum { PAGE_DATA = 0, PAGE_DICTIONARY = 2 };
enum { LT_STRING = 1, LT_TIMESTAMP = 8 };
enum { TU_MICROS = 2 };

/* Thrift compact protocol types */
enum {
    T_STOP = 0,
    T_TRUE = 1,
    T_FALSE = 2,
    T_BYTE = 3,
    T_I16 = 4,
    T_I32 = 5,
    T_I64 = 6,
    T_DOUBLE = 7,
    T_BINARY = 8,
    T_LIST = 9,
    T_SET = 10,
    T_MAP = 11,
    T_STRUCT = 12
};

#define MAX_COLS    4096
#define MAX_STRINGS ((size_t)512 << 20) /* bytes of strings in one column */

/* ---------------------------------------------------------------------------
 * Errors: the first one wins.
 */
struct rd {
    char *err;
    size_t errlen;
    enum tf_rc rc;
};

static int bad(struct rd *rd, const char *fmt, ...) TF_PRINTF(2, 3);

static int bad(struct rd *rd, const char *fmt, ...)
{
    va_list ap;

    if (rd->rc != TF_OK)
        return 0;
    rd->rc = TF_ERR_INVALID;
    if (rd->err && rd->errlen) {
        va_start(ap, fmt);
        vsnprintf(rd->err, rd->errlen, fmt, ap);
        va_end(ap);
    }
    return 0;
}

static int nomem(struct rd *rd)
{
    if (rd->rc == TF_OK) {
        rd->rc = TF_ERR_NOMEM;
        if (rd->err && rd->errlen)
            snprintf(rd->err, rd->errlen, "out of memory");
    }
    return 0;
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* ---------------------------------------------------------------------------
 * Thrift compact protocol: a cursor over [p, end).
 */
struct tr {
    struct rd *rd;
    const unsigned char *p, *end;
};

static size_t tr_left(const struct tr *t)
{
    return (size_t)(t->end - t->p);
}

static int tr_byte(struct tr *t, unsigned *b)
{
    *b = 0;
    if (t->p >= t->end)
        return bad(t->rd, "thrift: truncated");
    *b = *t->p++;
    return 1;
}

static int tr_varint(struct tr *t, uint64_t *v)
{
    uint64_t r = 0;

    for (int shift = 0; shift < 64; shift += 7) {
        unsigned b;

        if (!tr_byte(t, &b))
            return 0;
        if (shift == 63 && b > 1)
            return bad(t->rd, "thrift: varint past 64 bits");
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 1;
        }
    }
    return bad(t->rd, "thrift: varint past 64 bits");
}

static int tr_i64(struct tr *t, int64_t *v)
{
    uint64_t u;

    if (!tr_varint(t, &u))
        return 0;
    *v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1); /* zigzag */
    return 1;
}

static int tr_i32(struct tr *t, int32_t *v)
{
    int64_t w;

    if (!tr_i64(t, &w))
        return 0;
    if (w < INT32_MIN || w > INT32_MAX)
        return bad(t->rd, "thrift: i32 out of range: %lld", (long long)w);
    *v = (int32_t)w;
    return 1;
}

static int tr_bin(struct tr *t, const unsigned char **p, size_t *n)
{
    uint64_t len;

    if (!tr_varint(t, &len))
        return 0;
    if (len > tr_left(t))
        return bad(t->rd, "thrift: binary of %llu bytes, %zu left", (unsigned long long)len,
                   tr_left(t));
    *p = t->p;
    *n = (size_t)len;
    t->p += len;
    return 1;
}

/* The next field header of a struct whose last field id was *last: *type
   is T_STOP at the end. Ids must grow (the writer's order; it also rules
   out a field given twice). */
static int tr_field(struct tr *t, int *last, int *type, int *id)
{
    unsigned b;
    int delta;

    if (!tr_byte(t, &b))
        return 0;
    if (b == 0) {
        *type = T_STOP;
        return 1;
    }
    *type = (int)(b & 0x0f);
    delta = (int)(b >> 4);
    if (*type > T_STRUCT)
        return bad(t->rd, "thrift: field type %d", *type);
    if (delta) {
        *id = *last + delta;
    } else {
        int64_t w;

        if (!tr_i64(t, &w))
            return 0;
        if (w < INT16_MIN || w > INT16_MAX)
            return bad(t->rd, "thrift: field id %lld", (long long)w);
        *id = (int)w;
    }
    if (*id <= *last || *id > INT16_MAX)
        return bad(t->rd, "thrift: field id %d after %d", *id, *last);
    *last = *id;
    return 1;
}

/* A list or set header. Every element takes a byte at least, so n never
   passes the bytes left. */
static int tr_list(struct tr *t, int *elem, size_t *n)
{
    unsigned b;
    uint64_t len;

    if (!tr_byte(t, &b))
        return 0;
    *elem = (int)(b & 0x0f);
    len = b >> 4;
    if (len == 15) {
        if (!tr_varint(t, &len))
            return 0;
        if (len < 15)
            return bad(t->rd, "thrift: long list header for %llu elements",
                       (unsigned long long)len);
    }
    if (*elem < T_TRUE || *elem > T_STRUCT)
        return bad(t->rd, "thrift: list of type %d", *elem);
    if (len > tr_left(t))
        return bad(t->rd, "thrift: list of %llu elements, %zu bytes left", (unsigned long long)len,
                   tr_left(t));
    *n = (size_t)len;
    return 1;
}

static int tr_skip(struct tr *t, int type, int in_list, int depth);

static int tr_skip_struct(struct tr *t, int depth)
{
    int last = 0, type, id;

    if (depth > PQ_READ_MAX_DEPTH)
        return bad(t->rd, "thrift: nested deeper than %d", PQ_READ_MAX_DEPTH);
    for (;;) {
        if (!tr_field(t, &last, &type, &id))
            return 0;
        if (type == T_STOP)
            return 1;
        if (!tr_skip(t, type, 0, depth + 1))
            return 0;
    }
}

/* Skips a value of type (a list element when in_list: a bool is a byte). */
static int tr_skip(struct tr *t, int type, int in_list, int depth)
{
    const unsigned char *p;
    uint64_t v;
    unsigned b;
    size_t n;
    int elem;

    if (depth > PQ_READ_MAX_DEPTH)
        return bad(t->rd, "thrift: nested deeper than %d", PQ_READ_MAX_DEPTH);
    switch (type) {
    case T_TRUE:
    case T_FALSE:
        return in_list ? tr_byte(t, &b) : 1;
    case T_BYTE:
        return tr_byte(t, &b);
    case T_I16:
    case T_I32:
    case T_I64:
        return tr_varint(t, &v);
    case T_DOUBLE:
        if (tr_left(t) < 8)
            return bad(t->rd, "thrift: truncated double");
        t->p += 8;
        return 1;
    case T_BINARY:
        return tr_bin(t, &p, &n);
    case T_LIST:
    case T_SET:
        if (!tr_list(t, &elem, &n))
            return 0;
        for (size_t k = 0; k < n; k++) {
            if (!tr_skip(t, elem, 1, depth + 1))
                return 0;
        }
        return 1;
    case T_MAP:
        if (!tr_varint(t, &v))
            return 0;
        if (v == 0)
            return 1;
        if (v > tr_left(t) / 2)
            return bad(t->rd, "thrift: map of %llu entries", (unsigned long long)v);
        if (!tr_byte(t, &b))
            return 0;
        for (uint64_t k = 0; k < v; k++) {
            if (!tr_skip(t, (int)(b >> 4), 1, depth + 1) ||
                !tr_skip(t, (int)(b & 0x0f), 1, depth + 1))
                return 0;
        }
        return 1;
    case T_STRUCT:
        return tr_skip_struct(t, depth);
    default:
        return bad(t->rd, "thrift: type %d", type);
    }
}

/* Checks a field's type; T_TRUE stands for either bool. */
static int want(struct tr *t, int type, int expect, const char *what)
{
    if (type == expect || (expect == T_TRUE && type == T_FALSE))
        return 1;
    return bad(t->rd, "%s: thrift type %d, want %d", what, type, expect);
}

/* An empty struct (StringType, MicroSeconds, TypeDefinedOrder). */
static int tr_empty(struct tr *t, const char *what)
{
    int last = 0, type, id;

    if (!tr_field(t, &last, &type, &id))
        return 0;
    if (type != T_STOP)
        return bad(t->rd, "%s: field %d in an empty struct", what, id);
    return 1;
}

/* The fields a struct must have, as a mask of their ids. */
static int need(struct tr *t, uint32_t seen, uint32_t required, const char *what)
{
    for (int id = 0; id < 32; id++) {
        if ((required >> id & 1) && !(seen >> id & 1))
            return bad(t->rd, "%s: required field %d missing", what, id);
    }
    return 1;
}

#define BIT(id) ((uint32_t)1 << (id))

/* ---------------------------------------------------------------------------
 * Footer structs.
 */
struct sch {
    uint32_t seen; /* field ids present */
    int32_t type, rep, num_children, converted;
    const unsigned char *name;
    size_t name_len;
    int logical; /* LogicalType member id, 0: none */
    int ts_utc;  /* TimestampType.isAdjustedToUTC */
    int ts_unit; /* TimeUnit member id */
};

static int parse_timestamp(struct tr *t, struct sch *s)
{
    int last = 0, type, id;
    uint32_t seen = 0;

    for (;;) {
        if (!tr_field(t, &last, &type, &id))
            return 0;
        if (type == T_STOP)
            break;
        if (id < 32)
            seen |= BIT(id);
        if (id == 1) {
            if (!want(t, type, T_TRUE, "TimestampType.isAdjustedToUTC"))
                return 0;
            s->ts_utc = type == T_TRUE;
        } else if (id == 2) {
            int ulast = 0, utype, uid, n = 0;

            if (!want(t, type, T_STRUCT, "TimestampType.unit"))
                return 0;
            for (;;) { /* union TimeUnit: one empty member */
                if (!tr_field(t, &ulast, &utype, &uid))
                    return 0;
                if (utype == T_STOP)
                    break;
                if (!want(t, utype, T_STRUCT, "TimeUnit") || !tr_empty(t, "TimeUnit"))
                    return 0;
                s->ts_unit = uid;
                n++;
            }
            if (n != 1)
                return bad(t->rd, "TimeUnit: %d members set", n);
        } else if (!tr_skip(t, type, 0, 4)) {
            return 0;
        }
    }
    return need(t, seen, BIT(1) | BIT(2), "TimestampType");
}

static int parse_logical(struct tr *t, struct sch *s)
{
    int last = 0, type, id, n = 0;

    for (;;) {
        if (!tr_field(t, &last, &type, &id))
            return 0;
        if (type == T_STOP)
            break;
        n++;
        if (!want(t, type, T_STRUCT, "LogicalType"))
            return 0;
        s->logical = id;
        if (id == LT_STRING) {
            if (!tr_empty(t, "StringType"))
                return 0;
        } else if (id == LT_TIMESTAMP) {
            if (!parse_timestamp(t, s))
                return 0;
        } else if (!tr_skip(t, type, 0, 3)) {
            return 0;
        }
    }
    if (n != 1)
        return bad(t->rd, "LogicalType: %d members set", n);
    return 1;
}

static int parse_schema_elem(struct tr *t, struct sch *s)
{
    int last = 0, type, id;

    memset(s, 0, sizeof(*s));
    for (;;) {
        int32_t *dst = NULL;

        if (!tr_field(t, &last, &type, &id))
            return 0;
        if (type == T_STOP)
            break;
        if (id < 32)
            s->seen |= BIT(id);
        switch (id) {
        case 1:
            dst = &s->type;
            break;
        case 3:
            dst = &s->rep;
            break;
        case 5:
            dst = &s->num_children;
            break;
        case 6:
            dst = &s->converted;
            break;
        case 4:
            if (!want(t, type, T_BINARY, "SchemaElement.name") ||
                !tr_bin(t, &s->name, &s->name_len))
                return 0;
            continue;
        case 10:
            if (!want(t, type, T_STRUCT, "SchemaElement.logicalType") || !parse_logical(t, s))
                return 0;
            continue;
        default:
            /* type_length, scale, precision, field_id: refused below */
            if (!tr_skip(t, type, 0, 2))
                return 0;
            continue;
        }
        if (!want(t, type, T_I32, "SchemaElement") || !tr_i32(t, dst))
            return 0;
    }
    if (s->seen & (BIT(2) | BIT(7) | BIT(8) | BIT(9)))
        return bad(t->rd, "schema: type_length, scale, precision or field_id (not written by us)");
    return need(t, s->seen, BIT(4), "SchemaElement");
}

/* Builds f->cols from the schema: a root and flat leaves of the types the
   writer maps its columns to. */
static int build_columns(struct tr *t, struct pq_read_file *f, const struct sch *s, size_t n)
{
    if (n < 1)
        return bad(t->rd, "schema: empty");
    if (s[0].seen & BIT(1))
        return bad(t->rd, "schema: the root has a type");
    if (!(s[0].seen & BIT(5)) || s[0].num_children < 0 || (size_t)s[0].num_children != n - 1)
        return bad(t->rd, "schema: root has %d children, %zu elements follow",
                   (s[0].seen & BIT(5)) ? (int)s[0].num_children : -1, n - 1);
    if ((s[0].seen & BIT(3)) && s[0].rep != REP_REQUIRED)
        return bad(t->rd, "schema: root repetition %d", (int)s[0].rep);
    if (n - 1 > MAX_COLS)
        return bad(t->rd, "schema: %zu columns", n - 1);
    f->cols = calloc(n - 1 ? n - 1 : 1, sizeof(*f->cols));
    if (!f->cols)
        return nomem(t->rd);
    f->ncols = n - 1;
    for (size_t c = 0; c < f->ncols; c++) {
        const struct sch *e = &s[c + 1];
        struct pq_read_col *col = &f->cols[c];
        int conv = (e->seen & BIT(6)) ? (int)e->converted : -1;

        if (!(e->seen & BIT(1)))
            return bad(t->rd, "schema: column %zu has no type (nested?)", c);
        if ((e->seen & BIT(5)) && e->num_children != 0)
            return bad(t->rd, "schema: column %zu has children", c);
        if (!(e->seen & BIT(3)) || (e->rep != REP_REQUIRED && e->rep != REP_OPTIONAL))
            return bad(t->rd, "schema: column %zu repetition %d", c,
                       (e->seen & BIT(3)) ? (int)e->rep : -1);
        if (e->name_len == 0 || memchr(e->name, '\0', e->name_len))
            return bad(t->rd, "schema: column %zu name empty or with a NUL", c);
        for (size_t k = 0; k < c; k++) {
            if (strlen(f->cols[k].name) == e->name_len &&
                memcmp(f->cols[k].name, e->name, e->name_len) == 0)
                return bad(t->rd, "schema: column %zu repeats name \"%s\"", c, f->cols[k].name);
        }
        col->name = malloc(e->name_len + 1);
        if (!col->name)
            return nomem(t->rd);
        memcpy(col->name, e->name, e->name_len);
        col->name[e->name_len] = '\0';
        col->optional = e->rep == REP_OPTIONAL;
        if (e->type == PT_BYTE_ARRAY && conv == CONV_UTF8 && e->logical == LT_STRING)
            col->type = TF_PQ_STRING;
        else if (e->type == PT_DOUBLE && conv < 0 && e->logical == 0)
            col->type = TF_PQ_DOUBLE;
        else if (e->type == PT_INT64 && conv < 0 && e->logical == 0)
            col->type = TF_PQ_INT64;
        else if (e->type == PT_INT64 && conv == CONV_TIMESTAMP_MICROS &&
                 e->logical == LT_TIMESTAMP && e->ts_utc && e->ts_unit == TU_MICROS)
            col->type = TF_PQ_TIMESTAMP_US;
        else
            return bad(t->rd,
                       "schema: column \"%s\": physical %d, converted %d, logical %d "
                       "(utc %d, unit %d) is no type we write",
                       col->name, (int)e->type, conv, e->logical, e->ts_utc, e->ts_unit);
    }
    return 1;
}

static int physical_of(enum tf_pq_type type)
{
    return type == TF_PQ_STRING ? PT_BYTE_ARRAY : type == TF_PQ_DOUBLE ? PT_DOUBLE : PT_INT64;
}

static int parse_stats(struct tr *t, struct pq_read_stats *st)
{
    int last = 0, type, id;

    st->min_exact = st->max_exact = -1;
    for (;;) {
        if (!tr_field(t, &last, &type, &id))
            return 0;
        if (type == T_STOP)
            return 1;
        switch (id) {
        case 3:
            if (!want(t, type, T_I64, "Statistics.null_count") || !tr_i64(t, &st->null_count))
                return 0;
            st->has_null_count = 1;
            break;
        case 5:
            if (!want(t, type, T_BINARY, "Statistics.max_value") ||
                !tr_bin(t, &st->max, &st->max_len))
                return 0;
            st->has_max = 1;
            break;
        case 6:
            if (!want(t, type, T_BINARY, "Statistics.min_value") ||
                !tr_bin(t, &st->min, &st->min_len))
                return 0;
            st->has_min = 1;
            break;
        case 7:
            if (!want(t, type, T_TRUE, "Statistics.is_max_value_exact"))
                return 0;
            st->max_exact = type == T_TRUE;
            break;
        case 8:
            if (!want(t, type, T_TRUE, "Statistics.is_min_value_exact"))
                return 0;
            st->min_exact = type == T_TRUE;
            break;
        default:
            /* the deprecated min/max (1, 2) and distinct_count: not ours */
            return bad(t->rd, "Statistics: field %d (not written by us)", id);
        }
    }
}

static int parse_enc_stats(struct tr *t, struct pq_read_chunk *ch)
{
    int elem;
    size_t n;

    if (!tr_list(t, &elem, &n))
        return 0;
    if (elem != T_STRUCT || n > TF_ARRAY_LEN(ch->enc_stats))
        return bad(t->rd, "encoding_stats: %zu elements of type %d", n, elem);
    for (size_t k = 0; k < n; k++) {
        int last = 0, type, id;
        uint32_t seen = 0;
        int32_t v[3] = {0, 0, 0};

        for (;;) {
            if (!tr_field(t, &last, &type, &id))
                return 0;
            if (type == T_STOP)
                break;
            if (id < 1 || id > 3)
                return bad(t->rd, "PageEncodingStats: field %d", id);
            seen |= BIT(id);
            if (!want(t, type, T_I32, "PageEncodingStats") || !tr_i32(t, &v[id - 1]))
                return 0;
        }
        if (!need(t, seen, BIT(1) | BIT(2) | BIT(3), "PageEncodingStats"))
            return 0;
        ch->enc_stats[k].page_type = v[0];
        ch->enc_stats[k].encoding = v[1];
        ch->enc_stats[k].count = v[2];
    }
    ch->nenc_stats = n;
    return 1;
}

static int parse_column_meta(struct tr *t, const struct pq_read_col *col, struct pq_read_chunk *ch)
{
    int last = 0, type, id, elem;
    uint32_t seen = 0;
    size_t n;
    int32_t v32;

    for (;;) {
        if (!tr_field(t, &last, &type, &id))
            return 0;
        if (type == T_STOP)
            break;
        if (id < 32)
            seen |= BIT(id);
        switch (id) {
        case 1:
            if (!want(t, type, T_I32, "ColumnMetaData.type") || !tr_i32(t, &v32))
                return 0;
            if (v32 != physical_of(col->type))
                return bad(t->rd, "column \"%s\": chunk type %d, schema's %d", col->name, (int)v32,
                           physical_of(col->type));
            break;
        case 2:
            if (!want(t, type, T_LIST, "ColumnMetaData.encodings") || !tr_list(t, &elem, &n))
                return 0;
            if (elem != T_I32)
                return bad(t->rd, "encodings: list of type %d", elem);
            for (size_t k = 0; k < n; k++) {
                if (!tr_i32(t, &v32))
                    return 0;
                if (v32 != ENC_PLAIN && v32 != ENC_RLE && v32 != ENC_RLE_DICTIONARY)
                    return bad(t->rd, "column \"%s\": encoding %d", col->name, (int)v32);
                if (ch->encodings & (1u << v32))
                    return bad(t->rd, "column \"%s\": encoding %d listed twice", col->name,
                               (int)v32);
                ch->encodings |= 1u << v32;
            }
            break;
        case 3: {
            const unsigned char *p;
            size_t len;

            if (!want(t, type, T_LIST, "ColumnMetaData.path_in_schema") || !tr_list(t, &elem, &n))
                return 0;
            if (elem != T_BINARY || n != 1)
                return bad(t->rd, "column \"%s\": path_in_schema of %zu elements", col->name, n);
            if (!tr_bin(t, &p, &len))
                return 0;
            if (len != strlen(col->name) || memcmp(p, col->name, len) != 0)
                return bad(t->rd, "column \"%s\": path_in_schema \"%.*s\"", col->name,
                           (int)(len > 64 ? 64 : len), (const char *)p);
            break;
        }
        case 4:
            if (!want(t, type, T_I32, "ColumnMetaData.codec") || !tr_i32(t, &v32))
                return 0;
            if (v32 != CODEC_ZSTD)
                return bad(t->rd, "column \"%s\": codec %d, not ZSTD", col->name, (int)v32);
            break;
        case 5:
            if (!want(t, type, T_I64, "num_values") || !tr_i64(t, &ch->num_values))
                return 0;
            break;
        case 6:
            if (!want(t, type, T_I64, "total_uncompressed_size") || !tr_i64(t, &ch->uncompressed))
                return 0;
            break;
        case 7:
            if (!want(t, type, T_I64, "total_compressed_size") || !tr_i64(t, &ch->compressed))
                return 0;
            break;
        case 9:
            if (!want(t, type, T_I64, "data_page_offset") || !tr_i64(t, &ch->data_offset))
                return 0;
            break;
        case 11:
            if (!want(t, type, T_I64, "dictionary_page_offset") || !tr_i64(t, &ch->dict_offset))
                return 0;
            if (ch->dict_offset < 0)
                return bad(t->rd, "column \"%s\": dictionary_page_offset %lld", col->name,
                           (long long)ch->dict_offset);
            break;
        case 12:
            if (!want(t, type, T_STRUCT, "ColumnMetaData.statistics") ||
                !parse_stats(t, &ch->stats))
                return 0;
            break;
        case 13:
            if (!want(t, type, T_LIST, "ColumnMetaData.encoding_stats") || !parse_enc_stats(t, ch))
                return 0;
            break;
        default:
            /* key_value_metadata, index_page_offset, bloom filters, ... */
            return bad(t->rd, "column \"%s\": ColumnMetaData field %d (not written by us)",
                       col->name, id);
        }
    }
    return need(t, seen, BIT(1) | BIT(2) | BIT(3) | BIT(4) | BIT(5) | BIT(6) | BIT(7) | BIT(9),
                "ColumnMetaData");
}

static int parse_column_chunk(struct tr *t, const struct pq_read_col *col, struct pq_read_chunk *ch)
{
    int last = 0, type, id;
    uint32_t seen = 0;

    ch->dict_offset = -1;
    for (;;) {
        if (!tr_field(t, &last, &type, &id))
            return 0;
        if (type == T_STOP)
            break;
        if (id < 32)
            seen |= BIT(id);
        if (id == 2) {
            if (!want(t, type, T_I64, "ColumnChunk.file_offset") || !tr_i64(t, &ch->file_offset))
                return 0;
        } else if (id == 3) {
            if (!want(t, type, T_STRUCT, "ColumnChunk.meta_data") || !parse_column_meta(t, col, ch))
                return 0;
        } else {
            /* file_path (another file), offset and column indexes, crypto */
            return bad(t->rd, "column \"%s\": ColumnChunk field %d (not written by us)", col->name,
                       id);
        }
    }
    return need(t, seen, BIT(2) | BIT(3), "ColumnChunk");
}

static int parse_row_group(struct tr *t, struct pq_read_file *f, struct pq_read_group *g)
{
    int last = 0, type, id, elem;
    uint32_t seen = 0;
    size_t n;
    int32_t v32;

    g->total_compressed_size = -1;
    g->file_offset = -1;
    g->ordinal = -1;
    for (;;) {
        if (!tr_field(t, &last, &type, &id))
            return 0;
        if (type == T_STOP)
            break;
        if (id < 32)
            seen |= BIT(id);
        switch (id) {
        case 1:
            if (!want(t, type, T_LIST, "RowGroup.columns") || !tr_list(t, &elem, &n))
                return 0;
            if (elem != T_STRUCT || n != f->ncols)
                return bad(t->rd, "row group: %zu column chunks for %zu columns", n, f->ncols);
            g->chunks = calloc(n ? n : 1, sizeof(*g->chunks));
            if (!g->chunks)
                return nomem(t->rd);
            for (size_t c = 0; c < n; c++) {
                if (!parse_column_chunk(t, &f->cols[c], &g->chunks[c]))
                    return 0;
            }
            break;
        case 2:
            if (!want(t, type, T_I64, "RowGroup.total_byte_size") ||
                !tr_i64(t, &g->total_byte_size))
                return 0;
            break;
        case 3:
            if (!want(t, type, T_I64, "RowGroup.num_rows") || !tr_i64(t, &g->num_rows))
                return 0;
            break;
        case 5:
            if (!want(t, type, T_I64, "RowGroup.file_offset") || !tr_i64(t, &g->file_offset))
                return 0;
            break;
        case 6:
            if (!want(t, type, T_I64, "RowGroup.total_compressed_size") ||
                !tr_i64(t, &g->total_compressed_size))
                return 0;
            break;
        case 7:
            if (!want(t, type, T_I16, "RowGroup.ordinal") || !tr_i32(t, &v32))
                return 0;
            if (v32 < 0 || v32 > INT16_MAX)
                return bad(t->rd, "RowGroup.ordinal %d", (int)v32);
            g->ordinal = (int)v32;
            break;
        default:
            return bad(t->rd, "RowGroup field %d (not written by us)", id);
        }
    }
    return need(t, seen, BIT(1) | BIT(2) | BIT(3), "RowGroup");
}

static int parse_kv(struct tr *t, struct pq_read_kv *kv)
{
    int last = 0, type, id;
    uint32_t seen = 0;

    for (;;) {
        const unsigned char *p;
        size_t len;
        char *s;

        if (!tr_field(t, &last, &type, &id))
            return 0;
        if (type == T_STOP)
            break;
        if (id != 1 && id != 2)
            return bad(t->rd, "KeyValue field %d", id);
        seen |= BIT(id);
        if (!want(t, type, T_BINARY, "KeyValue") || !tr_bin(t, &p, &len))
            return 0;
        s = malloc(len + 1);
        if (!s)
            return nomem(t->rd);
        memcpy(s, p, len);
        s[len] = '\0';
        if (id == 1)
            kv->key = s;
        else
            kv->value = s;
    }
    return need(t, seen, BIT(1), "KeyValue");
}

static int parse_footer(struct tr *t, struct pq_read_file *f)
{
    int last = 0, type, id, elem;
    uint32_t seen = 0;
    struct sch *s = NULL;
    size_t n;
    int ok = 0;

    for (;;) {
        if (!tr_field(t, &last, &type, &id))
            goto out;
        if (type == T_STOP)
            break;
        if (id < 32)
            seen |= BIT(id);
        switch (id) {
        case 1:
            if (!want(t, type, T_I32, "FileMetaData.version") || !tr_i32(t, &f->version))
                goto out;
            break;
        case 2:
            if (!want(t, type, T_LIST, "FileMetaData.schema") || !tr_list(t, &elem, &n))
                goto out;
            if (elem != T_STRUCT) {
                bad(t->rd, "schema: list of type %d", elem);
                goto out;
            }
            s = calloc(n ? n : 1, sizeof(*s));
            if (!s) {
                nomem(t->rd);
                goto out;
            }
            for (size_t k = 0; k < n; k++) {
                if (!parse_schema_elem(t, &s[k]))
                    goto out;
            }
            if (!build_columns(t, f, s, n))
                goto out;
            break;
        case 3:
            if (!want(t, type, T_I64, "FileMetaData.num_rows") || !tr_i64(t, &f->num_rows))
                goto out;
            break;
        case 4:
            if (!want(t, type, T_LIST, "FileMetaData.row_groups") || !tr_list(t, &elem, &n))
                goto out;
            if (elem != T_STRUCT || !(seen & BIT(2))) {
                bad(t->rd, "row_groups: list of type %d, or before the schema", elem);
                goto out;
            }
            f->groups = calloc(n ? n : 1, sizeof(*f->groups));
            if (!f->groups) {
                nomem(t->rd);
                goto out;
            }
            for (size_t g = 0; g < n; g++) {
                f->ngroups = g + 1; /* so cleanup frees what was made */
                if (!parse_row_group(t, f, &f->groups[g]))
                    goto out;
            }
            f->ngroups = n;
            break;
        case 5:
            if (!want(t, type, T_LIST, "FileMetaData.key_value_metadata") || !tr_list(t, &elem, &n))
                goto out;
            if (elem != T_STRUCT) {
                bad(t->rd, "key_value_metadata: list of type %d", elem);
                goto out;
            }
            f->kv = calloc(n ? n : 1, sizeof(*f->kv));
            if (!f->kv) {
                nomem(t->rd);
                goto out;
            }
            for (size_t k = 0; k < n; k++) {
                f->nkv = k + 1;
                if (!parse_kv(t, &f->kv[k]))
                    goto out;
            }
            f->nkv = n;
            break;
        case 6: {
            const unsigned char *p;
            size_t len;

            if (!want(t, type, T_BINARY, "FileMetaData.created_by") || !tr_bin(t, &p, &len))
                goto out;
            f->created_by = malloc(len + 1);
            if (!f->created_by) {
                nomem(t->rd);
                goto out;
            }
            memcpy(f->created_by, p, len);
            f->created_by[len] = '\0';
            break;
        }
        case 7:
            if (!want(t, type, T_LIST, "FileMetaData.column_orders") || !tr_list(t, &elem, &n))
                goto out;
            if (elem != T_STRUCT) {
                bad(t->rd, "column_orders: list of type %d", elem);
                goto out;
            }
            for (size_t k = 0; k < n; k++) {
                int olast = 0, otype, oid;

                /* union ColumnOrder: TYPE_ORDER (1), an empty struct */
                if (!tr_field(t, &olast, &otype, &oid))
                    goto out;
                if (oid != 1 || otype != T_STRUCT) {
                    bad(t->rd, "column_orders[%zu]: member %d of type %d", k, oid, otype);
                    goto out;
                }
                if (!tr_empty(t, "TypeDefinedOrder") || !tr_empty(t, "ColumnOrder"))
                    goto out;
            }
            f->ncolumn_orders = n;
            break;
        default:
            bad(t->rd, "FileMetaData field %d (not written by us)", id);
            goto out;
        }
    }
    if (!need(t, seen, BIT(1) | BIT(2) | BIT(3) | BIT(4), "FileMetaData"))
        goto out;
    ok = 1;
out:
    free(s);
    return ok;
}

/* ---------------------------------------------------------------------------
 * Pages.
 */
struct page_hdr {
    int32_t type, usize, csize;
    int32_t num_values, encoding, def_enc, rep_enc; /* data or dictionary page header */
    int has_data, has_dict;
};

static int parse_page_inner(struct tr *t, struct page_hdr *h, int dict)
{
    int last = 0, type, id;
    uint32_t seen = 0;
    const char *what = dict ? "DictionaryPageHeader" : "DataPageHeader";

    for (;;) {
        int32_t *dst;

        if (!tr_field(t, &last, &type, &id))
            return 0;
        if (type == T_STOP)
            break;
        if (id < 32)
            seen |= BIT(id);
        switch (id) {
        case 1:
            dst = &h->num_values;
            break;
        case 2:
            dst = &h->encoding;
            break;
        case 3:
            dst = &h->def_enc;
            break;
        case 4:
            dst = &h->rep_enc;
            break;
        default:
            dst = NULL;
            break;
        }
        if (!dst || (dict && id > 2)) /* is_sorted, page statistics: not ours */
            return bad(t->rd, "%s field %d (not written by us)", what, id);
        if (!want(t, type, T_I32, what) || !tr_i32(t, dst))
            return 0;
    }
    return need(t, seen, dict ? BIT(1) | BIT(2) : BIT(1) | BIT(2) | BIT(3) | BIT(4), what);
}

static int parse_page_header(struct tr *t, struct page_hdr *h)
{
    int last = 0, type, id;
    uint32_t seen = 0;

    memset(h, 0, sizeof(*h));
    for (;;) {
        if (!tr_field(t, &last, &type, &id))
            return 0;
        if (type == T_STOP)
            break;
        if (id < 32)
            seen |= BIT(id);
        if (id >= 1 && id <= 3) {
            int32_t *dst = id == 1 ? &h->type : id == 2 ? &h->usize : &h->csize;

            if (!want(t, type, T_I32, "PageHeader") || !tr_i32(t, dst))
                return 0;
        } else if (id == 5 || id == 7) {
            if (!want(t, type, T_STRUCT, "PageHeader") || !parse_page_inner(t, h, id == 7))
                return 0;
            if (id == 5)
                h->has_data = 1;
            else
                h->has_dict = 1;
        } else {
            /* crc, index pages, data pages v2 */
            return bad(t->rd, "PageHeader field %d (not written by us)", id);
        }
    }
    if (!need(t, seen, BIT(1) | BIT(2) | BIT(3), "PageHeader"))
        return 0;
    if (h->usize < 0 || h->csize < 0 || (uint32_t)h->usize > PQ_READ_MAX_PAGE)
        return bad(t->rd, "page sizes %d / %d", (int)h->usize, (int)h->csize);
    if (!(h->type == PAGE_DATA && h->has_data && !h->has_dict) &&
        !(h->type == PAGE_DICTIONARY && h->has_dict && !h->has_data))
        return bad(t->rd, "page type %d with data header %d, dictionary header %d", (int)h->type,
                   h->has_data, h->has_dict);
    if (h->num_values < 0)
        return bad(t->rd, "page of %d values", (int)h->num_values);
    return 1;
}

/* Decodes n values of width bits (0..32) of the RLE/bit-packed hybrid from
   [p, end) into out. The runs must cover n exactly (a literal run may pad
   its last group of 8 with zeros) and end at end. */
static int hybrid(struct rd *rd, const unsigned char *p, const unsigned char *end, int width,
                  uint32_t *out, size_t n, const char *what)
{
    struct tr t = {rd, p, end};
    size_t got = 0;
    size_t vbytes = ((size_t)width + 7) / 8;
    uint64_t mask = width == 32 ? 0xffffffffu : ((uint64_t)1 << width) - 1;

    while (got < n) {
        uint64_t h;

        if (!tr_varint(&t, &h))
            return bad(rd, "%s: truncated run header", what);
        if (h > UINT32_MAX)
            return bad(rd, "%s: run header %llu", what, (unsigned long long)h);
        if (h & 1) {
            size_t count = (size_t)(h >> 1) * 8;
            size_t bytes = (size_t)(h >> 1) * (size_t)width;
            uint64_t acc = 0;
            int nbits = 0;

            if (count == 0)
                return bad(rd, "%s: empty literal run", what);
            if (count > n - got && count - (n - got) >= 8)
                return bad(rd, "%s: literal run of %zu values, %zu to go", what, count, n - got);
            if (bytes > tr_left(&t))
                return bad(rd, "%s: literal run of %zu bytes, %zu left", what, bytes, tr_left(&t));
            for (size_t k = 0; k < count; k++) {
                uint32_t v;

                while (nbits < width) {
                    acc |= (uint64_t)*t.p++ << nbits;
                    nbits += 8;
                }
                v = (uint32_t)(acc & mask);
                acc = width == 32 ? acc >> 32 : acc >> width;
                nbits -= width;
                if (got < n)
                    out[got++] = v;
                else if (v != 0)
                    return bad(rd, "%s: padding value %u", what, (unsigned)v);
            }
        } else {
            size_t count = (size_t)(h >> 1);
            uint32_t v = 0;

            if (count == 0 || count > n - got)
                return bad(rd, "%s: repeated run of %zu values, %zu to go", what, count, n - got);
            if (vbytes > tr_left(&t))
                return bad(rd, "%s: truncated run value", what);
            for (size_t k = 0; k < vbytes; k++)
                v |= (uint32_t)t.p[k] << (8 * k);
            t.p += vbytes;
            if ((uint64_t)v > mask)
                return bad(rd, "%s: run value %u wider than %d bits", what, (unsigned)v, width);
            for (size_t k = 0; k < count; k++)
                out[got++] = v;
        }
    }
    if (t.p != end)
        return bad(rd, "%s: %zu bytes after the last run", what, tr_left(&t));
    return 1;
}

struct entry {
    const unsigned char *p;
    size_t n;
};

/* State while one column is decoded. */
struct ctx {
    struct rd *rd;
    const unsigned char *file;
    struct pq_read_file *f;
    struct pq_read_col *col;
    ZSTD_DCtx *dctx;
    unsigned char *page, *dpage; /* a decompressed data page; the dictionary page */
    size_t page_cap, dpage_cap;
    uint32_t *lv, *idx; /* levels, dictionary indices */
    size_t lv_cap, idx_cap;
    struct entry *dict;
    size_t ndict, dict_cap;
    size_t *off; /* strings: offset of each row's copy in the arena */
    size_t arena_len, arena_cap;
};

static int grow(struct ctx *x, void **p, size_t *cap, size_t n, size_t size)
{
    void *q;

    if (n <= *cap)
        return 1;
    q = realloc(*p, n * size);
    if (!q)
        return nomem(x->rd);
    *p = q;
    *cap = n;
    return 1;
}

/* Decompresses a page's ZSTD frame (exactly one, of the size the header
   gives) into *buf. */
static int inflate_page(struct ctx *x, const struct page_hdr *h, const unsigned char *body,
                        unsigned char **buf, size_t *cap)
{
    size_t usize = (size_t)h->usize;
    size_t got;

    if (ZSTD_getFrameContentSize(body, (size_t)h->csize) != (unsigned long long)usize)
        return bad(x->rd, "column \"%s\": page frame's content size is not the header's %zu",
                   x->col->name, usize);
    if (ZSTD_findFrameCompressedSize(body, (size_t)h->csize) != (size_t)h->csize)
        return bad(x->rd, "column \"%s\": page is not one ZSTD frame of %d bytes", x->col->name,
                   (int)h->csize);
    if (!grow(x, (void **)buf, cap, usize ? usize : 1, 1))
        return 0;
    got = ZSTD_decompressDCtx(x->dctx, *buf, usize, body, (size_t)h->csize);
    if (ZSTD_isError(got))
        return bad(x->rd, "column \"%s\": zstd: %s", x->col->name, ZSTD_getErrorName(got));
    if (got != usize)
        return bad(x->rd, "column \"%s\": page of %zu bytes, header says %zu", x->col->name, got,
                   usize);
    return 1;
}

/* The next PLAIN value in [*p, end): 8 bytes, or a 4-byte length and bytes. */
static int plain_value(struct ctx *x, const unsigned char **p, const unsigned char *end,
                       struct entry *e)
{
    size_t left = (size_t)(end - *p);

    if (x->col->type != TF_PQ_STRING) {
        if (left < 8)
            return bad(x->rd, "column \"%s\": truncated PLAIN value", x->col->name);
        e->p = *p;
        e->n = 8;
        *p += 8;
        return 1;
    }
    if (left < 4 || le32(*p) > left - 4)
        return bad(x->rd, "column \"%s\": truncated PLAIN string", x->col->name);
    e->n = le32(*p);
    e->p = *p + 4;
    *p += 4 + e->n;
    return 1;
}

static int store(struct ctx *x, size_t row, const struct entry *e)
{
    struct pq_read_col *col = x->col;
    uint64_t bits;

    col->present[row] = 1;
    if (col->type != TF_PQ_STRING) {
        bits = le64(e->p);
        if (col->type == TF_PQ_DOUBLE)
            memcpy(&col->f64[row], &bits, 8);
        else
            memcpy(&col->i64[row], &bits, 8);
        return 1;
    }
    if (e->n >= MAX_STRINGS - x->arena_len)
        return bad(x->rd, "column \"%s\": more than %zu bytes of strings", col->name, MAX_STRINGS);
    if (x->arena_len + e->n + 1 > x->arena_cap) {
        size_t cap = x->arena_cap ? x->arena_cap : 4096;

        while (cap < x->arena_len + e->n + 1)
            cap *= 2;
        if (!grow(x, (void **)&col->arena, &x->arena_cap, cap, 1))
            return 0;
    }
    memcpy(col->arena + x->arena_len, e->p, e->n);
    col->arena[x->arena_len + e->n] = '\0';
    x->off[row] = x->arena_len;
    col->str_len[row] = e->n;
    x->arena_len += e->n + 1;
    return 1;
}

static int read_dict_page(struct ctx *x, const struct page_hdr *h)
{
    const unsigned char *p = x->dpage, *end = x->dpage + h->usize;
    size_t n = (size_t)h->num_values;

    if (h->encoding != ENC_PLAIN)
        return bad(x->rd, "column \"%s\": dictionary encoding %d", x->col->name, (int)h->encoding);
    if (n > (size_t)h->usize / 4)
        return bad(x->rd, "column \"%s\": %zu dictionary entries in %d bytes", x->col->name, n,
                   (int)h->usize);
    if (!grow(x, (void **)&x->dict, &x->dict_cap, n ? n : 1, sizeof(*x->dict)))
        return 0;
    for (size_t k = 0; k < n; k++) {
        if (!plain_value(x, &p, end, &x->dict[k]))
            return 0;
    }
    if (p != end)
        return bad(x->rd, "column \"%s\": %zu bytes after the dictionary", x->col->name,
                   (size_t)(end - p));
    x->ndict = n;
    return 1;
}

/* Decodes one data page of n rows into rows [row, row + n). */
static int read_data_page(struct ctx *x, const struct page_hdr *h, size_t row, int64_t *nulls)
{
    const unsigned char *p = x->page, *end = x->page + h->usize;
    size_t n = (size_t)h->num_values;
    size_t nv = n;

    if (h->def_enc != ENC_RLE || h->rep_enc != ENC_RLE)
        return bad(x->rd, "column \"%s\": level encodings %d / %d", x->col->name, (int)h->def_enc,
                   (int)h->rep_enc);
    if (x->col->optional) {
        uint32_t len;

        if (end - p < 4)
            return bad(x->rd, "column \"%s\": no definition levels", x->col->name);
        len = le32(p);
        p += 4;
        if (len > (size_t)(end - p))
            return bad(x->rd, "column \"%s\": definition levels of %u bytes, %zu left",
                       x->col->name, (unsigned)len, (size_t)(end - p));
        if (!grow(x, (void **)&x->lv, &x->lv_cap, n ? n : 1, sizeof(*x->lv)) ||
            !hybrid(x->rd, p, p + len, 1, x->lv, n, "definition levels"))
            return 0;
        p += len;
        nv = 0;
        for (size_t k = 0; k < n; k++)
            nv += x->lv[k];
        *nulls += (int64_t)(n - nv);
    }
    if (h->encoding == ENC_RLE_DICTIONARY) {
        int width;
        size_t v = 0;

        if (!x->dict)
            return bad(x->rd, "column \"%s\": dictionary indices without a dictionary",
                       x->col->name);
        if (p >= end || *p > 32)
            return bad(x->rd, "column \"%s\": dictionary index width", x->col->name);
        width = *p++;
        if (!grow(x, (void **)&x->idx, &x->idx_cap, nv ? nv : 1, sizeof(*x->idx)) ||
            !hybrid(x->rd, p, end, width, x->idx, nv, "dictionary indices"))
            return 0;
        for (size_t k = 0; k < n; k++) {
            if (x->col->optional && !x->lv[k])
                continue;
            if (x->idx[v] >= x->ndict)
                return bad(x->rd, "column \"%s\": dictionary index %u of %zu", x->col->name,
                           (unsigned)x->idx[v], x->ndict);
            if (!store(x, row + k, &x->dict[x->idx[v++]]))
                return 0;
        }
        return 1;
    }
    if (h->encoding != ENC_PLAIN)
        return bad(x->rd, "column \"%s\": data page encoding %d", x->col->name, (int)h->encoding);
    for (size_t k = 0; k < n; k++) {
        struct entry e;

        if (x->col->optional && !x->lv[k])
            continue;
        if (!plain_value(x, &p, end, &e) || !store(x, row + k, &e))
            return 0;
    }
    if (p != end)
        return bad(x->rd, "column \"%s\": %zu bytes after the values", x->col->name,
                   (size_t)(end - p));
    return 1;
}

/* The encodings a chunk's pages used, as ColumnMetaData lists them. */
static unsigned used_encodings(const struct pq_read_col *col, const struct pq_read_chunk *ch)
{
    unsigned m = 1u << ENC_PLAIN; /* data pages, or the dictionary page */

    if (col->optional)
        m |= 1u << ENC_RLE;
    if (ch->dict_encoded)
        m |= 1u << ENC_RLE_DICTIONARY;
    return m;
}

/* Reads the pages of one column chunk (its bounds checked by the caller)
   into rows [row, row + group rows). */
static int read_chunk(struct ctx *x, struct pq_read_chunk *ch, int64_t grows, size_t row)
{
    const struct pq_read_col *col = x->col;
    int64_t pos = ch->start, end = ch->start + ch->compressed;
    int64_t unc = 0, done = 0, nulls = 0;
    size_t npages = 0, dict_pages = 0;
    int64_t page_dict = 0, page_plain = 0;

    x->ndict = 0;
    if (x->dict) {
        free(x->dict);
        x->dict = NULL;
        x->dict_cap = 0;
    }
    while (pos < end) {
        struct tr t = {x->rd, x->file + pos, x->file + end};
        struct page_hdr h;
        int64_t hl;

        if (!parse_page_header(&t, &h))
            return 0;
        hl = (int64_t)(t.p - (x->file + pos));
        if ((size_t)h.csize > tr_left(&t))
            return bad(x->rd, "column \"%s\": page of %d bytes at %lld overruns its chunk",
                       col->name, (int)h.csize, (long long)pos);
        if (h.type == PAGE_DICTIONARY) {
            if (npages != 0 || ch->dict_offset != pos)
                return bad(x->rd,
                           "column \"%s\": dictionary page at %lld, not first / not at "
                           "dictionary_page_offset %lld",
                           col->name, (long long)pos, (long long)ch->dict_offset);
            if (!inflate_page(x, &h, t.p, &x->dpage, &x->dpage_cap) || !read_dict_page(x, &h))
                return 0;
            ch->dict_entries = x->ndict;
            dict_pages++;
        } else {
            if (ch->data_pages == 0 && pos != ch->data_offset)
                return bad(x->rd, "column \"%s\": first data page at %lld, data_page_offset %lld",
                           col->name, (long long)pos, (long long)ch->data_offset);
            if (h.num_values == 0 || h.num_values > grows - done)
                return bad(x->rd, "column \"%s\": page of %d rows, %lld left in the group",
                           col->name, (int)h.num_values, (long long)(grows - done));
            if (h.encoding == ENC_RLE_DICTIONARY)
                page_dict++;
            else
                page_plain++;
            if (!inflate_page(x, &h, t.p, &x->page, &x->page_cap) ||
                !read_data_page(x, &h, row + (size_t)done, &nulls))
                return 0;
            done += h.num_values;
            if (h.num_values > ch->max_page_values)
                ch->max_page_values = h.num_values;
            ch->data_pages++;
        }
        unc += hl + h.usize;
        pos += hl + h.csize;
        npages++;
    }
    if (ch->dict_offset >= 0 && dict_pages == 0)
        return bad(x->rd, "column \"%s\": dictionary_page_offset but no dictionary page",
                   col->name);
    if (page_dict && page_plain)
        return bad(x->rd, "column \"%s\": dictionary and PLAIN data pages mixed", col->name);
    ch->dict_encoded = page_dict > 0;
    if (done != grows || ch->num_values != grows)
        return bad(x->rd, "column \"%s\": %lld rows in pages, num_values %lld, group %lld",
                   col->name, (long long)done, (long long)ch->num_values, (long long)grows);
    if (unc != ch->uncompressed)
        return bad(x->rd, "column \"%s\": %lld bytes uncompressed, total_uncompressed_size %lld",
                   col->name, (long long)unc, (long long)ch->uncompressed);
    if (ch->encodings != used_encodings(col, ch))
        return bad(x->rd, "column \"%s\": encodings listed 0x%x, used 0x%x", col->name,
                   ch->encodings, used_encodings(col, ch));
    if (ch->stats.has_null_count && ch->stats.null_count != nulls)
        return bad(x->rd, "column \"%s\": null_count %lld, %lld nulls in the pages", col->name,
                   (long long)ch->stats.null_count, (long long)nulls);
    for (size_t k = 0; k < ch->nenc_stats; k++) {
        const struct pq_read_enc_stats *es = &ch->enc_stats[k];
        int64_t want_count = -1;

        if (es->page_type == PAGE_DICTIONARY && es->encoding == ENC_PLAIN)
            want_count = (int64_t)dict_pages;
        else if (es->page_type == PAGE_DATA && es->encoding == ENC_PLAIN)
            want_count = page_plain;
        else if (es->page_type == PAGE_DATA && es->encoding == ENC_RLE_DICTIONARY)
            want_count = page_dict;
        if (es->count != want_count)
            return bad(x->rd, "column \"%s\": encoding_stats (%d, %d) counts %d pages, not %lld",
                       col->name, es->page_type, es->encoding, es->count, (long long)want_count);
    }
    return 1;
}

/* Chunks follow one another from byte 4 to the footer, in row-group order,
   each starting with its dictionary page or first data page. */
static int check_layout(struct rd *rd, struct pq_read_file *f, int64_t footer_start)
{
    int64_t pos = 4, total = 0;

    for (size_t g = 0; g < f->ngroups; g++) {
        struct pq_read_group *grp = &f->groups[g];
        int64_t unc = 0, comp = 0;

        if (grp->num_rows <= 0 || grp->num_rows > f->num_rows - total)
            return bad(rd, "row group %zu: %lld rows", g, (long long)grp->num_rows);
        total += grp->num_rows;
        for (size_t c = 0; c < f->ncols; c++) {
            struct pq_read_chunk *ch = &grp->chunks[c];

            ch->start = ch->dict_offset >= 0 ? ch->dict_offset : ch->data_offset;
            if (ch->start != pos)
                return bad(rd, "row group %zu, column %zu: chunk at %lld, not %lld", g, c,
                           (long long)ch->start, (long long)pos);
            if (ch->dict_offset >= 0 && ch->data_offset <= ch->dict_offset)
                return bad(rd, "row group %zu, column %zu: data page before the dictionary", g, c);
            if (ch->compressed <= 0 || ch->compressed > footer_start - pos ||
                ch->uncompressed < 0 || ch->data_offset >= pos + ch->compressed)
                return bad(rd, "row group %zu, column %zu: %lld bytes at %lld", g, c,
                           (long long)ch->compressed, (long long)pos);
            if (ch->file_offset < 0 || ch->file_offset >= footer_start)
                return bad(rd, "row group %zu, column %zu: file_offset %lld", g, c,
                           (long long)ch->file_offset);
            pos += ch->compressed;
            if (ch->uncompressed > INT64_MAX - unc)
                return bad(rd, "row group %zu: sizes overflow", g);
            unc += ch->uncompressed;
            comp += ch->compressed;
        }
        if (grp->total_byte_size != unc)
            return bad(rd, "row group %zu: total_byte_size %lld, chunks %lld", g,
                       (long long)grp->total_byte_size, (long long)unc);
        if (grp->total_compressed_size >= 0 && grp->total_compressed_size != comp)
            return bad(rd, "row group %zu: total_compressed_size %lld, chunks %lld", g,
                       (long long)grp->total_compressed_size, (long long)comp);
        if (grp->file_offset >= 0 && f->ncols && grp->file_offset != grp->chunks[0].start)
            return bad(rd, "row group %zu: file_offset %lld, first chunk at %lld", g,
                       (long long)grp->file_offset, (long long)grp->chunks[0].start);
        if (grp->ordinal >= 0 && (size_t)grp->ordinal != g)
            return bad(rd, "row group %zu: ordinal %d", g, grp->ordinal);
    }
    if (total != f->num_rows)
        return bad(rd, "row groups hold %lld rows, the file says %lld", (long long)total,
                   (long long)f->num_rows);
    if (pos != footer_start)
        return bad(rd, "chunks end at %lld, the footer starts at %lld", (long long)pos,
                   (long long)footer_start);
    return 1;
}

static int read_column(struct ctx *x, size_t c)
{
    struct pq_read_col *col = &x->f->cols[c];
    size_t nrows = (size_t)x->f->num_rows;
    size_t row = 0;
    size_t cells = nrows ? nrows : 1;

    x->col = col;
    x->arena_len = 0;
    x->arena_cap = 0;
    col->present = calloc(cells, 1);
    if (!col->present)
        return nomem(x->rd);
    if (col->type == TF_PQ_STRING) {
        col->str = calloc(cells, sizeof(*col->str));
        col->str_len = calloc(cells, sizeof(*col->str_len));
        free(x->off);
        x->off = calloc(cells, sizeof(*x->off));
        if (!col->str || !col->str_len || !x->off)
            return nomem(x->rd);
    } else if (col->type == TF_PQ_DOUBLE) {
        col->f64 = calloc(cells, sizeof(*col->f64));
        if (!col->f64)
            return nomem(x->rd);
    } else {
        col->i64 = calloc(cells, sizeof(*col->i64));
        if (!col->i64)
            return nomem(x->rd);
    }
    for (size_t g = 0; g < x->f->ngroups; g++) {
        if (!read_chunk(x, &x->f->groups[g].chunks[c], x->f->groups[g].num_rows, row))
            return 0;
        row += (size_t)x->f->groups[g].num_rows;
    }
    for (size_t r = 0; col->str && r < nrows; r++) {
        if (col->present[r])
            col->str[r] = col->arena + x->off[r];
    }
    for (size_t r = 0; r < nrows; r++) {
        if (!col->optional && !col->present[r])
            return bad(x->rd, "column \"%s\": REQUIRED, row %zu missing", col->name, r);
    }
    return 1;
}

enum tf_rc pq_read(const void *data, size_t len, struct pq_read_file *f, char *err, size_t errlen)
{
    const unsigned char *file = data;
    struct rd rd = {err, errlen, TF_OK};
    struct ctx x;
    struct tr t;
    uint32_t flen;
    int64_t footer_start;

    memset(f, 0, sizeof(*f));
    memset(&x, 0, sizeof(x));
    if (err && errlen)
        err[0] = '\0';
    if (len < 12 || memcmp(file, "PAR1", 4) != 0 || memcmp(file + len - 4, "PAR1", 4) != 0) {
        bad(&rd, "not framed by PAR1 (%zu bytes)", len);
        goto out;
    }
    flen = le32(file + len - 8);
    if (flen == 0 || flen > len - 12) {
        bad(&rd, "footer of %u bytes in a file of %zu", (unsigned)flen, len);
        goto out;
    }
    f->footer_len = flen;
    footer_start = (int64_t)(len - 8 - flen);
    t.rd = &rd;
    t.p = file + footer_start;
    t.end = file + len - 8;
    if (!parse_footer(&t, f))
        goto out;
    if (t.p != t.end) {
        bad(&rd, "%zu bytes after the footer's struct", tr_left(&t));
        goto out;
    }
    if (f->version != 1 && f->version != 2) {
        bad(&rd, "format version %d", (int)f->version);
        goto out;
    }
    if (f->num_rows < 0 || f->num_rows > (int64_t)PQ_READ_MAX_ROWS) {
        bad(&rd, "num_rows %lld", (long long)f->num_rows);
        goto out;
    }
    if (f->ncolumn_orders && f->ncolumn_orders != f->ncols) {
        bad(&rd, "%zu column orders for %zu columns", f->ncolumn_orders, f->ncols);
        goto out;
    }
    if (!check_layout(&rd, f, footer_start))
        goto out;
    x.rd = &rd;
    x.file = file;
    x.f = f;
    x.dctx = ZSTD_createDCtx();
    if (!x.dctx) {
        nomem(&rd);
        goto out;
    }
    for (size_t c = 0; c < f->ncols; c++) {
        if (!read_column(&x, c))
            goto out;
    }
out:
    ZSTD_freeDCtx(x.dctx);
    free(x.page);
    free(x.dpage);
    free(x.lv);
    free(x.idx);
    free(x.dict);
    free(x.off);
    return rd.rc;
}

/* ---------------------------------------------------------------------------
 * Comparison with the writer's input.
 */
static int differ(char *err, size_t errlen, const char *fmt, ...) TF_PRINTF(3, 4);

static int differ(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return 0;
}

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static int str_less(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);

    return c < 0 || (c == 0 && alen < blen);
}

/* The statistics the writer must give rows [r0, r1) of col. */
struct want_stats {
    int64_t nulls;
    int have; /* min and max exist */
    unsigned char min[8], max[8];
    const char *smin, *smax;
    size_t smin_len, smax_len;
};

static void expect_stats(const struct tf_pq_column *col, size_t r0, size_t r1, struct want_stats *w)
{
    int64_t imin = 0, imax = 0;
    double dmin = 0, dmax = 0;
    uint64_t bits;

    memset(w, 0, sizeof(*w));
    for (size_t r = r0; r < r1; r++) {
        if (col->present && !col->present[r]) {
            w->nulls++;
            continue;
        }
        if (col->type == TF_PQ_STRING) {
            const char *s = ((const char *const *)col->values)[r];
            size_t len = strlen(s);

            if (!w->have || str_less(s, len, w->smin, w->smin_len)) {
                w->smin = s;
                w->smin_len = len;
            }
            if (!w->have || str_less(w->smax, w->smax_len, s, len)) {
                w->smax = s;
                w->smax_len = len;
            }
        } else if (col->type == TF_PQ_DOUBLE) {
            double v = ((const double *)col->values)[r];

            if (isnan(v))
                continue;
            if (!w->have || v < dmin)
                dmin = v;
            if (!w->have || v > dmax)
                dmax = v;
        } else {
            int64_t v = ((const int64_t *)col->values)[r];

            if (!w->have || v < imin)
                imin = v;
            if (!w->have || v > imax)
                imax = v;
        }
        w->have = 1;
    }
    if (!w->have || col->type == TF_PQ_STRING)
        return;
    if (col->type == TF_PQ_DOUBLE) {
        if (dmin == 0)
            dmin = -0.0;
        if (dmax == 0)
            dmax = 0.0;
        memcpy(&bits, &dmin, 8);
        put_le64(w->min, bits);
        memcpy(&bits, &dmax, 8);
        put_le64(w->max, bits);
    } else {
        put_le64(w->min, (uint64_t)imin);
        put_le64(w->max, (uint64_t)imax);
    }
}

static int same_bytes(const unsigned char *a, size_t alen, const void *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static int compare_stats(const struct pq_read_col *col, const struct tf_pq_column *in,
                         const struct pq_read_chunk *ch, size_t g, size_t r0, size_t r1, char *err,
                         size_t errlen)
{
    const struct pq_read_stats *st = &ch->stats;
    struct want_stats w;

    expect_stats(in, r0, r1, &w);
    if (!st->has_null_count || st->null_count != w.nulls)
        return differ(err, errlen, "column \"%s\", group %zu: null_count %lld, want %lld",
                      col->name, g, st->has_null_count ? (long long)st->null_count : -1LL,
                      (long long)w.nulls);
    if (st->has_min != w.have || st->has_max != w.have)
        return differ(err, errlen, "column \"%s\", group %zu: min %d max %d, want %d", col->name, g,
                      st->has_min, st->has_max, w.have);
    if (!w.have)
        return st->min_exact == -1 && st->max_exact == -1
                   ? 1
                   : differ(err, errlen, "column \"%s\", group %zu: exactness without bounds",
                            col->name, g);
    if (st->min_exact != 1 || st->max_exact != 1)
        return differ(err, errlen, "column \"%s\", group %zu: bounds not marked exact", col->name,
                      g);
    if (in->type == TF_PQ_STRING) {
        if (!same_bytes(st->min, st->min_len, w.smin, w.smin_len) ||
            !same_bytes(st->max, st->max_len, w.smax, w.smax_len))
            return differ(err, errlen,
                          "column \"%s\", group %zu: string bounds [%.*s, %.*s], want [%s, %s]",
                          col->name, g, (int)st->min_len, (const char *)st->min, (int)st->max_len,
                          (const char *)st->max, w.smin, w.smax);
        return 1;
    }
    if (!same_bytes(st->min, st->min_len, w.min, 8) || !same_bytes(st->max, st->max_len, w.max, 8))
        return differ(err, errlen,
                      "column \"%s\", group %zu: bounds 0x%016llx..0x%016llx, want "
                      "0x%016llx..0x%016llx",
                      col->name, g, st->min_len == 8 ? (unsigned long long)le64(st->min) : 0ULL,
                      st->max_len == 8 ? (unsigned long long)le64(st->max) : 0ULL,
                      (unsigned long long)le64(w.min), (unsigned long long)le64(w.max));
    return 1;
}

static int compare_values(const struct pq_read_col *col, const struct tf_pq_column *in,
                          size_t nrows, char *err, size_t errlen)
{
    for (size_t r = 0; r < nrows; r++) {
        int present = !in->present || in->present[r];

        if (col->present[r] != present)
            return differ(err, errlen, "column \"%s\", row %zu: %s, want %s", col->name, r,
                          col->present[r] ? "a value" : "null", present ? "a value" : "null");
        if (!present)
            continue;
        if (in->type == TF_PQ_STRING) {
            const char *s = ((const char *const *)in->values)[r];

            if (!same_bytes((const unsigned char *)col->str[r], col->str_len[r], s, strlen(s)))
                return differ(err, errlen, "column \"%s\", row %zu: \"%s\", want \"%s\"", col->name,
                              r, col->str[r], s);
        } else if (in->type == TF_PQ_DOUBLE) {
            const double *d = in->values;

            if (memcmp(&col->f64[r], &d[r], 8) != 0)
                return differ(err, errlen, "column \"%s\", row %zu: %.17g, want %.17g (bits)",
                              col->name, r, col->f64[r], d[r]);
        } else {
            const int64_t *v = in->values;

            if (col->i64[r] != v[r])
                return differ(err, errlen, "column \"%s\", row %zu: %lld, want %lld", col->name, r,
                              (long long)col->i64[r], (long long)v[r]);
        }
    }
    return 1;
}

int pq_read_compare(const struct pq_read_file *f, const struct tf_pq_column *cols, size_t ncols,
                    size_t nrows, const struct tf_pq_opts *opts, char *err, size_t errlen)
{
    struct tf_pq_opts o;
    size_t rpg, page_rows, ngroups;

    memset(&o, 0, sizeof(o));
    if (opts)
        o = *opts;
    rpg = o.rows_per_group ? o.rows_per_group : TF_PQ_DEFAULT_GROUP_ROWS;
    page_rows = o.page_rows ? o.page_rows : TF_PQ_DEFAULT_PAGE_ROWS;
    ngroups = nrows / rpg + (nrows % rpg != 0);
    if (f->ncols != ncols || f->num_rows < 0 || (size_t)f->num_rows != nrows ||
        f->ngroups != ngroups)
        return differ(err, errlen, "%zu columns, %lld rows, %zu groups; want %zu, %zu, %zu",
                      f->ncols, (long long)f->num_rows, f->ngroups, ncols, nrows, ngroups);
    if (!f->created_by || strcmp(f->created_by, "tickflow") != 0)
        return differ(err, errlen, "created_by \"%s\"", f->created_by ? f->created_by : "(none)");
    if (f->ncolumn_orders != ncols)
        return differ(err, errlen, "%zu column orders", f->ncolumn_orders);
    if (f->nkv != o.nkv)
        return differ(err, errlen, "%zu key/value pairs, want %zu", f->nkv, o.nkv);
    for (size_t k = 0; k < o.nkv; k++) {
        const char *v = o.kv[k].value;

        if (strcmp(f->kv[k].key, o.kv[k].key) != 0 || !f->kv[k].value != !v ||
            (v && strcmp(f->kv[k].value, v) != 0))
            return differ(err, errlen, "key/value %zu: %s=%s, want %s=%s", k, f->kv[k].key,
                          f->kv[k].value ? f->kv[k].value : "(none)", o.kv[k].key,
                          v ? v : "(none)");
    }
    for (size_t g = 0; g < ngroups; g++) {
        size_t rows = nrows - g * rpg < rpg ? nrows - g * rpg : rpg;

        if (f->groups[g].num_rows != (int64_t)rows)
            return differ(err, errlen, "group %zu: %lld rows, want %zu", g,
                          (long long)f->groups[g].num_rows, rows);
    }
    for (size_t c = 0; c < ncols; c++) {
        const struct pq_read_col *col = &f->cols[c];
        const struct tf_pq_column *in = &cols[c];

        if (strcmp(col->name, in->name) != 0 || col->type != in->type ||
            col->optional != !!in->optional)
            return differ(err, errlen, "column %zu: \"%s\" type %d optional %d, want \"%s\" %d %d",
                          c, col->name, (int)col->type, col->optional, in->name, (int)in->type,
                          !!in->optional);
        if (!compare_values(col, in, nrows, err, errlen))
            return 0;
        for (size_t g = 0; g < ngroups; g++) {
            const struct pq_read_chunk *ch = &f->groups[g].chunks[c];
            size_t r0 = g * rpg, r1 = nrows - r0 < rpg ? nrows : r0 + rpg;

            if (!compare_stats(col, in, ch, g, r0, r1, err, errlen))
                return 0;
            if (ch->dict_encoded && (in->type != TF_PQ_STRING || o.no_dictionary))
                return differ(err, errlen, "column \"%s\", group %zu: a dictionary", col->name, g);
            if (ch->max_page_values < 0 || (size_t)ch->max_page_values > page_rows)
                return differ(err, errlen, "column \"%s\", group %zu: a page of %lld rows",
                              col->name, g, (long long)ch->max_page_values);
        }
    }
    return 1;
}

void pq_read_cleanup(struct pq_read_file *f)
{
    for (size_t c = 0; f->cols && c < f->ncols; c++) {
        struct pq_read_col *col = &f->cols[c];

        free(col->name);
        free(col->present);
        free(col->i64);
        free(col->f64);
        free((void *)col->str);
        free(col->str_len);
        free(col->arena);
    }
    free(f->cols);
    for (size_t g = 0; f->groups && g < f->ngroups; g++)
        free(f->groups[g].chunks);
    free(f->groups);
    for (size_t k = 0; f->kv && k < f->nkv; k++) {
        free(f->kv[k].key);
        free(f->kv[k].value);
    }
    free(f->kv);
    free(f->created_by);
    memset(f, 0, sizeof(*f));
}
