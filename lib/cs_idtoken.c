/*
 * cs_idtoken.c -- JWKS parsing and OpenID Connect ID-token verification
 * (see cs_idtoken.h).
 *
 * Pure: no I/O, no state, no locks; lib/cs_oidc.c calls it from the api's
 * HTTP threads with the JWKS it caches, tests/fuzz/fuzz_oidc.c with
 * anything. The order of checks is fixed: size and shape, header (alg,
 * crit, typ, kid), key, signature, and only then the claims, so no claim
 * of an unsigned or forged token is ever parsed. Keys come only from the
 * provider's JWKS: a token's own jwk, jku, x5u or x5c headers are never
 * looked at. One spelling per token: base64url without padding, an RSA
 * signature exactly as long as the modulus, ES256 exactly 64 bytes (R||S,
 * turned into DER for OpenSSL).
 *
 * Refusals name the check that failed, never a value from the token.
 * Deliberately not done: algorithms other than RS256 and ES256 (no HS*,
 * PS*, EdDSA, none), encrypted tokens, at_hash/c_hash, auth_time/max_age.
 */
#include "cs_idtoken.h"

#include <json-c/json.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <string.h>
#include <strings.h>

#include "cs_crypto.h"
#include "cs_json.h"
#include "cs_mem.h"

#define LEEWAY_MAX 600
#define AUD_MAX 64

/* ---- JWKS ---- */

enum kty { KTY_RSA, KTY_EC };
enum alg { ALG_RS256, ALG_ES256 };

struct jwk {
    char *kid; /* NULL when the key has none */
    enum kty kty;
    bool has_alg; /* the JWK names its alg: the token's must be the same */
    enum alg alg;
    EVP_PKEY *pkey;
};

struct cs_jwks {
    struct jwk *keys;
    size_t n;
};

/*
 * v as a C string, or NULL when it is not a string or holds a NUL: json-c
 * keeps "\u0000" escapes, and "countersign\u0000x" read as a C string
 * would pass for "countersign" (an aud, a sub or an email cut short).
 */
static const char *cstr(json_object *v)
{
    if (!json_object_is_type(v, json_type_string))
        return NULL;
    const char *s = json_object_get_string(v);
    return strlen(s) == (size_t)json_object_get_string_len(v) ? s : NULL;
}

/* A string member: 0 absent (or null), 1 read into *out, -1 another type or with a NUL. */
static int jstr(json_object *o, const char *key, const char **out)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, key, &v) || !v)
        return 0;
    return (*out = cstr(v)) ? 1 : -1;
}

/* Strict base64url without padding; NULL when s[n] is not that. */
static unsigned char *b64u(const char *s, size_t n, size_t *outlen)
{
    unsigned char *p = NULL;
    if (memchr(s, '=', n) || cs_b64_decode(s, n, true, &p, outlen) != CS_OK)
        return NULL;
    return p;
}

/* An RSA public key of 2048..8192 bits with an odd exponent >= 3 from n and e; NULL otherwise. */
static EVP_PKEY *rsa_key(json_object *k)
{
    const char *n64 = NULL, *e64 = NULL;
    if (jstr(k, "n", &n64) != 1 || jstr(k, "e", &e64) != 1)
        return NULL;
    size_t nlen = 0, elen = 0;
    unsigned char *n = b64u(n64, strlen(n64), &nlen), *e = b64u(e64, strlen(e64), &elen);
    EVP_PKEY *pkey = n && e ? cs_pkey_rsa(n, nlen, e, elen) : NULL;
    cs_free(n);
    cs_free(e);
    return pkey;
}

/* A P-256 public key from x and y (32 bytes each, a point on the curve); NULL otherwise. */
static EVP_PKEY *ec_key(json_object *k)
{
    const char *crv = NULL, *x64 = NULL, *y64 = NULL;
    if (jstr(k, "crv", &crv) != 1 || strcmp(crv, "P-256") != 0 || jstr(k, "x", &x64) != 1 ||
        jstr(k, "y", &y64) != 1)
        return NULL;
    size_t xlen = 0, ylen = 0;
    unsigned char *x = b64u(x64, strlen(x64), &xlen), *y = b64u(y64, strlen(y64), &ylen);
    EVP_PKEY *pkey = x && y && xlen == 32 && ylen == 32 ? cs_pkey_p256(x, y) : NULL;
    cs_free(x);
    cs_free(y);
    return pkey;
}

