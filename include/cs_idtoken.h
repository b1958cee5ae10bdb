/*
 * cs_idtoken.h -- OpenID Connect ID tokens: the provider's key set (JWKS)
 * and the verification of a signed ID token against it.
 *
 * Pure functions, no network and no state: lib/cs_oidc.c feeds them what
 * it fetched and caches, the unit tests and tests/fuzz/fuzz_oidc.c feed
 * them anything. Every refusal is CS_ERR_UNAUTHENTICATED with a detail
 * naming the check that failed and never quoting the token.
 */
#ifndef CS_IDTOKEN_H
#define CS_IDTOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cs_err.h"

#define CS_OIDC_TOKEN_MAX (16 * 1024) /* an ID token, in bytes */
#define CS_OIDC_JWKS_MAX (256 * 1024) /* a JWKS document, in bytes */
#define CS_OIDC_JWKS_KEYS 64          /* keys in one JWKS */

/* Who signed in, from a verified ID token. */
struct cs_oidc_identity {
    char iss[256];       /* the configured issuer */
    char sub[256];       /* 1..255 bytes; (iss, sub) is the stable identity */
    char email[320];     /* "" when absent or unusable */
    bool email_verified; /* false when absent */
    char name[256];      /* "" when absent or unusable */
    char roles[1024];    /* values of the role claim asked for, each followed by '\n' */
};

struct cs_jwks;

/*
 * Parses a JWKS ({"keys": [...]}, at most CS_OIDC_JWKS_MAX bytes and
 * CS_OIDC_JWKS_KEYS keys). Keys we cannot verify with are skipped: kty
 * other than RSA or EC, EC curves other than P-256 (or a point off it),
 * RSA under 2048 or over 8192 bits, use other than "sig", alg other than
 * RS256/ES256 or not the key's type, key_ops without "verify", a kid that
 * is not a string of 1..255 bytes, broken numbers. CS_OK: *out is the
 * caller's (cs_jwks_free). CS_ERR_INVALID (*out NULL) when the document is
 * malformed, too large or holds no usable key. Thread: any.
 */
enum cs_err cs_jwks_parse(const char *json, size_t len, struct cs_jwks **out,
                          char *err) CS_MUSTCHECK;
void cs_jwks_free(struct cs_jwks *k); /* NULL ok */
/* Usable keys in k (0 for NULL). */
size_t cs_jwks_count(const struct cs_jwks *k);

/*
 * Verifies a JWS compact ID token (<= CS_OIDC_TOKEN_MAX bytes) at now_s:
 *   header: alg RS256 or ES256 (none, HS*, anything else and a missing alg
 *     refused), no crit, typ absent or "JWT";
 *   key: the one with the token's kid, or without kid the only key of the
 *     alg's type; its type and (when it names one) alg must match the header;
 *   signature over "<header>.<payload>";
 *   claims: iss == issuer; aud == client_id or an array holding it (with
 *     more than one entry azp is required; azp, when present, == client_id);
 *     exp > now - leeway; iat present and <= now + leeway; nbf, if present,
 *     <= now + leeway; nonce present and == nonce (constant time); sub of
 *     1..255 bytes. email, email_verified and name are copied when present,
 *     of the right type and short enough; otherwise left empty/false.
 * leeway_s is clamped to 0..600. CS_OK: *id filled. CS_ERR_UNAUTHENTICATED:
 * refused, *id zeroed, and *unknown_key (may be NULL) true when the set held
 * no key for the token's kid (or, without kid, none of its type): a fresher
 * JWKS might. CS_ERR_INVALID: keys, issuer, client_id or nonce missing.
 * Thread: any (keys is only read).
 */
enum cs_err cs_oidc_verify_id_token(const struct cs_jwks *keys, const char *jwt, const char *issuer,
                                    const char *client_id, const char *nonce, int64_t now_s,
                                    int leeway_s, const char *role_claim,
                                    struct cs_oidc_identity *id, bool *unknown_key,
                                    char *err) CS_MUSTCHECK;

#endif
