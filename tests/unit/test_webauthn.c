/*
 * test_webauthn.c -- lib/cs_webauthn.c: registration, assertions, the vote
 * challenge, and the strict CBOR underneath.
 *
 * The test acts as the browser and the authenticator: it holds an EC P-256
 * key (made per run) and an RSA-2048 key (fixed below, test-only), writes
 * their COSE_Keys and attestationObjects (fmt "none") with a tiny CBOR
 * encoder, builds clientDataJSON and authenticatorData byte by byte and
 * signs assertions with OpenSSL -- so every refusal is produced by
 * changing one thing of an otherwise valid ceremony.
 */
#include "cs_webauthn.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>

#include "cs_crypto.h"
#include "cs_mem.h"
#include "cs_test.h"

#define RP "approve.example.com"
#define ORIGIN "https://approve.example.com"

/* Test-only key: never used anywhere else. */
static const char rsa_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                              "MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQCw5qBpG6tzMjVG\n"
                              "cKAIDadL3tm6LyXWE07fF2aUxDNGdOzYE8uIjr5TZHaYH5o7JW9iqgoQqtPqb+Fc\n"
                              "D0LzfkYMZQDsI5gNGFiorFadar6fQMJ0Pd43PTOzkf1w9fbsQQdw+AnnrlavqL6M\n"
                              "cgdkOPGGctoVgtGPo3Dpv4MjC86h2/g3KQJTjtsRqWYFeQCO1TrTuotzMRXKlkFI\n"
                              "xGPByJC8mGBJew21fMCfgr9acL1r4ll9x3pJWNaAVvLVI8fYBL9gbioyCKW9hE+/\n"
                              "Cj+oQj7bLnArUxclIR91RvgfhxKISApmhvBgMvf92LttR4bodnijJdArBLfWhXvK\n"
                              "71FFIXnzAgMBAAECggEASH5qlEhTjYSw0moLGuHFglET9rmljsIg20myrxpsTN5T\n"
                              "xQTvrsmYc4JDG3ov8TcZG1zFfSkUaQlqWBik/jXsLN4jb6HyiMNGafEeGaqJ7adT\n"
                              "SOGltAtvqZIVQ3p4sz6+9uue24PVYG0NkW6VWtv/FnLwrkoK6Qs4lYH3EqCfEDLt\n"
                              "P634h5+Of+raUlDv0pMHygV/hB+Q+vHW9RsfK6JcHbw+qZM1YVfJ/KiKZPv+lX6M\n"
                              "2Q3wQg3OrTkT6wGs7Tjq9ySB3rbJ3YWctBwJvb93/TNCVwoKEPDFaTyvEWE32OXR\n"
                              "m8hnPIO28DXytjqQOBAkCc+NK6nKagNbmiBOoavEyQKBgQD5MxuSmBmILToD+UgA\n"
                              "ATVKxsSWERIdzIpKe8QBxjMqVbdQUcvhOVsPGxO8Hs6zRaHcsbg7XODS00vOp37o\n"
                              "XgUzFoUZhcM1U0C0An+nog4m7XVceIeZOQWVQiCVeio8mDW8KTKTE+J+48+SPy6s\n"
                              "VCjZhmSvBz2iBK7YOBN2tuFQnQKBgQC1unHOWbUIxtqiZ+VfzSDMAA+wkOwRKVLV\n"
                              "zThQTaOkpQsOcbHVZ7Zoc1Z6Eo5XWBpRd/OXMJVnawvpfTr0Uu2d2JSS28DTLD6c\n"
                              "h8F9Z0tJiT6AEIJyipP7fyW7+CoCU7jLrxzNbGPPIN8Mo8HNu9kQTgxRWbNLz4PK\n"
                              "cL6o3aEHzwKBgQCLJGdD3ht7ds1LBLiYEBSikQOZSyTTcK7S0fJqjzFodP3rIhD1\n"
                              "y+G1OIg3ZPhDDyFGqhDVTJHYBdTxKYLp2f2LPgrJam/J6ZdaK379qbW/NJ1wKXiF\n"
                              "LFqasZah/9lvhgmS62nqx5KTCT6QSSkVXdSFSM4VELTwLy81WXI8ufZq3QKBgQCN\n"
                              "ZAiT0jwGHiGRZmCSTxkLX6jVaYwiNhKbAlakNCP0P+0ASflg3paPYd2QkMtqrcOc\n"
                              "S0WdBlHX6vOTsLmjyrnRq+a89HlsU+pLA1zJ4woyprOYFEBKOgO1E1Iak5SrxtPq\n"
                              "tc4lDgYB68NfJDHvjg3un6r5yF61xzj00w+kdvuJBQKBgFRjpJwojujzdd5+raxS\n"
                              "UxKlPmZiy/khSuQB5uPz2NBaHqMa8aBKxmYE/gxwdJjeJUwuQ2muVcmXN1C64MHB\n"
                              "7145jcJvUwyAo6ciuVURO3djZz4BYdgdYVUHGwLXMcUNdSZ0oPy0vv/s4eLIPGrG\n"
                              "m2CgaCAvJD31UnWT79dvHW+n\n"
                              "-----END PRIVATE KEY-----\n";

/* ---- a tiny CBOR writer ---- */

struct w {
    unsigned char b[4096];
    size_t n;
};

