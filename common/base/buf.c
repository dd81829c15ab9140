/*
 * buf.c - growable, capped, NUL-terminated byte buffers.
 */
#include "tf/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tf_buf_init(struct tf_buf *buf, size_t max)
{
    buf->data = NULL;
    buf->len = 0;
    buf->cap = 0;
    buf->max = max;
}

void tf_buf_cleanup(struct tf_buf *buf)
{
    if (!buf)
        return;
    free(buf->data);
    buf->data = NULL;
    buf->len = 0;
    buf->cap = 0;
}

void tf_buf_reset(struct tf_buf *buf)
{
    buf->len = 0;
    if (buf->data)
        buf->data[0] = '\0';
}

static enum tf_rc reserve(struct tf_buf *buf, size_t extra)
{
    size_t need;
    size_t cap;
    char *data;

    if (extra > buf->max || buf->len > buf->max - extra)
        return TF_ERR_TOO_LARGE;
    need = buf->len + extra + 1;
    if (need <= buf->cap)
        return TF_OK;
    cap = buf->cap ? buf->cap : 256;
    while (cap < need)
        cap *= 2;
    data = realloc(buf->data, cap);
    if (!data)
        return TF_ERR_NOMEM;
    buf->data = data;
    buf->cap = cap;
    return TF_OK;
}

enum tf_rc tf_buf_reserve(struct tf_buf *buf, size_t extra)
{
    return reserve(buf, extra);
}

enum tf_rc tf_buf_append(struct tf_buf *buf, const void *data, size_t n)
{
    enum tf_rc rc = reserve(buf, n);

    if (rc != TF_OK)
        return rc;
    if (n)
        memcpy(buf->data + buf->len, data, n);
    buf->len += n;
    buf->data[buf->len] = '\0';
    return TF_OK;
}

enum tf_rc tf_buf_puts(struct tf_buf *buf, const char *s)
{
    return tf_buf_append(buf, s, strlen(s));
}

enum tf_rc tf_buf_printf(struct tf_buf *buf, const char *fmt, ...)
{
    va_list ap;
    enum tf_rc rc;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return TF_ERR_INVALID;
    rc = reserve(buf, (size_t)n);
    if (rc != TF_OK)
        return rc;
    va_start(ap, fmt);
    vsnprintf(buf->data + buf->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    buf->len += (size_t)n;
    return TF_OK;
}

char *tf_buf_take(struct tf_buf *buf)
{
    char *data = buf->data;

    buf->data = NULL;
    buf->len = 0;
    buf->cap = 0;
    return data;
}
