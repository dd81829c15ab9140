/*
 * test_extract_judge.c - how extract classifies a provider's answer, from
 * the status and the body's bytes as extract_get() has them (no network):
 * data, empty pages, what is worth asking again (429, 5xx, a body cut
 * short) and what ends the ticker (auth errors, vendor error bodies sent
 * with 200, answers of the wrong shape), with the reason the run records.
 * Polygon's answers are scanned (top-level members only, lists as their
 * lengths); Twelve Data's are parsed.
 */
#include <stdio.h>
#include <string.h>

#include "extract/extract.h"
#include "check.h"
#include "tf/json.h"

static const char *verdict_name(enum extract_verdict v)
{
    switch (v) {
    case EXTRACT_PAGE_OK:
        return "ok";
    case EXTRACT_PAGE_RETRY:
        return "retry";
    case EXTRACT_PAGE_FAIL:
        return "fail";
    }
    return "?";
}

struct judge_case {
    long status;
    const char *body;
    enum extract_verdict want;
    long long bars;  /* for ok */
    const char *why; /* the reason recorded ("" for a plain ok) */
};

static void run_cases(const struct extract_provider *p, const struct judge_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct judge_case *c = &cases[i];
        cJSON *root = NULL;
        long long bars = -1;
        char why[512] = "";
        enum extract_verdict v =
            extract_judge(p, c->status, c->body, strlen(c->body), &root, &bars, why, sizeof(why));

        CHECK(v == c->want, "%s %zu (HTTP %ld %.60s): %s, want %s", p->name, i, c->status, c->body,
              verdict_name(v), verdict_name(c->want));
        if (c->want == EXTRACT_PAGE_OK && v == EXTRACT_PAGE_OK)
            CHECK(bars == c->bars, "%s %zu: %lld bars, want %lld", p->name, i, bars, c->bars);
        CHECK(strcmp(why, c->why) == 0, "%s %zu: why \"%s\", want \"%s\"", p->name, i, why, c->why);
        cJSON_Delete(root);
    }
}

