/*
 * tf/cfg.h - configuration from TICKFLOW_* environment variables.
 *
 * Each service describes its settings in one table (name, type, default,
 * bounds, flags). tf_cfg_load() checks every key, reports every bad one at
 * once, and reads NAME_FILE for secrets (Docker and Kubernetes secrets).
 * The lookup function is a parameter so unit tests can fake the environment.
 */
#ifndef TF_CFG_H
#define TF_CFG_H

#include <stddef.h>

#include "tf/log.h"
#include "tf/rc.h"

enum tf_cfg_type {
    TF_CFG_STR, /* char *, owned by the struct, freed by tf_cfg_cleanup */
    TF_CFG_INT, /* long, within [min, max] */
};

#define TF_CFG_REQUIRED 0x1u
#define TF_CFG_SECRET   0x2u /* never logged; NAME_FILE accepted */

struct tf_cfg_key {
    const char *name;
    enum tf_cfg_type type;
    size_t offset; /* offsetof the field in the caller's struct */
    const char *def;
    unsigned flags;
    long min;
    long max;
};

/* A table entry for field f of struct type st (a stage wraps it in its own
 * NAME_KEY("TICKFLOW_...", ...) macro). */
#define TF_CFG_KEY(st, n, t, f, d, fl, lo, hi)                                                     \
    {                                                                                              \
        n, t, offsetof(st, f), d, fl, lo, hi                                                       \
    }

typedef const char *(*tf_cfg_lookup_fn)(const char *name, void *ud);

/** The process environment as a lookup function (ud unused). */
const char *tf_cfg_getenv(const char *name, void *ud);

/**
 * Fills the struct at cfg from the table. On failure returns TF_ERR_INVALID
 * with one line per bad key in errbuf; strings already set stay owned by cfg
 * and are freed by tf_cfg_cleanup().
 */
enum tf_rc tf_cfg_load(const struct tf_cfg_key *keys, size_t n, tf_cfg_lookup_fn lookup, void *ud,
                       void *cfg, char *errbuf, size_t errlen) TF_MUSTCHECK;

/** Frees the string fields named in the table. */
void tf_cfg_cleanup(const struct tf_cfg_key *keys, size_t n, void *cfg);

/** Logs the effective configuration, secrets shown as "(set)". */
void tf_cfg_log(const struct tf_cfg_key *keys, size_t n, const void *cfg);

/**
 * Writes a libpq connection string (URI or key=value) to out as
 * key=value pairs with password and sslpassword shown as "***", for logs.
 */
void tf_cfg_redact_dsn(const char *dsn, char *out, size_t outlen);

#endif
