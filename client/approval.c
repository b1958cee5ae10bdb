/*
 * approval.c -- the four agent operations of the C client on one approval:
 * submit (POST /v1/proxy), read its status, wait for its outcome with the
 * server's long-poll, cancel it; and the objects they return
 * (struct countersign_response, struct countersign_status) with their _free.
 *
 * Every public function here accepts error == NULL (a local struct stands
 * in) and sets *out to NULL before anything can fail, so a caller may free
 * unconditionally. await_approval never gives up before its deadline on a
 * retriable failure (it asks again every poll interval), and never waits
 * past it by more than one HTTP timeout: the long-poll asks for the whole
 * seconds left, at most 60.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "client.h"
#include "cs_mem.h"

#define INLINE_WAIT_SECONDS 60

/* An approval id goes into a path: UUID characters only. */
static bool id_ok(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    return n > 0 && n <= COUNTERSIGN_ID_LEN && strspn(id, "0123456789abcdefABCDEF-") == n;
}

static enum countersign_code invalid_response(struct countersign_error *e, long http,
                                              const char *what, const char *approval_id)
{
    client_fail(e, COUNTERSIGN_SERVER, (int)http, "invalid_response",
                "Countersign answered HTTP %ld with an unexpected body: %s", http, what);
    if (approval_id)
        cs_strlcpy(e->approval_id, approval_id, sizeof(e->approval_id));
    return e->code;
}

/* ==== responses ========================================================== */

void countersign_response_free(struct countersign_response *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_headers; i++) {
        cs_free((char *)r->headers[i].name);
        cs_free((char *)r->headers[i].value);
    }
    cs_free(r->headers);
    cs_free(r->body);
    cs_free(r->approval_url);
    cs_free(r);
}

const char *countersign_response_header(const struct countersign_response *r, const char *name)
{
    if (!r || !name)
        return NULL;
    for (size_t i = 0; i < r->n_headers; i++)
        if (!strcasecmp(r->headers[i].name, name))
            return r->headers[i].value;
    return NULL;
}

