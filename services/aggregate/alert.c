/*
 * alert.c - owns the delivery of one data-quality alert: the JSON a
 * Slack-compatible webhook gets, the RFC 5322 message an SMTP server gets,
 * and the two libcurl transfers that carry them.
 *
 * Every text that comes from an alert is made valid UTF-8 first (invalid
 * bytes become U+FFFD) and capped, so a receiver never refuses a message
 * for its encoding and a header never grows past a line. Header values
 * lose their CR/LF (no header injection); the Subject is an RFC 2047
 * encoded word when it is not plain ASCII. Errors name the channel and the
 * server's answer, never the webhook's path or token, nor a password.
 */
#include "alert.h"

#include <curl/curl.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tf/buf.h"
#include "tf/exec.h"

#define FIELD_MAX   900 /* bytes of one alert field, well inside a 998-byte mail line */
#define SUBJECT_MAX 200 /* bytes of each part of the Subject */
#define REPLY_MAX   160 /* bytes of a webhook answer quoted in an error */
#define MAIL_MAX    (64 * 1024)
#define RCPT_MAX    50

/* clang-format off */
#define KEY(n, type, field, def, flags, lo, hi) \
    { n, type, offsetof(struct tf_alert_cfg, field), def, flags, lo, hi }
static const struct tf_cfg_key alert_keys[TF_ALERT_CFG_NKEYS] = {
    KEY("TICKFLOW_ALERT_MAIL_FROM",     TF_CFG_STR, mail_from,     "tickflow@localhost", 0, 0, 0),
    KEY("TICKFLOW_ALERT_MAIL_TO",       TF_CFG_STR, mail_to,       NULL, 0, 0, 0),
    KEY("TICKFLOW_ALERT_SMTP_PASSWORD", TF_CFG_STR, smtp_password, NULL, TF_CFG_SECRET, 0, 0),
    KEY("TICKFLOW_ALERT_SMTP_URL",      TF_CFG_STR, smtp_url,      NULL, 0, 0, 0),
    KEY("TICKFLOW_ALERT_SMTP_USER",     TF_CFG_STR, smtp_user,     NULL, 0, 0, 0),
    KEY("TICKFLOW_ALERT_TIMEOUT_MS",    TF_CFG_INT, timeout_ms,    "10000", 0, 100, 600000),
    KEY("TICKFLOW_ALERT_WEBHOOK_URL",   TF_CFG_STR, webhook_url,   NULL, TF_CFG_SECRET, 0, 0),
};
#undef KEY
/* clang-format on */

size_t tf_alert_cfg_keys(struct tf_cfg_key *out, size_t max, size_t base)
{
    size_t n = max < TF_ARRAY_LEN(alert_keys) ? max : TF_ARRAY_LEN(alert_keys);

    for (size_t i = 0; i < n; i++) {
        out[i] = alert_keys[i];
        out[i].offset += base;
    }
    return n;
}

static int is_set(const char *s)
{
    return s && *s;
}

/* 1 when the list has at least one non-blank entry. */
static int has_recipient(const char *list)
{
    for (const char *p = list; p && *p; p++) {
        if (*p != ',' && *p != ' ' && *p != '\t')
            return 1;
    }
    return 0;
}

unsigned tf_alert_channels(const struct tf_alert_cfg *cfg)
{
    unsigned ch = 0;

    if (!cfg)
        return 0;
    if (is_set(cfg->webhook_url))
        ch |= TF_ALERT_WEBHOOK;
    if (is_set(cfg->smtp_url) && has_recipient(cfg->mail_to))
        ch |= TF_ALERT_MAIL;
    return ch;
}

/* --- text ------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (1-4), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (s[0] >= 0xe0 && s[0] <= 0xef) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
            return 0;
        if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f))
            return 0; /* overlong, or a surrogate */
        return 3;
    }
    if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
            return 0;
        if ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
            return 0;
        return 4;
    }
    return 0;
}

/*
 * Copies in as valid UTF-8 of at most max bytes (cut on a character
 * boundary, "..." marking a cut), invalid bytes as U+FFFD. With one_line,
 * every control character (CR and LF included) becomes a space. NULL in
 * gives "". Returns a new string (free()), NULL when out of memory.
 */
