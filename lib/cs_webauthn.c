/*
 * cs_webauthn.c -- WebAuthn registration and assertion verification, and
 * the vote challenge (see cs_webauthn.h).
 *
 * Pure: no I/O, no state, no locks; the api calls it from its HTTP
 * threads, the CLI's audit verification and tests/fuzz/fuzz_webauthn.c
 * with anything. Four parts: a strict CBOR reader (the RFC 8949 subset
 * the header lists; every length checked against what remains before it
 * is used, each container validated whole -- depth, pair count, duplicate
 * keys, UTF-8 -- before any member is looked at), the COSE_Key of an ES256
 * or RS256 credential turned into an EVP_PKEY, the clientDataJSON and
 * authenticatorData checks, and the two ceremonies.
 *
 * Invariants: of an assertion, only the shape of authenticatorData is
 * looked at before its signature holds -- no value read from it or from
 * clientDataJSON is trusted before; a credential is returned only when
 * every check held; refusals name the check, never quote the input.
 *
 * Deliberately not done: attestation statements (no trust in makes and
 * models is needed: any fmt is accepted unverified), EdDSA and other
 * algorithms, token binding (a "present" binding is refused), the
 * userHandle (the caller looks the credential up by its id and owner),
 * extensions' meaning (they are only checked to be a well-formed map).
 */
#include "cs_webauthn.h"

#include <json-c/json.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <string.h>

#include "cs_crypto.h"
#include "cs_json.h"
#include "cs_mem.h"

/* ---- CBOR ---------------------------------------------------------------- */

#define CBOR_DEPTH_MAX 8  /* nested arrays and maps */
#define CBOR_PAIRS_MAX 64 /* pairs in one map (keeps the duplicate check small) */

enum {
    CB_UINT = 0,
    CB_NINT = 1,
    CB_BYTES = 2,
    CB_TEXT = 3,
    CB_ARRAY = 4,
    CB_MAP = 5,
    CB_TAG = 6,
    CB_SIMPLE = 7
};

/* A reader over p[n]; off is the next byte. */
struct cbor {
    const unsigned char *p;
    size_t n;
    size_t off;
};

/* One item. Strings point into the input; a container's members are re-read from inner. */
struct cbor_item {
    int major;
    uint64_t val;               /* integer argument, string length, members, simple value */
    const unsigned char *data;  /* string contents */
    const unsigned char *inner; /* first member of an array or map */
    const unsigned char *end;   /* just past the item */
};

/* Reads an item's head (major type and argument); the reason it cannot, or NULL. */
static const char *cbor_head(struct cbor *r, int *major, uint64_t *arg)
{
    if (r->off >= r->n)
        return "truncated";
    unsigned char ib = r->p[r->off++];
    unsigned ai = ib & 0x1f;
    *major = ib >> 5;
    if (ai < 24) {
        *arg = ai;
        return NULL;
    }
    if (ai == 31)
        return "indefinite lengths are not accepted";
    if (ai > 27)
        return "reserved additional information";
    size_t len = (size_t)1 << (ai - 24);
    if (r->n - r->off < len)
        return "truncated";
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++)
        v = v << 8 | r->p[r->off++];
    *arg = v;
    return NULL;
}

static bool key_equal(const struct cbor_item *a, const struct cbor_item *b)
{
    return a->major == b->major && a->val == b->val &&
           (a->major < CB_BYTES || memcmp(a->data, b->data, (size_t)a->val) == 0);
}

/*
 * Reads and validates one whole item at r, `depth` containers deep; fills
 * *it and returns NULL, or returns what is wrong (r is then unusable).
 */
