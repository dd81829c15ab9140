/*
 * test_parquet.c - the Parquet writer: every type, with and without nulls,
 * 0 rows, 1 row, many rows across row groups and pages, dictionary and
 * PLAIN strings, UTF-8 and empty strings, extreme doubles and int64s, a bad
 * schema refused, byte-identical output on a second write, the output
 * buffer's cap honoured and left as it was after a failure.
 *
 * Each file is read back in process by tests/harness/pq_read.c and must
 * hold what was written: rows, groups, values, nulls, statistics.
 *
 * Each file goes to $TF_PQ_OUT (or a new folder under /tmp) as NAME.parquet
 * with NAME.json beside it: the values the file must hold, for readers that
 * no one here wrote (tests/lake/check_parquet.py: pyarrow and DuckDB).
 * index.json lists the cases. Doubles are written in the sidecar as the
 * 16 hex digits of their IEEE-754 bits so -0.0, NaN and infinities survive.
 */
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "pq_read.h"
#include "tf/buf.h"
#include "tf/json.h"
#include "transform/parquet.h"

#define FILE_CAP ((size_t)256 * 1024 * 1024)

static char out_dir[512];
static int out_is_temp; /* a folder of our own: removed at the end */
static struct tf_buf index_json;
static int ncases;
static char case_names[16][32];

static const char *type_name(enum tf_pq_type t)
{
    switch (t) {
    case TF_PQ_STRING:
        return "string";
    case TF_PQ_INT64:
        return "int64";
    case TF_PQ_DOUBLE:
        return "double";
    case TF_PQ_TIMESTAMP_US:
        return "timestamp_us";
    }
    return "?";
}

static int write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    int ok;

    if (!f)
        return 0;
    ok = fwrite(data, 1, len, f) == len;
    if (fclose(f) != 0)
        ok = 0;
    return ok;
}

static enum tf_rc sidecar_value(struct tf_buf *js, const struct tf_pq_column *col, size_t r)
{
    uint64_t bits;

    if (col->present && !col->present[r])
        return tf_buf_puts(js, "null");
    switch (col->type) {
    case TF_PQ_STRING:
        return tf_json_append_str(js, ((const char *const *)col->values)[r]);
    case TF_PQ_DOUBLE:
        memcpy(&bits, &((const double *)col->values)[r], 8);
        return tf_buf_printf(js, "\"%016" PRIx64 "\"", bits);
    case TF_PQ_INT64:
    case TF_PQ_TIMESTAMP_US:
        return tf_buf_printf(js, "%" PRId64, ((const int64_t *)col->values)[r]);
    }
    return TF_ERR_INVALID;
}

