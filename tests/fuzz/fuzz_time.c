/*
 * fuzz_time.c - libFuzzer: tf_time_parse on any text. A time it accepts
 * formats and parses back to the same second.
 */
#include <stdint.h>
#include <string.h>

#include "tf/time.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char s[96], out[64];
    int64_t t, back;

    if (size >= sizeof(s))
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    if (tf_time_parse(s, &t) != TF_OK)
        return 0;
    tf_time_format(t, out, sizeof(out));
    if (tf_time_parse(out, &back) != TF_OK || back != t)
        __builtin_trap(); /* what it printed does not read back */
    return 0;
}