/* An ApprovalResult object into *out. */
static enum countersign_code parse_result(json_object *o, long http,
                                          struct countersign_response **out,
                                          struct countersign_error *e)
{
    const char *b64 = client_json_str(o, "body_b64");
    json_object *hdrs = NULL;
    struct countersign_response *r = cs_calloc(1, sizeof(*r));
    r->kind = COUNTERSIGN_RESULT;
    bool ok = client_json_copy(o, "approval_id", r->approval_id, sizeof(r->approval_id)) &&
              client_json_int(o, "status_code", &r->status_code) && b64 &&
              client_json_bool(o, "body_truncated", &r->body_truncated) &&
              client_b64_decode(b64, strlen(b64), &r->body, &r->body_len);
    if (!client_json_copy(o, "status", r->status, sizeof(r->status)))
        cs_strlcpy(r->status, "executed", sizeof(r->status));
    client_json_copy(o, "executed_at", r->executed_at, sizeof(r->executed_at));
    if (ok && json_object_object_get_ex(o, "headers", &hdrs) &&
        json_object_is_type(hdrs, json_type_object)) {
        r->headers = cs_calloc((size_t)json_object_object_length(hdrs) + 1, sizeof(*r->headers));
        json_object_object_foreach(hdrs, name, value)
        {
            if (!json_object_is_type(value, json_type_string))
                continue;
            char *lower = cs_strdup(name);
            for (char *p = lower; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                    *p = (char)(*p - 'A' + 'a');
            r->headers[r->n_headers].name = lower;
            r->headers[r->n_headers].value = cs_strdup(json_object_get_string(value));
            r->n_headers++;
        }
    }
    if (!ok) {
        char id[COUNTERSIGN_ID_LEN + 1];
        cs_strlcpy(id, r->approval_id, sizeof(id));
        countersign_response_free(r);
        return invalid_response(e, http,
                                "not a result (approval_id, status_code, body_b64, "
                                "body_truncated)",
                                id[0] ? id : NULL);
    }
    *out = r;
    return COUNTERSIGN_OK;
}

/* A PendingApproval object into *out. */
static enum countersign_code parse_pending(json_object *o, long http,
                                           struct countersign_response **out,
                                           struct countersign_error *e)
{
    const char *url = client_json_str(o, "approval_url");
    struct countersign_response *r = cs_calloc(1, sizeof(*r));
    r->kind = COUNTERSIGN_PENDING;
    bool ok = client_json_copy(o, "approval_id", r->approval_id, sizeof(r->approval_id)) &&
              client_json_copy(o, "expires_at", r->expires_at, sizeof(r->expires_at)) &&
              client_json_copy(o, "status", r->status, sizeof(r->status)) && url;
    if (!ok) {
        countersign_response_free(r);
        return invalid_response(e, http, "not a pending approval", NULL);
    }
    r->approval_url = cs_strdup(url);
    *out = r;
    return COUNTERSIGN_OK;
}

/* ==== statuses =========================================================== */

void countersign_status_free(struct countersign_status *st)
{
    if (!st)
        return;
    cs_free(st->decision_reason);
    cs_free(st->grant_id);
    cs_free(st->method);
    cs_free(st->url);
    cs_free(st->batch_id);
    cs_free(st);
}

/* An ApprovalStatus object into *out. */
static enum countersign_code parse_status(json_object *o, long http,
                                          struct countersign_status **out,
                                          struct countersign_error *e)
{
    struct countersign_status *st = cs_calloc(1, sizeof(*st));
    bool ok = client_json_copy(o, "approval_id", st->approval_id, sizeof(st->approval_id)) &&
              client_json_copy(o, "status", st->status, sizeof(st->status)) &&
              client_json_bool(o, "is_terminal", &st->is_terminal) &&
              client_json_bool(o, "has_result", &st->has_result) &&
              client_json_int(o, "approvals_received", &st->approvals_received) &&
              client_json_int(o, "approvals_required", &st->approvals_required) &&
              client_json_copy(o, "expires_at", st->expires_at, sizeof(st->expires_at));
    if (!ok) {
        countersign_status_free(st);
        return invalid_response(e, http, "not an approval status", NULL);
    }
    client_json_copy(o, "created_at", st->created_at, sizeof(st->created_at));
    client_json_copy(o, "decided_at", st->decided_at, sizeof(st->decided_at));
    client_json_copy(o, "executed_at", st->executed_at, sizeof(st->executed_at));
    client_json_copy(o, "error_code", st->error_code, sizeof(st->error_code));
    st->decision_reason = cs_strdup(client_json_str(o, "decision_reason"));
    st->grant_id = cs_strdup(client_json_str(o, "grant_id"));
    st->method = cs_strdup(client_json_str(o, "method"));
    st->url = cs_strdup(client_json_str(o, "url"));
    st->batch_id = cs_strdup(client_json_str(o, "batch_id"));
    *out = st;
    return COUNTERSIGN_OK;
}

/* ==== the operations ===================================================== */

enum countersign_code countersign_proxy_request(struct countersign_client *c,
                                                const struct countersign_request *req,
                                                struct countersign_response **out,
                                                struct countersign_error *error)
{
    struct countersign_error local;
    struct countersign_error *e = error ? error : &local;
    client_error_clear(e);
    if (out)
        *out = NULL;
    if (!c || !req || !out)
        return client_fail(e, COUNTERSIGN_INVALID_ARGUMENT, 0, "invalid_argument",
                           "client, request and out are required");
    struct client_fields f = client_fields_of(req, req->idempotency_key, req->batch_id);
    char err[COUNTERSIGN_ERRLEN], *body = NULL;
    enum countersign_code rc = client_request_json(&f, CLIENT_JSON_HTTP, &body, err);
    if (rc)
        return client_fail(e, rc, 0, "invalid_argument", "%s", err);
    struct client_reply rep;
    rc = client_call(c, "POST", "/v1/proxy", NULL, body, INLINE_WAIT_SECONDS,
                     req->idempotency_key ? CLIENT_RETRY_ALL : CLIENT_RETRY_CONNECT, NULL, &rep, e);
    cs_free(body);
    if (rc)
        return rc;
    json_object *o = client_reply_object(&rep, e, NULL);
    if (o) {
        const char *type = client_json_str(o, "type");
        if (rep.status == 200 || (type && !strcmp(type, "result")))
            rc = parse_result(o, rep.status, out, e);
        else
            rc = parse_pending(o, rep.status, out, e);
    } else {
        rc = e->code;
    }
    json_object_put(o);
    client_reply_free(&rep);
    return rc;
}

enum countersign_code countersign_get_approval_status(struct countersign_client *c,
                                                      const char *approval_id,
                                                      struct countersign_status **out,
                                                      struct countersign_error *error)
{
    struct countersign_error local;
    struct countersign_error *e = error ? error : &local;
    client_error_clear(e);
    if (out)
        *out = NULL;
    if (!c || !out || !id_ok(approval_id))
        return client_fail(e, COUNTERSIGN_INVALID_ARGUMENT, 0, "invalid_argument",
                           "a client, out and an approval id (a UUID) are required");
    char path[96];
    snprintf(path, sizeof(path), "/v1/approvals/%s", approval_id);
    struct client_reply rep;
    enum countersign_code rc =
        client_call(c, "GET", path, NULL, NULL, 0, CLIENT_RETRY_ALL, approval_id, &rep, e);
    if (rc)
        return rc;
    json_object *o = client_reply_object(&rep, e, approval_id);
    rc = o ? parse_status(o, rep.status, out, e) : e->code;
    json_object_put(o);
    client_reply_free(&rep);
    return rc;
}

enum countersign_code countersign_cancel_approval(struct countersign_client *c,
                                                  const char *approval_id, const char *reason,
                                                  struct countersign_status **out,
                                                  struct countersign_error *error)
{
    struct countersign_error local;
    struct countersign_error *e = error ? error : &local;
    client_error_clear(e);
    if (out)
        *out = NULL;
    if (!c || !id_ok(approval_id))
        return client_fail(e, COUNTERSIGN_INVALID_ARGUMENT, 0, "invalid_argument",
                           "a client and an approval id (a UUID) are required");
    char path[96], *body = NULL;
    snprintf(path, sizeof(path), "/v1/approvals/%s/cancel", approval_id);
    if (reason) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "reason", json_object_new_string(reason));
        body = cs_strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
    }
    struct client_reply rep;
    enum countersign_code rc =
        client_call(c, "POST", path, NULL, body, 0, CLIENT_RETRY_CONNECT, approval_id, &rep, e);
    cs_free(body);
    if (rc)
        return rc;
    json_object *o = client_reply_object(&rep, e, approval_id);
    struct countersign_status *st = NULL;
    rc = o ? parse_status(o, rep.status, &st, e) : e->code;
    json_object_put(o);
    client_reply_free(&rep);
    if (out)
        *out = st;
    else
        countersign_status_free(st);
    return rc;
}

