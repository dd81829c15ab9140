/*
 * test_pages.c - transform's Polygon pages read straight from their text
 * (the parser's fast path) against the full parse of the same text: every
 * plain page gives the very same bars, bit for bit (numbers that take one
 * exact operation, numbers that need strtod, negative zero, exponents,
 * members in any order, unknown members of any kind, null vw and n), and
 * every page that is not plain is left to the full parse (a repeated or
 * escaped key, at the top or in a bar, a missing or non-number field, an
 * overflowing number, a number longer than cJSON reads, a surrogate escape
 * cJSON refuses, an escaped ticker, malformed JSON).
 * Then random numbers, read both ways.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transform/transform.h"
#include "check.h"
#include "tf/buf.h"

static const struct page_parser *polygon;

/* Both readings of text; returns 1 when the fast one took the page. */
static int both(const char *text, struct page *fast, struct page *full)
{
    char err[256] = "";
    cJSON *root = cJSON_Parse(text);
    int took;

    memset(fast, 0, sizeof(*fast));
    memset(full, 0, sizeof(*full));
    took = polygon->fast("TKR", text, strlen(text), fast);
    if (root)
        CHECK(polygon->parse("TKR", root, full, err, sizeof(err)) == TF_OK, "full parse: %s", err);
    cJSON_Delete(root);
    return took;
}

static int same_bits(double a, double b)
{
    return memcmp(&a, &b, sizeof(a)) == 0;
}

/* The fast reading equals the full one, field by field, bit for bit. */
static void check_same(const char *what, const struct page *a, const struct page *b)
{
    CHECK(a->n == b->n, "%s: %zu bars, full parse %zu", what, a->n, b->n);
    CHECK(strcmp(a->ticker, b->ticker) == 0, "%s: ticker %s, full parse %s", what, a->ticker,
          b->ticker);
    CHECK_EQ_INT(a->day_ny, b->day_ny);
    for (size_t i = 0; i < a->n && i < b->n; i++) {
        const struct bar *x = &a->bars[i], *y = &b->bars[i];
        int ok = x->t == y->t && x->local == y->local && same_bits(x->o, y->o) &&
                 same_bits(x->h, y->h) && same_bits(x->l, y->l) && same_bits(x->c, y->c) &&
                 same_bits(x->v, y->v) && x->has_v == y->has_v && x->has_vw == y->has_vw &&
                 (!x->has_vw || same_bits(x->vw, y->vw)) && x->has_n == y->has_n && x->n == y->n &&
                 x->has_t == y->has_t && x->item == y->item && !x->rule && !y->rule && !x->raw;

        CHECK(ok, "%s: bar %zu differs (o %.17g/%.17g v %.17g/%.17g n %lld/%lld)", what, i, x->o,
              y->o, x->v, y->v, x->n, y->n);
    }
}

static void plain(const char *what, const char *text)
{
    struct page a, b;

    CHECK(both(text, &a, &b) == 1, "%s: the fast path did not take a plain page", what);
    check_same(what, &a, &b);
    transform_page_cleanup(&a);
    transform_page_cleanup(&b);
}

static void not_plain(const char *what, const char *text)
{
    struct page a, b;

    CHECK(both(text, &a, &b) == 0, "%s: the fast path took a page that is not plain", what);
    CHECK(a.n == 0 && a.bars == NULL, "%s: a page left to the full parse must stay empty", what);
    transform_page_cleanup(&a);
    transform_page_cleanup(&b);
}