static void put(struct w *w, const void *p, size_t n)
{
    cs_assert(w->n + n <= sizeof(w->b));
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void head(struct w *w, int major, uint64_t v)
{
    unsigned char h[9];
    size_t n = 1;
    if (v < 24) {
        h[0] = (unsigned char)(major << 5 | v);
    } else {
        int ai = v <= 0xff ? 24 : v <= 0xffff ? 25 : v <= 0xffffffffu ? 26 : 27;
        n = (size_t)1 + ((size_t)1 << (ai - 24));
        h[0] = (unsigned char)(major << 5 | ai);
        for (size_t i = 1; i < n; i++)
            h[i] = (unsigned char)(v >> (8 * (n - 1 - i)));
    }
    put(w, h, n);
}

static void cint(struct w *w, int64_t v)
{
    head(w, v < 0 ? 1 : 0, v < 0 ? (uint64_t)(-1 - v) : (uint64_t)v);
}

static void cbytes(struct w *w, const void *p, size_t n)
{
    head(w, 2, n);
    put(w, p, n);
}

static void ctext(struct w *w, const char *s)
{
    head(w, 3, strlen(s));
    put(w, s, strlen(s));
}

/* ---- the authenticator ---- */

struct authn {
    EVP_PKEY *pkey;
    int alg;
    unsigned char cose[600];
    size_t cose_len;
    unsigned char id[20];
};

static void bn_param(EVP_PKEY *k, const char *name, unsigned char *out, size_t *len, size_t pad)
{
    BIGNUM *bn = NULL;
    cs_assert(EVP_PKEY_get_bn_param(k, name, &bn) == 1);
    *len = pad ? pad : (size_t)BN_num_bytes(bn);
    cs_assert(BN_bn2binpad(bn, out, (int)*len) == (int)*len);
    BN_free(bn);
}

/* Writes the COSE_Key of a's public key. */
static void cose_of(struct authn *a)
{
    struct w w = {.n = 0};
    unsigned char p1[512], p2[512];
    size_t l1, l2;
    if (a->alg == CS_WEBAUTHN_ALG_ES256) {
        bn_param(a->pkey, OSSL_PKEY_PARAM_EC_PUB_X, p1, &l1, 32);
        bn_param(a->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, p2, &l2, 32);
        head(&w, 5, 5);
        cint(&w, 1), cint(&w, 2);  /* kty EC2 */
        cint(&w, 3), cint(&w, -7); /* alg ES256 */
        cint(&w, -1), cint(&w, 1); /* crv P-256 */
        cint(&w, -2), cbytes(&w, p1, l1);
        cint(&w, -3), cbytes(&w, p2, l2);
    } else {
        bn_param(a->pkey, OSSL_PKEY_PARAM_RSA_N, p1, &l1, 0);
        bn_param(a->pkey, OSSL_PKEY_PARAM_RSA_E, p2, &l2, 0);
        head(&w, 5, 4);
        cint(&w, 1), cint(&w, 3);    /* kty RSA */
        cint(&w, 3), cint(&w, -257); /* alg RS256 */
        cint(&w, -1), cbytes(&w, p1, l1);
        cint(&w, -2), cbytes(&w, p2, l2);
    }
    memcpy(a->cose, w.b, w.n);
    a->cose_len = w.n;
}

static void authn_init(struct authn *a, int alg)
{
    memset(a, 0, sizeof(*a));
    a->alg = alg;
    if (alg == CS_WEBAUTHN_ALG_ES256) {
        a->pkey = EVP_EC_gen("P-256");
    } else {
        BIO *bio = BIO_new_mem_buf(rsa_pem, -1);
        a->pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
        BIO_free(bio);
    }
    cs_assert(a->pkey);
    cs_random_bytes(a->id, sizeof(a->id));
    cose_of(a);
}

static void authn_free(struct authn *a)
{
    EVP_PKEY_free(a->pkey);
}

/* authenticatorData: rpIdHash(rp) | flags | count | [aaguid | idlen | id | cose] | [ext]. */
static void authdata(struct w *w, const struct authn *a, const char *rp, unsigned flags,
                     uint32_t count, bool ext)
{
    unsigned char h[32], c[4] = {(unsigned char)(count >> 24), (unsigned char)(count >> 16),
                                 (unsigned char)(count >> 8), (unsigned char)count};
    cs_sha256(rp, strlen(rp), h);
    w->n = 0;
    put(w, h, 32);
    unsigned char f = (unsigned char)(flags | (ext ? 0x80 : 0));
    put(w, &f, 1);
    put(w, c, 4);
    if (a) {
        unsigned char aaguid[16] = {0}, len[2] = {0, sizeof(a->id)};
        put(w, aaguid, 16);
        put(w, len, 2);
        put(w, a->id, sizeof(a->id));
        put(w, a->cose, a->cose_len);
    }
    if (ext) {
        head(w, 5, 1);
        ctext(w, "credProtect"), cint(w, 2);
    }
}

/* {"fmt": "none", "attStmt": {}, "authData": ad}. */
static void attobj(struct w *w, const struct w *ad)
{
    w->n = 0;
    head(w, 5, 3);
    ctext(w, "fmt"), ctext(w, "none");
    ctext(w, "attStmt"), head(w, 5, 0);
    ctext(w, "authData"), cbytes(w, ad->b, ad->n);
}

static char cdj[1024];

/* clientDataJSON as Chrome writes it, with `extra` members appended. */
static const char *client_data(const char *type, const unsigned char *ch, size_t chlen,
                               const char *origin, const char *extra)
{
    char *c64 = cs_b64_encode(ch, chlen, true);
    snprintf(cdj, sizeof(cdj), "{\"type\":\"%s\",\"challenge\":\"%s\",\"origin\":\"%s\"%s}", type,
             c64, origin, extra ? extra : ",\"crossOrigin\":false");
    cs_free(c64);
    return cdj;
}

static size_t sign(const struct authn *a, const struct w *ad, const char *cd, unsigned char *sig)
{
    unsigned char h[32], msg[4200];
    size_t siglen = 512;
    cs_sha256(cd, strlen(cd), h);
    memcpy(msg, ad->b, ad->n);
    memcpy(msg + ad->n, h, 32);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    cs_assert(EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, a->pkey, NULL) == 1 &&
              EVP_DigestSign(md, sig, &siglen, msg, ad->n + 32) == 1);
    EVP_MD_CTX_free(md);
    return siglen;
}

