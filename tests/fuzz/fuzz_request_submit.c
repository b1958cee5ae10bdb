/*
 * fuzz_request_submit.c -- libFuzzer target: the JSON body of
 * POST /v1/proxy, as api/agent.c hands it to cs_request_parse in
 * CS_REQ_SUBMIT mode (idempotency_key, extra_headers, no agent).
 *
 * Input: the raw body, as received. Covers lib/cs_json.c (strict parse),
 * lib/cs_request.c (fields, headers, path and query parameters, bodies,
 * digest), lib/cs_url.c (normalisation) and the base64 decoder. The
 * properties checked on every accepted or refused body are listed in
 * fuzz_request.h; they are checked after the parsed JSON document was
 * released, so a request that borrowed from it shows up as a
 * use-after-free.
 */
#include "fuzz_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cs_request rq;
    (void)fuzz_request_parse(data, size, CS_REQ_SUBMIT, &rq);
    cs_request_free(&rq);
    return 0;
}
