/*
 * agent.c -- the agent API: submit a call, read its status, wait for its
 * outcome, cancel it.
 *
 * Authentication: an API key in "Authorization: Bearer" or "X-Api-Key",
 * looked up by its SHA-256 (revoked keys and disabled agents do not match);
 * scopes "submit" (proxy, cancel) and "read" (status, result). An agent
 * sees only its own approvals: another agent's id answers 404.
 *
 * Submitting runs the same lib/ code as Kafka ingest (cs_request_parse,
 * cs_approval_check, cs_batch_tx_admit, cs_approval_row_write and its insert). When no approval
 * is needed the row is inserted approved and the request waits -- suspended,
 * see waiters.c -- for the worker to execute it, up to the policy's
 * execution timeout (at most 60 s), then answers 200 with the result, or
 * 202 if it is still running. A repeated idempotency_key returns the first
 * answer; with a different request it is 409.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "cs_approval.h"
#include "cs_batch.h"
#include "cs_json.h"
#include "cs_link.h"
#include "cs_log.h"
#include "cs_mem.h"
#include "cs_request.h"

#define INLINE_WAIT_MAX_MS 60000

enum { WAIT_NONE, WAIT_RESULT, WAIT_INLINE };

static enum cs_err authenticate(struct api_req *r, struct MHD_Connection *c, struct api_db *d,
                                const char *scope, char *err)
{
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Api-Key");
    if (auth) {
        if (strncasecmp(auth, "Bearer ", 7) != 0)
            return cs_err_set(err, CS_ERR_UNAUTHENTICATED, "use Authorization: Bearer <api key>");
        key = auth + 7;
    }
    if (!key || !*key)
        return cs_err_set(err, CS_ERR_UNAUTHENTICATED, "missing API key");
    if (strlen(key) > 128)
        return cs_err_set(err, CS_ERR_UNAUTHENTICATED, "unknown or revoked API key");
    unsigned char hash[CS_SHA256_LEN];
    char hex[2 * CS_SHA256_LEN + 1];
    cs_sha256(key, strlen(key), hash);
    cs_hex_encode(hash, sizeof(hash), hex);
    const char *p[] = {hex, scope};
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(d->db, CS_DB_Q(API_KEY_LOOKUP, p), &res, err);
    if (rc)
        return rc;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return cs_err_set(err, CS_ERR_UNAUTHENTICATED, "unknown or revoked API key");
    }
    bool scoped = cs_db_bool(res, 0, CSC_API_KEY_LOOKUP_HAS_SCOPE);
    cs_strlcpy(r->who.key_id, cs_db_str(res, 0, CSC_API_KEY_LOOKUP_KEY_ID), sizeof(r->who.key_id));
    cs_strlcpy(r->who.agent.id, cs_db_str(res, 0, CSC_API_KEY_LOOKUP_AGENT_ID),
               sizeof(r->who.agent.id));
    cs_strlcpy(r->who.name_buf, cs_db_str(res, 0, CSC_API_KEY_LOOKUP_AGENT_NAME),
               sizeof(r->who.name_buf));
    r->who.agent.name = r->who.name_buf;
    PQclear(res);
    if (!scoped)
        return cs_err_set(err, CS_ERR_FORBIDDEN, "this API key lacks the %s scope", scope);
    return CS_OK;
}

/* The approval_url handed to the agent: status to anyone, the decision to a signed-in approver. */
static char *view_url(struct api *a, const char *id, int64_t expires_ms)
{
    char path[CS_LINK_PATH_MAX];
    cs_link_approval_path(&a->keys, id, expires_ms, path);
    return cs_link_url(a->cfg->public_url, path);
}

static enum MHD_Result pending_reply(struct api_req *r, struct MHD_Connection *c, const char *id,
                                     const char *status, int64_t expires_ms)
{
    char iso[CS_TIME_ISO_LEN];
    char *url = view_url(r->api, id, expires_ms);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "type", json_object_new_string("pending_approval"));
    json_object_object_add(o, "approval_id", json_object_new_string(id));
    json_object_object_add(o, "approval_url", json_object_new_string(url));
    json_object_object_add(o, "expires_at", json_object_new_string(cs_time_iso(expires_ms, iso)));
    json_object_object_add(o, "status", json_object_new_string(status));
    cs_free(url);
    return reply_json(r, c, 202, o);
}

