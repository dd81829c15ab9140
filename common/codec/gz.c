/*
 * gz.c - zstd with libzstd, gzip with zlib, into capped buffers.
 */
#include "tf/gz.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

struct tf_zstd {
    ZSTD_CCtx *cctx;
};

struct tf_zstd *tf_zstd_new(int level)
{
    struct tf_zstd *z = calloc(1, sizeof(*z));

    if (!z || !(z->cctx = ZSTD_createCCtx())) {
        free(z);
        return NULL;
    }
    if (ZSTD_isError(ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_compressionLevel, level)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_checksumFlag, 1))) {
        tf_zstd_free(z);
        return NULL;
    }
    return z;
}

void tf_zstd_free(struct tf_zstd *z)
{
    if (!z)
        return;
    ZSTD_freeCCtx(z->cctx);
    free(z);
}

enum tf_rc tf_zstd_compress(struct tf_zstd *z, const void *data, size_t len, struct tf_buf *out)
{
    size_t bound = ZSTD_compressBound(len), n;
    enum tf_rc rc = tf_buf_reserve(out, bound);

    if (rc != TF_OK)
        return rc;
    /* One call with the whole input: the frame header carries its size. */
    n = ZSTD_compress2(z->cctx, out->data + out->len, bound, data, len);
    if (ZSTD_isError(n))
        return TF_ERR_INVALID;
    out->len += n;
    out->data[out->len] = '\0';
    return TF_OK;
}

enum tf_rc tf_zstd_decompress(const void *data, size_t len, struct tf_buf *out)
{
    unsigned char chunk[65536];
    ZSTD_DStream *ds = ZSTD_createDStream();
    ZSTD_inBuffer in = {data, len, 0};
    enum tf_rc rc = TF_OK;
    size_t left = 1;

    if (!ds)
        return TF_ERR_NOMEM;
    /* Frames larger than 128 MiB windows are refused (the default limit). */
    while (rc == TF_OK && in.pos < in.size) {
        ZSTD_outBuffer o = {chunk, sizeof(chunk), 0};
        left = ZSTD_decompressStream(ds, &o, &in);
        if (ZSTD_isError(left)) {
            rc = TF_ERR_INVALID;
            break;
        }
        rc = tf_buf_append(out, chunk, o.pos);
        /* Output may still be buffered inside the stream after the input ends. */
        while (rc == TF_OK && in.pos == in.size && o.pos == o.size) {
            o.pos = 0;
            left = ZSTD_decompressStream(ds, &o, &in);
            if (ZSTD_isError(left)) {
                rc = TF_ERR_INVALID;
                break;
            }
            rc = tf_buf_append(out, chunk, o.pos);
        }
    }
    /* left != 0: the input ended inside a frame. */
    if (rc == TF_OK && (left != 0 || len == 0))
        rc = TF_ERR_INVALID;
    ZSTD_freeDStream(ds);
    return rc;
}

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

enum tf_rc tf_unpack(const char *encoding, const void *data, size_t len, struct tf_buf *out)
{
    if (!encoding || strcmp(encoding, "identity") == 0)
        return tf_buf_append(out, data, len);
    if (strcmp(encoding, "zstd") == 0)
        return tf_zstd_decompress(data, len, out);
    if (strcmp(encoding, "gzip") == 0)
        return tf_gunzip(data, len, out);
    return TF_ERR_INVALID;
}