static char *clean_text(const char *in, size_t max, int one_line)
{
    static const char repl[] = "\xef\xbf\xbd";
    const unsigned char *s = (const unsigned char *)(in ? in : "");
    size_t inlen = strlen((const char *)s);
    size_t cap = inlen * 3 + 1; /* each byte may become U+FFFD */
    char *out = NULL;
    size_t len = 0;

    if (cap > max + 1)
        cap = max + 1;
    out = malloc(cap > 4 ? cap : 4);
    if (!out)
        return NULL;
    while (*s) {
        size_t n = utf8_len(s);
        const char *src = (const char *)s;
        size_t take = n;
        char space = ' ';

        if (n == 0) {
            src = repl;
            take = 3;
            n = 1;
        } else if (n == 1 && one_line && (*s < 0x20 || *s == 0x7f)) {
            src = &space;
        }
        if (len + take > max) {
            /* Cut: back off to make room for "..." on a boundary. */
            while (len > 0 && len + 3 > max) {
                len--;
                while (len > 0 && ((unsigned char)out[len] & 0xc0) == 0x80)
                    len--;
            }
            if (len + 3 <= max) {
                memcpy(out + len, "...", 3);
                len += 3;
            }
            break;
        }
        memcpy(out + len, src, take);
        len += take;
        s += n;
    }
    out[len] = '\0';
    return out;
}

/* The value as the shortest %g that reads back the same; "none" for NaN. */
static void fmt_value(double v, char *out, size_t outlen)
{
    if (isnan(v)) {
        snprintf(out, outlen, "none");
        return;
    }
    snprintf(out, outlen, "%.15g", v);
    if (strtod(out, NULL) != v)
        snprintf(out, outlen, "%.17g", v);
}

/* Appends to the error report, "; " between channels. */
static void err_add(char *err, size_t errlen, const char *fmt, ...) TF_PRINTF(3, 4);
static void err_add(char *err, size_t errlen, const char *fmt, ...)
{
    size_t used;
    va_list ap;

    if (!err || errlen == 0)
        return;
    used = strnlen(err, errlen);
    if (used + 3 >= errlen)
        return;
    if (used > 0) {
        memcpy(err + used, "; ", 3);
        used += 2;
    }
    va_start(ap, fmt);
    vsnprintf(err + used, errlen - used, fmt, ap);
    va_end(ap);
}

/* Replaces every occurrence of secret (when it has at least 4 bytes) in s with "***". */
static void scrub(char *s, const char *secret)
{
    size_t slen = secret ? strlen(secret) : 0;
    char *p = slen >= 4 ? strstr(s, secret) : NULL;

    while (p) {
        memcpy(p, "***", 3);
        memmove(p + 3, p + slen, strlen(p + slen) + 1);
        p = strstr(p + 3, secret);
    }
}

/* Keeps printable ASCII of a server's answer, the rest as spaces. */
static void printable(char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            *s = ' ';
    }
}

/*
 * What an error may show of a URL: scheme://host[:port]. TF_ERR_INVALID
 * unless it parses, has a host and one of the two schemes. secrets (when
 * not NULL) gets new strings with its path and its query (NULL when there
 * is none), each scrubbed from error text: a token may sit in either.
 */
