/*
 * cs_link.h -- the signed public links: an approval's approval_url and a
 * batch's page.
 *
 * These links show status to whoever holds them; they never let anyone
 * vote (a vote needs a signed-in approver: cs_session.h). Every place that
 * hands out a link calls cs_link_approval_path() or cs_link_batch_path()
 * with keys derived once (cs_link_keys_derive); nothing else signs tokens.
 *
 * A token is base64url( v=1 | approval id (16) | approver id (16) |
 * voter id (16) | expires_at in ms (8, big-endian) | HMAC-SHA256 (32) ),
 * the MAC keyed with a sub-key of the master key and taken over every byte
 * before it. The approver and voter fields are the nil UUID in every link
 * minted now (they named a voter when links could vote; the layout stays so
 * tokens keep one shape). Verification is constant-time, and a token dies
 * at its expires_at: the approval's (or batch's) expiry plus
 * CS_LINK_GRACE_MS, so the page stays readable a while after the window.
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
#define CS_LINK_VIEW_PURPOSE "countersign/status-link/v1" /* read-only status page */
#define CS_LINK_BATCH_PURPOSE "countersign/batch-link/v1" /* a batch's page */
#define CS_LINK_CSRF_PURPOSE "countersign/csrf/v2"        /* session form tokens */
#define CS_WEBHOOK_PURPOSE "countersign/webhook/v1"       /* approver webhook signatures */
#define CS_NIL_UUID "00000000-0000-0000-0000-000000000000"

/* The signing keys of the public links, derived once from the master key. */
struct cs_link_keys {
    unsigned char approval[32]; /* /status/<token>: an approval's approval_url */
    unsigned char batch[32];    /* /batch/<token>: a batch's page */
};
void cs_link_keys_derive(const unsigned char master[32], struct cs_link_keys *k);
void cs_link_keys_wipe(struct cs_link_keys *k);

/* How long a link outlives its approval's window (status stays readable). */
#define CS_LINK_GRACE_MS (30LL * 86400 * 1000)
#define CS_LINK_PATH_MAX (8 + CS_LINK_TOKEN_LEN + 1)

/*
 * The path of approval `id`'s approval_url ("/status/<token>") or of batch
 * `uid`'s page ("/batch/<token>"), valid until expires_ms +
 * CS_LINK_GRACE_MS. The same approval always gets the same link. The id
 * must be a UUID (cs_assert: ids come from the database or cs_uuid_v7).
 */
void cs_link_approval_path(const struct cs_link_keys *k, const char *id, int64_t expires_ms,
                           char out[CS_LINK_PATH_MAX]);
void cs_link_batch_path(const struct cs_link_keys *k, const char *uid, int64_t expires_ms,
                        char out[CS_LINK_PATH_MAX]);

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

/* "<public_url><path>" (path starts with '/'), cs_malloc'd. */
char *cs_link_url(const char *public_url, const char *path);

#endif
