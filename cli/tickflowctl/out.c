/*
 * out.c - tickflowctl's output: error lines on stderr, JSON documents on
 * stdout, durations and API times, and progress lines that are redrawn in
 * place on a terminal and printed only when they change when piped.
 */
#include "ctl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tf/time.h"

int ctl_err(int code, const char *fmt, ...)
{
    va_list ap;

    fputs("tickflowctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

const char *ctl_or_dash(const char *s)
{
    return s ? s : "-";
}

int ctl_print_json(const cJSON *json)
{
    char *text = cJSON_Print(json);

    if (!text)
        return ctl_err(CTL_SERVER, "out of memory");
    puts(text);
    cJSON_free(text);
    return CTL_OK;
}

void ctl_fmt_duration(int64_t ms, char *out, size_t outlen)
{
    if (ms < 0)
        ms = 0;
    if (ms < 1000)
        snprintf(out, outlen, "%lldms", (long long)ms);
    else if (ms < 60000)
        snprintf(out, outlen, "%.1fs", (double)ms / 1000.0);
    else if (ms < 3600000)
        snprintf(out, outlen, "%lldm%02llds", (long long)(ms / 60000), (long long)(ms / 1000 % 60));
    else
        snprintf(out, outlen, "%lldh%02lldm", (long long)(ms / 3600000),
                 (long long)(ms / 60000 % 60));
}

int64_t ctl_time_ms(const char *s)
{
    char whole[32];
    const char *dot;
    int64_t sec = 0, ms = 0;
    size_t n;

    if (!s)
        return -1;
    /* tf_time_parse takes no fraction but zeros: the milliseconds apart. */
    dot = strchr(s, '.');
    n = dot ? (size_t)(dot - s) : strlen(s);
    if (n >= sizeof(whole))
        return -1;
    memcpy(whole, s, n);
    whole[n] = '\0';
    if (dot) {
        const char *p = dot + 1;
        int digits = 0;

        for (; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3)
                ms = ms * 10 + (*p - '0');
        for (; digits < 3; digits++)
            ms *= 10;
        if (strlen(p) >= sizeof(whole) - n)
            return -1;
        memcpy(whole + n, p, strlen(p) + 1); /* the zone after the fraction */
    }
    if (tf_time_parse(whole, &sec) != TF_OK)
        return -1;
    return sec * 1000 + ms;
}

int64_t ctl_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ctl_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    /* SIGINT (installed without SA_RESTART) ends the sleep with EINTR. */
    while (!ctl_interrupted && nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    return ctl_interrupted ? 1 : 0;
}

void ctl_live_init(struct ctl_live *lv, int tty, int nlines)
{
    memset(lv, 0, sizeof(*lv));
    lv->tty = tty;
    lv->n = nlines < CTL_LIVE_MAX ? nlines : CTL_LIVE_MAX;
}

void ctl_live_set(struct ctl_live *lv, int i, const char *key, const char *text)
{
    if (i < 0 || i >= lv->n)
        return;
    if (!lv->tty && strcmp(lv->key[i], key) != 0)
        printf("%s\n", text);
    snprintf(lv->key[i], sizeof(lv->key[i]), "%s", key);
    snprintf(lv->text[i], sizeof(lv->text[i]), "%s", text);
}

void ctl_live_show(struct ctl_live *lv)
{
    if (lv->tty) {
        /* Back to the first line, then each line rewritten and cleared to its end. */
        if (lv->drawn > 1)
            printf("\033[%dA", lv->drawn - 1);
        for (int i = 0; i < lv->n; i++)
            printf("\r%s\033[K%s", lv->text[i], i + 1 < lv->n ? "\n" : "");
        lv->drawn = lv->n;
    }
    fflush(stdout);
}

int ctl_watch_end(struct ctl_live *lv, int code, const char *what, const char *again)
{
    ctl_live_end(lv);
    if (code == CTL_INTERRUPTED) {
        ctl_err(code, "stopped watching; %s goes on. Watch it again with:", what);
        fprintf(stderr, "  %s\n", again);
    }
    return code;
}

void ctl_live_end(struct ctl_live *lv)
{
    if (lv->tty && lv->drawn)
        putchar('\n');
    lv->drawn = 0;
    fflush(stdout);
}