static void test_polygon(void)
{
    static const struct judge_case cases[] = {
        /* Data. */
        {200,
         "{\"ticker\":\"AAPL\",\"queryCount\":2,\"resultsCount\":2,\"adjusted\":true,"
         "\"results\":[{\"v\":1,\"o\":1,\"c\":1,\"h\":1,\"l\":1,\"t\":60000},"
         "{\"v\":1,\"o\":1,\"c\":1,\"h\":1,\"l\":1,\"t\":120000}],\"status\":\"OK\","
         "\"request_id\":\"r1\",\"count\":2}",
         EXTRACT_PAGE_OK, 2, ""},
        {200, "{\"status\":\"DELAYED\",\"results\":[{\"t\":1},{\"t\":2},{\"t\":3}]}",
         EXTRACT_PAGE_OK, 3, ""},
        /* No bars: no results, null results, an empty list. */
        {200, "{\"ticker\":\"AAPL\",\"queryCount\":0,\"resultsCount\":0,\"status\":\"OK\"}",
         EXTRACT_PAGE_OK, 0, ""},
        {200, "{\"status\":\"OK\",\"results\":null}", EXTRACT_PAGE_OK, 0, ""},
        {200, "{\"status\":\"OK\",\"results\":[]}", EXTRACT_PAGE_OK, 0, ""},
        /* The scan sees an object's member count as it sees a list's length. */
        {200, "{\"status\":\"OK\",\"results\":{\"a\":1}}", EXTRACT_PAGE_OK, 1, ""},
        /* Errors in a 200: the status says so. */
        {200, "{\"status\":\"ERROR\",\"request_id\":\"r\",\"error\":\"Unknown API Key\"}",
         EXTRACT_PAGE_FAIL, 0, "status ERROR: Unknown API Key"},
        {200, "{\"status\":\"NOT_AUTHORIZED\",\"message\":\"Your plan doesn't include this.\"}",
         EXTRACT_PAGE_FAIL, 0, "status NOT_AUTHORIZED: Your plan doesn't include this."},
        {200, "{\"status\":\"ok\",\"results\":[]}", EXTRACT_PAGE_FAIL, 0,
         "status ok: no error message"}, /* case matters */
        {200, "{\"results\":[]}", EXTRACT_PAGE_FAIL, 0, "status (none): no error message"},
        {200, "{\"status\":\"OK\",\"results\":\"none\"}", EXTRACT_PAGE_FAIL, 0,
         "results is not a list"},
        {200, "{\"status\":\"OK\",\"results\":7}", EXTRACT_PAGE_OK, 7, ""},
        /* Auth and other client errors end the ticker. */
        {401, "{\"status\":\"ERROR\",\"request_id\":\"r\",\"error\":\"Unknown API Key\"}",
         EXTRACT_PAGE_FAIL, 0, "HTTP 401: Unknown API Key"},
        {403,
         "{\"status\":\"NOT_AUTHORIZED\",\"request_id\":\"r\","
         "\"message\":\"You are not entitled to this data.\"}",
         EXTRACT_PAGE_FAIL, 0, "HTTP 403: You are not entitled to this data."},
        {404, "{\"status\":\"NOT_FOUND\"}", EXTRACT_PAGE_FAIL, 0, "HTTP 404: no error message"},
        {400, "{\"error\":\"a \\\"quoted\\\" \\u00e9rror\",\"message\":\"second\"}",
         EXTRACT_PAGE_FAIL, 0, "HTTP 400: a \"quoted\" ?rror"}, /* the scanner's \u: ASCII only */
        {400, "{\"error\":\"d\xc3\xa9j\xc3\xa0 vu\"}", EXTRACT_PAGE_FAIL, 0,
         "HTTP 400: d\xc3\xa9j\xc3\xa0 vu"},
        {404, "<html>Not Found</html>", EXTRACT_PAGE_FAIL, 0,
         "HTTP 404 with a body that is not JSON (cut short?)"},
        {499, "{\"status\":\"OK\",\"results\":[]}", EXTRACT_PAGE_FAIL, 0,
         "HTTP 499: no error message"},
        /* Throttled or server trouble: asked again, whatever the body. */
        {429,
         "{\"status\":\"ERROR\",\"error\":\"You've exceeded the maximum requests per minute\"}",
         EXTRACT_PAGE_RETRY, 0, "HTTP 429: You've exceeded the maximum requests per minute"},
        {429, "Too Many Requests", EXTRACT_PAGE_RETRY, 0, "HTTP 429"},
        {500, "{}", EXTRACT_PAGE_RETRY, 0, "HTTP 500: no error message"},
        {502, "<html>Bad Gateway</html>", EXTRACT_PAGE_RETRY, 0, "HTTP 502"},
        {503, "{\"status\":\"OK\",\"results\":[]}", EXTRACT_PAGE_RETRY, 0,
         "HTTP 503: no error message"},
        /* A 200 whose body is not a whole JSON object: cut short, asked again. */
        {200, "{\"status\":\"OK\",\"results\":[{\"t\":1", EXTRACT_PAGE_RETRY, 0,
         "HTTP 200 with a body that is not JSON (cut short?)"},
        {200, "", EXTRACT_PAGE_RETRY, 0, "HTTP 200 with a body that is not JSON (cut short?)"},
        {200, "[{\"status\":\"OK\"}]", EXTRACT_PAGE_RETRY, 0,
         "HTTP 200 with a body that is not JSON (cut short?)"},
        {200, "{\"status\":\"OK\",\"results\":[]} trailing", EXTRACT_PAGE_RETRY, 0,
         "HTTP 200 with a body that is not JSON (cut short?)"},
    };

    CHECK(extract_polygon.shallow == 1, "Polygon's answers are scanned");
    run_cases(&extract_polygon, cases, TF_ARRAY_LEN(cases));

    /* The scanned root carries next_url unescaped, as fetch_ticker reads it. */
    {
        static const char body[] = "{\"status\":\"OK\",\"results\":[{\"t\":1}],"
                                   "\"next_url\":\"https:\\/\\/api.polygon.io\\/v2\\/aggs"
                                   "\\/cursor\\/abc?x=1\",\"count\":1}";
        cJSON *root = NULL;
        long long bars = 0;
        char why[128] = "";

        CHECK(extract_judge(&extract_polygon, 200, body, strlen(body), &root, &bars, why,
                            sizeof(why)) == EXTRACT_PAGE_OK,
              "a page with next_url: %s", why);
        CHECK_STR(tf_json_str(root, "next_url"), "https://api.polygon.io/v2/aggs/cursor/abc?x=1");
        CHECK_EQ_INT(bars, 1);
        CHECK_EQ_INT(tf_json_long(root, "count", -1), 1);
        cJSON_Delete(root);
    }
}

