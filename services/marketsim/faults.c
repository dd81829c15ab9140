/*
 * faults.c - marketsim's test controls (API in faults.h).
 *
 * Owns the fault rule set and the request statistics. Each sits behind its
 * own mutex: connection threads draw faults and count requests while the
 * control API replaces rules or reads counts. Per-ticker counts live in an
 * array kept in order of first request, indexed by an open-addressing hash
 * table, and stop growing at STATS_MAX_TICKERS names (later names still
 * count in "requests" and "by_provider").
 */
#include "faults.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "gen.h"
#include "tf/hash.h"

#define STATS_MAX_TICKERS 100000
#define TIMES_MAX         1000000000L

struct ticker_count {
    char *name; /* owned */
    long count;
};

struct marketsim_ctl {
    pthread_mutex_t rules_mu;
    struct marketsim_fault_rule rules[MARKETSIM_MAX_RULES];
    size_t nrules;

    pthread_mutex_t stats_mu;
    long requests;
    long polygon;
    long twelvedata;
    long faults_served;
    struct ticker_count *tickers; /* owned, in order of first request */
    size_t ntickers;
    size_t tickers_cap;
    size_t *slots; /* owned: hash table of index + 1 into tickers, 0 = empty */
    size_t nslots; /* a power of two, at least twice ntickers */
};

/* clang-format off */
static const struct {
    const char *name;
    enum marketsim_fault_kind kind;
} fault_names[] = {
    {"429",       MARKETSIM_FAULT_429},
    {"500",       MARKETSIM_FAULT_500},
    {"503",       MARKETSIM_FAULT_503},
    {"slow",      MARKETSIM_FAULT_SLOW},
    {"truncate",  MARKETSIM_FAULT_TRUNCATE},
    {"malformed", MARKETSIM_FAULT_MALFORMED},
    {"error200",  MARKETSIM_FAULT_ERROR200},
    {"late",      MARKETSIM_FAULT_LATE},
    {"reset",     MARKETSIM_FAULT_RESET},
};
/* clang-format on */

struct marketsim_ctl *marketsim_ctl_new(void)
{
    struct marketsim_ctl *ctl = calloc(1, sizeof(*ctl));

    if (!ctl)
        return NULL;
    pthread_mutex_init(&ctl->rules_mu, NULL);
    pthread_mutex_init(&ctl->stats_mu, NULL);
    return ctl;
}

static void stats_free(struct marketsim_ctl *ctl)
{
    for (size_t i = 0; i < ctl->ntickers; i++)
        free(ctl->tickers[i].name);
    free(ctl->tickers);
    free(ctl->slots);
    ctl->tickers = NULL;
    ctl->slots = NULL;
    ctl->ntickers = 0;
    ctl->tickers_cap = 0;
    ctl->nslots = 0;
}

void marketsim_ctl_free(struct marketsim_ctl *ctl)
{
    if (!ctl)
        return;
    stats_free(ctl);
    pthread_mutex_destroy(&ctl->rules_mu);
    pthread_mutex_destroy(&ctl->stats_mu);
    free(ctl);
}

const char *marketsim_fault_name(enum marketsim_fault_kind kind)
{
    for (size_t i = 0; i < sizeof(fault_names) / sizeof(fault_names[0]); i++) {
        if (fault_names[i].kind == kind)
            return fault_names[i].name;
    }
    return "none";
}

/* An integer-valued JSON number within [min, max]. */
static int json_long(const cJSON *item, long min, long max, long *out)
{
    double v;

    if (!cJSON_IsNumber(item))
        return 0;
    v = item->valuedouble;
    if (v != (double)(long)v || v < (double)min || v > (double)max)
        return 0;
    *out = (long)v;
    return 1;
}

static int parse_fault_kind(const cJSON *item, enum marketsim_fault_kind *out)
{
    char num[16];
    const char *name = NULL;
    long code;

    if (cJSON_IsString(item)) {
        name = item->valuestring;
    } else if (json_long(item, 100, 599, &code)) {
        snprintf(num, sizeof(num), "%ld", code);
        name = num;
    }
    if (!name)
        return 0;
    for (size_t i = 0; i < sizeof(fault_names) / sizeof(fault_names[0]); i++) {
        if (strcmp(name, fault_names[i].name) == 0) {
            *out = fault_names[i].kind;
            return 1;
        }
    }
    return 0;
}

