/*
 * tf/gz.h - gzip (RFC 1952) on zlib, for lake objects.
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

#endif