/* NAME.json: the schema, the expected layout and every value. */
static int write_sidecar(const char *name, const struct tf_pq_column *cols, size_t ncols,
                         size_t nrows, const struct tf_pq_opts *opts, size_t file_len)
{
    struct tf_buf js;
    size_t rpg = opts->rows_per_group ? opts->rows_per_group : TF_PQ_DEFAULT_GROUP_ROWS;
    enum tf_rc rc;
    char path[600];
    int ok;

    tf_buf_init(&js, FILE_CAP);
    rc = tf_buf_printf(&js,
                       "{\"name\": \"%s\", \"num_rows\": %zu, \"row_groups\": %zu, "
                       "\"bytes\": %zu, \"kv\": {",
                       name, nrows, (nrows + rpg - 1) / rpg, file_len);
    for (size_t k = 0; rc == TF_OK && k < opts->nkv; k++) {
        rc = tf_buf_puts(&js, k ? ", " : "");
        if (rc == TF_OK)
            rc = tf_json_append_str(&js, opts->kv[k].key);
        if (rc == TF_OK)
            rc = tf_buf_puts(&js, ": ");
        if (rc == TF_OK)
            rc = tf_json_append_str(&js, opts->kv[k].value);
    }
    if (rc == TF_OK)
        rc = tf_buf_puts(&js, "}, \"columns\": [");
    for (size_t c = 0; rc == TF_OK && c < ncols; c++) {
        rc = tf_buf_printf(&js, "%s\n{\"name\": ", c ? "," : "");
        if (rc == TF_OK)
            rc = tf_json_append_str(&js, cols[c].name);
        if (rc == TF_OK)
            rc = tf_buf_printf(&js, ", \"type\": \"%s\", \"optional\": %s, \"values\": [",
                               type_name(cols[c].type), cols[c].optional ? "true" : "false");
        for (size_t r = 0; rc == TF_OK && r < nrows; r++) {
            if (r)
                rc = tf_buf_puts(&js, ",");
            if (rc == TF_OK)
                rc = sidecar_value(&js, &cols[c], r);
        }
        if (rc == TF_OK)
            rc = tf_buf_puts(&js, "]}");
    }
    if (rc == TF_OK)
        rc = tf_buf_puts(&js, "]}\n");
    snprintf(path, sizeof(path), "%s/%s.json", out_dir, name);
    ok = rc == TF_OK && write_file(path, js.data, js.len);
    tf_buf_cleanup(&js);
    return ok;
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Reads a file back with tests/harness/pq_read.c: it must read, and hold
   what was written (rows, groups, values, nulls, statistics). */
static void read_back(const char *name, const void *data, size_t len,
                      const struct tf_pq_column *cols, size_t ncols, size_t nrows,
                      const struct tf_pq_opts *opts)
{
    struct pq_read_file f;
    char err[512] = "";
    enum tf_rc rc;

    rc = pq_read(data, len, &f, err, sizeof(err));
    CHECK(rc == TF_OK, "%s: pq_read: %s (%s)", name, tf_rc_str(rc), err);
    if (rc == TF_OK) {
        CHECK(pq_read_compare(&f, cols, ncols, nrows, opts, err, sizeof(err)), "%s: read back: %s",
              name, err);
        CHECK_EQ_INT(f.num_rows, nrows);
        CHECK_EQ_INT(f.ncols, ncols);
    }
    pq_read_cleanup(&f);
}

/* Writes one case twice (the bytes must match), checks the frame, saves the
   file and its sidecar. Returns the file size (0 on failure). */
static size_t write_case(const char *name, const struct tf_pq_column *cols, size_t ncols,
                         size_t nrows, const struct tf_pq_opts *opts)
{
    struct tf_buf a, b;
    char err[256] = "";
    char path[600];
    enum tf_rc rc;
    size_t len = 0;

    tf_buf_init(&a, FILE_CAP);
    tf_buf_init(&b, FILE_CAP);
    rc = tf_pq_write_opts(cols, ncols, nrows, opts, &a, err, sizeof(err));
    CHECK(rc == TF_OK, "%s: tf_pq_write_opts: %s (%s)", name, tf_rc_str(rc), err);
    if (rc != TF_OK)
        goto out;
    rc = tf_pq_write_opts(cols, ncols, nrows, opts, &b, err, sizeof(err));
    CHECK(rc == TF_OK, "%s: second write: %s (%s)", name, tf_rc_str(rc), err);
    CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0,
          "%s: two writes differ (%zu vs %zu bytes)", name, a.len, b.len);
    CHECK(a.len >= 12 && memcmp(a.data, "PAR1", 4) == 0 &&
              memcmp(a.data + a.len - 4, "PAR1", 4) == 0,
          "%s: PAR1 magic at both ends", name);
    if (a.len >= 12) {
        uint32_t flen = le32((const unsigned char *)a.data + a.len - 8);

        CHECK(flen > 0 && flen <= a.len - 12, "%s: footer length %u of %zu bytes", name,
              (unsigned)flen, a.len);
        CHECK(memmem(a.data + a.len - 8 - flen, flen, "tickflow", 8) != NULL,
              "%s: created_by in the footer", name);
    }
    read_back(name, a.data, a.len, cols, ncols, nrows, opts);
    snprintf(path, sizeof(path), "%s/%s.parquet", out_dir, name);
    CHECK(write_file(path, a.data, a.len), "%s: write %s: %s", name, path, strerror(errno));
    CHECK(write_sidecar(name, cols, ncols, nrows, opts, a.len), "%s: sidecar", name);
    if (ncases < (int)TF_ARRAY_LEN(case_names) &&
        tf_buf_printf(&index_json, "%s\"%s\"", ncases ? ", " : "", name) == TF_OK)
        snprintf(case_names[ncases++], sizeof(case_names[0]), "%s", name);
    len = a.len;
out:
    tf_buf_cleanup(&a);
    tf_buf_cleanup(&b);
    return len;
}

/* ------------------------------------------------------------------------- */

static void case_types(void)
{
    static const char *const ticker[] = {"AAPL", "MSFT", "X:BTCUSD", "C:EURUSD", "AAPL"};
    static const int64_t ts[] = {1704067200000000, 1704067260000000, 1704067320000000,
                                 1704067380000000, 1704067440123456};
    static const int64_t volume[] = {100, 0, 2500000, 7, 42};
    static const double close[] = {185.64, 374.5, 42123.75, 1.10455, 185.7};
    static const struct tf_pq_kv kv[] = {{"tickflow.dataset", "silver.bars"},
                                         {"tickflow.schema_version", "1"}};
    struct tf_pq_column cols[] = {
        {"ticker", TF_PQ_STRING, 0, ticker, NULL},
        {"ts", TF_PQ_TIMESTAMP_US, 0, ts, NULL},
        {"volume", TF_PQ_INT64, 0, volume, NULL},
        {"close", TF_PQ_DOUBLE, 0, close, NULL},
    };
    struct tf_pq_opts opts = {0};

    opts.kv = kv;
    opts.nkv = TF_ARRAY_LEN(kv);
    write_case("types", cols, TF_ARRAY_LEN(cols), 5, &opts);
}

