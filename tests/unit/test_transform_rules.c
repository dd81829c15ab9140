/*
 * test_transform_rules.c - transform's rules and page parsers, without a
 * database or a broker: the verdict of transform_validate() for each rule
 * and its edges (zero and negative prices and volumes, equal high and low,
 * bar alignment on the epoch, on New York midnight across daylight saving
 * and the 2007 rule change, on an exchange clock half an hour off UTC,
 * the window's closed start and open end, duplicates in and out of time
 * order), the order in which rules are tried, and what each parser makes
 * of a page: Polygon's through both the full parse and the fast reader,
 * Twelve Data's with its exchange time zones (New York, Kolkata, none),
 * gaps and repeated hours, daily dates, vendor numbers and error pages.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transform/transform.h"
#include "check.h"
#include "tf/time.h"
#include "tf/tz.h"

#define MIN_MS  60000LL
#define HOUR_MS 3600000LL
#define DAY_MS  86400000LL

/* 2024-03-04T14:30:00Z, a Monday's open in New York. */
#define T0 1709562600000LL

/* A good bar at t (UTC ms), read on the UTC clock, item i. */
static struct bar good_bar(long long t, int i)
{
    struct bar b;

    memset(&b, 0, sizeof(b));
    b.t = t;
    b.local = t;
    b.has_t = 1;
    b.o = 10;
    b.h = 12;
    b.l = 9;
    b.c = 11;
    b.v = 100;
    b.has_v = 1;
    b.item = i;
    return b;
}

/* A one-bar page (Polygon's, day_ny set) validated on size over [lo, hi). */
static const char *verdict(struct bar b, const char *span, long long lo, long long hi)
{
    static struct bar keep;
    struct page pg;
    struct bar_size size;

    memset(&pg, 0, sizeof(pg));
    CHECK(transform_bar_size(span, &size) == 1, "bar size %s", span);
    keep = b;
    pg.bars = &keep;
    pg.n = 1;
    pg.day_ny = 1;
    CHECK_EQ_INT(transform_validate(&pg, 1, &size, lo, hi), keep.rule == NULL);
    return keep.rule ? keep.rule : "good";
}

#define ONE(b) verdict((b), "1minute", T0 - DAY_MS, T0 + DAY_MS)

static void test_bar_sizes(void)
{
    struct bar_size s = {0, SPAN_DAY};

    CHECK(transform_bar_size("5minute", &s) == 1 && s.mult == 5 && s.unit == SPAN_MINUTE,
          "5minute");
    CHECK(transform_bar_size("1hour", &s) == 1 && s.mult == 1 && s.unit == SPAN_HOUR, "1hour");
    CHECK(transform_bar_size("1day", &s) == 1 && s.mult == 1 && s.unit == SPAN_DAY, "1day");
    CHECK(transform_bar_size("100000minute", &s) == 1 && s.mult == 100000, "100000minute");
    CHECK_EQ_INT(transform_bar_size("100001minute", &s), 0);
    CHECK_EQ_INT(transform_bar_size("0minute", &s), 0);
    CHECK_EQ_INT(transform_bar_size("-1minute", &s), 0);
    CHECK_EQ_INT(transform_bar_size("minute", &s), 0);
    CHECK_EQ_INT(transform_bar_size("1minutes", &s), 0);
    CHECK_EQ_INT(transform_bar_size("1 minute", &s), 0);
    CHECK_EQ_INT(transform_bar_size("1week", &s), 0);
    CHECK_EQ_INT(transform_bar_size("", &s), 0);
    CHECK_EQ_INT(transform_bar_size(NULL, &s), 0);
}

static void test_price_and_volume(void)
{
    struct bar b = good_bar(T0, 0);

    CHECK_STR(ONE(b), "good");
    b.o = 0;
    CHECK_STR(ONE(b), RULE_PRICE);
    b = good_bar(T0, 0);
    b.c = -11;
    CHECK_STR(ONE(b), RULE_PRICE);
    b = good_bar(T0, 0);
    b.o = b.h = b.l = b.c = 1e-9; /* tiny but positive */
    CHECK_STR(ONE(b), "good");
    b = good_bar(T0, 0);
    b.v = 0;
    CHECK_STR(ONE(b), "good");
    b.v = -0.0; /* not below zero */
    CHECK_STR(ONE(b), "good");
    b.v = -1e-300;
    CHECK_STR(ONE(b), RULE_VOLUME);
    b.has_v = 0; /* no volume (Twelve Data forex): nothing to check */
    CHECK_STR(ONE(b), "good");
}