static const unsigned char challenge[32] = "0123456789abcdef0123456789abcde";

static enum cs_err reg(const char *cd, const struct w *ao, bool uv,
                       struct cs_webauthn_credential *c, char *err)
{
    return cs_webauthn_register(RP, ORIGIN, challenge, sizeof(challenge), (const unsigned char *)cd,
                                strlen(cd), ao->b, ao->n, uv, c, err);
}

/* Registers authData ad (built by the caller) with a valid clientDataJSON. */
static enum cs_err reg_ad(const struct w *ad, bool uv, char *err)
{
    struct w ao;
    struct cs_webauthn_credential c;
    attobj(&ao, ad);
    enum cs_err rc =
        reg(client_data("webauthn.create", challenge, 32, ORIGIN, NULL), &ao, uv, &c, err);
    cs_webauthn_credential_free(&c);
    return rc;
}

/* Registers raw attestationObject bytes with a valid clientDataJSON. */
static enum cs_err reg_raw(const unsigned char *p, size_t n, char *err)
{
    struct w ao = {.n = 0};
    struct cs_webauthn_credential c;
    put(&ao, p, n);
    enum cs_err rc =
        reg(client_data("webauthn.create", challenge, 32, ORIGIN, NULL), &ao, false, &c, err);
    cs_webauthn_credential_free(&c);
    return rc;
}

/* ---- registration ---- */

CS_TEST(register_es256_and_rs256)
{
    int algs[] = {CS_WEBAUTHN_ALG_ES256, CS_WEBAUTHN_ALG_RS256};
    for (size_t i = 0; i < 2; i++) {
        struct authn a;
        struct w ad, ao;
        struct cs_webauthn_credential c;
        char err[CS_ERRLEN] = "";
        authn_init(&a, algs[i]);
        authdata(&ad, &a, RP, 0x45, 7, false); /* UP UV AT */
        attobj(&ao, &ad);
        CS_CHECK_RC(
            reg(client_data("webauthn.create", challenge, 32, ORIGIN, NULL), &ao, true, &c, err),
            CS_OK);
        CS_CHECK_EQ_INT(c.alg, algs[i]);
        CS_CHECK_EQ_INT(c.sign_count, 7);
        CS_CHECK(c.user_verified);
        CS_CHECK(c.id_len == sizeof(a.id) && memcmp(c.id, a.id, c.id_len) == 0);
        CS_CHECK(c.public_key_len == a.cose_len && memcmp(c.public_key, a.cose, a.cose_len) == 0);
        cs_webauthn_credential_free(&c);
        CS_CHECK(c.id == NULL && c.public_key == NULL);
        /* crossOrigin absent, extra members (Chrome adds some on purpose), extensions: fine. */
        authdata(&ad, &a, RP, 0x41, 0, true);
        attobj(&ao, &ad);
        CS_CHECK_RC(reg(client_data("webauthn.create", challenge, 32, ORIGIN,
                                    ",\"other_keys_can_be_added_here\":\"x\""),
                        &ao, false, &c, err),
                    CS_OK);
        CS_CHECK(!c.user_verified && c.sign_count == 0);
        cs_webauthn_credential_free(&c);
        authn_free(&a);
    }
    cs_webauthn_credential_free(NULL);
}

CS_TEST(register_refuses_client_data)
{
    struct authn a;
    struct w ad, ao;
    struct cs_webauthn_credential c;
    char err[CS_ERRLEN] = "";
    unsigned char other[32];
    authn_init(&a, CS_WEBAUTHN_ALG_ES256);
    authdata(&ad, &a, RP, 0x45, 0, false);
    attobj(&ao, &ad);
    memcpy(other, challenge, 32);
    other[31] ^= 1;
    struct {
        const char *cd;
        enum cs_err rc;
        const char *msg;
    } cases[] = {
        {client_data("webauthn.get", challenge, 32, ORIGIN, NULL), CS_ERR_UNAUTHENTICATED, "type"},
        {NULL, CS_ERR_UNAUTHENTICATED, "challenge"},
        {NULL, CS_ERR_UNAUTHENTICATED, "origin"},
        {NULL, CS_ERR_UNAUTHENTICATED, "crossOrigin"},
        {NULL, CS_ERR_INVALID, "crossOrigin"},
        {NULL, CS_ERR_UNAUTHENTICATED, "token binding"},
        {"{\"type\":\"webauthn.create\"", CS_ERR_INVALID, "not JSON"},
        {"[1]", CS_ERR_INVALID, "not a JSON object"},
        {"{\"type\":\"webauthn.create\"}", CS_ERR_INVALID, "challenge"},
    };
    char buf[6][1024];
    snprintf(buf[0], sizeof(buf[0]), "%s", client_data("webauthn.create", other, 32, ORIGIN, NULL));
    snprintf(buf[1], sizeof(buf[1]), "%s",
             client_data("webauthn.create", challenge, 32, "https://approve.example.co", NULL));
    snprintf(buf[2], sizeof(buf[2]), "%s",
             client_data("webauthn.create", challenge, 32, ORIGIN, ",\"crossOrigin\":true"));
    snprintf(buf[3], sizeof(buf[3]), "%s",
             client_data("webauthn.create", challenge, 32, ORIGIN, ",\"crossOrigin\":1"));
    snprintf(buf[4], sizeof(buf[4]), "%s",
             client_data("webauthn.create", challenge, 32, ORIGIN,
                         ",\"tokenBinding\":{\"status\":\"present\",\"id\":\"AAAA\"}"));
    snprintf(buf[5], sizeof(buf[5]), "%s",
             client_data("webauthn.get", challenge, 32, ORIGIN, NULL));
    cases[0].cd = buf[5];
    for (int i = 0; i < 5; i++)
        cases[i + 1].cd = buf[i];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err[0] = '\0';
        if (!CS_CHECK_RC(reg(cases[i].cd, &ao, false, &c, err), cases[i].rc))
            printf("  case %zu\n", i);
        CS_CHECK_HAS(err, cases[i].msg);
        CS_CHECK(strstr(err, "example") == NULL); /* a check is named, a value never quoted */
        CS_CHECK(c.id == NULL && c.public_key == NULL);
    }
    authn_free(&a);
}

