/*
 * cs_admin.h -- operator actions, shared by the CLI and the admin API.
 *
 * Each function validates its input with the engine's own rules
 * (cs_policy_rules_validate, cs_url_base_valid, cs_header_forbidden), then
 * writes in one transaction. Grant secrets are encrypted here, before they
 * leave the process; API keys are generated here and only their SHA-256 is
 * stored. Strings in the specs are borrowed.
 */
#ifndef CS_ADMIN_H
#define CS_ADMIN_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "cs_crypto.h"
#include "cs_db.h"
#include "cs_envsig.h"
#include "cs_err.h"

#define CS_API_KEY_LEN 46 /* "cs_" + 43 base64url characters */

enum cs_err cs_admin_agent_create(struct cs_db *db, const char *name, char id[CS_UUID_STRLEN + 1],
                                  char *err) CS_MUSTCHECK;

/*
 * Issues an API key for `agent` with comma-separated scopes (NULL: submit,read).
 * key receives the key itself -- show it once; it is not stored.
 */
enum cs_err cs_admin_key_create(struct cs_db *db, const char *agent, const char *scopes,
                                char key[CS_API_KEY_LEN + 1], char id[CS_UUID_STRLEN + 1],
                                char prefix[16], char *err) CS_MUSTCHECK;

/*
 * Issues an envelope-signing key for `agent` (cs_envsig.h): kid receives its
 * id, secret the 64-character secret -- show it once; it is stored only
 * encrypted under the master key. With rotate_overlap_s >= 0 (a rotation)
 * the agent's newest live key stays live that many more seconds and any
 * older one expires now, in the same transaction. An agent has at most two
 * live keys: CS_ERR_CONFLICT when a create would make three.
 */
enum cs_err cs_admin_signing_key_create(struct cs_db *db, const unsigned char master[32],
                                        const char *agent, int rotate_overlap_s,
                                        char kid[CS_ENVSIG_KID_LEN + 1],
                                        char secret[CS_ENVSIG_SECRET_LEN + 1],
                                        char *err) CS_MUSTCHECK;

struct cs_approver_spec {
    const char *name, *email, *webhook_url, *slack_webhook_url;
    const char *agent;        /* the agent this person operates, or NULL */
    const char *oidc_subject; /* the ID token's `sub` that signs this person in, or NULL */
};
enum cs_err cs_admin_approver_create(struct cs_db *db, const struct cs_approver_spec *s,
                                     char id[CS_UUID_STRLEN + 1], char *err) CS_MUSTCHECK;

struct cs_policy_spec {
    const char *id, *mode;
    json_object *rules; /* array, or NULL for none */
    int quorum, window_seconds, exec_timeout_ms, max_attempts;
    const char *amount_field;
    int reminder_interval_s, escalate_after_s; /* 0: none */
    bool require_passkey;                      /* every vote a passkey assertion */
    int link_lifetime_s;                       /* > 0: semi-public link mode */
    const char *const *approvers;              /* approver names */
    int napprovers;
    const char *const *escalation; /* further approvers after escalate_after_s */
    int nescalation;
};
/* Creates or replaces a policy and its approvers. */
enum cs_err cs_admin_policy_set(struct cs_db *db, const struct cs_policy_spec *s,
                                char *err) CS_MUSTCHECK;

struct cs_grant_spec {
    const char *id, *policy_id;
    const char *inject; /* "bearer" (default when NULL), "basic", "header" */
    const char *inject_header;
    const char *const *bases;
    int nbases;
    const char *const *agents; /* agent names bound to the grant (added) */
    int nagents;
    bool idempotency_keys;
    const unsigned char *secret;
    size_t secret_len;
    /* Limits shared by every worker (0: the default) and the provider's
     * "key in progress" answer; README "Providers: limits and retries". */
    double rate_per_s;               /* token bucket refill; 0: no rate limit */
    int burst;                       /* bucket size (needs a rate); 0: rate/10, at least 1 */
    int max_in_flight;               /* 0: CS_GRANT_MAX_IN_FLIGHT */
    int exec_deadline_s;             /* 0: CS_GRANT_EXEC_DEADLINE_S */
    const char *in_progress_pattern; /* NULL: Stripe's 409 only */
};
#define CS_GRANT_MAX_IN_FLIGHT 16
#define CS_GRANT_BASES_MAX 64 /* allowed bases of one grant, however they are set */
#define CS_GRANT_EXEC_DEADLINE_S 3600
/* Creates or replaces a grant; encrypts the secret with the master key. */
enum cs_err cs_admin_grant_set(struct cs_db *db, const unsigned char master[32],
                               const struct cs_grant_spec *s, char *err) CS_MUSTCHECK;

/* Replaces a grant's allowed bases. */
enum cs_err cs_admin_grant_bases(struct cs_db *db, const char *id, const char *const *bases,
                                 int nbases, char *err) CS_MUSTCHECK;

/*
 * Pauses / resumes grant `id` as `actor` (e.g. "operator:cli"), audited as
 * grant.paused / grant.resumed. While paused no new call of the grant
 * starts: calls in flight finish, approved calls wait in the queue and start
 * after the resume. Pausing a
 * paused grant (resuming a running one) changes nothing and is not an
 * error: *changed (may be NULL) says whether this call did it.
 * CS_ERR_UNKNOWN_GRANT when there is no such grant.
 */
enum cs_err cs_grant_pause(struct cs_db *db, const char *id, const char *actor, bool *changed,
                           char *err) CS_MUSTCHECK;
enum cs_err cs_grant_resume(struct cs_db *db, const char *id, const char *actor, bool *changed,
                            char *err) CS_MUSTCHECK;

/* Approver `approver` is away: delegate votes to `delegate` in [from, until). */
enum cs_err cs_admin_delegate(struct cs_db *db, const char *approver, const char *delegate,
                              const char *from, const char *until, char id[CS_UUID_STRLEN + 1],
                              char *err) CS_MUSTCHECK;

#endif
