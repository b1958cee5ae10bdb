/*
 * cs_batch.c -- batch admission, sealing, decisions and status (see cs_batch.h).
 *
 * Runs in the worker (Kafka ingest: members and seal messages) and in the
 * api (HTTP members, POST /v1/batches/{id}/seal, the batch page). The batch
 * row is the lock: every change to a batch starts with batch_lock (FOR
 * UPDATE), so members and seals racing on different connections serialise
 * and exactly one transaction sees the batch become complete.
 */
#include "cs_batch.h"

#include <stdio.h>
#include <string.h>

#include "cs_ident.h"
#include "cs_json.h"
#include "cs_link.h"
#include "cs_log.h"
#include "cs_map.h"
#include "cs_mem.h"
#include "cs_time.h"

struct batch_state {
    char uid[CS_UUID_STRLEN + 1];
    char agent_id[CS_UUID_STRLEN + 1];
    char batch_id[136];
    char grant_id[72], policy_id[72], status[16];
    int expected; /* -1 until sealed */
    int members;
    int64_t expires_ms; /* 0 until the first member */
    bool expired;
    int admitted; /* members admitted in this transaction */
    int stored;   /* of which the insert stored */
};

struct cs_batch_tx {
    struct cs_map *batches; /* "agent|batch" -> struct batch_state */
    struct cs_map *members; /* "agent|request id" admitted in this transaction */
};

bool cs_batch_is_seal(json_object *obj)
{
    json_object *t = NULL;
    return json_object_is_type(obj, json_type_object) &&
           json_object_object_get_ex(obj, "type", &t) && json_object_is_type(t, json_type_string) &&
           strcmp(json_object_get_string(t), "seal") == 0;
}

enum cs_err cs_batch_seal_parse(json_object *obj, struct cs_seal *s, char *err)
{
    static const char *const keys[] = {"type", "agent", "batch_id", "count", NULL};
    const char *agent = NULL, *batch = NULL;
    int64_t count = 0;
    enum cs_err rc;
    memset(s, 0, sizeof(*s));
    if ((rc = cs_json_only_keys(obj, keys, err)) ||
        (rc = cs_json_str(obj, "agent", true, 64, &agent, err)) ||
        (rc = cs_json_str(obj, "batch_id", true, 128, &batch, err)) ||
        (rc = cs_json_int(obj, "count", true, 1, CS_BATCH_MAX, 0, &count, err)))
        return rc;
    if (!cs_ident_valid(agent, CS_IDENT_AGENT))
        return cs_err_set(err, CS_ERR_INVALID, "\"agent\" must be %s",
                          cs_ident_rule(CS_IDENT_AGENT));
    if (!cs_ident_valid(batch, CS_IDENT_BATCH))
        return cs_err_set(err, CS_ERR_INVALID, "\"batch_id\" must be %s",
                          cs_ident_rule(CS_IDENT_BATCH));
    s->agent = cs_strdup(agent);
    s->batch_id = cs_strdup(batch);
    s->count = (int)count;
    return CS_OK;
}

void cs_batch_seal_free(struct cs_seal *s)
{
    cs_free(s->agent);
    cs_free(s->batch_id);
    memset(s, 0, sizeof(*s));
}

struct cs_batch_tx *cs_batch_tx_new(void)
{
    struct cs_batch_tx *t = cs_calloc(1, sizeof(*t));
    t->batches = cs_map_new();
    t->members = cs_map_new();
    return t;
}

void cs_batch_tx_free(struct cs_batch_tx *t)
{
    if (!t)
        return;
    cs_map_free(t->batches, cs_free);
    cs_map_free(t->members, NULL);
    cs_free(t);
}

