/*
 * cs_passkey.c -- passkey storage around lib/cs_webauthn.c (see cs_passkey.h).
 *
 * The audit record of a vote assertion holds the base64url fields as the
 * browser sent them plus the RP ID, origin, nonce and digest it was
 * checked against, so re-verification needs nothing but the registered
 * public key (kept after revocation for exactly that).
 */
#include "cs_passkey.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "cs_json.h"
#include "cs_mem.h"
#include "cs_webauthn.h"

/* Decodes base64url text of at most max bytes; CS_ERR_INVALID names the field. */
static enum cs_err b64u(const char *s, size_t max, const char *what, unsigned char **out,
                        size_t *len, char *err)
{
    *out = NULL;
    *len = 0;
    if (!s || !*s || strlen(s) > 4 * max / 3 + 4 ||
        cs_b64_decode(s, strlen(s), true, out, len) != CS_OK || *len == 0 || *len > max) {
        cs_free(*out);
        *out = NULL;
        return cs_err_set(err, CS_ERR_INVALID, "%s: expected base64url of 1-%zu bytes", what, max);
    }
    return CS_OK;
}

static char *hex_of(const unsigned char *p, size_t n)
{
    char *h = cs_malloc(2 * n + 1);
    cs_hex_encode(p, n, h);
    return h;
}

enum cs_err cs_passkey_register(struct cs_db *db, const struct cs_passkey_rp *rp,
                                const char *approver_id, const char *name,
                                const unsigned char *challenge, size_t challenge_len,
                                const char *client_data_json, const char *attestation_object,
                                char id[CS_UUID_STRLEN + 1], char *err)
{
    unsigned char *cdj = NULL, *ao = NULL;
    size_t cdj_len = 0, ao_len = 0;
    struct cs_webauthn_credential cred = {0};
    size_t nl = name ? strlen(name) : 0;
    if (nl < 1 || nl > 64)
        return cs_err_set(err, CS_ERR_INVALID, "a passkey's name is 1-64 characters");
    enum cs_err rc =
        b64u(client_data_json, CS_WEBAUTHN_CDJ_MAX, "client_data_json", &cdj, &cdj_len, err);
    if (!rc)
        rc = b64u(attestation_object, CS_WEBAUTHN_AO_MAX, "attestation_object", &ao, &ao_len, err);
    if (!rc)
        rc = cs_webauthn_register(rp->rp_id, rp->origin, challenge, challenge_len, cdj, cdj_len, ao,
                                  ao_len, true, &cred, err);
    if (!rc) {
        char *cid = hex_of(cred.id, cred.id_len),
             *key = hex_of(cred.public_key, cred.public_key_len);
        char alg[16], count[24];
        snprintf(alg, sizeof(alg), "%d", cred.alg);
        snprintf(count, sizeof(count), "%u", cred.sign_count);
        cs_uuid_v7(id);
        const char *p[] = {id, approver_id, cid, key, alg, count, name};
        rc = cs_db_exec(db, CS_DB_Q(PASSKEY_INSERT, p), NULL, err);
        if (rc == CS_ERR_DUPLICATE)
            cs_err_set(err, rc, "this passkey is registered already");
        cs_free(cid);
        cs_free(key);
    }
    cs_webauthn_credential_free(&cred);
    cs_free(cdj);
    cs_free(ao);
    return rc;
}

/* The audit record of an assertion (see the file comment). */
static char *assertion_detail(const struct cs_passkey_rp *rp, const char *passkey_id,
                              const char *digest_hex, const struct cs_passkey_assertion *a)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "passkey_id", json_object_new_string(passkey_id));
    json_object_object_add(o, "rp_id", json_object_new_string(rp->rp_id));
    json_object_object_add(o, "origin", json_object_new_string(rp->origin));
    json_object_object_add(o, "digest", json_object_new_string(digest_hex));
    json_object_object_add(o, "nonce", json_object_new_string(a->nonce));
    json_object_object_add(o, "credential_id", json_object_new_string(a->credential_id));
    json_object_object_add(o, "authenticator_data", json_object_new_string(a->authenticator_data));
    json_object_object_add(o, "client_data_json", json_object_new_string(a->client_data_json));
    json_object_object_add(o, "signature", json_object_new_string(a->signature));
    char *text = cs_strdup(cs_json_text(o, NULL));
    json_object_put(o);
    return text;
}

