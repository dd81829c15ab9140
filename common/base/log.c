/*
 * log.c - logfmt lines on stdout, one fwrite per line so that lines from
 * several threads never interleave.
 */
#include "tf/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum tf_log_level tf_log_min = TF_LOG_INFO;
static char log_svc[32] = "tickflow";

void tf_log_init(const char *svc, enum tf_log_level min)
{
    snprintf(log_svc, sizeof(log_svc), "%s", svc);
    tf_log_min = min;
}

enum tf_rc tf_log_level_parse(const char *s, enum tf_log_level *out)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};

    for (size_t i = 0; i < TF_ARRAY_LEN(names); i++) {
        if (strcasecmp(s, names[i]) == 0) {
            *out = (enum tf_log_level)i;
            return TF_OK;
        }
    }
    return TF_ERR_INVALID;
}

void tf_logctx_set_exec(struct tf_logctx *ctx, const char *exec)
{
    snprintf(ctx->exec, sizeof(ctx->exec), "%s", exec ? exec : "");
}

/* Appends src to dst[*pos..cap) escaping quotes, backslashes and controls. */
static void put_escaped(char *dst, size_t *pos, size_t cap, const char *src)
{
    for (; *src && *pos + 3 < cap; src++) {
        unsigned char c = (unsigned char)*src;
        if (c == '"' || c == '\\') {
            dst[(*pos)++] = '\\';
            dst[(*pos)++] = (char)c;
        } else if (c == '\n') {
            dst[(*pos)++] = '\\';
            dst[(*pos)++] = 'n';
        } else if (c < 0x20) {
            dst[(*pos)++] = ' ';
        } else {
            dst[(*pos)++] = (char)c;
        }
    }
}

void tf_log_write(enum tf_log_level lvl, const struct tf_logctx *ctx, const char *fmt, ...)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    char msg[2048];
    char line[4096];
    struct timespec now;
    struct tm tm;
    size_t pos;
    va_list ap;
    int n;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    n = snprintf(line, sizeof(line), "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s svc=%s",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 now.tv_nsec / 1000000, names[lvl], log_svc);
    pos = (size_t)n;
    if (ctx && ctx->exec[0])
        pos += (size_t)snprintf(line + pos, sizeof(line) - pos, " exec=%s", ctx->exec);
    if (ctx && ctx->req[0])
        pos += (size_t)snprintf(line + pos, sizeof(line) - pos, " req=%s", ctx->req);
    pos += (size_t)snprintf(line + pos, sizeof(line) - pos, " msg=\"");
    put_escaped(line, &pos, sizeof(line) - 2, msg);
    line[pos++] = '"';
    line[pos++] = '\n';
    fwrite(line, 1, pos, stdout);
    fflush(stdout);
}