CS_TEST(register_refuses_authenticator_data)
{
    struct authn a;
    struct w ad;
    char err[CS_ERRLEN] = "";
    authn_init(&a, CS_WEBAUTHN_ALG_ES256);
    authdata(&ad, &a, "evil.example.com", 0x45, 0, false);
    CS_CHECK_RC(reg_ad(&ad, false, err), CS_ERR_UNAUTHENTICATED);
    CS_CHECK_HAS(err, "rpIdHash");
    authdata(&ad, &a, RP, 0x44, 0, false); /* no UP */
    CS_CHECK_RC(reg_ad(&ad, false, err), CS_ERR_UNAUTHENTICATED);
    CS_CHECK_HAS(err, "UP");
    authdata(&ad, &a, RP, 0x41, 0, false); /* no UV */
    CS_CHECK_RC(reg_ad(&ad, true, err), CS_ERR_UNAUTHENTICATED);
    CS_CHECK_HAS(err, "UV");
    CS_CHECK_RC(reg_ad(&ad, false, err), CS_OK);
    authdata(&ad, NULL, RP, 0x05, 0, false); /* no AT, no credential */
    CS_CHECK_RC(reg_ad(&ad, false, err), CS_ERR_UNAUTHENTICATED);
    CS_CHECK_HAS(err, "AT");
    authdata(&ad, &a, RP, 0x55, 0, false); /* BS without BE */
    CS_CHECK_RC(reg_ad(&ad, false, err), CS_ERR_UNAUTHENTICATED);
    CS_CHECK_HAS(err, "BS");
    authdata(&ad, &a, RP, 0x5d, 0, false); /* BE and BS: a synced passkey */
    CS_CHECK_RC(reg_ad(&ad, false, err), CS_OK);
    authdata(&ad, &a, RP, 0x45, 0, false);
    put(&ad, "\0", 1); /* trailing byte */
    CS_CHECK_RC(reg_ad(&ad, false, err), CS_ERR_INVALID);
    CS_CHECK_HAS(err, "trailing");
    authdata(&ad, &a, RP, 0xc5, 0, false); /* ED without extensions */
    CS_CHECK_RC(reg_ad(&ad, false, err), CS_ERR_INVALID);
    CS_CHECK_HAS(err, "extensions");
    authdata(&ad, &a, RP, 0x45, 0, false);
    ad.b[53] = 0, ad.b[54] = 0; /* credential id of 0 bytes */
    CS_CHECK_RC(reg_ad(&ad, false, err), CS_ERR_INVALID);
    ad.b[53] = 4, ad.b[54] = 0; /* 1024 bytes */
    CS_CHECK_RC(reg_ad(&ad, false, err), CS_ERR_INVALID);
    CS_CHECK_HAS(err, "credential id");
    ad.b[53] = 0, ad.b[54] = 200; /* longer than what follows */
    CS_CHECK_RC(reg_ad(&ad, false, err), CS_ERR_INVALID);
    ad.n = 40;
    CS_CHECK_RC(reg_ad(&ad, false, err), CS_ERR_INVALID);
    ad.n = 36;
    CS_CHECK_RC(reg_ad(&ad, false, err), CS_ERR_INVALID);
    authn_free(&a);
}

/* Registers a credential whose COSE_Key is k. */
static enum cs_err reg_key(const struct w *k, char *err)
{
    struct authn a = {.alg = 0};
    memcpy(a.cose, k->b, k->n);
    a.cose_len = k->n;
    struct w ad;
    authdata(&ad, &a, RP, 0x45, 0, false);
    return reg_ad(&ad, false, err);
}