/* Decodes the assertion's fields and checks it with key (hex) for the vote's challenge. */
static enum cs_err check(const char *rp_id, const char *origin, const char *key_hex,
                         uint32_t stored, const char *approval_id, const char *digest_hex,
                         const char *decision, const char *reason,
                         const struct cs_passkey_assertion *a, uint32_t *count, char *err)
{
    unsigned char *ad = NULL, *cdj = NULL, *sig = NULL, challenge[32];
    size_t ad_len = 0, cdj_len = 0, sig_len = 0, klen = key_hex ? strlen(key_hex) / 2 : 0;
    unsigned char *key = cs_malloc(klen ? klen : 1);
    enum cs_err rc = klen && cs_hex_decode(key_hex, 2 * klen, key, klen) == CS_OK
                         ? CS_OK
                         : cs_err_set(err, CS_ERR_INTERNAL, "stored passkey unreadable");
    /* The challenge text joins fields with newlines: none may hold one. */
    static const char nonce_chars[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
    if (!rc && (!a->nonce || !*a->nonce || strlen(a->nonce) > 128 ||
                strspn(a->nonce, nonce_chars) != strlen(a->nonce)))
        rc = cs_err_set(err, CS_ERR_INVALID, "the page's passkey nonce is missing or malformed");
    if (!rc && (strpbrk(approval_id, "\n") || strpbrk(digest_hex, "\n")))
        rc = cs_err_set(err, CS_ERR_INVALID, "the vote's id or digest is malformed");
    if (!rc)
        rc = b64u(a->authenticator_data, CS_WEBAUTHN_AD_MAX, "authenticator_data", &ad, &ad_len,
                  err);
    if (!rc)
        rc =
            b64u(a->client_data_json, CS_WEBAUTHN_CDJ_MAX, "client_data_json", &cdj, &cdj_len, err);
    if (!rc)
        rc = b64u(a->signature, 1024, "signature", &sig, &sig_len, err);
    if (!rc) {
        cs_webauthn_vote_challenge(approval_id, digest_hex, decision, reason, a->nonce, challenge);
        rc = cs_webauthn_verify(rp_id, origin, challenge, sizeof(challenge), key, klen, stored, ad,
                                ad_len, cdj, cdj_len, sig, sig_len, true, count, err);
    }
    cs_free(key);
    cs_free(ad);
    cs_free(cdj);
    cs_free(sig);
    return rc;
}

enum cs_err cs_passkey_verify_vote(struct cs_db *db, const struct cs_passkey_rp *rp,
                                   const char *voter_id, const char *approval_id,
                                   const char *digest_hex, const char *decision, const char *reason,
                                   const struct cs_passkey_assertion *a,
                                   char passkey_id[CS_UUID_STRLEN + 1], char **detail, char *err)
{
    *detail = NULL;
    unsigned char *cid = NULL;
    size_t cid_len = 0;
    enum cs_err rc =
        b64u(a->credential_id, CS_WEBAUTHN_CRED_ID_MAX, "credential_id", &cid, &cid_len, err);
    if (rc)
        return cs_err_set(err, CS_ERR_UNAUTHENTICATED, "this vote needs a passkey: none was sent");
    char *cid_hex = hex_of(cid, cid_len);
    cs_free(cid);
    const char *p[] = {voter_id, cid_hex};
    PGresult *res = NULL;
    rc = cs_db_exec(db, CS_DB_Q(PASSKEY_FOR_VOTE, p), &res, err);
    cs_free(cid_hex);
    if (rc)
        return rc;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return cs_err_set(err, CS_ERR_UNAUTHENTICATED,
                          "this passkey is not one of yours, or it was revoked");
    }
    cs_strlcpy(passkey_id, cs_db_str(res, 0, CSC_PASSKEY_FOR_VOTE_ID), CS_UUID_STRLEN + 1);
    uint32_t stored = (uint32_t)cs_db_int(res, 0, CSC_PASSKEY_FOR_VOTE_SIGN_COUNT), count = 0;
    rc = check(rp->rp_id, rp->origin, cs_db_str(res, 0, CSC_PASSKEY_FOR_VOTE_PUBLIC_KEY_HEX),
               stored, approval_id, digest_hex, decision, reason, a, &count, err);
    PQclear(res);
    if (!rc) {
        char old[24], now[24];
        snprintf(old, sizeof(old), "%u", stored);
        snprintf(now, sizeof(now), "%u", count);
        const char *cp[] = {passkey_id, old, now};
        rc = cs_db_exec(db, CS_DB_Q(PASSKEY_COUNT, cp), &res, err);
        if (!rc && PQntuples(res) != 1)
            rc = cs_err_set(err, CS_ERR_UNAUTHENTICATED,
                            "this passkey was used at the same time elsewhere: refused");
        PQclear(res);
    }
    if (!rc)
        *detail = assertion_detail(rp, passkey_id, digest_hex, a);
    return rc;
}