static const char *cbor_read(struct cbor *r, int depth, struct cbor_item *it)
{
    if (r->off >= r->n)
        return "truncated";
    unsigned char ib = r->p[r->off];
    if (ib >> 5 == CB_TAG)
        return "tags are not accepted";
    if (ib >> 5 == CB_SIMPLE && (ib & 0x1f) >= 25 && (ib & 0x1f) <= 27)
        return "floats are not accepted";
    if (ib >> 5 == CB_SIMPLE && ((ib & 0x1f) < 20 || (ib & 0x1f) > 22))
        return "simple values other than false, true and null are not accepted";
    const char *why = cbor_head(r, &it->major, &it->val);
    if (why)
        return why;
    it->data = it->inner = NULL;
    if (it->major == CB_BYTES || it->major == CB_TEXT) {
        if (it->val > r->n - r->off)
            return "truncated";
        it->data = r->p + r->off;
        if (it->major == CB_TEXT && !cs_json_utf8_valid((const char *)it->data, (size_t)it->val))
            return "text string is not UTF-8";
        r->off += (size_t)it->val;
    } else if (it->major == CB_ARRAY || it->major == CB_MAP) {
        if (depth >= CBOR_DEPTH_MAX)
            return "nested deeper than 8 arrays or maps";
        if (it->major == CB_MAP && it->val > CBOR_PAIRS_MAX)
            return "map of more than 64 pairs";
        if (it->val > r->n - r->off) /* every member takes a byte at least */
            return "truncated";
        it->inner = r->p + r->off;
        struct cbor_item keys[CBOR_PAIRS_MAX], m;
        for (uint64_t i = 0; i < it->val; i++) {
            if ((why = cbor_read(r, depth + 1, &m)))
                return why;
            if (it->major == CB_ARRAY)
                continue;
            if (m.major > CB_TEXT)
                return "map key is not an integer or a string";
            for (uint64_t j = 0; j < i; j++)
                if (key_equal(&keys[j], &m))
                    return "duplicate map key";
            keys[i] = m;
            if ((why = cbor_read(r, depth + 1, &m)))
                return why;
        }
    }
    it->end = r->p + r->off;
    return NULL;
}

/* Reads exactly one item filling p[n]; what is wrong, or NULL. */
static const char *cbor_whole(const unsigned char *p, size_t n, struct cbor_item *it)
{
    struct cbor r = {p, n, 0};
    const char *why = cbor_read(&r, 0, it);
    if (!why && r.off != n)
        why = "trailing bytes";
    return why;
}

/* A reader over the members of a validated array or map. */
static struct cbor cbor_members(const struct cbor_item *c)
{
    return (struct cbor){c->inner, (size_t)(c->end - c->inner), 0};
}

/* The next pair of a validated map (validated, so reading it again cannot fail). */
static void cbor_pair(struct cbor *r, struct cbor_item *k, struct cbor_item *v)
{
    cs_assert(cbor_read(r, 0, k) == NULL && cbor_read(r, 0, v) == NULL);
}

/* An integer item as int64_t; false for another type or out of range. */
static bool item_int(const struct cbor_item *it, int64_t *v)
{
    if ((it->major != CB_UINT && it->major != CB_NINT) || it->val > INT64_MAX)
        return false;
    *v = it->major == CB_UINT ? (int64_t)it->val : -1 - (int64_t)it->val;
    return true;
}

static bool item_text_is(const struct cbor_item *it, const char *s)
{
    return it->major == CB_TEXT && it->val == strlen(s) &&
           memcmp(it->data, s, (size_t)it->val) == 0;
}

/* ---- COSE_Key ------------------------------------------------------------ */

#define COSE_KTY 1
#define COSE_ALG 3
#define KTY_EC2 2
#define KTY_RSA 3
#define CRV_P256 1
#define RSA_BITS_MAX 8192

/*
 * The credential key of a validated COSE_Key map: *alg and *pkey (the
 * caller's, EVP_PKEY_free) on CS_OK; CS_ERR_INVALID with *pkey NULL when
 * it is not an ES256 P-256 or RS256 2048..8192-bit public key. Members
 * other than kty, alg and the key's own are ignored, except private-key
 * ones (refused: a key that leaked its secret is no credential).
 */