CS_TEST(register_refuses_keys)
{
    struct w k;
    char err[CS_ERRLEN] = "";
    unsigned char x[32], big[256];
    memset(x, 0x11, sizeof(x));
    /* EdDSA (OKP Ed25519): not supported, said so */
    k.n = 0;
    head(&k, 5, 4);
    cint(&k, 1), cint(&k, 1), cint(&k, 3), cint(&k, -8), cint(&k, -1), cint(&k, 6);
    cint(&k, -2), cbytes(&k, x, 32);
    CS_CHECK_RC(reg_key(&k, err), CS_ERR_INVALID);
    CS_CHECK_HAS(err, "alg -8 is not supported");
    /* RSA 1024 (and 2047 bits) */
    memset(big, 0xc5, sizeof(big));
    for (size_t n = 128; n <= 256; n += 128) {
        k.n = 0;
        head(&k, 5, 4);
        cint(&k, 1), cint(&k, 3), cint(&k, 3), cint(&k, -257);
        big[0] = n == 256 ? 0x7f : 0xc5;
        cint(&k, -1), cbytes(&k, big, n);
        cint(&k, -2), cbytes(&k, "\x01\x00\x01", 3);
        CS_CHECK_RC(reg_key(&k, err), CS_ERR_INVALID);
        CS_CHECK_HAS(err, "2048");
    }
    /* EC2 on another curve, a point off the curve, short x, compressed y, private d, no alg */
    for (int v = 0; v < 6; v++) {
        k.n = 0;
        head(&k, 5, v == 4 ? 6 : v == 5 ? 4 : 5);
        cint(&k, 1), cint(&k, 2);
        if (v != 5)
            cint(&k, 3), cint(&k, -7);
        cint(&k, -1), cint(&k, v == 0 ? 2 : 1);
        cint(&k, -2), cbytes(&k, x, v == 2 ? 31 : 32);
        cint(&k, -3);
        if (v == 3)
            head(&k, 7, 21); /* true: the compressed form */
        else
            cbytes(&k, x, 32);
        if (v == 4)
            cint(&k, -4), cbytes(&k, x, 32);
        CS_CHECK_RC(reg_key(&k, err), CS_ERR_INVALID);
        CS_CHECK_HAS(err, "credential key");
    }
    /* alg of the wrong kty */
    k.n = 0;
    head(&k, 5, 4);
    cint(&k, 1), cint(&k, 3), cint(&k, 3), cint(&k, -7), cint(&k, -1), cint(&k, 1);
    cint(&k, -2), cbytes(&k, x, 32);
    CS_CHECK_RC(reg_key(&k, err), CS_ERR_INVALID);
    CS_CHECK_HAS(err, "kty EC2");
}

