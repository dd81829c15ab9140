/*
 * fuzz_parquet.c - libFuzzer: the Parquet writer on columns made from the
 * input, read back by tests/harness/pq_read.c. What is written must read
 * back equal: the schema, row count and row groups, every value and null
 * (doubles by their bits), each chunk's statistics, the key/value
 * metadata. Writing the same columns again must give the same bytes. Then
 * one byte of the file is flipped and the reader must refuse it or read
 * it, never crash.
 *
 * Input: byte 0 the row count (x2, at most MAX_ROWS), byte 1 the rows per
 * row group (low 6 bits, 0 = one group), byte 2 the tuning (bit 4: pages of
 * 1 + its low 4 bits rows; bit 5: pages cut at 64 bytes of strings; bit 6:
 * no dictionary; bit 7: key/value metadata), bytes 3 and 4 the byte to
 * flip and its bits. The rest makes the values: short strings of a-z that
 * repeat, timestamps, doubles with NaN and infinities, raw 8-byte doubles
 * and integers (any bits: NaN payloads, -0.0, subnormals, INT64_MIN), and
 * UTF-8 strings of 1- to 4-byte characters; nulls in the OPTIONAL columns.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pq_read.h"
#include "tf/buf.h"
#include "transform/parquet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ROWS 512
#define NCOLS    8

/* UTF-8 pieces the text column is made of: 1- to 4-byte characters, the
   bytes that sort first and last, one that repeats. */
static const char *const pieces[] = {"a",
                                     "Z",
                                     "0",
                                     " ",
                                     "\x7f",
                                     "\xc3\xa9",
                                     "\xc2\x80",
                                     "\xdf\xbf",
                                     "\xe6\x97\xa5",
                                     "\xef\xbf\xbf",
                                     "\xf0\x9f\x9a\x80",
                                     "\xf4\x8f\xbf\xbf",
                                     "\x01",
                                     "~",
                                     "aa",
                                     ""};

static void fail_with(const char *what, const char *err)
{
    fprintf(stderr, "fuzz_parquet: %s: %s\n", what, err);
    __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char text[MAX_ROWS][24];
    static char utf[MAX_ROWS][64];
    static const char *strs[MAX_ROWS], *utfs[MAX_ROWS];
    static int64_t ts[MAX_ROWS], raw_i[MAX_ROWS];
    static double d[MAX_ROWS], raw_d[MAX_ROWS];
    static unsigned char has[MAX_ROWS], has2[MAX_ROWS];
    static const struct tf_pq_kv kv[] = {{"tickflow.dataset", "silver.bars"}, {"empty", NULL}};
    struct tf_pq_opts opts;
    size_t nrows, flip_at;
    unsigned flags, flip;
    struct tf_buf a, b;
    struct pq_read_file f;
    char err[512];
    enum tf_rc ra, rb, rc;

    if (size < 5)
        return 0;
    nrows = (size_t)data[0] * 2 % (MAX_ROWS + 1);
    memset(&opts, 0, sizeof(opts));
    opts.rows_per_group = (size_t)data[1] % 64;
    flags = data[2];
    if (flags & 0x10)
        opts.page_rows = 1 + (flags & 0x0f);
    if (flags & 0x20)
        opts.page_bytes = 64;
    opts.no_dictionary = (flags & 0x40) != 0;
    if (flags & 0x80) {
        opts.kv = kv;
        opts.nkv = 2;
    }
    flip_at = (size_t)data[3] << 8 | data[4];
    flip = 1u << (data[3] % 8) | data[4];
    data += 5;
    size -= 5;
    for (size_t r = 0; r < nrows; r++) {
        uint8_t x = size ? data[r % size] : 0;
        size_t len = x % sizeof(text[0]);
        uint64_t bits = 0;
        size_t ulen = 0;

        for (size_t k = 0; k < len; k++)
            text[r][k] = (char)('a' + (size ? data[(r + k) % size] : 0) % 26);
        text[r][len] = '\0';
        strs[r] = text[r];
        ts[r] = (int64_t)x * 60000000LL * (int64_t)(r + 1);
        has[r] = x % 5 != 0;
        d[r] = x % 7 == 0 ? (double)NAN : x % 11 == 0 ? (double)INFINITY : (double)x / 3.0;

        for (size_t k = 0; k < 8; k++)
            bits = bits << 8 | (size ? data[(r * 8 + k) % size] : 0);
        memcpy(&raw_d[r], &bits, 8);
        raw_i[r] = (int64_t)(bits ^ (bits >> 17));
        has2[r] = (size ? data[(r * 5 + 3) % size] : 0) % 3 != 1;
        /* x / 16 pieces, chosen by the bytes after row r's */
        for (size_t k = 0; k < x / 16u; k++) {
            const char *p = pieces[(size ? data[(r + 1 + k) % size] : 0) % TF_ARRAY_LEN(pieces)];
            size_t plen = strlen(p);

            if (ulen + plen >= sizeof(utf[0]))
                break;
            memcpy(utf[r] + ulen, p, plen);
            ulen += plen;
        }
        utf[r][ulen] = '\0';
        utfs[r] = utf[r];
    }
    {
        const struct tf_pq_column cols[NCOLS] = {
            {"ticker", TF_PQ_STRING, 0, strs, NULL}, {"ts", TF_PQ_TIMESTAMP_US, 0, ts, NULL},
            {"close", TF_PQ_DOUBLE, 0, d, NULL},     {"volume", TF_PQ_DOUBLE, 1, d, has},
            {"trades", TF_PQ_INT64, 1, ts, has},     {"raw_d", TF_PQ_DOUBLE, 1, raw_d, has2},
            {"raw_i", TF_PQ_INT64, 0, raw_i, NULL},  {"text", TF_PQ_STRING, 1, utfs, has2},
        };

        tf_buf_init(&a, (size_t)64 << 20);
        tf_buf_init(&b, (size_t)64 << 20);
        err[0] = '\0';
        ra = tf_pq_write_opts(cols, NCOLS, nrows, &opts, &a, err, sizeof(err));
        if (ra != TF_OK)
            fail_with("write", err); /* every input makes valid columns */
        rb = tf_pq_write_opts(cols, NCOLS, nrows, &opts, &b, err, sizeof(err));
        if (rb != TF_OK || a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
            fail_with("second write", "not the same bytes");

        rc = pq_read(a.data, a.len, &f, err, sizeof(err));
        if (rc != TF_OK)
            fail_with("read back", err);
        if (!pq_read_compare(&f, cols, NCOLS, nrows, &opts, err, sizeof(err)))
            fail_with("round trip", err);
        pq_read_cleanup(&f);
    }

    /* One byte flipped: refused or read, never a crash. */
    ((unsigned char *)a.data)[flip_at % a.len] ^= (unsigned char)flip;
    rc = pq_read(a.data, a.len, &f, err, sizeof(err));
    if (rc != TF_OK && rc != TF_ERR_INVALID)
        fail_with("read a flipped file", err);
    pq_read_cleanup(&f);

    tf_buf_cleanup(&a);
    tf_buf_cleanup(&b);
    return 0;
}
