/*
 * cs_approval.c -- creating approvals and deciding them (see cs_approval.h).
 *
 * Runs in the worker (Kafka ingest), the api (HTTP submit, approval pages)
 * and the CLI (operator votes). Every rule about who may vote is checked
 * here, once, inside the voting transaction.
 */
#include "cs_approval.h"

#include <string.h>
#include <strings.h>

#include "cs_buf.h"
#include "cs_json.h"
#include "cs_link.h"
#include "cs_log.h"
#include "cs_time.h"
#include "cs_mem.h"
#include "cs_url.h"

static const char *const status_names[CS_ST__COUNT] = {
    "pending", "approved", "executing", "executed", "failed", "denied", "expired", "cancelled"};

const char *cs_status_name(enum cs_status s)
{
    return (int)s >= 0 && s < CS_ST__COUNT ? status_names[s] : "unknown";
}

int cs_status_parse(const char *s)
{
    for (int i = 0; i < CS_ST__COUNT; i++)
        if (s && strcmp(s, status_names[i]) == 0)
            return i;
    return -1;
}

bool cs_status_terminal(enum cs_status s)
{
    return s == CS_ST_EXECUTED || s == CS_ST_FAILED || s == CS_ST_DENIED || s == CS_ST_EXPIRED ||
           s == CS_ST_CANCELLED;
}

/* ---- creation ---- */

enum cs_err cs_approval_check(const struct cs_request *rq, const struct cs_agent *agent,
                              const struct cs_grant *g, bool *needs_approval, char *err)
{
    int base = 0;
    enum cs_err rc = cs_grant_admits(g, agent->id, rq->url, &base, err);
    if (rc)
        return rc;
    if (g->inject == CS_INJECT_HEADER) {
        json_object_object_foreach(rq->headers, name, v)
        {
            (void)v;
            if (strcasecmp(name, g->inject_header) == 0)
                return cs_err_set(
                    err, CS_ERR_FORBIDDEN_HEADER,
                    "the %s header carries the grant's secret; callers may not set it",
                    g->inject_header);
        }
    }
    return cs_policy_evaluate(g->policy, rq, needs_approval, err);
}

/*
 * Rows are written as JSON text straight into the caller's buffer, once,
 * in their final form: one writer for every row (the ingest's batch
 * parameter, the api's submission, a batch member after its batch
 * admitted it, a re-submission). The fields are the columns of
 * insert_approvals' recordset (sql/queries/approval.sql): the two change
 * together.
 */
struct jw {
    struct cs_buf *b;
    enum cs_err rc; /* the first failure; nothing is appended after it */
};

static void jw_raw(struct jw *w, const char *s, size_t n)
{
    if (!w->rc)
        w->rc = cs_buf_append(w->b, s, n);
}

#define JW_LIT(w, lit) jw_raw((w), (lit), sizeof(lit) - 1)

/* s[n] as the inside of a JSON string: quote, backslash and control characters escaped. */
static void jw_esc(struct jw *w, const char *s, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        jw_raw(w, s + run, i - run);
        char e[8];
        switch (c) {
        case '"': JW_LIT(w, "\\\""); break;
        case '\\': JW_LIT(w, "\\\\"); break;
        case '\n': JW_LIT(w, "\\n"); break;
        case '\r': JW_LIT(w, "\\r"); break;
        case '\t': JW_LIT(w, "\\t"); break;
        default: snprintf(e, sizeof(e), "\\u%04x", c); jw_raw(w, e, 6);
        }
        run = i + 1;
    }
    jw_raw(w, s + run, n - run);
}

static void jw_str(struct jw *w, const char *s)
{
    JW_LIT(w, "\"");
    jw_esc(w, s, strlen(s));
    JW_LIT(w, "\"");
}

static void jw_int(struct jw *w, int64_t v)
{
    char n[24];
    jw_raw(w, n, (size_t)snprintf(n, sizeof(n), "%lld", (long long)v));
}

