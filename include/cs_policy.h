/*
 * cs_policy.h -- when a call needs approval, and by whom.
 *
 * mode "always": every call needs approval. "never": none does.
 * "rules": a call needs approval when any rule matches. A rule is an
 * object whose present conditions must all hold:
 *   {"method": "POST" | ["POST","PUT"],   -- exact, case-insensitive
 *    "path": "/v1/refunds*",              -- fnmatch(3) glob on the URL path
 *    "field": "amount" | "data.amount",   -- dotted path into a JSON body
 *    "op": ">" | ">=" | "<" | "<=" | "==" | "!=",
 *    "value": 100,                        -- number (strings only with == / !=)
 *    "description": "..."}                -- shown to approvers, optional
 * "field", "op" and "value" go together. A key holding null is refused
 * (it does not read as missing).
 *
 * Fail closed: a rule that matches on method and path but cannot read its
 * field (body not JSON, field missing or of another type) makes the
 * request unevaluable, and it is refused (CS_ERR_POLICY) -- it is never
 * executed without approval. A quorum below 1, or above the number of
 * approvers, is refused the same way.
 */
#ifndef CS_POLICY_H
#define CS_POLICY_H

#include <json-c/json.h>
#include <stdbool.h>

#include "cs_crypto.h"
#include "cs_err.h"
#include "cs_request.h"

enum cs_policy_mode { CS_POLICY_ALWAYS, CS_POLICY_NEVER, CS_POLICY_RULES };

/* One approver slot: whose vote, and who holds the link right now. */
struct cs_policy_approver {
    char approver_id[CS_UUID_STRLEN + 1];
    char voter_id[CS_UUID_STRLEN + 1]; /* a delegate, or approver_id */
};

struct cs_policy {
    char *id;
    enum cs_policy_mode mode;
    json_object *rules; /* owned, validated array */
    int quorum;
    int window_seconds;
    int exec_timeout_ms;
    int max_attempts;
    char *amount_field;      /* NULL when unset */
    int reminder_interval_s; /* 0 when unset */
    int escalate_after_s;    /* 0 when unset */
    struct cs_policy_approver *approvers;
    int napprovers;
    char (*escalation)[CS_UUID_STRLEN + 1]; /* added after escalate_after_s */
    int nescalation;
    bool require_passkey; /* every vote carries a WebAuthn assertion */
    int link_lifetime_s;  /* > 0: semi-public link mode, the approval_url decides this long */
};

/* Parses "always" | "never" | "rules"; -1 otherwise. */
int cs_policy_mode_parse(const char *s);
const char *cs_policy_mode_name(enum cs_policy_mode m);

/* Validates a rules array (for policy creation and when loading). */
enum cs_err cs_policy_rules_validate(json_object *rules, char *err) CS_MUSTCHECK;

/*
 * Decides whether rq needs approval under p (p->rules validated). CS_ERR_POLICY
 * (with the reason in err, and *needs_approval true) when it cannot be
 * decided or could never be approved: a rule's field unreadable because the
 * body is not JSON, missing (a body of null has no fields) or of another type.
 */
enum cs_err cs_policy_evaluate(const struct cs_policy *p, const struct cs_request *rq,
                               bool *needs_approval, char *err) CS_MUSTCHECK;

/* The snapshot stored on each approval (new object owned by the caller). */
json_object *cs_policy_snapshot(const struct cs_policy *p, bool idempotency_keys);

void cs_policy_free(struct cs_policy *p);

#endif