static int alg_parse(const char *s)
{
    if (strcmp(s, "RS256") == 0)
        return ALG_RS256;
    if (strcmp(s, "ES256") == 0)
        return ALG_ES256;
    return -1;
}

/* One JWK into *out; false when it cannot verify RS256 or ES256 signatures. */
static bool jwk_parse(json_object *k, struct jwk *out)
{
    const char *kty = NULL, *use = NULL, *alg = NULL, *kid = NULL;
    json_object *ops = NULL;
    if (!json_object_is_type(k, json_type_object) || jstr(k, "kty", &kty) != 1 ||
        jstr(k, "use", &use) < 0 || (use && strcmp(use, "sig") != 0) || jstr(k, "alg", &alg) < 0 ||
        (alg && alg_parse(alg) < 0) || jstr(k, "kid", &kid) < 0 ||
        (kid && (kid[0] == '\0' || strlen(kid) > 255)))
        return false;
    if (json_object_object_get_ex(k, "key_ops", &ops) && ops) {
        bool verify = false;
        if (!json_object_is_type(ops, json_type_array))
            return false;
        for (size_t i = 0; i < json_object_array_length(ops); i++) {
            json_object *op = json_object_array_get_idx(ops, i);
            verify |= cstr(op) && strcmp(cstr(op), "verify") == 0;
        }
        if (!verify)
            return false;
    }
    memset(out, 0, sizeof(*out));
    if (strcmp(kty, "RSA") == 0) {
        out->kty = KTY_RSA;
        out->pkey = rsa_key(k);
    } else if (strcmp(kty, "EC") == 0) {
        out->kty = KTY_EC;
        out->pkey = ec_key(k);
    }
    ERR_clear_error();
    if (!out->pkey)
        return false;
    out->has_alg = alg != NULL;
    out->alg = alg ? (enum alg)alg_parse(alg) : ALG_RS256;
    if (out->has_alg && (out->alg == ALG_ES256) != (out->kty == KTY_EC)) {
        EVP_PKEY_free(out->pkey);
        return false;
    }
    out->kid = cs_strdup(kid);
    return true;
}

enum cs_err cs_jwks_parse(const char *json, size_t len, struct cs_jwks **out, char *err)
{
    *out = NULL;
    if (!json || len > CS_OIDC_JWKS_MAX)
        return cs_err_set(err, CS_ERR_INVALID, "JWKS: missing or larger than %d bytes",
                          CS_OIDC_JWKS_MAX);
    json_object *root = NULL, *keys = NULL;
    char jerr[CS_ERRLEN];
    if (cs_json_parse(json, len, &root, jerr) != CS_OK)
        return cs_err_set(err, CS_ERR_INVALID, "JWKS: not JSON (%s)", jerr);
    enum cs_err rc = CS_OK;
    if (!json_object_is_type(root, json_type_object) ||
        !json_object_object_get_ex(root, "keys", &keys) ||
        !json_object_is_type(keys, json_type_array)) {
        rc = cs_err_set(err, CS_ERR_INVALID, "JWKS: not an object with a \"keys\" array");
        goto done;
    }
    size_t n = json_object_array_length(keys);
    if (n > CS_OIDC_JWKS_KEYS) {
        rc = cs_err_set(err, CS_ERR_INVALID, "JWKS: more than %d keys", CS_OIDC_JWKS_KEYS);
        goto done;
    }
    struct cs_jwks *k = cs_calloc(1, sizeof(*k));
    k->keys = cs_calloc(n ? n : 1, sizeof(*k->keys));
    for (size_t i = 0; i < n; i++)
        k->n += jwk_parse(json_object_array_get_idx(keys, i), &k->keys[k->n]);
    if (k->n == 0) {
        rc = cs_err_set(err, CS_ERR_INVALID,
                        "JWKS: no usable RS256/ES256 signing key (%zu skipped)", n);
        cs_jwks_free(k);
        goto done;
    }
    *out = k;
done:
    json_object_put(root);
    return rc;
}

void cs_jwks_free(struct cs_jwks *k)
{
    if (!k)
        return;
    for (size_t i = 0; i < k->n; i++) {
        cs_free(k->keys[i].kid);
        EVP_PKEY_free(k->keys[i].pkey);
    }
    cs_free(k->keys);
    cs_free(k);
}

size_t cs_jwks_count(const struct cs_jwks *k)
{
    return k ? k->n : 0;
}

/* ---- ID token ---- */

