/*
 * tf/buf.h - a growable byte buffer with a hard cap (curl's dynbuf idea).
 *
 * The data is always NUL-terminated so text can be used as a C string.
 */
#ifndef TF_BUF_H
#define TF_BUF_H

#include <stddef.h>

#include "tf/rc.h"

struct tf_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max; /* appends past this fail with TF_ERR_TOO_LARGE */
};

/** Prepares an empty buffer that may grow up to max bytes. */
void tf_buf_init(struct tf_buf *buf, size_t max);

/** Frees the data; the buffer may be reused after tf_buf_init. NULL-safe. */
void tf_buf_cleanup(struct tf_buf *buf);

/** Empties the buffer, keeping its memory. */
void tf_buf_reset(struct tf_buf *buf);

/**
 * Makes room for at least extra more bytes past len (for writers that fill
 * data + len themselves and then add to len). TF_ERR_TOO_LARGE past the
 * cap, TF_ERR_NOMEM.
 */
enum tf_rc tf_buf_reserve(struct tf_buf *buf, size_t extra) TF_MUSTCHECK;

/** Appends n bytes. TF_ERR_TOO_LARGE past the cap, TF_ERR_NOMEM. */
enum tf_rc tf_buf_append(struct tf_buf *buf, const void *data, size_t n) TF_MUSTCHECK;

/** Appends a C string. */
enum tf_rc tf_buf_puts(struct tf_buf *buf, const char *s) TF_MUSTCHECK;

/** Appends formatted text. */
enum tf_rc tf_buf_printf(struct tf_buf *buf, const char *fmt, ...) TF_PRINTF(2, 3) TF_MUSTCHECK;

/**
 * Returns the data (caller frees with free()) and leaves the buffer empty.
 * NULL when nothing was ever appended.
 */
char *tf_buf_take(struct tf_buf *buf);

#endif