/* Fills one rule from a JSON object; returns 0 with the reason in err. */
static int parse_rule(const cJSON *obj, size_t idx, struct marketsim_fault_rule *r, char *err,
                      size_t errlen)
{
    static const char *const keys[] = {"provider",    "ticker",   "fault",       "times",
                                       "retry_after", "delay_ms", "late_minutes"};
    const cJSON *item;
    int have_fault = 0;

    memset(r, 0, sizeof(*r));
    snprintf(r->provider, sizeof(r->provider), "*");
    snprintf(r->ticker, sizeof(r->ticker), "*");
    r->times = 1;
    r->fault.retry_after = MARKETSIM_DEFAULT_RETRY;
    r->fault.delay_ms = MARKETSIM_DEFAULT_DELAY;
    r->fault.late_minutes = MARKETSIM_DEFAULT_LATE;
    if (!cJSON_IsObject(obj)) {
        snprintf(err, errlen, "rules[%zu]: expected an object", idx);
        return 0;
    }
    cJSON_ArrayForEach(item, obj)
    {
        const char *k = item->string;
        size_t known = 0;

        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
            known += strcmp(k, keys[i]) == 0;
        if (!known) {
            snprintf(err, errlen,
                     "rules[%zu]: unknown key \"%.40s\" (use provider, ticker, fault, "
                     "times, retry_after, delay_ms, late_minutes)",
                     idx, k);
            return 0;
        }
        if (strcmp(k, "provider") == 0) {
            if (!cJSON_IsString(item) || (strcmp(item->valuestring, "polygon") != 0 &&
                                          strcmp(item->valuestring, "twelvedata") != 0 &&
                                          strcmp(item->valuestring, "*") != 0)) {
                snprintf(err, errlen,
                         "rules[%zu].provider: use \"polygon\", \"twelvedata\" or "
                         "\"*\"",
                         idx);
                return 0;
            }
            snprintf(r->provider, sizeof(r->provider), "%s", item->valuestring);
        } else if (strcmp(k, "ticker") == 0) {
            if (!cJSON_IsString(item) || !item->valuestring[0] ||
                strlen(item->valuestring) >= sizeof(r->ticker)) {
                snprintf(err, errlen,
                         "rules[%zu].ticker: use a ticker of 1 to %zu characters or "
                         "\"*\"",
                         idx, sizeof(r->ticker) - 1);
                return 0;
            }
            snprintf(r->ticker, sizeof(r->ticker), "%s", item->valuestring);
        } else if (strcmp(k, "fault") == 0) {
            if (!parse_fault_kind(item, &r->fault.kind)) {
                snprintf(err, errlen,
                         "rules[%zu].fault: use 429, 500, 503, slow, truncate, malformed, "
                         "error200, late or reset",
                         idx);
                return 0;
            }
            have_fault = 1;
        } else if (strcmp(k, "times") == 0) {
            if (!json_long(item, -1, TIMES_MAX, &r->times)) {
                snprintf(err, errlen, "rules[%zu].times: use -1 (forever) or 0 to %ld", idx,
                         TIMES_MAX);
                return 0;
            }
        } else if (strcmp(k, "retry_after") == 0) {
            if (!json_long(item, 0, MARKETSIM_MAX_RETRY, &r->fault.retry_after)) {
                snprintf(err, errlen, "rules[%zu].retry_after: use 0 to %ld seconds", idx,
                         MARKETSIM_MAX_RETRY);
                return 0;
            }
            r->fault.retry_after_set = 1;
        } else if (strcmp(k, "delay_ms") == 0) {
            if (!json_long(item, 0, MARKETSIM_MAX_DELAY, &r->fault.delay_ms)) {
                snprintf(err, errlen, "rules[%zu].delay_ms: use 0 to %ld", idx,
                         MARKETSIM_MAX_DELAY);
                return 0;
            }
        } else if (!json_long(item, 1, MARKETSIM_MAX_LATE, &r->fault.late_minutes)) {
            snprintf(err, errlen, "rules[%zu].late_minutes: use 1 to %ld", idx, MARKETSIM_MAX_LATE);
            return 0;
        }
    }
    if (!have_fault) {
        snprintf(err, errlen, "rules[%zu]: \"fault\" is required", idx);
        return 0;
    }
    if (strcmp(r->ticker, "*") == 0)
        snprintf(r->canon, sizeof(r->canon), "*");
    else if (!ms_gen_canonical(r->ticker, r->canon, sizeof(r->canon))) {
        snprintf(err, errlen, "rules[%zu].ticker: too long", idx);
        return 0;
    }
    r->remaining = r->times;
    return 1;
}

