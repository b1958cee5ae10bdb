/*
 * fuzz_webauthn.c -- libFuzzer target: WebAuthn registration and
 * assertion verification (lib/cs_webauthn.c) and the strict CBOR reader
 * under them.
 *
 * Input: one mode byte (mod 6), then the bytes that take one part of an
 * otherwise valid ceremony. The harness is the authenticator: a fixed
 * P-256 key (test-only, below) whose COSE_Key and attestationObject it
 * builds once, and whose signatures it makes on the fly, so a fuzzed
 * authenticatorData or clientDataJSON gets past the signature check.
 *   0  attestationObject to cs_webauthn_register
 *   1  clientDataJSON to cs_webauthn_register
 *   2  authenticatorData to cs_webauthn_verify, signed by the harness key
 *   3  the stored COSE_Key to cs_webauthn_verify
 *   4  the signature to cs_webauthn_verify
 *   5  clientDataJSON to cs_webauthn_verify, signed by the harness key
 * Properties, on every input: the answer is CS_OK, CS_ERR_INVALID or
 * CS_ERR_UNAUTHENTICATED with a detail; a refused registration leaves the
 * credential zeroed; an accepted one has an id of 1..1023 bytes, ES256 or
 * RS256, and a key that verify takes as a stored key (an assertion signed
 * by the harness verifies with it, or fails on the signature, never on
 * the key); an accepted assertion has authenticatorData of the RP with UP
 * set and a counter above the stored one, which *new_count reports (and
 * a refused one leaves *new_count at the stored count); a fuzzed stored
 * key is only accepted when it holds the harness key's coordinates.
 */
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cs_crypto.h"
#include "cs_webauthn.h"
#include "fuzz.h"

#define RP "example.com"
#define ORIGIN "https://example.com"
#define STORED 5u

/* Test-only key: never used anywhere else. */
static const char ec_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                             "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgjRcdTKi/niNf5JsY\n"
                             "jmySr2Z54f3FJr4WS3+a+L4TYlihRANCAASHoxRC2yk9OaWjPoXdBkmrIzGsBuc0\n"
                             "dO+IuPHZjZoEQdLDxtHa+VqitXbH6LkUd7v3bDjomrYm4lR5IkedI1NA\n"
                             "-----END PRIVATE KEY-----\n";

static const unsigned char challenge[32] = "fuzz-webauthn-challenge-0123456";

struct bytes {
    unsigned char b[512];
    size_t n;
};

static struct {
    EVP_PKEY *pkey;
    unsigned char x[32], y[32];
    struct bytes cose, ao, ad; /* COSE_Key, attestationObject, an assertion's authData */
    char cdj_create[256], cdj_get[256];
} h;

static void put(struct bytes *w, const void *p, size_t n)
{
    FUZZ_CHECK(w->n + n <= sizeof(w->b));
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void head(struct bytes *w, int major, unsigned v) /* v < 65536 */
{
    unsigned char b[3] = {(unsigned char)(major << 5 | (v < 24 ? v : v < 256 ? 24 : 25))};
    size_t n = v < 24 ? 1 : v < 256 ? 2 : 3;
    if (n == 2)
        b[1] = (unsigned char)v;
    if (n == 3)
        b[1] = (unsigned char)(v >> 8), b[2] = (unsigned char)v;
    put(w, b, n);
}

static void text(struct bytes *w, const char *s)
{
    head(w, 3, (unsigned)strlen(s));
    put(w, s, strlen(s));
}

static void init(void)
{
    if (h.pkey)
        return;
    BIO *bio = BIO_new_mem_buf(ec_pem, -1);
    h.pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    FUZZ_CHECK(h.pkey);
    const char *names[] = {OSSL_PKEY_PARAM_EC_PUB_X, OSSL_PKEY_PARAM_EC_PUB_Y};
    unsigned char *xy[] = {h.x, h.y};
    for (int i = 0; i < 2; i++) {
        BIGNUM *bn = NULL;
        FUZZ_CHECK(EVP_PKEY_get_bn_param(h.pkey, names[i], &bn) == 1);
        FUZZ_CHECK(BN_bn2binpad(bn, xy[i], 32) == 32);
        BN_free(bn);
    }
    /* {1: 2, 3: -7, -1: 1, -2: x, -3: y} */
    put(&h.cose, "\xa5\x01\x02\x03\x26\x20\x01\x21\x58\x20", 10);
    put(&h.cose, h.x, 32);
    put(&h.cose, "\x22\x58\x20", 3);
    put(&h.cose, h.y, 32);
    unsigned char rph[32];
    cs_sha256(RP, strlen(RP), rph);
    struct bytes ad = {.n = 0};
    put(&ad, rph, 32);
    put(&ad, "\x45\x00\x00\x00\x00", 5); /* UP UV AT, count 0 */
    put(&ad,
        "0123456789abcdef\x00\x10"
        "fuzz-credential!",
        34);
    put(&ad, h.cose.b, h.cose.n);
    head(&h.ao, 5, 3);
    text(&h.ao, "fmt"), text(&h.ao, "none");
    text(&h.ao, "attStmt"), head(&h.ao, 5, 0);
    text(&h.ao, "authData"), head(&h.ao, 2, (unsigned)ad.n), put(&h.ao, ad.b, ad.n);
    put(&h.ad, rph, 32);
    put(&h.ad, "\x05\x00\x00\x00\x06", 5); /* UP UV, count 6 */
    char *c64 = cs_b64_encode(challenge, sizeof(challenge), true);
    snprintf(h.cdj_create, sizeof(h.cdj_create),
             "{\"type\":\"webauthn.create\",\"challenge\":\"%s\",\"origin\":\"%s\"}", c64, ORIGIN);
    snprintf(h.cdj_get, sizeof(h.cdj_get),
             "{\"type\":\"webauthn.get\",\"challenge\":\"%s\",\"origin\":\"%s\"}", c64, ORIGIN);
    cs_free(c64);
}

/* The harness's ES256 signature of ad || SHA-256(cdj) into sig[72]. */
static size_t sign(const unsigned char *ad, size_t ad_len, const unsigned char *cdj, size_t cdj_len,
                   unsigned char *sig)
{
    unsigned char hash[32];
    size_t siglen = 72;
    cs_sha256(cdj, cdj_len, hash);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    FUZZ_CHECK(md && EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, h.pkey, NULL) == 1 &&
               EVP_DigestSignUpdate(md, ad, ad_len) == 1 &&
               EVP_DigestSignUpdate(md, hash, 32) == 1 &&
               EVP_DigestSignFinal(md, sig, &siglen) == 1);
    EVP_MD_CTX_free(md);
    return siglen;
}