static void test_plain_pages(void)
{
    plain("marketsim's shape",
          "{\"ticker\":\"AAPL\",\"queryCount\":2,\"resultsCount\":2,\"adjusted\":true,\"results\":["
          "{\"v\":1234,\"vw\":171.2345,\"o\":171.1,\"c\":171.29,\"h\":171.3,\"l\":171.05,"
          "\"t\":1709562600000,\"n\":17},"
          "{\"v\":99.5,\"vw\":171.3,\"o\":171.29,\"c\":171.33,\"h\":171.4,\"l\":171.2,"
          "\"t\":1709562660000,\"n\":3}],\"status\":\"OK\",\"request_id\":\"x\",\"count\":2}");
    plain("no results", "{\"ticker\":\"AAPL\",\"queryCount\":0,\"resultsCount\":0}");
    plain("empty results", "{\"ticker\":\"AAPL\",\"results\":[]}");
    plain("no ticker echoed",
          "{\"results\":[{\"t\":60000,\"o\":1,\"h\":2,\"l\":0.5,\"c\":1.5,\"v\":0}]}");
    plain("numbers strtod must read",
          "{\"results\":[{\"t\":1709562600000,\"o\":123.456789012345678,\"h\":1e23,"
          "\"l\":4.9e-324,\"c\":0.30000000000000004,\"v\":1.7976931348623157e308,"
          "\"vw\":12345678901234567890,\"n\":0}]}");
    plain("exponents and signs",
          "{\"results\":[{\"t\":1.7095626e12,\"o\":1E2,\"h\":1e+2,\"l\":-0.0,\"c\":-0,"
          "\"v\":12.5e-1,\"vw\":-3.25E-3,\"n\":7e0}]}");
    plain("members in another order, blanks, null vw and n",
          "{ \"results\" : [ { \"n\" : null , \"c\" : 2 , \"t\" : 120000 , \"v\" : 3 ,"
          " \"o\" : 1 , \"vw\" : null , \"l\" : 1 , \"h\" : 2 } ] , \"ticker\" : \"X:BTCUSD\" }");
    plain("unknown members of every kind",
          "{\"results\":[{\"otc\":true,\"t\":60000,\"o\":1,\"x\":{\"a\":[1,{\"b\":\"]}\"}]},"
          "\"h\":2,\"s\":\"a\\\"b,c}\",\"l\":1,\"c\":2,\"v\":5,\"z\":null,\"q\":[]}],"
          "\"next_url\":\"http://x/?cursor=a\\/b\"}");
    plain("vw and n missing",
          "{\"results\":[{\"t\":60000,\"o\":1,\"h\":2,\"l\":1,\"c\":2,\"v\":5}]}");
}

static void test_pages_left_to_the_full_parse(void)
{
    not_plain("a key twice",
              "{\"results\":[{\"t\":60000,\"o\":1,\"o\":3,\"h\":2,\"l\":1,\"c\":2,\"v\":5}]}");
    not_plain("an escaped key",
              "{\"results\":[{\"t\":60000,\"\\u006f\":1,\"h\":2,\"l\":1,\"c\":2,\"v\":5}]}");
    not_plain("a missing volume", "{\"results\":[{\"t\":60000,\"o\":1,\"h\":2,\"l\":1,\"c\":2}]}");
    not_plain("a null open",
              "{\"results\":[{\"t\":60000,\"o\":null,\"h\":2,\"l\":1,\"c\":2,\"v\":5}]}");
    not_plain("a string price",
              "{\"results\":[{\"t\":60000,\"o\":\"1\",\"h\":2,\"l\":1,\"c\":2,\"v\":5}]}");
    not_plain("a number past double",
              "{\"results\":[{\"t\":60000,\"o\":1e400,\"h\":2,\"l\":1,\"c\":2,\"v\":5}]}");
    not_plain("a time past the limit",
              "{\"results\":[{\"t\":1e17,\"o\":1,\"h\":2,\"l\":1,\"c\":2,\"v\":5}]}");
    not_plain("a number longer than cJSON reads",
              "{\"results\":[{\"t\":60000,\"o\":1.000000000000000000000000000000000000000000000"
              "0000000000000000001,\"h\":2,\"l\":1,\"c\":2,\"v\":5}]}");
    not_plain("an item that is not an object", "{\"results\":[[1,2,3]]}");
    not_plain("an escaped ticker", "{\"ticker\":\"A\\u0041\",\"results\":[]}");
    not_plain("an escaped top-level key",
              "{\"ticker\":\"AAPL\",\"r\\u0065sults\":[{\"t\":60000,\"o\":1,\"h\":2,\"l\":1,"
              "\"c\":2,\"v\":5}]}");
    not_plain("an escaped key before the real one",
              "{\"tick\\u0065r\":\"MSFT\",\"ticker\":\"AAPL\",\"results\":[]}");
    not_plain("a lone surrogate in a member nobody reads",
              "{\"note\":\"\\ud800\",\"results\":[{\"t\":60000,\"o\":1,\"h\":2,\"l\":1,"
              "\"c\":2,\"v\":5}]}");
    not_plain("a number longer than cJSON reads, in a member nobody reads",
              "{\"count\":1000000000000000000000000000000000000000000000000000000000000000001,"
              "\"results\":[{\"t\":60000,\"o\":1,\"h\":2,\"l\":1,\"c\":2,\"v\":5}]}");
    not_plain("malformed", "{\"results\":[{\"t\":60000,\"o\":1,}]}");
    not_plain("truncated", "{\"results\":[{\"t\":60000,\"o\":1");
}

