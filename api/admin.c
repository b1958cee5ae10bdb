/*
 * admin.c -- the operator API, /v1/admin/..., behind CS_ADMIN_TOKEN.
 *
 * The same actions as the CLI, through the same functions (lib/cs_admin.c,
 * cs_approval_vote, cs_approval_cancel, cs_audit_verify): this file only
 * maps JSON to their arguments and rows back to JSON. When CS_ADMIN_TOKEN
 * is unset the whole prefix answers 404. Secrets are accepted (grant
 * secret, in the body) but never returned; an API key and an envelope-signing
 * key's secret are returned once, at creation.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "cs_admin.h"
#include "cs_approval.h"
#include "cs_audit.h"
#include "cs_json.h"
#include "cs_log.h"
#include "cs_mem.h"

#define LIST_MAX 64

/* Rows as an array of objects keyed by column name (values as text or null). */
static json_object *rows_json(const PGresult *res)
{
    json_object *arr = json_object_new_array();
    for (int r = 0; r < PQntuples(res); r++) {
        json_object *o = json_object_new_object();
        for (int f = 0; f < PQnfields(res); f++) {
            const char *v = cs_db_str(res, r, f);
            json_object_object_add(o, PQfname(res, f), v ? json_object_new_string(v) : NULL);
        }
        json_object_array_add(arr, o);
    }
    return arr;
}

static enum MHD_Result list(struct api_req *r, struct MHD_Connection *c, struct api_db *d,
                            enum cs_query q, int n, const char *const *p)
{
    char err[CS_ERRLEN];
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(d->db, q, n, p, &res, err);
    if (rc)
        return reply_error(r, c, rc, err, NULL);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "items", rows_json(res));
    PQclear(res);
    return reply_json(r, c, 200, o);
}

static enum MHD_Result created(struct api_req *r, struct MHD_Connection *c, const char *key,
                               const char *id)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, key, json_object_new_string(id));
    return reply_json(r, c, 201, o);
}

/* Reads an array of strings (at most LIST_MAX) into out; borrowed from obj. */
static enum cs_err strings(json_object *obj, const char *key, const char **out, int *n, char *err)
{
    json_object *arr = NULL;
    enum cs_err rc = cs_json_typed(obj, key, false, json_type_array, &arr, err);
    *n = 0;
    if (rc || !arr)
        return rc;
    if (json_object_array_length(arr) > LIST_MAX)
        return cs_err_set(err, CS_ERR_INVALID, "\"%s\": at most %d items", key, LIST_MAX);
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *v = json_object_array_get_idx(arr, i);
        if (!json_object_is_type(v, json_type_string))
            return cs_err_set(err, CS_ERR_INVALID, "\"%s\" must hold strings", key);
        if (strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v))
            return cs_err_set(err, CS_ERR_INVALID, "\"%s\": an item contains a NUL character", key);
        out[(*n)++] = json_object_get_string(v);
    }
    return CS_OK;
}

static enum cs_err body_object(struct api_req *r, const char *const *keys, json_object **obj,
                               char *err)
{
    enum cs_err rc = cs_json_parse(r->body.data ? r->body.data : "", r->body.len, obj, err);
    if (!rc && !json_object_is_type(*obj, json_type_object))
        rc = cs_err_set(err, CS_ERR_INVALID, "the body must be a JSON object");
    if (!rc)
        rc = cs_json_only_keys(*obj, keys, err);
    return rc;
}

static enum cs_err int_field(json_object *o, const char *k, int64_t min, int64_t max, int64_t def,
                             int *out, char *err)
{
    int64_t v = def;
    enum cs_err rc = cs_json_int(o, k, false, min, max, def, &v, err);
    *out = (int)v;
    return rc;
}

/*
 * "link_mode": "signin" (default) or "semi-public", the latter with
 * "link_lifetime_s" (default 900) into *lifetime; 0 for signin.
 */