/*
 * Answers from one read of the approval (cs_approval_answer): its outcome,
 * or -- when it is not terminal -- the 202 status object, or a
 * pending_approval for a submission. When r->waiter is registered (before
 * the read, so no change between the read and the suspension is missed)
 * and the approval is not terminal, the connection is suspended instead:
 * the answer comes when it is resumed (resumed()).
 */
static enum MHD_Result answer(struct api_req *r, struct MHD_Connection *c, struct api_db *d,
                              bool as_submission)
{
    char err[CS_ERRLEN], message[512];
    enum cs_err outcome;
    enum cs_status status = CS_ST_PENDING;
    json_object *body = NULL;
    enum cs_err rc = cs_approval_answer(d->db, r->approval_id, r->who.agent.id, &outcome, &body,
                                        &status, message, sizeof(message), err);
    if (!rc && outcome == CS_ERR_NOT_PENDING && r->waiter) {
        if (waiters_suspend(r->api->waiters, r->waiter)) {
            json_object_put(body);
            return MHD_YES; /* the router returns d: nothing is held while suspended */
        }
        /* It fired after the read: the approval ended (or the wait is over) since, so
         * what was read is stale. Read again (the only second read, and only then). */
        json_object_put(body);
        body = NULL;
        rc = cs_approval_answer(d->db, r->approval_id, r->who.agent.id, &outcome, &body, &status,
                                message, sizeof(message), err);
    }
    if (r->waiter) {
        waiters_remove(r->api->waiters, r->waiter);
        r->waiter = NULL;
    }
    if (rc)
        return reply_error(r, c, rc, err, NULL);
    if (outcome == CS_OK)
        return reply_json(r, c, 200, body);
    if (outcome != CS_ERR_NOT_PENDING) {
        json_object_object_add(body, "approval_id", json_object_new_string(r->approval_id));
        return reply_error(r, c, outcome, message, body);
    }
    if (!as_submission)
        return reply_json(r, c, 202, body);
    enum MHD_Result ret =
        pending_reply(r, c, r->approval_id, cs_status_name(status), r->inline_expires_ms);
    json_object_put(body);
    return ret;
}

/* Waits (up to deadline_ms) for the approval to end, or answers now if it has. */
static enum MHD_Result wait_for(struct api_req *r, struct MHD_Connection *c, struct api_db *d,
                                int why, int64_t deadline_ms)
{
    r->waits = why;
    r->waiter = waiters_add(r->api->waiters, r->approval_id, c, deadline_ms);
    return answer(r, c, d, why == WAIT_INLINE);
}

/* Called again after a suspension ends: answer with what is there now. */
static enum MHD_Result resumed(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    waiters_remove(r->api->waiters, r->waiter);
    r->waiter = NULL;
    return answer(r, c, d, r->waits == WAIT_INLINE);
}

/* ---- POST /v1/proxy ---- */

static enum MHD_Result proxy_existing(struct api_req *r, struct MHD_Connection *c, struct api_db *d,
                                      const struct cs_request *rq)
{
    char err[CS_ERRLEN], hex[2 * CS_SHA256_LEN + 1];
    const char *p[] = {r->who.agent.id, rq->request_id};
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(d->db, CS_DB_Q(APPROVAL_BY_REQUEST, p), &res, err);
    if (rc)
        return reply_error(r, c, rc, err, NULL);
    if (PQntuples(res) == 0) {
        PQclear(res);
        return reply_error(r, c, CS_ERR_CONFLICT, "the idempotency key is being used", NULL);
    }
    cs_hex_encode(rq->digest, CS_SHA256_LEN, hex);
    bool same = strcmp(hex, cs_db_str(res, 0, CSC_APPROVAL_BY_REQUEST_DIGEST_HEX)) == 0;
    cs_strlcpy(r->approval_id, cs_db_str(res, 0, CSC_APPROVAL_BY_REQUEST_ID),
               sizeof(r->approval_id));
    int st = cs_status_parse(cs_db_str(res, 0, CSC_APPROVAL_BY_REQUEST_STATUS));
    r->inline_expires_ms = cs_db_int(res, 0, CSC_APPROVAL_BY_REQUEST_EXPIRES_MS);
    PQclear(res);
    if (!same)
        return reply_error(r, c, CS_ERR_CONFLICT,
                           "this idempotency_key was used for a different request", NULL);
    if (st == CS_ST_PENDING)
        return pending_reply(r, c, r->approval_id, "pending", r->inline_expires_ms);
    return answer(r, c, d, true);
}

/*
 * Writes and stores the row of one submission (its id into r->approval_id,
 * its expiry into *expires_ms); a batch member is admitted to its batch
 * first, in the same transaction, and its row written in the batch's window.
 */
