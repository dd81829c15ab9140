/*
 * pq_read.h - a strict, test-only Parquet reader for exactly what
 * services/transform/parquet.c writes, so tests and the fuzzer can check a
 * round trip in process: flat schemas of BYTE_ARRAY (UTF8 / STRING), INT64
 * (plain, or TIMESTAMP_MICROS adjusted to UTC) and DOUBLE columns,
 * REQUIRED or OPTIONAL; v1 data pages, PLAIN or RLE_DICTIONARY after one
 * PLAIN dictionary page; definition levels in the RLE/bit-packed hybrid;
 * ZSTD pages; the Thrift compact footer with statistics.
 *
 * Anything else is refused with TF_ERR_INVALID and a reason: another codec,
 * page or encoding, a nested schema, and every length, offset or count that
 * does not add up (pages that do not fill their chunk exactly, chunks that
 * do not follow one another, sizes and counts in the metadata that differ
 * from the pages'). The reader never trusts a length it has not checked
 * against the bytes it was given, so it is safe on any input.
 */
#ifndef TF_PQ_READ_H
#define TF_PQ_READ_H

#include <stddef.h>
#include <stdint.h>

#include "tf/rc.h"
#include "transform/parquet.h"

/* Most rows the reader takes (a bound on what a malformed file can make it
   allocate). */
#define PQ_READ_MAX_ROWS (1u << 24)
/* Largest decompressed page. */
#define PQ_READ_MAX_PAGE (256u << 20)
/* Deepest nesting of Thrift structs and lists. */
#define PQ_READ_MAX_DEPTH 16

/* One column chunk's statistics, as found in the footer. min and max point
   into the caller's file bytes (valid while they are). */
struct pq_read_stats {
    int has_null_count;
    int64_t null_count;
    int has_min, has_max; /* min_value (6) and max_value (5) */
    const unsigned char *min, *max;
    size_t min_len, max_len;
    int min_exact, max_exact; /* is_min_value_exact / is_max_value_exact: -1 absent */
};

/* One PageEncodingStats of a chunk's metadata (checked against its pages). */
struct pq_read_enc_stats {
    int page_type, encoding, count;
};

/* One column chunk: where it is and what its pages held. */
struct pq_read_chunk {
    int64_t start; /* first page: the dictionary's, or the first data page's */
    int64_t file_offset;
    int64_t data_offset;
    int64_t dict_offset; /* -1: no dictionary page */
    int64_t compressed, uncompressed;
    int64_t num_values;
    unsigned encodings; /* bit 1 << e for each encoding the metadata lists */
    struct pq_read_enc_stats enc_stats[4];
    size_t nenc_stats;
    size_t data_pages;
    int64_t max_page_values; /* rows of the largest data page */
    size_t dict_entries;     /* entries of the dictionary page (0 without one) */
    int dict_encoded;        /* 1: data pages are RLE_DICTIONARY */
    struct pq_read_stats stats;
};

struct pq_read_group {
    int64_t num_rows;
    int64_t total_byte_size;
    int64_t total_compressed_size; /* -1: absent */
    int64_t file_offset;           /* -1: absent */
    int ordinal;                   /* -1: absent */
    struct pq_read_chunk *chunks;  /* one per column */
};

/* One column's values over the whole file, row by row. */
struct pq_read_col {
    char *name;
    enum tf_pq_type type; /* from the physical, converted and logical types */
    int optional;
    unsigned char *present; /* nrows: 1 = value, 0 = null */
    int64_t *i64;           /* INT64 and TIMESTAMP_US: nrows (0 in null rows) */
    double *f64;            /* DOUBLE: nrows, the bits as stored (0 in null rows) */
    const char **str;       /* STRING: nrows, NUL-terminated copies; NULL in null rows */
    size_t *str_len;        /* STRING: nrows, each string's length */
    char *arena;            /* owns the strings */
};

struct pq_read_kv {
    char *key;
    char *value; /* NULL: no value */
};

struct pq_read_file {
    int32_t version;
    int64_t num_rows;
    size_t ncols;
    struct pq_read_col *cols;
    size_t ngroups;
    struct pq_read_group *groups;
    size_t nkv;
    struct pq_read_kv *kv;
    char *created_by;      /* NULL: absent */
    size_t ncolumn_orders; /* entries of column_orders, each TYPE_ORDER */
    size_t footer_len;
};

/**
 * Reads the Parquet file data[0..len) into f (which needs no set-up). The
 * file's bytes are not kept, except by the statistics' min and max.
 *
 * Returns TF_OK; TF_ERR_INVALID when the bytes are not a file this reader
 * takes, with the reason in err; TF_ERR_NOMEM. f must be given to
 * pq_read_cleanup on every outcome.
 */
enum tf_rc pq_read(const void *data, size_t len, struct pq_read_file *f, char *err,
                   size_t errlen) TF_MUSTCHECK;

/**
 * Compares what pq_read read with the columns tf_pq_write_opts was given
 * (opts as given to it, NULL for the defaults): the schema; the row count
 * and the row groups; every value and null, doubles by their bits; each
 * chunk's statistics as the writer defines them (null_count; min and max
 * of the values, NaN left out, zero bounds as -0.0 and +0.0, strings by
 * their bytes; none when no value qualifies); PLAIN pages where no
 * dictionary may be used; data pages of at most page_rows rows; created_by
 * and the key_value_metadata.
 *
 * Returns 1 when they agree; 0 with the first difference in err.
 */
int pq_read_compare(const struct pq_read_file *f, const struct tf_pq_column *cols, size_t ncols,
                    size_t nrows, const struct tf_pq_opts *opts, char *err,
                    size_t errlen) TF_MUSTCHECK;

/** Frees what pq_read put in f and zeroes it; a zeroed f is fine. */
void pq_read_cleanup(struct pq_read_file *f);

#endif
