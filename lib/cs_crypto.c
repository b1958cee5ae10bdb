/*
 * cs_crypto.c -- OpenSSL wrappers and strict encoders (see cs_crypto.h).
 *
 * Failures of the CSPRNG or of EVP setup are broken invariants (abort);
 * failures caused by input (bad tag, bad encoding) return an error.
 *
 * Speed (OpenSSL 3 looks an algorithm up by name at every one-shot call):
 * SHA-256 and HMAC are fetched once per process; each thread keeps its
 * last few HMAC keys keyed (the ingest signs every link with the same
 * key), and UUIDv7s take their random bits from a per-thread buffer
 * refilled from the CSPRNG 4 KB at a time. Nothing else is buffered: keys,
 * nonces and tokens come from RAND_bytes directly. Cached keys are wiped
 * when their thread ends.
 */
#include "cs_crypto.h"

#include <ctype.h>
#include <pthread.h>
#include <string.h>
#include <sys/time.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/bn.h>
#include <openssl/rand.h>

#include "cs_mem.h"

/* ---- algorithms fetched once ---- */

static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_md;      /* process lifetime */
static EVP_MAC *hmac_mac;      /* process lifetime */
static pthread_key_t hmac_tls; /* struct hmac_cache of the thread */

static void hmac_cache_free(void *p);

static void fetch_all(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    hmac_mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    cs_assert(sha256_md && hmac_mac);
    cs_assert(pthread_key_create(&hmac_tls, hmac_cache_free) == 0);
}

static const EVP_MD *sha256(void)
{
    pthread_once(&fetch_once, fetch_all);
    return sha256_md;
}

struct cs_sha256 {
    EVP_MD_CTX *md;
};

void cs_sha256(const void *p, size_t n, unsigned char out[CS_SHA256_LEN])
{
    unsigned int len = 0;
    cs_assert(EVP_Digest(p, n, out, &len, sha256(), NULL) == 1);
}

struct cs_sha256 *cs_sha256_new(void)
{
    struct cs_sha256 *h = cs_malloc(sizeof(*h));
    h->md = EVP_MD_CTX_new();
    cs_assert(h->md && EVP_DigestInit_ex(h->md, sha256(), NULL) == 1);
    return h;
}

void cs_sha256_update(struct cs_sha256 *h, const void *p, size_t n)
{
    cs_assert(EVP_DigestUpdate(h->md, p, n) == 1);
}

void cs_sha256_final(struct cs_sha256 *h, unsigned char out[CS_SHA256_LEN])
{
    unsigned int len = 0;
    cs_assert(EVP_DigestFinal_ex(h->md, out, &len) == 1);
    EVP_MD_CTX_free(h->md);
    cs_free(h);
}

/*
 * The thread's keyed HMAC contexts, most recently keyed first out. A
 * context keyed once is reset per message (EVP_MAC_init without a key
 * restarts from the stored inner state), which skips the algorithm lookup
 * and the two key-pad blocks of a one-shot HMAC().
 */
#define HMAC_SLOTS 4
#define HMAC_KEY_MAX 64 /* longer keys (never used here) take the one-shot path */

struct hmac_slot {
    EVP_MAC_CTX *ctx; /* NULL: empty */
    unsigned char key[HMAC_KEY_MAX];
    size_t keylen;
};

struct hmac_cache {
    struct hmac_slot slot[HMAC_SLOTS];
    unsigned next; /* the slot to replace */
};

static void hmac_cache_free(void *p)
{
    struct hmac_cache *c = p;
    for (int i = 0; i < HMAC_SLOTS; i++)
        EVP_MAC_CTX_free(c->slot[i].ctx);
    cs_wipe(c, sizeof(*c));
    cs_free(c);
}