static enum cs_err cose_key(const struct cbor_item *key, int *alg, EVP_PKEY **pkey, char *err)
{
    *pkey = NULL;
    if (key->major != CB_MAP)
        return cs_err_set(err, CS_ERR_INVALID, "credential key: not a CBOR map");
    bool has_kty = false, has_alg = false;
    int64_t kty = 0, a = 0;
    struct cbor_item par[3] = {{0}}; /* labels -1, -2, -3 */
    unsigned neg = 0;                /* bit i: label -i seen, i <= 12 */
    struct cbor r = cbor_members(key);
    for (uint64_t i = 0; i < key->val; i++) {
        struct cbor_item k, v;
        int64_t label;
        cbor_pair(&r, &k, &v);
        if (!item_int(&k, &label))
            continue;
        if (label == COSE_KTY || label == COSE_ALG) {
            if (!item_int(&v, label == COSE_KTY ? &kty : &a))
                return cs_err_set(err, CS_ERR_INVALID, "credential key: %s is not an integer",
                                  label == COSE_KTY ? "kty" : "alg");
            *(label == COSE_KTY ? &has_kty : &has_alg) = true;
        } else if (label < 0 && label >= -12) {
            neg |= 1u << -label;
            if (label >= -3)
                par[-label - 1] = v;
        }
    }
    if (!has_kty || !has_alg)
        return cs_err_set(err, CS_ERR_INVALID, "credential key: kty and alg are required");
    if (a != CS_WEBAUTHN_ALG_ES256 && a != CS_WEBAUTHN_ALG_RS256)
        return cs_err_set(err, CS_ERR_INVALID,
                          "credential key: alg %lld is not supported (ES256 -7 or RS256 -257)",
                          (long long)a);
    if (a == CS_WEBAUTHN_ALG_ES256) {
        int64_t crv = 0;
        if (kty != KTY_EC2 || !item_int(&par[0], &crv) || crv != CRV_P256)
            return cs_err_set(err, CS_ERR_INVALID,
                              "credential key: ES256 needs kty EC2, crv P-256");
        if (par[1].major != CB_BYTES || par[1].val != 32 || par[2].major != CB_BYTES ||
            par[2].val != 32)
            return cs_err_set(err, CS_ERR_INVALID,
                              "credential key: x and y must be 32-byte strings");
        if (neg & 1u << 4) /* d */
            return cs_err_set(err, CS_ERR_INVALID, "credential key: holds private-key members");
        *pkey = cs_pkey_p256(par[1].data, par[2].data);
    } else {
        if (kty != KTY_RSA)
            return cs_err_set(err, CS_ERR_INVALID, "credential key: RS256 needs kty RSA");
        if (par[0].major != CB_BYTES || par[0].val == 0 || par[0].val > RSA_BITS_MAX / 8 + 1 ||
            par[1].major != CB_BYTES || par[1].val == 0 || par[1].val > 8)
            return cs_err_set(err, CS_ERR_INVALID, "credential key: n and e must be byte strings");
        if (neg & ~0x6u) /* d, p, q, dP, dQ, qInv, other primes */
            return cs_err_set(err, CS_ERR_INVALID, "credential key: holds private-key members");
        *pkey = cs_pkey_rsa(par[0].data, (size_t)par[0].val, par[1].data, (size_t)par[1].val);
    }
    ERR_clear_error();
    if (!*pkey)
        return cs_err_set(err, CS_ERR_INVALID,
                          a == CS_WEBAUTHN_ALG_ES256
                              ? "credential key: not a point on P-256"
                              : "credential key: not an RSA key of 2048..8192 "
                                "bits with an odd exponent");
    *alg = (int)a;
    return CS_OK;
}

/* ---- clientDataJSON and authenticatorData -------------------------------- */

#define FLAG_UP 0x01
#define FLAG_UV 0x04
#define FLAG_BE 0x08
#define FLAG_BS 0x10
#define FLAG_AT 0x40
#define FLAG_ED 0x80
#define AD_FIXED 37             /* rpIdHash 32 | flags 1 | signCount 4 */
#define AD_CRED (AD_FIXED + 18) /* + aaguid 16 | credentialIdLength 2 */

/* The arguments every ceremony needs. */
static enum cs_err args_check(const char *rp_id, const char *origin, const unsigned char *challenge,
                              size_t challenge_len, char *err)
{
    if (!rp_id || !*rp_id || !origin || !*origin)
        return cs_err_set(err, CS_ERR_INVALID, "RP ID and origin are required");
    if (!challenge || challenge_len < CS_WEBAUTHN_CHALLENGE_MIN ||
        challenge_len > CS_WEBAUTHN_CHALLENGE_MAX)
        return cs_err_set(err, CS_ERR_INVALID, "challenge: %d..%d bytes", CS_WEBAUTHN_CHALLENGE_MIN,
                          CS_WEBAUTHN_CHALLENGE_MAX);
    return CS_OK;
}

