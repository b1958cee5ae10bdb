/*
 * cs_link.h -- signed, per-approver approval links.
 *
 * A token is base64url( v=1 | approval id (16) | approver id (16) |
 * voter id (16) | expires_at in ms (8, big-endian) | HMAC-SHA256 (32) ),
 * the MAC keyed with a sub-key of the master key and taken over every byte
 * before it. `approver` is whose vote the link casts; `voter` is the
 * person holding it (the approver, or a delegate while a delegation lasts).
 * Verification is constant-time, and a token dies at expires_at, which is
 * the approval's own expiry: the link never outlives the window.
 *
 * Inbox tokens (cs_link_inbox_*) use the same layout with a nil approval id.
 */
#ifndef CS_LINK_H
#define CS_LINK_H

#include <stdint.h>

#include "cs_crypto.h"
#include "cs_err.h"
#include "cs_time.h"

#define CS_LINK_TOKEN_LEN 119

struct cs_link {
    char approval_id[CS_UUID_STRLEN + 1];
    char approver_id[CS_UUID_STRLEN + 1];
    char voter_id[CS_UUID_STRLEN + 1];
    int64_t expires_ms;
};

/* Purposes of the other signed links (sub-keys via cs_key_derive). */
#define CS_LINK_VIEW_PURPOSE "countersign/status-link/v1"   /* read-only status page */
#define CS_LINK_INBOX_PURPOSE "countersign/inbox-link/v1"   /* an approver's inbox */
#define CS_LINK_CSRF_PURPOSE "countersign/csrf/v1"          /* decision form tokens */
#define CS_WEBHOOK_PURPOSE "countersign/webhook/v1"         /* approver webhook signatures */
#define CS_NIL_UUID "00000000-0000-0000-0000-000000000000"

/* The approval-link signing key derived from the master key. */
void cs_link_key(const unsigned char master[32], unsigned char key[32]);

/* Signs l into out[CS_LINK_TOKEN_LEN + 1]; CS_ERR_INVALID if an id is not a UUID. */
enum cs_err cs_link_sign(const unsigned char key[32], const struct cs_link *l,
                         char out[CS_LINK_TOKEN_LEN + 1]) CS_MUSTCHECK;

/*
 * Verifies token at time now_ms. CS_ERR_BAD_TOKEN for anything malformed,
 * forged or tampered; CS_ERR_EXPIRED (with *out filled) when only the
 * expiry has passed.
 */
enum cs_err cs_link_verify(const unsigned char key[32], const char *token, int64_t now_ms,
                           struct cs_link *out, char *err) CS_MUSTCHECK;

/* "<public_url>/approve/<token>", cs_malloc'd. */
char *cs_link_url(const char *public_url, const char *path, const char *token);

#endif
