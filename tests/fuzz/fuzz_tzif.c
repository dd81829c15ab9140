/*
 * fuzz_tzif.c - libFuzzer: tf_tz_parse on any bytes as a TZif file. A zone
 * it accepts answers offsets and local-to-UTC conversions without a fault.
 */
#include <stdint.h>

#include "tf/tz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int64_t probes[] = {INT64_MIN / 4, -2208988800LL, 0, 1710054000LL, 1730613600LL,
                                     4102444800LL,  INT64_MAX / 4};
    struct tf_tz *tz = NULL;

    if (tf_tz_parse(data, size, &tz) != TF_OK)
        return 0;
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        int64_t utc;
        int off = tf_tz_offset(tz, probes[i]);

        /* RFC 8536: a UT offset is within [-89999, 93599] seconds. */
        if (off < -89999 || off > 93599)
            __builtin_trap();
        if (tf_tz_local_to_utc(tz, probes[i], &utc) == TF_OK &&
            (utc - probes[i] < -2 * 86400 || utc - probes[i] > 2 * 86400))
            __builtin_trap(); /* a local time placed days away */
    }
    tf_tz_free(tz);
    return 0;
}