static enum cs_err link_mode_field(json_object *o, int *lifetime, char *err)
{
    const char *mode = NULL;
    int given = 0;
    *lifetime = 0;
    /* Range-checked even where it does not apply, so a bad value is never silently kept. */
    enum cs_err rc = int_field(o, "link_lifetime_s", 60, 86400, 900, &given, err);
    if (!rc)
        rc = cs_json_str(o, "link_mode", false, 16, &mode, err);
    if (rc || !mode || !strcmp(mode, "signin"))
        return rc;
    if (strcmp(mode, "semi-public"))
        return cs_err_set(err, CS_ERR_INVALID, "link_mode is signin or semi-public");
    *lifetime = given;
    return CS_OK;
}

/* ---- handlers that take a body ---- */

static enum MHD_Result agent_create(struct api_req *r, struct MHD_Connection *c, struct api_db *d,
                                    json_object *o)
{
    const char *name = NULL;
    char err[CS_ERRLEN], id[CS_UUID_STRLEN + 1];
    enum cs_err rc = cs_json_str(o, "name", true, 64, &name, err);
    if (!rc)
        rc = cs_admin_agent_create(d->db, name, id, err);
    return rc ? reply_error(r, c, rc, err, NULL) : created(r, c, "agent_id", id);
}

static enum MHD_Result key_create(struct api_req *r, struct MHD_Connection *c, struct api_db *d,
                                  json_object *o)
{
    const char *agent = r->params[0];
    const char *scopes = NULL;
    char err[CS_ERRLEN], key[CS_API_KEY_LEN + 1], id[CS_UUID_STRLEN + 1], prefix[16];
    enum cs_err rc = cs_json_str(o, "scopes", false, 100, &scopes, err);
    if (!rc)
        rc = cs_admin_key_create(d->db, agent, scopes, key, id, prefix, err);
    if (rc)
        return reply_error(r, c, rc, err, NULL);
    json_object *out = json_object_new_object();
    json_object_object_add(out, "key_id", json_object_new_string(id));
    json_object_object_add(out, "prefix", json_object_new_string(prefix));
    json_object_object_add(out, "api_key", json_object_new_string(key));
    cs_wipe(key, sizeof(key));
    return reply_json(r, c, 201, out);
}

/* A new envelope-signing key (agent key create / rotate): its secret is returned once. */
static enum MHD_Result signing_key_new(struct api_req *r, struct MHD_Connection *c,
                                       struct api_db *d, int overlap)
{
    const char *agent = r->params[0];
    char err[CS_ERRLEN], kid[CS_ENVSIG_KID_LEN + 1], secret[CS_ENVSIG_SECRET_LEN + 1];
    enum cs_err rc = cs_config_require_master_key(r->api->cfg, err);
    if (!rc)
        rc = cs_admin_signing_key_create(d->db, r->api->cfg->master_key, agent, overlap, kid,
                                         secret, err);
    if (rc)
        return reply_error(r, c, rc, err, NULL);
    json_object *out = json_object_new_object();
    json_object_object_add(out, "key_id", json_object_new_string(kid));
    json_object_object_add(out, "agent", json_object_new_string(agent));
    json_object_object_add(out, "secret", json_object_new_string(secret));
    cs_wipe(secret, sizeof(secret));
    return reply_json(r, c, 201, out);
}

static enum MHD_Result signing_key_create(struct api_req *r, struct MHD_Connection *c,
                                          struct api_db *d, json_object *o)
{
    (void)o;
    return signing_key_new(r, c, d, -1);
}

static enum MHD_Result signing_key_rotate(struct api_req *r, struct MHD_Connection *c,
                                          struct api_db *d, json_object *o)
{
    char err[CS_ERRLEN];
    int overlap = 0;
    enum cs_err rc = int_field(o, "overlap_seconds", 0, 2592000, 86400, &overlap, err);
    return rc ? reply_error(r, c, rc, err, NULL) : signing_key_new(r, c, d, overlap);
}