static enum tf_rc url_origin(const char *url, const char *const schemes[2], char *out,
                             size_t outlen, char *secrets[2], int *has_password)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *query = NULL, *pw = NULL;
    enum tf_rc rc = TF_OK;

    snprintf(out, outlen, "(an unparsable URL)");
    if (secrets)
        secrets[0] = secrets[1] = NULL;
    if (has_password)
        *has_password = 0;
    if (!u)
        return TF_ERR_NOMEM;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host ||
        (strcmp(scheme, schemes[0]) != 0 && strcmp(scheme, schemes[1]) != 0)) {
        rc = TF_ERR_INVALID;
        goto out;
    }
    if (curl_url_get(u, CURLUPART_PORT, &port, 0) != CURLUE_OK)
        port = NULL;
    snprintf(out, outlen, "%s://%s%s%s", scheme, host, port ? ":" : "", port ? port : "");
    printable(out);
    if (has_password && curl_url_get(u, CURLUPART_PASSWORD, &pw, 0) == CURLUE_OK && pw && *pw)
        *has_password = 1;
    if (secrets) {
        if (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
            path = NULL;
        if (curl_url_get(u, CURLUPART_QUERY, &query, 0) != CURLUE_OK)
            query = NULL;
        if (path && strcmp(path, "/") != 0)
            secrets[0] = strdup(path);
        if (query && *query)
            secrets[1] = strdup(query);
    }
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(query);
    curl_free(pw);
    curl_url_cleanup(u);
    return rc;
}

static const char *const web_schemes[2] = {"http", "https"};
static const char *const mail_schemes[2] = {"smtp", "smtps"};

/* Alert fields made safe once, for both channels. */
struct clean_alert {
    char *job, *exec, *check, *severity, *threshold, *message;
    char value[40];
    double num;
};

static void clean_alert_free(struct clean_alert *c)
{
    free(c->job);
    free(c->exec);
    free(c->check);
    free(c->severity);
    free(c->threshold);
    free(c->message);
}

static enum tf_rc clean_alert_init(struct clean_alert *c, const struct tf_alert *a, char *err,
                                   size_t errlen)
{
    memset(c, 0, sizeof(*c));
    if (!a || !is_set(a->job_name) || !is_set(a->execution_id) || !is_set(a->check) ||
        !is_set(a->severity)) {
        err_add(err, errlen, "alert: job_name, execution_id, check and severity are required");
        return TF_ERR_INVALID;
    }
    c->job = clean_text(a->job_name, FIELD_MAX, 1);
    c->exec = clean_text(a->execution_id, FIELD_MAX, 1);
    c->check = clean_text(a->check, FIELD_MAX, 1);
    c->severity = clean_text(a->severity, 32, 1);
    c->threshold = clean_text(a->threshold ? a->threshold : "none", FIELD_MAX, 1);
    c->message = clean_text(a->message, FIELD_MAX, 1);
    c->num = a->value;
    fmt_value(a->value, c->value, sizeof(c->value));
    if (!c->job || !c->exec || !c->check || !c->severity || !c->threshold || !c->message) {
        clean_alert_free(c);
        err_add(err, errlen, "alert: out of memory");
        return TF_ERR_NOMEM;
    }
    return TF_OK;
}

/* --- webhook ---------------------------------------------------------- */

/* Appends s with Slack's three reserved characters escaped (&amp; &lt; &gt;). */
static enum tf_rc put_slack(struct tf_buf *b, const char *s)
{
    enum tf_rc rc = TF_OK;

    for (; *s && rc == TF_OK; s++) {
        if (*s == '&')
            rc = tf_buf_puts(b, "&amp;");
        else if (*s == '<')
            rc = tf_buf_puts(b, "&lt;");
        else if (*s == '>')
            rc = tf_buf_puts(b, "&gt;");
        else
            rc = tf_buf_append(b, s, 1);
    }
    return rc;
}

/* The uppercase severity for a summary ("FAIL"). */
static void upper(const char *s, char *out, size_t outlen)
{
    size_t i = 0;

    for (; s[i] && i + 1 < outlen; i++)
        out[i] = (s[i] >= 'a' && s[i] <= 'z') ? (char)(s[i] - 'a' + 'A') : s[i];
    out[i] = '\0';
}

/*
 * The one-line summary, Slack-escaped:
 * "[tickflow] FAIL job/check: message (value v, threshold t, execution id)".
 */