static void case_nulls(void)
{
    static const char *const s[] = {"a", NULL, "", "zz", NULL, "b"};
    static const int64_t ts[] = {0, 1, -1000000, 0, 5, 6};
    static const int64_t iv[] = {1, 2, 3, 4, 5, 6};
    static const double dv[] = {0.5, 0, -2.25, 0, 9.0, 0};
    static const unsigned char p1[] = {1, 0, 1, 1, 0, 1};
    static const unsigned char p2[] = {0, 1, 1, 0, 1, 0};
    static const unsigned char none[] = {0, 0, 0, 0, 0, 0};
    struct tf_pq_column cols[] = {
        {"s", TF_PQ_STRING, 1, s, p1},           {"ts", TF_PQ_TIMESTAMP_US, 1, ts, p2},
        {"i", TF_PQ_INT64, 1, iv, p1},           {"d", TF_PQ_DOUBLE, 1, dv, p2},
        {"all_null", TF_PQ_DOUBLE, 1, dv, none}, {"all_null_s", TF_PQ_STRING, 1, s, none},
        {"opt_full", TF_PQ_INT64, 1, iv, NULL},  {"req", TF_PQ_INT64, 0, iv, NULL},
    };
    struct tf_pq_opts opts = {0};

    write_case("nulls", cols, TF_ARRAY_LEN(cols), 6, &opts);
}

static void case_empty(void)
{
    struct tf_pq_column cols[] = {
        {"ticker", TF_PQ_STRING, 0, NULL, NULL},
        {"ts", TF_PQ_TIMESTAMP_US, 0, NULL, NULL},
        {"vwap", TF_PQ_DOUBLE, 1, NULL, NULL},
        {"trades", TF_PQ_INT64, 1, NULL, NULL},
    };
    struct tf_pq_opts opts = {0};

    write_case("empty", cols, TF_ARRAY_LEN(cols), 0, &opts);
}

static void case_one(void)
{
    static const char *const t[] = {"SPY"};
    static const int64_t ts[] = {1718900000000000};
    static const double d[] = {544.51};
    static const int64_t n[] = {0};
    static const unsigned char absent[] = {0};
    struct tf_pq_column cols[] = {
        {"ticker", TF_PQ_STRING, 0, t, NULL},
        {"ts", TF_PQ_TIMESTAMP_US, 0, ts, NULL},
        {"vwap", TF_PQ_DOUBLE, 1, d, NULL},
        {"trades", TF_PQ_INT64, 1, n, absent},
    };
    struct tf_pq_opts opts = {0};

    write_case("one", cols, TF_ARRAY_LEN(cols), 1, &opts);
}

static void case_strings(void)
{
    static char long_str[3001];
    static const char *s[] = {"apple",
                              "",
                              "Zebra",
                              "\xc3\xa9"
                              "clair",                              /* éclair */
                              "\xe6\x97\xa5\xe6\x9c\xac",           /* 日本 */
                              "rocket \xf0\x9f\x9a\x80",            /* 🚀 */
                              "quote \" backslash \\ tab \t nl \n", /* JSON escapes */
                              "a",
                              "ab",
                              long_str,
                              "",
                              "\x7f"};
    static const unsigned char p[] = {1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1};
    struct tf_pq_column cols[] = {
        {"s", TF_PQ_STRING, 0, s, NULL},
        {"s_opt", TF_PQ_STRING, 1, s, p},
    };
    struct tf_pq_opts opts = {0};

    memset(long_str, 'x', sizeof(long_str) - 1);
    write_case("strings", cols, TF_ARRAY_LEN(cols), TF_ARRAY_LEN(s), &opts);
}

static void case_extremes(void)
{
    static double d[] = {-0.0,
                         0.0,
                         1e308,
                         -1e308,
                         DBL_MIN,
                         4.9406564584124654e-324,
                         -4.9406564584124654e-324,
                         DBL_MAX,
                         1.0 / 3.0,
                         0,
                         0,
                         0};
    static const int64_t iv[] = {
        INT64_MIN, INT64_MAX,       0, -1, 1, INT64_MIN + 1, INT64_MAX - 1, 42, -42,
        1LL << 53, (1LL << 53) + 1, 7};
    static const int64_t ts[] = {0,
                                 -2208988800000000,  /* 1900-01-01 */
                                 253402300799999999, /* 9999-12-31T23:59:59.999999 */
                                 1,
                                 -1,
                                 1704067200000001,
                                 951782400000000, /* 2000-02-29 */
                                 1710054000000000,
                                 4102444800000000,   /* 2100-01-01 */
                                 -62135596800000000, /* 0001-01-01 */
                                 86399999999,
                                 1000000};
    static double nan_inf[12];
    static double zeros[] = {0.0, -0.0, 0.0, -0.0, 0.0, 0.0, 0.0, 0.0, -0.0, 0.0, 0.0, 0.0};
    static const unsigned char half[] = {1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0};
    struct tf_pq_column cols[] = {
        {"d", TF_PQ_DOUBLE, 0, d, NULL},
        {"i", TF_PQ_INT64, 0, iv, NULL},
        {"ts", TF_PQ_TIMESTAMP_US, 0, ts, NULL},
        {"nan_inf", TF_PQ_DOUBLE, 0, nan_inf, NULL},
        {"nan_only", TF_PQ_DOUBLE, 1, nan_inf, half},
        {"zeros", TF_PQ_DOUBLE, 0, zeros, NULL},
    };
    struct tf_pq_opts opts = {0};

    d[9] = INFINITY;
    d[10] = -INFINITY;
    d[11] = NAN;
    for (size_t i = 0; i < TF_ARRAY_LEN(nan_inf); i++)
        nan_inf[i] = i % 2 ? (i % 4 == 1 ? INFINITY : -INFINITY) : NAN;
    /* nan_only keeps the even rows: all NaN, so no min/max at all */
    write_case("extremes", cols, TF_ARRAY_LEN(cols), 12, &opts);
}