/* A json_object (borrowed) as its compact text; NULL as null. */
static void jw_json(struct jw *w, json_object *o)
{
    size_t n = 0;
    const char *t = o ? cs_json_text(o, &n) : "null";
    jw_raw(w, t, o ? n : 4);
}

static void jw_b64(struct jw *w, const unsigned char *p, size_t n)
{
    char chunk[4 * 256 + 4];
    JW_LIT(w, "\"");
    for (size_t off = 0; off < n; off += 3 * 256) {
        size_t k = n - off < 3 * 256 ? n - off : 3 * 256; /* whole groups until the last */
        cs_b64_encode_to(p + off, k, false, chunk);
        jw_raw(w, chunk, cs_b64_encoded_len(k, false));
    }
    JW_LIT(w, "\"");
}

/* The policy snapshot a row of g records (text, into w). */
static void jw_policy(struct jw *w, const struct cs_grant *g)
{
    if (g->policy_json) {
        jw_raw(w, g->policy_json, strlen(g->policy_json));
    } else {
        json_object *snap = cs_policy_snapshot(g->policy, g->idempotency_keys);
        jw_json(w, snap);
        json_object_put(snap);
    }
}

/* Its approvers (slot ids) as a JSON array, none when !needs_approval. */
static void jw_approvers(struct jw *w, const struct cs_policy *p, bool needs_approval)
{
    JW_LIT(w, "[");
    for (int i = 0; needs_approval && i < p->napprovers; i++) {
        if (i)
            JW_LIT(w, ",");
        jw_str(w, p->approvers[i].approver_id);
    }
    JW_LIT(w, "]");
}

enum cs_err cs_approval_policy_write(struct cs_buf *policy, struct cs_buf *approvers,
                                     const struct cs_grant *g)
{
    struct jw pw = {.b = policy}, aw = {.b = approvers};
    jw_policy(&pw, g);
    jw_approvers(&aw, g->policy, true);
    return pw.rc ? pw.rc : aw.rc;
}

