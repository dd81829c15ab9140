/*
 * tf/jscan.h - a validating JSON scanner that builds nothing.
 *
 * It checks that a text is exactly one well-formed JSON value (RFC 8259)
 * and reports the members of a top-level object: each key, and each value
 * as a span of the text, or for arrays the number of elements. No memory
 * is allocated and no number is converted, so a large page can be checked
 * and summarised at a small fraction of a full parse.
 */
#ifndef TF_JSCAN_H
#define TF_JSCAN_H

#include <stddef.h>

enum tf_jtype {
    TF_J_STRING,
    TF_J_NUMBER,
    TF_J_TRUE,
    TF_J_FALSE,
    TF_J_NULL,
    TF_J_ARRAY,
    TF_J_OBJECT
};

struct tf_jmember {
    const char *key; /* raw (still escaped), not NUL-terminated */
    size_t keylen;
    enum tf_jtype type;
    const char *val; /* the value's text; for strings, inside the quotes */
    size_t vallen;
    long count; /* elements of an array, members of an object */
};

/**
 * Scans text[0..len). Returns the number of top-level members found (those
 * past max are checked but not reported), or -1 when the text is not one
 * well-formed JSON object (truncated, malformed, or another kind of value).
 * Nesting deeper than 64 levels counts as malformed.
 */
int tf_jscan_object(const char *text, size_t len, struct tf_jmember *out, int max);

/** The first member named key, or NULL. */
const struct tf_jmember *tf_jscan_find(const struct tf_jmember *m, int n, const char *key);

/**
 * Copies a string member's value, unescaped, to out (NUL-terminated; \u
 * escapes outside ASCII become '?'). Returns its length, or -1 when the
 * member is not a string or does not fit.
 */
int tf_jscan_string(const struct tf_jmember *m, char *out, size_t outlen);

#endif
