/*
 * json.c - small readers for cJSON objects.
 */
#include "tf/json.h"

#include <limits.h>

const char *tf_json_str(const cJSON *obj, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, key));
}

long tf_json_num_long(const cJSON *it, long def)
{
    /* Past long's range (or NaN) the cast would be undefined: def instead. */
    if (!cJSON_IsNumber(it) || !(it->valuedouble >= (double)LONG_MIN) ||
        !(it->valuedouble < (double)LONG_MAX))
        return def;
    return (long)it->valuedouble;
}

long tf_json_long(const cJSON *obj, const char *key, long def)
{
    return tf_json_num_long(cJSON_GetObjectItemCaseSensitive(obj, key), def);
}

enum tf_rc tf_json_append_str(struct tf_buf *buf, const char *s)
{
    enum tf_rc rc = tf_buf_puts(buf, "\"");

    for (; rc == TF_OK && *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\')
            rc = tf_buf_printf(buf, "\\%c", c);
        else if (c < 0x20)
            rc = tf_buf_printf(buf, "\\u%04x", c);
        else
            rc = tf_buf_append(buf, s, 1);
    }
    if (rc == TF_OK)
        rc = tf_buf_puts(buf, "\"");
    return rc;
}