enum cs_err cs_approval_row_write(struct cs_buf *b, const struct cs_request *rq,
                                  const struct cs_agent *agent, const struct cs_grant *g,
                                  bool needs_approval, int64_t member_expires_ms,
                                  const struct cs_link_keys *keys, const char *public_url,
                                  const char *actor, char id[CS_UUID_STRLEN + 1],
                                  int64_t *expires_ms)
{
    const struct cs_policy *p = g->policy;
    struct jw w = {.b = b};
    size_t at = b->len;
    char hex[2 * CS_SHA256_LEN + 1];
    /* A batch member waits for its batch's decision: pending, the batch's
     * window, no link, reminder or escalation of its own (the batch has them). */
    bool member = rq->batch_id != NULL;
    needs_approval = needs_approval || member;
    cs_uuid_v7(id);
    int64_t now = cs_now_ms();
    *expires_ms = member ? member_expires_ms : now + (int64_t)p->window_seconds * 1000;

    JW_LIT(&w, "{\"id\":");
    jw_str(&w, id);
    JW_LIT(&w, ",\"request_id\":");
    jw_str(&w, rq->request_id ? rq->request_id : id);
    JW_LIT(&w, ",\"agent_id\":");
    jw_str(&w, agent->id);
    JW_LIT(&w, ",\"grant_id\":");
    jw_str(&w, g->id);
    JW_LIT(&w, ",\"policy_id\":");
    jw_str(&w, p->id);
    if (rq->batch_id) {
        JW_LIT(&w, ",\"batch_id\":");
        jw_str(&w, rq->batch_id);
    }
    JW_LIT(&w, ",\"method\":");
    jw_str(&w, rq->method);
    JW_LIT(&w, ",\"url\":");
    jw_str(&w, rq->url);
    JW_LIT(&w, ",\"headers\":");
    jw_json(&w, rq->headers);
    JW_LIT(&w, ",\"body_b64\":");
    jw_b64(&w, rq->body, rq->body_len);
    JW_LIT(&w, ",\"reason\":");
    jw_str(&w, rq->reason);
    JW_LIT(&w, ",\"context\":");
    jw_json(&w, rq->context);
    cs_hex_encode(rq->digest, CS_SHA256_LEN, hex);
    JW_LIT(&w, ",\"digest_hex\":");
    jw_str(&w, hex);
    JW_LIT(&w, ",\"policy\":");
    jw_policy(&w, g);
    JW_LIT(&w, ",\"approvers\":");
    jw_approvers(&w, p, needs_approval);
    JW_LIT(&w, ",\"quorum\":");
    jw_int(&w, needs_approval ? p->quorum : 0);
    JW_LIT(&w, ",\"status\":");
    jw_str(&w, needs_approval ? "pending" : "approved");
    JW_LIT(&w, ",\"expires_ms\":");
    jw_int(&w, *expires_ms);
    if (needs_approval && !member) {
        /* Who holds each slot now (the catalog's cs_link_holder), to notify. */
        JW_LIT(&w, ",\"holders\":[");
        for (int i = 0; i < p->napprovers; i++) {
            if (i)
                JW_LIT(&w, ",");
            JW_LIT(&w, "[");
            jw_str(&w, p->approvers[i].approver_id);
            JW_LIT(&w, ",");
            jw_str(&w, p->approvers[i].voter_id);
            JW_LIT(&w, "]");
        }
        JW_LIT(&w, "]");
        char path[CS_LINK_PATH_MAX];
        cs_link_approval_path(keys, id, *expires_ms, path);
        char *url = cs_link_url(public_url, path);
        JW_LIT(&w, ",\"approval_url\":");
        jw_str(&w, url);
        cs_free(url);
        int64_t remind = now + (int64_t)p->reminder_interval_s * 1000;
        int64_t escalate = now + (int64_t)p->escalate_after_s * 1000;
        if (p->reminder_interval_s && remind < *expires_ms) {
            JW_LIT(&w, ",\"next_reminder_ms\":");
            jw_int(&w, remind);
        }
        if (p->escalate_after_s && p->nescalation && escalate < *expires_ms) {
            JW_LIT(&w, ",\"escalate_ms\":");
            jw_int(&w, escalate);
        }
    }
    JW_LIT(&w, ",\"actor\":");
    jw_str(&w, actor);
    JW_LIT(&w, "}");
    if (w.rc) {
        /* Leave b as it was. */
        b->len = at;
        if (b->data)
            b->data[at] = '\0';
    }
    return w.rc;
}

enum cs_err cs_approval_insert_text(struct cs_db *db, const char *rows, PGresult **res, char *err)
{
    const char *p[] = {rows};
    return cs_db_exec(db, CS_DB_Q(INSERT_APPROVALS, p), res, err);
}

enum cs_err cs_approval_insert_row(struct cs_db *db, const struct cs_request *rq,
                                   const struct cs_agent *agent, const struct cs_grant *g,
                                   bool needs_approval, int64_t member_expires_ms,
                                   const struct cs_link_keys *keys, const char *public_url,
                                   const char *actor, char id[CS_UUID_STRLEN + 1],
                                   int64_t *expires_ms, PGresult **res, char *err)
{
    struct cs_buf b;
    cs_buf_init(&b, CS_APPROVAL_ROWS_MAX);
    *res = NULL;
    enum cs_err rc = cs_buf_append(&b, "[", 1);
    if (!rc)
        rc = cs_approval_row_write(&b, rq, agent, g, needs_approval, member_expires_ms, keys,
                                   public_url, actor, id, expires_ms);
    if (!rc)
        rc = cs_buf_append(&b, "]", 1);
    if (rc)
        rc = cs_err_set(err, rc, "the approval row exceeds %zu bytes", CS_APPROVAL_ROWS_MAX);
    else
        rc = cs_approval_insert_text(db, b.data, res, err);
    cs_buf_free(&b);
    return rc;
}