static enum MHD_Result approver_create(struct api_req *r, struct MHD_Connection *c,
                                       struct api_db *d, json_object *o)
{
    struct cs_approver_spec s = {0};
    char err[CS_ERRLEN], id[CS_UUID_STRLEN + 1];
    enum cs_err rc;
    if ((rc = cs_json_str(o, "name", true, 128, &s.name, err)) ||
        (rc = cs_json_str(o, "email", false, 320, &s.email, err)) ||
        (rc = cs_json_str(o, "webhook_url", false, 2048, &s.webhook_url, err)) ||
        (rc = cs_json_str(o, "slack_webhook_url", false, 2048, &s.slack_webhook_url, err)) ||
        (rc = cs_json_str(o, "agent", false, 64, &s.agent, err)) ||
        (rc = cs_json_str(o, "oidc_subject", false, 255, &s.oidc_subject, err)) ||
        (rc = cs_admin_approver_create(d->db, &s, id, err)))
        return reply_error(r, c, rc, err, NULL);
    return created(r, c, "approver_id", id);
}

static enum MHD_Result policy_put(struct api_req *r, struct MHD_Connection *c, struct api_db *d,
                                  json_object *o)
{
    const char *id = r->params[0];
    struct cs_policy_spec s = {.id = id};
    const char *approvers[LIST_MAX], *escalation[LIST_MAX];
    char err[CS_ERRLEN];
    enum cs_err rc;
    s.approvers = approvers;
    s.escalation = escalation;
    if ((rc = cs_json_str(o, "mode", true, 16, &s.mode, err)) ||
        (rc = cs_json_typed(o, "rules", false, json_type_array, &s.rules, err)) ||
        (rc = int_field(o, "quorum", 1, 100, 1, &s.quorum, err)) ||
        (rc = int_field(o, "window_seconds", 1, 2592000, 3600, &s.window_seconds, err)) ||
        (rc = int_field(o, "exec_timeout_ms", 100, 600000, 30000, &s.exec_timeout_ms, err)) ||
        (rc = int_field(o, "max_attempts", 1, 20, 3, &s.max_attempts, err)) ||
        (rc = cs_json_str(o, "amount_field", false, 128, &s.amount_field, err)) ||
        (rc = int_field(o, "reminder_interval_s", 1, 2592000, 0, &s.reminder_interval_s, err)) ||
        (rc = int_field(o, "escalate_after_s", 1, 2592000, 0, &s.escalate_after_s, err)) ||
        (rc = cs_json_bool(o, "require_passkey", false, &s.require_passkey, err)) ||
        (rc = link_mode_field(o, &s.link_lifetime_s, err)) ||
        (rc = strings(o, "approvers", approvers, &s.napprovers, err)) ||
        (rc = strings(o, "escalation", escalation, &s.nescalation, err)) ||
        (rc = cs_admin_policy_set(d->db, &s, err)))
        return reply_error(r, c, rc, err, NULL);
    return created(r, c, "policy_id", id);
}

/* "rate_per_s": a number above 0, at most 100000 (absent: no rate limit). */
static enum cs_err rate_field(json_object *o, double *out, char *err)
{
    json_object *v = NULL;
    *out = 0;
    if (!json_object_object_get_ex(o, "rate_per_s", &v) || json_object_is_type(v, json_type_null))
        return CS_OK;
    if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
        return cs_err_set(err, CS_ERR_INVALID, "\"rate_per_s\" must be a number");
    double d = json_object_get_double(v);
    if (!(d > 0 && d <= 100000))
        return cs_err_set(err, CS_ERR_INVALID, "\"rate_per_s\" is above 0 and at most 100000");
    *out = d;
    return CS_OK;
}