static char *summary_line(const struct clean_alert *c)
{
    struct tf_buf b;
    char sev[40];
    enum tf_rc rc;

    upper(c->severity, sev, sizeof(sev));
    tf_buf_init(&b, 8 * FIELD_MAX);
    rc = tf_buf_printf(&b, "[tickflow] %s ", sev);
    if (rc == TF_OK)
        rc = put_slack(&b, c->job);
    if (rc == TF_OK)
        rc = tf_buf_puts(&b, "/");
    if (rc == TF_OK)
        rc = put_slack(&b, c->check);
    if (rc == TF_OK && *c->message) {
        rc = tf_buf_puts(&b, ": ");
        if (rc == TF_OK)
            rc = put_slack(&b, c->message);
    }
    if (rc == TF_OK)
        rc = tf_buf_printf(&b, " (value %s, threshold ", c->value);
    if (rc == TF_OK)
        rc = put_slack(&b, c->threshold);
    if (rc == TF_OK)
        rc = tf_buf_puts(&b, ", execution ");
    if (rc == TF_OK)
        rc = put_slack(&b, c->exec);
    if (rc == TF_OK)
        rc = tf_buf_puts(&b, ")");
    if (rc != TF_OK) {
        tf_buf_cleanup(&b);
        return NULL;
    }
    return tf_buf_take(&b);
}

/* A plain_text object of Slack's Block Kit. */
static cJSON *plain_text(const char *text)
{
    cJSON *t = cJSON_CreateObject();

    if (t && (!cJSON_AddStringToObject(t, "type", "plain_text") ||
              !cJSON_AddStringToObject(t, "text", *text ? text : "-"))) {
        cJSON_Delete(t);
        return NULL;
    }
    return t;
}

/* Adds a plain_text field "label: value" to a section's fields array. */
static int add_field(cJSON *fields, const char *label, const char *value)
{
    char buf[FIELD_MAX + 40];
    cJSON *f;

    snprintf(buf, sizeof(buf), "%s: %s", label, value);
    f = plain_text(buf);
    return f && cJSON_AddItemToArray(fields, f);
}

/* Blocks: a header, the message, and the fields (Slack renders these, text is the fallback). */
static cJSON *make_blocks(const struct clean_alert *c)
{
    cJSON *blocks = cJSON_CreateArray();
    cJSON *head = cJSON_CreateObject(), *msg = cJSON_CreateObject(), *sec = cJSON_CreateObject();
    cJSON *fields = cJSON_CreateArray();
    char title[2 * FIELD_MAX + 64], sev[40], *cut = NULL;
    int ok;

    upper(c->severity, sev, sizeof(sev));
    snprintf(title, sizeof(title), "[tickflow] %s %s %s", sev, c->job, c->check);
    cut = clean_text(title, 150, 1); /* Slack's limit for a header */
    ok = blocks && head && msg && sec && fields && cut;
    ok = ok && cJSON_AddStringToObject(head, "type", "header") &&
         cJSON_AddItemToObject(head, "text", plain_text(cut));
    ok = ok && cJSON_AddStringToObject(msg, "type", "section") &&
         cJSON_AddItemToObject(msg, "text", plain_text(c->message));
    ok = ok && add_field(fields, "Job", c->job) && add_field(fields, "Check", c->check) &&
         add_field(fields, "Severity", c->severity) && add_field(fields, "Value", c->value) &&
         add_field(fields, "Threshold", c->threshold) && add_field(fields, "Execution", c->exec);
    ok = ok && cJSON_AddStringToObject(sec, "type", "section") &&
         cJSON_AddItemToObject(sec, "fields", fields);
    if (ok)
        fields = NULL;
    ok = ok && cJSON_AddItemToArray(blocks, head);
    if (ok)
        head = NULL;
    ok = ok && cJSON_AddItemToArray(blocks, msg);
    if (ok)
        msg = NULL;
    ok = ok && cJSON_AddItemToArray(blocks, sec);
    if (ok)
        sec = NULL;
    free(cut);
    cJSON_Delete(head);
    cJSON_Delete(msg);
    cJSON_Delete(sec);
    cJSON_Delete(fields);
    if (!ok) {
        cJSON_Delete(blocks);
        return NULL;
    }
    return blocks;
}