/* The wait to ask for with `remaining` seconds left: whole seconds, at most 60. */
static int long_poll_wait(double remaining)
{
    if (isnan(remaining) || remaining <= 0)
        return 0;
    if (isinf(remaining) || remaining >= COUNTERSIGN_MAX_WAIT_SECONDS)
        return COUNTERSIGN_MAX_WAIT_SECONDS;
    return (int)floor(remaining);
}

enum countersign_code countersign_await_approval(struct countersign_client *c,
                                                 const char *approval_id, double timeout_seconds,
                                                 struct countersign_response **result,
                                                 struct countersign_error *error)
{
    struct countersign_error local;
    struct countersign_error *e = error ? error : &local;
    client_error_clear(e);
    if (result)
        *result = NULL;
    if (!c || !result || !id_ok(approval_id))
        return client_fail(e, COUNTERSIGN_INVALID_ARGUMENT, 0, "invalid_argument",
                           "a client, result and an approval id (a UUID) are required");
    bool forever = timeout_seconds == COUNTERSIGN_WAIT_FOREVER;
    if (!forever && !(timeout_seconds >= 0))
        return client_fail(e, COUNTERSIGN_INVALID_ARGUMENT, 0, "invalid_argument",
                           "timeout_seconds must be >= 0, or COUNTERSIGN_WAIT_FOREVER");
    char path[96], last[16] = "";
    snprintf(path, sizeof(path), "/v1/approvals/%s/result", approval_id);
    double deadline = forever ? INFINITY : client_now() + timeout_seconds;
    double poll = client_poll_interval(c);
#define LEFT() (forever ? INFINITY : fmax(0.0, deadline - client_now()))
    for (;;) {
        double remaining = LEFT();
        int wait = long_poll_wait(remaining);
        if (wait == 0 && remaining > 0)
            client_sleep(remaining); /* under a second left: wait it out, then ask once more */
        char query[16];
        snprintf(query, sizeof(query), "wait=%d", wait);
        double started = client_now();
        struct client_reply rep;
        enum countersign_code rc =
            client_call(c, "GET", path, query, NULL, wait, CLIENT_RETRY_NONE, approval_id, &rep, e);
        if (rc) {
            if (!client_retriable(e) || LEFT() <= 0)
                return rc;
            client_sleep(fmin(poll, LEFT()));
            continue;
        }
        json_object *o = client_reply_object(&rep, e, approval_id);
        if (!o) {
            client_reply_free(&rep);
            return e->code;
        }
        const char *type = client_json_str(o, "type");
        if (rep.status == 200 || (type && !strcmp(type, "result"))) {
            rc = parse_result(o, rep.status, result, e);
            json_object_put(o);
            client_reply_free(&rep);
            return rc;
        }
        client_json_copy(o, "status", last, sizeof(last));
        json_object_put(o);
        client_reply_free(&rep);
        if (LEFT() <= 0) {
            client_fail(e, COUNTERSIGN_TIMEOUT, 0, "timeout",
                        "approval %s is still %s after waiting %g s; it may still be decided: "
                        "await it again later",
                        approval_id, last[0] ? last : "unknown", timeout_seconds);
            cs_strlcpy(e->approval_id, approval_id, sizeof(e->approval_id));
            cs_strlcpy(e->last_status, last, sizeof(e->last_status));
            return COUNTERSIGN_TIMEOUT;
        }
        if (wait > 0 && client_now() - started < wait / 2.0)
            client_sleep(fmin(poll, LEFT())); /* answered long before the wait: do not hammer */
    }
#undef LEFT
}
