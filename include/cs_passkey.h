/*
 * cs_passkey.h -- an approver's passkeys and the assertion a vote carries.
 *
 * A signed-in approver registers passkeys (WebAuthn credentials: only the
 * public key is kept). A policy with require_passkey makes every vote on
 * its approvals carry an assertion whose challenge commits to the approval
 * id, the request digest, the decision, the reason and a nonce of the page
 * (cs_webauthn_vote_challenge). The server verifies it -- origin, RP ID,
 * user presence and verification, signature, a counter that never goes
 * back -- and the vote's audit entry keeps it whole, so `countersign audit
 * verify` re-verifies every stored assertion against the registered key:
 * an auditor can show the vote came from the approver's device for exactly
 * that request, not merely from a session. The cryptography is
 * lib/cs_webauthn.c; this file is the storage around it.
 *
 * Thread: every function uses the caller's connection only.
 */
#ifndef CS_PASSKEY_H
#define CS_PASSKEY_H

#include "cs_crypto.h"
#include "cs_db.h"
#include "cs_err.h"

/* The relying party: rp_id is CS_PUBLIC_URL's host, origin its scheme://host[:port]. */
struct cs_passkey_rp {
    const char *rp_id;
    const char *origin;
};

/*
 * Registers a passkey for approver_id from navigator.credentials.create()'s
 * clientDataJSON and attestationObject (base64url text), made for
 * `challenge` (which the caller issued and checked). id gets the new
 * passkey's id. CS_ERR_UNAUTHENTICATED / CS_ERR_INVALID when it does not
 * verify; CS_ERR_DUPLICATE when the credential is registered already.
 */
enum cs_err cs_passkey_register(struct cs_db *db, const struct cs_passkey_rp *rp,
                                const char *approver_id, const char *name,
                                const unsigned char *challenge, size_t challenge_len,
                                const char *client_data_json, const char *attestation_object,
                                char id[CS_UUID_STRLEN + 1], char *err) CS_MUSTCHECK;

/* A vote's assertion as the browser sent it (base64url text) and the page's nonce. */
struct cs_passkey_assertion {
    const char *credential_id;
    const char *authenticator_data;
    const char *client_data_json;
    const char *signature;
    const char *nonce;
};

/*
 * Verifies the assertion of person `voter_id` for a vote on approval_id
 * (request digest digest_hex, decision "approve" or "deny", reason or
 * NULL) with one of that person's live passkeys, and moves its counter on
 * (guarded: a replay loses). Fills passkey_id and *detail, the audit
 * record of the assertion (cs_malloc'd JSON text; everything `audit
 * verify` needs to re-check it). CS_ERR_UNAUTHENTICATED when it does not
 * verify.
 */
enum cs_err cs_passkey_verify_vote(struct cs_db *db, const struct cs_passkey_rp *rp,
                                   const char *voter_id, const char *approval_id,
                                   const char *digest_hex, const char *decision, const char *reason,
                                   const struct cs_passkey_assertion *a,
                                   char passkey_id[CS_UUID_STRLEN + 1], char **detail,
                                   char *err) CS_MUSTCHECK;

/*
 * Re-verifies a stored vote assertion: `detail` is the vote's audit detail
 * (JSON text with its "passkey" record, "reason" and "cast_by"),
 * `decision` its action's decision. The registered key must be the
 * voter's. CS_ERR_UNAUTHENTICATED with the reason when it fails.
 */
enum cs_err cs_passkey_reverify(struct cs_db *db, const char *approval_id, const char *decision,
                                const char *detail, char *err) CS_MUSTCHECK;

#endif