/* Creates (if needed) and locks the batch; fills s. */
static enum cs_err lock(struct cs_db *db, const char *agent_id, const char *batch_id,
                        struct batch_state *s, char *err)
{
    char uid[CS_UUID_STRLEN + 1];
    cs_uuid_v7(uid);
    const char *op[] = {uid, agent_id, batch_id};
    const char *lp[] = {agent_id, batch_id};
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(db, CS_DB_Q(BATCH_OPEN, op), NULL, err);
    if (!rc)
        rc = cs_db_exec(db, CS_DB_Q(BATCH_LOCK, lp), &res, err);
    if (!rc && PQntuples(res) != 1)
        rc = cs_err_set(err, CS_ERR_INTERNAL, "batch %s vanished", batch_id);
    if (!rc) {
        cs_strlcpy(s->uid, cs_db_str(res, 0, CSC_BATCH_LOCK_UID), sizeof(s->uid));
        cs_strlcpy(s->agent_id, agent_id, sizeof(s->agent_id));
        cs_strlcpy(s->batch_id, batch_id, sizeof(s->batch_id));
        cs_strlcpy(s->grant_id, cs_db_text(res, 0, CSC_BATCH_LOCK_GRANT_ID), sizeof(s->grant_id));
        cs_strlcpy(s->policy_id, cs_db_text(res, 0, CSC_BATCH_LOCK_POLICY_ID),
                   sizeof(s->policy_id));
        cs_strlcpy(s->status, cs_db_str(res, 0, CSC_BATCH_LOCK_STATUS), sizeof(s->status));
        s->expected = cs_db_str(res, 0, CSC_BATCH_LOCK_EXPECTED)
                          ? (int)cs_db_int(res, 0, CSC_BATCH_LOCK_EXPECTED)
                          : -1;
        s->members = (int)cs_db_int(res, 0, CSC_BATCH_LOCK_MEMBERS);
        s->expires_ms = cs_db_int(res, 0, CSC_BATCH_LOCK_EXPIRES_MS);
        s->expired = cs_db_bool(res, 0, CSC_BATCH_LOCK_EXPIRED);
    }
    PQclear(res);
    return rc;
}

static bool member_exists(struct cs_db *db, const char *agent_id, const char *request_id)
{
    const char *p[] = {agent_id, request_id};
    PGresult *res = NULL;
    char err[CS_ERRLEN];
    bool yes = request_id && cs_db_exec(db, CS_DB_Q(BATCH_MEMBER_EXISTS, p), &res, err) == CS_OK &&
               cs_db_bool(res, 0, CSC_BATCH_MEMBER_EXISTS_FOUND);
    PQclear(res);
    return yes;
}

static enum cs_err bind(struct cs_db *db, struct batch_state *s, const struct cs_grant *g,
                        char *err)
{
    struct cs_buf policy, approvers;
    cs_buf_init(&policy, CS_APPROVAL_ROWS_MAX);
    cs_buf_init(&approvers, CS_APPROVAL_ROWS_MAX);
    char quorum[16], expires[24];
    s->expires_ms = cs_now_ms() + (int64_t)g->policy->window_seconds * 1000;
    snprintf(quorum, sizeof(quorum), "%d", g->policy->quorum);
    snprintf(expires, sizeof(expires), "%lld", (long long)s->expires_ms);
    enum cs_err rc = cs_approval_policy_write(&policy, &approvers, g);
    const char *p[] = {s->uid, g->id, g->policy->id, policy.data, approvers.data, quorum, expires};
    if (rc)
        rc = cs_err_set(err, rc, "the policy of grant %s is too large", g->id);
    else
        rc = cs_db_exec(db, CS_DB_Q(BATCH_BIND, p), NULL, err);
    cs_buf_free(&policy);
    cs_buf_free(&approvers);
    if (!rc) {
        cs_strlcpy(s->grant_id, g->id, sizeof(s->grant_id));
        cs_strlcpy(s->policy_id, g->policy->id, sizeof(s->policy_id));
    }
    return rc;
}