static void test_ohlc_consistency(void)
{
    struct bar b = good_bar(T0, 0);

    b.o = b.h = b.l = b.c = 10; /* a flat bar */
    CHECK_STR(ONE(b), "good");
    b = good_bar(T0, 0);
    b.h = 9;
    b.l = 9.000001;
    CHECK_STR(ONE(b), RULE_HIGH_LOW);
    b = good_bar(T0, 0);
    b.h = 11; /* == close, the larger of open and close */
    CHECK_STR(ONE(b), "good");
    b.h = 10.999999;
    CHECK_STR(ONE(b), RULE_HIGH_OC);
    b = good_bar(T0, 0);
    b.o = 12.5; /* open above high */
    CHECK_STR(ONE(b), RULE_HIGH_OC);
    b = good_bar(T0, 0);
    b.l = 10; /* == open, the smaller */
    CHECK_STR(ONE(b), "good");
    b.l = 10.000001;
    CHECK_STR(ONE(b), RULE_LOW_OC);
    b = good_bar(T0, 0);
    b.c = 8.5; /* close below low */
    CHECK_STR(ONE(b), RULE_LOW_OC);
}

/* A bar that breaks several rules is rejected by the first in the header's order. */
static void test_rule_order(void)
{
    struct bar b = good_bar(T0 + 1, 0); /* misaligned too */

    b.o = 0;
    b.v = -1;
    b.h = 1;
    b.l = 2;
    CHECK_STR(ONE(b), RULE_PRICE);
    b.o = 10;
    CHECK_STR(ONE(b), RULE_VOLUME);
    b.v = 1;
    CHECK_STR(ONE(b), RULE_HIGH_LOW);
    b.h = 9.5;
    b.l = 9; /* high below open and close, low fine */
    CHECK_STR(ONE(b), RULE_HIGH_OC);
    b.h = 12;
    b.l = 11.5;
    CHECK_STR(ONE(b), RULE_LOW_OC);
    b.l = 9;
    CHECK_STR(ONE(b), RULE_MISALIGNED);
    b.t = T0 + 2 * DAY_MS; /* aligned, outside */
    b.local = b.t;
    CHECK_STR(ONE(b), RULE_OUTSIDE);
    b.t = T0 + 2 * DAY_MS + 1; /* both: alignment is checked first */
    b.local = b.t;
    CHECK_STR(ONE(b), RULE_MISALIGNED);
}

static void test_alignment(void)
{
    struct bar b = good_bar(T0, 0);
    long long lo = -DAY_MS, hi = T0 + 400 * DAY_MS;

    CHECK_STR(verdict(b, "5minute", lo, hi), "good");
    b = good_bar(T0 + MIN_MS, 0);
    CHECK_STR(verdict(b, "5minute", lo, hi), RULE_MISALIGNED);
    CHECK_STR(verdict(b, "1minute", lo, hi), "good");
    b = good_bar(T0 + 1, 0); /* one millisecond off */
    CHECK_STR(verdict(b, "1minute", lo, hi), RULE_MISALIGNED);
    /* Before the epoch: multiples of the length all the same. */
    b = good_bar(-5 * MIN_MS, 0);
    CHECK_STR(verdict(b, "5minute", lo, hi), "good");
    b = good_bar(-MIN_MS, 0);
    CHECK_STR(verdict(b, "5minute", lo, hi), RULE_MISALIGNED);
    /* Hours on the epoch: 14:00Z is a 2-hour boundary, 15:00Z is not. */
    b = good_bar(1709560800000LL, 0);
    CHECK_STR(verdict(b, "1hour", lo, hi), "good");
    CHECK_STR(verdict(b, "2hour", lo, hi), "good");
    b = good_bar(1709564400000LL, 0);
    CHECK_STR(verdict(b, "1hour", lo, hi), "good");
    CHECK_STR(verdict(b, "2hour", lo, hi), RULE_MISALIGNED);
    CHECK_STR(verdict(good_bar(T0, 0), "1hour", lo, hi), RULE_MISALIGNED); /* 14:30Z */
    /* 90 minutes on the epoch: 2024-03-04 is day 19786, 19786 * 16 slots. */
    b = good_bar(1709510400000LL + 90 * MIN_MS, 0);
    CHECK_STR(verdict(b, "90minute", lo, hi), "good");
    b = good_bar(1709510400000LL + 60 * MIN_MS, 0);
    CHECK_STR(verdict(b, "90minute", lo, hi), RULE_MISALIGNED);
}