/* ---- votes ---- */

/* Loads an approver; fills *agent_id (may be empty) and refuses disabled ones. */
static enum cs_err approver_agent(struct cs_db *db, const char *id,
                                  char agent_id[CS_UUID_STRLEN + 1], char *err)
{
    PGresult *res = NULL;
    const char *p[] = {id};
    enum cs_err rc = cs_db_exec(db, CS_DB_Q(APPROVER_GET, p), &res, err);
    if (rc)
        return rc;
    if (PQntuples(res) == 0 || cs_db_bool(res, 0, CSC_APPROVER_GET_DISABLED))
        rc = cs_err_set(err, CS_ERR_NOT_APPROVER, "approver %s is unknown or disabled", id);
    else
        cs_strlcpy(agent_id, cs_db_text(res, 0, CSC_APPROVER_GET_AGENT_ID), CS_UUID_STRLEN + 1);
    PQclear(res);
    return rc;
}

/* The result of vote_insert, or of batch_vote_insert: the same columns. */
_Static_assert((int)CSC_VOTE_INSERT_APPROVALS == (int)CSC_BATCH_VOTE_INSERT_APPROVALS &&
                   (int)CSC_VOTE_INSERT_INSERTED == (int)CSC_BATCH_VOTE_INSERT_INSERTED,
               "vote_insert and batch_vote_insert differ");

enum cs_err cs_approval_vote_tally(PGresult *res, struct cs_vote_outcome *out, char *err)
{
    out->approvals = (int)cs_db_int(res, 0, CSC_VOTE_INSERT_APPROVALS);
    bool inserted = cs_db_int(res, 0, CSC_VOTE_INSERT_INSERTED) == 1;
    PQclear(res);
    if (!inserted)
        return cs_err_set(err, CS_ERR_ALREADY_VOTED, "this approver has already voted");
    return CS_OK;
}

enum cs_err cs_approval_check_voter(struct cs_db *db, const char *slot, const char *cast_by,
                                    const char *requester, char *err)
{
    char slot_agent[CS_UUID_STRLEN + 1], voter_agent[CS_UUID_STRLEN + 1];
    PGresult *res = NULL;
    enum cs_err rc = approver_agent(db, slot, slot_agent, err);
    if (rc)
        return rc;
    if (strcmp(cast_by, slot) != 0) {
        const char *dp[] = {slot, cast_by};
        if ((rc = cs_db_exec(db, CS_DB_Q(DELEGATION_ACTIVE, dp), &res, err)))
            return rc;
        bool ok = cs_db_bool(res, 0, CSC_DELEGATION_ACTIVE_ACTIVE);
        PQclear(res);
        if (!ok)
            return cs_err_set(err, CS_ERR_NOT_APPROVER,
                              "no active delegation lets this person vote for the approver");
        if ((rc = approver_agent(db, cast_by, voter_agent, err)))
            return rc;
    } else {
        cs_strlcpy(voter_agent, slot_agent, sizeof(voter_agent));
    }
    if (strcmp(slot_agent, requester) == 0 || strcmp(voter_agent, requester) == 0)
        return cs_err_set(err, CS_ERR_SELF_APPROVAL,
                          "the requesting agent's operator cannot vote on its own request");
    return CS_OK;
}

