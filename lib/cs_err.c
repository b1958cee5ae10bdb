/*
 * cs_err.c -- the error table (see include/cs_err.h).
 *
 * Checklist: a row here for every value of enum cs_err, in the same order.
 * tests/unit/test_err.c fails when a row is missing or a code repeats.
 */
#include "cs_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct cs_err_info cs_err_table[CS_ERR__COUNT] = {
    [CS_OK] = {"ok", 200, false, "success"},
    [CS_ERR_INVALID] = {"invalid_request", 400, false, "the request is invalid"},
    [CS_ERR_MALFORMED_JSON] = {"malformed_json", 400, false, "the body is not valid JSON"},
    [CS_ERR_TOO_LARGE] = {"too_large", 413, false, "the input exceeds the size limit"},
    [CS_ERR_FORBIDDEN_HEADER] = {"forbidden_header", 400, false, "callers may not set this header"},
    [CS_ERR_BAD_URL] = {"invalid_url", 400, false, "the URL is not an absolute http(s) URL"},
    [CS_ERR_UNAUTHENTICATED] = {"unauthenticated", 401, false,
                                "missing, unknown or revoked API key"},
    [CS_ERR_FORBIDDEN] = {"forbidden", 403, false, "not allowed"},
    [CS_ERR_NOT_FOUND] = {"not_found", 404, false, "not found"},
    [CS_ERR_UNKNOWN_AGENT] = {"unknown_agent", 404, false, "no such agent"},
    [CS_ERR_UNKNOWN_GRANT] = {"unknown_grant", 404, false, "no such grant"},
    [CS_ERR_HOST_NOT_ALLOWED] = {"host_not_allowed", 403, false,
                                 "the grant does not allow this destination"},
    [CS_ERR_POLICY] = {"policy_unevaluable", 422, false,
                       "the policy cannot be evaluated for this request (refused)"},
    [CS_ERR_UNPROCESSABLE] = {"unprocessable", 422, false,
                              "the request is well-formed, but its fields contradict each other "
                              "or one of them cannot be used"},
    [CS_ERR_CONFIG] = {"invalid_config", 500, false, "invalid configuration"},
    [CS_ERR_NOT_PENDING] = {"not_pending", 409, false, "the approval is no longer pending"},
    [CS_ERR_EXPIRED] = {"expired", 410, false, "the approval window has elapsed"},
    [CS_ERR_ALREADY_VOTED] = {"already_voted", 409, false, "this approver has already voted"},
    [CS_ERR_SELF_APPROVAL] = {"self_approval", 403, false,
                              "a requester cannot vote on its own request"},
    [CS_ERR_NOT_APPROVER] = {"not_an_approver", 403, false, "not an approver of this approval"},
    [CS_ERR_BAD_TOKEN] = {"invalid_token", 403, false, "the approval link is not valid"},
    [CS_ERR_CONFLICT] = {"conflict", 409, false, "the object changed; reload and retry"},
    [CS_ERR_DUPLICATE] = {"duplicate", 409, false, "already exists"},
    [CS_ERR_CSRF] = {"csrf_failed", 403, false,
                     "the form did not come from the approval page; reload it and try again"},
    [CS_ERR_METHOD] = {"method_not_allowed", 405, false, "this route does not take that method"},
    [CS_ERR_DENIED] = {"denied", 409, false, "an approver denied the request"},
    [CS_ERR_CANCELLED] = {"cancelled", 409, false, "the request was cancelled"},
    [CS_ERR_EXECUTION_FAILED] = {"execution_failed", 502, false,
                                 "the request was approved but the call failed"},
    [CS_ERR_CONNECT] = {"connect_failed", 502, true, "could not connect to the provider"},
    [CS_ERR_TLS] = {"tls_error", 502, false, "TLS failure talking to the provider"},
    [CS_ERR_TIMEOUT] = {"timeout", 504, true, "the provider did not answer in time"},
    [CS_ERR_OUTCOME_UNKNOWN] = {"outcome_unknown", 502, false,
                                "the call may have reached the provider; it is not re-run"},
    [CS_ERR_DIGEST_MISMATCH] = {"digest_mismatch", 500, false,
                                "the stored request does not match its digest"},
    [CS_ERR_PROVIDER] = {"provider_error", 502, true, "transport failure talking to the provider"},
    [CS_ERR_RATE_LIMITED] = {"rate_limited", 502, false,
                             "the provider was still throttling the grant (429, or 503 with "
                             "Retry-After) at the call's execution deadline; not executed"},
    [CS_ERR_EXEC_DEADLINE] = {"execution_deadline", 502, false,
                              "the call could not start before its execution deadline (grant "
                              "paused or over its limits); nothing was sent"},
    [CS_ERR_DB] = {"database_unavailable", 503, true, "the database is unavailable"},
    [CS_ERR_KAFKA] = {"kafka_unavailable", 503, true, "Kafka is unavailable"},
    [CS_ERR_CRYPTO] = {"crypto_error", 500, false, "cryptographic operation failed"},
    [CS_ERR_UNAVAILABLE] = {"unavailable", 503, true, "temporarily unavailable"},
    [CS_ERR_INTERNAL] = {"internal_error", 500, false, "internal error"},
};

const struct cs_err_info *cs_err_info(enum cs_err rc)
{
    if ((int)rc < 0 || rc >= CS_ERR__COUNT || !cs_err_table[rc].code)
        return &cs_err_table[CS_ERR_INTERNAL];
    return &cs_err_table[rc];
}

const char *cs_err_code(enum cs_err rc)
{
    return cs_err_info(rc)->code;
}

enum cs_err cs_err_from_code(const char *code)
{
    for (int i = 0; i < CS_ERR__COUNT; i++)
        if (cs_err_table[i].code && strcmp(cs_err_table[i].code, code) == 0)
            return (enum cs_err)i;
    return CS_ERR__COUNT;
}

enum cs_err cs_err_set(char *err, enum cs_err rc, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, CS_ERRLEN, fmt, ap);
        va_end(ap);
    }
    return rc;
}

void cs_assert_fail(const char *expr, const char *file, int line)
{
    /* Plain text on purpose: the expression may hold quotes, and this must not allocate. */
    fprintf(stderr, "FATAL %s:%d: assertion failed: %s\n", file, line, expr);
    abort();
}
