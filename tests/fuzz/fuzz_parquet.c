/*
 * fuzz_parquet.c - libFuzzer: the Parquet writer on columns made from the
 * input (strings, timestamps, doubles with NaN and infinities, nulls; any
 * row count and row-group size). What it writes starts and ends with
 * PAR1, its footer length points inside the file, and writing the same
 * columns again gives the same bytes. (Reading the files back is the
 * suite's part: tests/lake/check_parquet.py reads test_parquet's with
 * pyarrow.)
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tf/buf.h"
#include "transform/parquet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ROWS 512

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char text[MAX_ROWS][24];
    static const char *strs[MAX_ROWS];
    static int64_t ts[MAX_ROWS];
    static double d[MAX_ROWS];
    static unsigned char has[MAX_ROWS];
    size_t nrows, group;
    struct tf_buf a, b;
    char err[256];
    enum tf_rc ra, rb;

    if (size < 2)
        return 0;
    nrows = (size_t)data[0] * 2 % (MAX_ROWS + 1);
    group = (size_t)data[1] % 64;
    data += 2;
    size -= 2;
    for (size_t r = 0; r < nrows; r++) {
        uint8_t x = size ? data[r % size] : 0;
        size_t len = x % sizeof(text[0]);

        for (size_t k = 0; k < len; k++)
            text[r][k] = (char)('a' + (size ? data[(r + k) % size] : 0) % 26);
        text[r][len] = '\0';
        strs[r] = text[r];
        ts[r] = (int64_t)x * 60000000LL * (int64_t)(r + 1);
        has[r] = x % 5 != 0;
        d[r] = x % 7 == 0 ? (double)NAN : x % 11 == 0 ? (double)INFINITY : (double)x / 3.0;
    }
    {
        const struct tf_pq_column cols[] = {
            {"ticker", TF_PQ_STRING, 0, strs, NULL}, {"ts", TF_PQ_TIMESTAMP_US, 0, ts, NULL},
            {"close", TF_PQ_DOUBLE, 0, d, NULL},     {"volume", TF_PQ_DOUBLE, 1, d, has},
            {"trades", TF_PQ_INT64, 1, ts, has},
        };

        tf_buf_init(&a, (size_t)64 << 20);
        tf_buf_init(&b, (size_t)64 << 20);
        ra = tf_pq_write(cols, 5, nrows, group, &a, err, sizeof(err));
        rb = tf_pq_write(cols, 5, nrows, group, &b, err, sizeof(err));
    }
    if (ra != rb)
        __builtin_trap(); /* the same columns, another outcome */
    if (ra == TF_OK) {
        uint32_t footer;

        if (a.len < 12 || memcmp(a.data, "PAR1", 4) != 0 || memcmp(a.data + a.len - 4, "PAR1", 4))
            __builtin_trap(); /* not framed as Parquet */
        memcpy(&footer, a.data + a.len - 8, 4);
        if ((size_t)footer + 12 > a.len)
            __builtin_trap(); /* the footer runs outside the file */
        if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
            __builtin_trap(); /* not deterministic */
    }
    tf_buf_cleanup(&a);
    tf_buf_cleanup(&b);
    return 0;
}