/* Polygon's day bars: UTC midnight (crypto, forex) or New York midnight (stocks). */
static void test_day_alignment(void)
{
    static const struct {
        long long t_s;
        const char *want;
        const char *what;
    } cases[] = {
        {1709510400, "good", "2024-03-04 00:00Z, UTC midnight"},
        {1709528400, "good", "2024-03-04 05:00Z, New York midnight (EST)"},
        {1709532000, RULE_MISALIGNED, "2024-03-04 06:00Z, 01:00 in New York"},
        {1719806400, "good", "2024-07-01 04:00Z, New York midnight (EDT)"},
        {1719810000, RULE_MISALIGNED, "2024-07-01 05:00Z, 01:00 EDT"},
        {1710046800, "good", "2024-03-10 05:00Z, midnight of the spring-forward day"},
        {1710129600, "good", "2024-03-11 04:00Z, the first EDT midnight"},
        {1710133200, RULE_MISALIGNED, "2024-03-11 05:00Z, 01:00 EDT"},
        {1110862800, "good", "2005-03-15 05:00Z, EST"},
        /* 2005 kept EST until April 3: under the 2007 rule this was EDT midnight. */
        {1111291200, RULE_MISALIGNED, "2005-03-20 04:00Z, 23:00 EST the day before"},
        {1111294800, "good", "2005-03-20 05:00Z, EST midnight before the 1987 rule's April"},
        {1112587200, "good", "2005-04-04 04:00Z, EDT after April 3"},
    };

    CHECK(tf_time_us_eastern_from_zoneinfo(), "New York's clock comes from the zone database");
    for (size_t i = 0; i < TF_ARRAY_LEN(cases); i++) {
        struct bar b = good_bar(cases[i].t_s * 1000, 0);
        const char *got = verdict(b, "1day", 0, 2000000000000LL);

        CHECK(strcmp(got, cases[i].want) == 0, "%s: %s, want %s", cases[i].what, got,
              cases[i].want);
    }
    /* A page without New York days (Twelve Data's): only its own local midnight counts. */
    {
        struct bar b = good_bar(1709528400000LL, 0);
        struct bar_size day;
        struct page pg;

        CHECK(transform_bar_size("1day", &day) == 1, "1day");
        memset(&pg, 0, sizeof(pg));
        pg.bars = &b;
        pg.n = 1;
        CHECK_EQ_INT(transform_validate(&pg, 1, &day, 0, 2000000000000LL), 0);
        CHECK_STR(b.rule, RULE_MISALIGNED);
        b = good_bar(1709528400000LL, 0);
        b.local = 1709510400000LL; /* read on a clock where it is midnight */
        CHECK_EQ_INT(transform_validate(&pg, 1, &day, 0, 2000000000000LL), 1);
        CHECK(b.rule == NULL, "local midnight: %s", b.rule);
    }
}

static void test_window_edges(void)
{
    long long lo = T0, hi = T0 + 10 * MIN_MS;

    CHECK_STR(verdict(good_bar(lo, 0), "1minute", lo, hi), "good");
    CHECK_STR(verdict(good_bar(lo - MIN_MS, 0), "1minute", lo, hi), RULE_OUTSIDE);
    CHECK_STR(verdict(good_bar(hi - MIN_MS, 0), "1minute", lo, hi), "good");
    CHECK_STR(verdict(good_bar(hi, 0), "1minute", lo, hi), RULE_OUTSIDE);
    /* The window is checked on the UTC start, whatever the local clock says. */
    {
        struct bar b = good_bar(hi, 0);
        b.local = lo;
        CHECK_STR(verdict(b, "1minute", lo, hi), RULE_OUTSIDE);
    }
}

/* Several bars at once: known tickers, bars already rejected, duplicates. */
static void test_pages_of_bars(void)
{
    struct bar bars[6];
    struct bar_size size;
    struct page pg;
    size_t left;

    CHECK(transform_bar_size("1minute", &size) == 1, "1minute");
    memset(&pg, 0, sizeof(pg));
    pg.bars = bars;
    pg.n = 6;

    /* Duplicates: the last copy in the page wins; a rejected copy does not count. */
    bars[0] = good_bar(T0, 0);
    bars[1] = good_bar(T0 + MIN_MS, 1);
    bars[2] = good_bar(T0, 2);
    bars[3] = good_bar(T0 + MIN_MS, 3);
    bars[3].v = -1; /* volume_negative: bar 1 stays */
    bars[4] = good_bar(T0, 4);
    bars[5] = good_bar(T0 + 2 * MIN_MS, 5);
    bars[5].rule = RULE_NOT_FINITE; /* the parser's verdict stays */
    left = transform_validate(&pg, 1, &size, T0, T0 + DAY_MS);
    CHECK_EQ_INT(left, 2);
    CHECK_STR(bars[0].rule, RULE_DUPLICATE);
    CHECK(bars[1].rule == NULL, "bar 1: %s", bars[1].rule);
    CHECK_STR(bars[2].rule, RULE_DUPLICATE);
    CHECK_STR(bars[3].rule, RULE_VOLUME);
    CHECK(bars[4].rule == NULL, "bar 4: %s", bars[4].rule);
    CHECK_STR(bars[5].rule, RULE_NOT_FINITE);

    /* Newest first (Twelve Data's default order): sorted before duplicates are found. */
    for (int i = 0; i < 6; i++)
        bars[i] = good_bar(T0 + (5 - i) * MIN_MS, i);
    bars[4].t = bars[4].local = T0 + 3 * MIN_MS; /* item 2 again, later in the page */
    left = transform_validate(&pg, 1, &size, T0, T0 + DAY_MS);
    CHECK_EQ_INT(left, 5);
    CHECK_STR(bars[2].rule, RULE_DUPLICATE);
    for (int i = 0; i < 6; i++) {
        if (i != 2)
            CHECK(bars[i].rule == NULL, "bar %d: %s", i, bars[i].rule);
    }

    /* A ticker that is not the job's: every bar, whatever the parser said. */
    for (int i = 0; i < 6; i++)
        bars[i] = good_bar(T0 + i * MIN_MS, i);
    bars[3].rule = RULE_TS_INVALID;
    left = transform_validate(&pg, 0, &size, T0, T0 + DAY_MS);
    CHECK_EQ_INT(left, 0);
    for (int i = 0; i < 6; i++)
        CHECK_STR(bars[i].rule, RULE_UNKNOWN_TICKER);

    /* An empty page. */
    pg.n = 0;
    CHECK_EQ_INT(transform_validate(&pg, 1, &size, T0, T0 + DAY_MS), 0);
}