enum cs_err cs_batch_tx_admit(struct cs_batch_tx *t, struct cs_db *db, const struct cs_request *rq,
                              const struct cs_agent *agent, const struct cs_grant *g,
                              int64_t *expires_ms, char *err)
{
    char key[256];
    snprintf(key, sizeof(key), "%s|%s", agent->id, rq->batch_id);
    struct batch_state *s = cs_map_get(t->batches, key);
    enum cs_err rc;
    if (!s) {
        s = cs_calloc(1, sizeof(*s));
        if ((rc = lock(db, agent->id, rq->batch_id, s, err))) {
            cs_free(s);
            return rc;
        }
        cs_map_put(t->batches, key, s);
    }
    *expires_ms = s->expires_ms; /* (a copy the insert skips below keeps the lock's) */
    if (g->policy->quorum < 1 || g->policy->napprovers < g->policy->quorum)
        return cs_err_set(err, CS_ERR_POLICY, "a batch needs a policy with approvers and a quorum");
    if (g->policy->require_passkey)
        return cs_err_set(err, CS_ERR_POLICY,
                          "policy %s requires passkey-signed votes, which batch decisions do not "
                          "carry yet: use a policy without --require-passkey for batches",
                          g->policy->id);
    if (g->policy->link_lifetime_s)
        return cs_err_set(err, CS_ERR_POLICY,
                          "policy %s uses semi-public links, which are refused for batches: "
                          "batch approvers sign in",
                          g->policy->id);
    /* The same member twice in one transaction (a redelivery within the poll): the
     * insert skips the copy, so it is neither counted nor refused. */
    char mkey[256];
    snprintf(mkey, sizeof(mkey), "%s|%s", agent->id, rq->request_id);
    if (cs_map_get(t->members, mkey))
        return CS_OK;
    bool full = s->expected >= 0 && s->members + s->admitted >= s->expected;
    if (s->expired || strcmp(s->status, "open") != 0 || full) {
        if (member_exists(db, agent->id, rq->request_id))
            return CS_OK; /* a redelivered member: the insert skips it */
        if (s->expired)
            return cs_err_set(err, CS_ERR_EXPIRED, "batch %s: its approval window has elapsed",
                              rq->batch_id);
        return cs_err_set(err, CS_ERR_CONFLICT,
                          "batch %s is %s (sealed for %d members, all stored): a member after "
                          "that is refused",
                          rq->batch_id, strcmp(s->status, "open") ? s->status : "complete",
                          s->expected);
    }
    if (!s->grant_id[0]) {
        if ((rc = bind(db, s, g, err)))
            return rc;
    } else if (strcmp(s->grant_id, g->id) || strcmp(s->policy_id, g->policy->id)) {
        return cs_err_set(err, CS_ERR_CONFLICT,
                          "batch %s uses grant %s (policy %s); this member uses grant %s "
                          "(policy %s): refused",
                          rq->batch_id, s->grant_id, s->policy_id, g->id, g->policy->id);
    }
    /* A member waits for the batch decision: its row is written pending, in the batch's window. */
    *expires_ms = s->expires_ms;
    s->admitted++;
    cs_map_put(t->members, mkey, t);
    return CS_OK;
}

/* ---- decidable ---- */