/* Many rows: 5 row groups of up to 12,000 rows, pages of 5,000 rows, repeated
   tickers (dictionary), unique ids (PLAIN), nulls alone and in runs. */
static void case_many(void)
{
    enum { N = 50000 };
    static const char *const tickers[] = {"AAPL", "MSFT", "GOOG", "AMZN", "NVDA", "META", "TSLA"};
    const char **ticker = calloc(N, sizeof(*ticker));
    const char **id = calloc(N, sizeof(*id));
    char *id_mem = calloc(N, 16);
    int64_t *ts = calloc(N, sizeof(*ts));
    int64_t *vol = calloc(N, sizeof(*vol));
    int64_t *trades = calloc(N, sizeof(*trades));
    double *px = calloc(N, sizeof(*px));
    double *vwap = calloc(N, sizeof(*vwap));
    unsigned char *vwap_p = calloc(N, 1);
    unsigned char *trades_p = calloc(N, 1);
    unsigned char *sym_p = calloc(N, 1);
    struct tf_pq_opts opts = {0};
    size_t dict_len, plain_len;

    if (!ticker || !id || !id_mem || !ts || !vol || !trades || !px || !vwap || !vwap_p ||
        !trades_p || !sym_p) {
        CHECK(0, "many: out of memory");
        goto out;
    }
    for (size_t i = 0; i < N; i++) {
        ticker[i] = tickers[(i / 3) % TF_ARRAY_LEN(tickers)];
        snprintf(id_mem + i * 16, 16, "id-%07zu", i * 7919 % 1000003);
        id[i] = id_mem + i * 16;
        ts[i] = 1704067200000000 + (int64_t)i * 60000000;
        vol[i] = (int64_t)(i * 37 % 100000) - 500;
        trades[i] = (int64_t)i;
        px[i] = 100.0 + (double)(i % 1000) / 8.0 - (double)(i % 13) * 0.01;
        vwap[i] = px[i] + 0.005;
        vwap_p[i] = i % 7 != 3;
        trades_p[i] = (i / 1000) % 3 != 1; /* runs of 1000 nulls */
        sym_p[i] = i % 11 != 0;
    }
    {
        struct tf_pq_column cols[] = {
            {"ticker", TF_PQ_STRING, 0, ticker, NULL},
            {"ts", TF_PQ_TIMESTAMP_US, 0, ts, NULL},
            {"id", TF_PQ_STRING, 0, id, NULL},
            {"close", TF_PQ_DOUBLE, 0, px, NULL},
            {"volume", TF_PQ_INT64, 0, vol, NULL},
            {"vwap", TF_PQ_DOUBLE, 1, vwap, vwap_p},
            {"trades", TF_PQ_INT64, 1, trades, trades_p},
            {"symbol", TF_PQ_STRING, 1, ticker, sym_p},
        };

        opts.rows_per_group = 12000;
        opts.page_rows = 5000;
        dict_len = write_case("many", cols, TF_ARRAY_LEN(cols), N, &opts);
        opts.no_dictionary = 1;
        plain_len = write_case("many_plain", cols, TF_ARRAY_LEN(cols), N, &opts);
        CHECK(dict_len > 0 && dict_len < plain_len,
              "dictionary makes repeated tickers smaller: %zu vs %zu bytes", dict_len, plain_len);
    }
out:
    free(ticker);
    free(id);
    free(id_mem);
    free(ts);
    free(vol);
    free(trades);
    free(px);
    free(vwap);
    free(vwap_p);
    free(trades_p);
    free(sym_p);
}

/* Pages cut by bytes (long strings), and a dictionary past its entry cap
   falling back to PLAIN. */
static void case_big_strings(void)
{
    enum { N = 300, M = 140000 };
    char *mem = malloc((size_t)N * 4001);
    const char **s = calloc(N, sizeof(*s));
    char *kmem = malloc((size_t)M * 12);
    const char **k = calloc(M, sizeof(*k));
    struct tf_pq_opts opts = {0};

    if (!mem || !s || !kmem || !k) {
        CHECK(0, "big strings: out of memory");
        goto out;
    }
    for (size_t i = 0; i < N; i++) {
        char *p = mem + i * 4001;
        size_t len = 1000 + i * 10;

        for (size_t j = 0; j < len; j++)
            p[j] = (char)('a' + (i + j) % 26);
        p[len] = '\0';
        s[i] = p;
    }
    {
        struct tf_pq_column cols[] = {{"text", TF_PQ_STRING, 0, s, NULL}};

        opts.page_bytes = 64 * 1024;
        write_case("big_pages", cols, 1, N, &opts);
    }
    for (size_t i = 0; i < M; i++) {
        snprintf(kmem + i * 12, 12, "k%zu", i % 70000);
        k[i] = kmem + i * 12;
    }
    {
        struct tf_pq_column cols[] = {{"key", TF_PQ_STRING, 0, k, NULL}};

        memset(&opts, 0, sizeof(opts));
        write_case("dict_overflow", cols, 1, M, &opts);
    }
out:
    free(mem);
    free(s);
    free(kmem);
    free(k);
}