/* ---- parsers ---- */

static enum tf_rc parse(const char *provider, const char *ticker, const char *text, struct page *pg,
                        char *err, size_t errlen)
{
    const struct page_parser *p = transform_parser(provider);
    cJSON *root = cJSON_Parse(text);
    enum tf_rc rc;

    memset(pg, 0, sizeof(*pg));
    err[0] = '\0';
    CHECK(root != NULL, "test page is JSON: %.80s", text);
    if (!p || !root) {
        cJSON_Delete(root);
        return TF_ERR_INVALID;
    }
    rc = p->parse(ticker, root, pg, err, errlen);
    /* raw points into root: forget it before root goes. */
    for (size_t i = 0; i < pg->n; i++) {
        CHECK(pg->bars[i].raw != NULL, "bar %zu keeps its item", i);
        pg->bars[i].raw = NULL;
    }
    cJSON_Delete(root);
    return rc;
}

static const char polygon_text[] =
    "{\"ticker\":\"AAPL\",\"status\":\"OK\",\"results\":["
    "{\"t\":1709562600000,\"o\":171.1,\"h\":171.3,\"l\":171.05,\"c\":171.29,\"v\":1234,"
    "\"vw\":171.2345,\"n\":17},"
    "{\"t\":1709562660000,\"o\":171.29,\"h\":171.2,\"l\":171.25,\"c\":171.33,\"v\":99.5,"
    "\"vw\":null,\"n\":null},"
    "{\"t\":1709562720000,\"o\":171.3,\"h\":171.4,\"l\":171.2,\"c\":171.35,\"v\":-1},"
    "{\"t\":1709562750000,\"o\":171.3,\"h\":171.4,\"l\":171.2,\"c\":171.35,\"v\":5},"
    "{\"t\":1709562600000,\"o\":171.0,\"h\":171.5,\"l\":170.9,\"c\":171.4,\"v\":7,\"n\":2}"
    "]}";

/* What both of Polygon's readers must make of polygon_text, and its verdicts. */
static void check_polygon_page(const char *how, struct page *pg)
{
    struct bar_size size;
    static const char *const want[5] = {RULE_DUPLICATE, RULE_HIGH_LOW, RULE_VOLUME, RULE_MISALIGNED,
                                        NULL};

    CHECK(strcmp(pg->ticker, "AAPL") == 0, "%s: ticker %s", how, pg->ticker);
    CHECK(pg->day_ny == 1, "%s: Polygon's day bars may start at New York midnight", how);
    CHECK(pg->n == 5, "%s: %zu bars", how, pg->n);
    if (pg->n != 5)
        return;
    CHECK_EQ_INT(pg->bars[0].t, 1709562600000LL);
    CHECK_EQ_INT(pg->bars[0].local, 1709562600000LL);
    CHECK_EQ_DBL(pg->bars[0].o, 171.1);
    CHECK_EQ_DBL(pg->bars[0].h, 171.3);
    CHECK_EQ_DBL(pg->bars[0].l, 171.05);
    CHECK_EQ_DBL(pg->bars[0].c, 171.29);
    CHECK_EQ_DBL(pg->bars[0].v, 1234);
    CHECK_EQ_DBL(pg->bars[0].vw, 171.2345);
    CHECK_EQ_INT(pg->bars[0].n, 17);
    CHECK(pg->bars[0].has_v && pg->bars[0].has_vw && pg->bars[0].has_n && pg->bars[0].has_t,
          "%s: bar 0 has every field", how);
    CHECK(!pg->bars[1].has_vw && !pg->bars[1].has_n && pg->bars[1].has_v,
          "%s: null vw and n are absent", how);
    CHECK(!pg->bars[2].has_vw && !pg->bars[2].has_n, "%s: missing vw and n are absent", how);
    for (int i = 0; i < 5; i++) {
        CHECK_EQ_INT(pg->bars[i].item, i);
        CHECK(pg->bars[i].rule == NULL, "%s: bar %d read as %s", how, i, pg->bars[i].rule);
    }
    CHECK(transform_bar_size("1minute", &size) == 1, "1minute");
    CHECK_EQ_INT(transform_validate(pg, 1, &size, 1709562600000LL, 1709562600000LL + DAY_MS), 1);
    for (int i = 0; i < 5; i++) {
        const char *got = pg->bars[i].rule;
        CHECK(want[i] ? got && strcmp(got, want[i]) == 0 : got == NULL,
              "%s: bar %d rejected as %s, want %s", how, i, got ? got : "(good)",
              want[i] ? want[i] : "(good)");
    }
}