static enum MHD_Result grant_put(struct api_req *r, struct MHD_Connection *c, struct api_db *d,
                                 json_object *o)
{
    const char *id = r->params[0];
    struct cs_grant_spec s = {.id = id};
    const char *bases[LIST_MAX], *agents[LIST_MAX], *secret = NULL;
    char err[CS_ERRLEN];
    enum cs_err rc;
    s.bases = bases;
    s.agents = agents;
    if ((rc = cs_json_str(o, "secret", true, 65536, &secret, err)) ||
        (rc = cs_json_str(o, "policy_id", true, 64, &s.policy_id, err)) ||
        (rc = cs_json_str(o, "inject", false, 16, &s.inject, err)) ||
        (rc = cs_json_str(o, "inject_header", false, 256, &s.inject_header, err)) ||
        (rc = cs_json_bool(o, "idempotency_keys", false, &s.idempotency_keys, err)) ||
        (rc = strings(o, "allowed_bases", bases, &s.nbases, err)) ||
        (rc = strings(o, "agents", agents, &s.nagents, err)) ||
        (rc = rate_field(o, &s.rate_per_s, err)) ||
        (rc = int_field(o, "burst", 1, 100000, 0, &s.burst, err)) ||
        (rc = int_field(o, "max_in_flight", 1, 10000, 0, &s.max_in_flight, err)) ||
        (rc = int_field(o, "exec_deadline_s", 1, 604800, 0, &s.exec_deadline_s, err)) ||
        (rc = cs_json_str(o, "in_progress_pattern", false, 512, &s.in_progress_pattern, err)))
        return reply_error(r, c, rc, err, NULL);
    s.secret = (const unsigned char *)secret;
    s.secret_len = strlen(secret);
    if ((rc = cs_config_require_master_key(r->api->cfg, err)) ||
        (rc = cs_admin_grant_set(d->db, r->api->cfg->master_key, &s, err)))
        return reply_error(r, c, rc, err, NULL);
    return created(r, c, "grant_id", id);
}

static enum MHD_Result delegation_create(struct api_req *r, struct MHD_Connection *c,
                                         struct api_db *d, json_object *o)
{
    const char *approver = NULL, *delegate = NULL, *from = NULL, *until = NULL;
    char err[CS_ERRLEN], id[CS_UUID_STRLEN + 1];
    enum cs_err rc;
    if ((rc = cs_json_str(o, "approver", true, 128, &approver, err)) ||
        (rc = cs_json_str(o, "delegate", true, 128, &delegate, err)) ||
        (rc = cs_json_str(o, "starts_at", false, 64, &from, err)) ||
        (rc = cs_json_str(o, "ends_at", true, 64, &until, err)) ||
        (rc = cs_admin_delegate(d->db, approver, delegate, from, until, id, err)))
        return reply_error(r, c, rc, err, NULL);
    return created(r, c, "delegation_id", id);
}

static enum MHD_Result approval_decide(struct api_req *r, struct MHD_Connection *c,
                                       struct api_db *d, json_object *o)
{
    const char *id = r->params[0];
    const char *as = NULL, *decision = NULL, *reason = NULL;
    char err[CS_ERRLEN];
    enum cs_err rc;
    if ((rc = cs_json_str(o, "approver", true, 128, &as, err)) ||
        (rc = cs_json_str(o, "decision", true, 16, &decision, err)) ||
        (rc = cs_json_str(o, "reason", false, CS_REASON_MAX, &reason, err)))
        return reply_error(r, c, rc, err, NULL);
    if (strcmp(decision, "approve") && strcmp(decision, "deny"))
        return reply_error(r, c, CS_ERR_INVALID, "decision must be approve or deny", NULL);
    struct cs_vote_outcome out;
    if ((rc = cs_approval_operator_vote(d->db, id, as, NULL, strcmp(decision, "approve") == 0,
                                        reason, &out, err)))
        return reply_error(r, c, rc, err, NULL);
    json_object *st = NULL;
    enum cs_status status;
    if ((rc = cs_approval_status(d->db, id, NULL, &st, &status, err)))
        return reply_error(r, c, rc, err, NULL);
    /* status is now (a worker may already be executing it); vote is what this vote made it. */
    json_object *vote = json_object_new_object();
    json_object_object_add(vote, "status", json_object_new_string(cs_status_name(out.status)));
    json_object_object_add(vote, "approvals", json_object_new_int(out.approvals));
    json_object_object_add(vote, "quorum", json_object_new_int(out.quorum));
    json_object_object_add(st, "vote", vote);
    return reply_json(r, c, 200, st);
}

