/*
 * json.c - small readers for cJSON objects.
 */
#include "tf/json.h"

const char *tf_json_str(const cJSON *obj, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, key));
}

long tf_json_long(const cJSON *obj, const char *key, long def)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

    return cJSON_IsNumber(it) ? (long)it->valuedouble : def;
}