#define REFUSE(...) cs_err_set(err, CS_ERR_UNAUTHENTICATED, "ID token refused: " __VA_ARGS__)

/* Decodes one base64url JSON-object part of a JWS; NULL when it is not one. */
static json_object *jws_part(const char *s, size_t n)
{
    size_t len = 0;
    json_object *obj = NULL;
    char jerr[CS_ERRLEN];
    unsigned char *p = b64u(s, n, &len);
    if (p && cs_json_parse((const char *)p, len, &obj, jerr) == CS_OK &&
        !json_object_is_type(obj, json_type_object)) {
        json_object_put(obj);
        obj = NULL;
    }
    cs_free(p);
    return obj;
}

/* Why key_find found no key. */
enum nokey { NOKEY_UNKNOWN, NOKEY_WRONG_TYPE, NOKEY_AMBIGUOUS };

/* The key for alg and kid (NULL: the token has none), or NULL and *why. */
static const struct jwk *key_find(const struct cs_jwks *ks, enum alg alg, const char *kid,
                                  enum nokey *why)
{
    enum kty want = alg == ALG_ES256 ? KTY_EC : KTY_RSA;
    const struct jwk *found = NULL;
    size_t matches = 0;
    bool kid_seen = false;
    for (size_t i = 0; i < ks->n; i++) {
        const struct jwk *k = &ks->keys[i];
        if (kid && (!k->kid || strcmp(k->kid, kid) != 0))
            continue;
        kid_seen = true;
        if (k->kty != want || (k->has_alg && k->alg != alg))
            continue;
        found = found ? found : k;
        matches++;
    }
    if (matches == 1 || (kid && found))
        return found;
    *why = matches > 1 ? NOKEY_AMBIGUOUS : kid && kid_seen ? NOKEY_WRONG_TYPE : NOKEY_UNKNOWN;
    return NULL;
}

/* True when sig is a valid signature of tbs by k (RS256 or ES256 as R||S). */
static bool sig_valid(const struct jwk *k, const char *tbs, size_t tbslen, const unsigned char *sig,
                      size_t siglen)
{
    unsigned char *der = NULL;
    ECDSA_SIG *es = NULL;
    bool ok = false;
    if (k->kty == KTY_EC) {
        if (siglen != 64)
            return false;
        es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
        int dl;
        if (!es || !r || !s || ECDSA_SIG_set0(es, r, s) != 1) {
            BN_free(r);
            BN_free(s);
            goto done;
        }
        if ((dl = i2d_ECDSA_SIG(es, &der)) <= 0)
            goto done;
        sig = der;
        siglen = (size_t)dl;
    } else if (siglen != (size_t)EVP_PKEY_get_size(k->pkey)) {
        return false; /* one spelling only: exactly the modulus length */
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    ok = md && EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, k->pkey, NULL) == 1 &&
         EVP_DigestVerify(md, sig, siglen, (const unsigned char *)tbs, tbslen) == 1;
    EVP_MD_CTX_free(md);
done:
    OPENSSL_free(der);
    ECDSA_SIG_free(es);
    ERR_clear_error();
    return ok;
}

/* A NumericDate claim: 0 absent, 1 read into *out, -1 not a number in range. */
static int claim_time(json_object *c, const char *key, int64_t *out)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(c, key, &v))
        return 0;
    if (json_object_is_type(v, json_type_int)) {
        *out = json_object_get_int64(v);
        return 1;
    }
    if (json_object_is_type(v, json_type_double)) {
        double d = json_object_get_double(v);
        if (!(d > -1e15 && d < 1e15))
            return -1;
        *out = (int64_t)d;
        return 1;
    }
    return -1;
}

static bool str_ct_equal(const char *a, const char *b)
{
    size_t n = strlen(a);
    return n == strlen(b) && cs_ct_equal(a, b, n);
}

