/*
 * cs_admin.c -- operator actions for the CLI and the admin API (see cs_admin.h).
 */
#include "cs_admin.h"

#include <stdio.h>
#include <string.h>

#include "cs_catalog.h"
#include "cs_ident.h"
#include "cs_json.h"
#include "cs_mem.h"
#include "cs_policy.h"
#include "cs_request.h"
#include "cs_url.h"

/* Runs q expecting a row back; `what` names the refusal when none. */
static enum cs_err exec_one(struct cs_db *db, enum cs_query q, int n, const char *const *p,
                            enum cs_err none, const char *what, char *err)
{
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(db, q, n, p, &res, err);
    if (!rc && PQntuples(res) == 0)
        rc = cs_err_set(err, none, "%s", what);
    PQclear(res);
    return rc;
}

enum cs_err cs_admin_agent_create(struct cs_db *db, const char *name, char id[CS_UUID_STRLEN + 1],
                                  char *err)
{
    if (!cs_ident_valid(name, CS_IDENT_AGENT))
        return cs_err_set(err, CS_ERR_INVALID, "an agent name is %s",
                          cs_ident_rule(CS_IDENT_AGENT));
    cs_uuid_v7(id);
    const char *p[] = {id, name};
    enum cs_err rc = exec_one(db, CS_DB_Q(AGENT_CREATE, p), CS_ERR_INTERNAL, "not created", err);
    if (rc == CS_ERR_DUPLICATE)
        return cs_err_set(err, rc, "an agent named \"%.64s\" exists", name);
    return rc;
}

enum cs_err cs_admin_key_create(struct cs_db *db, const char *agent, const char *scopes,
                                char key[CS_API_KEY_LEN + 1], char id[CS_UUID_STRLEN + 1],
                                char prefix[16], char *err)
{
    unsigned char raw[32], hash[CS_SHA256_LEN];
    char hex[2 * CS_SHA256_LEN + 1], scope_list[128];
    const char *s = scopes ? scopes : "submit,read";
    bool ok = true; /* ^(submit|read)(,(submit|read))*$, as api/openapi.json says */
    for (const char *t = s;; t++) {
        size_t n = strcspn(t, ",");
        ok = ok && ((n == 6 && !strncmp(t, "submit", 6)) || (n == 4 && !strncmp(t, "read", 4)));
        if (!t[n])
            break;
        t += n;
    }
    if (!ok || strlen(s) > 20)
        return cs_err_set(err, CS_ERR_INVALID, "scopes are submit, read or submit,read");
    snprintf(scope_list, sizeof(scope_list), "{%s}", s);
    cs_random_bytes(raw, sizeof(raw));
    memcpy(key, "cs_", 3);
    cs_b64_encode_to(raw, sizeof(raw), true, key + 3);
    cs_wipe(raw, sizeof(raw));
    cs_sha256(key, strlen(key), hash);
    cs_hex_encode(hash, sizeof(hash), hex);
    cs_strlcpy(prefix, key, 12);
    cs_uuid_v7(id);
    const char *p[] = {id, agent, hex, prefix, scope_list};
    enum cs_err rc = exec_one(db, CS_DB_Q(API_KEY_CREATE, p), CS_ERR_UNKNOWN_AGENT,
                              "no enabled agent by that name", err);
    if (rc)
        cs_wipe(key, CS_API_KEY_LEN + 1);
    return rc;
}