/* Random numbers in every form JSON allows, read both ways. */
static void test_random_numbers(void)
{
    unsigned long long s = 0x2545f4914f6cdd1dULL;
    struct tf_buf text;
    int mismatched = 0;

    tf_buf_init(&text, 1u << 20);
    for (int round = 0; round < 200; round++) {
        struct page a, b;

        tf_buf_reset(&text);
        CHECK(tf_buf_puts(&text, "{\"results\":[") == TF_OK, "buffer");
        for (int i = 0; i < 50; i++) {
            char num[6][48];
            for (int k = 0; k < 6; k++) {
                int digits, frac, exp;
                s = s * 6364136223846793005ULL + 1442695040888963407ULL;
                digits = 1 + (int)(s >> 59);      /* 1..32 */
                frac = (int)((s >> 40) % 20);     /* 0..19 */
                exp = (int)((s >> 20) % 80) - 40; /* -40..39 */
                snprintf(num[k], sizeof(num[k]), "%llu", (s >> 3) % 1000000000000000000ULL);
                num[k][digits < (int)strlen(num[k]) ? digits : (int)strlen(num[k])] = '\0';
                if (frac > 0 && (size_t)frac < strlen(num[k]) && num[k][0] != '0') {
                    size_t len = strlen(num[k]);
                    memmove(num[k] + len - (size_t)frac + 1, num[k] + len - (size_t)frac,
                            (size_t)frac + 1);
                    num[k][len - (size_t)frac] = '.';
                }
                if ((s >> 7) & 1)
                    snprintf(num[k] + strlen(num[k]), sizeof(num[k]) - strlen(num[k]), "e%d", exp);
            }
            CHECK(tf_buf_printf(&text,
                                "%s{\"t\":%d,\"o\":%s,\"h\":%s,\"l\":%s,\"c\":%s,\"v\":%s,"
                                "\"vw\":%s}",
                                i ? "," : "", 60000 * (i + 1), num[0], num[1], num[2], num[3],
                                num[4], num[5]) == TF_OK,
                  "buffer");
        }
        CHECK(tf_buf_puts(&text, "]}") == TF_OK, "buffer");
        if (both(text.data, &a, &b) == 1) {
            for (size_t i = 0; i < a.n && i < b.n; i++) {
                const struct bar *x = &a.bars[i], *y = &b.bars[i];
                mismatched +=
                    !(same_bits(x->o, y->o) && same_bits(x->h, y->h) && same_bits(x->l, y->l) &&
                      same_bits(x->c, y->c) && same_bits(x->v, y->v) && same_bits(x->vw, y->vw));
            }
            CHECK_EQ_INT(a.n, b.n);
        } else {
            CHECK(0, "a page of plain numbers was not taken: %.200s", text.data);
        }
        transform_page_cleanup(&a);
        transform_page_cleanup(&b);
    }
    CHECK_EQ_INT(mismatched, 0);
    tf_buf_cleanup(&text);
}

int main(void)
{
    polygon = transform_parser("polygon");
    CHECK(polygon && polygon->fast, "the Polygon parser has a fast path");
    if (!polygon || !polygon->fast)
        return check_summary();
    test_plain_pages();
    test_pages_left_to_the_full_parse();
    test_random_numbers();
    return check_summary();
}
