/*
 * fuzz_pages.c - libFuzzer: transform's readers of provider answers. The
 * first byte picks Polygon or Twelve Data; the rest is a page as a vendor
 * might send it. The full parse (on cJSON's tree) must not fault, and when
 * the fast reader (straight from the text) also takes the page, both must
 * read the same bars.
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <string.h>

#include "transform/transform.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same_bar(const struct bar *a, const struct bar *b)
{
    return a->t == b->t && a->has_t == b->has_t && a->has_v == b->has_v && a->has_vw == b->has_vw &&
           a->has_n == b->has_n && a->n == b->n && memcmp(&a->o, &b->o, sizeof(double)) == 0 &&
           memcmp(&a->h, &b->h, sizeof(double)) == 0 && memcmp(&a->l, &b->l, sizeof(double)) == 0 &&
           memcmp(&a->c, &b->c, sizeof(double)) == 0 &&
           (!a->has_v || memcmp(&a->v, &b->v, sizeof(double)) == 0) &&
           (!a->has_vw || memcmp(&a->vw, &b->vw, sizeof(double)) == 0) &&
           ((a->rule == NULL) == (b->rule == NULL)) && (!a->rule || strcmp(a->rule, b->rule) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct page_parser *p;
    const char *text = (const char *)data + 1;
    struct page full, fast;
    cJSON *root;
    char err[256];
    int full_ok, fast_ok = 0;

    if (size < 1)
        return 0;
    p = transform_parser(data[0] & 1 ? "twelvedata" : "polygon");
    if (!p)
        return 0;
    memset(&full, 0, sizeof(full));
    memset(&fast, 0, sizeof(fast));
    root = cJSON_ParseWithLength(text, size - 1);
    full_ok = root && p->parse("AAPL", root, &full, err, sizeof(err)) == TF_OK;
    if (p->fast)
        fast_ok = p->fast("AAPL", text, size - 1, &fast);
    if (full_ok && fast_ok) {
        if (full.n != fast.n)
            __builtin_trap(); /* the two readers disagree on the count */
        for (size_t i = 0; i < full.n; i++)
            if (!same_bar(&full.bars[i], &fast.bars[i]))
                __builtin_trap(); /* ... or on a bar */
    }
    transform_page_cleanup(&full);
    transform_page_cleanup(&fast);
    cJSON_Delete(root);
    return 0;
}
