/*
 * gz.c - gzip and gunzip with zlib, streaming into capped buffers.
 */
#include "tf/gz.h"

#include <stdint.h>
#include <string.h>
#include <zlib.h>

enum tf_rc tf_gzip(const void *data, size_t len, struct tf_buf *out)
{
    unsigned char chunk[65536];
    z_stream zs;
    enum tf_rc rc = TF_OK;
    int zr;

    memset(&zs, 0, sizeof(zs));
    /* Level 1: JSON pages shrink about 3x at a seventh of level 6's cost.
     * 15 + 16: a gzip header and trailer rather than zlib's. */
    if (deflateInit2(&zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return TF_ERR_NOMEM;
    zs.next_in = (Bytef *)(uintptr_t)data;
    zs.avail_in = (uInt)len;
    do {
        zs.next_out = chunk;
        zs.avail_out = sizeof(chunk);
        zr = deflate(&zs, Z_FINISH);
        if (zr == Z_STREAM_ERROR) {
            rc = TF_ERR_INVALID;
            break;
        }
        rc = tf_buf_append(out, chunk, sizeof(chunk) - zs.avail_out);
    } while (rc == TF_OK && zr != Z_STREAM_END);
    deflateEnd(&zs);
    return rc;
}

enum tf_rc tf_gunzip(const void *data, size_t len, struct tf_buf *out)
{
    unsigned char chunk[65536];
    z_stream zs;
    enum tf_rc rc = TF_OK;
    int zr = Z_OK;

    memset(&zs, 0, sizeof(zs));
    /* 15 + 32: accept gzip or zlib headers. */
    if (inflateInit2(&zs, 15 + 32) != Z_OK)
        return TF_ERR_NOMEM;
    zs.next_in = (Bytef *)(uintptr_t)data;
    zs.avail_in = (uInt)len;
    while (rc == TF_OK && zr != Z_STREAM_END) {
        zs.next_out = chunk;
        zs.avail_out = sizeof(chunk);
        zr = inflate(&zs, Z_NO_FLUSH);
        if (zr != Z_OK && zr != Z_STREAM_END) {
            rc = TF_ERR_INVALID; /* damaged, or truncated (Z_BUF_ERROR) */
            break;
        }
        rc = tf_buf_append(out, chunk, sizeof(chunk) - zs.avail_out);
        if (zr == Z_OK && zs.avail_in == 0 && zs.avail_out != 0) {
            rc = TF_ERR_INVALID; /* input ended before the stream did */
            break;
        }
    }
    inflateEnd(&zs);
    return rc;
}
