/*
 * cs_approval.h -- the approval lifecycle, owned here.
 *
 *                 approve (quorum reached)        claim (lease)
 *   pending ─────────────────────────> approved ──────────> executing ──> executed
 *      │                                  ^                     │    └──> failed
 *      │ deny | window elapsed | cancel   └─────────────────────┘
 *      v                                 lease lapsed and the provider
 *   denied | expired | cancelled         honours idempotency keys
 *
 *   (no approval required) is inserted as approved, decided_by = "policy".
 *
 * Terminal: executed, failed, denied, expired, cancelled. Every transition
 * is one guarded UPDATE ... WHERE status = <from> that writes its audit
 * entry and event (cs_emit) in the same statement (sql/queries/approval.sql,
 * execution.sql); the database refuses any other transition, a decision at
 * or after expires_at, and any change to the stored request
 * (sql/migrations/001_core.sql, approvals_guard).
 *
 * Checklist when adding a status: the CHECK and approvals_guard in a new
 * migration, cs_status_names[] in lib/cs_approval.c, this diagram, and the
 * terminal list in approvals_notify and retention.sql.
 */
#ifndef CS_APPROVAL_H
#define CS_APPROVAL_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "cs_buf.h"
#include "cs_catalog.h"
#include "cs_db.h"
#include "cs_err.h"
#include "cs_link.h"
#include "cs_request.h"

enum cs_status {
    CS_ST_PENDING,
    CS_ST_APPROVED,
    CS_ST_EXECUTING,
    CS_ST_EXECUTED,
    CS_ST_FAILED,
    CS_ST_DENIED,
    CS_ST_EXPIRED,
    CS_ST_CANCELLED,
    CS_ST__COUNT
};

const char *cs_status_name(enum cs_status s);
int cs_status_parse(const char *s); /* -1 when unknown */
bool cs_status_terminal(enum cs_status s);

/*
 * Checks a parsed request against its agent and grant -- the grant is
 * bound to the agent, the URL is under an allowed base, the caller does
 * not set the grant's injected header -- and evaluates the policy.
 * Returns the refusal (CS_ERR_FORBIDDEN, CS_ERR_HOST_NOT_ALLOWED,
 * CS_ERR_FORBIDDEN_HEADER, CS_ERR_POLICY) or CS_OK with *needs_approval.
 */
enum cs_err cs_approval_check(const struct cs_request *rq, const struct cs_agent *agent,
                              const struct cs_grant *g, bool *needs_approval,
                              char *err) CS_MUSTCHECK;

/* The largest text of rows one insert takes: Postgres's limit for one value. */
#define CS_APPROVAL_ROWS_MAX ((size_t)1 << 30)

/*
 * Writes one row for cs_approval_insert_text() at the end of b, as a JSON
 * object, in its final form (nothing rewrites it): a fresh UUIDv7 id
 * (copied to id), status pending or approved, expires_at = now + the
 * policy window (copied to *expires_ms), the policy snapshot, and -- when
 * pending -- its approval_url (cs_link_approval_path) for the pending event.
 * A batch member (rq->batch_id) is written as its batch admitted it: pending
 * until member_expires_ms (the batch's window, from cs_batch_tx_admit), with
 * no approval_url, reminder or escalation of its own; member_expires_ms is
 * ignored for any other row.
 * CS_ERR_TOO_LARGE when it does not fit under b's cap; b is then as it was.
 */
enum cs_err cs_approval_row_write(struct cs_buf *b, const struct cs_request *rq,
                                  const struct cs_agent *agent, const struct cs_grant *g,
                                  bool needs_approval, int64_t member_expires_ms,
                                  const struct cs_link_keys *keys, const char *public_url,
                                  const char *actor, char id[CS_UUID_STRLEN + 1],
                                  int64_t *expires_ms) CS_MUSTCHECK;

/*
 * What a row of grant g records of its policy, appended as JSON text: the
 * policy snapshot to `policy`, the approver slots (an array) to `approvers`
 * (the same writer as the rows': a batch binds to them). CS_ERR_TOO_LARGE
 * past a buffer's cap.
 */
