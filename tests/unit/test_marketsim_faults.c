/*
 * test_marketsim_faults.c - marketsim's test controls without I/O: parsing
 * fault rules, which request draws which fault and how counts run down,
 * the rendered rule set, request statistics, and both under many threads.
 * faults.c is compiled in here (the Makefile links only gen.c into unit
 * tests).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "marketsim/faults.c"
#include "../harness/check.h"

#define THREADS      8
#define PER_THREAD   2000
#define LIMITED_HITS 1000

static struct marketsim_fault_rule rules[MARKETSIM_MAX_RULES];

/* Parses a rule set given as text. */
static enum tf_rc parse(const char *json, size_t *n, char *err, size_t errlen)
{
    return marketsim_faults_parse(json, strlen(json), rules, n, err, errlen);
}

static void test_parse(void)
{
    char err[256] = "";
    size_t n = 0;
    static const char *const bad[] = {
        "",
        "[]",
        "{\"rules\":{}}",
        "{\"rules\":[{\"ticker\":\"AAPL\"}]}",
        "{\"rules\":[{\"fault\":\"boom\"}]}",
        "{\"rules\":[{\"fault\":404}]}",
        "{\"rules\":[{\"fault\":\"429\",\"provider\":\"alpaca\"}]}",
        "{\"rules\":[{\"fault\":\"429\",\"times\":-2}]}",
        "{\"rules\":[{\"fault\":\"429\",\"times\":1.5}]}",
        "{\"rules\":[{\"fault\":\"429\",\"tiems\":2}]}",
        "{\"rules\":[{\"fault\":\"slow\",\"delay_ms\":600000}]}",
        "{\"rules\":[{\"fault\":\"late\",\"late_minutes\":0}]}",
        "{\"rules\":[{\"fault\":\"429\",\"ticker\":\"\"}]}",
        "{\"rules\":[]} trailing",
    };
    size_t refused = 0;

    /* Defaults, and a numeric fault. */
    CHECK_EQ_INT(parse("{\"rules\":[{\"fault\":\"429\"},{\"provider\":\"twelvedata\","
                       "\"ticker\":\"EUR/USD\",\"fault\":503,\"times\":-1,\"retry_after\":9},"
                       "{\"fault\":\"slow\",\"delay_ms\":10},{\"fault\":\"late\","
                       "\"late_minutes\":15,\"times\":0}]}",
                       &n, err, sizeof(err)),
                 TF_OK);
    CHECK_EQ_INT(n, 4);
    CHECK(strcmp(rules[0].provider, "*") == 0 && strcmp(rules[0].ticker, "*") == 0 &&
              rules[0].fault.kind == MARKETSIM_FAULT_429 && rules[0].times == 1 &&
              rules[0].remaining == 1 && rules[0].fault.retry_after == 1 &&
              !rules[0].fault.retry_after_set && rules[0].fault.delay_ms == 2000 &&
              rules[0].fault.late_minutes == 5,
          "rule 0 defaults");
    CHECK(strcmp(rules[1].provider, "twelvedata") == 0 && strcmp(rules[1].canon, "C:EURUSD") == 0 &&
              rules[1].fault.kind == MARKETSIM_FAULT_503 && rules[1].times == -1 &&
              rules[1].fault.retry_after == 9 && rules[1].fault.retry_after_set,
          "rule 1 settings");
    CHECK(rules[2].fault.kind == MARKETSIM_FAULT_SLOW && rules[2].fault.delay_ms == 10,
          "rule 2 settings");
    CHECK(rules[3].fault.kind == MARKETSIM_FAULT_LATE && rules[3].fault.late_minutes == 15 &&
              rules[3].times == 0,
          "rule 3 settings");
    CHECK_EQ_INT(parse("{\"rules\":[]}", &n, err, sizeof(err)), TF_OK);
    CHECK_EQ_INT(n, 0);

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (parse(bad[i], &n, err, sizeof(err)) == TF_ERR_INVALID && err[0] && n == 0)
            refused++;
        else
            CHECK(0, "accepted or no reason: %s", bad[i]);
    }
    CHECK_EQ_INT(refused, sizeof(bad) / sizeof(bad[0]));
    CHECK_EQ_INT(parse("{\"rules\":[{\"fault\":\"429\",\"tiems\":2}]}", &n, err, sizeof(err)),
                 TF_ERR_INVALID);
    CHECK(strstr(err, "tiems") != NULL, "the reason names the bad key: %s", err);
}