/* Checks clientDataJSON: type, challenge, origin, crossOrigin, tokenBinding. */
static enum cs_err client_data(const unsigned char *cdj, size_t len, const char *type,
                               const unsigned char *challenge, size_t challenge_len,
                               const char *origin, char *err)
{
    if (!cdj || len == 0 || len > CS_WEBAUTHN_CDJ_MAX)
        return cs_err_set(err, CS_ERR_INVALID, "clientDataJSON: missing or larger than %d bytes",
                          CS_WEBAUTHN_CDJ_MAX);
    json_object *o = NULL, *tb = NULL;
    char jerr[CS_ERRLEN];
    enum cs_err rc;
    if (cs_json_parse((const char *)cdj, len, &o, jerr) != CS_OK)
        return cs_err_set(err, CS_ERR_INVALID, "clientDataJSON: not JSON (%s)", jerr);
    const char *t = NULL, *ch = NULL, *og = NULL, *status = NULL;
    bool cross = false;
    char want[CS_WEBAUTHN_CHALLENGE_MAX * 4 / 3 + 4];
    if (!json_object_is_type(o, json_type_object)) {
        rc = cs_err_set(err, CS_ERR_INVALID, "clientDataJSON: not a JSON object");
        goto done;
    }
    if (cs_json_str(o, "type", true, 64, &t, jerr) ||
        cs_json_str(o, "challenge", true, CS_WEBAUTHN_CDJ_MAX, &ch, jerr) ||
        cs_json_str(o, "origin", true, CS_WEBAUTHN_CDJ_MAX, &og, jerr) ||
        cs_json_bool(o, "crossOrigin", false, &cross, jerr)) {
        rc = cs_err_set(err, CS_ERR_INVALID, "clientDataJSON: %s", jerr);
        goto done;
    }
    cs_b64_encode_to(challenge, challenge_len, true, want);
    rc = CS_ERR_UNAUTHENTICATED;
    if (strcmp(t, type) != 0)
        cs_err_set(err, rc, "clientDataJSON: type is not %s", type);
    else if (strcmp(ch, want) != 0)
        cs_err_set(err, rc, "clientDataJSON: challenge is not the one issued");
    else if (strcmp(og, origin) != 0)
        cs_err_set(err, rc, "clientDataJSON: origin is not the expected origin");
    else if (cross)
        cs_err_set(err, rc, "clientDataJSON: crossOrigin is true");
    else if (json_object_object_get_ex(o, "tokenBinding", &tb) &&
             json_object_is_type(tb, json_type_object) &&
             cs_json_str(tb, "status", false, 64, &status, NULL) == CS_OK && status &&
             strcmp(status, "present") == 0)
        cs_err_set(err, rc, "clientDataJSON: token binding is not supported");
    else
        rc = CS_OK;
done:
    json_object_put(o);
    return rc;
}

/* The parts of an authenticatorData; pointers into it. */
struct authdata {
    const unsigned char *rp_hash;
    unsigned char flags;
    uint32_t count;
    const unsigned char *cred_id; /* registration only */
    size_t cred_id_len;
    struct cbor_item key; /* the COSE_Key, validated CBOR */
};

/*
 * Splits authenticatorData: 37 fixed bytes, the attested credential data
 * when AT is set (it must be at registration, and must not be in an
 * assertion), a CBOR map of extensions when ED is set, nothing after.
 */