static void test_polygon_pages(void)
{
    const struct page_parser *p = transform_parser("polygon");
    struct page pg;
    char err[256];

    CHECK(p && p->fast && strcmp(p->provider, "polygon") == 0, "the Polygon parser");
    if (!p || !p->fast)
        return;
    CHECK_EQ_INT(parse("polygon", "TKR", polygon_text, &pg, err, sizeof(err)), TF_OK);
    check_polygon_page("full parse", &pg);
    transform_page_cleanup(&pg);
    CHECK(pg.bars == NULL && pg.n == 0, "cleanup empties the page");

    memset(&pg, 0, sizeof(pg));
    CHECK_EQ_INT(p->fast("TKR", polygon_text, strlen(polygon_text), &pg), 1);
    check_polygon_page("fast reader", &pg);
    for (size_t i = 0; i < pg.n; i++)
        CHECK(pg.bars[i].raw == NULL, "the fast reader keeps no item (bar %zu)", i);
    transform_page_cleanup(&pg);

    /* Items the full parse cannot read stay in the page, already rejected. */
    CHECK_EQ_INT(parse("polygon", "TKR",
                       "{\"results\":["
                       "{\"t\":60000,\"o\":1,\"h\":2,\"l\":1,\"c\":2},"             /* no v */
                       "{\"t\":\"60000\",\"o\":1,\"h\":2,\"l\":1,\"c\":2,\"v\":1}," /* t text */
                       "{\"t\":1e16,\"o\":1,\"h\":2,\"l\":1,\"c\":2,\"v\":1},"      /* far */
                       "{\"t\":120000,\"o\":1,\"h\":2,\"l\":1,\"c\":2,\"v\":1,\"vw\":\"x\"},"
                       "{\"t\":180000,\"o\":1,\"h\":2,\"l\":1,\"c\":2,\"v\":1,\"n\":1e300},"
                       "{\"t\":240000.9,\"o\":1,\"h\":2,\"l\":1,\"c\":2,\"v\":1,\"n\":3.7},"
                       "[1,2]]}",
                       &pg, err, sizeof(err)),
                 TF_OK);
    CHECK_STR(pg.ticker, "TKR"); /* no ticker echoed: the one asked for */
    CHECK_EQ_INT(pg.n, 7);
    if (pg.n == 7) {
        CHECK_STR(pg.bars[0].rule, RULE_NOT_FINITE);
        CHECK_STR(pg.bars[1].rule, RULE_NOT_FINITE);
        CHECK_STR(pg.bars[2].rule, RULE_TS_INVALID);
        CHECK_EQ_INT(pg.bars[2].has_t, 0);
        CHECK_STR(pg.bars[3].rule, RULE_NOT_FINITE);
        CHECK_STR(pg.bars[4].rule, RULE_NOT_FINITE);
        CHECK(pg.bars[5].rule == NULL, "a fractional time is read: %s", pg.bars[5].rule);
        CHECK_EQ_INT(pg.bars[5].t, 240000); /* truncated to the millisecond */
        CHECK_EQ_INT(pg.bars[5].n, 3);
        CHECK_STR(pg.bars[6].rule, RULE_NOT_FINITE);
    }
    transform_page_cleanup(&pg);

    /* No results, or results that are not a list: an empty page. */
    CHECK_EQ_INT(
        parse("polygon", "TKR", "{\"ticker\":\"MSFT\",\"resultsCount\":0}", &pg, err, sizeof(err)),
        TF_OK);
    CHECK(pg.n == 0 && pg.bars == NULL && strcmp(pg.ticker, "MSFT") == 0, "no results");
    transform_page_cleanup(&pg);
    CHECK_EQ_INT(parse("polygon", "TKR", "{\"results\":{\"t\":1}}", &pg, err, sizeof(err)), TF_OK);
    CHECK_EQ_INT(pg.n, 0);
    transform_page_cleanup(&pg);

    CHECK(transform_parser("twelvedata") != NULL, "Twelve Data has a parser");
    CHECK(transform_parser("twelvedata")->fast == NULL, "and no fast reader");
    CHECK(transform_parser("alpaca") == NULL, "no parser for a provider this build lacks");
}

/* One Twelve Data page of one value in zone (NULL: none given). */
static enum tf_rc td_one(const char *zone, const char *value, struct page *pg, char *err,
                         size_t errlen)
{
    char text[1024];

    if (zone)
        snprintf(text, sizeof(text),
                 "{\"meta\":{\"symbol\":\"AAPL\",\"exchange_timezone\":\"%s\"},"
                 "\"values\":[%s],\"status\":\"ok\"}",
                 zone, value);
    else
        snprintf(text, sizeof(text),
                 "{\"meta\":{\"symbol\":\"AAPL\"},\"values\":[%s],\"status\":\"ok\"}", value);
    return parse("twelvedata", "AAPL", text, pg, err, errlen);
}