enum cs_err cs_approval_policy_write(struct cs_buf *policy, struct cs_buf *approvers,
                                     const struct cs_grant *g) CS_MUSTCHECK;

/*
 * Inserts rows -- the text of a JSON array of rows (cs_approval_row_write)
 * -- with their audit entries and events in one statement. *res lists the
 * rows inserted: (id, request_id, status, expires_ms, batch_id, agent_id);
 * duplicates of (agent, request_id) are absent. The caller PQclear()s *res.
 */
enum cs_err cs_approval_insert_text(struct cs_db *db, const char *rows, PGresult **res,
                                    char *err) CS_MUSTCHECK;

/*
 * cs_approval_row_write() of one row, inserted with cs_approval_insert_text()
 * (in the caller's transaction, if any). *res as there; id and *expires_ms
 * as the writer's.
 */
enum cs_err cs_approval_insert_row(struct cs_db *db, const struct cs_request *rq,
                                   const struct cs_agent *agent, const struct cs_grant *g,
                                   bool needs_approval, int64_t member_expires_ms,
                                   const struct cs_link_keys *keys, const char *public_url,
                                   const char *actor, char id[CS_UUID_STRLEN + 1],
                                   int64_t *expires_ms, PGresult **res, char *err) CS_MUSTCHECK;

struct cs_vote {
    const char *approval_id;
    const char *approver_id; /* whose vote (an approver slot of the approval) */
    const char *cast_by;     /* who votes: the approver, or their active delegate */
    bool approve;
    const char *reason;     /* optional */
    const char *actor;      /* audit actor, e.g. "approver:<id>" or "operator:<name>" */
    const char *passkey_id; /* the passkey that signed it (cs_passkey_verify_vote), or NULL */
    const char *passkey;    /* its audit record (JSON text), or NULL */
};

struct cs_vote_outcome {
    enum cs_status status; /* after the vote */
    int approvals;         /* approve votes counted in the database */
    int quorum;
};

/*
 * Who may vote in approver slot `slot`: the approver (enabled) or a person
 * holding an active delegation from them (CS_ERR_NOT_APPROVER otherwise),
 * and neither may operate the requesting agent (CS_ERR_SELF_APPROVAL).
 * Shared by single and batch votes; runs inside the caller's transaction.
 */
enum cs_err cs_approval_check_voter(struct cs_db *db, const char *slot, const char *cast_by,
                                    const char *requester, char *err) CS_MUSTCHECK;

/*
 * Reads the (approvals, inserted) row a vote insert returns into out, and
 * frees it; CS_ERR_ALREADY_VOTED when the vote was not inserted. Shared by
 * single and batch votes.
 */
enum cs_err cs_approval_vote_tally(PGresult *res, struct cs_vote_outcome *out,
                                   char *err) CS_MUSTCHECK;

/*
 * Audits a refused vote (own transaction; a failure is logged, never
 * returned). Outages and bugs are not refusals and are not audited. The
 * ids are UUIDs the caller validated; approval_id or batch_uid may be NULL.
 */
void cs_approval_audit_refusal(struct cs_db *db, enum cs_err rc, const char *actor,
                               const char *action, const char *approval_id, const char *batch_uid,
                               const char *approver_id, const char *cast_by);

/*
 * Records a vote in one transaction: the approval is locked, must be
 * pending and inside its window (CS_ERR_EXPIRED), the approver must hold a
 * slot (CS_ERR_NOT_APPROVER), a delegate must hold an active delegation,
 * neither may operate the requesting agent (CS_ERR_SELF_APPROVAL), and
 * each approver and each person votes once (CS_ERR_ALREADY_VOTED). A deny
 * denies; the quorum-th approval approves. A refused vote is audited.
 */
enum cs_err cs_approval_vote(struct cs_db *db, const struct cs_vote *v, struct cs_vote_outcome *out,
                             char *err) CS_MUSTCHECK;

