/*
 * kafka.c - producer with per-message delivery waits, consumer, admin.
 */
#include "tf/kafka.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tf/log.h"
#include "tf/time.h"

struct tf_kafka {
    rd_kafka_t *rk;
    atomic_int fatal; /* the idempotent producer hit a fatal error: unusable */
    pthread_t poller;
    atomic_int stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    rd_kafka_topic_t *known[4]; /* topics whose metadata tf_kafka_know_topic() fetched */
    int nknown;
};

struct tf_kafka_consumer {
    rd_kafka_t *rk;
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
    tf_log_warn(NULL, "kafka: %s", reason);
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

enum tf_rc tf_kafka_producer_new(const char *brokers, const char *client_id,
                                 int delivery_timeout_ms, struct tf_kafka **out, char *err,
                                 size_t errlen)
{
    struct tf_kafka *kafka = calloc(1, sizeof(*kafka));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char timeout[24];

    snprintf(timeout, sizeof(timeout), "%d", delivery_timeout_ms);

    if (!kafka || !conf)
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
    /* rd_kafka_new() takes conf on success only. */
    kafka->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, errlen);
    if (!kafka->rk) {
        pthread_mutex_destroy(&kafka->mu);
        pthread_cond_destroy(&kafka->cv);
        goto fail;
    }
    conf = NULL;
    if (pthread_create(&kafka->poller, NULL, poll_loop, kafka) != 0) {
        snprintf(err, errlen, "cannot start the delivery thread");
        rd_kafka_destroy(kafka->rk);
        pthread_mutex_destroy(&kafka->mu);
        pthread_cond_destroy(&kafka->cv);
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
    ev = rd_kafka_queue_poll(queue, 30 * 1000);
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
    return TF_OK;
}

enum tf_rc tf_kafka_consumer_new(const char *brokers, const char *group, const char *topic,
                                 struct tf_kafka_consumer **out, char *err, size_t errlen)
{
    struct tf_kafka_consumer *cons = calloc(1, sizeof(*cons));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *subs = NULL;
    rd_kafka_resp_err_t serr;

    if (!cons || !conf)
        goto fail;
    if (!conf_set(conf, "bootstrap.servers", brokers, err, errlen) ||
        !conf_set(conf, "group.id", group, err, errlen) ||
        !conf_set(conf, "client.id", group, err, errlen) ||
        !conf_set(conf, "enable.auto.commit", "false", err, errlen) ||
        !conf_set(conf, "auto.offset.reset", "earliest", err, errlen) ||
        !conf_set(conf, "session.timeout.ms", "10000", err, errlen) ||
        !conf_set(conf, "heartbeat.interval.ms", "1000", err, errlen) ||
        /* A stage runs inside the poll loop: allow it half an hour. */
        !conf_set(conf, "max.poll.interval.ms", "1800000", err, errlen) ||
        !conf_set(conf, "topic.metadata.refresh.interval.ms", "5000", err, errlen))
        goto fail;
    rd_kafka_conf_set_log_cb(conf, on_log);
    cons->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, errlen);
    if (!cons->rk)
        goto fail;
    conf = NULL;
    rd_kafka_poll_set_consumer(cons->rk);
    subs = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(subs, topic, RD_KAFKA_PARTITION_UA);
    serr = rd_kafka_subscribe(cons->rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (serr) {
        snprintf(err, errlen, "subscribe %s: %s", topic, rd_kafka_err2str(serr));
        rd_kafka_destroy(cons->rk);
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

enum tf_rc tf_kafka_commit(struct tf_kafka_consumer *cons, const rd_kafka_message_t *msg)
{
    rd_kafka_resp_err_t err = rd_kafka_commit_message(cons->rk, msg, 0);

    if (err) {
        tf_log_warn(NULL, "kafka commit: %s", rd_kafka_err2str(err));
        return TF_ERR_KAFKA;
    }
    return TF_OK;
}

void tf_kafka_consumer_free(struct tf_kafka_consumer *cons)
{
    if (!cons)
        return;
    rd_kafka_consumer_close(cons->rk);
    rd_kafka_destroy(cons->rk);
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