#define NO_DATA_MSG                                                                                \
    "No data is available on the specified dates. Try setting different start/end dates."

static void test_twelvedata(void)
{
    static const struct judge_case cases[] = {
        {200,
         "{\"meta\":{\"symbol\":\"AAPL\",\"interval\":\"1min\",\"exchange_timezone\":"
         "\"America/New_York\"},\"values\":[{\"datetime\":\"2024-03-08 09:30:00\"},"
         "{\"datetime\":\"2024-03-08 09:31:00\"},{\"datetime\":\"2024-03-08 09:32:00\"}],"
         "\"status\":\"ok\"}",
         EXTRACT_PAGE_OK, 3, ""},
        {200, "{\"meta\":{},\"values\":[],\"status\":\"ok\"}", EXTRACT_PAGE_OK, 0, ""},
        /* A body with values is data, whatever code says. */
        {200, "{\"code\":200,\"values\":[{}],\"status\":\"ok\"}", EXTRACT_PAGE_OK, 1, ""},
        /* The vendor's "no data" is an empty page, not a failure (the reason is kept). */
        {200, "{\"code\":400,\"message\":\"" NO_DATA_MSG "\",\"status\":\"error\"}",
         EXTRACT_PAGE_OK, 0, "code 400: " NO_DATA_MSG},
        {400, "{\"code\":400,\"message\":\"" NO_DATA_MSG "\",\"status\":\"error\"}",
         EXTRACT_PAGE_OK, 0, "HTTP 400, code 400: " NO_DATA_MSG},
        /* Not the whole sentence: another 400. */
        {200, "{\"code\":400,\"message\":\"No data is available\",\"status\":\"error\"}",
         EXTRACT_PAGE_FAIL, 0, "code 400: No data is available"},
        /* Errors sent with 200: the body decides. */
        {200,
         "{\"code\":401,\"message\":\"**apikey** parameter is incorrect or not specified.\","
         "\"status\":\"error\"}",
         EXTRACT_PAGE_FAIL, 0, "code 401: **apikey** parameter is incorrect or not specified."},
        {200, "{\"code\":403,\"message\":\"/time_series is available on the Pro plan\"}",
         EXTRACT_PAGE_FAIL, 0, "code 403: /time_series is available on the Pro plan"},
        {200, "{\"code\":400,\"message\":\"**symbol** not found: ZZZZ.\",\"status\":\"error\"}",
         EXTRACT_PAGE_FAIL, 0, "code 400: **symbol** not found: ZZZZ."},
        {200, "{\"code\":404,\"status\":\"error\"}", EXTRACT_PAGE_FAIL, 0,
         "code 404: no error message"},
        {200, "{\"status\":\"error\"}", EXTRACT_PAGE_FAIL, 0, "code 0: no error message"},
        {200, "{\"code\":\"429\",\"message\":\"m\",\"status\":\"error\"}", EXTRACT_PAGE_FAIL, 0,
         "code 0: m"}, /* a code that is not a number is no code */
        {200,
         "{\"code\":429,\"message\":\"You have run out of API credits for the current "
         "minute.\",\"status\":\"error\"}",
         EXTRACT_PAGE_RETRY, 0,
         "code 429: You have run out of API credits for the current minute."},
        {200, "{\"code\":500,\"message\":\"internal\",\"status\":\"error\"}", EXTRACT_PAGE_RETRY, 0,
         "code 500: internal"},
        /* The same with an error status. */
        {401, "{\"code\":401,\"message\":\"bad key\",\"status\":\"error\"}", EXTRACT_PAGE_FAIL, 0,
         "HTTP 401, code 401: bad key"},
        {429, "{\"code\":429,\"message\":\"slow down\",\"status\":\"error\"}", EXTRACT_PAGE_RETRY,
         0, "HTTP 429, code 429: slow down"},
        {429, "{\"code\":400,\"message\":\"odd\",\"status\":\"error\"}", EXTRACT_PAGE_RETRY, 0,
         "HTTP 429, code 400: odd"},
        {503, "{\"code\":503,\"status\":\"error\"}", EXTRACT_PAGE_RETRY, 0,
         "HTTP 503, code 503: no error message"},
        /* Status errors without an error body. */
        {502, "{\"gateway\":true}", EXTRACT_PAGE_RETRY, 0, "HTTP 502"},
        {429, "{}", EXTRACT_PAGE_RETRY, 0, "HTTP 429"},
        {404, "{\"path\":\"/time_series\"}", EXTRACT_PAGE_FAIL, 0,
         "HTTP 404 with no error in the body"},
        /* Not a time_series answer. */
        {200, "{\"values\":[]}", EXTRACT_PAGE_FAIL, 0, "status (none): not a time_series answer"},
        {200, "{\"status\":\"OK\",\"values\":[]}", EXTRACT_PAGE_FAIL, 0,
         "status OK: not a time_series answer"},
        {200, "{\"status\":\"ok\",\"values\":{}}", EXTRACT_PAGE_FAIL, 0, "values is not a list"},
        {200, "{\"status\":\"ok\"}", EXTRACT_PAGE_FAIL, 0, "values is not a list"},
        /* Bodies that are not JSON: asked again when cut short or the server's trouble. */
        {200, "{\"values\":[{\"datetime\":", EXTRACT_PAGE_RETRY, 0,
         "HTTP 200 with a body that is not JSON (cut short?)"},
        {200, "", EXTRACT_PAGE_RETRY, 0, "HTTP 200 with a body that is not JSON (cut short?)"},
        {503, "Service Unavailable", EXTRACT_PAGE_RETRY, 0,
         "HTTP 503 with a body that is not JSON"},
        {429, "Too Many Requests", EXTRACT_PAGE_RETRY, 0, "HTTP 429 with a body that is not JSON"},
        {401, "Unauthorized", EXTRACT_PAGE_FAIL, 0, "HTTP 401 with a body that is not JSON"},
        {404, "<html></html>", EXTRACT_PAGE_FAIL, 0, "HTTP 404 with a body that is not JSON"},
    };

    CHECK(extract_twelvedata.shallow == 0, "Twelve Data's answers are parsed");
    run_cases(&extract_twelvedata, cases, TF_ARRAY_LEN(cases));
}

/* A long vendor message is cut to the reason's buffer, never past it. */
static void test_long_reason(void)
{
    char body[4096], why[64];
    cJSON *root = NULL;
    long long bars = 0;
    int n = snprintf(body, sizeof(body), "{\"code\":401,\"status\":\"error\",\"message\":\"");

    memset(body + n, 'x', 3000);
    snprintf(body + n + 3000, sizeof(body) - (size_t)n - 3000, "\"}");
    memset(why, '#', sizeof(why));
    CHECK(extract_judge(&extract_twelvedata, 200, body, strlen(body), &root, &bars, why,
                        sizeof(why)) == EXTRACT_PAGE_FAIL,
          "a long message fails the ticker");
    CHECK_EQ_INT(strlen(why), sizeof(why) - 1);
    CHECK(strncmp(why, "code 401: xxxx", 14) == 0, "why: %.20s", why);
    cJSON_Delete(root);
}

int main(void)
{
    test_polygon();
    test_twelvedata();
    test_long_reason();
    return check_summary();
}