/* ---- dispatch ---- */

static bool authorized(struct api *a, struct MHD_Connection *c)
{
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    const char *tok = a->cfg->admin_token;
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
        return false;
    unsigned char h1[CS_SHA256_LEN], h2[CS_SHA256_LEN];
    cs_sha256(auth + 7, strlen(auth + 7), h1); /* equal-length, constant-time compare */
    cs_sha256(tok, strlen(tok), h2);
    return cs_ct_equal(h1, h2, sizeof(h1));
}

/* ---- handlers without a body ---- */

static enum MHD_Result agents_list(struct api_req *r, struct MHD_Connection *c, struct api_db *d,
                                   json_object *o)
{
    (void)o;
    return list(r, c, d, CS_DB_Q0(AGENT_LIST));
}

static enum MHD_Result keys_list(struct api_req *r, struct MHD_Connection *c, struct api_db *d,
                                 json_object *o)
{
    (void)o;
    const char *p[] = {MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "agent")};
    return list(r, c, d, CS_DB_Q(API_KEY_LIST, p));
}

static enum MHD_Result key_revoke(struct api_req *r, struct MHD_Connection *c, struct api_db *d,
                                  json_object *o)
{
    (void)o;
    const char *p[] = {r->params[0]};
    return list(r, c, d, CS_DB_Q(API_KEY_REVOKE, p));
}

static enum MHD_Result signing_keys_list(struct api_req *r, struct MHD_Connection *c,
                                         struct api_db *d, json_object *o)
{
    (void)o;
    const char *p[] = {MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "agent")};
    return list(r, c, d, CSQ_SIGNING_KEY_LIST, CSP_SIGNING_KEY_LIST, p);
}

static enum MHD_Result signing_key_revoke(struct api_req *r, struct MHD_Connection *c,
                                          struct api_db *d, json_object *o)
{
    (void)o;
    const char *p[] = {r->params[0]};
    return list(r, c, d, CSQ_SIGNING_KEY_REVOKE, CSP_SIGNING_KEY_REVOKE, p);
}

static enum MHD_Result approvers_list(struct api_req *r, struct MHD_Connection *c, struct api_db *d,
                                      json_object *o)
{
    (void)o;
    return list(r, c, d, CS_DB_Q0(APPROVER_LIST));
}

static enum MHD_Result approver_passkeys(struct api_req *r, struct MHD_Connection *c,
                                         struct api_db *d, json_object *o)
{
    (void)o;
    const char *p[] = {NULL, r->params[0]};
    return list(r, c, d, CS_DB_Q(PASSKEY_LIST, p));
}

static enum MHD_Result approver_passkey_revoke(struct api_req *r, struct MHD_Connection *c,
                                               struct api_db *d, json_object *o)
{
    (void)o;
    if (!cs_uuid_valid(r->params[1]))
        return reply_error(r, c, CS_ERR_NOT_FOUND, "no such passkey", NULL);
    const char *p[] = {r->params[1], NULL, r->params[0], "operator:admin-api"};
    return list(r, c, d, CS_DB_Q(PASSKEY_REVOKE, p));
}

static enum MHD_Result approver_sessions(struct api_req *r, struct MHD_Connection *c,
                                         struct api_db *d, json_object *o)
{
    (void)o;
    const char *p[] = {r->params[0]};
    return list(r, c, d, CS_DB_Q(SESSION_LIST, p));
}

