/*
 * fuzz_request.h -- the request parser under fuzzing, shared by
 * fuzz_request_submit.c, fuzz_request_envelope.c and fuzz_policy.c.
 *
 * fuzz_request_one() runs what the api (POST /v1/proxy) and the worker's
 * ingest run on a body they received -- cs_json_parse, then
 * cs_request_parse in the given mode -- and checks what the rest of the
 * system relies on when the parser says yes:
 *   - the method is one of the seven, upper case; ids are well formed;
 *   - the stored URL re-parses to itself, with the same host and path
 *     (cs_approval_check and the executor parse it again and must see the
 *     URL the approver saw);
 *   - no forbidden, duplicate or control-character header survives;
 *   - the body is within max_body, and a "json" body re-parses (policy
 *     rules read it with cs_json_parse);
 *   - the digest is the one cs_request_digest computes from the fields;
 * and when it says no: an error code from the table, a message, and an
 * empty request (nothing left to leak).
 */
#ifndef FUZZ_REQUEST_H
#define FUZZ_REQUEST_H

#include <regex.h>
#include <strings.h>

#include "cs_ident.h"
#include "cs_json.h"
#include "cs_request.h"
#include "cs_url.h"
#include "fuzz.h"

#define FUZZ_MAX_BODY 4096

/* Well formed: the rule's regex (for agents and grants the schema's CHECK,
 * test_ident.c holds the two together) matches, by regexec, not by the
 * parser's own code. Compiled once per kind; a fuzzer is one thread. */
static inline bool fuzz_id_ok(const char *s, enum cs_ident kind)
{
    static regex_t re[CS_IDENT__COUNT];
    static bool compiled[CS_IDENT__COUNT];
    if (!compiled[kind]) {
        FUZZ_CHECK(regcomp(&re[kind], cs_ident_regex(kind), REG_EXTENDED | REG_NOSUB) == 0);
        compiled[kind] = true;
    }
    return regexec(&re[kind], s, 0, NULL, 0) == 0;
}

/* Properties of a request the parser accepted (see the file comment). */
static inline void fuzz_request_check(const struct cs_request *rq, unsigned mode, size_t max_body)
{
    static const char *const methods[] = {"GET",    "POST", "PUT",     "PATCH",
                                          "DELETE", "HEAD", "OPTIONS", NULL};
    bool known = false;
    for (const char *const *m = methods; *m; m++)
        known = known || strcmp(*m, rq->method) == 0;
    FUZZ_CHECK(known);
    FUZZ_CHECK(fuzz_id_ok(rq->grant_id, CS_IDENT_ID));
    if (mode == CS_REQ_ENVELOPE) {
        FUZZ_CHECK(rq->request_id && rq->agent && fuzz_id_ok(rq->agent, CS_IDENT_AGENT));
    } else {
        FUZZ_CHECK(rq->agent == NULL);
    }
    if (rq->request_id)
        FUZZ_CHECK(*rq->request_id && strlen(rq->request_id) <= CS_REQ_ID_MAX);
    if (rq->batch_id)
        FUZZ_CHECK(fuzz_id_ok(rq->batch_id, CS_IDENT_BATCH));
    FUZZ_CHECK(rq->reason && strlen(rq->reason) <= CS_REASON_MAX);
    FUZZ_CHECK(json_object_is_type(rq->context, json_type_object));

    /* The URL as stored is the URL as checked again later. */
    struct cs_url u;
    char err[CS_ERRLEN];
    enum cs_err urc = cs_url_parse(rq->url, &u, err);
    if (urc != CS_OK || strcmp(u.full, rq->url) || strcmp(u.host, rq->host) ||
        strcmp(u.path, rq->path)) {
        fprintf(stderr, "stored URL [%s] host [%s] path [%s] re-parses as %s [%s] [%s]\n", rq->url,
                rq->host, rq->path, urc ? err : "", urc ? "" : u.full, urc ? "" : u.host);
        FUZZ_CHECK(!"the stored URL re-parses to itself");
    }
    cs_url_free(&u);

    /* Headers: at most CS_HEADERS_MAX given plus a Content-Type we add. */
    FUZZ_CHECK(json_object_is_type(rq->headers, json_type_object));
    FUZZ_CHECK(json_object_object_length(rq->headers) <= CS_HEADERS_MAX + 1);
    json_object_object_foreach(rq->headers, name, val)
    {
        FUZZ_CHECK(*name && !cs_header_forbidden(name));
        FUZZ_CHECK(json_object_is_type(val, json_type_string));
        const char *v = json_object_get_string(val);
        FUZZ_CHECK(strlen(v) == (size_t)json_object_get_string_len(val));
        for (const char *c = v; *c; c++)
            FUZZ_CHECK((unsigned char)*c >= 0x20 || *c == '\t');
        int same = 0;
        json_object_object_foreach(rq->headers, other, oval)
        {
            (void)oval;
            same += strcasecmp(name, other) == 0;
        }
        FUZZ_CHECK(same == 1);
    }

    FUZZ_CHECK(rq->body_len <= max_body);
    FUZZ_CHECK(rq->body_len == 0 || rq->body != NULL);
    if (rq->body_is_json) {
        json_object *doc = NULL;
        enum cs_err rc = cs_json_parse((const char *)rq->body, rq->body_len, &doc, err);
        if (rc != CS_OK)
            fprintf(stderr, "json body does not re-parse: %s\n", err);
        FUZZ_CHECK(rc == CS_OK);
        json_object_put(doc);
    }

    unsigned char digest[CS_SHA256_LEN];
    cs_request_digest(rq->method, rq->url, rq->grant_id, rq->headers, rq->body, rq->body_len,
                      digest);
    FUZZ_CHECK(memcmp(digest, rq->digest, CS_SHA256_LEN) == 0);
}

/*
 * Parses data[size] as a request body of `mode`. Returns the parsed
 * request in *rq (the caller cs_request_free()s it) or an error, after
 * checking the properties above.
 */
static inline enum cs_err fuzz_request_parse(const uint8_t *data, size_t size, unsigned mode,
                                             struct cs_request *rq)
{
    char err[CS_ERRLEN] = "";
    json_object *obj = NULL;
    memset(rq, 0, sizeof(*rq));
    enum cs_err rc = cs_json_parse((const char *)data, size, &obj, err);
    if (rc) {
        FUZZ_CHECK(obj == NULL && rc > CS_OK && rc < CS_ERR__COUNT && err[0]);
        return rc;
    }
    err[0] = '\0';
    rc = cs_request_parse(obj, mode, FUZZ_MAX_BODY, rq, err);
    json_object_put(obj); /* the request owns copies of what it keeps */
    if (rc) {
        static const struct cs_request empty;
        FUZZ_CHECK(rc > CS_OK && rc < CS_ERR__COUNT && err[0]);
        FUZZ_CHECK(memcmp(rq, &empty, sizeof(empty)) == 0);
        return rc;
    }
    fuzz_request_check(rq, mode, FUZZ_MAX_BODY);
    return CS_OK;
}

#endif