enum cs_err cs_admin_signing_key_create(struct cs_db *db, const unsigned char master[32],
                                        const char *agent, int rotate_overlap_s,
                                        char kid[CS_ENVSIG_KID_LEN + 1],
                                        char secret[CS_ENVSIG_SECRET_LEN + 1], char *err)
{
    unsigned char raw[32], *blob = NULL;
    size_t bloblen = 0;
    char overlap[16];
    cs_random_bytes(raw, 8);
    memcpy(kid, "csk_", 4);
    cs_hex_encode(raw, 8, kid + 4);
    cs_random_bytes(raw, sizeof(raw));
    cs_hex_encode(raw, sizeof(raw), secret);
    cs_wipe(raw, sizeof(raw));
    cs_signing_key_seal(master, kid, secret, &blob, &bloblen);
    char *hex = cs_malloc(2 * bloblen + 1);
    cs_hex_encode(blob, bloblen, hex);
    cs_free(blob);
    snprintf(overlap, sizeof(overlap), "%d", rotate_overlap_s);
    const char *rp[] = {agent, overlap}, *p[] = {kid, agent, hex};
    enum cs_err rc = cs_db_begin(db, err);
    if (!rc && rotate_overlap_s >= 0)
        rc = cs_db_exec(db, CS_DB_Q(SIGNING_KEY_RETIRE, rp), NULL, err);
    if (!rc)
        rc = exec_one(db, CS_DB_Q(SIGNING_KEY_CREATE, p), CS_ERR_CONFLICT,
                      "no enabled agent by that name, or it has two live signing keys already "
                      "(rotate or revoke one)",
                      err);
    if (!rc)
        rc = cs_db_commit(db, err);
    if (rc) {
        cs_db_rollback(db);
        cs_wipe(secret, CS_ENVSIG_SECRET_LEN + 1);
    }
    cs_free(hex);
    return rc;
}

enum cs_err cs_admin_approver_create(struct cs_db *db, const struct cs_approver_spec *s,
                                     char id[CS_UUID_STRLEN + 1], char *err)
{
    const char *urls[] = {s->webhook_url, s->slack_webhook_url};
    for (int i = 0; i < 2; i++) {
        enum cs_err rc = urls[i] ? cs_url_base_valid(urls[i], err) : CS_OK;
        if (rc)
            return rc;
    }
    if (s->email && (!strchr(s->email, '@') || strpbrk(s->email, " <>\r\n,;")))
        return cs_err_set(err, CS_ERR_INVALID, "not an email address");
    if (s->oidc_subject) {
        size_t n = strlen(s->oidc_subject);
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)s->oidc_subject[i] < 0x20 || s->oidc_subject[i] == 0x7f)
                n = 0;
        if (n < 1 || n > 255)
            return cs_err_set(err, CS_ERR_INVALID, "an OpenID subject is 1-255 printable bytes");
    }
    cs_uuid_v7(id);
    const char *p[] = {id,       s->name,        s->email, s->webhook_url, s->slack_webhook_url,
                       s->agent, s->oidc_subject};
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(db, CS_DB_Q(APPROVER_CREATE, p), &res, err);
    bool agent_ok = !rc && cs_db_bool(res, 0, CSC_APPROVER_CREATE_AGENT_OK);
    PQclear(res);
    if (rc == CS_ERR_DUPLICATE)
        return cs_err_set(err, rc,
                          "an approver named \"%.64s\" (or with that OpenID subject) "
                          "exists",
                          s->name);
    if (!rc && !agent_ok)
        return cs_err_set(err, CS_ERR_UNKNOWN_AGENT,
                          "approver created, but no agent is named \"%.64s\"", s->agent);
    return rc;
}

static enum cs_err policy_tx(struct cs_db *db, const struct cs_policy_spec *s, const char *rules,
                             char *err)
{
    char q[16], w[16], t[16], at[16], rm[16], es[16], ll[16];
    snprintf(q, sizeof(q), "%d", s->quorum);
    snprintf(w, sizeof(w), "%d", s->window_seconds);
    snprintf(t, sizeof(t), "%d", s->exec_timeout_ms);
    snprintf(at, sizeof(at), "%d", s->max_attempts);
    snprintf(rm, sizeof(rm), "%d", s->reminder_interval_s);
    snprintf(es, sizeof(es), "%d", s->escalate_after_s);
    snprintf(ll, sizeof(ll), "%d", s->link_lifetime_s);
    const char *p[] = {s->id,
                       s->mode,
                       rules,
                       q,
                       w,
                       t,
                       at,
                       s->amount_field,
                       s->reminder_interval_s ? rm : NULL,
                       s->escalate_after_s ? es : NULL,
                       s->require_passkey ? "true" : "false",
                       s->link_lifetime_s ? "semi-public" : "signin",
                       s->link_lifetime_s ? ll : NULL};
    const char *cp[] = {s->id};
    enum cs_err rc = exec_one(db, CS_DB_Q(POLICY_UPSERT, p), CS_ERR_INTERNAL, "not stored", err);
    if (!rc)
        rc = cs_db_exec(db, CS_DB_Q(POLICY_CLEAR_APPROVERS, cp), NULL, err);
    for (int tier = 0; tier < 2 && !rc; tier++) {
        const char *const *names = tier ? s->escalation : s->approvers;
        int n = tier ? s->nescalation : s->napprovers;
        for (int i = 0; i < n && !rc; i++) {
            const char *ap[] = {s->id, names[i], tier ? "true" : "false"};
            rc = exec_one(db, CS_DB_Q(POLICY_ADD_APPROVER, ap), CS_ERR_NOT_FOUND, "", err);
            if (rc == CS_ERR_NOT_FOUND)
                cs_err_set(err, rc, "no enabled approver named \"%.64s\"", names[i]);
        }
    }
    return rc;
}

