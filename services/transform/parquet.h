/*
 * tf/parquet.h - a small Parquet file writer (silver lake files).
 *
 * Apache Arrow is not packaged for our Debian, so tickflow encodes Parquet
 * itself: flat schemas of STRING, INT64, DOUBLE and TIMESTAMP (microseconds,
 * UTC) columns, REQUIRED or OPTIONAL, PLAIN data pages (v1) with a dictionary
 * for strings that repeat, ZSTD compression, column-chunk statistics and a
 * Thrift compact-protocol footer. The same input always gives the same bytes.
 */
#ifndef TF_PARQUET_H
#define TF_PARQUET_H

#include <stddef.h>
#include <stdint.h>

#include "tf/buf.h"
#include "tf/rc.h"

enum tf_pq_type { TF_PQ_STRING, TF_PQ_INT64, TF_PQ_DOUBLE, TF_PQ_TIMESTAMP_US };

struct tf_pq_column {
    const char *name;
    enum tf_pq_type type;
    int optional; /* 1: OPTIONAL column (nulls allowed), 0: REQUIRED */
    /* nrows values: const char *const * for STRING (UTF-8, NUL-terminated),
       const int64_t * for INT64 and TIMESTAMP_US (microseconds since the
       epoch, UTC), const double * for DOUBLE. A null row's value is not read
       (it may be NULL for STRING). */
    const void *values;
    const unsigned char *present; /* optional columns: 1 = value, 0 = null; NULL = all present */
};

/* One key/value pair of the file's key_value_metadata. */
struct tf_pq_kv {
    const char *key;
    const char *value;
};

/* Tuning for tf_pq_write_opts; a zeroed struct means the defaults. */
struct tf_pq_opts {
    size_t rows_per_group;     /* 0: TF_PQ_DEFAULT_GROUP_ROWS */
    size_t page_rows;          /* most rows in one data page; 0: TF_PQ_DEFAULT_PAGE_ROWS */
    size_t page_bytes;         /* a page closes past this many bytes; 0: TF_PQ_DEFAULT_PAGE_BYTES */
    int zstd_level;            /* 0: TF_PQ_DEFAULT_ZSTD_LEVEL; 1-3 suit the lake */
    int no_dictionary;         /* 1: PLAIN strings even when they repeat */
    const struct tf_pq_kv *kv; /* key_value_metadata, written in this order */
    size_t nkv;
};

#define TF_PQ_DEFAULT_GROUP_ROWS 1000000
#define TF_PQ_DEFAULT_PAGE_ROWS  20000
#define TF_PQ_DEFAULT_PAGE_BYTES (1024 * 1024)
#define TF_PQ_DEFAULT_ZSTD_LEVEL 3
#define TF_PQ_DICT_MAX_BYTES     (1024 * 1024) /* larger dictionaries fall back to PLAIN */
#define TF_PQ_DICT_MAX_ENTRIES   65536

/**
 * Encodes a whole Parquet file (cols x nrows) and appends it to out, which
 * the caller initialised with tf_buf_init and a cap large enough for the
 * file. Offsets inside the file count from where it starts in out.
 *
 * rows_per_group: rows per row group (0 = TF_PQ_DEFAULT_GROUP_ROWS).
 *
 * Returns TF_OK; TF_ERR_INVALID for a bad schema or value (no columns, a NULL
 * or empty or repeated name, an unknown type, NULL values with rows, a null
 * in a REQUIRED column, a string that is not UTF-8), with the reason in err;
 * TF_ERR_TOO_LARGE or TF_ERR_NOMEM from the buffer or the encoder. On any
 * error out is left as it was before the call.
 */
enum tf_rc tf_pq_write(const struct tf_pq_column *cols, size_t ncols, size_t nrows,
                       size_t rows_per_group, struct tf_buf *out, char *err,
                       size_t errlen) TF_MUSTCHECK;

/** tf_pq_write with explicit tuning (opts may be NULL for the defaults). */
enum tf_rc tf_pq_write_opts(const struct tf_pq_column *cols, size_t ncols, size_t nrows,
                            const struct tf_pq_opts *opts, struct tf_buf *out, char *err,
                            size_t errlen) TF_MUSTCHECK;

#endif