static enum cs_err authdata_parse(const unsigned char *ad, size_t len, bool registration,
                                  struct authdata *a, char *err)
{
    memset(a, 0, sizeof(*a));
    if (!ad || len < AD_FIXED)
        return cs_err_set(err, CS_ERR_INVALID, "authenticatorData: shorter than 37 bytes");
    a->rp_hash = ad;
    a->flags = ad[32];
    a->count = (uint32_t)ad[33] << 24 | (uint32_t)ad[34] << 16 | (uint32_t)ad[35] << 8 | ad[36];
    if (registration != !!(a->flags & FLAG_AT))
        return cs_err_set(err, CS_ERR_UNAUTHENTICATED,
                          registration ? "authenticatorData: AT not set (no attested credential)"
                                       : "authenticatorData: AT set in an assertion");
    struct cbor r = {ad, len, AD_FIXED};
    const char *why;
    if (registration) {
        if (len < AD_CRED)
            return cs_err_set(err, CS_ERR_INVALID, "authenticatorData: credential data truncated");
        size_t idlen = (size_t)ad[AD_CRED - 2] << 8 | ad[AD_CRED - 1];
        if (idlen == 0 || idlen > CS_WEBAUTHN_CRED_ID_MAX)
            return cs_err_set(err, CS_ERR_INVALID,
                              "authenticatorData: credential id of %zu bytes "
                              "(1..%d)",
                              idlen, CS_WEBAUTHN_CRED_ID_MAX);
        if (len - AD_CRED < idlen)
            return cs_err_set(err, CS_ERR_INVALID, "authenticatorData: credential id truncated");
        a->cred_id = ad + AD_CRED;
        a->cred_id_len = idlen;
        r.off = AD_CRED + idlen;
        if ((why = cbor_read(&r, 0, &a->key)))
            return cs_err_set(err, CS_ERR_INVALID, "credential key: %s", why);
        if (r.off - AD_CRED - idlen > CS_WEBAUTHN_KEY_MAX)
            return cs_err_set(err, CS_ERR_INVALID, "credential key: larger than %d bytes",
                              CS_WEBAUTHN_KEY_MAX);
    }
    if (a->flags & FLAG_ED) {
        struct cbor_item ext;
        if ((why = cbor_read(&r, 0, &ext)))
            return cs_err_set(err, CS_ERR_INVALID, "authenticatorData extensions: %s", why);
        if (ext.major != CB_MAP)
            return cs_err_set(err, CS_ERR_INVALID, "authenticatorData extensions: not a map");
    }
    if (r.off != len)
        return cs_err_set(err, CS_ERR_INVALID, "authenticatorData: trailing bytes");
    return CS_OK;
}

/* rpIdHash and the flags both ceremonies check. */
static enum cs_err authdata_check(const struct authdata *a, const char *rp_id, bool require_uv,
                                  char *err)
{
    unsigned char h[CS_SHA256_LEN];
    cs_sha256(rp_id, strlen(rp_id), h);
    enum cs_err rc = CS_ERR_UNAUTHENTICATED;
    if (!cs_ct_equal(h, a->rp_hash, sizeof(h)))
        return cs_err_set(err, rc, "authenticatorData: rpIdHash is not that of the RP ID");
    if (!(a->flags & FLAG_UP))
        return cs_err_set(err, rc, "authenticatorData: user presence (UP) not set");
    if (require_uv && !(a->flags & FLAG_UV))
        return cs_err_set(err, rc, "authenticatorData: user verification (UV) required, not set");
    if ((a->flags & FLAG_BS) && !(a->flags & FLAG_BE))
        return cs_err_set(err, rc, "authenticatorData: backup state (BS) without eligibility (BE)");
    return CS_OK;
}

/* ---- the ceremonies ------------------------------------------------------ */

void cs_webauthn_credential_free(struct cs_webauthn_credential *c)
{
    if (!c)
        return;
    cs_free(c->id);
    cs_free(c->public_key);
    memset(c, 0, sizeof(*c));
}