/* The webhook body (new string, free with cJSON_free), NULL when out of memory. */
static char *webhook_body(const struct clean_alert *c)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *tf = cJSON_CreateObject();
    cJSON *blocks = NULL;
    char *text = summary_line(c);
    char *body = NULL;
    int ok = root && tf && text;

    ok = ok && cJSON_AddStringToObject(root, "text", text);
    if (ok) {
        blocks = make_blocks(c);
        ok = blocks && cJSON_AddItemToObject(root, "blocks", blocks);
    }
    ok = ok && cJSON_AddStringToObject(tf, "job_name", c->job) &&
         cJSON_AddStringToObject(tf, "execution_id", c->exec) &&
         cJSON_AddStringToObject(tf, "check", c->check) &&
         cJSON_AddStringToObject(tf, "severity", c->severity) &&
         (isnan(c->num) || isinf(c->num) ? cJSON_AddNullToObject(tf, "value") != NULL
                                         : cJSON_AddNumberToObject(tf, "value", c->num) != NULL) &&
         cJSON_AddStringToObject(tf, "threshold", c->threshold) &&
         cJSON_AddStringToObject(tf, "message", c->message);
    if (ok && cJSON_AddItemToObject(root, "tickflow", tf)) {
        tf = NULL;
        body = cJSON_PrintUnformatted(root);
    }
    cJSON_Delete(tf);
    cJSON_Delete(root);
    free(text);
    return body;
}

/* Keeps the first REPLY_MAX bytes of the webhook's answer, discards the rest. */
static size_t on_reply(char *data, size_t size, size_t nmemb, void *ud)
{
    struct tf_buf *b = ud;
    size_t n = size * nmemb;
    size_t room = b->len < REPLY_MAX ? REPLY_MAX - b->len : 0;

    if (room > 0 && tf_buf_append(b, data, n < room ? n : room) != TF_OK)
        return 0;
    return n;
}

static enum tf_rc send_webhook(const struct tf_alert_cfg *cfg, const struct clean_alert *c,
                               char *err, size_t errlen)
{
    CURL *curl = NULL;
    struct curl_slist *hdrs = NULL;
    struct tf_buf reply;
    char origin[300], cerr[CURL_ERROR_SIZE];
    char *secrets[2] = {NULL, NULL}; /* the URL's path and query: a token is in one of them */
    char *body = NULL;
    long status = 0;
    enum tf_rc rc = TF_OK;
    CURLcode cc;

    tf_buf_init(&reply, REPLY_MAX + 1);
    cerr[0] = '\0';
    rc = url_origin(cfg->webhook_url, web_schemes, origin, sizeof(origin), secrets, NULL);
    if (rc != TF_OK) {
        err_add(err, errlen, "webhook: %s",
                rc == TF_ERR_NOMEM
                    ? "out of memory"
                    : "TICKFLOW_ALERT_WEBHOOK_URL is not an http(s) URL with a host");
        goto out;
    }
    body = webhook_body(c);
    curl = curl_easy_init();
    hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    if (hdrs)
        hdrs = curl_slist_append(hdrs, "Expect:");
    if (!body || !curl || !hdrs) {
        err_add(err, errlen, "webhook: out of memory");
        rc = TF_ERR_NOMEM;
        goto out;
    }
    curl_easy_setopt(curl, CURLOPT_URL, cfg->webhook_url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "tickflow-alert/1");
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_reply);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, cfg->timeout_ms > 0 ? cfg->timeout_ms : 10000L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    cc = curl_easy_perform(curl);
    if (cc != CURLE_OK) {
        scrub(cerr, cfg->webhook_url);
        scrub(cerr, secrets[0]);
        scrub(cerr, secrets[1]);
        printable(cerr);
        err_add(err, errlen, "webhook: %s (curl %d%s%s) at %s", curl_easy_strerror(cc), (int)cc,
                cerr[0] ? ": " : "", cerr, origin);
        rc = TF_ERR_UPSTREAM;
        goto out;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status > 299) {
        char none[1] = "";
        char *said = reply.data ? reply.data : none;

        scrub(said, cfg->webhook_url);
        scrub(said, secrets[0]);
        scrub(said, secrets[1]);
        printable(said);
        err_add(err, errlen, "webhook: HTTP %ld from %s%s%s%s", status, origin,
                status >= 300 && status < 400 ? " (redirects are not followed)" : "",
                *said ? ": " : "", said);
        rc = TF_ERR_UPSTREAM;
    }
