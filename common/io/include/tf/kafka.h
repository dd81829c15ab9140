/*
 * tf/kafka.h - Kafka on librdkafka: an idempotent producer that waits for
 * each event's delivery, a consumer that commits only when told to, topic
 * creation and a reachability check.
 *
 * One producer per process (the handle is thread-safe); a background thread
 * serves its delivery reports. The execution id travels as the Kafka header
 * "execution_id" beside the JSON value.
 *
 * Every client takes the same connection settings (struct tf_kafka_opts):
 * TLS, SASL and further librdkafka properties from TICKFLOW_KAFKA_*.
 */
#ifndef TF_KAFKA_H
#define TF_KAFKA_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "tf/rc.h"

struct tf_kafka;
struct tf_kafka_consumer;

/** A librdkafka property given as TICKFLOW_KAFKA_PROP_<NAME>. */
struct tf_kafka_prop {
    char *key;   /* the variable, e.g. TICKFLOW_KAFKA_PROP_SSL_CURVES_LIST */
    char *name;  /* the property, e.g. ssl.curves.list */
    char *value; /* never logged when secret */
    int secret;  /* the name holds "password" or "secret" */
};

/**
 * How every client connects: the TICKFLOW_KAFKA_* security settings and
 * the pass-through properties. Strings are owned (tf_kafka_opts_cleanup).
 * All NULL (a zeroed struct) is a PLAINTEXT connection, as before.
 */
struct tf_kafka_opts {
    char *security_protocol; /* PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL */
    char *sasl_mechanism;    /* PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 */
    char *sasl_username;
    char *sasl_password; /* secret */
    char *ssl_ca_file;
    char *ssl_cert_file;
    char *ssl_key_file;
    char *ssl_key_password; /* secret */
    struct tf_kafka_prop *props;
    int nprops;
};

/**
 * Reads the settings from envp ("NAME=value" list; NULL: the process
 * environment): TICKFLOW_KAFKA_SECURITY_PROTOCOL, _SASL_MECHANISM,
 * _SASL_USERNAME, _SASL_PASSWORD (secret), _SSL_CA_FILE, _SSL_CERT_FILE,
 * _SSL_KEY_FILE, _SSL_KEY_PASSWORD (secret; both secrets also as <KEY>_FILE)
 * and every TICKFLOW_KAFKA_PROP_<NAME> (the librdkafka property <name>, in
 * lower case with '_' for '.'). Checks them all against librdkafka and each
 * other; on failure returns TF_ERR_INVALID with one "KEY: why" line per bad
 * key in err, never quoting a secret. opts is filled either way; free with
 * tf_kafka_opts_cleanup().
 */
enum tf_rc tf_kafka_opts_load(struct tf_kafka_opts *opts, char *const *envp, char *err,
                              size_t errlen) TF_MUSTCHECK;

/** Frees the strings of opts and zeroes it. NULL-safe. */
void tf_kafka_opts_cleanup(struct tf_kafka_opts *opts);

/** Logs the effective settings, one line, secrets shown as "(set)". */
void tf_kafka_opts_log(const struct tf_kafka_opts *opts);

/**
 * Creates an idempotent producer on brokers with opts (NULL: PLAINTEXT, no
 * properties; borrowed, used only during the call); client_id names the
 * service. A message not acknowledged within delivery_timeout_ms fails
 * (message.timeout.ms). A failed TLS handshake or SASL authentication is
 * logged once per distinct reason (never with a secret) and reported by
 * tf_kafka_secure_error().
 */
enum tf_rc tf_kafka_producer_new(const char *brokers, const struct tf_kafka_opts *opts,
                                 const char *client_id, int delivery_timeout_ms,
                                 struct tf_kafka **out, char *err, size_t errlen) TF_MUSTCHECK;

/** Flushes (up to 10 s) and destroys the producer. NULL-safe. */
void tf_kafka_producer_free(struct tf_kafka *kafka);

