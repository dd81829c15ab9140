/*
 * kafka.c - producer with per-message delivery waits, consumer, admin, and
 * the connection settings (TLS, SASL, pass-through properties) every client
 * is made with.
 */
#include "tf/kafka.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tf/cfg.h"
#include "tf/log.h"
#include "tf/time.h"

extern char **environ;

/* How often one unchanged TLS or SASL failure is logged again. */
#define SECURE_LOG_EVERY_MS 30000

enum { FAIL_NONE, FAIL_SASL, FAIL_SSL };

/* The last TLS or SASL failure of a client (error callback), and what to say. */
struct secure_state {
    pthread_mutex_t mu;
    int failed; /* since the last request that succeeded: FAIL_* */
    char why[400];
    int64_t logged_ms;
    char mechanism[24]; /* for the message: "SASL SCRAM-SHA-256 as user x" */
    char username[128];
};

struct tf_kafka {
    rd_kafka_t *rk;
    atomic_int fatal; /* the idempotent producer hit a fatal error: unusable */
    pthread_t poller;
    atomic_int stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    rd_kafka_topic_t *known[4]; /* topics whose metadata tf_kafka_know_topic() fetched */
    int nknown;
    struct secure_state sec;
};

struct tf_kafka_consumer {
    rd_kafka_t *rk;
    struct secure_state sec;
};

/* One produce call waiting for its delivery report. */
struct delivery {
    int done;
    rd_kafka_resp_err_t err;
};

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    if (level <= 3)
        tf_log_error(NULL, "kafka %s: %s", fac, buf);
    else if (level <= 4)
        tf_log_warn(NULL, "kafka %s: %s", fac, buf);
    else
        tf_log_debug(NULL, "kafka %s: %s", fac, buf);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    struct tf_kafka *kafka = opaque;
    struct delivery *d = msg->_private;

    (void)rk;
    pthread_mutex_lock(&kafka->mu);
    d->err = msg->err;
    d->done = 1;
    pthread_cond_broadcast(&kafka->cv);
    pthread_mutex_unlock(&kafka->mu);
}

static void secure_init(struct secure_state *sec, const struct tf_kafka_opts *opts)
{
    pthread_mutex_init(&sec->mu, NULL);
    if (opts && opts->sasl_mechanism)
        snprintf(sec->mechanism, sizeof(sec->mechanism), "%s", opts->sasl_mechanism);
    if (opts && opts->sasl_username)
        snprintf(sec->username, sizeof(sec->username), "%s", opts->sasl_username);
}

/*
 * A TLS or SASL failure: remembered, and logged as one clear line when its
 * reason changed or SECURE_LOG_EVERY_MS passed (librdkafka retries the
 * connection every few seconds). librdkafka's reasons name the broker and
 * the mechanism, never the password.
 */
static int secure_failure(struct secure_state *sec, int err, const char *reason, const char *who)
{
    int64_t now = tf_time_mono_ms();
    int say, kind;

    if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION)
        kind = FAIL_SASL;
    else if (err == RD_KAFKA_RESP_ERR__SSL)
        kind = FAIL_SSL;
    else if (err == RD_KAFKA_RESP_ERR__TRANSPORT && strstr(reason, "SSL routines") &&
             strstr(reason, " alert "))
        kind = FAIL_SSL; /* TLS 1.3: the broker refuses our certificate after the handshake */
    else
        return 0;
    pthread_mutex_lock(&sec->mu);
    sec->failed = kind;
    say = strcmp(sec->why, reason) != 0 || now - sec->logged_ms >= SECURE_LOG_EVERY_MS;
    snprintf(sec->why, sizeof(sec->why), "%s", reason);
    if (say)
        sec->logged_ms = now;
    pthread_mutex_unlock(&sec->mu);
    if (!say)
        return 1;
    if (kind == FAIL_SSL)
        tf_log_error(NULL, "kafka %s: SSL handshake failed (check TICKFLOW_KAFKA_SSL_*): %s", who,
                     reason);
    else if (sec->mechanism[0])
        tf_log_error(NULL, "kafka %s: authentication failed (SASL %s as user %s): %s", who,
                     sec->mechanism, sec->username, reason);
    else
        tf_log_error(NULL, "kafka %s: authentication failed: %s", who, reason);
    return 1;
}

/* The failure is over: a request succeeded. */
static void secure_ok(struct secure_state *sec)
{
    pthread_mutex_lock(&sec->mu);
    sec->failed = FAIL_NONE;
    pthread_mutex_unlock(&sec->mu);
}