/* aud names client_id; more than one audience needs azp == client_id. */
static enum cs_err check_aud(json_object *c, const char *client_id, char *err)
{
    json_object *aud = NULL;
    const char *azp = NULL;
    size_t naud = 1;
    bool ok = false;
    if (!json_object_object_get_ex(c, "aud", &aud) || !aud)
        return REFUSE("aud is missing");
    if (json_object_is_type(aud, json_type_string)) {
        ok = cstr(aud) && strcmp(cstr(aud), client_id) == 0;
    } else if (json_object_is_type(aud, json_type_array)) {
        naud = json_object_array_length(aud);
        if (naud == 0 || naud > AUD_MAX)
            return REFUSE("aud is an empty or oversized array");
        for (size_t i = 0; i < naud; i++) {
            json_object *a = json_object_array_get_idx(aud, i);
            if (!cstr(a))
                return REFUSE("aud holds a non-string or a NUL");
            ok |= strcmp(cstr(a), client_id) == 0;
        }
    } else {
        return REFUSE("aud is neither a string nor an array");
    }
    if (!ok)
        return REFUSE("aud does not name this client");
    int has_azp = jstr(c, "azp", &azp);
    if (has_azp < 0 || (has_azp && strcmp(azp, client_id) != 0))
        return REFUSE("azp is not this client");
    if (naud > 1 && !has_azp)
        return REFUSE("aud names several audiences and azp is missing");
    return CS_OK;
}

/* exp, iat and nbf against now with leeway. */
static enum cs_err check_times(json_object *c, int64_t now, int64_t leeway, char *err)
{
    int64_t exp = 0, iat = 0, nbf = 0;
    int r;
    if ((r = claim_time(c, "exp", &exp)) <= 0)
        return REFUSE("exp is %s", r ? "not a number" : "missing");
    if (exp <= now - leeway)
        return REFUSE("expired (exp is past, beyond the leeway)");
    if ((r = claim_time(c, "iat", &iat)) <= 0)
        return REFUSE("iat is %s", r ? "not a number" : "missing");
    if (iat > now + leeway)
        return REFUSE("iat is in the future");
    if ((r = claim_time(c, "nbf", &nbf)) < 0)
        return REFUSE("nbf is not a number");
    if (r > 0 && nbf > now + leeway)
        return REFUSE("not valid yet (nbf is in the future)");
    return CS_OK;
}

/* Copies an optional string claim into dst[size] when it fits; else leaves "". */
static void claim_copy(json_object *c, const char *key, char *dst, size_t size)
{
    const char *s = NULL;
    if (jstr(c, key, &s) == 1 && strlen(s) < size)
        cs_strlcpy(dst, s, size);
}

/*
 * The values of claim `key` (a string, or an array of strings) into
 * roles, each followed by '\n'; values with a control character, and
 * those that no longer fit, are left out.
 */
static void claim_roles(json_object *c, const char *key, char *roles, size_t size)
{
    json_object *v = NULL;
    size_t used = 0;
    if (!key || !json_object_object_get_ex(c, key, &v))
        return;
    size_t n = json_object_is_type(v, json_type_array) ? json_object_array_length(v) : 1;
    for (size_t i = 0; i < n; i++) {
        json_object *x =
            json_object_is_type(v, json_type_array) ? json_object_array_get_idx(v, i) : v;
        const char *s = cstr(x);
        size_t len = s ? strlen(s) : 0;
        bool ok = len > 0 && used + len + 2 <= size;
        for (size_t j = 0; ok && j < len; j++)
            ok = (unsigned char)s[j] >= 0x20 && s[j] != 0x7f;
        if (!ok)
            continue;
        memcpy(roles + used, s, len);
        used += len;
        roles[used++] = '\n';
        roles[used] = '\0';
    }
}

static enum cs_err check_claims(json_object *c, const char *issuer, const char *client_id,
                                const char *nonce, int64_t now, int64_t leeway,
                                const char *role_claim, struct cs_oidc_identity *id, char *err)
{
    const char *iss = NULL, *got_nonce = NULL, *sub = NULL;
    json_object *ev = NULL;
    enum cs_err rc;
    if (jstr(c, "iss", &iss) != 1 || strcmp(iss, issuer) != 0)
        return REFUSE("iss is not the configured issuer");
    if ((rc = check_aud(c, client_id, err)) || (rc = check_times(c, now, leeway, err)))
        return rc;
    if (jstr(c, "nonce", &got_nonce) != 1)
        return REFUSE("nonce is missing");
    if (!str_ct_equal(got_nonce, nonce))
        return REFUSE("nonce does not match this login");
    if (jstr(c, "sub", &sub) != 1 || sub[0] == '\0' || strlen(sub) > 255)
        return REFUSE("sub is missing or not 1..255 bytes");
    cs_strlcpy(id->iss, issuer, sizeof(id->iss));
    cs_strlcpy(id->sub, sub, sizeof(id->sub));
    claim_copy(c, "email", id->email, sizeof(id->email));
    claim_copy(c, "name", id->name, sizeof(id->name));
    if (json_object_object_get_ex(c, "email_verified", &ev) &&
        json_object_is_type(ev, json_type_boolean))
        id->email_verified = json_object_get_boolean(ev);
    claim_roles(c, role_claim, id->roles, sizeof(id->roles));
    return CS_OK;
}