enum cs_err cs_admin_policy_set(struct cs_db *db, const struct cs_policy_spec *s, char *err)
{
    if (!cs_ident_valid(s->id, CS_IDENT_ID))
        return cs_err_set(err, CS_ERR_INVALID, "a policy id is %s", cs_ident_rule(CS_IDENT_ID));
    int mode = s->mode ? cs_policy_mode_parse(s->mode) : -1;
    if (mode < 0)
        return cs_err_set(err, CS_ERR_INVALID, "mode must be always, never or rules");
    json_object *empty = json_object_new_array();
    json_object *rules = s->rules ? s->rules : empty;
    enum cs_err rc = cs_policy_rules_validate(rules, err);
    if (!rc && mode == CS_POLICY_RULES && json_object_array_length(rules) == 0)
        rc = cs_err_set(err, CS_ERR_INVALID, "mode rules needs at least one rule");
    if (!rc && (s->quorum < 1 || (mode != CS_POLICY_NEVER && s->quorum > s->napprovers)))
        rc = cs_err_set(err, CS_ERR_POLICY,
                        "quorum %d needs at least as many approvers (got %d): refused", s->quorum,
                        s->napprovers);
    for (int i = 0; !rc && i < s->napprovers + s->nescalation; i++)
        for (int k = 0; !rc && k < i; k++) {
            const char *x = i < s->napprovers ? s->approvers[i] : s->escalation[i - s->napprovers];
            const char *y = k < s->napprovers ? s->approvers[k] : s->escalation[k - s->napprovers];
            if (!strcmp(x, y))
                rc = cs_err_set(err, CS_ERR_UNPROCESSABLE, "approver \"%.64s\" is listed twice", x);
        }
    if (!rc && (s->window_seconds < 1 || s->window_seconds > 2592000))
        rc = cs_err_set(err, CS_ERR_INVALID, "the window is 1 s to 30 days");
    if (!rc && s->link_lifetime_s && (s->link_lifetime_s < 60 || s->link_lifetime_s > 86400))
        rc = cs_err_set(err, CS_ERR_INVALID, "a semi-public link lives 60 s to 1 day");
    if (!rc && s->link_lifetime_s && (s->quorum > 1 || s->require_passkey))
        rc = cs_err_set(err, CS_ERR_POLICY,
                        "the semi-public link mode is refused with a quorum above 1 or with "
                        "require_passkey: a link holder is nobody in particular");
    if (!rc)
        rc = cs_db_begin(db, err);
    if (!rc)
        rc = policy_tx(db, s, cs_json_text(rules, NULL), err);
    if (!rc)
        rc = cs_db_commit(db, err);
    if (rc)
        cs_db_rollback(db);
    json_object_put(empty);
    return rc;
}

static json_object *bases_json(const char *const *bases, int n, enum cs_err *rc, char *err)
{
    json_object *arr = json_object_new_array();
    for (int i = 0; i < n && !*rc; i++) {
        *rc = cs_url_base_valid(bases[i], err);
        json_object_array_add(arr, json_object_new_string(bases[i]));
    }
    if (!*rc && n == 0)
        *rc = cs_err_set(err, CS_ERR_INVALID, "at least one allowed base URL is required");
    if (!*rc && n > CS_GRANT_BASES_MAX)
        *rc = cs_err_set(err, CS_ERR_INVALID, "at most %d allowed base URLs", CS_GRANT_BASES_MAX);
    return arr;
}