static const char *field(json_object *o, const char *k)
{
    json_object *v = NULL;
    return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

enum cs_err cs_passkey_reverify(struct cs_db *db, const char *approval_id, const char *decision,
                                const char *detail, char *err)
{
    json_object *d = NULL, *pk = NULL;
    enum cs_err rc = cs_json_parse(detail, strlen(detail), &d, err);
    if (rc)
        return cs_err_set(err, CS_ERR_UNAUTHENTICATED, "the vote's audit detail is not JSON");
    if (!json_object_object_get_ex(d, "passkey", &pk) || !field(pk, "passkey_id") ||
        !cs_uuid_valid(field(pk, "passkey_id")) || !field(d, "cast_by")) {
        json_object_put(d);
        return cs_err_set(err, CS_ERR_UNAUTHENTICATED, "the vote's passkey record is incomplete");
    }
    const char *p[] = {field(pk, "passkey_id")};
    PGresult *res = NULL;
    rc = cs_db_exec(db, CS_DB_Q(PASSKEY_KEY, p), &res, err);
    if (!rc && (PQntuples(res) != 1 ||
                strcmp(cs_db_str(res, 0, CSC_PASSKEY_KEY_APPROVER_ID), field(d, "cast_by")) != 0))
        rc = cs_err_set(err, CS_ERR_UNAUTHENTICATED,
                        "the passkey is not the voter's registered key");
    if (!rc) {
        struct cs_passkey_assertion a = {
            field(pk, "credential_id"), field(pk, "authenticator_data"),
            field(pk, "client_data_json"), field(pk, "signature"), field(pk, "nonce")};
        uint32_t count = 0;
        rc = check(field(pk, "rp_id") ? field(pk, "rp_id") : "",
                   field(pk, "origin") ? field(pk, "origin") : "",
                   cs_db_str(res, 0, CSC_PASSKEY_KEY_PUBLIC_KEY_HEX), 0, approval_id,
                   field(pk, "digest") ? field(pk, "digest") : "", decision, field(d, "reason"), &a,
                   &count, err);
        if (rc) {
            char why[CS_ERRLEN];
            cs_strlcpy(why, err, sizeof(why));
            rc = cs_err_set(err, CS_ERR_UNAUTHENTICATED, "the assertion does not verify: %s", why);
        }
    }
    PQclear(res);
    json_object_put(d);
    return rc;
}