/* Finds fmt, attStmt and authData in a validated attestationObject map. */
static enum cs_err ao_members(const struct cbor_item *ao, struct cbor_item *fmt,
                              struct cbor_item *stmt, struct cbor_item *adata, char *err)
{
    if (ao->major != CB_MAP)
        return cs_err_set(err, CS_ERR_INVALID, "attestationObject: not a CBOR map");
    bool seen[3] = {false, false, false};
    struct cbor r = cbor_members(ao);
    for (uint64_t i = 0; i < ao->val; i++) {
        struct cbor_item k, v;
        cbor_pair(&r, &k, &v);
        if (item_text_is(&k, "fmt") && v.major == CB_TEXT && v.val >= 1 && v.val <= 32)
            *fmt = v, seen[0] = true;
        else if (item_text_is(&k, "attStmt") && v.major == CB_MAP)
            *stmt = v, seen[1] = true;
        else if (item_text_is(&k, "authData") && v.major == CB_BYTES)
            *adata = v, seen[2] = true;
        else
            return cs_err_set(err, CS_ERR_INVALID,
                              "attestationObject: members are fmt (text of "
                              "1..32 bytes), attStmt (map) and authData (bytes) only");
    }
    if (!seen[0] || !seen[1] || !seen[2])
        return cs_err_set(err, CS_ERR_INVALID,
                          "attestationObject: fmt, attStmt and authData "
                          "are required");
    if (item_text_is(fmt, "none") && stmt->val != 0)
        return cs_err_set(err, CS_ERR_INVALID, "attestationObject: attStmt of fmt none not empty");
    return CS_OK;
}

enum cs_err cs_webauthn_register(const char *rp_id, const char *origin,
                                 const unsigned char *challenge, size_t challenge_len,
                                 const unsigned char *client_data_json, size_t cdj_len,
                                 const unsigned char *attestation_object, size_t ao_len,
                                 bool require_uv, struct cs_webauthn_credential *out, char *err)
{
    cs_assert(out);
    memset(out, 0, sizeof(*out));
    enum cs_err rc = args_check(rp_id, origin, challenge, challenge_len, err);
    if (rc)
        return rc;
    rc = client_data(client_data_json, cdj_len, "webauthn.create", challenge, challenge_len, origin,
                     err);
    if (rc)
        return rc;
    if (!attestation_object || ao_len == 0 || ao_len > CS_WEBAUTHN_AO_MAX)
        return cs_err_set(err, CS_ERR_INVALID,
                          "attestationObject: missing or larger than %d "
                          "bytes",
                          CS_WEBAUTHN_AO_MAX);
    struct cbor_item ao, fmt = {0}, stmt = {0}, ad = {0};
    const char *why = cbor_whole(attestation_object, ao_len, &ao);
    if (why)
        return cs_err_set(err, CS_ERR_INVALID, "attestationObject: %s", why);
    if ((rc = ao_members(&ao, &fmt, &stmt, &ad, err)))
        return rc;
    struct authdata a;
    if ((rc = authdata_parse(ad.data, (size_t)ad.val, true, &a, err)) ||
        (rc = authdata_check(&a, rp_id, require_uv, err)))
        return rc;
    EVP_PKEY *pkey = NULL;
    int alg = 0;
    if ((rc = cose_key(&a.key, &alg, &pkey, err)))
        return rc;
    EVP_PKEY_free(pkey);
    out->id = cs_memdup(a.cred_id, a.cred_id_len);
    out->id_len = a.cred_id_len;
    out->public_key_len = (size_t)(a.key.end - a.cred_id - a.cred_id_len);
    out->public_key = cs_memdup(a.cred_id + a.cred_id_len, out->public_key_len);
    out->alg = alg;
    out->sign_count = a.count;
    out->user_verified = (a.flags & FLAG_UV) != 0;
    return CS_OK;
}

/* True when sig is pkey's signature (ES256 DER or RS256) of ad || cdj_hash. */
static bool sig_valid(EVP_PKEY *pkey, int alg, const unsigned char *ad, size_t ad_len,
                      const unsigned char cdj_hash[CS_SHA256_LEN], const unsigned char *sig,
                      size_t sig_len)
{
    if (!sig || (alg == CS_WEBAUTHN_ALG_ES256 ? sig_len < 8 || sig_len > 72
                                              : sig_len != (size_t)EVP_PKEY_get_size(pkey)))
        return false;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = md && EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, pkey, NULL) == 1 &&
              EVP_DigestVerifyUpdate(md, ad, ad_len) == 1 &&
              EVP_DigestVerifyUpdate(md, cdj_hash, CS_SHA256_LEN) == 1 &&
              EVP_DigestVerifyFinal(md, sig, sig_len) == 1;
    EVP_MD_CTX_free(md);
    ERR_clear_error();
    return ok;
}