out:
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(curl);
    cJSON_free(body);
    free(secrets[0]);
    free(secrets[1]);
    tf_buf_cleanup(&reply);
    return rc;
}

/* --- mail ------------------------------------------------------------- */

/* A bare address: printable ASCII without specials, one '@' inside. */
static int addr_ok(const char *s, size_t n)
{
    const char *at = NULL;

    if (n < 3 || n > 254)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch <= 0x20 || ch >= 0x7f || strchr("<>()[]\\,;:\"", ch))
            return 0;
        if (ch == '@') {
            if (at)
                return 0;
            at = s + i;
        }
    }
    return at && at > s && at < s + n - 1;
}

/*
 * Splits mail_to on commas into envelope recipients ("<a@b>") and the To
 * header's value ("a@b, c@d", folded before a line passes 78 characters).
 * TF_ERR_INVALID names the bad entry by position.
 */
static enum tf_rc parse_rcpts(const char *list, struct curl_slist **rcpts, struct tf_buf *to,
                              char *err, size_t errlen)
{
    const char *p = list;
    int pos = 0, count = 0;
    size_t line = 4; /* "To: " */

    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *s = p;
        char angle[260];
        const char *sep;
        struct curl_slist *grown;

        p = end ? end + 1 : p + n;
        pos++;
        while (n > 0 && (*s == ' ' || *s == '\t')) {
            s++;
            n--;
        }
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        if (n == 0)
            continue;
        if (!addr_ok(s, n) || ++count > RCPT_MAX) {
            err_add(err, errlen,
                    count > RCPT_MAX ? "mail: more than %d recipients in TICKFLOW_ALERT_MAIL_TO"
                                     : "mail: entry %d of TICKFLOW_ALERT_MAIL_TO is not a plain "
                                       "address",
                    count > RCPT_MAX ? RCPT_MAX : pos);
            return TF_ERR_INVALID;
        }
        snprintf(angle, sizeof(angle), "<%.*s>", (int)n, s);
        grown = curl_slist_append(*rcpts, angle);
        if (to->len == 0) {
            sep = "";
        } else if (line + 2 + n > 78) {
            sep = ",\r\n "; /* the next line starts with the folding space */
            line = 1;
        } else {
            sep = ", ";
            line += 2;
        }
        line += n;
        if (!grown || tf_buf_puts(to, sep) != TF_OK || tf_buf_append(to, s, n) != TF_OK) {
            if (grown)
                *rcpts = grown;
            err_add(err, errlen, "mail: out of memory");
            return TF_ERR_NOMEM;
        }
        *rcpts = grown;
    }
    if (count == 0) {
        err_add(err, errlen, "mail: TICKFLOW_ALERT_MAIL_TO has no address");
        return TF_ERR_INVALID;
    }
    return TF_OK;
}

/* Appends s as a Subject: plain when printable ASCII, else RFC 2047 B encoded words. */
static enum tf_rc put_subject(struct tf_buf *b, const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t len = strlen(s);
    int ascii = 1;
    enum tf_rc rc = TF_OK;

    for (size_t i = 0; i < len; i++) {
        if (u[i] < 0x20 || u[i] > 0x7e)
            ascii = 0;
    }
    if (ascii)
        return tf_buf_printf(b, "Subject: %s\r\n", s);
    rc = tf_buf_puts(b, "Subject:");
    while (rc == TF_OK && len > 0) {
        unsigned char enc[4 * 45 / 3 + 4];
        size_t n = 0;

        /* At most 45 bytes a word (60 base64 characters, 72 with the wrapper), whole characters. */
        while (n < len) {
            size_t cl = utf8_len(u + n);

            if (cl == 0)
                cl = 1;
            if (n + cl > 45)
                break;
            n += cl;
        }
        EVP_EncodeBlock(enc, u, (int)n);
        rc = tf_buf_printf(b, " =?UTF-8?B?%s?=%s", (const char *)enc, n < len ? "\r\n" : "");
        u += n;
        len -= n;
    }
    if (rc == TF_OK)
        rc = tf_buf_puts(b, "\r\n");
    return rc;
}

