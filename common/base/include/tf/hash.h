/*
 * tf/hash.h - FNV-1a, the one non-cryptographic hash of tickflow (hash
 * tables, marketsim's stable per-name seeds and request ids). Not for
 * anything an attacker chooses to collide.
 */
#ifndef TF_HASH_H
#define TF_HASH_H

#include <stddef.h>
#include <stdint.h>

/** The 64-bit FNV-1a offset basis: the h to start a hash with. */
#define TF_FNV1A64_INIT 0xcbf29ce484222325ULL

/** The 32-bit FNV-1a offset basis. */
#define TF_FNV1A32_INIT 2166136261u

/** 64-bit FNV-1a of n bytes, continuing from h (TF_FNV1A64_INIT to start). */
uint64_t tf_fnv1a64(uint64_t h, const void *data, size_t n);

/** The same over a C string (NULL adds nothing). */
uint64_t tf_fnv1a64_str(uint64_t h, const char *s);

/** 32-bit FNV-1a of n bytes, continuing from h (TF_FNV1A32_INIT to start). */
uint32_t tf_fnv1a32(uint32_t h, const void *data, size_t n);

#endif