static EVP_MAC_CTX *hmac_keyed(const void *key, size_t keylen)
{
    pthread_once(&fetch_once, fetch_all);
    struct hmac_cache *c = pthread_getspecific(hmac_tls);
    if (!c) {
        c = cs_calloc(1, sizeof(*c));
        cs_assert(pthread_setspecific(hmac_tls, c) == 0);
    }
    for (int i = 0; i < HMAC_SLOTS; i++) {
        struct hmac_slot *s = &c->slot[i];
        if (s->ctx && s->keylen == keylen && CRYPTO_memcmp(s->key, key, keylen) == 0) {
            cs_assert(EVP_MAC_init(s->ctx, NULL, 0, NULL) == 1);
            return s->ctx;
        }
    }
    struct hmac_slot *s = &c->slot[c->next];
    c->next = (c->next + 1) % HMAC_SLOTS;
    if (!s->ctx)
        cs_assert((s->ctx = EVP_MAC_CTX_new(hmac_mac)) != NULL);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end()};
    cs_assert(EVP_MAC_init(s->ctx, key, keylen, params) == 1);
    memcpy(s->key, key, keylen);
    s->keylen = keylen;
    return s->ctx;
}

void cs_hmac_sha256(const void *key, size_t keylen, const void *p, size_t n,
                    unsigned char out[CS_SHA256_LEN])
{
    if (keylen == 0 || keylen > HMAC_KEY_MAX) {
        unsigned int len = 0;
        cs_assert(HMAC(sha256(), key, (int)keylen, p, n, out, &len) != NULL);
        return;
    }
    EVP_MAC_CTX *ctx = hmac_keyed(key, keylen);
    size_t len = 0;
    cs_assert(EVP_MAC_update(ctx, p, n) == 1);
    cs_assert(EVP_MAC_final(ctx, out, &len, CS_SHA256_LEN) == 1 && len == CS_SHA256_LEN);
}

void cs_random_bytes(void *buf, size_t n)
{
    cs_assert(RAND_bytes(buf, (int)n) == 1);
}

bool cs_ct_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

/* ---- hex ---- */