static enum cs_err decidable_event(struct cs_db *db, const PGresult *d,
                                   const struct cs_link_keys *keys, const char *public_url,
                                   char *err)
{
    const char *uid = cs_db_str(d, 0, CSC_BATCH_DECIDABLE_UID);
    const char *p[] = {uid};
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(db, CS_DB_Q(BATCH_LINKS, p), &res, err);
    if (rc)
        return rc;
    char iso[CS_TIME_ISO_LEN], event_key[256], event_id[64], path[CS_LINK_PATH_MAX];
    json_object *o = json_object_new_object(), *approvers = json_object_new_array();
    for (int i = 0; i < PQntuples(res); i++)
        json_object_array_add(approvers,
                              json_object_new_string(cs_db_str(res, i, CSC_BATCH_LINKS_SLOT)));
    PQclear(res);
    snprintf(event_id, sizeof(event_id), "batch:%s:decidable", uid);
    json_object_object_add(o, "event_id", json_object_new_string(event_id));
    json_object_object_add(o, "type", json_object_new_string("batch.decidable"));
    json_object_object_add(o, "batch_id",
                           json_object_new_string(cs_db_str(d, 0, CSC_BATCH_DECIDABLE_ID)));
    json_object_object_add(o, "batch_uid", json_object_new_string(uid));
    json_object_object_add(o, "agent_id",
                           json_object_new_string(cs_db_str(d, 0, CSC_BATCH_DECIDABLE_AGENT_ID)));
    json_object_object_add(o, "members",
                           json_object_new_int64(cs_db_int(d, 0, CSC_BATCH_DECIDABLE_MEMBERS)));
    json_object_object_add(o, "digest",
                           json_object_new_string(cs_db_str(d, 0, CSC_BATCH_DECIDABLE_DIGEST_HEX)));
    json_object_object_add(
        o, "expires_at",
        json_object_new_string(cs_time_iso(cs_db_int(d, 0, CSC_BATCH_DECIDABLE_EXPIRES_MS), iso)));
    cs_link_batch_path(keys, uid, cs_db_int(d, 0, CSC_BATCH_DECIDABLE_EXPIRES_MS), path);
    char *url = cs_link_url(public_url, path);
    json_object_object_add(o, "approval_url", json_object_new_string(url));
    json_object_object_add(o, "approvers", approvers);
    cs_free(url);
    snprintf(event_key, sizeof(event_key), "batch:%s:%s",
             cs_db_str(d, 0, CSC_BATCH_DECIDABLE_AGENT_ID),
             cs_db_str(d, 0, CSC_BATCH_DECIDABLE_ID));
    const char *ep[] = {event_key, cs_json_text(o, NULL)};
    rc = cs_db_exec(db, CS_DB_Q(BATCH_EVENT, ep), NULL, err);
    json_object_put(o);
    return rc;
}

/* open -> decidable when complete; publishes its event. No-op otherwise. */
static enum cs_err try_decidable(struct cs_db *db, const char *uid, const struct cs_link_keys *keys,
                                 const char *public_url, const char *actor, char *err)
{
    const char *p[] = {uid, actor};
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(db, CS_DB_Q(BATCH_DECIDABLE, p), &res, err);
    if (!rc && PQntuples(res) == 1) {
        rc = decidable_event(db, res, keys, public_url, err);
        if (!rc)
            cs_log(CS_LOG_INFO, "batch", "batch %s of %s members is decidable",
                   cs_db_str(res, 0, CSC_BATCH_DECIDABLE_ID),
                   cs_db_str(res, 0, CSC_BATCH_DECIDABLE_MEMBERS));
    }
    PQclear(res);
    return rc;
}

/* res: the rows insert_approvals returned (CSC_INSERT_APPROVALS_*). */
enum cs_err cs_batch_tx_finish(struct cs_batch_tx *t, struct cs_db *db, const PGresult *res,
                               const struct cs_link_keys *keys, const char *public_url,
                               const char *actor, char *err)
{
    char key[256];
    for (int r = 0; res && r < PQntuples(res); r++) {
        if (!cs_db_str(res, r, CSC_INSERT_APPROVALS_BATCH_ID))
            continue;
        snprintf(key, sizeof(key), "%s|%s", cs_db_str(res, r, CSC_INSERT_APPROVALS_AGENT_ID),
                 cs_db_str(res, r, CSC_INSERT_APPROVALS_BATCH_ID));
        struct batch_state *s = cs_map_get(t->batches, key);
        if (s)
            s->stored++;
    }
    /* Each batch once: walk the map by re-reading the result's keys. */
    for (int r = 0; res && r < PQntuples(res); r++) {
        if (!cs_db_str(res, r, CSC_INSERT_APPROVALS_BATCH_ID))
            continue;
        snprintf(key, sizeof(key), "%s|%s", cs_db_str(res, r, CSC_INSERT_APPROVALS_AGENT_ID),
                 cs_db_str(res, r, CSC_INSERT_APPROVALS_BATCH_ID));
        struct batch_state *s = cs_map_get(t->batches, key);
        if (!s || s->stored == 0)
            continue;
        char n[16];
        snprintf(n, sizeof(n), "%d", s->stored);
        s->stored = 0;
        const char *p[] = {s->uid, n};
        PGresult *cnt = NULL;
        enum cs_err rc = cs_db_exec(db, CS_DB_Q(BATCH_ADD, p), &cnt, err);
        bool complete =
            !rc && cs_db_str(cnt, 0, CSC_BATCH_ADD_EXPECTED) &&
            cs_db_int(cnt, 0, CSC_BATCH_ADD_MEMBERS) == cs_db_int(cnt, 0, CSC_BATCH_ADD_EXPECTED);
        PQclear(cnt);
        if (!rc && complete)
            rc = try_decidable(db, s->uid, keys, public_url, actor, err);
        if (rc)
            return rc;
    }
    return CS_OK;
}