/* The RLE/bit-packed hybrid at its edges: null runs of every length from 1
   to 20 (7, 8 and 9 around the run threshold), alternation, a seeded random
   pattern; dictionaries of 3, 300 and 40,000 entries (index widths 2, 9 and
   16); odd page and group sizes so pages cut runs in the middle. */
static void case_patterns(void)
{
    enum { N = 20000 };
    const char **small = calloc(N, sizeof(*small));
    const char **mid = calloc(N, sizeof(*mid));
    const char **wide = calloc(N, sizeof(*wide));
    char *mem = calloc(N, 3 * 12);
    int64_t *iv = calloc(N, sizeof(*iv));
    int64_t *ts = calloc(N, sizeof(*ts));
    double *dv = calloc(N, sizeof(*dv));
    unsigned char *runs = calloc(N, 1);
    unsigned char *alt = calloc(N, 1);
    unsigned char *rnd = calloc(N, 1);
    struct tf_pq_opts opts = {0};
    uint64_t seed = 0x9e3779b97f4a7c15u;
    size_t i = 0;
    int len = 1, val = 1;

    if (!small || !mid || !wide || !mem || !iv || !ts || !dv || !runs || !alt || !rnd) {
        CHECK(0, "patterns: out of memory");
        goto out;
    }
    while (i < N) { /* runs of 1, 2, ... 20, 1, 2, ... alternating present/null */
        for (int k = 0; k < len && i < N; k++)
            runs[i++] = (unsigned char)val;
        val = !val;
        len = len % 20 + 1;
    }
    for (i = 0; i < N; i++) {
        char *p = mem + i * 36;

        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        alt[i] = i % 2 == 0;
        rnd[i] = (seed >> 11) % 3 != 0;
        snprintf(p, 12, "s%zu", i % 3);
        snprintf(p + 12, 12, "m%zu", (i * 7) % 300);
        snprintf(p + 24, 12, "w%zu", (size_t)(seed % 40000));
        small[i] = p;
        mid[i] = p + 12;
        wide[i] = p + 24;
        iv[i] = (int64_t)(seed >> 1) - (int64_t)(seed >> 2);
        ts[i] = 1704067200000000 + (int64_t)(seed % 86400000000u);
        dv[i] = (double)(int64_t)(seed % 2000001) / 1000.0 - 1000.0;
    }
    {
        struct tf_pq_column cols[] = {
            {"runs", TF_PQ_INT64, 1, iv, runs},      {"alt", TF_PQ_DOUBLE, 1, dv, alt},
            {"rnd", TF_PQ_TIMESTAMP_US, 1, ts, rnd}, {"small", TF_PQ_STRING, 1, small, runs},
            {"mid", TF_PQ_STRING, 1, mid, rnd},      {"wide", TF_PQ_STRING, 0, wide, NULL},
        };

        opts.rows_per_group = 7001;
        opts.page_rows = 997;
        write_case("patterns", cols, TF_ARRAY_LEN(cols), N, &opts);
    }
out:
    free(small);
    free(mid);
    free(wide);
    free(mem);
    free(iv);
    free(ts);
    free(dv);
    free(runs);
    free(alt);
    free(rnd);
}

/* A dictionary of 40,000 entries: 16-bit indices, nulls between them. */
static void case_wide_dict(void)
{
    enum { N = 100000 };
    const char **k = calloc(N, sizeof(*k));
    char *mem = calloc(N, 8);
    unsigned char *p = calloc(N, 1);
    struct tf_pq_opts opts = {0};

    if (!k || !mem || !p) {
        CHECK(0, "wide_dict: out of memory");
        goto out;
    }
    for (size_t i = 0; i < N; i++) {
        snprintf(mem + i * 8, 8, "w%05zu", i * 7919 % 40000);
        k[i] = mem + i * 8;
        p[i] = i % 5 != 2;
    }
    {
        struct tf_pq_column cols[] = {{"key", TF_PQ_STRING, 1, k, p}};

        write_case("wide_dict", cols, 1, N, &opts);
    }
out:
    free(k);
    free(mem);
    free(p);
}

/* ------------------------------------------------------------------------- */

