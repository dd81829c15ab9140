/*
 * cfg.c - table-driven configuration loading, checking and logging.
 */
#include "tf/cfg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

const char *tf_cfg_getenv(const char *name, void *ud)
{
    (void)ud;
    return getenv(name);
}

/* Reads a secret file; strips one trailing newline. Returns a new string. */
static char *read_secret_file(const char *path, char *err, size_t errlen)
{
    FILE *fp = NULL;
    char *data = NULL;
    size_t len = 0;
    size_t cap = 4096;

    fp = fopen(path, "rb");
    if (!fp) {
        snprintf(err, errlen, "cannot open: %s", strerror(errno));
        return NULL;
    }
    data = malloc(cap + 1);
    if (data)
        len = fread(data, 1, cap, fp);
    if (data && !feof(fp)) {
        snprintf(err, errlen, "file larger than %zu bytes", cap);
        free(data);
        data = NULL;
    }
    fclose(fp);
    if (!data)
        return NULL;
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
        len--;
    data[len] = '\0';
    return data;
}

/* Appends "name: why" as one line of the error report. */
static void add_err(char *errbuf, size_t errlen, size_t *used, const char *name, const char *why)
{
    int n;

    if (*used >= errlen)
        return;
    n = snprintf(errbuf + *used, errlen - *used, "%s: %s\n", name, why);
    if (n > 0)
        *used += (size_t)n;
}

enum tf_rc tf_cfg_load(const struct tf_cfg_key *keys, size_t n, tf_cfg_lookup_fn lookup, void *ud,
                       void *cfg, char *errbuf, size_t errlen)
{
    size_t used = 0;
    int bad = 0;

    if (errlen)
        errbuf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const struct tf_cfg_key *k = &keys[i];
        char *field = (char *)cfg + k->offset;
        const char *val = lookup(k->name, ud);
        char *owned = NULL;

        if (k->flags & TF_CFG_SECRET) {
            char fname[128];
            const char *path;

            snprintf(fname, sizeof(fname), "%s_FILE", k->name);
            path = lookup(fname, ud);
            if (path && *path && val && *val) {
                add_err(errbuf, errlen, &used, k->name, "set it or its _FILE variant, not both");
                bad = 1;
                continue;
            }
            if (path && *path) {
                char why[128];

                owned = read_secret_file(path, why, sizeof(why));
                if (!owned) {
                    add_err(errbuf, errlen, &used, fname, why);
                    bad = 1;
                    continue;
                }
                val = owned;
                if (!*owned) { /* an empty file is the same as no file */
                    free(owned);
                    owned = NULL;
                    val = NULL;
                }
            }
        }
        if (val && !*val)
            val = NULL;
        if (!val)
            val = k->def;
        if (!val) {
            if (k->flags & TF_CFG_REQUIRED) {
                add_err(errbuf, errlen, &used, k->name, "required but not set");
                bad = 1;
            }
            if (k->type == TF_CFG_STR)
                *(char **)field = NULL;
            continue;
        }
        if (k->type == TF_CFG_STR) {
            *(char **)field = owned ? owned : strdup(val);
            owned = NULL;
        } else {
            char *end = NULL;
            long v;

            errno = 0;
            v = strtol(val, &end, 10);
            if (errno || end == val || *end || v < k->min || v > k->max) {
                char why[96];

                snprintf(why, sizeof(why), "expected an integer in %ld..%ld", k->min, k->max);
                add_err(errbuf, errlen, &used, k->name, why);
                bad = 1;
            } else {
                *(long *)field = v;
            }
        }
        free(owned);
    }
    if (used > 0 && errbuf[used - 1] == '\n')
        errbuf[used - 1] = '\0';
    return bad ? TF_ERR_INVALID : TF_OK;
}

void tf_cfg_cleanup(const struct tf_cfg_key *keys, size_t n, void *cfg)
{
    for (size_t i = 0; i < n; i++) {
        if (keys[i].type == TF_CFG_STR) {
            char **field = (char **)((char *)cfg + keys[i].offset);
            free(*field);
            *field = NULL;
        }
    }
}

void tf_cfg_redact_dsn(const char *dsn, char *out, size_t outlen)
{
    /* libpq's own parser: whatever spelling libpq accepts, it is masked. */
    PQconninfoOption *opts = PQconninfoParse(dsn, NULL);
    size_t used = 0;

    if (outlen == 0)
        return;
    out[0] = '\0';
    if (!opts) {
        snprintf(out, outlen, "(a connection string libpq cannot parse)");
        return;
    }
    for (const PQconninfoOption *o = opts; o->keyword; o++) {
        int secret = strcmp(o->keyword, "password") == 0 || strcmp(o->keyword, "sslpassword") == 0;
        int n;

        if (!o->val || !*o->val)
            continue;
        n = snprintf(out + used, outlen - used, "%s%s=%s", used ? " " : "", o->keyword,
                     secret ? "***" : o->val);
        if (n < 0 || (size_t)n >= outlen - used) {
            out[used] = '\0';
            break;
        }
        used += (size_t)n;
    }
    PQconninfoFree(opts);
}

void tf_cfg_log(const struct tf_cfg_key *keys, size_t n, const void *cfg)
{
    for (size_t i = 0; i < n; i++) {
        const struct tf_cfg_key *k = &keys[i];
        const char *field = (const char *)cfg + k->offset;

        if (k->type == TF_CFG_INT) {
            tf_log_info(NULL, "config %s=%ld", k->name, *(const long *)field);
            continue;
        }
        const char *v = *(char *const *)field;
        if (!v) {
            tf_log_info(NULL, "config %s=(unset)", k->name);
        } else if (k->flags & TF_CFG_SECRET) {
            if (strstr(k->name, "DSN")) {
                char red[512];
                tf_cfg_redact_dsn(v, red, sizeof(red));
                tf_log_info(NULL, "config %s=%s", k->name, red);
            } else {
                tf_log_info(NULL, "config %s=(set)", k->name);
            }
        } else {
            tf_log_info(NULL, "config %s=%s", k->name, v);
        }
    }
}