static enum cs_err grant_limits_valid(const struct cs_grant_spec *s, char *err)
{
    if (s->rate_per_s < 0 || s->rate_per_s > 100000 || s->rate_per_s != s->rate_per_s)
        return cs_err_set(err, CS_ERR_INVALID, "a rate is above 0 and at most 100000 calls/s");
    if (s->burst && s->rate_per_s <= 0)
        return cs_err_set(err, CS_ERR_INVALID, "a burst goes with a rate");
    if (s->burst < 0 || s->burst > 100000)
        return cs_err_set(err, CS_ERR_INVALID, "a burst is 1-100000 calls");
    if (s->max_in_flight < 0 || s->max_in_flight > 10000)
        return cs_err_set(err, CS_ERR_INVALID, "max in flight is 1-10000 calls");
    if (s->exec_deadline_s < 0 || s->exec_deadline_s > 604800)
        return cs_err_set(err, CS_ERR_INVALID, "an execution deadline is 1 s to 7 days");
    return s->in_progress_pattern ? cs_in_progress_pattern_valid(s->in_progress_pattern, err)
                                  : CS_OK;
}

enum cs_err cs_admin_grant_set(struct cs_db *db, const unsigned char master[32],
                               const struct cs_grant_spec *s, char *err)
{
    if (!cs_ident_valid(s->id, CS_IDENT_ID))
        return cs_err_set(err, CS_ERR_INVALID, "a grant id is %s", cs_ident_rule(CS_IDENT_ID));
    const char *inject = s->inject ? s->inject : "bearer";
    int kind = cs_inject_parse(inject);
    if (kind < 0)
        return cs_err_set(err, CS_ERR_INVALID, "inject must be bearer, basic or header");
    if ((kind == CS_INJECT_HEADER) != (s->inject_header != NULL))
        return cs_err_set(err, CS_ERR_INVALID,
                          "a header name goes with inject=header, and only with it");
    if (s->inject_header && cs_header_forbidden(s->inject_header))
        return cs_err_set(err, CS_ERR_INVALID, "the header %s is managed by Countersign",
                          s->inject_header);
    if (!s->policy_id)
        return cs_err_set(err, CS_ERR_INVALID, "a policy is required");
    if (!s->secret || s->secret_len == 0 || s->secret_len > 65536)
        return cs_err_set(err, CS_ERR_INVALID, "the secret must be 1..65536 bytes");
    enum cs_err rc = grant_limits_valid(s, err);
    if (rc)
        return rc;
    json_object *bases = bases_json(s->bases, s->nbases, &rc, err);
    unsigned char *blob = NULL;
    size_t bloblen = 0;
    char *hex = NULL;
    if (!rc) {
        cs_grant_seal_secret(master, s->id, s->secret, s->secret_len, &blob, &bloblen);
        hex = cs_malloc(2 * bloblen + 1);
        cs_hex_encode(blob, bloblen, hex);
        cs_free(blob);
    }
    char rate[32], burst[16], inflight[16], deadline[16];
    snprintf(rate, sizeof(rate), "%.17g", s->rate_per_s);
    snprintf(burst, sizeof(burst), "%d", s->burst);
    snprintf(inflight, sizeof(inflight), "%d",
             s->max_in_flight ? s->max_in_flight : CS_GRANT_MAX_IN_FLIGHT);
    snprintf(deadline, sizeof(deadline), "%d",
             s->exec_deadline_s ? s->exec_deadline_s : CS_GRANT_EXEC_DEADLINE_S);
    const char *p[] = {s->id,
                       hex,
                       inject,
                       s->inject_header,
                       cs_json_text(bases, NULL),
                       s->idempotency_keys ? "true" : "false",
                       s->policy_id,
                       s->rate_per_s > 0 ? rate : NULL,
                       s->burst ? burst : NULL,
                       inflight,
                       deadline,
                       s->in_progress_pattern};
    if (!rc)
        rc = cs_db_begin(db, err);
    if (!rc)
        rc = exec_one(db, CS_DB_Q(GRANT_UPSERT, p), CS_ERR_INTERNAL, "not stored", err);
    if (rc == CS_ERR_INVALID && strstr(err, "policies"))
        cs_err_set(err, rc = CS_ERR_NOT_FOUND, "no policy \"%.64s\"", s->policy_id);
    for (int i = 0; i < s->nagents && !rc; i++) {
        const char *bp[] = {s->id, s->agents[i]};
        rc = cs_db_exec(db, CS_DB_Q(GRANT_BIND_AGENT, bp), NULL, err);
        if (rc == CS_ERR_INVALID)
            cs_err_set(err, rc = CS_ERR_UNKNOWN_AGENT, "no agent \"%.64s\"", s->agents[i]);
    }
    if (!rc)
        rc = cs_db_commit(db, err);
    if (rc)
        cs_db_rollback(db);
    cs_free(hex);
    json_object_put(bases);
    return rc;
}

