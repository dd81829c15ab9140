/*
 * tf/json.h - small readers for cJSON objects.
 */
#ifndef TF_JSON_H
#define TF_JSON_H

#include <cjson/cJSON.h>

#include "tf/buf.h"

/** The string member key of obj (borrowed), or NULL when absent or not a string. */
const char *tf_json_str(const cJSON *obj, const char *key);

/** A number item as a long; def when it is not a number or not within long's range. */
long tf_json_num_long(const cJSON *it, long def);

/** The number member key of obj as a long, or def when absent or not a number. */
long tf_json_long(const cJSON *obj, const char *key, long def);

/** Appends s to buf as a JSON string, quotes included, escaped as JSON requires. */
enum tf_rc tf_json_append_str(struct tf_buf *buf, const char *s) TF_MUSTCHECK;

#endif
