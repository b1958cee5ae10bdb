/*
 * fuzz_request_envelope.c -- libFuzzer target: the Kafka request envelope
 * as worker/ingest.c hands it to cs_request_parse in CS_REQ_ENVELOPE mode
 * (request_id and agent required, headers).
 *
 * Input: the raw message value, as consumed. Covers lib/cs_json.c,
 * lib/cs_request.c, lib/cs_url.c and the base64 decoder. The properties
 * checked on every accepted or refused envelope are listed in
 * fuzz_request.h; they are checked after the parsed JSON document was
 * released, so a request that borrowed from it shows up as a
 * use-after-free.
 */
#include "fuzz_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cs_request rq;
    (void)fuzz_request_parse(data, size, CS_REQ_ENVELOPE, &rq);
    cs_request_free(&rq);
    return 0;
}