#define TD_VALUE(dt)                                                                               \
    "{\"datetime\":\"" dt "\",\"open\":\"10.5\",\"high\":\"11\",\"low\":\"10\","                   \
    "\"close\":\"10.75\",\"volume\":\"1200\"}"

static void test_twelvedata_times(void)
{
    static const struct {
        const char *zone, *dt;
        long long utc_s, local_s; /* 0: ts_invalid */
        const char *what;
    } cases[] = {
        {"America/New_York", "2024-03-08 09:30:00", 1709908200, 1709890200, "EST open"},
        {"America/New_York", "2024-03-08", 1709874000, 1709856000, "a daily date: midnight"},
        {"America/New_York", "2024-03-10 02:30:00", 0, 0, "in the spring gap"},
        {"America/New_York", "2024-11-03 01:30:00", 1730611800, 1730597400,
         "the repeated hour: the first (EDT)"},
        {"America/New_York", "2005-03-15 09:30:00", 1110897000, 1110879000, "2005, EST"},
        {"America/New_York", "2006-03-31 09:30:00", 1143815400, 1143797400,
         "2006 before April: EST (the 2007 rule would say EDT)"},
        {"America/New_York", "2006-04-03 09:30:00", 1144071000, 1144056600, "2006 April: EDT"},
        {"Asia/Kolkata", "2024-03-08 09:15:00", 1709869500, 1709889300, "Kolkata, +05:30"},
        {NULL, "2024-03-08 09:30:00", 1709890200, 1709890200, "no zone: UTC"},
        {"UTC", "2024-03-08 09:30:00", 1709890200, 1709890200, "UTC"},
        {"America/New_York", "2024-03-08T09:30:00", 0, 0, "a T instead of a blank"},
        {"America/New_York", "2024-03-08 09:30", 0, 0, "no seconds"},
        {"America/New_York", "2024-02-30", 0, 0, "a date that does not exist"},
        {"America/New_York", "", 0, 0, "empty"},
    };

    for (size_t i = 0; i < TF_ARRAY_LEN(cases); i++) {
        char value[512], err[256];
        struct page pg;
        enum tf_rc rc;

        snprintf(value, sizeof(value),
                 "{\"datetime\":\"%s\",\"open\":\"10.5\",\"high\":\"11\",\"low\":\"10\","
                 "\"close\":\"10.75\",\"volume\":\"1200\"}",
                 cases[i].dt);
        rc = td_one(cases[i].zone, value, &pg, err, sizeof(err));
        CHECK(rc == TF_OK && pg.n == 1, "%s: rc %s, %zu bars, %s", cases[i].what, tf_rc_str(rc),
              pg.n, err);
        if (pg.n == 1 && cases[i].utc_s) {
            CHECK(pg.bars[0].rule == NULL && pg.bars[0].has_t, "%s: rejected %s", cases[i].what,
                  pg.bars[0].rule);
            CHECK(pg.bars[0].t == cases[i].utc_s * 1000, "%s: t %lld, want %lld", cases[i].what,
                  pg.bars[0].t, cases[i].utc_s * 1000);
            CHECK(pg.bars[0].local == cases[i].local_s * 1000, "%s: local %lld, want %lld",
                  cases[i].what, pg.bars[0].local, cases[i].local_s * 1000);
        } else if (pg.n == 1) {
            CHECK(pg.bars[0].rule && strcmp(pg.bars[0].rule, RULE_TS_INVALID) == 0 &&
                      !pg.bars[0].has_t,
                  "%s: %s, want ts_invalid", cases[i].what,
                  pg.bars[0].rule ? pg.bars[0].rule : "(good)");
        }
        transform_page_cleanup(&pg);
    }
}