static int secure_get(struct secure_state *sec, char *why, size_t whylen)
{
    int failed;

    pthread_mutex_lock(&sec->mu);
    failed = sec->failed;
    if (failed && whylen)
        snprintf(why, whylen, "%s: %s",
                 failed == FAIL_SSL ? "SSL handshake failed" : "authentication failed", sec->why);
    pthread_mutex_unlock(&sec->mu);
    return failed != FAIL_NONE;
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct tf_kafka *kafka = opaque;
    char why[256];

    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_fatal_error(rk, why, sizeof(why));
        atomic_store(&kafka->fatal, 1);
        tf_log_error(NULL, "kafka producer fatal error: %s", why);
        return;
    }
    if (secure_failure(&kafka->sec, err, reason, "producer"))
        return;
    tf_log_warn(NULL, "kafka: %s", reason);
}

static void on_consumer_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct tf_kafka_consumer *cons = opaque;

    (void)rk;
    if (secure_failure(&cons->sec, err, reason, "consumer"))
        return;
    tf_log_warn(NULL, "kafka consumer: %s", reason);
}

/* A background commit's result; served by the consumer's poll. */
static void on_committed(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    (void)rk;
    (void)opaque;
    /* _NO_OFFSET: nothing settled since the last commit. */
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
        tf_log_warn(NULL, "kafka commit of %d partition(s): %s (settled events may come again)",
                    offsets ? offsets->cnt : 0, rd_kafka_err2str(err));
}

static void *poll_loop(void *arg)
{
    struct tf_kafka *kafka = arg;

    while (!atomic_load(&kafka->stop))
        rd_kafka_poll(kafka->rk, 100);
    return NULL;
}

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                    size_t errlen)
{
    return rd_kafka_conf_set(conf, name, value, err, errlen) == RD_KAFKA_CONF_OK;
}

/* ---- connection settings: TLS, SASL, pass-through properties ---- */

#define PROP_PREFIX "TICKFLOW_KAFKA_PROP_"

/* clang-format off */
#define OPT_KEY(n, f, fl) TF_CFG_KEY(struct tf_kafka_opts, n, TF_CFG_STR, f, NULL, fl, 0, 0)
static const struct tf_cfg_key opt_keys[] = {
    OPT_KEY("TICKFLOW_KAFKA_SASL_MECHANISM",    sasl_mechanism, 0),
    OPT_KEY("TICKFLOW_KAFKA_SASL_PASSWORD",     sasl_password, TF_CFG_SECRET),
    OPT_KEY("TICKFLOW_KAFKA_SASL_USERNAME",     sasl_username, 0),
    OPT_KEY("TICKFLOW_KAFKA_SECURITY_PROTOCOL", security_protocol, 0),
    OPT_KEY("TICKFLOW_KAFKA_SSL_CA_FILE",       ssl_ca_file, 0),
    OPT_KEY("TICKFLOW_KAFKA_SSL_CERT_FILE",     ssl_cert_file, 0),
    OPT_KEY("TICKFLOW_KAFKA_SSL_KEY_FILE",      ssl_key_file, 0),
    OPT_KEY("TICKFLOW_KAFKA_SSL_KEY_PASSWORD",  ssl_key_password, TF_CFG_SECRET),
};

/* What each key sets, and the properties the code sets itself: a
 * pass-through may name neither. */
static const struct { const char *key; const char *prop; } opt_props[] = {
    {"TICKFLOW_KAFKA_SECURITY_PROTOCOL", "security.protocol"},
    {"TICKFLOW_KAFKA_SASL_MECHANISM",    "sasl.mechanisms"},
    {"TICKFLOW_KAFKA_SASL_MECHANISM",    "sasl.mechanism"},
    {"TICKFLOW_KAFKA_SASL_USERNAME",     "sasl.username"},
    {"TICKFLOW_KAFKA_SASL_PASSWORD",     "sasl.password"},
    {"TICKFLOW_KAFKA_SSL_CA_FILE",       "ssl.ca.location"},
    {"TICKFLOW_KAFKA_SSL_CERT_FILE",     "ssl.certificate.location"},
    {"TICKFLOW_KAFKA_SSL_KEY_FILE",      "ssl.key.location"},
    {"TICKFLOW_KAFKA_SSL_KEY_PASSWORD",  "ssl.key.password"},
    {"TICKFLOW_KAFKA_BROKERS",           "bootstrap.servers"},
    {"TICKFLOW_KAFKA_BROKERS",           "metadata.broker.list"},
    {"TICKFLOW_KAFKA_DELIVERY_TIMEOUT_MS", "message.timeout.ms"},
    {"TICKFLOW_KAFKA_DELIVERY_TIMEOUT_MS", "delivery.timeout.ms"},
    {NULL, "client.id"},
    {NULL, "group.id"},
    {NULL, "enable.idempotence"},
    {NULL, "enable.auto.commit"},
    {NULL, "enable.auto.offset.store"},
    {NULL, "auto.offset.reset"},
};
/* clang-format on */

/* The envp-backed lookup of tf_cfg_load. */
static const char *env_lookup(const char *name, void *ud)
{
    char *const *envp = ud;
    size_t n = strlen(name);

    for (; *envp; envp++)
        if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
            return *envp + n + 1;
    return NULL;
}

