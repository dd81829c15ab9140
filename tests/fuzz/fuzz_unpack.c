/*
 * fuzz_unpack.c - libFuzzer: the bronze decoders. The first byte picks
 * gzip, zstd or tf_unpack by encoding name; the rest is the object. Any
 * input is also compressed by tf_gzip and must decompress to itself.
 */
#include <stdint.h>
#include <string.h>

#include "tf/buf.h"
#include "tf/gz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const encodings[] = {"gzip", "zstd", "identity", "br"};
    struct tf_buf out, packed;
    enum tf_rc rc;

    if (size < 1)
        return 0;
    tf_buf_init(&out, (size_t)64 << 20);
    switch (data[0] % 3) {
    case 0:
        rc = tf_gunzip(data + 1, size - 1, &out);
        break;
    case 1:
        rc = tf_zstd_decompress(data + 1, size - 1, &out);
        break;
    default:
        rc = tf_unpack(encodings[(data[0] / 3) % 4], data + 1, size - 1, &out);
        break;
    }
    (void)rc;
    tf_buf_cleanup(&out);

    tf_buf_init(&packed, (size_t)64 << 20);
    tf_buf_init(&out, (size_t)64 << 20);
    if (tf_gzip(data, size, &packed) == TF_OK &&
        (tf_gunzip(packed.data, packed.len, &out) != TF_OK || out.len != size ||
         (size && memcmp(out.data, data, size) != 0)))
        __builtin_trap(); /* gzip did not round-trip */
    tf_buf_cleanup(&packed);
    tf_buf_cleanup(&out);
    return 0;
}