void cs_hex_encode(const void *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[s[i] >> 4];
        out[2 * i + 1] = digits[s[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

enum cs_err cs_hex_decode(const char *s, size_t slen, unsigned char *out, size_t n)
{
    if (slen != 2 * n)
        return CS_ERR_INVALID;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval((unsigned char)s[2 * i]), lo = hexval((unsigned char)s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return CS_ERR_INVALID;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return CS_OK;
}

/* ---- base64 ---- */

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t cs_b64_encoded_len(size_t n, bool url)
{
    return url ? (n / 3) * 4 + (n % 3 ? n % 3 + 1 : 0) : ((n + 2) / 3) * 4;
}

void cs_b64_encode_to(const void *p, size_t n, bool url, char *out)
{
    const unsigned char *s = p;
    const char *abc = url ? b64_url : b64_std;
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        out[o++] = abc[v >> 18 & 63];
        out[o++] = abc[v >> 12 & 63];
        out[o++] = abc[v >> 6 & 63];
        out[o++] = abc[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)s[i] << 16;
        out[o++] = abc[v >> 18 & 63];
        out[o++] = abc[v >> 12 & 63];
        if (!url) {
            out[o++] = '=';
            out[o++] = '=';
        }
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
        out[o++] = abc[v >> 18 & 63];
        out[o++] = abc[v >> 12 & 63];
        out[o++] = abc[v >> 6 & 63];
        if (!url)
            out[o++] = '=';
    }
    out[o] = '\0';
}

char *cs_b64_encode(const void *p, size_t n, bool url)
{
    char *out = cs_malloc(cs_b64_encoded_len(n, url) + 1);
    cs_b64_encode_to(p, n, url, out);
    return out;
}

static int b64val(int c, bool url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

enum cs_err cs_b64_decode(const char *s, size_t slen, bool url, unsigned char **out, size_t *outlen)
{
    /* Strip up to two '=' of padding; padding must then complete a quantum. */
    size_t pad = 0;
    while (slen > 0 && s[slen - 1] == '=' && pad < 2)
        slen--, pad++;
    if (slen % 4 == 1 || (pad && (slen + pad) % 4 != 0))
        return CS_ERR_INVALID;
    unsigned char *buf = cs_malloc(slen / 4 * 3 + 3);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < slen; i++) {
        int v = b64val((unsigned char)s[i], url);
        if (v < 0) {
            cs_free(buf);
            return CS_ERR_INVALID;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (unsigned char)(acc >> bits);
        }
    }
    /* Leftover bits must be zero (canonical encoding). */
    if (bits && (acc & ((1u << bits) - 1))) {
        cs_free(buf);
        return CS_ERR_INVALID;
    }
    *out = buf;
    *outlen = o;
    return CS_OK;
}

/* ---- AES-256-GCM ---- */

#define AEAD_VERSION 0x01
#define AEAD_NONCE 12
#define AEAD_TAG 16

void cs_aead_seal(const unsigned char key[32], const void *pt, size_t ptlen, const char *aad,
                  unsigned char **out, size_t *outlen)
{
    size_t n = 1 + AEAD_NONCE + ptlen + AEAD_TAG;
    unsigned char *buf = cs_malloc(n);
    int len = 0;
    buf[0] = AEAD_VERSION;
    cs_random_bytes(buf + 1, AEAD_NONCE);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    cs_assert(c);
    cs_assert(EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, buf + 1) == 1);
    cs_assert(EVP_EncryptUpdate(c, NULL, &len, (const unsigned char *)aad, (int)strlen(aad)) == 1);
    cs_assert(EVP_EncryptUpdate(c, buf + 1 + AEAD_NONCE, &len, pt, (int)ptlen) == 1);
    cs_assert(EVP_EncryptFinal_ex(c, buf + 1 + AEAD_NONCE + len, &len) == 1);
    cs_assert(
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, AEAD_TAG, buf + 1 + AEAD_NONCE + ptlen) == 1);
    EVP_CIPHER_CTX_free(c);
    *out = buf;
    *outlen = n;
}

enum cs_err cs_aead_open(const unsigned char key[32], const unsigned char *in, size_t inlen,
                         const char *aad, unsigned char **pt, size_t *ptlen)
{
    if (inlen < 1 + AEAD_NONCE + AEAD_TAG || in[0] != AEAD_VERSION)
        return CS_ERR_CRYPTO;
    size_t ctlen = inlen - 1 - AEAD_NONCE - AEAD_TAG;
    unsigned char *buf = cs_malloc(ctlen + 1);
    int len = 0, ok;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    cs_assert(c);
    cs_assert(EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, in + 1) == 1);
    ok = EVP_DecryptUpdate(c, NULL, &len, (const unsigned char *)aad, (int)strlen(aad)) == 1 &&
         EVP_DecryptUpdate(c, buf, &len, in + 1 + AEAD_NONCE, (int)ctlen) == 1 &&
         EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, AEAD_TAG, (void *)(in + inlen - AEAD_TAG)) ==
             1 &&
         EVP_DecryptFinal_ex(c, buf + len, &len) == 1;
    EVP_CIPHER_CTX_free(c);
    if (!ok) {
        cs_wipe(buf, ctlen);
        cs_free(buf);
        return CS_ERR_CRYPTO;
    }
    buf[ctlen] = '\0';
    *pt = buf;
    *ptlen = ctlen;
    return CS_OK;
}

void cs_key_derive(const unsigned char master[32], const char *purpose, unsigned char out[32])
{
    cs_hmac_sha256(master, 32, purpose, strlen(purpose), out);
}

/* ---- UUIDs ---- */

/*
 * Random bits for UUIDs only (ids, not secrets): a per-thread buffer
 * refilled 4 KB at a time, so an id costs no CSPRNG call. A fork empties
 * the forking thread's buffer (the only thread the child has), so parent
 * and child never hand out the same bits.
 */
#define UUID_POOL 4096

static _Thread_local unsigned char uuid_pool[UUID_POOL];
static _Thread_local size_t uuid_left; /* unused bytes at the end of uuid_pool */
static pthread_once_t uuid_once = PTHREAD_ONCE_INIT;