static void expect_invalid(const char *what, const struct tf_pq_column *cols, size_t ncols,
                           size_t nrows, const char *needle)
{
    struct tf_buf out;
    char err[256] = "";
    enum tf_rc rc;

    tf_buf_init(&out, 1 << 20);
    CHECK(tf_buf_puts(&out, "keep") == TF_OK, "prefix");
    rc = tf_pq_write(cols, ncols, nrows, 0, &out, err, sizeof(err));
    CHECK(rc == TF_ERR_INVALID, "%s: rc %s, want invalid", what, tf_rc_str(rc));
    CHECK(strstr(err, needle) != NULL, "%s: err \"%s\" names \"%s\"", what, err, needle);
    CHECK(out.len == 4 && strcmp(out.data, "keep") == 0, "%s: output left as it was", what);
    tf_buf_cleanup(&out);
}

static void test_invalid(void)
{
    static const int64_t iv[] = {1, 2, 3};
    static const char *const sv[] = {"a", NULL, "c"};
    static const char *const bad_utf8[] = {"ok", "\xc3(", "\xed\xa0\x80"};
    static const char *const overlong[] = {"\xc0\xaf"};
    static const unsigned char hole[] = {1, 0, 1};
    struct tf_pq_column c;
    struct tf_pq_column two[2];

    expect_invalid("no columns", NULL, 0, 0, "no columns");
    c = (struct tf_pq_column){"x", TF_PQ_INT64, 0, iv, NULL};
    expect_invalid("zero columns", &c, 0, 3, "no columns");
    c.name = NULL;
    expect_invalid("NULL name", &c, 1, 3, "no name");
    c.name = "";
    expect_invalid("empty name", &c, 1, 3, "no name");
    c.name = "\xff";
    expect_invalid("name not UTF-8", &c, 1, 3, "not UTF-8");
    c = (struct tf_pq_column){"x", (enum tf_pq_type)42, 0, iv, NULL};
    expect_invalid("unknown type", &c, 1, 3, "unknown type");
    c = (struct tf_pq_column){"x", TF_PQ_INT64, 0, NULL, NULL};
    expect_invalid("no values", &c, 1, 3, "no values");
    c = (struct tf_pq_column){"x", TF_PQ_INT64, 0, iv, hole};
    expect_invalid("null in REQUIRED", &c, 1, 3, "REQUIRED column has a null at row 1");
    c = (struct tf_pq_column){"s", TF_PQ_STRING, 1, sv, NULL};
    expect_invalid("NULL string present", &c, 1, 3, "NULL string at row 1");
    c = (struct tf_pq_column){"s", TF_PQ_STRING, 0, bad_utf8, NULL};
    expect_invalid("bad UTF-8", &c, 1, 2, "row 1 is not UTF-8");
    c = (struct tf_pq_column){"s", TF_PQ_STRING, 0, bad_utf8 + 2, NULL};
    expect_invalid("surrogate", &c, 1, 1, "row 0 is not UTF-8");
    c = (struct tf_pq_column){"s", TF_PQ_STRING, 0, overlong, NULL};
    expect_invalid("overlong", &c, 1, 1, "row 0 is not UTF-8");
    two[0] = (struct tf_pq_column){"x", TF_PQ_INT64, 0, iv, NULL};
    two[1] = (struct tf_pq_column){"x", TF_PQ_DOUBLE, 0, iv, NULL};
    expect_invalid("repeated name", two, 2, 3, "repeated");

    /* A null string in an OPTIONAL column is fine when marked absent. */
    {
        struct tf_buf out;
        char err[128] = "";

        tf_buf_init(&out, 1 << 20);
        c = (struct tf_pq_column){"s", TF_PQ_STRING, 1, sv, hole};
        CHECK(tf_pq_write(&c, 1, 3, 0, &out, err, sizeof(err)) == TF_OK,
              "absent NULL string accepted: %s", err);
        c = (struct tf_pq_column){"x", TF_PQ_INT64, 0, NULL, NULL};
        tf_buf_reset(&out);
        CHECK(tf_pq_write(&c, 1, 0, 0, &out, err, sizeof(err)) == TF_OK,
              "no values with 0 rows accepted: %s", err);
        tf_buf_cleanup(&out);
    }
}

/* The cap of the output buffer: TF_ERR_TOO_LARGE, and out as it was. A
   file written after a prefix equals the file written alone (offsets count
   from the file's start). */