static void add_line(char *err, size_t errlen, size_t *used, const char *fmt, ...) TF_PRINTF(4, 5);

static void add_line(char *err, size_t errlen, size_t *used, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (*used >= errlen)
        return;
    if (*used > 0) {
        err[(*used)++] = '\n';
        err[*used] = '\0';
        if (*used >= errlen)
            return;
    }
    va_start(ap, fmt);
    n = vsnprintf(err + *used, errlen - *used, fmt, ap);
    va_end(ap);
    if (n > 0)
        *used = *used + (size_t)n < errlen ? *used + (size_t)n : errlen - 1;
}

static int one_of(const char *v, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(v, *list) == 0)
            return 1;
    return 0;
}

/*
 * Defaults that a TICKFLOW_KAFKA_PROP_<NAME> may change: after a broker
 * restart, clients reconnect within a second instead of librdkafka's
 * backoff of up to 10 s, so the pipeline resumes that much sooner.
 */
static int set_defaults(rd_kafka_conf_t *conf, char *err, size_t errlen)
{
    return conf_set(conf, "reconnect.backoff.max.ms", "1000", err, errlen);
}

/*
 * Sets every setting of opts on conf. On failure says which key in err
 * (librdkafka's reason, unless the value is a secret) and returns 0.
 */
static int apply_opts(rd_kafka_conf_t *conf, const struct tf_kafka_opts *opts, char *err,
                      size_t errlen)
{
    const struct {
        const char *key, *prop, *val;
        int secret;
    } set[] = {
        {"TICKFLOW_KAFKA_SECURITY_PROTOCOL", "security.protocol", opts->security_protocol, 0},
        {"TICKFLOW_KAFKA_SASL_MECHANISM", "sasl.mechanisms", opts->sasl_mechanism, 0},
        {"TICKFLOW_KAFKA_SASL_USERNAME", "sasl.username", opts->sasl_username, 0},
        {"TICKFLOW_KAFKA_SASL_PASSWORD", "sasl.password", opts->sasl_password, 1},
        {"TICKFLOW_KAFKA_SSL_CA_FILE", "ssl.ca.location", opts->ssl_ca_file, 0},
        {"TICKFLOW_KAFKA_SSL_CERT_FILE", "ssl.certificate.location", opts->ssl_cert_file, 0},
        {"TICKFLOW_KAFKA_SSL_KEY_FILE", "ssl.key.location", opts->ssl_key_file, 0},
        {"TICKFLOW_KAFKA_SSL_KEY_PASSWORD", "ssl.key.password", opts->ssl_key_password, 1},
    };
    char why[256];

    for (size_t i = 0; i < TF_ARRAY_LEN(set); i++) {
        if (!set[i].val)
            continue;
        if (rd_kafka_conf_set(conf, set[i].prop, set[i].val, why, sizeof(why)) !=
            RD_KAFKA_CONF_OK) {
            snprintf(err, errlen, "%s: %s", set[i].key,
                     set[i].secret ? "librdkafka refused the value (not shown: secret)" : why);
            return 0;
        }
    }
    for (int i = 0; i < opts->nprops; i++) {
        const struct tf_kafka_prop *p = &opts->props[i];

        if (rd_kafka_conf_set(conf, p->name, p->value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
            snprintf(err, errlen, "%s (%s): %s", p->key, p->name,
                     p->secret ? "librdkafka refused the value (not shown: secret)" : why);
            return 0;
        }
    }
    return 1;
}

/* Reads the TICKFLOW_KAFKA_PROP_* of envp into opts; 0 on a bad one (said in err). */
static int load_props(struct tf_kafka_opts *opts, char *const *envp, char *err, size_t errlen,
                      size_t *used)
{
    size_t plen = strlen(PROP_PREFIX);
    int ok = 1;

    for (char *const *e = envp; *e; e++) {
        const char *eq = strchr(*e, '=');
        struct tf_kafka_prop *grown, *p;
        size_t klen;

        if (!eq || strncmp(*e, PROP_PREFIX, plen) != 0)
            continue;
        klen = (size_t)(eq - *e);
        grown = realloc(opts->props, (size_t)(opts->nprops + 1) * sizeof(*grown));
        if (!grown)
            return 0;
        opts->props = grown;
        p = &opts->props[opts->nprops];
        memset(p, 0, sizeof(*p));
        p->key = strndup(*e, klen);
        p->name = strndup(*e + plen, klen - plen);
        p->value = strdup(eq + 1);
        if (!p->key || !p->name || !p->value) {
            free(p->key);
            free(p->name);
            free(p->value);
            return 0;
        }
        opts->nprops++;
        for (char *c = p->name; *c; c++)
            *c = *c == '_' ? '.' : (char)tolower((unsigned char)*c);
        p->secret = strstr(p->name, "password") || strstr(p->name, "secret");
        if (!*p->name) {
            add_line(err, errlen, used, "%s: no property name after the prefix", p->key);
            ok = 0;
            continue;
        }
        for (size_t i = 0; i < TF_ARRAY_LEN(opt_props); i++) {
            if (strcmp(p->name, opt_props[i].prop) != 0)
                continue;
            if (opt_props[i].key)
                add_line(err, errlen, used, "%s: %s is set with %s", p->key, p->name,
                         opt_props[i].key);
            else
                add_line(err, errlen, used, "%s: %s is set by tickflow itself", p->key, p->name);
            ok = 0;
            break;
        }
    }
    return ok;
}

/* Cross-checks of the keys; adds a line per problem. */
static int check_opts(const struct tf_kafka_opts *opts, char *err, size_t errlen, size_t *used)
{
    static const char *const protocols[] = {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL", NULL};
    static const char *const mechanisms[] = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", NULL};
    const char *proto = opts->security_protocol ? opts->security_protocol : "PLAINTEXT";
    int sasl = strncmp(proto, "SASL_", 5) == 0;
    int tls = strcmp(proto, "SSL") == 0 || strcmp(proto, "SASL_SSL") == 0;
    int ok = 1;
    const struct {
        const char *key, *path;
    } files[] = {
        {"TICKFLOW_KAFKA_SSL_CA_FILE", opts->ssl_ca_file},
        {"TICKFLOW_KAFKA_SSL_CERT_FILE", opts->ssl_cert_file},
        {"TICKFLOW_KAFKA_SSL_KEY_FILE", opts->ssl_key_file},
    };

    if (!one_of(proto, protocols)) {
        add_line(err, errlen, used,
                 "TICKFLOW_KAFKA_SECURITY_PROTOCOL: must be PLAINTEXT, SSL, SASL_PLAINTEXT or "
                 "SASL_SSL, not %s",
                 proto);
        return 0;
    }
    if (opts->sasl_mechanism && !one_of(opts->sasl_mechanism, mechanisms)) {
        add_line(err, errlen, used,
                 "TICKFLOW_KAFKA_SASL_MECHANISM: must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, "
                 "not %s (others through TICKFLOW_KAFKA_PROP_*)",
                 opts->sasl_mechanism);
        ok = 0;
    }
    if (sasl && opts->sasl_mechanism) {
        if (!opts->sasl_username) {
            add_line(err, errlen, used, "TICKFLOW_KAFKA_SASL_USERNAME: required with %s",
                     opts->sasl_mechanism);
            ok = 0;
        }
        if (!opts->sasl_password) {
            add_line(err, errlen, used,
                     "TICKFLOW_KAFKA_SASL_PASSWORD: required with %s (or its _FILE)",
                     opts->sasl_mechanism);
            ok = 0;
        }
    } else if (sasl) {
        int other = 0; /* GSSAPI or OAUTHBEARER through a pass-through */

        for (int i = 0; i < opts->nprops; i++)
            other |= strncmp(opts->props[i].name, "sasl.", 5) == 0;
        if (!other) {
            add_line(err, errlen, used, "TICKFLOW_KAFKA_SASL_MECHANISM: required with %s", proto);
            ok = 0;
        }
    } else {
        const struct {
            const char *key, *val;
        } unused[] = {
            {"TICKFLOW_KAFKA_SASL_MECHANISM", opts->sasl_mechanism},
            {"TICKFLOW_KAFKA_SASL_USERNAME", opts->sasl_username},
            {"TICKFLOW_KAFKA_SASL_PASSWORD", opts->sasl_password},
        };
        for (size_t i = 0; i < TF_ARRAY_LEN(unused); i++) {
            if (unused[i].val) {
                add_line(err, errlen, used,
                         "%s: set, but TICKFLOW_KAFKA_SECURITY_PROTOCOL is %s (SASL_SSL or "
                         "SASL_PLAINTEXT uses it)",
                         unused[i].key, proto);
                ok = 0;
            }
        }
    }
    for (size_t i = 0; i < TF_ARRAY_LEN(files); i++) {
        if (!files[i].path)
            continue;
        if (!tls) {
            add_line(
                err, errlen, used,
                "%s: set, but TICKFLOW_KAFKA_SECURITY_PROTOCOL is %s (SSL or SASL_SSL uses it)",
                files[i].key, proto);
            ok = 0;
        } else if (access(files[i].path, R_OK) != 0) {
            add_line(err, errlen, used, "%s: cannot read %s: %s", files[i].key, files[i].path,
                     strerror(errno));
            ok = 0;
        }
    }
    if (!opts->ssl_cert_file != !opts->ssl_key_file) {
        add_line(err, errlen, used,
                 "TICKFLOW_KAFKA_SSL_CERT_FILE and TICKFLOW_KAFKA_SSL_KEY_FILE: set both or "
                 "neither");
        ok = 0;
    }
    if (opts->ssl_key_password && !opts->ssl_key_file) {
        add_line(err, errlen, used,
                 "TICKFLOW_KAFKA_SSL_KEY_PASSWORD: set, but TICKFLOW_KAFKA_SSL_KEY_FILE is not");
        ok = 0;
    }
    return ok;
}

enum tf_rc tf_kafka_opts_load(struct tf_kafka_opts *opts, char *const *envp, char *err,
                              size_t errlen)
{
    char cfg_err[1024] = "";
    size_t used = 0;
    int ok;

    memset(opts, 0, sizeof(*opts));
    if (errlen)
        err[0] = '\0';
    if (!envp)
        envp = environ;
    ok = tf_cfg_load(opt_keys, TF_ARRAY_LEN(opt_keys), env_lookup, (void *)envp, opts, cfg_err,
                     sizeof(cfg_err)) == TF_OK;
    if (!ok)
        add_line(err, errlen, &used, "%s", cfg_err);
    if (!load_props(opts, envp, err, errlen, &used))
        ok = 0;
    if (ok && !check_opts(opts, err, errlen, &used))
        ok = 0;
    if (ok) {
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char why[512];

        if (!conf || !apply_opts(conf, opts, why, sizeof(why))) {
            add_line(err, errlen, &used, "%s", conf ? why : "out of memory");
            ok = 0;
        }
        if (conf)
            rd_kafka_conf_destroy(conf);
    }
    return ok ? TF_OK : TF_ERR_INVALID;
}

void tf_kafka_opts_cleanup(struct tf_kafka_opts *opts)
{
    if (!opts)
        return;
    tf_cfg_cleanup(opt_keys, TF_ARRAY_LEN(opt_keys), opts);
    for (int i = 0; i < opts->nprops; i++) {
        free(opts->props[i].key);
        free(opts->props[i].name);
        free(opts->props[i].value);
    }
    free(opts->props);
    memset(opts, 0, sizeof(*opts));
}

void tf_kafka_opts_log(const struct tf_kafka_opts *opts)
{
    char props[1024] = "";
    size_t used = 0;

    for (int i = 0; i < opts->nprops && used < sizeof(props); i++) {
        int n =
            snprintf(props + used, sizeof(props) - used, "%s%s=%s", used ? "," : "",
                     opts->props[i].name, opts->props[i].secret ? "(set)" : opts->props[i].value);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    tf_log_info(NULL,
                "config kafka security_protocol=%s sasl_mechanism=%s sasl_username=%s "
                "sasl_password=%s ssl_ca_file=%s ssl_cert_file=%s ssl_key_file=%s "
                "ssl_key_password=%s properties=%s",
                opts->security_protocol ? opts->security_protocol : "PLAINTEXT",
                opts->sasl_mechanism ? opts->sasl_mechanism : "(unset)",
                opts->sasl_username ? opts->sasl_username : "(unset)",
                opts->sasl_password ? "(set)" : "(unset)",
                opts->ssl_ca_file ? opts->ssl_ca_file : "(system)",
                opts->ssl_cert_file ? opts->ssl_cert_file : "(unset)",
                opts->ssl_key_file ? opts->ssl_key_file : "(unset)",
                opts->ssl_key_password ? "(set)" : "(unset)", used ? props : "(none)");
}

enum tf_rc tf_kafka_producer_new(const char *brokers, const struct tf_kafka_opts *opts,
                                 const char *client_id, int delivery_timeout_ms,
                                 struct tf_kafka **out, char *err, size_t errlen)
{
    struct tf_kafka *kafka = calloc(1, sizeof(*kafka));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char timeout[24];

    snprintf(timeout, sizeof(timeout), "%d", delivery_timeout_ms);

    if (!kafka || !conf)
        goto fail;
    if (!set_defaults(conf, err, errlen) || (opts && !apply_opts(conf, opts, err, errlen)))
        goto fail;
    if (!conf_set(conf, "bootstrap.servers", brokers, err, errlen) ||
        !conf_set(conf, "client.id", client_id, err, errlen) ||
        !conf_set(conf, "enable.idempotence", "true", err, errlen) ||
        !conf_set(conf, "linger.ms", "5", err, errlen) ||
        !conf_set(conf, "message.timeout.ms", timeout, err, errlen))
        goto fail;
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_opaque(conf, kafka);
    pthread_mutex_init(&kafka->mu, NULL);
    pthread_cond_init(&kafka->cv, NULL);
    secure_init(&kafka->sec, opts);
    /* rd_kafka_new() takes conf on success only. */
    kafka->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, errlen);
    if (!kafka->rk) {
        pthread_mutex_destroy(&kafka->mu);
        pthread_cond_destroy(&kafka->cv);
        pthread_mutex_destroy(&kafka->sec.mu);
        goto fail;
    }
    conf = NULL;
    if (pthread_create(&kafka->poller, NULL, poll_loop, kafka) != 0) {
        snprintf(err, errlen, "cannot start the delivery thread");
        rd_kafka_destroy(kafka->rk);
        pthread_mutex_destroy(&kafka->mu);
        pthread_cond_destroy(&kafka->cv);
        pthread_mutex_destroy(&kafka->sec.mu);
        goto fail;
    }
    *out = kafka;
    return TF_OK;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    free(kafka);
    return TF_ERR_KAFKA;
}

void tf_kafka_producer_free(struct tf_kafka *kafka)
{
    if (!kafka)
        return;
    rd_kafka_flush(kafka->rk, 10 * 1000);
    atomic_store(&kafka->stop, 1);
    pthread_join(kafka->poller, NULL);
    for (int i = 0; i < kafka->nknown; i++)
        rd_kafka_topic_destroy(kafka->known[i]);
    rd_kafka_destroy(kafka->rk);
    pthread_mutex_destroy(&kafka->mu);
    pthread_cond_destroy(&kafka->cv);
    pthread_mutex_destroy(&kafka->sec.mu);
    free(kafka);
}

enum tf_rc tf_kafka_produce(struct tf_kafka *kafka, const char *topic, const char *key,
                            const char *value, size_t len, const char *exec_id, const char *reason,
                            int timeout_ms, char *err, size_t errlen)
{
    struct delivery d = {0, RD_KAFKA_RESP_ERR_NO_ERROR};
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(2);
    rd_kafka_resp_err_t perr;
    struct timespec deadline;

    if (exec_id)
        rd_kafka_header_add(hdrs, "execution_id", -1, exec_id, -1);
    if (reason)
        rd_kafka_header_add(hdrs, "reason", -1, reason, -1);
    /* On success the message owns hdrs; on failure they are still ours. */
    perr = rd_kafka_producev(
        kafka->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
        RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(&d), RD_KAFKA_V_END);
    if (perr) {
        rd_kafka_headers_destroy(hdrs);
        snprintf(err, errlen, "produce to %s: %s", topic, rd_kafka_err2str(perr));
        return TF_ERR_KAFKA;
    }
    tf_time_deadline(&deadline, timeout_ms);
    pthread_mutex_lock(&kafka->mu);
    while (!d.done) {
        if (pthread_cond_timedwait(&kafka->cv, &kafka->mu, &deadline) != 0)
            break;
    }
    if (!d.done) {
        /* The report still refers to d: wait for it (message.timeout.ms bounds this). */
        while (!d.done)
            pthread_cond_wait(&kafka->cv, &kafka->mu);
        if (!d.err)
            d.err = RD_KAFKA_RESP_ERR__TIMED_OUT;
    }
    pthread_mutex_unlock(&kafka->mu);
    if (d.err) {
        snprintf(err, errlen, "deliver to %s: %s", topic, rd_kafka_err2str(d.err));
        return TF_ERR_KAFKA;
    }
    return TF_OK;
}

enum tf_rc tf_kafka_ensure_topics(struct tf_kafka *kafka, const char *const *topics, int ntopics,
                                  int partitions, int replication, char *err, size_t errlen)
{
    rd_kafka_NewTopic_t *nts[16];
    rd_kafka_queue_t *queue = NULL;
    rd_kafka_event_t *ev = NULL;
    enum tf_rc rc = TF_ERR_KAFKA;
    int n = 0;

    if (ntopics > 16)
        ntopics = 16;
    for (; n < ntopics; n++) {
        nts[n] = rd_kafka_NewTopic_new(topics[n], partitions, replication, err, errlen);
        if (!nts[n])
            goto out;
    }
    queue = rd_kafka_queue_new(kafka->rk);
    rd_kafka_CreateTopics(kafka->rk, nts, (size_t)n, NULL, queue);
    /* Up to 30 s, but a refused TLS handshake or login ends the wait at once. */
    for (int waited = 0; !ev && waited < 30 * 1000; waited += 200) {
        char why[512];

        ev = rd_kafka_queue_poll(queue, 200);
        if (!ev && secure_get(&kafka->sec, why, sizeof(why))) {
            snprintf(err, errlen, "%s", why);
            rc = TF_ERR_AUTH;
            goto out;
        }
    }
    if (!ev) {
        snprintf(err, errlen, "no answer to CreateTopics within 30 s");
        goto out;
    }
    if (rd_kafka_event_error(ev)) {
        snprintf(err, errlen, "CreateTopics: %s", rd_kafka_event_error_string(ev));
        goto out;
    }
    {
        const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
        size_t cnt = 0;
        const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &cnt);

        for (size_t i = 0; i < cnt; i++) {
            rd_kafka_resp_err_t terr = rd_kafka_topic_result_error(tr[i]);
            if (terr && terr != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                snprintf(err, errlen, "create topic %s: %s", rd_kafka_topic_result_name(tr[i]),
                         rd_kafka_err2str(terr));
                goto out;
            }
        }
    }
    rc = TF_OK;
    secure_ok(&kafka->sec);
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    if (queue)
        rd_kafka_queue_destroy(queue);
    for (int i = 0; i < n; i++)
        rd_kafka_NewTopic_destroy(nts[i]);
    return rc;
}

enum tf_rc tf_kafka_know_topic(struct tf_kafka *kafka, const char *topic, int timeout_ms)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt;
    rd_kafka_resp_err_t merr;

    if (kafka->nknown == (int)(sizeof(kafka->known) / sizeof(kafka->known[0])))
        return TF_ERR_INVALID;
    rkt = rd_kafka_topic_new(kafka->rk, topic, NULL);
    if (!rkt)
        return TF_ERR_KAFKA;
    /* A topic just made is unknown to the broker for a moment: ask again. */
    for (int waited = 0;; waited += 50) {
        md = NULL;
        merr = rd_kafka_metadata(kafka->rk, 0, rkt, &md, timeout_ms - waited);
        if (merr == RD_KAFKA_RESP_ERR_NO_ERROR && (md->topic_cnt != 1 || md->topics[0].err))
            merr = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
        if (md)
            rd_kafka_metadata_destroy(md);
        if ((merr != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART &&
             merr != RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC &&
             merr != RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE) ||
            waited + 50 >= timeout_ms)
            break;
        usleep(50 * 1000);
    }
    if (merr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_topic_destroy(rkt);
        return TF_ERR_KAFKA;
    }
    kafka->known[kafka->nknown++] = rkt; /* held, so the client keeps what it learnt */
    return TF_OK;
}

