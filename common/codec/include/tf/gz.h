/*
 * tf/gz.h - compression of lake objects: zstd (RFC 8878) on libzstd, the
 * bronze format, and gzip (RFC 1952) on zlib, which older bronze objects
 * use and transform still reads.
 */
#ifndef TF_GZ_H
#define TF_GZ_H

#include <stddef.h>

#include "tf/buf.h"
#include "tf/rc.h"

/** Appends the gzip of data to out (out's cap applies). */
enum tf_rc tf_gzip(const void *data, size_t len, struct tf_buf *out) TF_MUSTCHECK;

/**
 * Appends the inflated content of a gzip (or zlib) stream to out; out's cap
 * bounds what a small hostile input can expand to (TF_ERR_TOO_LARGE).
 * TF_ERR_INVALID for a damaged or truncated stream.
 */
enum tf_rc tf_gunzip(const void *data, size_t len, struct tf_buf *out) TF_MUSTCHECK;

/** A zstd compressor with its tables, kept by one thread for many objects. */
struct tf_zstd;

/** A compressor at level (1 = fastest); NULL when out of memory. */
struct tf_zstd *tf_zstd_new(int level);

/** NULL-safe. */
void tf_zstd_free(struct tf_zstd *z);

/**
 * Appends one zstd frame holding data to out (out's cap applies), with the
 * content size and a content checksum in the frame.
 */
enum tf_rc tf_zstd_compress(struct tf_zstd *z, const void *data, size_t len,
                            struct tf_buf *out) TF_MUSTCHECK;

/**
 * Appends the content of one or more zstd frames to out; out's cap bounds
 * the expansion (TF_ERR_TOO_LARGE). TF_ERR_INVALID for a damaged or
 * truncated frame, or a checksum that does not match.
 */
enum tf_rc tf_zstd_decompress(const void *data, size_t len, struct tf_buf *out) TF_MUSTCHECK;

/**
 * Appends the content of an object stored with encoding ("zstd", "gzip";
 * NULL or "identity": the bytes as they are) to out, with the bounds of
 * the functions above. TF_ERR_INVALID for an unknown encoding.
 */
enum tf_rc tf_unpack(const char *encoding, const void *data, size_t len,
                     struct tf_buf *out) TF_MUSTCHECK;

#endif