static enum cs_err store(struct api_req *r, struct api_db *d, const struct cs_request *rq,
                         const struct cs_grant *g, bool needs, int64_t *expires_ms, PGresult **res,
                         char *err)
{
    struct api *a = r->api;
    const struct cs_agent *agent = &r->who.agent;
    char actor[96];
    snprintf(actor, sizeof(actor), "agent:%s", agent->name);
    if (!rq->batch_id)
        return cs_approval_insert_row(d->db, rq, agent, g, needs, 0, &a->keys, a->cfg->public_url,
                                      actor, r->approval_id, expires_ms, res, err);
    struct cs_batch_tx *t = cs_batch_tx_new();
    int64_t window_ms = 0;
    enum cs_err rc = cs_db_begin(d->db, err);
    if (!rc)
        rc = cs_batch_tx_admit(t, d->db, rq, agent, g, &window_ms, err);
    if (!rc)
        rc =
            cs_approval_insert_row(d->db, rq, agent, g, needs, window_ms, &a->keys,
                                   a->cfg->public_url, actor, r->approval_id, expires_ms, res, err);
    if (!rc)
        rc = cs_batch_tx_finish(t, d->db, *res, &a->keys, a->cfg->public_url, "api", err);
    if (!rc)
        rc = cs_db_commit(d->db, err);
    if (rc) {
        cs_db_rollback(d->db);
        PQclear(*res);
        *res = NULL;
    }
    cs_batch_tx_free(t);
    return rc;
}

enum MHD_Result agent_proxy(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    if (r->waiter)
        return resumed(r, c, d);
    struct api *a = r->api;
    char err[CS_ERRLEN];
    enum MHD_Result ret;
    json_object *obj = NULL;
    struct cs_request rq = {0};
    const struct cs_grant *g = NULL;
    bool needs = true;
    enum cs_err rc = authenticate(r, c, d, "submit", err);
    if (!rc)
        rc = cs_json_parse(r->body.data ? r->body.data : "", r->body.len, &obj, err);
    if (!rc)
        rc = cs_request_parse(obj, CS_REQ_SUBMIT, (size_t)a->cfg->request_max_bytes, &rq, err);
    if (!rc)
        rc = cs_catalog_grant(d->cat, d->db, rq.grant_id, &g, err);
    if (!rc)
        rc = cs_approval_check(&rq, &r->who.agent, g, &needs, err);
    if (rc) {
        ret = reply_error(r, c, rc, err, NULL);
        goto done;
    }
    int64_t expires_ms = 0;
    needs = needs || rq.batch_id; /* a batch member waits for the batch decision */
    PGresult *res = NULL;
    if ((rc = store(r, d, &rq, g, needs, &expires_ms, &res, err))) {
        ret = reply_error(r, c, rc, err, NULL);
        goto done;
    }
    bool inserted = PQntuples(res) == 1;
    PQclear(res);
    r->inline_expires_ms = expires_ms;
    if (!inserted) {
        ret = proxy_existing(r, c, d, &rq);
        goto done;
    }
    cs_log_ap(CS_LOG_INFO, "api", r->approval_id, "submitted by %s: %s", r->who.agent.name,
              needs ? "pending approval" : "approved by policy");
    if (needs) {
        ret = pending_reply(r, c, r->approval_id, "pending", expires_ms);
        goto done;
    }
    int64_t wait = g->policy->exec_timeout_ms + 2000;
    ret = wait_for(r, c, d, WAIT_INLINE,
                   cs_now_ms() + (wait < INLINE_WAIT_MAX_MS ? wait : INLINE_WAIT_MAX_MS));
done:
    json_object_put(obj);
    cs_request_free(&rq);
    return ret;
}

/* ---- GET /v1/approvals/{id}, /result, POST /cancel ---- */

/* Authenticates and checks the approval id; false with the reply in *ret on failure. */
static bool begin(struct api_req *r, struct MHD_Connection *c, struct api_db *d, const char *scope,
                  enum MHD_Result *ret)
{
    char err[CS_ERRLEN];
    enum cs_err rc = authenticate(r, c, d, scope, err);
    if (!rc && !cs_uuid_valid(r->params[0]))
        rc = cs_err_set(err, CS_ERR_NOT_FOUND, "no such approval");
    if (rc) {
        *ret = reply_error(r, c, rc, err, NULL);
        return false;
    }
    cs_strlcpy(r->approval_id, r->params[0], sizeof(r->approval_id));
    return true;
}