enum tf_rc marketsim_faults_parse(const char *body, size_t len, struct marketsim_fault_rule *rules,
                                  size_t *n, char *err, size_t errlen)
{
    enum tf_rc rc = TF_ERR_INVALID;
    cJSON *root = NULL; /* owned: deleted at out */
    const char *end = NULL;
    const cJSON *arr;
    const cJSON *item;
    size_t count = 0;

    *n = 0;
    if (!body) {
        body = "";
        len = 0;
    }
    /* len + 1: the terminating NUL is part of what cJSON checks. */
    root = cJSON_ParseWithLengthOpts(body, len + 1, &end, 1);
    if (!root || !cJSON_IsObject(root) || end != body + len) {
        snprintf(err, errlen, "the body must be a JSON object {\"rules\":[...]}");
        goto out;
    }
    arr = cJSON_GetObjectItemCaseSensitive(root, "rules");
    if (!cJSON_IsArray(arr)) {
        snprintf(err, errlen, "\"rules\" must be an array");
        goto out;
    }
    if (cJSON_GetArraySize(arr) > MARKETSIM_MAX_RULES) {
        snprintf(err, errlen, "at most %d rules", MARKETSIM_MAX_RULES);
        goto out;
    }
    cJSON_ArrayForEach(item, arr)
    {
        if (!parse_rule(item, count, &rules[count], err, errlen))
            goto out;
        count++;
    }
    *n = count;
    rc = TF_OK;
out:
    cJSON_Delete(root);
    return rc;
}

void marketsim_faults_replace(struct marketsim_ctl *ctl, const struct marketsim_fault_rule *rules,
                              size_t n)
{
    if (n > MARKETSIM_MAX_RULES)
        n = MARKETSIM_MAX_RULES;
    pthread_mutex_lock(&ctl->rules_mu);
    if (n > 0)
        memcpy(ctl->rules, rules, n * sizeof(*rules));
    ctl->nrules = n;
    pthread_mutex_unlock(&ctl->rules_mu);
}

static int rule_matches(const struct marketsim_fault_rule *r, const char *provider,
                        const char *canon)
{
    if (strcmp(r->provider, "*") != 0 && strcmp(r->provider, provider) != 0)
        return 0;
    return strcmp(r->canon, "*") == 0 || (canon[0] && strcmp(r->canon, canon) == 0);
}

int marketsim_faults_take(struct marketsim_ctl *ctl, const char *provider, const char *ticker,
                          struct marketsim_fault *out)
{
    char canon[64];
    int found = 0;

    memset(out, 0, sizeof(*out));
    if (!ms_gen_canonical(ticker, canon, sizeof(canon)))
        canon[0] = '\0';
    pthread_mutex_lock(&ctl->rules_mu);
    for (size_t i = 0; i < ctl->nrules; i++) {
        struct marketsim_fault_rule *r = &ctl->rules[i];

        if (r->remaining == 0 || !rule_matches(r, provider, canon))
            continue;
        if (r->remaining > 0)
            r->remaining--;
        r->hits++;
        *out = r->fault;
        found = 1;
        break;
    }
    pthread_mutex_unlock(&ctl->rules_mu);
    if (found) {
        pthread_mutex_lock(&ctl->stats_mu);
        ctl->faults_served++;
        pthread_mutex_unlock(&ctl->stats_mu);
    }
    return found;
}

/* Prints root compactly onto buf and deletes it. */
static enum tf_rc put_json(struct tf_buf *buf, cJSON *root)
{
    char *text = root ? cJSON_PrintUnformatted(root) : NULL;
    enum tf_rc rc = text ? tf_buf_puts(buf, text) : TF_ERR_NOMEM;

    cJSON_free(text);
    cJSON_Delete(root);
    return rc;
}

enum tf_rc marketsim_faults_render(struct marketsim_ctl *ctl, struct tf_buf *buf)
{
    struct marketsim_fault_rule copy[MARKETSIM_MAX_RULES];
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(root, "rules");
    size_t n;

    if (!arr) {
        cJSON_Delete(root);
        return TF_ERR_NOMEM;
    }
    pthread_mutex_lock(&ctl->rules_mu);
    n = ctl->nrules;
    memcpy(copy, ctl->rules, n * sizeof(copy[0]));
    pthread_mutex_unlock(&ctl->rules_mu);
    for (size_t i = 0; i < n; i++) {
        const struct marketsim_fault_rule *r = &copy[i];
        cJSON *o = cJSON_CreateObject();

        if (!o || !cJSON_AddItemToArray(arr, o)) {
            cJSON_Delete(o);
            cJSON_Delete(root);
            return TF_ERR_NOMEM;
        }
        cJSON_AddStringToObject(o, "provider", r->provider);
        cJSON_AddStringToObject(o, "ticker", r->ticker);
        cJSON_AddStringToObject(o, "fault", marketsim_fault_name(r->fault.kind));
        cJSON_AddNumberToObject(o, "times", (double)r->times);
        cJSON_AddNumberToObject(o, "remaining", (double)r->remaining);
        cJSON_AddNumberToObject(o, "hits", (double)r->hits);
        cJSON_AddNumberToObject(o, "retry_after", (double)r->fault.retry_after);
        cJSON_AddNumberToObject(o, "delay_ms", (double)r->fault.delay_ms);
        cJSON_AddNumberToObject(o, "late_minutes", (double)r->fault.late_minutes);
    }
    return put_json(buf, root);
}