CS_TEST(register_refuses_malformed_cbor)
{
    struct authn a;
    struct w ad, ao, x;
    char err[CS_ERRLEN] = "";
    authn_init(&a, CS_WEBAUTHN_ALG_ES256);
    authdata(&ad, &a, RP, 0x45, 0, false);
    attobj(&ao, &ad);
    CS_CHECK_RC(reg_raw(ao.b, ao.n, err), CS_OK);
    /* every truncation */
    int refused = 0;
    for (size_t n = 0; n < ao.n; n++)
        refused += reg_raw(ao.b, n, err) == CS_ERR_INVALID;
    CS_CHECK_EQ_INT(refused, ao.n);
    /* trailing bytes */
    x = ao;
    put(&x, "\x00", 1);
    CS_CHECK_RC(reg_raw(x.b, x.n, err), CS_ERR_INVALID);
    CS_CHECK_HAS(err, "trailing bytes");
    /* indefinite-length map: 0xbf ... 0xff */
    x = ao;
    x.b[0] = 0xbf;
    put(&x, "\xff", 1);
    CS_CHECK_RC(reg_raw(x.b, x.n, err), CS_ERR_INVALID);
    CS_CHECK_HAS(err, "indefinite");
    /* duplicate keys: fmt twice */
    x.n = 0;
    head(&x, 5, 4);
    ctext(&x, "fmt"), ctext(&x, "none");
    ctext(&x, "fmt"), ctext(&x, "none");
    ctext(&x, "attStmt"), head(&x, 5, 0);
    ctext(&x, "authData"), cbytes(&x, ad.b, ad.n);
    CS_CHECK_RC(reg_raw(x.b, x.n, err), CS_ERR_INVALID);
    CS_CHECK_HAS(err, "duplicate map key");
    /* the same key spelt in a longer head is still the same key */
    x.n = 0;
    head(&x, 5, 4);
    ctext(&x, "fmt"), ctext(&x, "none");
    put(&x,
        "\x78\x03"
        "fmt",
        5),
        ctext(&x, "none");
    ctext(&x, "attStmt"), head(&x, 5, 0);
    ctext(&x, "authData"), cbytes(&x, ad.b, ad.n);
    CS_CHECK_RC(reg_raw(x.b, x.n, err), CS_ERR_INVALID);
    CS_CHECK_HAS(err, "duplicate map key");
    /* a duplicate key inside the COSE_Key */
    struct authn d = a;
    d.cose[0] = 0xa6;
    memcpy(d.cose + d.cose_len, "\x03\x26", 2); /* 3: -7 again */
    d.cose_len += 2;
    authdata(&x, &d, RP, 0x45, 0, false);
    CS_CHECK_RC(reg_ad(&x, false, err), CS_ERR_INVALID);
    CS_CHECK_HAS(err, "duplicate map key");
    /* a tag, a float, undefined, a reserved head, a non-UTF-8 key, an array key, another member */
    const char *bad[][2] = {
        {"\xc0", "tags"},
        {"\xfa\x00\x00\x00\x00", "floats"},
        {"\xf7", "simple values"},
        {"\x1c", "reserved"},
        {"\x62\xc3\x28", "UTF-8"},
        {"\x81\x00", "map key"},
        {"\x63zzz", "members are fmt"},
    };
    size_t badlen[] = {1, 5, 1, 1, 3, 2, 4};
    for (size_t i = 0; i < sizeof(badlen) / sizeof(badlen[0]); i++) {
        x.n = 0;
        head(&x, 5, 4);
        put(&x, bad[i][0], badlen[i]), ctext(&x, "x");
        ctext(&x, "fmt"), ctext(&x, "none");
        ctext(&x, "attStmt"), head(&x, 5, 0);
        ctext(&x, "authData"), cbytes(&x, ad.b, ad.n);
        if (!CS_CHECK_RC(reg_raw(x.b, x.n, err), CS_ERR_INVALID))
            printf("  case %zu\n", i);
        CS_CHECK_HAS(err, bad[i][1]);
    }
    /* depth: the map and attStmt are 2 levels; 6 more arrays make 8 (fine), 7 make 9 */
    for (int extra = 6; extra <= 7; extra++) {
        x.n = 0;
        head(&x, 5, 3);
        ctext(&x, "fmt"), ctext(&x, "packed");
        ctext(&x, "attStmt"), head(&x, 5, 1), ctext(&x, "x5c");
        for (int i = 0; i < extra; i++)
            head(&x, 4, 1);
        cint(&x, 0);
        ctext(&x, "authData"), cbytes(&x, ad.b, ad.n);
        CS_CHECK_RC(reg_raw(x.b, x.n, err), extra == 6 ? CS_OK : CS_ERR_INVALID);
    }
    CS_CHECK_HAS(err, "deeper than 8");
    /* a length beyond the input, and a map of 65 pairs */
    x.n = 0;
    head(&x, 5, 3);
    ctext(&x, "fmt"), ctext(&x, "none");
    ctext(&x, "attStmt"), head(&x, 5, 0);
    ctext(&x, "authData"), head(&x, 2, 0xffffffffffffffffu);
    CS_CHECK_RC(reg_raw(x.b, x.n, err), CS_ERR_INVALID);
    CS_CHECK_HAS(err, "truncated");
    x.n = 0;
    head(&x, 5, 3);
    ctext(&x, "fmt"), ctext(&x, "packed");
    ctext(&x, "attStmt"), head(&x, 5, 65);
    for (int i = 0; i < 65; i++)
        cint(&x, i), cint(&x, 0);
    ctext(&x, "authData"), cbytes(&x, ad.b, ad.n);
    CS_CHECK_RC(reg_raw(x.b, x.n, err), CS_ERR_INVALID);
    CS_CHECK_HAS(err, "64 pairs");
    /* fmt none with a statement; a missing member */
    x.n = 0;
    head(&x, 5, 3);
    ctext(&x, "fmt"), ctext(&x, "none");
    ctext(&x, "attStmt"), head(&x, 5, 1), ctext(&x, "alg"), cint(&x, -7);
    ctext(&x, "authData"), cbytes(&x, ad.b, ad.n);
    CS_CHECK_RC(reg_raw(x.b, x.n, err), CS_ERR_INVALID);
    x.n = 0;
    head(&x, 5, 2);
    ctext(&x, "fmt"), ctext(&x, "none");
    ctext(&x, "authData"), cbytes(&x, ad.b, ad.n);
    CS_CHECK_RC(reg_raw(x.b, x.n, err), CS_ERR_INVALID);
    CS_CHECK_HAS(err, "required");
    authn_free(&a);
}

/* ---- assertions ---- */

struct assertion {
    struct w ad;
    char cd[1024];
    unsigned char sig[512];
    size_t sig_len;
};

static void assert_make(struct assertion *as, const struct authn *signer, const char *rp,
                        unsigned flags, uint32_t count, const unsigned char ch[32],
                        const char *origin)
{
    authdata(&as->ad, NULL, rp, flags, count, false);
    snprintf(as->cd, sizeof(as->cd), "%s", client_data("webauthn.get", ch, 32, origin, NULL));
    as->sig_len = sign(signer, &as->ad, as->cd, as->sig);
}

static enum cs_err check(const struct authn *a, const struct assertion *as,
                         const unsigned char ch[32], uint32_t stored, bool uv, uint32_t *count,
                         char *err)
{
    return cs_webauthn_verify(RP, ORIGIN, ch, 32, a->cose, a->cose_len, stored, as->ad.b, as->ad.n,
                              (const unsigned char *)as->cd, strlen(as->cd), as->sig, as->sig_len,
                              uv, count, err);
}

CS_TEST(assertion_accepted)
{
    int algs[] = {CS_WEBAUTHN_ALG_ES256, CS_WEBAUTHN_ALG_RS256};
    unsigned char ch[32];
    cs_webauthn_vote_challenge("0190a1b2-0000-7000-8000-000000000001", "ab12", "approve", "ok",
                               "bm9uY2U", ch);
    for (size_t i = 0; i < 2; i++) {
        struct authn a;
        struct assertion as;
        char err[CS_ERRLEN] = "";
        uint32_t count = 99;
        authn_init(&a, algs[i]);
        assert_make(&as, &a, RP, 0x05, 8, ch, ORIGIN);
        CS_CHECK_RC(check(&a, &as, ch, 7, true, &count, err), CS_OK);
        CS_CHECK_EQ_INT(count, 8);
        /* an auditor re-verifies the recorded assertion later, with stored count 0 */
        CS_CHECK_RC(check(&a, &as, ch, 0, true, &count, err), CS_OK);
        /* an authenticator without a counter: 0 then 0 */
        assert_make(&as, &a, RP, 0x01, 0, ch, ORIGIN);
        CS_CHECK_RC(check(&a, &as, ch, 0, false, &count, err), CS_OK);
        CS_CHECK_EQ_INT(count, 0);
        /* extensions after the counter */
        authdata(&as.ad, NULL, RP, 0x05, 9, true);
        as.sig_len = sign(&a, &as.ad, as.cd, as.sig);
        CS_CHECK_RC(check(&a, &as, ch, 8, true, &count, err), CS_OK);
        authn_free(&a);
    }
}