/* RFC 5322 date of now, in UTC, without locale: "Tue, 05 Mar 2024 14:30:00 +0000". */
static void mail_date(char *out, size_t outlen)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t now = time(NULL);
    struct tm tm;

    gmtime_r(&now, &tm);
    snprintf(out, outlen, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday % 7], tm.tm_mday,
             months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* The whole message, CRLF line endings (new string, free()). */
static char *mail_message(const struct clean_alert *c, const char *from, const char *to)
{
    struct tf_buf b;
    char date[64], uuid[TF_UUID_LEN + 1], sev[40];
    char subject[3 * SUBJECT_MAX];
    char *job = clean_text(c->job, SUBJECT_MAX, 1), *check = clean_text(c->check, SUBJECT_MAX, 1);
    const char *domain = strchr(from, '@');
    enum tf_rc rc = job && check ? TF_OK : TF_ERR_NOMEM;

    mail_date(date, sizeof(date));
    tf_uuid_new(uuid);
    upper(c->severity, sev, sizeof(sev));
    tf_buf_init(&b, MAIL_MAX);
    snprintf(subject, sizeof(subject), "[tickflow] %s %s %s", c->severity, job ? job : "",
             check ? check : "");
    if (rc == TF_OK)
        rc = tf_buf_printf(&b,
                           "Date: %s\r\nFrom: %s\r\nTo: %s\r\nMessage-ID: <%s@%s>\r\n"
                           "MIME-Version: 1.0\r\n"
                           "Content-Type: text/plain; charset=utf-8\r\n"
                           "Content-Transfer-Encoding: 8bit\r\n"
                           "Auto-Submitted: auto-generated\r\n"
                           "X-Tickflow-Execution-Id: %s\r\n",
                           date, from, to, uuid, domain ? domain + 1 : "localhost", c->exec);
    if (rc == TF_OK)
        rc = put_subject(&b, subject);
    if (rc == TF_OK)
        rc = tf_buf_printf(&b,
                           "\r\n"
                           "tickflow data-quality check %s\r\n"
                           "\r\n"
                           "job: %s\r\n"
                           "execution_id: %s\r\n"
                           "check: %s\r\n"
                           "severity: %s\r\n"
                           "value: %s\r\n"
                           "threshold: %s\r\n"
                           "message: %s\r\n",
                           sev, c->job, c->exec, c->check, c->severity, c->value, c->threshold,
                           *c->message ? c->message : "-");
    free(job);
    free(check);
    if (rc != TF_OK) {
        tf_buf_cleanup(&b);
        return NULL;
    }
    return tf_buf_take(&b);
}

struct upload {
    const char *data;
    size_t len;
    size_t pos;
};

static size_t on_read(char *out, size_t size, size_t nmemb, void *ud)
{
    struct upload *up = ud;
    size_t n = size * nmemb;

    if (n > up->len - up->pos)
        n = up->len - up->pos;
    memcpy(out, up->data + up->pos, n);
    up->pos += n;
    return n;
}