/* Doubles the hash table (or makes the first one). Returns 0 out of memory. */
static int stats_rehash(struct marketsim_ctl *ctl)
{
    size_t nslots = ctl->nslots ? ctl->nslots * 2 : 64;
    size_t *slots = calloc(nslots, sizeof(*slots));

    if (!slots)
        return 0;
    for (size_t i = 0; i < ctl->ntickers; i++) {
        size_t s = (size_t)tf_fnv1a64_str(TF_FNV1A64_INIT, ctl->tickers[i].name) & (nslots - 1);

        while (slots[s])
            s = (s + 1) & (nslots - 1);
        slots[s] = i + 1;
    }
    free(ctl->slots);
    ctl->slots = slots;
    ctl->nslots = nslots;
    return 1;
}

/* Adds one to ticker's count; called with stats_mu held. */
static void stats_count_ticker(struct marketsim_ctl *ctl, const char *ticker)
{
    size_t s;

    if (ctl->nslots == 0 && !stats_rehash(ctl))
        return;
    s = (size_t)tf_fnv1a64_str(TF_FNV1A64_INIT, ticker) & (ctl->nslots - 1);
    while (ctl->slots[s]) {
        struct ticker_count *tc = &ctl->tickers[ctl->slots[s] - 1];

        if (strcmp(tc->name, ticker) == 0) {
            tc->count++;
            return;
        }
        s = (s + 1) & (ctl->nslots - 1);
    }
    if (ctl->ntickers >= STATS_MAX_TICKERS)
        return;
    if (ctl->ntickers == ctl->tickers_cap) {
        size_t ncap = ctl->tickers_cap ? ctl->tickers_cap * 2 : 64;
        struct ticker_count *grown = realloc(ctl->tickers, ncap * sizeof(*grown));

        if (!grown)
            return;
        ctl->tickers = grown;
        ctl->tickers_cap = ncap;
    }
    ctl->tickers[ctl->ntickers].name = strdup(ticker);
    if (!ctl->tickers[ctl->ntickers].name)
        return;
    ctl->tickers[ctl->ntickers].count = 1;
    ctl->slots[s] = ++ctl->ntickers;
    if (ctl->ntickers * 2 > ctl->nslots)
        stats_rehash(ctl); /* on failure the table stays valid, only fuller */
}

void marketsim_stats_count(struct marketsim_ctl *ctl, const char *provider, const char *ticker)
{
    pthread_mutex_lock(&ctl->stats_mu);
    ctl->requests++;
    if (strcmp(provider, "polygon") == 0)
        ctl->polygon++;
    else if (strcmp(provider, "twelvedata") == 0)
        ctl->twelvedata++;
    if (ticker && *ticker)
        stats_count_ticker(ctl, ticker);
    pthread_mutex_unlock(&ctl->stats_mu);
}

enum tf_rc marketsim_stats_render(struct marketsim_ctl *ctl, struct tf_buf *buf)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *prov = NULL;
    cJSON *tick = NULL;
    int ok;

    pthread_mutex_lock(&ctl->stats_mu);
    ok = root && cJSON_AddNumberToObject(root, "requests", (double)ctl->requests) != NULL;
    if (ok)
        prov = cJSON_AddObjectToObject(root, "by_provider");
    ok = ok && prov && cJSON_AddNumberToObject(prov, "polygon", (double)ctl->polygon) &&
         cJSON_AddNumberToObject(prov, "twelvedata", (double)ctl->twelvedata);
    if (ok)
        tick = cJSON_AddObjectToObject(root, "by_ticker");
    ok = ok && tick;
    for (size_t i = 0; ok && i < ctl->ntickers; i++)
        ok = cJSON_AddNumberToObject(tick, ctl->tickers[i].name, (double)ctl->tickers[i].count) !=
             NULL;
    ok = ok && cJSON_AddNumberToObject(root, "faults_served", (double)ctl->faults_served);
    pthread_mutex_unlock(&ctl->stats_mu);
    if (!ok) {
        cJSON_Delete(root);
        return TF_ERR_NOMEM;
    }
    return put_json(buf, root);
}

void marketsim_stats_reset(struct marketsim_ctl *ctl)
{
    pthread_mutex_lock(&ctl->stats_mu);
    stats_free(ctl);
    ctl->requests = 0;
    ctl->polygon = 0;
    ctl->twelvedata = 0;
    ctl->faults_served = 0;
    pthread_mutex_unlock(&ctl->stats_mu);
}