/* Signs approver {name} out everywhere. */
static enum MHD_Result approver_sessions_revoke(struct api_req *r, struct MHD_Connection *c,
                                                struct api_db *d, json_object *o)
{
    (void)o;
    char err[CS_ERRLEN];
    long n = 0;
    enum cs_err rc = cs_session_revoke_approver(d->db, r->params[0], "operator:admin-api", &n, err);
    if (rc)
        return reply_error(r, c, rc, err, NULL);
    json_object *out = json_object_new_object();
    json_object_object_add(out, "sessions_revoked", json_object_new_int64(n));
    return reply_json(r, c, 200, out);
}

/* A one-time sign-in link for approver {name}, to hand over through a channel of theirs. */
static enum MHD_Result approver_signin_link(struct api_req *r, struct MHD_Connection *c,
                                            struct api_db *d, json_object *o)
{
    const char *next = NULL;
    char err[CS_ERRLEN];
    const char *p[] = {r->params[0]};
    PGresult *res = NULL;
    char *url = NULL;
    enum cs_err rc = cs_json_str(o, "next", false, CS_NEXT_PATH_MAX, &next, err);
    if (!rc)
        rc = cs_db_exec(d->db, CS_DB_Q(APPROVER_BY_NAME, p), &res, err);
    if (!rc && PQntuples(res) == 0)
        rc = cs_err_set(err, CS_ERR_NOT_FOUND, "no enabled approver by that name");
    if (!rc)
        rc = cs_signin_link_mint(d->db, r->api->cfg, cs_db_str(res, 0, CSC_APPROVER_BY_NAME_ID),
                                 next ? next : "/inbox", "operator", &url, err);
    PQclear(res);
    if (rc)
        return reply_error(r, c, rc, err, NULL);
    json_object *out = json_object_new_object();
    json_object_object_add(out, "url", json_object_new_string(url));
    cs_wipe(url, strlen(url));
    cs_free(url);
    return reply_json(r, c, 201, out);
}

static enum MHD_Result policies_list(struct api_req *r, struct MHD_Connection *c, struct api_db *d,
                                     json_object *o)
{
    (void)o;
    return list(r, c, d, CS_DB_Q0(POLICY_LIST));
}

static enum MHD_Result grants_list(struct api_req *r, struct MHD_Connection *c, struct api_db *d,
                                   json_object *o)
{
    (void)o;
    return list(r, c, d, CS_DB_Q0(GRANT_LIST));
}

static enum MHD_Result grant_flip(struct api_req *r, struct MHD_Connection *c, struct api_db *d,
                                  bool pause)
{
    char err[CS_ERRLEN];
    bool changed = false;
    const char *id = r->params[0];
    enum cs_err rc = pause ? cs_grant_pause(d->db, id, "operator:admin-api", &changed, err)
                           : cs_grant_resume(d->db, id, "operator:admin-api", &changed, err);
    if (rc)
        return reply_error(r, c, rc, err, NULL);
    json_object *out = json_object_new_object();
    json_object_object_add(out, "grant_id", json_object_new_string(id));
    json_object_object_add(out, "paused", json_object_new_boolean(pause));
    json_object_object_add(out, "changed", json_object_new_boolean(changed));
    return reply_json(r, c, 200, out);
}

static enum MHD_Result grant_pause(struct api_req *r, struct MHD_Connection *c, struct api_db *d,
                                   json_object *o)
{
    (void)o;
    return grant_flip(r, c, d, true);
}

static enum MHD_Result grant_resume(struct api_req *r, struct MHD_Connection *c, struct api_db *d,
                                    json_object *o)
{
    (void)o;
    return grant_flip(r, c, d, false);
}