enum MHD_Result agent_status(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    enum MHD_Result ret;
    if (!begin(r, c, d, "read", &ret))
        return ret;
    char err[CS_ERRLEN];
    json_object *o = NULL;
    enum cs_status st;
    enum cs_err rc = cs_approval_status(d->db, r->approval_id, r->who.agent.id, &o, &st, err);
    return rc ? reply_error(r, c, rc, err, NULL) : reply_json(r, c, 200, o);
}

enum MHD_Result agent_result(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    if (r->waiter)
        return resumed(r, c, d);
    const char *w = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "wait");
    long wait = 0;
    if (w) {
        char *end = NULL;
        wait = strtol(w, &end, 10);
        if (!*w || *end || wait < 0 || wait > 60)
            return reply_error(r, c, CS_ERR_INVALID, "wait must be an integer from 0 to 60", NULL);
    }
    enum MHD_Result ret;
    if (!begin(r, c, d, "read", &ret))
        return ret;
    if (wait == 0)
        return answer(r, c, d, false);
    return wait_for(r, c, d, WAIT_RESULT, cs_now_ms() + wait * 1000);
}

enum MHD_Result agent_cancel(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    enum MHD_Result ret;
    if (!begin(r, c, d, "submit", &ret))
        return ret;
    char err[CS_ERRLEN], actor[96];
    const char *reason = NULL;
    json_object *obj = NULL;
    enum cs_err rc = CS_OK;
    if (r->body.len) {
        static const char *const keys[] = {"reason", NULL};
        if (!(rc = cs_json_parse(r->body.data, r->body.len, &obj, err)) &&
            !json_object_is_type(obj, json_type_object))
            rc = cs_err_set(err, CS_ERR_INVALID, "the body must be a JSON object");
        if (!rc)
            rc = cs_json_only_keys(obj, keys, err);
        if (!rc)
            rc = cs_json_str(obj, "reason", false, CS_REASON_MAX, &reason, err);
    }
    snprintf(actor, sizeof(actor), "agent:%s", r->who.agent.name);
    if (!rc)
        rc = cs_approval_cancel(d->db, r->approval_id, r->who.agent.id, actor, reason, err);
    json_object *st = NULL;
    enum cs_status status;
    if (!rc)
        rc = cs_approval_status(d->db, r->approval_id, r->who.agent.id, &st, &status, err);
    json_object_put(obj);
    if (rc)
        return reply_error(r, c, rc, err, NULL);
    cs_log_ap(CS_LOG_INFO, "api", r->approval_id, "cancelled by %s", r->who.agent.name);
    return reply_json(r, c, 200, st);
}

/* ---- POST /v1/batches/{id}/seal, GET /v1/batches/{id} ---- */

static enum MHD_Result batch_reply(struct api_req *r, struct MHD_Connection *c, struct api_db *d,
                                   unsigned status)
{
    char err[CS_ERRLEN];
    json_object *o = NULL;
    enum cs_err rc = cs_batch_status(d->db, r->who.agent.id, r->params[0], &o, err);
    return rc ? reply_error(r, c, rc, err, NULL) : reply_json(r, c, status, o);
}

enum MHD_Result agent_batch_seal(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    char err[CS_ERRLEN], actor[96];
    json_object *obj = NULL;
    int64_t count = 0;
    static const char *const keys[] = {"count", NULL};
    enum cs_err rc = authenticate(r, c, d, "submit", err);
    if (!rc)
        rc = cs_json_parse(r->body.data ? r->body.data : "", r->body.len, &obj, err);
    if (!rc && !json_object_is_type(obj, json_type_object))
        rc = cs_err_set(err, CS_ERR_INVALID, "the body must be a JSON object");
    if (!rc)
        rc = cs_json_only_keys(obj, keys, err);
    if (!rc)
        rc = cs_json_int(obj, "count", true, 1, CS_BATCH_MAX, 0, &count, err);
    snprintf(actor, sizeof(actor), "agent:%s", r->who.agent.name);
    if (!rc)
        rc = cs_batch_seal(d->db, r->who.agent.id, r->params[0], (int)count, &r->api->keys,
                           r->api->cfg->public_url, actor, err);
    json_object_put(obj);
    return rc ? reply_error(r, c, rc, err, NULL) : batch_reply(r, c, d, 200);
}

enum MHD_Result agent_batch_status(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    char err[CS_ERRLEN];
    enum cs_err rc = authenticate(r, c, d, "read", err);
    return rc ? reply_error(r, c, rc, err, NULL) : batch_reply(r, c, d, 200);
}