CS_TEST(assertion_refused)
{
    struct authn a, other;
    struct assertion as;
    char err[CS_ERRLEN] = "";
    uint32_t count = 0;
    unsigned char ch[32], ch_digest[32], ch_decision[32], ch_reason[32];
    const char *id = "0190a1b2-0000-7000-8000-000000000001";
    authn_init(&a, CS_WEBAUTHN_ALG_ES256);
    authn_init(&other, CS_WEBAUTHN_ALG_ES256);
    cs_webauthn_vote_challenge(id, "ab12", "approve", "ok", "bm9uY2U", ch);
    cs_webauthn_vote_challenge(id, "ab13", "approve", "ok", "bm9uY2U", ch_digest);
    cs_webauthn_vote_challenge(id, "ab12", "deny", "ok", "bm9uY2U", ch_decision);
    cs_webauthn_vote_challenge(id, "ab12", "approve", "ok!", "bm9uY2U", ch_reason);
    const unsigned char *others[] = {ch_digest, ch_decision, ch_reason};
    for (int i = 0; i < 3; i++) { /* the device signed a vote on something else */
        assert_make(&as, &a, RP, 0x05, 5, others[i], ORIGIN);
        CS_CHECK_RC(check(&a, &as, ch, 4, false, &count, err), CS_ERR_UNAUTHENTICATED);
        CS_CHECK_HAS(err, "challenge");
    }
    assert_make(&as, &a, RP, 0x05, 5, ch, "https://evil.example.com");
    CS_CHECK_RC(check(&a, &as, ch, 4, false, &count, err), CS_ERR_UNAUTHENTICATED);
    CS_CHECK_HAS(err, "origin");
    assert_make(&as, &a, "evil.example.com", 0x05, 5, ch, ORIGIN);
    CS_CHECK_RC(check(&a, &as, ch, 4, false, &count, err), CS_ERR_UNAUTHENTICATED);
    CS_CHECK_HAS(err, "rpIdHash");
    assert_make(&as, &a, RP, 0x01, 5, ch, ORIGIN);
    CS_CHECK_RC(check(&a, &as, ch, 4, true, &count, err), CS_ERR_UNAUTHENTICATED);
    CS_CHECK_HAS(err, "UV");
    assert_make(&as, &a, RP, 0x04, 5, ch, ORIGIN);
    CS_CHECK_RC(check(&a, &as, ch, 4, false, &count, err), CS_ERR_UNAUTHENTICATED);
    CS_CHECK_HAS(err, "UP");
    /* the counter: back, equal, 0 after non-zero */
    uint32_t counts[][2] = {{5, 4}, {5, 5}, {5, 0}};
    for (int i = 0; i < 3; i++) {
        assert_make(&as, &a, RP, 0x05, counts[i][1], ch, ORIGIN);
        count = 77;
        CS_CHECK_RC(check(&a, &as, ch, counts[i][0], false, &count, err), CS_ERR_UNAUTHENTICATED);
        CS_CHECK_HAS(err, "cloned");
        CS_CHECK_EQ_INT(count, counts[i][0]);
    }
    /* tampered authData (the counter raised), tampered clientDataJSON, another key */
    assert_make(&as, &a, RP, 0x01, 5, ch, ORIGIN);
    CS_CHECK_RC(check(&a, &as, ch, 4, false, &count, err), CS_OK);
    as.ad.b[36] ^= 0x10;
    CS_CHECK_RC(check(&a, &as, ch, 4, false, &count, err), CS_ERR_UNAUTHENTICATED);
    CS_CHECK_HAS(err, "signature");
    as.ad.b[36] ^= 0x10;
    as.ad.b[32] |= 0x04; /* UV claimed after the fact */
    CS_CHECK_RC(check(&a, &as, ch, 4, true, &count, err), CS_ERR_UNAUTHENTICATED);
    CS_CHECK_HAS(err, "signature");
    as.ad.b[32] &= (unsigned char)~0x04;
    CS_CHECK_RC(check(&a, &as, ch, 4, false, &count, err), CS_OK);
    as.cd[strlen(as.cd) - 2] = 'u'; /* "crossOrigin":false -> falsu */
    CS_CHECK_RC(check(&a, &as, ch, 4, false, &count, err), CS_ERR_UNAUTHENTICATED);
    CS_CHECK_HAS(err, "signature");
    assert_make(&as, &other, RP, 0x05, 5, ch, ORIGIN);
    CS_CHECK_RC(check(&a, &as, ch, 4, false, &count, err), CS_ERR_UNAUTHENTICATED);
    CS_CHECK_HAS(err, "signature");
    /* a registration's clientDataJSON, signed: wrong type */
    authdata(&as.ad, NULL, RP, 0x05, 5, false);
    snprintf(as.cd, sizeof(as.cd), "%s", client_data("webauthn.create", ch, 32, ORIGIN, NULL));
    as.sig_len = sign(&a, &as.ad, as.cd, as.sig);
    CS_CHECK_RC(check(&a, &as, ch, 4, false, &count, err), CS_ERR_UNAUTHENTICATED);
    CS_CHECK_HAS(err, "type");
    /* AT in an assertion; a signature cut short or empty */
    authdata(&as.ad, &a, RP, 0x45, 5, false);
    as.sig_len = sign(&a, &as.ad, as.cd, as.sig);
    CS_CHECK_RC(check(&a, &as, ch, 4, false, &count, err), CS_ERR_UNAUTHENTICATED);
    CS_CHECK_HAS(err, "AT");
    assert_make(&as, &a, RP, 0x05, 5, ch, ORIGIN);
    as.sig_len--;
    CS_CHECK_RC(check(&a, &as, ch, 4, false, &count, err), CS_ERR_UNAUTHENTICATED);
    as.sig_len = 0;
    CS_CHECK_RC(check(&a, &as, ch, 4, false, &count, err), CS_ERR_UNAUTHENTICATED);
    /* a stored key that is not one */
    assert_make(&as, &a, RP, 0x05, 5, ch, ORIGIN);
    CS_CHECK_RC(cs_webauthn_verify(RP, ORIGIN, ch, 32, a.cose, a.cose_len - 1, 4, as.ad.b, as.ad.n,
                                   (const unsigned char *)as.cd, strlen(as.cd), as.sig, as.sig_len,
                                   false, &count, err),
                CS_ERR_INVALID);
    CS_CHECK_HAS(err, "stored key");
    CS_CHECK_RC(cs_webauthn_verify(RP, ORIGIN, ch, 8, a.cose, a.cose_len, 4, as.ad.b, as.ad.n,
                                   (const unsigned char *)as.cd, strlen(as.cd), as.sig, as.sig_len,
                                   false, &count, err),
                CS_ERR_INVALID);
    CS_CHECK_HAS(err, "challenge");
    authn_free(&a);
    authn_free(&other);
}