enum cs_err cs_webauthn_verify(const char *rp_id, const char *origin,
                               const unsigned char *challenge, size_t challenge_len,
                               const unsigned char *public_key, size_t public_key_len,
                               uint32_t stored_count, const unsigned char *authenticator_data,
                               size_t ad_len, const unsigned char *client_data_json, size_t cdj_len,
                               const unsigned char *signature, size_t sig_len, bool require_uv,
                               uint32_t *new_count, char *err)
{
    cs_assert(new_count);
    *new_count = stored_count;
    enum cs_err rc = args_check(rp_id, origin, challenge, challenge_len, err);
    if (rc)
        return rc;
    if (!public_key || public_key_len == 0 || public_key_len > CS_WEBAUTHN_KEY_MAX)
        return cs_err_set(err, CS_ERR_INVALID, "stored key: missing or larger than %d bytes",
                          CS_WEBAUTHN_KEY_MAX);
    struct cbor_item k;
    const char *why = cbor_whole(public_key, public_key_len, &k);
    if (why)
        return cs_err_set(err, CS_ERR_INVALID, "stored key: %s", why);
    EVP_PKEY *pkey = NULL;
    int alg = 0;
    if ((rc = cose_key(&k, &alg, &pkey, err)))
        return rc;
    struct authdata a;
    unsigned char h[CS_SHA256_LEN];
    if (ad_len > CS_WEBAUTHN_AD_MAX) {
        rc = cs_err_set(err, CS_ERR_INVALID, "authenticatorData: larger than %d bytes",
                        CS_WEBAUTHN_AD_MAX);
        goto done;
    }
    if ((rc = authdata_parse(authenticator_data, ad_len, false, &a, err)))
        goto done;
    if (!client_data_json || cdj_len == 0 || cdj_len > CS_WEBAUTHN_CDJ_MAX) {
        rc = cs_err_set(err, CS_ERR_INVALID, "clientDataJSON: missing or larger than %d bytes",
                        CS_WEBAUTHN_CDJ_MAX);
        goto done;
    }
    cs_sha256(client_data_json, cdj_len, h);
    if (!sig_valid(pkey, alg, authenticator_data, ad_len, h, signature, sig_len)) {
        rc = cs_err_set(err, CS_ERR_UNAUTHENTICATED,
                        "signature: does not verify with the "
                        "credential's key");
        goto done;
    }
    if ((rc = client_data(client_data_json, cdj_len, "webauthn.get", challenge, challenge_len,
                          origin, err)) ||
        (rc = authdata_check(&a, rp_id, require_uv, err)))
        goto done;
    if ((stored_count != 0 || a.count != 0) && a.count <= stored_count) {
        rc = cs_err_set(err, CS_ERR_UNAUTHENTICATED,
                        "signCount %u is not above the stored %u: "
                        "possibly a cloned authenticator",
                        a.count, stored_count);
        goto done;
    }
    *new_count = a.count;
done:
    EVP_PKEY_free(pkey);
    return rc;
}

/* ---- the vote challenge -------------------------------------------------- */

void cs_webauthn_vote_challenge(const char *approval_id, const char *digest_hex,
                                const char *decision, const char *reason, const char *nonce,
                                unsigned char out[32])
{
    cs_assert(approval_id && digest_hex && decision && nonce);
    static const char tag[] = "countersign/vote/v1\n";
    unsigned char rh[CS_SHA256_LEN];
    char rhex[2 * CS_SHA256_LEN + 1];
    cs_sha256(reason ? reason : "", reason ? strlen(reason) : 0, rh);
    cs_hex_encode(rh, sizeof(rh), rhex);
    const char *parts[] = {approval_id, digest_hex, decision, rhex, nonce};
    struct cs_sha256 *h = cs_sha256_new();
    cs_sha256_update(h, tag, sizeof(tag) - 1);
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        if (i)
            cs_sha256_update(h, "\n", 1);
        cs_sha256_update(h, parts[i], strlen(parts[i]));
    }
    cs_sha256_final(h, out);
}
