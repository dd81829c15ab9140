/*
 * wait.c - waits on what a service has done, seen from outside: how far a
 * stage's consumer group has committed its upstream topic (harness.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "harness.h"
#include "tf/kafka.h"

/*
 * Sets the environment's connection settings (h_kafka_opts: TLS, SASL, pass-through
 * properties) on conf, as common/io/kafka.c does for the services' clients; 1 when all took.
 */
static int conf_secure(rd_kafka_conf_t *conf, char *err, size_t errlen)
{
    const struct tf_kafka_opts *o = h_kafka_opts();
    const struct {
        const char *name, *value;
    } set[] = {
        {"security.protocol", o ? o->security_protocol : NULL},
        {"sasl.mechanisms", o ? o->sasl_mechanism : NULL},
        {"sasl.username", o ? o->sasl_username : NULL},
        {"sasl.password", o ? o->sasl_password : NULL},
        {"ssl.ca.location", o ? o->ssl_ca_file : NULL},
        {"ssl.certificate.location", o ? o->ssl_cert_file : NULL},
        {"ssl.key.location", o ? o->ssl_key_file : NULL},
        {"ssl.key.password", o ? o->ssl_key_password : NULL},
    };

    if (!o) {
        snprintf(err, errlen, "the environment's Kafka settings are wrong");
        return 0;
    }
    for (size_t i = 0; i < sizeof(set) / sizeof(set[0]); i++)
        if (set[i].value &&
            rd_kafka_conf_set(conf, set[i].name, set[i].value, err, errlen) != RD_KAFKA_CONF_OK)
            return 0;
    for (int i = 0; i < o->nprops; i++)
        if (rd_kafka_conf_set(conf, o->props[i].name, o->props[i].value, err, errlen) !=
            RD_KAFKA_CONF_OK)
            return 0;
    return 1;
}

/* topic's partitions, each with its end offset (-1 when empty); NULL, said, on failure. */
static rd_kafka_topic_partition_list_t *topic_ends(rd_kafka_t *rk, const char *topic)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_partition_list_t *ends = NULL;
    rd_kafka_resp_err_t err =
        rkt ? rd_kafka_metadata(rk, 0, rkt, &md, 10000) : RD_KAFKA_RESP_ERR__FAIL;

    if (!err && md->topic_cnt == 1 && !md->topics[0].err) {
        ends = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
        for (int i = 0; i < md->topics[0].partition_cnt && !err; i++) {
            int64_t lo = 0, hi = 0;
            int32_t part = md->topics[0].partitions[i].id;

            err = rd_kafka_query_watermark_offsets(rk, topic, part, &lo, &hi, 10000);
            rd_kafka_topic_partition_list_add(ends, topic, part)->offset = hi > lo ? hi : -1;
        }
    } else if (!err) {
        err = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
    }
    if (err) {
        fprintf(stderr, "the ends of %s: %s\n", topic, rd_kafka_err2str(err));
        if (ends)
            rd_kafka_topic_partition_list_destroy(ends);
        ends = NULL;
    }
    if (md)
        rd_kafka_metadata_destroy(md);
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    return ends;
}

/* A consumer of group (never subscribed: it only asks); NULL, said, on failure. */
static rd_kafka_t *asker(const char *group)
{
    char err[256] = "";
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk = NULL;

    if (rd_kafka_conf_set(conf, "bootstrap.servers", getenv("TICKFLOW_KAFKA_BROKERS"), err,
                          sizeof(err)) == RD_KAFKA_CONF_OK &&
        rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err)) == RD_KAFKA_CONF_OK &&
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err)) ==
            RD_KAFKA_CONF_OK &&
        conf_secure(conf, err, sizeof(err)))
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "kafka client: %s\n", err);
    }
    return rk;
}

