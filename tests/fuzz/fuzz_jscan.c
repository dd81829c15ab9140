/*
 * fuzz_jscan.c - libFuzzer: the JSON scanner the fast page readers use.
 * Every member it reports lies inside the text; every string member
 * unescapes without a fault.
 */
#include <stdint.h>

#include "tf/jscan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data, *end = text + size;
    struct tf_jmember m[32];
    int n = tf_jscan_object(text, size, m, 32);

    for (int i = 0; i < n && i < 32; i++) {
        char s[256];

        if (m[i].key < text || m[i].key + m[i].keylen > end || m[i].val < text ||
            m[i].val + m[i].vallen > end)
            __builtin_trap(); /* a member outside the text */
        (void)tf_jscan_string(&m[i], s, sizeof(s));
    }
    if (n > 0)
        (void)tf_jscan_find(m, n < 32 ? n : 32, "results");
    return 0;
}
