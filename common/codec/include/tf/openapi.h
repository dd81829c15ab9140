/*
 * tf/openapi.h - small macros that write OpenAPI 3.0 JSON as C string
 * literals, for the documents the services serve at /openapi.json (the
 * stage API in svc_http.c, a stage's own routes in its main.c). Each
 * expands to a literal, so a document is one constant string.
 */
#ifndef TF_OPENAPI_H
#define TF_OPENAPI_H

/* A number macro's value as a literal: OA_NUM(LIST_MAX) is "1000". */
#define OA_NUM(x)  OA_NUM_(x)
#define OA_NUM_(x) #x

/* Schemas. */
#define OA_STR          "{\"type\":\"string\"}"
#define OA_STR_NULL     "{\"type\":\"string\",\"nullable\":true}"
#define OA_DATE         "{\"type\":\"string\",\"format\":\"date\"}"
#define OA_TIME         "{\"type\":\"string\",\"format\":\"date-time\"}"
#define OA_TIME_NULL    "{\"type\":\"string\",\"format\":\"date-time\",\"nullable\":true}"
#define OA_UUID         "{\"type\":\"string\",\"format\":\"uuid\"}"
#define OA_INTEGER      "{\"type\":\"integer\"}"
#define OA_INT(lo, hi)  "{\"type\":\"integer\",\"minimum\":" lo ",\"maximum\":" hi "}"
#define OA_ENUM(values) "{\"type\":\"string\",\"enum\":[" values "]}"
#define OA_REF(name)    "{\"$ref\":\"#/components/schemas/" name "\"}"
/* A job's name as every route checks it (tf_job_name_valid). */
#define OA_JOB_NAME                                                                                \
    "{\"type\":\"string\",\"pattern\":\"^[a-z][a-z0-9_]{0,62}$\",\"description\":\"1 to 63 of"     \
    " a-z, 0-9 and _, starting with a letter\"}"

/* Parameters. */
#define OA_PATH_PARAM(name, schema)                                                                \
    "{\"name\":\"" name "\",\"in\":\"path\",\"required\":true,\"schema\":" schema "}"
#define OA_QUERY_PARAM(name, req, schema)                                                          \
    "{\"name\":\"" name "\",\"in\":\"query\",\"required\":" req ",\"schema\":" schema "}"

/* Request bodies (ends with a comma) and responses. */
#define OA_BODY(schema)                                                                            \
    "\"requestBody\":{\"required\":true,\"content\":{\"application/json\":{\"schema\":" schema     \
    "}}},"
/* A mutating call: the bearer token (TICKFLOW_API_TOKEN) when the service has one; ends with a
 * comma. The document's components declare the scheme; OA_UNAUTHORIZED is its 401. */
#define OA_BEARER "\"security\":[{\"bearer\":[]}],"
#define OA_BEARER_SCHEME                                                                           \
    "\"securitySchemes\":{\"bearer\":{\"type\":\"http\",\"scheme\":\"bearer\",\"description\":"    \
    "\"TICKFLOW_API_TOKEN; asked of calls that change something, when the service has one\"}}"
#define OA_UNAUTHORIZED "\"401\":{\"description\":\"no valid bearer token\"}"
#define OA_OK(what)     "\"200\":{\"description\":\"" what "\"}"
#define OA_JSON(code, what, schema)                                                                \
    "\"" code "\":{\"description\":\"" what                                                        \
    "\",\"content\":{\"application/json\":{\"schema\":" schema "}}}"
#define OA_ERR(code) "\"" code "\":{\"description\":\"error object\"}"

#endif