static void check_rc(enum cs_err rc, const char *err)
{
    FUZZ_CHECK(rc == CS_OK || rc == CS_ERR_INVALID || rc == CS_ERR_UNAUTHENTICATED);
    FUZZ_CHECK(rc == CS_OK || err[0]);
}

static enum cs_err verify(const unsigned char *key, size_t key_len, const unsigned char *ad,
                          size_t ad_len, const unsigned char *cdj, size_t cdj_len,
                          const unsigned char *sig, size_t sig_len, uint32_t *count, char *err)
{
    *count = 12345;
    enum cs_err rc =
        cs_webauthn_verify(RP, ORIGIN, challenge, sizeof(challenge), key, key_len, STORED, ad,
                           ad_len, cdj, cdj_len, sig, sig_len, false, count, err);
    check_rc(rc, err);
    FUZZ_CHECK(rc == CS_OK || *count == STORED);
    if (rc == CS_OK) {
        unsigned char rph[32];
        cs_sha256(RP, strlen(RP), rph);
        FUZZ_CHECK(ad_len >= 37 && memcmp(ad, rph, 32) == 0 && (ad[32] & 0x01));
        uint32_t c =
            (uint32_t)ad[33] << 24 | (uint32_t)ad[34] << 16 | (uint32_t)ad[35] << 8 | ad[36];
        FUZZ_CHECK(*count == c && c > STORED);
    }
    return rc;
}

static void registration(const unsigned char *cdj, size_t cdj_len, const unsigned char *ao,
                         size_t ao_len)
{
    struct cs_webauthn_credential c;
    char err[CS_ERRLEN] = "";
    enum cs_err rc = cs_webauthn_register(RP, ORIGIN, challenge, sizeof(challenge), cdj, cdj_len,
                                          ao, ao_len, false, &c, err);
    check_rc(rc, err);
    if (rc != CS_OK) {
        FUZZ_CHECK(!c.id && !c.public_key && !c.id_len && !c.public_key_len && !c.alg);
        return;
    }
    FUZZ_CHECK(c.id && c.id_len >= 1 && c.id_len <= CS_WEBAUTHN_CRED_ID_MAX);
    FUZZ_CHECK(c.public_key && c.public_key_len <= CS_WEBAUTHN_KEY_MAX);
    FUZZ_CHECK(c.alg == CS_WEBAUTHN_ALG_ES256 || c.alg == CS_WEBAUTHN_ALG_RS256);
    /* what registration accepts, verification takes as a stored key */
    unsigned char sig[72];
    size_t sig_len = sign(h.ad.b, h.ad.n, (const unsigned char *)h.cdj_get, strlen(h.cdj_get), sig);
    uint32_t count;
    err[0] = '\0';
    rc = verify(c.public_key, c.public_key_len, h.ad.b, h.ad.n, (const unsigned char *)h.cdj_get,
                strlen(h.cdj_get), sig, sig_len, &count, err);
    FUZZ_CHECK(rc == CS_OK || (rc == CS_ERR_UNAUTHENTICATED && strstr(err, "signature")));
    cs_webauthn_credential_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    init();
    int mode = data[0] % 6;
    data++, size--;
    const unsigned char *cdj = (const unsigned char *)h.cdj_get;
    size_t cdj_len = strlen(h.cdj_get);
    unsigned char sig[72];
    size_t sig_len;
    uint32_t count;
    char err[CS_ERRLEN] = "";
    enum cs_err rc;
    switch (mode) {
    case 0:
        registration((const unsigned char *)h.cdj_create, strlen(h.cdj_create), data, size);
        break;
    case 1: registration(data, size, h.ao.b, h.ao.n); break;
    case 2:
        sig_len = sign(data, size, cdj, cdj_len, sig);
        verify(h.cose.b, h.cose.n, data, size, cdj, cdj_len, sig, sig_len, &count, err);
        break;
    case 3:
        sig_len = sign(h.ad.b, h.ad.n, cdj, cdj_len, sig);
        rc = verify(data, size, h.ad.b, h.ad.n, cdj, cdj_len, sig, sig_len, &count, err);
        FUZZ_CHECK(rc != CS_OK ||
                   (size >= 64 && memmem(data, size, h.x, 32) && memmem(data, size, h.y, 32)));
        break;
    case 4:
        verify(h.cose.b, h.cose.n, h.ad.b, h.ad.n, cdj, cdj_len, data, size, &count, err);
        break;
    default:
        sig_len = sign(h.ad.b, h.ad.n, data, size, sig);
        verify(h.cose.b, h.cose.n, h.ad.b, h.ad.n, data, size, sig, sig_len, &count, err);
        break;
    }
    return 0;
}