static void uuid_pool_forget(void)
{
    uuid_left = 0;
}

static void uuid_atfork(void)
{
    cs_assert(pthread_atfork(NULL, NULL, uuid_pool_forget) == 0);
}

static void uuid_random(unsigned char *b, size_t n)
{
    pthread_once(&uuid_once, uuid_atfork);
    if (uuid_left < n) {
        cs_random_bytes(uuid_pool, UUID_POOL);
        uuid_left = UUID_POOL;
    }
    memcpy(b, uuid_pool + UUID_POOL - uuid_left, n);
    uuid_left -= n;
}

void cs_uuid_v7(char out[CS_UUID_STRLEN + 1])
{
    unsigned char b[16];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    uint64_t ms = (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
    uuid_random(b + 6, 10);
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (40 - 8 * i));
    b[6] = (unsigned char)(0x70 | (b[6] & 0x0f));
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));
    cs_uuid_format(b, out);
}

bool cs_uuid_valid(const char *s)
{
    unsigned char b[16];
    return s && cs_uuid_parse(s, b) == CS_OK;
}

enum cs_err cs_uuid_parse(const char *s, unsigned char out[16])
{
    static const int groups[] = {8, 4, 4, 4, 12};
    size_t o = 0;
    for (int g = 0; g < 5; g++) {
        size_t n = (size_t)groups[g];
        for (size_t i = 0; i < n; i++)
            if (!isxdigit((unsigned char)s[i]))
                return CS_ERR_INVALID;
        if (cs_hex_decode(s, n, out + o, n / 2) != CS_OK)
            return CS_ERR_INVALID;
        o += n / 2;
        s += n;
        if (g < 4 && *s++ != '-')
            return CS_ERR_INVALID;
    }
    return *s == '\0' ? CS_OK : CS_ERR_INVALID;
}

void cs_uuid_format(const unsigned char in[16], char out[CS_UUID_STRLEN + 1])
{
    char hex[33];
    cs_hex_encode(in, 16, hex);
    memcpy(out, hex, 8);
    out[8] = '-';
    memcpy(out + 9, hex + 8, 4);
    out[13] = '-';
    memcpy(out + 14, hex + 12, 4);
    out[18] = '-';
    memcpy(out + 19, hex + 16, 4);
    out[23] = '-';
    memcpy(out + 24, hex + 20, 12);
    out[36] = '\0';
}

/* ---- public keys from their parts ---- */

static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (params && ctx && EVP_PKEY_fromdata_init(ctx) == 1 &&
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

EVP_PKEY *cs_pkey_p256(const unsigned char x[32], const unsigned char y[32])
{
    unsigned char pt[65];
    pt[0] = 0x04; /* uncompressed point */
    memcpy(pt + 1, x, 32);
    memcpy(pt + 33, y, 32);
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    if (bld &&
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) == 1 &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt)) == 1)
        pkey = from_params("EC", bld);
    if (pkey) {
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        if (!ctx || EVP_PKEY_public_check(ctx) != 1) {
            EVP_PKEY_free(pkey);
            pkey = NULL;
        }
        EVP_PKEY_CTX_free(ctx);
    }
    OSSL_PARAM_BLD_free(bld);
    return pkey;
}

EVP_PKEY *cs_pkey_rsa(const unsigned char *n, size_t nlen, const unsigned char *e, size_t elen)
{
    EVP_PKEY *pkey = NULL;
    if (nlen > 1025 || elen == 0 || elen > 8)
        return NULL;
    BIGNUM *bn = BN_bin2bn(n, (int)nlen, NULL), *be = BN_bin2bn(e, (int)elen, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    if (bn && be && bld && BN_is_odd(bn) && BN_is_odd(be) && !BN_is_one(be) &&
        BN_num_bits(bn) >= 2048 && BN_num_bits(bn) <= 8192 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) == 1 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) == 1)
        pkey = from_params("RSA", bld);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    return pkey;
}