static enum MHD_Result approvals_list(struct api_req *r, struct MHD_Connection *c, struct api_db *d,
                                      json_object *o)
{
    (void)o;
    const char *lim = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
    long n = lim ? strtol(lim, NULL, 10) : 50;
    char nbuf[16];
    snprintf(nbuf, sizeof(nbuf), "%ld", n < 1 ? 1 : n > 1000 ? 1000 : n);
    const char *p[] = {MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "status"), nbuf};
    return list(r, c, d, CS_DB_Q(APPROVAL_LIST, p));
}

static enum MHD_Result approval_get(struct api_req *r, struct MHD_Connection *c, struct api_db *d,
                                    json_object *o)
{
    (void)o;
    char err[CS_ERRLEN];
    json_object *st = NULL;
    enum cs_status status;
    enum cs_err rc = cs_approval_status(d->db, r->params[0], NULL, &st, &status, err);
    return rc ? reply_error(r, c, rc, err, NULL) : reply_json(r, c, 200, st);
}

static enum MHD_Result approval_cancel(struct api_req *r, struct MHD_Connection *c,
                                       struct api_db *d, json_object *o)
{
    (void)o;
    char err[CS_ERRLEN];
    enum cs_err rc = cs_approval_cancel(d->db, r->params[0], NULL, "operator:api", NULL, err);
    return rc ? reply_error(r, c, rc, err, NULL) : approval_get(r, c, d, NULL);
}

static enum MHD_Result audit_list(struct api_req *r, struct MHD_Connection *c, struct api_db *d,
                                  json_object *o)
{
    (void)o;
    const char *after = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "after");
    char a[24];
    snprintf(a, sizeof(a), "%lld", after ? strtoll(after, NULL, 10) : 0LL);
    const char *p[] = {a, "1000"};
    return list(r, c, d, CS_DB_Q(AUDIT_EXPORT, p));
}

static enum MHD_Result audit_verify(struct api_req *r, struct MHD_Connection *c, struct api_db *d,
                                    json_object *o)
{
    (void)o;
    char err[CS_ERRLEN];
    struct cs_audit_report rep;
    enum cs_err rc = cs_audit_verify_cfg(d->db, r->api->cfg, &rep, err);
    if (rc)
        return reply_error(r, c, rc, err, NULL);
    return reply_json(r, c, 200, cs_audit_report_json(&rep));
}

/* ---- dispatch ---- */

static const char *const agent_keys[] = {"name", NULL};
static const char *const key_keys[] = {"scopes", NULL};
static const char *const rotate_keys[] = {"overlap_seconds", NULL};
static const char *const approver_keys[] = {
    "name", "email", "webhook_url", "slack_webhook_url", "agent", "oidc_subject", NULL};
static const char *const signin_keys[] = {"next", NULL};
static const char *const policy_keys[] = {"mode",
                                          "rules",
                                          "quorum",
                                          "window_seconds",
                                          "exec_timeout_ms",
                                          "max_attempts",
                                          "amount_field",
                                          "reminder_interval_s",
                                          "escalate_after_s",
                                          "approvers",
                                          "require_passkey",
                                          "link_mode",
                                          "link_lifetime_s",
                                          "escalation",
                                          NULL};
static const char *const grant_keys[] = {
    "secret", "policy_id",  "inject", "inject_header", "idempotency_keys", "allowed_bases",
    "agents", "rate_per_s", "burst",  "max_in_flight", "exec_deadline_s",  "in_progress_pattern",
    NULL};
static const char *const delegation_keys[] = {"approver", "delegate", "starts_at", "ends_at", NULL};
static const char *const decide_keys[] = {"approver", "decision", "reason", NULL};

