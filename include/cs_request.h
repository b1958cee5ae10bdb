/*
 * cs_request.h -- the call an agent asks Countersign to make.
 *
 * One parser for both ways in: a Kafka request envelope (CS_REQ_ENVELOPE)
 * and an HTTP submit body (CS_REQ_SUBMIT). It validates every field,
 * substitutes path_params, merges query_params, normalises the URL,
 * refuses headers callers may not set, and computes the digest that the
 * approver is shown and the executor re-checks:
 *
 *   digest = SHA-256("countersign-request-v1" || lp(method) || lp(url) ||
 *                    lp(grant_id) || u32(n headers) ||
 *                    for each header sorted by lower-case name:
 *                        lp(lower(name)) || lp(value)
 *                    || lp(body))         with lp(x) = u64 length || x
 *
 * Envelope (Kafka): {"request_id", "agent", "grant_id", "method", "url",
 *   "headers"?, "json"? | "body"? | "body_b64"?, "query_params"?,
 *   "path_params"?, "reason"?, "context"?, "batch_id"?}
 * Submit (HTTP): the same without "agent" (the API key names it), with
 *   "extra_headers" for "headers" and "idempotency_key" for "request_id".
 */
#ifndef CS_REQUEST_H
#define CS_REQUEST_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "cs_crypto.h"
#include "cs_err.h"

#define CS_REQ_ENVELOPE 1u
#define CS_REQ_SUBMIT 2u

#define CS_REQ_ID_MAX 200
#define CS_REASON_MAX 4096
#define CS_CONTEXT_MAX 16384
#define CS_HEADERS_MAX 64

struct cs_request {
    char *request_id; /* NULL for a submit without idempotency_key */
    char *agent;      /* envelope only */
    char *grant_id;
    char *method;         /* upper case */
    char *url;            /* normalised, query merged */
    char *host;           /* of url */
    char *path;           /* of url, for policy rules */
    json_object *headers; /* owned; object of name -> string */
    unsigned char *body;  /* owned; may be NULL when body_len == 0 */
    size_t body_len;
    bool body_is_json; /* given as "json": policy rules may read fields */
    char *reason;
    json_object *context; /* owned; object */
    char *batch_id;       /* NULL unless part of a batch */
    unsigned char digest[CS_SHA256_LEN];
};

/*
 * Parses and validates obj (borrowed) into rq. mode is CS_REQ_ENVELOPE or
 * CS_REQ_SUBMIT; max_body caps the decoded body. On error rq is freed and
 * err names the field.
 */
enum cs_err cs_request_parse(json_object *obj, unsigned mode, size_t max_body,
                             struct cs_request *rq, char *err) CS_MUSTCHECK;
void cs_request_free(struct cs_request *rq);

/* True when a caller may not set header `name` (case-insensitive). */
bool cs_header_forbidden(const char *name);

/* Computes the digest of a stored or parsed request (see above). */
void cs_request_digest(const char *method, const char *url, const char *grant_id,
                       json_object *headers, const unsigned char *body, size_t body_len,
                       unsigned char out[CS_SHA256_LEN]);

#endif