enum tf_rc tf_kafka_ping(struct tf_kafka *kafka, int timeout_ms)
{
    const struct rd_kafka_metadata *md = NULL;

    if (atomic_load(&kafka->fatal))
        return TF_ERR_KAFKA;

    if (rd_kafka_metadata(kafka->rk, 0, NULL, &md, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return TF_ERR_KAFKA;
    rd_kafka_metadata_destroy(md);
    secure_ok(&kafka->sec);
    return TF_OK;
}

int tf_kafka_secure_error(struct tf_kafka *kafka, char *why, size_t whylen)
{
    return secure_get(&kafka->sec, why, whylen);
}

enum tf_rc tf_kafka_consumer_new(const char *brokers, const struct tf_kafka_opts *opts,
                                 const char *group, const char *topic,
                                 struct tf_kafka_consumer **out, char *err, size_t errlen)
{
    struct tf_kafka_consumer *cons = calloc(1, sizeof(*cons));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *subs = NULL;
    rd_kafka_resp_err_t serr;

    if (!cons || !conf)
        goto fail;
    if (!set_defaults(conf, err, errlen) || (opts && !apply_opts(conf, opts, err, errlen)))
        goto fail;
    if (!conf_set(conf, "bootstrap.servers", brokers, err, errlen) ||
        !conf_set(conf, "group.id", group, err, errlen) ||
        !conf_set(conf, "client.id", group, err, errlen) ||
        /* Offsets are stored by tf_kafka_commit as each event settles and committed in
         * the background every second, at a revoke and at close. */
        !conf_set(conf, "enable.auto.commit", "true", err, errlen) ||
        !conf_set(conf, "enable.auto.offset.store", "false", err, errlen) ||
        !conf_set(conf, "auto.commit.interval.ms", "1000", err, errlen) ||
        !conf_set(conf, "auto.offset.reset", "earliest", err, errlen) ||
        /* The broker's least by default: a group rejoining after an outage waits this out. */
        !conf_set(conf, "session.timeout.ms", "6000", err, errlen) ||
        !conf_set(conf, "heartbeat.interval.ms", "1000", err, errlen) ||
        /* A stage runs inside the poll loop: allow it half an hour. */
        !conf_set(conf, "max.poll.interval.ms", "1800000", err, errlen) ||
        !conf_set(conf, "topic.metadata.refresh.interval.ms", "5000", err, errlen))
        goto fail;
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_error_cb(conf, on_consumer_error);
    rd_kafka_conf_set_offset_commit_cb(conf, on_committed);
    rd_kafka_conf_set_opaque(conf, cons);
    secure_init(&cons->sec, opts);
    cons->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, errlen);
    if (!cons->rk) {
        pthread_mutex_destroy(&cons->sec.mu);
        goto fail;
    }
    conf = NULL;
    rd_kafka_poll_set_consumer(cons->rk);
    subs = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(subs, topic, RD_KAFKA_PARTITION_UA);
    serr = rd_kafka_subscribe(cons->rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (serr) {
        snprintf(err, errlen, "subscribe %s: %s", topic, rd_kafka_err2str(serr));
        rd_kafka_destroy(cons->rk);
        pthread_mutex_destroy(&cons->sec.mu);
        goto fail;
    }
    *out = cons;
    return TF_OK;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    free(cons);
    return TF_ERR_KAFKA;
}

rd_kafka_message_t *tf_kafka_consumer_poll(struct tf_kafka_consumer *cons, int timeout_ms)
{
    rd_kafka_message_t *msg = rd_kafka_consumer_poll(cons->rk, timeout_ms);

    if (msg && msg->err) {
        if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            tf_log_warn(NULL, "kafka consume: %s", rd_kafka_message_errstr(msg));
        rd_kafka_message_destroy(msg);
        return NULL;
    }
    return msg;
}

/*
 * Never a synchronous commit: after a broker outage the group rejoins, the
 * rejoin is served by this thread's next poll, and a commit waiting for the
 * group would wait for ever (a service that would not stop on SIGTERM).
 */
enum tf_rc tf_kafka_commit(struct tf_kafka_consumer *cons, const rd_kafka_message_t *msg)
{
    rd_kafka_topic_partition_list_t *at = rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t err;

    if (!at)
        return TF_ERR_NOMEM;
    rd_kafka_topic_partition_list_add(at, rd_kafka_topic_name(msg->rkt), msg->partition)->offset =
        msg->offset + 1;
    err = rd_kafka_offsets_store(cons->rk, at);
    if (!err)
        err = at->elems[0].err;
    rd_kafka_topic_partition_list_destroy(at);
    if (err == RD_KAFKA_RESP_ERR__STATE) {
        tf_log_warn(NULL,
                    "kafka commit: partition %d was revoked meanwhile; its next owner reads"
                    " offset %lld again",
                    (int)msg->partition, (long long)msg->offset);
        return TF_ERR_KAFKA;
    }
    if (err) {
        tf_log_warn(NULL, "kafka commit: %s", rd_kafka_err2str(err));
        return TF_ERR_KAFKA;
    }
    return TF_OK;
}

/*
 * Leaves the group within CLOSE_MS, committing what settled since the last
 * background commit. rd_kafka_consumer_close() can wait for ever for a group
 * coordinator it cannot find (librdkafka issue 3740), as after a broker
 * restart; leaving without a goodbye loses nothing but that last second of
 * commits, whose events the group's next owner settles again (a settled
 * stage is skipped), and the group rebalances once the session times out.
 */
#define CLOSE_MS 10000

void tf_kafka_consumer_free(struct tf_kafka_consumer *cons)
{
    rd_kafka_queue_t *q;
    rd_kafka_error_t *error = NULL;
    int flags = 0;

    if (!cons)
        return;
    q = rd_kafka_queue_new(cons->rk);
    if (q)
        error = rd_kafka_consumer_close_queue(cons->rk, q);
    if (q && !error) {
        for (int64_t t0 = tf_time_mono_ms();
             !rd_kafka_consumer_closed(cons->rk) && tf_time_mono_ms() - t0 < CLOSE_MS;) {
            rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 100);
            if (ev)
                rd_kafka_event_destroy(ev);
        }
    }
    if (!rd_kafka_consumer_closed(cons->rk)) {
        tf_log_warn(NULL, "kafka: the consumer group was left without closing (no coordinator)");
        flags = RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE;
    }
    if (error)
        rd_kafka_error_destroy(error);
    if (q)
        rd_kafka_queue_destroy(q);
    rd_kafka_destroy_flags(cons->rk, flags);
    pthread_mutex_destroy(&cons->sec.mu);
    free(cons);
}

int tf_kafka_header(const rd_kafka_message_t *msg, const char *name, char *out, size_t outlen)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *val = NULL;
    size_t len = 0;