enum cs_err cs_batch_seal(struct cs_db *db, const char *agent_id, const char *batch_id, int count,
                          const struct cs_link_keys *keys, const char *public_url,
                          const char *actor, char *err)
{
    if (count < 1 || count > CS_BATCH_MAX)
        return cs_err_set(err, CS_ERR_INVALID, "a seal's count is 1 to %d", CS_BATCH_MAX);
    struct batch_state s = {0};
    enum cs_err rc = cs_db_begin(db, err);
    if (!rc)
        rc = lock(db, agent_id, batch_id, &s, err);
    bool same = !rc && s.expected == count; /* the same seal again: a no-op, even late */
    if (!rc && !same && s.expired)
        rc = cs_err_set(err, CS_ERR_EXPIRED, "batch %s: its approval window has elapsed", batch_id);
    if (!rc && s.expected >= 0 && s.expected != count)
        rc = cs_err_set(err, CS_ERR_CONFLICT,
                        "batch %s is already sealed for %d members: a seal for %d is refused",
                        batch_id, s.expected, count);
    if (!rc && s.expected < 0 && s.members > count)
        rc = cs_err_set(err, CS_ERR_CONFLICT,
                        "batch %s already has %d members, more than the seal's %d: refused",
                        batch_id, s.members, count);
    if (!rc && s.expected < 0) {
        char n[16];
        snprintf(n, sizeof(n), "%d", count);
        const char *p[] = {s.uid, n, actor};
        rc = cs_db_exec(db, CS_DB_Q(BATCH_SEAL, p), NULL, err);
        if (!rc && s.members == count)
            rc = try_decidable(db, s.uid, keys, public_url, actor, err);
    }
    if (!rc)
        rc = cs_db_commit(db, err);
    if (rc)
        cs_db_rollback(db);
    return rc;
}

/* ---- votes ---- */

