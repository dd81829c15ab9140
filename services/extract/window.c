/*
 * window.c - the window an extraction covers, from what the POST gives and
 * what the job says; no I/O (main.c reads the job and its last window).
 */
#include "extract.h"

#include <stdio.h>

#include "tf/time.h"

enum tf_rc extract_window_given(const char *ws, const char *we, int64_t bar, int64_t now,
                                int64_t *start, int64_t *end, char *err, size_t errlen)
{
    if (tf_time_parse(ws, start) != TF_OK || tf_time_parse(we, end) != TF_OK) {
        snprintf(err, errlen, "window_start and window_end must be ISO-8601 times");
        return TF_ERR_INVALID;
    }
    if (*end <= *start) {
        snprintf(err, errlen, "window_end must be after window_start");
        return TF_ERR_INVALID;
    }
    if (*end > now + bar) {
        snprintf(err, errlen, "window_end is in the future");
        return TF_ERR_INVALID;
    }
    if (*end - *start > EXTRACT_MAX_WINDOW_SECONDS) {
        snprintf(err, errlen,
                 "a window may cover at most 31 days; split it into several executions");
        return TF_ERR_INVALID;
    }
    return TF_OK;
}

enum tf_rc extract_window_next(const char *job, int64_t bar, long overlap_s, long interval_s,
                               int64_t last, int64_t now, int64_t *start, int64_t *end, char *err,
                               size_t errlen)
{
    /* From the end of the last good window less the overlap (late bars),
     * to now truncated to the bar; a job far behind catches up 31 days
     * at a time. */
    *end = now - now % bar;
    *start = last > 0 ? last - overlap_s : *end - interval_s;
    *start -= *start % bar;
    if (*end - *start > EXTRACT_MAX_WINDOW_SECONDS) {
        *end = *start + EXTRACT_MAX_WINDOW_SECONDS;
        *end -= *end % bar;
    }
    if (*end <= last || *end <= *start) {
        char at[32];

        tf_time_format(last, at, sizeof(at));
        snprintf(err, errlen, "job %s is up to date: no complete bar after %s", job, at);
        return TF_ERR_CONFLICT;
    }
    return TF_OK;
}