static void test_take(void)
{
    struct marketsim_ctl *ctl = marketsim_ctl_new();
    struct marketsim_fault f;
    char err[256];
    size_t n = 0;
    int kinds[8];

    CHECK(ctl != NULL, "marketsim_ctl_new");
    CHECK_EQ_INT(marketsim_faults_take(ctl, "polygon", "AAPL", &f), 0);
    CHECK_EQ_INT(f.kind, MARKETSIM_FAULT_NONE);

    /* First matching rule with counts left wins; counts run down. */
    CHECK_EQ_INT(parse("{\"rules\":[{\"provider\":\"polygon\",\"ticker\":\"AAPL\","
                       "\"fault\":\"429\",\"times\":2},{\"ticker\":\"EUR/USD\","
                       "\"fault\":\"truncate\",\"times\":-1},{\"fault\":\"500\",\"times\":1}]}",
                       &n, err, sizeof(err)),
                 TF_OK);
    marketsim_faults_replace(ctl, rules, n);
    for (int i = 0; i < 4; i++) {
        marketsim_faults_take(ctl, "polygon", "AAPL", &f);
        kinds[i] = (int)f.kind;
    }
    CHECK(kinds[0] == MARKETSIM_FAULT_429 && kinds[1] == MARKETSIM_FAULT_429 &&
              kinds[2] == MARKETSIM_FAULT_500 && kinds[3] == MARKETSIM_FAULT_NONE,
          "AAPL drew %d %d %d %d", kinds[0], kinds[1], kinds[2], kinds[3]);

    /* Provider filter, and one instrument under both spellings, forever. */
    CHECK_EQ_INT(parse("{\"rules\":[{\"provider\":\"polygon\",\"ticker\":\"AAPL\","
                       "\"fault\":\"429\",\"times\":5},{\"ticker\":\"EUR/USD\","
                       "\"fault\":\"truncate\",\"times\":-1}]}",
                       &n, err, sizeof(err)),
                 TF_OK);
    marketsim_faults_replace(ctl, rules, n);
    marketsim_faults_take(ctl, "twelvedata", "AAPL", &f);
    CHECK_EQ_INT(f.kind, MARKETSIM_FAULT_NONE);
    for (int i = 0; i < 3; i++) {
        marketsim_faults_take(ctl, i % 2 ? "polygon" : "twelvedata", i % 2 ? "C:EURUSD" : "EUR/USD",
                              &f);
        kinds[i] = (int)f.kind;
    }
    CHECK(kinds[0] == MARKETSIM_FAULT_TRUNCATE && kinds[1] == MARKETSIM_FAULT_TRUNCATE &&
              kinds[2] == MARKETSIM_FAULT_TRUNCATE,
          "EUR/USD and C:EURUSD must both draw the forever rule");
    marketsim_faults_take(ctl, "polygon", "X:BTCUSD", &f);
    CHECK_EQ_INT(f.kind, MARKETSIM_FAULT_NONE);

    /* Clearing leaves no rule. */
    marketsim_faults_replace(ctl, NULL, 0);
    CHECK_EQ_INT(marketsim_faults_take(ctl, "polygon", "C:EURUSD", &f), 0);
    marketsim_ctl_free(ctl);
    marketsim_ctl_free(NULL);
}