/**
 * Produces value under key and waits up to timeout_ms for the broker to
 * acknowledge it. exec_id and reason (each may be NULL) become headers.
 * Returns TF_ERR_KAFKA with the broker's reason in err when not delivered.
 */
enum tf_rc tf_kafka_produce(struct tf_kafka *kafka, const char *topic, const char *key,
                            const char *value, size_t len, const char *exec_id, const char *reason,
                            int timeout_ms, char *err, size_t errlen) TF_MUSTCHECK;

/**
 * Creates the topics that do not exist yet (replication factor 1 unless more
 * brokers). TF_ERR_AUTH, at once, when the broker refused the TLS handshake or
 * the SASL login meanwhile (err says which and why).
 */
enum tf_rc tf_kafka_ensure_topics(struct tf_kafka *kafka, const char *const *topics, int ntopics,
                                  int partitions, int replication, char *err,
                                  size_t errlen) TF_MUSTCHECK;

/**
 * Fetches topic's partitions and leaders now, at start-up, so that the first
 * event produced to it does not wait for them (up to a few hundred
 * milliseconds otherwise). A topic just made, which the broker does not
 * know yet, is asked for again until it does or timeout_ms has passed. At
 * most four topics per producer; call before producing from other threads.
 */
enum tf_rc tf_kafka_know_topic(struct tf_kafka *kafka, const char *topic, int timeout_ms);

/**
 * TF_OK when a broker answers a metadata request within timeout_ms and the
 * producer has not hit a fatal (idempotence) error.
 */
enum tf_rc tf_kafka_ping(struct tf_kafka *kafka, int timeout_ms);

/**
 * 1 when the producer's last connection attempt failed its TLS handshake or
 * SASL authentication (and no request has succeeded since), with
 * "authentication failed (SASL ...): reason" or "SSL handshake failed: reason"
 * in why; 0 otherwise.
 */
int tf_kafka_secure_error(struct tf_kafka *kafka, char *why, size_t whylen);

/**
 * Creates a consumer in group for one topic, auto-commit off, reading from
 * the earliest offset when the group has none; opts as for the producer.
 */
enum tf_rc tf_kafka_consumer_new(const char *brokers, const struct tf_kafka_opts *opts,
                                 const char *group, const char *topic,
                                 struct tf_kafka_consumer **out, char *err,
                                 size_t errlen) TF_MUSTCHECK;

/**
 * Waits up to timeout_ms for the next message. Returns a message to be
 * destroyed with rd_kafka_message_destroy(), or NULL (nothing yet; errors
 * are logged here).
 */
rd_kafka_message_t *tf_kafka_consumer_poll(struct tf_kafka_consumer *cons, int timeout_ms);

/**
 * Marks msg settled: the offset after it is stored and committed by the
 * consumer's background commit within a second (and at a revoke or close).
 * Never blocks. An error (the partition was revoked meanwhile) means its
 * next owner reads msg again.
 */
enum tf_rc tf_kafka_commit(struct tf_kafka_consumer *cons, const rd_kafka_message_t *msg);

/** Leaves the group and destroys the consumer. NULL-safe. */
void tf_kafka_consumer_free(struct tf_kafka_consumer *cons);

/** A partition assigned to a consumer, and how far behind its end it reads. */
struct tf_kafka_lag {
    int partition;
    long long lag; /* high watermark - position */
};

/**
 * The lag of each partition assigned to cons that it has a position in,
 * from librdkafka's cached watermarks (no request): up to max into out;
 * returns how many. Safe beside the thread that polls cons.
 */
int tf_kafka_consumer_lag(struct tf_kafka_consumer *cons, struct tf_kafka_lag *out, int max);

/** Copies the value of header name of msg into out; 0 when absent. */
int tf_kafka_header(const rd_kafka_message_t *msg, const char *name, char *out, size_t outlen);

#endif
