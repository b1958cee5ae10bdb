/*
 * cs_webauthn.h -- WebAuthn (passkey) verification for the relying party:
 * registering an approver's credential and verifying the assertions that
 * carry a vote, with the challenge a vote commits to.
 *
 * Pure functions, no I/O, no state, no locks: the api calls them from its
 * HTTP threads, `countersign audit verify` to re-check a recorded vote,
 * tests/fuzz/fuzz_webauthn.c with anything. Only two algorithms: ES256
 * (COSE -7, EC2 P-256, DER ECDSA signatures as browsers send them) and
 * RS256 (COSE -257, RSA 2048..8192 bits, PKCS#1 v1.5); EdDSA and the rest
 * are refused. Attestation is NOT verified: any fmt is accepted and its
 * statement only checked to be well-formed CBOR ("none" must be empty), so
 * registration proves nothing about the authenticator's make or model --
 * we need no attestation trust, only the same key at every vote.
 *
 * CBOR (attestationObject, COSE_Key, extensions) is read by a strict
 * RFC 8949 subset: unsigned and negative integers, byte and text (UTF-8)
 * strings, arrays, maps with integer or string keys, false/true/null;
 * definite lengths only, at most 8 nested arrays or maps, 64 pairs a map;
 * indefinite lengths, tags, floats, other simple values, duplicate map
 * keys and trailing bytes are refused, every length is checked against
 * what remains.
 *
 * Errors: CS_ERR_INVALID for malformed or unsupported input (bad CBOR or
 * JSON, sizes, a key we cannot use); CS_ERR_UNAUTHENTICATED for a check
 * that fails (type, challenge, origin, crossOrigin, rpIdHash, flags,
 * signature, counter). err names the check and never quotes the input.
 */
#ifndef CS_WEBAUTHN_H
#define CS_WEBAUTHN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cs_err.h"

#define CS_WEBAUTHN_CRED_ID_MAX 1023   /* credential id, bytes (WebAuthn L3) */
#define CS_WEBAUTHN_KEY_MAX 2048       /* a COSE_Key, bytes (RSA-8192 fits) */
#define CS_WEBAUTHN_CDJ_MAX 8192       /* clientDataJSON, bytes */
#define CS_WEBAUTHN_AO_MAX (64 * 1024) /* attestationObject, bytes */
#define CS_WEBAUTHN_AD_MAX (16 * 1024) /* an assertion's authenticatorData, bytes */
#define CS_WEBAUTHN_CHALLENGE_MIN 16   /* challenge, bytes */
#define CS_WEBAUTHN_CHALLENGE_MAX 64
#define CS_WEBAUTHN_ALG_ES256 (-7)
#define CS_WEBAUTHN_ALG_RS256 (-257)

/* What registration yields and the server stores. */
struct cs_webauthn_credential {
    unsigned char *id;         /* credential id from authenticatorData (cs_malloc'd) */
    size_t id_len;             /* 1..CS_WEBAUTHN_CRED_ID_MAX */
    unsigned char *public_key; /* the COSE_Key bytes as sent (cs_malloc'd) */
    size_t public_key_len;     /* <= CS_WEBAUTHN_KEY_MAX */
    int alg;                   /* CS_WEBAUTHN_ALG_ES256 or CS_WEBAUTHN_ALG_RS256 */
    uint32_t sign_count;       /* the authenticator's counter at registration (often 0) */
    bool user_verified;        /* UV was set at registration */
};

/* Frees the members of c and zeroes it (the struct itself is the caller's); NULL ok. */
void cs_webauthn_credential_free(struct cs_webauthn_credential *c);