static void test_buffer(void)
{
    enum { N = 5000 };
    int64_t *v = calloc(N, sizeof(*v));
    struct tf_pq_column c = {"v", TF_PQ_INT64, 0, v, NULL};
    struct tf_buf small, alone, after;
    char err[256] = "";
    enum tf_rc rc;

    if (!v) {
        CHECK(0, "out of memory");
        return;
    }
    for (size_t i = 0; i < N; i++)
        v[i] = (int64_t)(i * 2654435761u);
    tf_buf_init(&small, 1000);
    CHECK(tf_buf_puts(&small, "abc") == TF_OK, "prefix");
    rc = tf_pq_write(&c, 1, N, 0, &small, err, sizeof(err));
    CHECK_EQ_INT(rc, TF_ERR_TOO_LARGE);
    CHECK(small.len == 3 && strcmp(small.data, "abc") == 0, "buffer left as it was: %zu",
          small.len);
    CHECK(strstr(err, "too large") != NULL || strstr(err, "large") != NULL, "err says why: \"%s\"",
          err);

    tf_buf_init(&alone, FILE_CAP);
    tf_buf_init(&after, FILE_CAP);
    CHECK(tf_pq_write(&c, 1, N, 1000, &alone, err, sizeof(err)) == TF_OK, "alone: %s", err);
    CHECK(tf_buf_puts(&after, "prefix") == TF_OK, "prefix");
    CHECK(tf_pq_write(&c, 1, N, 1000, &after, err, sizeof(err)) == TF_OK, "after: %s", err);
    CHECK(after.len == alone.len + 6 && memcmp(after.data + 6, alone.data, alone.len) == 0,
          "file after a prefix is the same file");
    /* rows_per_group changes the layout, so the bytes */
    tf_buf_reset(&after);
    CHECK(tf_pq_write(&c, 1, N, 0, &after, err, sizeof(err)) == TF_OK, "one group: %s", err);
    CHECK(after.len != alone.len || memcmp(after.data, alone.data, alone.len) != 0,
          "row groups of 1000 and one group differ");
    tf_buf_cleanup(&small);
    tf_buf_cleanup(&alone);
    tf_buf_cleanup(&after);
    free(v);
}

/* The reader on one small file, what it reports checked item by item:
   two row groups (4 + 2 rows), pages of at most 3 rows, a dictionary in the
   first group only, nulls, statistics. Then every truncation of the file,
   and every byte flipped three ways: refused with TF_ERR_INVALID or read,
   never a crash (the sanitizer build runs this). */
static void test_reader(void)
{
    static const char *const tk[] = {"MSFT", "AAPL", "MSFT", "AAPL", "MSFT", "AAPL"};
    static const int64_t ts[] = {-1, 0, 1, INT64_MAX, INT64_MIN, 1704067200000000};
    static double px[] = {1.5, 99.0, -0.0, 0, 2.25, 7.0};
    static const unsigned char p[] = {1, 0, 1, 1, 0, 1};
    const struct tf_pq_column cols[] = {
        {"ticker", TF_PQ_STRING, 0, tk, NULL},
        {"ts", TF_PQ_TIMESTAMP_US, 0, ts, NULL},
        {"px", TF_PQ_DOUBLE, 1, px, p},
        {"n", TF_PQ_INT64, 1, ts, p},
    };
    struct tf_pq_opts opts = {0};
    struct pq_read_file f;
    struct tf_buf out;
    char err[512] = "";
    unsigned char *copy = NULL;
    int refused = 0, read_ok = 0, other = 0;
    double d;

    px[3] = NAN;
    opts.rows_per_group = 4;
    opts.page_rows = 3;
    tf_buf_init(&out, 1 << 20);
    CHECK(tf_pq_write_opts(cols, 4, 6, &opts, &out, err, sizeof(err)) == TF_OK, "write: %s", err);
    CHECK(pq_read(out.data, out.len, &f, err, sizeof(err)) == TF_OK, "pq_read: %s", err);
    if (f.ncols == 4 && f.ngroups == 2 && f.num_rows == 6) {
        const struct pq_read_chunk *g0 = f.groups[0].chunks, *g1 = f.groups[1].chunks;

        CHECK_EQ_INT(f.version, 2);
        CHECK_EQ_INT(f.groups[0].num_rows, 4);
        CHECK_EQ_INT(f.groups[1].num_rows, 2);
        CHECK_STR(f.cols[0].name, "ticker");
        CHECK(f.cols[0].type == TF_PQ_STRING && !f.cols[0].optional, "ticker: REQUIRED string");
        CHECK(f.cols[1].type == TF_PQ_TIMESTAMP_US, "ts: a timestamp");
        CHECK(f.cols[2].type == TF_PQ_DOUBLE && f.cols[2].optional, "px: OPTIONAL double");
        CHECK(f.cols[3].type == TF_PQ_INT64 && f.cols[3].optional, "n: OPTIONAL int64");
        CHECK_STR(f.cols[0].str[0], "MSFT");
        CHECK_STR(f.cols[0].str[5], "AAPL");
        CHECK_EQ_INT(f.cols[0].str_len[4], 4);
        CHECK(f.cols[1].i64[3] == INT64_MAX && f.cols[1].i64[4] == INT64_MIN, "ts extremes");
        CHECK(f.cols[2].present[1] == 0 && f.cols[2].present[4] == 0 && f.cols[2].present[5],
              "px nulls at rows 1 and 4");
        CHECK_EQ_DBL(f.cols[2].f64[0], 1.5);
        d = f.cols[2].f64[2];
        CHECK(d == 0 && signbit(d), "px row 2 is -0.0");
        CHECK(isnan(f.cols[2].f64[3]), "px row 3 is NaN");
        CHECK(g0[0].dict_encoded && g0[0].dict_entries == 2 && g0[0].dict_offset == 4,
              "group 0 ticker: a dictionary of 2 at byte 4");
        CHECK(!g1[0].dict_encoded && g1[0].dict_offset == -1, "group 1 ticker: PLAIN");
        CHECK(g0[1].data_pages == 2 && g0[1].max_page_values == 3, "group 0 ts: pages of 3 + 1");
        CHECK(g0[2].stats.null_count == 1 && g0[2].stats.min_len == 8, "group 0 px: 1 null");
        memcpy(&d, g0[2].stats.min, 8);
        CHECK(d == 0 && signbit(d), "group 0 px: min -0.0 (NaN left out)");
        memcpy(&d, g0[2].stats.max, 8);
        CHECK_EQ_DBL(d, 1.5);
        CHECK(g0[0].stats.min_len == 4 && memcmp(g0[0].stats.min, "AAPL", 4) == 0,
              "group 0 ticker: min AAPL");
        CHECK(pq_read_compare(&f, cols, 4, 6, &opts, err, sizeof(err)), "compare: %s", err);
        /* the comparison notices a difference */
        px[0] = 1.25;
        CHECK(!pq_read_compare(&f, cols, 4, 6, &opts, err, sizeof(err)) &&
                  strstr(err, "row 0") != NULL,
              "a changed value is found: %s", err);
        px[0] = 1.5;
    } else {
        CHECK(0, "read %zu columns, %zu groups, %lld rows", f.ncols, f.ngroups,
              (long long)f.num_rows);
    }
    pq_read_cleanup(&f);

    copy = malloc(out.len ? out.len : 1);
    if (!copy) {
        CHECK(0, "out of memory");
        goto out;
    }
    for (size_t n = 0; n < out.len; n++) {
        memcpy(copy, out.data, n);
        if (pq_read(copy, n, &f, err, sizeof(err)) == TF_ERR_INVALID)
            refused++;
        pq_read_cleanup(&f);
    }
    CHECK_EQ_INT(refused, out.len);
    refused = 0;
    for (size_t i = 0; i < out.len; i++) {
        static const unsigned char flips[] = {0x01, 0x80, 0xff};

        for (size_t k = 0; k < TF_ARRAY_LEN(flips); k++) {
            enum tf_rc rc;

            memcpy(copy, out.data, out.len);
            copy[i] ^= flips[k];
            rc = pq_read(copy, out.len, &f, err, sizeof(err));
            refused += rc == TF_ERR_INVALID;
            read_ok += rc == TF_OK;
            other += rc != TF_OK && rc != TF_ERR_INVALID;
            pq_read_cleanup(&f);
        }
    }
    CHECK_EQ_INT(other, 0);
    CHECK(refused > (int)out.len, "flipped bytes: %d refused, %d read", refused, read_ok);
out:
    free(copy);
    tf_buf_cleanup(&out);
}

