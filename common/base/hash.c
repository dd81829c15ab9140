/*
 * hash.c - FNV-1a (Fowler, Noll, Vo), 32 and 64 bits.
 */
#include "tf/hash.h"

#include <string.h>

uint64_t tf_fnv1a64(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;

    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

uint64_t tf_fnv1a64_str(uint64_t h, const char *s)
{
    return s ? tf_fnv1a64(h, s, strlen(s)) : h;
}

uint32_t tf_fnv1a32(uint32_t h, const void *data, size_t n)
{
    const unsigned char *p = data;

    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}
