/*
 * transform.h - what the transform service's files share: a bronze page
 * turned into bars (pages.c), the rules that keep a bar out of silver
 * (pages.c), the load into silver (main.c) and the Parquet lake (lake.c).
 */
#ifndef TRANSFORM_H
#define TRANSFORM_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "tf/rc.h"
#include "tf/svc.h"

/*
 * The rules, by stable name (silver.rejected_bars.rule). A bar is checked
 * in this order and rejected by the first rule it breaks.
 */
#define RULE_UNKNOWN_TICKER "unknown_ticker"     /* not the page's ticker or not the job's */
#define RULE_NOT_FINITE     "not_finite"         /* a number missing, unreadable, NaN or inf */
#define RULE_TS_INVALID     "ts_invalid"         /* no readable time, or one that never happens */
#define RULE_PRICE          "price_not_positive" /* open, high, low or close <= 0 */
#define RULE_VOLUME         "volume_negative"    /* volume < 0 */
#define RULE_HIGH_LOW       "high_below_low"     /* high < low */
#define RULE_HIGH_OC        "high_below_open_close" /* high < max(open, close) */
#define RULE_LOW_OC         "low_above_open_close"  /* low > min(open, close) */
#define RULE_MISALIGNED     "ts_misaligned"         /* not on the job's bar size */
#define RULE_OUTSIDE        "outside_window"        /* start not in [window_start, window_end) */
#define RULE_DUPLICATE      "duplicate"             /* the same time again later in the page */

enum span_unit { SPAN_MINUTE, SPAN_HOUR, SPAN_DAY };

/* transform's own settings (the runtime loads them from main.c's table). */
struct transform_cfg {
    long lake_memory_mb; /* TICKFLOW_TRANSFORM_LAKE_MEMORY_MB */
};

/* A bar size: "5minute" is {5, SPAN_MINUTE}. */
struct bar_size {
    long mult;
    enum span_unit unit;
};

struct bar {
    long long t;     /* start, UTC epoch milliseconds (when has_t) */
    long long local; /* start on the clock alignment is checked on, ms (UTC for Polygon) */
    double o, h, l, c, v, vw;
    long long n;
    int has_t;
    int has_v; /* volume is NULL without it (Twelve Data forex and crypto) */
    int has_vw;
    int has_n;
    int item;         /* position in the page, from 0 */
    const char *rule; /* NULL while the bar is good; else the rule that rejected it */
    const cJSON *raw; /* the item as sent, borrowed from the page's JSON */
};

/* What a provider's parser made of one page. */
struct page {
    struct bar *bars; /* owned: one per item, in page order */
    size_t n;
    char ticker[128]; /* whose bars they are: the page's own ticker when it names one */
    int day_ny;       /* day bars may start at New York midnight (Polygon) */
};

/*
 * A provider's page parser: fills *pg with one bar per item of the page of
 * ticker, items it cannot read already rejected (not_finite, ts_invalid).
 * A page it cannot read at all (an error answer, times it cannot place)
 * fails with err set.
 */
struct page_parser {
    const char *provider;
    enum tf_rc (*parse)(const char *ticker, const cJSON *root, struct page *pg, char *err,
                        size_t errlen);
    /*
     * Optional: the same page read straight from its text when it is plain,
     * without building a tree. 1 with pg filled (bars without their raw
     * item), 0 when the page needs the full parse (pg left empty).
     */
    int (*fast)(const char *ticker, const char *text, size_t len, struct page *pg);
};

/** The parser of provider's pages, NULL for a provider this build cannot read. */
const struct page_parser *transform_parser(const char *provider);

/** Reads "5minute", "1hour", "1day"; 0 when it is not a bar size. */
int transform_bar_size(const char *span, struct bar_size *out);

/**
 * Applies the rules to every bar of pg not yet rejected: known says whether
 * the page's ticker is one of the job's; [lo_ms, hi_ms) is the window.
 * Among bars left with the same time, all but the last in the page are
 * rejected as duplicates. Returns how many bars are still good.
 */
size_t transform_validate(struct page *pg, int known, const struct bar_size *size, long long lo_ms,
                          long long hi_ms);

/** Frees pg's bars. */
void transform_page_cleanup(struct page *pg);

/**
 * After the silver commit: rewrites the Parquet file of every (dataset,
 * date) the run noted in run->state, and lists them in run->objects.
 */
enum tf_rc transform_lake(struct tf_run *run);

/**
 * The sweeper's tick: writes the lake files still owed
 * (tickflow.lake_pending) past the heartbeat timeout, whose transform died
 * after its commit or failed to write them, and lists each on the records
 * of the executions that owed it.
 */
void transform_lake_tick(struct tf_svc *svc, PGconn *conn);

/**
 * Starts keeping the bars the run loads (run->carry), so that the lake's
 * files are written from them rather than read back from silver. fetched
 * is the extract's finish, the fetched_at of every bar the run loads.
 * Keeping is an optimisation: without memory it is simply not done.
 */
void transform_lake_hold(struct tf_run *run, const char *fetched);

/** Keeps the good bars of one page that the run has just loaded. */
void transform_lake_keep(struct tf_run *run, const char *provider, const char *span,
                         const struct page *pg);

#endif