/* Alignment on the exchange's clock: Kolkata is half an hour off whole UTC hours. */
static void test_twelvedata_alignment(void)
{
    /* clang-format off */
    static const char page[] =
        "{\"meta\":{\"symbol\":\"SBIN\",\"exchange_timezone\":\"Asia/Kolkata\"},"
        "\"values\":[" TD_VALUE("2024-03-08 11:00:00") "," TD_VALUE("2024-03-08 10:00:00") ","
        TD_VALUE("2024-03-08 09:15:00") "," TD_VALUE("2024-03-08 10:00:00") "],"
        "\"status\":\"ok\"}";
    /* clang-format on */
    struct bar_size hour, min15;
    struct page pg;
    char err[256];

    CHECK(transform_bar_size("1hour", &hour) == 1 && transform_bar_size("15minute", &min15) == 1,
          "sizes");
    CHECK_EQ_INT(parse("twelvedata", "SBIN:NSE", page, &pg, err, sizeof(err)), TF_OK);
    CHECK_STR(pg.ticker, "SBIN:NSE"); /* "SBIN" is how the vendor echoes it */
    CHECK_EQ_INT(pg.day_ny, 0);
    CHECK_EQ_INT(pg.n, 4);
    if (pg.n == 4) {
        CHECK_EQ_INT(pg.bars[1].t, 1709872200000LL); /* 10:00 IST = 04:30Z */
        /* 1hour on the local clock: 10:00 and 11:00 IST are aligned, 04:30Z is not a UTC hour. */
        CHECK_EQ_INT(transform_validate(&pg, 1, &hour, 1709856000000LL, 1709942400000LL), 2);
        CHECK(pg.bars[0].rule == NULL, "11:00 IST: %s", pg.bars[0].rule);
        CHECK_STR(pg.bars[1].rule, RULE_DUPLICATE); /* the later 10:00 wins */
        CHECK_STR(pg.bars[2].rule, RULE_MISALIGNED);
        CHECK(pg.bars[3].rule == NULL, "the later 10:00 IST: %s", pg.bars[3].rule);
        for (size_t i = 0; i < pg.n; i++)
            pg.bars[i].rule = NULL;
        CHECK_EQ_INT(transform_validate(&pg, 1, &min15, 1709856000000LL, 1709942400000LL), 3);
        CHECK(pg.bars[2].rule == NULL, "09:15 IST on 15 minutes: %s", pg.bars[2].rule);
    }
    transform_page_cleanup(&pg);
}

static void test_twelvedata_numbers(void)
{
    static const struct {
        const char *value;
        const char *rule; /* NULL: good */
        int has_v;
        double open;
    } cases[] = {
        {"{\"datetime\":\"2024-03-08\",\"open\":\"10.5\",\"high\":\"11\",\"low\":\"10\","
         "\"close\":\"10.75\"}",
         NULL, 0, 10.5},
        {"{\"datetime\":\"2024-03-08\",\"open\":\"10.5\",\"high\":\"11\",\"low\":\"10\","
         "\"close\":\"10.75\",\"volume\":null}",
         NULL, 0, 10.5},
        {"{\"datetime\":\"2024-03-08\",\"open\":10.5,\"high\":11,\"low\":10,\"close\":10.75,"
         "\"volume\":0}",
         NULL, 1, 10.5},
        {"{\"datetime\":\"2024-03-08\",\"open\":\"1.05e1\",\"high\":\"11\",\"low\":\"10\","
         "\"close\":\"10.75\",\"volume\":\"-3\"}",
         NULL, 1, 10.5}, /* read; the volume rule comes later */
        {"{\"datetime\":\"2024-03-08\",\"open\":\" 10.5\",\"high\":\"11\",\"low\":\"10\","
         "\"close\":\"10.75\"}",
         RULE_NOT_FINITE, 0, 0},
        {"{\"datetime\":\"2024-03-08\",\"open\":\"0x10\",\"high\":\"11\",\"low\":\"10\","
         "\"close\":\"10.75\"}",
         RULE_NOT_FINITE, 0, 0},
        {"{\"datetime\":\"2024-03-08\",\"open\":\"inf\",\"high\":\"11\",\"low\":\"10\","
         "\"close\":\"10.75\"}",
         RULE_NOT_FINITE, 0, 0},
        {"{\"datetime\":\"2024-03-08\",\"open\":\"1e999\",\"high\":\"11\",\"low\":\"10\","
         "\"close\":\"10.75\"}",
         RULE_NOT_FINITE, 0, 0},
        {"{\"datetime\":\"2024-03-08\",\"open\":\"\",\"high\":\"11\",\"low\":\"10\","
         "\"close\":\"10.75\"}",
         RULE_NOT_FINITE, 0, 0},
        {"{\"datetime\":\"2024-03-08\",\"open\":\"10.5\",\"high\":\"11\",\"low\":\"10\"}",
         RULE_NOT_FINITE, 0, 0},
        {"{\"datetime\":\"2024-03-08\",\"open\":\"10.5\",\"high\":\"11\",\"low\":\"10\","
         "\"close\":\"10.75\",\"volume\":\"n/a\"}",
         RULE_NOT_FINITE, 0, 0},
        /* Numbers are read before the time: a bad number wins over a bad time. */
        {"{\"datetime\":\"nope\",\"open\":\"x\",\"high\":\"11\",\"low\":\"10\","
         "\"close\":\"10.75\"}",
         RULE_NOT_FINITE, 0, 0},
    };

    for (size_t i = 0; i < TF_ARRAY_LEN(cases); i++) {
        struct page pg;
        char err[256];

        CHECK_EQ_INT(td_one("America/New_York", cases[i].value, &pg, err, sizeof(err)), TF_OK);
        CHECK_EQ_INT(pg.n, 1);
        if (pg.n == 1) {
            const char *got = pg.bars[0].rule;
            CHECK(cases[i].rule ? got && strcmp(got, cases[i].rule) == 0 : got == NULL,
                  "value %zu: %s, want %s", i, got ? got : "(good)",
                  cases[i].rule ? cases[i].rule : "(good)");
            if (!cases[i].rule) {
                CHECK_EQ_INT(pg.bars[0].has_v, cases[i].has_v);
                CHECK_EQ_DBL(pg.bars[0].o, cases[i].open);
                CHECK(!pg.bars[0].has_vw && !pg.bars[0].has_n, "no VWAP or trades");
            }
        }
        transform_page_cleanup(&pg);
    }
}

