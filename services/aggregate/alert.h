/*
 * tf/alert.h - data-quality alerts to a Slack-compatible webhook and to
 * e-mail over SMTP, both sent with libcurl.
 *
 * The library sends one alert at a time and says which channels took it;
 * recording alerts (an outbox) and retrying them is the caller's business.
 * libcurl must have been initialised (curl_global_init) before the first
 * call, as every service does in main(). Calls on different threads are
 * safe: each send uses its own easy handles.
 */
#ifndef TF_ALERT_H
#define TF_ALERT_H

#include <stddef.h>

#include "tf/cfg.h"
#include "tf/rc.h"

/* Filled from the environment by the service's tf_cfg table (tf_alert_cfg_keys). */
struct tf_alert_cfg {
    char *webhook_url;   /* TICKFLOW_ALERT_WEBHOOK_URL (secret: Slack URLs embed a token; _FILE) */
    char *smtp_url;      /* TICKFLOW_ALERT_SMTP_URL, e.g. smtp://mail:25 or smtps://host:465 */
    char *smtp_user;     /* TICKFLOW_ALERT_SMTP_USER */
    char *smtp_password; /* TICKFLOW_ALERT_SMTP_PASSWORD (secret; _FILE variant) */
    char *mail_from;     /* TICKFLOW_ALERT_MAIL_FROM, default tickflow@localhost */
    char *mail_to;       /* TICKFLOW_ALERT_MAIL_TO, comma-separated */
    long timeout_ms;     /* TICKFLOW_ALERT_TIMEOUT_MS, default 10000 */
};

/* How many rows tf_alert_cfg_keys writes when max allows. */
#define TF_ALERT_CFG_NKEYS 7

/**
 * The table rows for tf_cfg_load (see tf/cfg.h): a service appends these to
 * its own table, with base = offsetof(service_cfg, alert). Writes at most
 * max keys into out (in alphabetical order) and returns how many.
 */
size_t tf_alert_cfg_keys(struct tf_cfg_key *out, size_t max, size_t base);

struct tf_alert {
    const char *job_name, *execution_id, *check, *severity; /* severity "warn" or "fail" */
    double value;                                           /* the measured value (NAN when none) */
    const char *threshold; /* human-readable, e.g. "[100, 200]" or ">= 0.95" */
    const char *message;   /* one line, e.g. "average close 97.1 below 100" */
};

/* Bitmask of channels */
#define TF_ALERT_WEBHOOK 0x1u
#define TF_ALERT_MAIL    0x2u

/**
 * Which channels are configured (0: alerts are only recorded). The webhook
 * needs its URL; mail needs the SMTP URL and at least one recipient.
 */
unsigned tf_alert_channels(const struct tf_alert_cfg *cfg);

/**
 * Sends a to every channel in `channels` that is configured (others are
 * skipped). Returns TF_OK when all of them accepted it (webhook: 2xx; SMTP:
 * message accepted), else an error (TF_ERR_UPSTREAM for a channel that
 * refused or could not be reached, TF_ERR_INVALID for a configuration or
 * alert that cannot be sent, TF_ERR_NOMEM) with err naming the channel and
 * the reason (HTTP status or curl/SMTP error) WITHOUT the webhook URL's
 * path/token or any password. *delivered (may be NULL) gets the bitmask of
 * channels that did accept it (so a retry can skip those).
 *
 * The webhook gets a POST of Slack-compatible JSON, redirects are not
 * followed, and only http/https are allowed. Mail goes to every address of
 * mail_to; with a user or password on smtp://, STARTTLS is required (a
 * password never crosses the network in clear), otherwise it is used when
 * the server offers it. Each channel is bounded by timeout_ms.
 */
enum tf_rc tf_alert_send(const struct tf_alert_cfg *cfg, unsigned channels,
                         const struct tf_alert *a, unsigned *delivered, char *err,
                         size_t errlen) TF_MUSTCHECK;

#endif