/*
 * An operator's vote (CLI `approval approve|deny --as NAME`, admin API
 * decide, the console): the vote of enabled approver `name`, cast by them,
 * audited as `actor` (NULL: "operator:<name>"), with every rule of
 * cs_approval_vote(). CS_ERR_NOT_APPROVER when no enabled approver has
 * that name.
 */
enum cs_err cs_approval_operator_vote(struct cs_db *db, const char *id, const char *name,
                                      const char *actor, bool approve, const char *reason,
                                      struct cs_vote_outcome *out, char *err) CS_MUSTCHECK;

/*
 * Re-submits failed approval `id` as a new approval; the failed one is
 * never re-run nor changed. The new one is the same agent, grant and call
 * with request id "<old request id>~r<N>" (N counts re-submissions), the
 * header Countersign-Resubmission-Of: <id> (so a new digest) and
 * context.resubmission_of; it passes the grant's admission check and its
 * policy again (pending, or approved when the policy needs no approval),
 * and is audited as by `actor`, as is the re-submission on the old one.
 * CS_ERR_NOT_FOUND / CS_ERR_CONFLICT (not failed) / the admission refusals.
 */
enum cs_err cs_approval_resubmit(struct cs_db *db, struct cs_catalog *cat,
                                 const struct cs_link_keys *keys, const char *public_url,
                                 const char *id, const char *actor, char new_id[CS_UUID_STRLEN + 1],
                                 char *err) CS_MUSTCHECK;

/*
 * Semi-public link mode: decides approval `id` for whoever holds its
 * approval_url, while its policy snapshot says link_mode semi-public and
 * link_lifetime_s has not passed since creation (checked in the UPDATE).
 * Audited as by "link holder" with address and user_agent (may be NULL).
 * CS_ERR_NOT_PENDING when the link can no longer decide.
 */
enum cs_err cs_approval_link_decide(struct cs_db *db, const char *id, bool approve,
                                    const char *reason, const char *address, const char *user_agent,
                                    char *err) CS_MUSTCHECK;

/*
 * Reads approval `id` -- only agent_id's when agent_id is not NULL -- as
 * the status object of the HTTP API (approval_id, status, is_terminal,
 * expires_at, decided_at, decision_reason, executed_at, has_result,
 * approvals_received, approvals_required, ...). *out is new; *status set.
 * CS_ERR_NOT_FOUND when there is none (or it is another agent's).
 */
enum cs_err cs_approval_status(struct cs_db *db, const char *id, const char *agent_id,
                               json_object **out, enum cs_status *status, char *err) CS_MUSTCHECK;

/*
 * Everything the HTTP API answers about approval `id` (agent_id's when not
 * NULL), from one read. For a terminal approval, its outcome:
 *   executed  -> CS_OK, *body = {type: "result", approval_id, status,
 *                status_code, headers, body_b64, body_truncated, executed_at}
 *   denied    -> CS_ERR_DENIED, *body = details {reason, decided_by, decided_at}
 *   expired   -> CS_ERR_EXPIRED; cancelled -> CS_ERR_CANCELLED (details likewise)
 *   failed    -> CS_ERR_EXECUTION_FAILED, *body = {error_code, error_message}
 * with a message for the error. For a non-terminal one *outcome is
 * CS_ERR_NOT_PENDING and *body the status object of cs_approval_status.
 * *status is set either way; *body is new (the caller puts it). The
 * function's own return value reports database errors and NOT_FOUND.
 */
enum cs_err cs_approval_answer(struct cs_db *db, const char *id, const char *agent_id,
                               enum cs_err *outcome, json_object **body, enum cs_status *status,
                               char *message, size_t message_len, char *err) CS_MUSTCHECK;

/*
 * pending -> cancelled by its own agent (agent_id), or by an operator
 * (agent_id NULL); CS_ERR_NOT_FOUND / CS_ERR_NOT_PENDING.
 */
enum cs_err cs_approval_cancel(struct cs_db *db, const char *approval_id, const char *agent_id,
                               const char *actor, const char *reason, char *err) CS_MUSTCHECK;

#endif
