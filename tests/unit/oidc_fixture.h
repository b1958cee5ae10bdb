/*
 * oidc_fixture.h -- signing keys, JWKS documents and signed ID tokens for
 * the OpenID Connect tests (unit/test_idtoken.c, unit/test_oidc.c and
 * fuzz/fuzz_oidc.c).
 *
 * Keys are generated with OpenSSL in the test (RSA 2048 or 1024 bits, EC
 * P-256) and published as JWKs built from their public numbers, so the
 * code under test reads them exactly as it reads a provider's. Tokens are
 * signed here the way a provider signs them: RS256 PKCS#1 v1.5, ES256 as
 * the 64-byte R||S. JSON is written with ' for " so fixtures read easily
 * (the _json variants take real JSON).
 */
#ifndef OIDC_FIXTURE_H
#define OIDC_FIXTURE_H

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <string.h>

#include "cs_crypto.h"
#include "cs_err.h"
#include "cs_mem.h"

struct fx_key {
    EVP_PKEY *pkey;
    char kid[32];
    bool ec;
};

/* A fresh key: bits 2048 or 1024 for RSA, 0 for EC P-256. */
static inline void fx_key_new(struct fx_key *k, const char *kid, int bits)
{
    memset(k, 0, sizeof(*k));
    k->ec = bits == 0;
    k->pkey = k->ec ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")
                    : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    cs_assert(k->pkey);
    cs_strlcpy(k->kid, kid, sizeof(k->kid));
}

static inline void fx_key_free(struct fx_key *k)
{
    EVP_PKEY_free(k->pkey);
    k->pkey = NULL;
}

/* '-quoted JSON to real JSON, in place; returns s. */
static inline char *fx_sq(char *s)
{
    for (char *c = s; *c; c++)
        if (*c == '\'')
            *c = '"';
    return s;
}

/* base64url of BIGNUM param `name` of k, padded to `pad` bytes when pad > 0. */
static inline char *fx_bn64(const struct fx_key *k, const char *name, int pad)
{
    BIGNUM *bn = NULL;
    cs_assert(EVP_PKEY_get_bn_param(k->pkey, name, &bn) == 1);
    int n = pad > 0 ? pad : BN_num_bytes(bn);
    unsigned char *buf = cs_malloc((size_t)n);
    cs_assert(BN_bn2binpad(bn, buf, n) == n);
    char *s = cs_b64_encode(buf, (size_t)n, true);
    cs_free(buf);
    BN_free(bn);
    return s;
}

/*
 * The JWK of k's public part, with `extra` ('-quoted members, e.g.
 * "'use':'sig'," -- note the trailing comma -- or "") before kid.
 * kid NULL: k's kid; "" : no kid member. cs_malloc'd.
 */
static inline char *fx_jwk(const struct fx_key *k, const char *extra, const char *kid)
{
    char *a, *b, *s;
    kid = kid ? kid : k->kid;
    char *kidm = *kid ? cs_asprintf(",'kid':'%s'", kid) : cs_strdup("");
    if (k->ec) {
        a = fx_bn64(k, OSSL_PKEY_PARAM_EC_PUB_X, 32);
        b = fx_bn64(k, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
        s = cs_asprintf("{%s'kty':'EC','crv':'P-256','x':'%s','y':'%s'%s}", extra, a, b, kidm);
    } else {
        a = fx_bn64(k, OSSL_PKEY_PARAM_RSA_N, 0);
        b = fx_bn64(k, OSSL_PKEY_PARAM_RSA_E, 0);
        s = cs_asprintf("{%s'kty':'RSA','n':'%s','e':'%s'%s}", extra, a, b, kidm);
    }
    cs_free(a);
    cs_free(b);
    cs_free(kidm);
    return fx_sq(s);
}

/* {"keys": [jwk1, jwk2, ...]} from n JWK strings (borrowed). cs_malloc'd. */
static inline char *fx_jwks(const char *const *jwks, size_t n)
{
    char *s = cs_strdup("{\"keys\":[");
    for (size_t i = 0; i < n; i++) {
        char *t = cs_asprintf("%s%s%s", s, i ? "," : "", jwks[i]);
        cs_free(s);
        s = t;
    }
    char *t = cs_asprintf("%s]}", s);
    cs_free(s);
    return t;
}

/* base64url(header) "." base64url(payload) of JSON texts (real quotes). cs_malloc'd. */
static inline char *fx_signing_input_json(const char *header, const char *payload)
{
    char *h64 = cs_b64_encode(header, strlen(header), true);
    char *p64 = cs_b64_encode(payload, strlen(payload), true);
    char *s = cs_asprintf("%s.%s", h64, p64);
    cs_free(h64);
    cs_free(p64);
    return s;
}

/* The same of '-quoted JSON texts. */
static inline char *fx_signing_input(const char *header_sq, const char *payload_sq)
{
    char *h = fx_sq(cs_strdup(header_sq)), *p = fx_sq(cs_strdup(payload_sq));
    char *s = fx_signing_input_json(h, p);
    cs_free(h);
    cs_free(p);
    return s;
}

/* The JWS compact token of JSON header.payload signed with k (RS256, or ES256 as R||S). */
static inline char *fx_sign_json(const struct fx_key *k, const char *header, const char *payload)
{
    char *in = fx_signing_input_json(header, payload);
    unsigned char sig[1024], rs[64];
    size_t siglen = sizeof(sig);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    cs_assert(md && EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, k->pkey, NULL) == 1);
    cs_assert(EVP_DigestSign(md, sig, &siglen, (const unsigned char *)in, strlen(in)) == 1);
    EVP_MD_CTX_free(md);
    const unsigned char *out = sig;
    if (k->ec) {
        const unsigned char *p = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)siglen);
        cs_assert(es);
        cs_assert(BN_bn2binpad(ECDSA_SIG_get0_r(es), rs, 32) == 32);
        cs_assert(BN_bn2binpad(ECDSA_SIG_get0_s(es), rs + 32, 32) == 32);
        ECDSA_SIG_free(es);
        out = rs;
        siglen = 64;
    }
    char *s64 = cs_b64_encode(out, siglen, true);
    char *t = cs_asprintf("%s.%s", in, s64);
    cs_free(in);
    cs_free(s64);
    return t;
}

/* The same of '-quoted JSON texts. */
static inline char *fx_sign(const struct fx_key *k, const char *header_sq, const char *payload_sq)
{
    char *h = fx_sq(cs_strdup(header_sq)), *p = fx_sq(cs_strdup(payload_sq));
    char *t = fx_sign_json(k, h, p);
    cs_free(h);
    cs_free(p);
    return t;
}

/* A key from a PEM private key (fixed keys: the fuzz target's seeds verify with them). */
static inline void fx_key_pem(struct fx_key *k, const char *kid, const char *pem)
{
    memset(k, 0, sizeof(*k));
    BIO *bio = BIO_new_mem_buf(pem, -1);
    cs_assert(bio);
    k->pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    cs_assert(k->pkey);
    k->ec = EVP_PKEY_is_a(k->pkey, "EC");
    cs_strlcpy(k->kid, kid, sizeof(k->kid));
}

/* The standard header of k: {"alg": RS256|ES256, "kid": k->kid}. */
static inline char *fx_header(const struct fx_key *k)
{
    return cs_asprintf("{'alg':'%s','kid':'%s'}", k->ec ? "ES256" : "RS256", k->kid);
}

#endif