/* Removes what this run wrote into a temporary folder, and the folder. */
static void remove_temp(void)
{
    char path[1024];

    for (int i = 0; i < ncases; i++) {
        if (snprintf(path, sizeof(path), "%s/%s.parquet", out_dir, case_names[i]) <
            (int)sizeof(path))
            remove(path);
        if (snprintf(path, sizeof(path), "%s/%s.json", out_dir, case_names[i]) < (int)sizeof(path))
            remove(path);
    }
    snprintf(path, sizeof(path), "%s/index.json", out_dir);
    remove(path);
    CHECK(rmdir(out_dir) == 0, "rmdir %s: %s", out_dir, strerror(errno));
}

int main(void)
{
    const char *dir = getenv("TF_PQ_OUT");
    char path[600];

    if (dir && dir[0]) {
        snprintf(out_dir, sizeof(out_dir), "%s", dir);
        if (mkdir(out_dir, 0755) != 0 && errno != EEXIST) {
            check_fail(__FILE__, __LINE__, "mkdir %s: %s", out_dir, strerror(errno));
            return check_summary();
        }
    } else {
        snprintf(out_dir, sizeof(out_dir), "/tmp/tf_pq_XXXXXX");
        if (!mkdtemp(out_dir)) {
            check_fail(__FILE__, __LINE__, "mkdtemp: %s", strerror(errno));
            return check_summary();
        }
        out_is_temp = 1;
    }
    tf_buf_init(&index_json, 1 << 20);
    CHECK(tf_buf_puts(&index_json, "{\"cases\": [") == TF_OK, "index");

    test_invalid();
    test_buffer();
    test_reader();
    case_types();
    case_nulls();
    case_empty();
    case_one();
    case_strings();
    case_extremes();
    case_many();
    case_big_strings();
    case_patterns();
    case_wide_dict();

    CHECK(tf_buf_puts(&index_json, "]}\n") == TF_OK, "index");
    snprintf(path, sizeof(path), "%s/index.json", out_dir);
    CHECK(write_file(path, index_json.data, index_json.len), "write %s", path);
    CHECK_EQ_INT(ncases, 12);
    if (out_is_temp)
        remove_temp(); /* nobody reads them: TF_PQ_OUT keeps them for the lake check */
    else
        printf("files in %s\n", out_dir);
    tf_buf_cleanup(&index_json);
    return check_summary();
}