    if (rd_kafka_message_headers(msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0;
    if (rd_kafka_header_get_last(hdrs, name, &val, &len) != RD_KAFKA_RESP_ERR_NO_ERROR || !val)
        return 0;
    if (len >= outlen)
        len = outlen - 1;
    memcpy(out, val, len);
    out[len] = '\0';
    return 1;
}

int tf_kafka_consumer_lag(struct tf_kafka_consumer *cons, struct tf_kafka_lag *out, int max)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    int n = 0;

    if (!cons || rd_kafka_assignment(cons->rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || !parts)
        return 0;
    if (rd_kafka_position(cons->rk, parts) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (int i = 0; i < parts->cnt && n < max; i++) {
            const rd_kafka_topic_partition_t *p = &parts->elems[i];
            int64_t lo = 0, hi = 0;

            if (p->offset < 0 ||
                rd_kafka_get_watermark_offsets(cons->rk, p->topic, p->partition, &lo, &hi) !=
                    RD_KAFKA_RESP_ERR_NO_ERROR ||
                hi < 0)
                continue;
            out[n].partition = (int)p->partition;
            out[n].lag = hi > p->offset ? (long long)(hi - p->offset) : 0;
            n++;
        }
    }
    rd_kafka_topic_partition_list_destroy(parts);
    return n;
}