static void test_render(void)
{
    struct marketsim_ctl *ctl = marketsim_ctl_new();
    struct marketsim_fault f;
    struct tf_buf buf;
    char err[256];
    size_t n = 0;
    cJSON *root = NULL;
    const cJSON *r;

    CHECK_EQ_INT(parse("{\"rules\":[{\"provider\":\"twelvedata\",\"ticker\":\"AAPL\","
                       "\"fault\":\"slow\",\"times\":3,\"delay_ms\":250}]}",
                       &n, err, sizeof(err)),
                 TF_OK);
    marketsim_faults_replace(ctl, rules, n);
    marketsim_faults_take(ctl, "twelvedata", "AAPL", &f);
    CHECK_EQ_INT(f.delay_ms, 250);
    tf_buf_init(&buf, 1 << 16);
    CHECK_EQ_INT(marketsim_faults_render(ctl, &buf), TF_OK);
    CHECK_STR(buf.data, "{\"rules\":[{\"provider\":\"twelvedata\",\"ticker\":\"AAPL\","
                        "\"fault\":\"slow\",\"times\":3,\"remaining\":2,\"hits\":1,"
                        "\"retry_after\":1,\"delay_ms\":250,\"late_minutes\":5}]}");
    tf_buf_cleanup(&buf);

    /* Statistics: by provider, by ticker as requested, faults served. */
    marketsim_stats_count(ctl, "polygon", "AAPL");
    marketsim_stats_count(ctl, "polygon", "AAPL");
    marketsim_stats_count(ctl, "twelvedata", "EUR/USD");
    marketsim_stats_count(ctl, "twelvedata", "");
    tf_buf_init(&buf, 1 << 16);
    CHECK_EQ_INT(marketsim_stats_render(ctl, &buf), TF_OK);
    CHECK_STR(buf.data, "{\"requests\":4,\"by_provider\":{\"polygon\":2,\"twelvedata\":2},"
                        "\"by_ticker\":{\"AAPL\":2,\"EUR/USD\":1},\"faults_served\":1}");
    tf_buf_cleanup(&buf);
    marketsim_stats_reset(ctl);
    tf_buf_init(&buf, 1 << 16);
    CHECK_EQ_INT(marketsim_stats_render(ctl, &buf), TF_OK);
    root = cJSON_Parse(buf.data);
    r = cJSON_GetObjectItemCaseSensitive(root, "requests");
    CHECK(cJSON_IsNumber(r) && r->valuedouble == 0 &&
              cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "by_ticker")) == 0,
          "reset stats: %s", buf.data);
    cJSON_Delete(root);
    tf_buf_cleanup(&buf);
    marketsim_ctl_free(ctl);
}

struct worker {
    struct marketsim_ctl *ctl;
    int id;
    long drawn; /* faults this thread drew */
};

static void *work(void *arg)
{
    struct worker *w = arg;
    struct marketsim_fault f;
    char ticker[16];

    for (int i = 0; i < PER_THREAD; i++) {
        snprintf(ticker, sizeof(ticker), "T%d", (w->id * PER_THREAD + i) % 700);
        marketsim_stats_count(w->ctl, i % 2 ? "polygon" : "twelvedata", ticker);
        w->drawn += marketsim_faults_take(w->ctl, "polygon", ticker, &f);
    }
    return NULL;
}

/* Many threads draw a limited rule and count requests: nothing lost, nothing doubled. */
static void test_threads(void)
{
    struct marketsim_ctl *ctl = marketsim_ctl_new();
    struct worker workers[THREADS];
    pthread_t tids[THREADS];
    struct tf_buf buf;
    char err[256];
    char want[64];
    size_t n = 0;
    long drawn = 0;
    cJSON *root = NULL;
    const cJSON *by_ticker, *item;
    double sum = 0;

    snprintf(want, sizeof(want), "{\"rules\":[{\"fault\":\"500\",\"times\":%d}]}", LIMITED_HITS);
    CHECK_EQ_INT(parse(want, &n, err, sizeof(err)), TF_OK);
    marketsim_faults_replace(ctl, rules, n);
    for (int i = 0; i < THREADS; i++) {
        workers[i].ctl = ctl;
        workers[i].id = i;
        workers[i].drawn = 0;
        pthread_create(&tids[i], NULL, work, &workers[i]);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(tids[i], NULL);
        drawn += workers[i].drawn;
    }
    CHECK_EQ_INT(drawn, LIMITED_HITS);

    tf_buf_init(&buf, 1 << 20);
    CHECK_EQ_INT(marketsim_stats_render(ctl, &buf), TF_OK);
    root = cJSON_Parse(buf.data);
    by_ticker = cJSON_GetObjectItemCaseSensitive(root, "by_ticker");
    cJSON_ArrayForEach(item, by_ticker) sum += item->valuedouble;
    CHECK(cJSON_GetArraySize(by_ticker) == 700 && sum == THREADS * PER_THREAD,
          "%d tickers counting %.0f requests", cJSON_GetArraySize(by_ticker), sum);
    item = cJSON_GetObjectItemCaseSensitive(root, "faults_served");
    CHECK(cJSON_IsNumber(item) && item->valuedouble == LIMITED_HITS, "faults_served");
    cJSON_Delete(root);
    tf_buf_cleanup(&buf);
    marketsim_ctl_free(ctl);
}

int main(void)
{
    test_parse();
    test_take();
    test_render();
    test_threads();
    return check_summary();
}
