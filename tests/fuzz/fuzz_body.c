/*
 * fuzz_body.c - libFuzzer: the request-body checks of the API. The first
 * byte picks POST /v1/executions (an execution_id required or not) or
 * PUT /v1/jobs/{job}; the rest is the body. A refusal always says why.
 */
#include <cjson/cJSON.h>
#include <stdint.h>

#include "extract/extract.h"
#include "tf/svc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512] = "";
    cJSON *body;
    enum tf_rc rc;

    if (size < 1)
        return 0;
    body = cJSON_ParseWithLength((const char *)data + 1, size - 1);
    if (!body)
        return 0;
    if (data[0] % 3 == 2)
        rc = extract_job_check(body, err, sizeof(err));
    else
        rc = tf_svc_check_execution_body(body, data[0] % 3, err, sizeof(err));
    if (rc != TF_OK && !err[0])
        __builtin_trap(); /* refused without a reason */
    cJSON_Delete(body);
    return 0;
}