long h_topic_size(const char *prefix, const char *topic)
{
    char full[160], group[200];
    rd_kafka_t *rk;
    rd_kafka_topic_partition_list_t *ends;
    long n = -1;

    snprintf(full, sizeof(full), "%s%s", prefix, topic);
    snprintf(group, sizeof(group), "%ssize-%ld", prefix, (long)getpid());
    rk = asker(group);
    /* Right after a broker restart the partitions' leaders may not be known yet. */
    ends = rk ? topic_ends(rk, full) : NULL;
    for (int i = 0; rk && !ends && i < h_timeout(20) * 2; i++) {
        h_sleep_ms(500);
        ends = topic_ends(rk, full);
    }
    if (ends) {
        n = 0;
        for (int i = 0; i < ends->cnt; i++) {
            int64_t lo = 0, hi = 0;
            if (rd_kafka_query_watermark_offsets(rk, full, ends->elems[i].partition, &lo, &hi,
                                                 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
                n = -1;
                break;
            }
            n += (long)(hi - lo);
        }
        rd_kafka_topic_partition_list_destroy(ends);
    }
    if (rk)
        rd_kafka_destroy(rk);
    return n;
}

int h_wait_consumed(const char *prefix, const char *topic, const char *stage, int seconds)
{
    char full[160], group[200];
    rd_kafka_t *rk;
    rd_kafka_topic_partition_list_t *ends = NULL;
    double end = h_now_s() + h_timeout(seconds);
    int behind = -1;

    snprintf(full, sizeof(full), "%s%s", prefix, topic);
    snprintf(group, sizeof(group), "%stickflow-%s", prefix, stage);
    /* Never subscribes (so never joins the group): it only reads its committed offsets. */
    rk = asker(group);
    if (!rk)
        return -1;
    ends = topic_ends(rk, full);
    while (ends && behind != 0 && h_now_s() < end) {
        rd_kafka_topic_partition_list_t *got = rd_kafka_topic_partition_list_copy(ends);

        /* A committed offset is the next one to read: at the end when it equals it. */
        behind = rd_kafka_committed(rk, got, 5000) ? -1 : 0;
        for (int i = 0; i < got->cnt && behind == 0; i++)
            behind = ends->elems[i].offset >= 0 && got->elems[i].offset < ends->elems[i].offset;
        rd_kafka_topic_partition_list_destroy(got);
        if (behind != 0)
            h_sleep_ms(100);
    }
    if (ends && behind != 0)
        fprintf(stderr, "h_wait_consumed: %s has not committed all of %s within %d s\n", group,
                full, h_timeout(seconds));
    if (ends)
        rd_kafka_topic_partition_list_destroy(ends);
    rd_kafka_destroy(rk);
    return ends && behind == 0 ? 0 : -1;
}

long h_topics_drop(const char *prefix)
{
    char group[200];
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_DeleteTopic_t **del = NULL;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_event_t *ev = NULL;
    size_t plen = strlen(prefix);
    long n = 0;
    rd_kafka_t *rk;

    if (!plen)
        return -1; /* never every topic of the broker */
    snprintf(group, sizeof(group), "%sdrop-%ld", prefix, (long)getpid());
    rk = asker(group);
    if (!rk || rd_kafka_metadata(rk, 1, NULL, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        n = -1;
        goto out;
    }
    del = calloc((size_t)md->topic_cnt + 1, sizeof(*del));
    for (int i = 0; del && i < md->topic_cnt; i++)
        if (strncmp(md->topics[i].topic, prefix, plen) == 0)
            del[n++] = rd_kafka_DeleteTopic_new(md->topics[i].topic);
    if (!del || n == 0)
        goto out;
    q = rd_kafka_queue_new(rk);
    rd_kafka_DeleteTopics(rk, del, (size_t)n, NULL, q);
    ev = rd_kafka_queue_poll(q, 30000);
    if (!ev || rd_kafka_event_error(ev)) {
        fprintf(stderr, "h_topics_drop %s*: %s\n", prefix,
                ev ? rd_kafka_event_error_string(ev) : "no answer within 30 s");
        n = -1;
    }
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    if (q)
        rd_kafka_queue_destroy(q);
    if (del) {
        for (int i = 0; del[i]; i++)
            rd_kafka_DeleteTopic_destroy(del[i]);
        free(del);
    }
    if (md)
        rd_kafka_metadata_destroy(md);
    if (rk)
        rd_kafka_destroy(rk);
    return n;
}