static enum cs_err vote_tx(struct cs_db *db, const struct cs_vote *v, struct cs_vote_outcome *out,
                           char *err)
{
    PGresult *res = NULL;
    enum cs_err rc;
    char requester[CS_UUID_STRLEN + 1];
    const char *lp[] = {v->approval_id, v->approver_id};

    if ((rc = cs_db_exec(db, CS_DB_Q(VOTE_LOCK, lp), &res, err)))
        return rc;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return cs_err_set(err, CS_ERR_NOT_FOUND, "no approval %s", v->approval_id);
    }
    int st = cs_status_parse(cs_db_str(res, 0, CSC_VOTE_LOCK_STATUS));
    cs_strlcpy(requester, cs_db_str(res, 0, CSC_VOTE_LOCK_AGENT_ID), sizeof(requester));
    out->quorum = (int)cs_db_int(res, 0, CSC_VOTE_LOCK_QUORUM);
    out->status = (enum cs_status)st;
    bool expired = cs_db_bool(res, 0, CSC_VOTE_LOCK_EXPIRED),
         is_approver = cs_db_bool(res, 0, CSC_VOTE_LOCK_IS_APPROVER);
    bool passkey = cs_db_bool(res, 0, CSC_VOTE_LOCK_REQUIRE_PASSKEY);
    PQclear(res);

    if (st == CS_ST_EXPIRED || (st == CS_ST_PENDING && expired))
        return cs_err_set(err, CS_ERR_EXPIRED, "the approval window has elapsed");
    if (st != CS_ST_PENDING)
        return cs_err_set(err, CS_ERR_NOT_PENDING, "the approval is already %s",
                          cs_status_name((enum cs_status)st));
    if (!is_approver)
        return cs_err_set(err, CS_ERR_NOT_APPROVER, "not an approver of this approval");
    if ((rc = cs_approval_check_voter(db, v->approver_id, v->cast_by, requester, err)))
        return rc;
    if (passkey && (!v->passkey_id || !v->passkey))
        return cs_err_set(err, CS_ERR_FORBIDDEN,
                          "this approval's policy requires every vote to be signed with a passkey");

    const char *ip[] = {
        v->approval_id, v->approver_id, v->cast_by,    v->approve ? "approve" : "deny",
        v->reason,      v->actor,       v->passkey_id, v->passkey};
    if ((rc = cs_db_exec(db, CS_DB_Q(VOTE_INSERT, ip), &res, err)) ||
        (rc = cs_approval_vote_tally(res, out, err)))
        return rc;

    if (!v->approve || out->approvals >= out->quorum) {
        const char *to = v->approve ? "approved" : "denied";
        const char *dp[] = {v->approval_id, to, v->actor, v->reason, v->actor};
        if ((rc = cs_db_exec(db, CS_DB_Q(APPROVAL_DECIDE, dp), &res, err)))
            return rc;
        bool changed = PQntuples(res) == 1;
        PQclear(res);
        if (!changed) /* the window closed between the check and the update */
            return cs_err_set(err, CS_ERR_EXPIRED, "the approval window has elapsed");
        out->status = v->approve ? CS_ST_APPROVED : CS_ST_DENIED;
    }
    return CS_OK;
}

enum cs_err cs_approval_operator_vote(struct cs_db *db, const char *id, const char *name,
                                      const char *actor, bool approve, const char *reason,
                                      struct cs_vote_outcome *out, char *err)
{
    char approver[CS_UUID_STRLEN + 1], own[160];
    const char *p[] = {name};
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(db, CS_DB_Q(APPROVER_BY_NAME, p), &res, err);
    if (rc)
        return rc;
    bool found = PQntuples(res) == 1;
    if (found)
        cs_strlcpy(approver, cs_db_str(res, 0, CSC_APPROVER_BY_NAME_ID), sizeof(approver));
    PQclear(res);
    if (!found)
        return cs_err_set(err, CS_ERR_NOT_APPROVER, "no enabled approver by that name");
    snprintf(own, sizeof(own), "operator:%.128s", name);
    struct cs_vote v = {id, approver, approver, approve, reason, actor ? actor : own};
    return cs_approval_vote(db, &v, out, err);
}