enum cs_err cs_admin_grant_bases(struct cs_db *db, const char *id, const char *const *bases,
                                 int nbases, char *err)
{
    enum cs_err rc = CS_OK;
    json_object *arr = bases_json(bases, nbases, &rc, err);
    const char *p[] = {id, cs_json_text(arr, NULL)};
    if (!rc)
        rc = exec_one(db, CS_DB_Q(GRANT_SET_BASES, p), CS_ERR_UNKNOWN_GRANT, "no such grant", err);
    json_object_put(arr);
    return rc;
}

/* grant_pause and grant_resume take and answer the same. */
_Static_assert((int)CSP_GRANT_PAUSE == 2 && (int)CSP_GRANT_RESUME == 2 &&
                   (int)CSC_GRANT_PAUSE_CHANGED == (int)CSC_GRANT_RESUME_CHANGED,
               "grant_pause and grant_resume differ");

static enum cs_err grant_flip(struct cs_db *db, enum cs_query q, const char *id, const char *actor,
                              bool *changed, char *err)
{
    const char *p[CSP_GRANT_PAUSE] = {id, actor};
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(db, q, CSP_GRANT_PAUSE, p, &res, err);
    if (!rc && PQntuples(res) == 0)
        rc = cs_err_set(err, CS_ERR_UNKNOWN_GRANT, "no grant \"%.64s\"", id);
    if (!rc && changed)
        *changed = cs_db_bool(res, 0, CSC_GRANT_PAUSE_CHANGED);
    PQclear(res);
    return rc;
}

enum cs_err cs_grant_pause(struct cs_db *db, const char *id, const char *actor, bool *changed,
                           char *err)
{
    return grant_flip(db, CSQ_GRANT_PAUSE, id, actor, changed, err);
}

enum cs_err cs_grant_resume(struct cs_db *db, const char *id, const char *actor, bool *changed,
                            char *err)
{
    return grant_flip(db, CSQ_GRANT_RESUME, id, actor, changed, err);
}

enum cs_err cs_admin_delegate(struct cs_db *db, const char *approver, const char *delegate,
                              const char *from, const char *until, char id[CS_UUID_STRLEN + 1],
                              char *err)
{
    if (strcmp(approver, delegate) == 0)
        return cs_err_set(err, CS_ERR_UNPROCESSABLE, "an approver cannot delegate to themselves");
    cs_uuid_v7(id);
    const char *p[] = {id, approver, delegate, from ? from : "now", until};
    enum cs_err rc = exec_one(db, CS_DB_Q(DELEGATION_CREATE, p), CS_ERR_CONFLICT,
                              "no such approvers, or the delegate already delegates to this "
                              "approver in that period (a loop)",
                              err);
    /* The table's CHECK (ends_at > starts_at): well-formed times, an empty period. */
    if (rc == CS_ERR_INVALID && strstr(err, "delegations_check"))
        rc = cs_err_set(err, CS_ERR_UNPROCESSABLE, "the delegation must end after it starts");
    return rc;
}