CS_TEST(assertion_rs256_refused)
{
    struct authn a, e;
    struct assertion as;
    char err[CS_ERRLEN] = "";
    uint32_t count = 0;
    unsigned char ch[32];
    cs_webauthn_vote_challenge("id", "ab12", "approve", NULL, "n", ch);
    authn_init(&a, CS_WEBAUTHN_ALG_RS256);
    authn_init(&e, CS_WEBAUTHN_ALG_ES256);
    assert_make(&as, &a, RP, 0x05, 5, ch, ORIGIN);
    as.sig[10] ^= 1;
    CS_CHECK_RC(check(&a, &as, ch, 4, false, &count, err), CS_ERR_UNAUTHENTICATED);
    /* an ES256 signature against the RSA key, and the other way round */
    assert_make(&as, &e, RP, 0x05, 5, ch, ORIGIN);
    CS_CHECK_RC(check(&a, &as, ch, 4, false, &count, err), CS_ERR_UNAUTHENTICATED);
    assert_make(&as, &a, RP, 0x05, 5, ch, ORIGIN);
    CS_CHECK_RC(check(&e, &as, ch, 4, false, &count, err), CS_ERR_UNAUTHENTICATED);
    CS_CHECK_HAS(err, "signature");
    authn_free(&a);
    authn_free(&e);
}

/* ---- the vote challenge ---- */

CS_TEST(vote_challenge)
{
    const char *f[5] = {"0190a1b2-0000-7000-8000-000000000001", "ab12cd", "approve", "looks fine",
                        "bm9uY2U"};
    unsigned char a[32], b[32];
    cs_webauthn_vote_challenge(f[0], f[1], f[2], f[3], f[4], a);
    cs_webauthn_vote_challenge(f[0], f[1], f[2], f[3], f[4], b);
    CS_CHECK(memcmp(a, b, 32) == 0);
    /* the documented text, hashed */
    unsigned char rh[32], want[32];
    char rhex[65], text[512];
    cs_sha256(f[3], strlen(f[3]), rh);
    cs_hex_encode(rh, 32, rhex);
    snprintf(text, sizeof(text), "countersign/vote/v1\n%s\n%s\n%s\n%s\n%s", f[0], f[1], f[2], rhex,
             f[4]);
    cs_sha256(text, strlen(text), want);
    CS_CHECK(memcmp(a, want, 32) == 0);
    /* any field changed changes it */
    for (int i = 0; i < 5; i++) {
        const char *g[5];
        memcpy(g, f, sizeof(g));
        g[i] = "other";
        cs_webauthn_vote_challenge(g[0], g[1], g[2], g[3], g[4], b);
        CS_CHECK(memcmp(a, b, 32) != 0);
    }
    /* no reason is the empty reason, and differs from a reason */
    cs_webauthn_vote_challenge(f[0], f[1], f[2], NULL, f[4], a);
    cs_webauthn_vote_challenge(f[0], f[1], f[2], "", f[4], b);
    CS_CHECK(memcmp(a, b, 32) == 0);
    cs_webauthn_vote_challenge(f[0], f[1], f[2], " ", f[4], b);
    CS_CHECK(memcmp(a, b, 32) != 0);
}

CS_TEST_MAIN(CS_RUN(register_es256_and_rs256), CS_RUN(register_refuses_client_data),
             CS_RUN(register_refuses_authenticator_data), CS_RUN(register_refuses_keys),
             CS_RUN(register_refuses_malformed_cbor), CS_RUN(assertion_accepted),
             CS_RUN(assertion_refused), CS_RUN(assertion_rs256_refused), CS_RUN(vote_challenge))