enum cs_err cs_oidc_verify_id_token(const struct cs_jwks *keys, const char *jwt, const char *issuer,
                                    const char *client_id, const char *nonce, int64_t now_s,
                                    int leeway_s, const char *role_claim,
                                    struct cs_oidc_identity *id, bool *unknown_key, char *err)
{
    bool unknown_ignored;
    memset(id, 0, sizeof(*id));
    if (!unknown_key)
        unknown_key = &unknown_ignored;
    *unknown_key = false;
    if (!keys || !issuer || !client_id || !nonce || strlen(issuer) >= sizeof(id->iss))
        return cs_err_set(err, CS_ERR_INVALID,
                          "ID token check: missing keys, issuer, "
                          "client_id or nonce, or an issuer over 255 bytes");
    if (!jwt)
        return REFUSE("no token");
    size_t len = strnlen(jwt, CS_OIDC_TOKEN_MAX + 1);
    if (len > CS_OIDC_TOKEN_MAX)
        return REFUSE("longer than %d bytes", CS_OIDC_TOKEN_MAX);
    const char *d1 = memchr(jwt, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - jwt)) : NULL;
    if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - jwt)))
        return REFUSE("not a JWS in compact form (three parts)");
    size_t siglen_b64 = len - (size_t)(d2 + 1 - jwt);
    if (siglen_b64 == 0)
        return REFUSE("unsigned (empty signature part)");

    json_object *hdr = jws_part(jwt, (size_t)(d1 - jwt)), *claims = NULL;
    unsigned char *sig = NULL;
    size_t siglen = 0;
    const char *alg_s = NULL, *kid = NULL, *typ = NULL;
    json_object *crit = NULL;
    enum cs_err rc = CS_OK;
    if (!hdr) {
        rc = REFUSE("header is not base64url JSON");
        goto done;
    }
    int alg = jstr(hdr, "alg", &alg_s) == 1 ? alg_parse(alg_s) : -1;
    if (alg < 0) {
        rc = REFUSE("header alg is missing or not RS256/ES256");
        goto done;
    }
    if (json_object_object_get_ex(hdr, "crit", &crit)) {
        rc = REFUSE("header has crit extensions");
        goto done;
    }
    if (jstr(hdr, "typ", &typ) < 0 || (typ && strcasecmp(typ, "JWT") != 0)) {
        rc = REFUSE("header typ is not JWT");
        goto done;
    }
    if (jstr(hdr, "kid", &kid) < 0) {
        rc = REFUSE("header kid is not a string");
        goto done;
    }
    enum nokey why = NOKEY_UNKNOWN;
    const struct jwk *k = key_find(keys, (enum alg)alg, kid, &why);
    if (!k) {
        *unknown_key = why == NOKEY_UNKNOWN;
        rc = why == NOKEY_UNKNOWN     ? REFUSE("no key of the provider's set for its kid and alg")
             : why == NOKEY_AMBIGUOUS ? REFUSE("no kid, and several keys of its type")
                                      : REFUSE("its kid names a key of another type or alg");
        goto done;
    }
    if (!(sig = b64u(d2 + 1, siglen_b64, &siglen))) {
        rc = REFUSE("signature is not base64url");
        goto done;
    }
    if (!sig_valid(k, jwt, (size_t)(d2 - jwt), sig, siglen)) {
        rc = REFUSE("signature does not verify");
        goto done;
    }
    if (!(claims = jws_part(d1 + 1, (size_t)(d2 - d1 - 1)))) {
        rc = REFUSE("payload is not base64url JSON");
        goto done;
    }
    int64_t leeway = leeway_s < 0 ? 0 : leeway_s > LEEWAY_MAX ? LEEWAY_MAX : leeway_s;
    if (now_s < INT64_MIN / 2 || now_s > INT64_MAX / 2) {
        rc = cs_err_set(err, CS_ERR_INVALID, "ID token check: now out of range");
        goto done;
    }
    rc = check_claims(claims, issuer, client_id, nonce, now_s, leeway, role_claim, id, err);
done:
    if (rc)
        memset(id, 0, sizeof(*id));
    json_object_put(hdr);
    json_object_put(claims);
    cs_free(sig);
    return rc;
}