/* Checklist when adding a route: this table and api/openapi.json (test_api.py compares). */
static const struct admin_route {
    const char *method;
    const char *pattern;
    enum MHD_Result (*fn)(struct api_req *r, struct MHD_Connection *c, struct api_db *d,
                          json_object *body);
    const char *const *keys; /* accepted body fields; NULL: no body */
} admin_routes[] = {
    {"GET", "/agents", agents_list, NULL},
    {"POST", "/agents", agent_create, agent_keys},
    {"POST", "/agents/{}/keys", key_create, key_keys},
    {"GET", "/keys", keys_list, NULL},
    {"POST", "/keys/{}/revoke", key_revoke, NULL},
    {"POST", "/agents/{}/signing-keys", signing_key_create, NULL},
    {"POST", "/agents/{}/signing-keys/rotate", signing_key_rotate, rotate_keys},
    {"GET", "/signing-keys", signing_keys_list, NULL},
    {"POST", "/signing-keys/{}/revoke", signing_key_revoke, NULL},
    {"GET", "/approvers", approvers_list, NULL},
    {"POST", "/approvers", approver_create, approver_keys},
    {"GET", "/approvers/{}/sessions", approver_sessions, NULL},
    {"GET", "/approvers/{}/passkeys", approver_passkeys, NULL},
    {"POST", "/approvers/{}/passkeys/{}/revoke", approver_passkey_revoke, NULL},
    {"POST", "/approvers/{}/sessions/revoke", approver_sessions_revoke, NULL},
    {"POST", "/approvers/{}/signin-link", approver_signin_link, signin_keys},
    {"GET", "/policies", policies_list, NULL},
    {"PUT", "/policies/{}", policy_put, policy_keys},
    {"GET", "/grants", grants_list, NULL},
    {"PUT", "/grants/{}", grant_put, grant_keys},
    {"POST", "/grants/{}/pause", grant_pause, NULL},
    {"POST", "/grants/{}/resume", grant_resume, NULL},
    {"POST", "/delegations", delegation_create, delegation_keys},
    {"GET", "/approvals", approvals_list, NULL},
    {"GET", "/approvals/{}", approval_get, NULL},
    {"POST", "/approvals/{}/decide", approval_decide, decide_keys},
    {"POST", "/approvals/{}/cancel", approval_cancel, NULL},
    {"GET", "/audit", audit_list, NULL},
    {"GET", "/audit/verify", audit_verify, NULL},
};

static enum MHD_Result route(struct api_req *r, struct MHD_Connection *c, struct api_db *d,
                             const char *m, const char *path)
{
    bool other_method = false;
    for (size_t i = 0; i < sizeof(admin_routes) / sizeof(admin_routes[0]); i++) {
        const struct admin_route *rt = &admin_routes[i];
        if (!router_match(rt->pattern, path, r))
            continue;
        if (strcmp(rt->method, m) != 0) {
            other_method = true;
            router_allow(r, rt->method);
            continue;
        }
        if (!rt->keys)
            return rt->fn(r, c, d, NULL);
        char err[CS_ERRLEN];
        json_object *o = NULL;
        /* A route with a body accepts an empty one as {} (e.g. a key with default scopes). */
        enum cs_err rc = r->body.len ? body_object(r, rt->keys, &o, err) : CS_OK;
        if (!rc && !o)
            o = json_object_new_object();
        enum MHD_Result ret = rc ? reply_error(r, c, rc, err, NULL) : rt->fn(r, c, d, o);
        json_object_put(o);
        return ret;
    }
    if (other_method)
        return reply_error(r, c, CS_ERR_METHOD, NULL, NULL);
    return reply_error(r, c, CS_ERR_NOT_FOUND, "no such admin route", NULL);
}

enum MHD_Result admin_route(struct api_req *r, struct MHD_Connection *c, struct api_db *d,
                            const char *method, const char *path)
{
    struct api *a = r->api;
    if (!a->cfg->admin_token)
        return reply_error(r, c, CS_ERR_NOT_FOUND, "the admin API is disabled (CS_ADMIN_TOKEN)",
                           NULL);
    if (!authorized(a, c))
        return reply_error(r, c, CS_ERR_UNAUTHENTICATED, "admin token required", NULL);
    return route(r, c, d, method, path);
}