enum cs_err cs_approval_link_decide(struct cs_db *db, const char *id, bool approve,
                                    const char *reason, const char *address, const char *user_agent,
                                    char *err)
{
    if (!cs_uuid_valid(id))
        return cs_err_set(err, CS_ERR_INVALID, "the approval id must be a UUID");
    if (reason && strlen(reason) > CS_REASON_MAX)
        return cs_err_set(err, CS_ERR_INVALID, "the reason is longer than %d bytes", CS_REASON_MAX);
    char ua[257] = "";
    for (size_t i = 0; user_agent && user_agent[i] && i < sizeof(ua) - 1; i++) {
        unsigned char ch =
            (unsigned char)user_agent[i]; /* printable ASCII only: jsonb refuses bad UTF-8 */
        ua[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
        ua[i + 1] = '\0';
    }
    json_object *d = json_object_new_object();
    json_object_object_add(d, "address", json_object_new_string(address ? address : ""));
    json_object_object_add(d, "user_agent", json_object_new_string(ua));
    const char *p[] = {id, approve ? "approved" : "denied", reason, cs_json_text(d, NULL)};
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(db, CS_DB_Q(LINK_DECIDE, p), &res, err);
    json_object_put(d);
    if (!rc && PQntuples(res) != 1)
        rc = cs_err_set(err, CS_ERR_NOT_PENDING,
                        "this request can no longer be decided through its link (decided, "
                        "expired, or the link's lifetime has passed)");
    PQclear(res);
    return rc;
}

void cs_approval_audit_refusal(struct cs_db *db, enum cs_err rc, const char *actor,
                               const char *action, const char *approval_id, const char *batch_uid,
                               const char *approver_id, const char *cast_by)
{
    if (cs_err_info(rc)->retriable || rc == CS_ERR_INTERNAL)
        return; /* an outage or a bug, not a refusal */
    char detail[512], ignore[CS_ERRLEN];
    snprintf(detail, sizeof(detail),
             "{\"code\":\"%s\",%s%s%s\"approver_id\":\"%s\",\"cast_by\":\"%s\"}", cs_err_code(rc),
             batch_uid ? "\"batch_uid\":\"" : "", batch_uid ? batch_uid : "",
             batch_uid ? "\"," : "", approver_id, cast_by);
    const char *ap[] = {actor, action, approval_id, detail};
    if (cs_db_exec(db, CS_DB_Q(AUDIT_INSERT, ap), NULL, ignore) != CS_OK)
        cs_log(CS_LOG_WARN, "approval", "cannot audit a refused vote: %s", ignore);
}

enum cs_err cs_approval_vote(struct cs_db *db, const struct cs_vote *v, struct cs_vote_outcome *out,
                             char *err)
{
    memset(out, 0, sizeof(*out));
    if (!cs_uuid_valid(v->approval_id) || !cs_uuid_valid(v->approver_id) ||
        !cs_uuid_valid(v->cast_by))
        return cs_err_set(err, CS_ERR_INVALID, "approval and approver ids must be UUIDs");
    if (v->reason && strlen(v->reason) > CS_REASON_MAX)
        return cs_err_set(err, CS_ERR_INVALID, "the reason is longer than %d bytes", CS_REASON_MAX);
    enum cs_err rc = cs_db_begin(db, err);
    if (!rc)
        rc = vote_tx(db, v, out, err);
    if (!rc)
        rc = cs_db_commit(db, err);
    if (!rc) {
        cs_log_ap(CS_LOG_INFO, "approval", v->approval_id, "vote %s by %s: %d/%d, now %s",
                  v->approve ? "approve" : "deny", v->actor, out->approvals, out->quorum,
                  cs_status_name(out->status));
        return CS_OK;
    }
    cs_db_rollback(db);
    if (rc != CS_ERR_NOT_FOUND)
        cs_approval_audit_refusal(db, rc, v->actor, "vote.refused", v->approval_id, NULL,
                                  v->approver_id, v->cast_by);
    return rc;
}

enum cs_err cs_approval_cancel(struct cs_db *db, const char *approval_id, const char *agent_id,
                               const char *actor, const char *reason, char *err)
{
    if (!cs_uuid_valid(approval_id))
        return cs_err_set(err, CS_ERR_NOT_FOUND, "no approval %.64s", approval_id);
    PGresult *res = NULL;
    const char *p[] = {approval_id, agent_id, actor, reason};
    enum cs_err rc = cs_db_exec(db, CS_DB_Q(APPROVAL_CANCEL, p), &res, err);
    if (rc)
        return rc;
    bool changed = PQntuples(res) == 1;
    PQclear(res);
    if (changed)
        return CS_OK;
    const char *sp[] = {approval_id, agent_id};
    if ((rc = cs_db_exec(db, CS_DB_Q(APPROVAL_STATUS, sp), &res, err)))
        return rc;
    if (PQntuples(res) == 0)
        rc = cs_err_set(err, CS_ERR_NOT_FOUND, "no approval %s", approval_id);
    else
        rc = cs_err_set(err, CS_ERR_NOT_PENDING, "the approval is already %s",
                        cs_db_str(res, 0, CSC_APPROVAL_STATUS_STATUS));
    PQclear(res);
    return rc;
}

/* ---- re-submission ---- */

#define RESUBMIT_BODY_MAX ((size_t)64 << 20)

/* The envelope of the re-submission of the failed approval in res (row 0). */
static json_object *resubmission(const PGresult *res, const char *id)
{
    char request_id[CS_REQ_ID_MAX + 1], suffix[32], err[CS_ERRLEN];
    snprintf(suffix, sizeof(suffix), "~r%lld",
             (long long)cs_db_int(res, 0, CSC_CONSOLE_RESUBMIT_SOURCE_RESUBMITS) + 1);
    size_t keep = CS_REQ_ID_MAX - strlen(suffix);
    snprintf(request_id, sizeof(request_id), "%.*s%s", (int)keep,
             cs_db_str(res, 0, CSC_CONSOLE_RESUBMIT_SOURCE_REQUEST_ID), suffix);
    json_object *headers = NULL, *context = NULL, *e = json_object_new_object();
    const char *h = cs_db_str(res, 0, CSC_CONSOLE_RESUBMIT_SOURCE_HEADERS),
               *ctx = cs_db_str(res, 0, CSC_CONSOLE_RESUBMIT_SOURCE_CONTEXT);
    if (cs_json_parse(h, strlen(h), &headers, err) != CS_OK)
        headers = json_object_new_object();
    if (cs_json_parse(ctx, strlen(ctx), &context, err) != CS_OK)
        context = json_object_new_object();
    json_object_object_add(headers, "Countersign-Resubmission-Of", json_object_new_string(id));
    json_object_object_add(context, "resubmission_of", json_object_new_string(id));
    json_object_object_add(e, "request_id", json_object_new_string(request_id));
    json_object_object_add(
        e, "agent", json_object_new_string(cs_db_str(res, 0, CSC_CONSOLE_RESUBMIT_SOURCE_NAME)));
    json_object_object_add(
        e, "grant_id",
        json_object_new_string(cs_db_str(res, 0, CSC_CONSOLE_RESUBMIT_SOURCE_GRANT_ID)));
    json_object_object_add(
        e, "method", json_object_new_string(cs_db_str(res, 0, CSC_CONSOLE_RESUBMIT_SOURCE_METHOD)));
    json_object_object_add(
        e, "url", json_object_new_string(cs_db_str(res, 0, CSC_CONSOLE_RESUBMIT_SOURCE_URL)));
    json_object_object_add(e, "headers", headers);
    /* A JSON body goes back as "json", so the policy's rules read its fields again. */
    unsigned char *body = NULL;
    size_t len = 0;
    json_object *doc = NULL, *ct = NULL;
    const char *b64 = cs_db_str(res, 0, CSC_CONSOLE_RESUBMIT_SOURCE_BODY_B64);
    bool json = json_object_object_get_ex(headers, "Content-Type", &ct) &&
                !strncasecmp(json_object_get_string(ct), "application/json", 16) &&
                cs_b64_decode(b64, strlen(b64), false, &body, &len) == CS_OK && len > 0 &&
                cs_json_parse((const char *)body, len, &doc, err) == CS_OK;
    cs_free(body);
    if (json)
        json_object_object_add(e, "json", doc);
    else
        json_object_object_add(e, "body_b64", json_object_new_string(b64));
    json_object_object_add(
        e, "reason", json_object_new_string(cs_db_str(res, 0, CSC_CONSOLE_RESUBMIT_SOURCE_REASON)));
    json_object_object_add(e, "context", context);
    return e;
}

enum cs_err cs_approval_resubmit(struct cs_db *db, struct cs_catalog *cat,
                                 const struct cs_link_keys *keys, const char *public_url,
                                 const char *id, const char *actor, char new_id[CS_UUID_STRLEN + 1],
                                 char *err)
{
    new_id[0] = '\0';
    if (!cs_uuid_valid(id))
        return cs_err_set(err, CS_ERR_NOT_FOUND, "no approval %.64s", id);
    const char *p[] = {id};
    PGresult *res = NULL, *ins = NULL;
    enum cs_err rc = cs_db_exec(db, CS_DB_Q(CONSOLE_RESUBMIT_SOURCE, p), &res, err);
    if (rc)
        return rc;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return cs_err_set(err, CS_ERR_NOT_FOUND, "no approval %s", id);
    }
    if (strcmp(cs_db_str(res, 0, CSC_CONSOLE_RESUBMIT_SOURCE_STATUS), "failed") != 0) {
        rc = cs_err_set(err, CS_ERR_CONFLICT, "only a failed call is re-submitted; this one is %s",
                        cs_db_str(res, 0, CSC_CONSOLE_RESUBMIT_SOURCE_STATUS));
        PQclear(res);
        return rc;
    }
    struct cs_agent agent = {.name = (char *)cs_db_str(res, 0, CSC_CONSOLE_RESUBMIT_SOURCE_NAME),
                             .disabled = cs_db_bool(res, 0, CSC_CONSOLE_RESUBMIT_SOURCE_DISABLED)};
    cs_strlcpy(agent.id, cs_db_str(res, 0, CSC_CONSOLE_RESUBMIT_SOURCE_AGENT_ID), sizeof(agent.id));
    json_object *env = resubmission(res, id);
    struct cs_request rq = {0};
    const struct cs_grant *g = NULL;
    bool needs = true;
    int64_t expires_ms = 0;
    rc = agent.disabled ? cs_err_set(err, CS_ERR_FORBIDDEN, "the agent %s is disabled", agent.name)
                        : CS_OK;
    if (!rc)
        rc = cs_request_parse(env, CS_REQ_ENVELOPE, RESUBMIT_BODY_MAX, &rq, err);
    if (!rc)
        rc = cs_catalog_grant(cat, db, rq.grant_id, &g, err);
    if (!rc)
        rc = cs_approval_check(&rq, &agent, g, &needs, err);
    bool began = !rc && !(rc = cs_db_begin(db, err));
    if (!rc)
        rc = cs_approval_insert_row(db, &rq, &agent, g, needs, 0, keys, public_url, actor, new_id,
                                    &expires_ms, &ins, err);
    if (!rc && PQntuples(ins) != 1)
        rc = cs_err_set(err, CS_ERR_CONFLICT, "this call was re-submitted at the same moment");
    if (!rc) {
        json_object *d = json_object_new_object();
        json_object_object_add(d, "new_approval_id", json_object_new_string(new_id));
        json_object_object_add(d, "request_id", json_object_new_string(rq.request_id));
        const char *ap[] = {actor, "console.resubmitted", id, cs_json_text(d, NULL)};
        rc = cs_db_exec(db, CS_DB_Q(AUDIT_INSERT, ap), NULL, err);
        json_object_put(d);
    }
    if (!rc)
        rc = cs_db_commit(db, err);
    else if (began)
        cs_db_rollback(db);
    if (rc)
        new_id[0] = '\0';
    PQclear(ins);
    PQclear(res);
    json_object_put(env);
    cs_request_free(&rq);
    return rc;
}