static enum cs_err vote_tx(struct cs_db *db, const struct cs_batch_vote *v,
                           struct cs_vote_outcome *out, char *err)
{
    const char *lp[] = {v->batch_uid, v->approver_id};
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(db, CS_DB_Q(BATCH_VOTE_LOCK, lp), &res, err);
    if (rc)
        return rc;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return cs_err_set(err, CS_ERR_NOT_FOUND, "no such batch");
    }
    char status[16], requester[CS_UUID_STRLEN + 1], digest[2 * CS_SHA256_LEN + 1];
    cs_strlcpy(status, cs_db_str(res, 0, CSC_BATCH_VOTE_LOCK_STATUS), sizeof(status));
    cs_strlcpy(requester, cs_db_str(res, 0, CSC_BATCH_VOTE_LOCK_AGENT_ID), sizeof(requester));
    cs_strlcpy(digest, cs_db_text(res, 0, CSC_BATCH_VOTE_LOCK_DIGEST_HEX), sizeof(digest));
    out->quorum = (int)cs_db_int(res, 0, CSC_BATCH_VOTE_LOCK_QUORUM);
    bool expired = cs_db_bool(res, 0, CSC_BATCH_VOTE_LOCK_EXPIRED),
         is_slot = cs_db_bool(res, 0, CSC_BATCH_VOTE_LOCK_IS_APPROVER);
    PQclear(res);
    out->status = CS_ST_PENDING;
    if (!strcmp(status, "expired") || expired)
        return cs_err_set(err, CS_ERR_EXPIRED, "the batch's approval window has elapsed");
    if (!strcmp(status, "open"))
        return cs_err_set(err, CS_ERR_NOT_PENDING, "the batch is not complete yet");
    if (strcmp(status, "decidable"))
        return cs_err_set(err, CS_ERR_NOT_PENDING, "the batch is already decided");
    if (!v->digest_hex || strlen(v->digest_hex) != strlen(digest) ||
        !cs_ct_equal(v->digest_hex, digest, strlen(digest)))
        return cs_err_set(err, CS_ERR_CONFLICT,
                          "the batch is not the one the page showed (digest changed): reload it");
    if (!is_slot)
        return cs_err_set(err, CS_ERR_NOT_APPROVER, "not an approver of this batch");
    if (v->approve && v->except && json_object_array_length(v->except) > 0) {
        const char *xp[] = {v->batch_uid, cs_json_text(v->except, NULL)};
        if ((rc = cs_db_exec(db, CS_DB_Q(BATCH_UNKNOWN_ITEMS, xp), &res, err)))
            return rc;
        const char *unknown = cs_db_str(res, 0, CSC_BATCH_UNKNOWN_ITEMS_UNKNOWN);
        if (unknown) {
            cs_err_set(err, CS_ERR_INVALID,
                       "not members of this batch (nothing was decided): %.160s", unknown);
            PQclear(res);
            return CS_ERR_INVALID;
        }
        PQclear(res);
    }
    if ((rc = cs_approval_check_voter(db, v->approver_id, v->cast_by, requester, err)))
        return rc;
    json_object *none = json_object_new_array();
    const char *ip[] = {v->batch_uid,
                        v->approver_id,
                        v->cast_by,
                        v->approve ? "approve" : "deny",
                        cs_json_text(v->except && v->approve ? v->except : none, NULL),
                        v->reason,
                        v->actor};
    rc = cs_db_exec(db, CS_DB_Q(BATCH_VOTE_INSERT, ip), &res, err);
    json_object_put(none);
    if (rc || (rc = cs_approval_vote_tally(res, out, err)))
        return rc;
    if (v->approve && out->approvals < out->quorum)
        return CS_OK;
    const char *to = v->approve ? "approved" : "denied";
    const char *dp[] = {v->batch_uid, to, v->actor, v->reason, v->actor};
    if ((rc = cs_db_exec(db, CS_DB_Q(BATCH_DECIDE, dp), &res, err)))
        return rc;
    bool decided = PQntuples(res) == 1 && cs_db_int(res, 0, CSC_BATCH_DECIDE_BATCHES) == 1;
    if (decided)
        cs_log(CS_LOG_INFO, "batch", "batch %s %s: %s approved, %s denied", v->batch_uid, to,
               cs_db_str(res, 0, CSC_BATCH_DECIDE_APPROVED),
               cs_db_str(res, 0, CSC_BATCH_DECIDE_DENIED));
    PQclear(res);
    if (!decided)
        return cs_err_set(err, CS_ERR_EXPIRED, "the batch's approval window has elapsed");
    out->status = v->approve ? CS_ST_APPROVED : CS_ST_DENIED;
    return CS_OK;
}

enum cs_err cs_batch_vote(struct cs_db *db, const struct cs_batch_vote *v,
                          struct cs_vote_outcome *out, char *err)
{
    memset(out, 0, sizeof(*out));
    if (!cs_uuid_valid(v->batch_uid) || !cs_uuid_valid(v->approver_id) ||
        !cs_uuid_valid(v->cast_by))
        return cs_err_set(err, CS_ERR_INVALID, "batch and approver ids must be UUIDs");
    if (v->reason && strlen(v->reason) > CS_REASON_MAX)
        return cs_err_set(err, CS_ERR_INVALID, "the reason is longer than %d bytes", CS_REASON_MAX);
    if (v->except && (!json_object_is_type(v->except, json_type_array) ||
                      json_object_array_length(v->except) > CS_BATCH_MAX))
        return cs_err_set(err, CS_ERR_INVALID, "except must be a list of request ids");
    enum cs_err rc = cs_db_begin(db, err);
    if (!rc)
        rc = vote_tx(db, v, out, err);
    if (!rc)
        rc = cs_db_commit(db, err);
    if (!rc)
        return CS_OK;
    cs_db_rollback(db);
    cs_approval_audit_refusal(db, rc, v->actor, "batch.vote.refused", NULL, v->batch_uid,
                              v->approver_id, v->cast_by);
    return rc;
}