/*
 * Verifies a navigator.credentials.create() result (all inputs are the
 * decoded bytes, not base64url):
 *   clientDataJSON (<= CS_WEBAUTHN_CDJ_MAX, strict JSON object): type
 *     "webauthn.create", challenge == base64url(challenge) (no padding),
 *     origin == origin exactly, crossOrigin absent or false, tokenBinding
 *     not "present"; other members ignored;
 *   attestationObject (<= CS_WEBAUTHN_AO_MAX): a CBOR map of exactly fmt
 *     (text), attStmt (map; empty for "none") and authData (bytes); the
 *     statement is not verified (see above);
 *   authData: rpIdHash == SHA-256(rp_id), UP set, UV set when require_uv,
 *     BS only with BE, AT set, credential id of 1..1023 bytes, a COSE_Key
 *     EC2 P-256 alg -7 (a point on the curve) or RSA alg -257 with n of
 *     2048..8192 bits (private-key members refused, others ignored),
 *     extensions a CBOR map when ED is set, nothing after.
 * challenge is CS_WEBAUTHN_CHALLENGE_MIN..MAX bytes. CS_OK: *out filled,
 * its members the caller's (cs_webauthn_credential_free). Otherwise *out
 * is zeroed. Thread: any.
 */
enum cs_err cs_webauthn_register(const char *rp_id, const char *origin,
                                 const unsigned char *challenge, size_t challenge_len,
                                 const unsigned char *client_data_json, size_t cdj_len,
                                 const unsigned char *attestation_object, size_t ao_len,
                                 bool require_uv, struct cs_webauthn_credential *out,
                                 char *err) CS_MUSTCHECK;

/*
 * Verifies a navigator.credentials.get() result against a stored
 * credential (public_key: the COSE_Key bytes registration stored;
 * stored_count: its counter). Order: the stored key, the shape of
 * authenticatorData (<= CS_WEBAUTHN_AD_MAX: 37 bytes, AT not set,
 * extensions a CBOR map when ED is set, nothing after), the signature over
 * authenticatorData || SHA-256(clientDataJSON) (ES256: DER ECDSA; RS256:
 * exactly the modulus length), then clientDataJSON as for registration
 * with type "webauthn.get", rpIdHash, UP, UV when require_uv, BS only with
 * BE, and the counter: when stored and new counts are both 0 the
 * authenticator keeps no counter (accepted); otherwise the new one must be
 * greater (refused as a possibly cloned authenticator). Before the
 * signature holds only the shape of authenticatorData is looked at, none
 * of its values. CS_OK: *new_count is the counter to store; otherwise it
 * is stored_count. To re-verify a recorded assertion later (audit), pass
 * stored_count 0: the counter proves nothing after the fact, every other
 * check still applies. Thread: any.
 */
enum cs_err cs_webauthn_verify(const char *rp_id, const char *origin,
                               const unsigned char *challenge, size_t challenge_len,
                               const unsigned char *public_key, size_t public_key_len,
                               uint32_t stored_count, const unsigned char *authenticator_data,
                               size_t ad_len, const unsigned char *client_data_json, size_t cdj_len,
                               const unsigned char *signature, size_t sig_len, bool require_uv,
                               uint32_t *new_count, char *err) CS_MUSTCHECK;

/*
 * The challenge a vote's assertion must carry (32 bytes): SHA-256 of
 *   "countersign/vote/v1\n" approval_id "\n" digest_hex "\n" decision "\n"
 *   hex(SHA-256(reason, or "" when NULL)) "\n" nonce
 * where nonce is the server-issued random value of the page (base64url
 * text). approval_id, digest_hex, decision and nonce are a UUID, hex, a
 * decision word and base64url -- none holds '\n', so the text is
 * unambiguous (callers validate them; reason is hashed and may hold
 * anything). The server computes it to verify a vote and `countersign
 * audit verify` to re-verify one, so an auditor can show the vote came
 * from the approver's device for exactly that request. Thread: any.
 */
void cs_webauthn_vote_challenge(const char *approval_id, const char *digest_hex,
                                const char *decision, const char *reason, const char *nonce,
                                unsigned char out[32]);

#endif