static enum tf_rc send_mail(const struct tf_alert_cfg *cfg, const struct clean_alert *c, char *err,
                            size_t errlen)
{
    CURL *curl = NULL;
    struct curl_slist *rcpts = NULL;
    struct tf_buf to;
    struct upload up;
    char origin[300], cerr[CURL_ERROR_SIZE], from[260];
    const char *mail_from = is_set(cfg->mail_from) ? cfg->mail_from : "tickflow@localhost";
    char *msg = NULL;
    int url_pw = 0, creds = is_set(cfg->smtp_user) || is_set(cfg->smtp_password);
    long code = 0;
    enum tf_rc rc;
    CURLcode cc;

    tf_buf_init(&to, 64 * 1024);
    cerr[0] = '\0';
    rc = url_origin(cfg->smtp_url, mail_schemes, origin, sizeof(origin), NULL, &url_pw);
    if (rc != TF_OK) {
        err_add(err, errlen, "mail: %s",
                rc == TF_ERR_NOMEM ? "out of memory"
                                   : "TICKFLOW_ALERT_SMTP_URL is not an smtp(s) URL with a host");
        goto out;
    }
    if (url_pw) {
        err_add(err, errlen,
                "mail: TICKFLOW_ALERT_SMTP_URL must not carry a password; "
                "use TICKFLOW_ALERT_SMTP_PASSWORD");
        rc = TF_ERR_INVALID;
        goto out;
    }
    if (!addr_ok(mail_from, strlen(mail_from))) {
        err_add(err, errlen, "mail: TICKFLOW_ALERT_MAIL_FROM is not a plain address");
        rc = TF_ERR_INVALID;
        goto out;
    }
    rc = parse_rcpts(cfg->mail_to ? cfg->mail_to : "", &rcpts, &to, err, errlen);
    if (rc != TF_OK)
        goto out;
    msg = mail_message(c, mail_from, to.data);
    curl = curl_easy_init();
    if (!msg || !curl) {
        err_add(err, errlen, "mail: out of memory");
        rc = TF_ERR_NOMEM;
        goto out;
    }
    up.data = msg;
    up.len = strlen(msg);
    up.pos = 0;
    snprintf(from, sizeof(from), "<%s>", mail_from);
    curl_easy_setopt(curl, CURLOPT_URL, cfg->smtp_url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(curl, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, rcpts);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(curl, CURLOPT_READDATA, &up);
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)up.len);
    /* Credentials only over TLS; without them, STARTTLS when the server offers it. */
    curl_easy_setopt(curl, CURLOPT_USE_SSL, creds ? (long)CURLUSESSL_ALL : (long)CURLUSESSL_TRY);
    if (is_set(cfg->smtp_user))
        curl_easy_setopt(curl, CURLOPT_USERNAME, cfg->smtp_user);
    if (is_set(cfg->smtp_password))
        curl_easy_setopt(curl, CURLOPT_PASSWORD, cfg->smtp_password);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, cfg->timeout_ms > 0 ? cfg->timeout_ms : 10000L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    cc = curl_easy_perform(curl);
    if (cc != CURLE_OK) {
        char said[40] = "";

        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
        if (code >= 400) /* the server's refusal; below, its last good answer says nothing */
            snprintf(said, sizeof(said), ", SMTP %ld", code);
        scrub(cerr, cfg->smtp_password);
        printable(cerr);
        err_add(err, errlen, "mail: %s (curl %d%s%s%s) at %s%s", curl_easy_strerror(cc), (int)cc,
                said, cerr[0] ? ": " : "", cerr, origin,
                creds && cc == CURLE_USE_SSL_FAILED ? "; credentials are only sent over TLS" : "");
        rc = TF_ERR_UPSTREAM;
    }
out:
    curl_slist_free_all(rcpts);
    curl_easy_cleanup(curl);
    free(msg);
    tf_buf_cleanup(&to);
    return rc;
}

enum tf_rc tf_alert_send(const struct tf_alert_cfg *cfg, unsigned channels,
                         const struct tf_alert *a, unsigned *delivered, char *err, size_t errlen)
{
    struct clean_alert c;
    unsigned todo = channels & tf_alert_channels(cfg);
    unsigned done = 0;
    enum tf_rc rc = TF_OK, one;

    if (err && errlen)
        err[0] = '\0';
    if (delivered)
        *delivered = 0;
    if (todo == 0)
        return TF_OK;
    rc = clean_alert_init(&c, a, err, errlen);
    if (rc != TF_OK)
        return rc;
    if (todo & TF_ALERT_WEBHOOK) {
        one = send_webhook(cfg, &c, err, errlen);
        if (one == TF_OK)
            done |= TF_ALERT_WEBHOOK;
        else
            rc = one;
    }
    if (todo & TF_ALERT_MAIL) {
        one = send_mail(cfg, &c, err, errlen);
        if (one == TF_OK)
            done |= TF_ALERT_MAIL;
        else if (rc == TF_OK)
            rc = one;
    }
    clean_alert_free(&c);
    if (delivered)
        *delivered = done;
    return rc;
}