/* ---- status ---- */

enum cs_err cs_batch_status(struct cs_db *db, const char *agent_id, const char *id,
                            json_object **out, char *err)
{
    *out = NULL;
    bool by_uid = agent_id == NULL;
    if (by_uid && !cs_uuid_valid(id))
        return cs_err_set(err, CS_ERR_NOT_FOUND, "no such batch");
    const char *p[] = {agent_id, id, by_uid ? "true" : "false"};
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(db, CS_DB_Q(BATCH_STATUS, p), &res, err);
    if (rc)
        return rc;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return cs_err_set(err, CS_ERR_NOT_FOUND, "no such batch");
    }
    json_object *o = json_object_new_object(), *counts = NULL;
    char iso[CS_TIME_ISO_LEN];
    static const struct {
        const char *key;
        int col;
    } strs[] = {{"batch_id", CSC_BATCH_STATUS_ID},
                {"batch_uid", CSC_BATCH_STATUS_UID},
                {"status", CSC_BATCH_STATUS_STATUS},
                {"digest", CSC_BATCH_STATUS_DIGEST_HEX},
                {"decided_by", CSC_BATCH_STATUS_DECIDED_BY},
                {"decision", CSC_BATCH_STATUS_DECISION},
                {"grant_id", CSC_BATCH_STATUS_GRANT_ID},
                {"policy_id", CSC_BATCH_STATUS_POLICY_ID},
                {"agent", CSC_BATCH_STATUS_NAME},
                {"amount_field", CSC_BATCH_STATUS_AMOUNT_FIELD},
                {"agent_id", CSC_BATCH_STATUS_AGENT_ID}};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        const char *v = cs_db_str(res, 0, strs[i].col);
        json_object_object_add(o, strs[i].key, v ? json_object_new_string(v) : NULL);
    }
    static const struct {
        const char *key;
        int col;
    } times[] = {{"created_at", CSC_BATCH_STATUS_CREATED_MS},
                 {"expires_at", CSC_BATCH_STATUS_EXPIRES_MS},
                 {"decided_at", CSC_BATCH_STATUS_DECIDED_MS},
                 {"finished_at", CSC_BATCH_STATUS_FINISHED_MS}};
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++)
        json_object_object_add(
            o, times[i].key,
            cs_db_str(res, 0, times[i].col)
                ? json_object_new_string(cs_time_iso(cs_db_int(res, 0, times[i].col), iso))
                : NULL);
    json_object_object_add(o, "expected",
                           cs_db_str(res, 0, CSC_BATCH_STATUS_EXPECTED)
                               ? json_object_new_int64(cs_db_int(res, 0, CSC_BATCH_STATUS_EXPECTED))
                               : NULL);
    json_object_object_add(o, "members",
                           json_object_new_int64(cs_db_int(res, 0, CSC_BATCH_STATUS_MEMBERS)));
    json_object_object_add(o, "approvals_received",
                           json_object_new_int64(cs_db_int(res, 0, CSC_BATCH_STATUS_APPROVALS)));
    json_object_object_add(o, "approvals_required",
                           json_object_new_int64(cs_db_int(res, 0, CSC_BATCH_STATUS_QUORUM)));
    const char *c = cs_db_str(res, 0, CSC_BATCH_STATUS_COUNTS_JSON);
    if (cs_json_parse(c, strlen(c), &counts, err) != CS_OK)
        counts = json_object_new_object();
    json_object_object_add(o, "counts", counts);
    bool done = cs_db_str(res, 0, CSC_BATCH_STATUS_FINISHED_MS) != NULL;
    json_object_object_add(o, "is_terminal", json_object_new_boolean(done));
    PQclear(res);
    *out = o;
    return CS_OK;
}
