/*
 * tf/log.h - one logfmt line per event on stdout.
 *
 *   ts=2026-11-22T01:58:00.123Z level=info svc=extract exec=5b0e... req=7f3a... msg="..."
 *
 * The level is tested before anything is formatted. A context carries the
 * execution id and the request id; NULL is allowed and leaves them out.
 * Secrets never reach the formatter: callers redact before logging.
 */
#ifndef TF_LOG_H
#define TF_LOG_H

#include "tf/rc.h"

enum tf_log_level { TF_LOG_DEBUG = 0, TF_LOG_INFO, TF_LOG_WARN, TF_LOG_ERROR };

struct tf_logctx {
    char exec[40]; /* execution id, "" when none */
    char req[72];  /* request id, "" when none */
};

extern enum tf_log_level tf_log_min;

/** Sets the service name printed as svc= and the minimum level. */
void tf_log_init(const char *svc, enum tf_log_level min);

/** Parses "debug|info|warn|error"; returns TF_ERR_INVALID otherwise. */
enum tf_rc tf_log_level_parse(const char *s, enum tf_log_level *out);

/** Sets ctx->exec (truncated to fit); exec may be NULL. */
void tf_logctx_set_exec(struct tf_logctx *ctx, const char *exec);

void tf_log_write(enum tf_log_level lvl, const struct tf_logctx *ctx, const char *fmt, ...)
    TF_PRINTF(3, 4);

#define TF_LOG_AT(lvl, ctx, ...)                                                                   \
    do {                                                                                           \
        if ((lvl) >= tf_log_min)                                                                   \
            tf_log_write((lvl), (ctx), __VA_ARGS__);                                               \
    } while (0)

#define tf_log_debug(ctx, ...) TF_LOG_AT(TF_LOG_DEBUG, ctx, __VA_ARGS__)
#define tf_log_info(ctx, ...)  TF_LOG_AT(TF_LOG_INFO, ctx, __VA_ARGS__)
#define tf_log_warn(ctx, ...)  TF_LOG_AT(TF_LOG_WARN, ctx, __VA_ARGS__)
#define tf_log_error(ctx, ...) TF_LOG_AT(TF_LOG_ERROR, ctx, __VA_ARGS__)

#endif
