/*
 * cs_batch.h -- batches: many approvals decided at once.
 *
 *   open ──seal and all members stored──> decidable ──quorum / deny──> decided
 *   open | decidable ──window elapsed──> expired            (batch_finish)
 *
 * A producer tags requests with a batch_id and seals the batch with its
 * member count. Members and the seal may arrive in any order, on any
 * partition or HTTP connection: admission locks the batch row, so whichever
 * transaction stores the last piece makes the batch decidable -- exactly
 * once -- and its links and notifications go out then. All members share
 * the first member's grant and policy; a member with another grant or
 * policy, a member beyond the sealed count or after the batch is complete,
 * and a second seal with another count are refused with a reason, and
 * nothing stored is changed. Members wait as pending approvals (no links of
 * their own); the batch decision moves each pending member with its own
 * guarded transition (sql/queries/batch.sql batch_decide).
 */
#ifndef CS_BATCH_H
#define CS_BATCH_H

#include <json-c/json.h>
#include <stdbool.h>

#include "cs_approval.h"
#include "cs_catalog.h"
#include "cs_db.h"
#include "cs_err.h"
#include "cs_request.h"

#define CS_BATCH_MAX 100000

/* A seal message on the requests topic: {"type": "seal", "agent", "batch_id", "count"}. */
struct cs_seal {
    char *agent;
    char *batch_id;
    int count; /* > 0 once parsed */
};
bool cs_batch_is_seal(json_object *obj);
enum cs_err cs_batch_seal_parse(json_object *obj, struct cs_seal *s, char *err) CS_MUSTCHECK;
void cs_batch_seal_free(struct cs_seal *s);

/* Batches touched by one storing transaction. */
struct cs_batch_tx;

struct cs_batch_tx *cs_batch_tx_new(void);
void cs_batch_tx_free(struct cs_batch_tx *t);

/*
 * Admits a member inside the caller's transaction: locks its batch (first
 * sight), binds the batch to the member's grant and policy when it is the
 * first, and sets *expires_ms to the batch's window, which the member's row
 * is then written with (cs_approval_row_write: pending, no approval_url of
 * its own). Returns the refusal (CS_ERR_CONFLICT with the reason,
 * CS_ERR_EXPIRED, CS_ERR_POLICY) without changing anything, or CS_OK. Call
 * members in (agent, batch id) order.
 */
enum cs_err cs_batch_tx_admit(struct cs_batch_tx *t, struct cs_db *db, const struct cs_request *rq,
                              const struct cs_agent *agent, const struct cs_grant *g,
                              int64_t *expires_ms, char *err) CS_MUSTCHECK;

/*
 * After the insert (res of cs_approval_insert: its rows carry batch_id):
 * counts the members stored per batch and makes complete batches decidable,
 * publishing the batch.decidable event (with the batch page's link and the
 * approvers' ids, never a credential) in the same transaction.
 */
enum cs_err cs_batch_tx_finish(struct cs_batch_tx *t, struct cs_db *db, const PGresult *res,
                               const struct cs_link_keys *keys, const char *public_url,
                               const char *actor, char *err) CS_MUSTCHECK;

/*
 * Seals batch `batch_id` of agent_id with its member count in one
 * transaction. The same seal again is a no-op; another count, or fewer than
 * the members already stored, is CS_ERR_CONFLICT. The batch becomes
 * decidable here when every member is already stored.
 */
enum cs_err cs_batch_seal(struct cs_db *db, const char *agent_id, const char *batch_id, int count,
                          const struct cs_link_keys *keys, const char *public_url,
                          const char *actor, char *err) CS_MUSTCHECK;

struct cs_batch_vote {
    const char *batch_uid;
    const char *approver_id; /* the slot */
    const char *cast_by;     /* the approver or their active delegate */
    bool approve;
    json_object *except; /* approve: request ids to deny instead (array), or NULL */
    const char *reason;
    const char *digest_hex; /* the batch digest the approver was shown */
    const char *actor;
};

/*
 * Records a batch vote in one transaction, with the rules of a single vote
 * (window, slot, delegation, self-approval, one vote each, quorum in the
 * database) plus: the digest must be the batch's (CS_ERR_CONFLICT). A deny,
 * or the quorum-th approval, decides every pending member.
 */
enum cs_err cs_batch_vote(struct cs_db *db, const struct cs_batch_vote *v,
                          struct cs_vote_outcome *out, char *err) CS_MUSTCHECK;

/*
 * The status object of a batch: batch_id, status, expected, members,
 * counts per member status, digest, timestamps. By (agent_id, batch_id),
 * or by uid when agent_id is NULL.
 */
enum cs_err cs_batch_status(struct cs_db *db, const char *agent_id, const char *id,
                            json_object **out, char *err) CS_MUSTCHECK;

#endif