static void test_twelvedata_pages(void)
{
    struct page pg;
    char err[256];

    /* The vendor's "no data" is an empty page. */
    CHECK_EQ_INT(parse("twelvedata", "AAPL",
                       "{\"code\":400,\"message\":\"No data is available on the specified dates."
                       " Try setting different start/end dates.\",\"status\":\"error\"}",
                       &pg, err, sizeof(err)),
                 TF_OK);
    CHECK(pg.n == 0 && pg.bars == NULL, "no data: an empty page");
    CHECK_STR(pg.ticker, "AAPL");
    transform_page_cleanup(&pg);
    /* Any other error fails the run, with the vendor's words. */
    CHECK_EQ_INT(parse("twelvedata", "AAPL",
                       "{\"code\":401,\"message\":\"**apikey** parameter is incorrect\","
                       "\"status\":\"error\"}",
                       &pg, err, sizeof(err)),
                 TF_ERR_INVALID);
    CHECK_STR(err, "bronze page for AAPL holds Twelve Data error 401: **apikey** parameter is "
                   "incorrect");
    transform_page_cleanup(&pg);
    CHECK_EQ_INT(parse("twelvedata", "AAPL",
                       "{\"code\":400,\"message\":\"symbol is invalid\",\"status\":\"error\"}", &pg,
                       err, sizeof(err)),
                 TF_ERR_INVALID);
    CHECK_STR(err, "bronze page for AAPL holds Twelve Data error 400: symbol is invalid");
    transform_page_cleanup(&pg);
    CHECK_EQ_INT(
        parse("twelvedata", "AAPL", "{\"meta\":{},\"status\":\"ok\"}", &pg, err, sizeof(err)),
        TF_ERR_INVALID);
    CHECK_STR(err, "bronze page for AAPL has no values list");
    transform_page_cleanup(&pg);
    /* A zone tickflow cannot load: the page's times cannot be placed. */
    CHECK(parse("twelvedata", "AAPL",
                "{\"meta\":{\"exchange_timezone\":\"Mars/Olympus_Mons\"},"
                "\"values\":[" TD_VALUE("2024-03-08") "],\"status\":\"ok\"}",
                &pg, err, sizeof(err)) == TF_ERR_NOT_FOUND,
          "unknown zone: %s", err);
    CHECK_STR(err, "bronze page for AAPL: exchange_timezone Mars/Olympus_Mons: not_found");
    CHECK(pg.n == 0 && pg.bars == NULL, "nothing kept");
    transform_page_cleanup(&pg);
    /* The echoed symbol names the page's ticker unless it is the one asked for. */
    CHECK_EQ_INT(parse("twelvedata", "AAPL",
                       "{\"meta\":{\"symbol\":\"MSFT\"},\"values\":[],\"status\":\"ok\"}", &pg, err,
                       sizeof(err)),
                 TF_OK);
    CHECK_STR(pg.ticker, "MSFT");
    transform_page_cleanup(&pg);
    CHECK_EQ_INT(parse("twelvedata", "AAPL",
                       "{\"meta\":{\"symbol\":\"aapl\"},\"values\":[],\"status\":\"ok\"}", &pg, err,
                       sizeof(err)),
                 TF_OK);
    CHECK_STR(pg.ticker, "AAPL");
    transform_page_cleanup(&pg);
    CHECK_EQ_INT(parse("twelvedata", "SBIN:NSE",
                       "{\"meta\":{\"symbol\":\"SBI\"},\"values\":[],\"status\":\"ok\"}", &pg, err,
                       sizeof(err)),
                 TF_OK);
    CHECK_STR(pg.ticker, "SBI"); /* a prefix is not the same symbol */
    transform_page_cleanup(&pg);
    CHECK_EQ_INT(parse("twelvedata", "EUR/USD",
                       "{\"meta\":{\"symbol\":\"EUR/USD\"},\"values\":[" TD_VALUE(
                           "2024-03-08 09:30:00") "],\"status\":\"ok\"}",
                       &pg, err, sizeof(err)),
                 TF_OK);
    CHECK_STR(pg.ticker, "EUR/USD");
    CHECK(pg.n == 1 && pg.bars[0].t == 1709890200000LL, "forex without a zone reads UTC");
    transform_page_cleanup(&pg);
}

int main(void)
{
    test_bar_sizes();
    test_price_and_volume();
    test_ohlc_consistency();
    test_rule_order();
    test_alignment();
    test_day_alignment();
    test_window_edges();
    test_pages_of_bars();
    test_polygon_pages();
    test_twelvedata_times();
    test_twelvedata_alignment();
    test_twelvedata_numbers();
    test_twelvedata_pages();
    tf_tz_cleanup();
    return check_summary();
}
