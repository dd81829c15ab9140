/*
 * kafka_opts.c - the Kafka connection settings (TLS, SASL, pass-through
 * properties) of the environment, for the clients the tests make
 * themselves: the same TICKFLOW_KAFKA_* the services read.
 */
#include "harness.h"

#include <pthread.h>
#include <stdio.h>

#include "tf/kafka.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static struct tf_kafka_opts opts;
static int loaded;

static void load(void)
{
    char err[1024];

    if (tf_kafka_opts_load(&opts, NULL, err, sizeof(err)) == TF_OK) {
        loaded = 1;
        return;
    }
    fprintf(stderr, "harness: Kafka settings of the environment:\n%s\n", err);
    tf_kafka_opts_cleanup(&opts);
}

const struct tf_kafka_opts *h_kafka_opts(void)
{
    pthread_once(&once, load);
    return loaded ? &opts : NULL;
}
