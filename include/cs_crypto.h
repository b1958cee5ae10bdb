/*
 * cs_crypto.h -- hashing, MACs, authenticated encryption, encodings, ids.
 *
 * Thin wrappers over OpenSSL's libcrypto so the rest of the code never
 * touches EVP directly. Secrets pass through these functions only as
 * buffers; nothing here logs. Encodings (hex, base64, base64url) are
 * strict: a decoder refuses any character outside its alphabet.
 *
 * Encrypted secret format (AES-256-GCM): 1 version byte (0x01) ||
 * 12-byte random nonce || ciphertext || 16-byte tag; the AAD binds the
 * ciphertext to its owner (e.g. "grant:<id>") so a blob cannot be moved
 * to another row.
 */
#ifndef CS_CRYPTO_H
#define CS_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cs_err.h"

#define CS_SHA256_LEN 32
#define CS_UUID_STRLEN 36

void cs_sha256(const void *p, size_t n, unsigned char out[CS_SHA256_LEN]);
void cs_hmac_sha256(const void *key, size_t keylen, const void *p, size_t n,
                    unsigned char out[CS_SHA256_LEN]);

/* Incremental SHA-256. cs_sha256_final frees the context. */
struct cs_sha256;
struct cs_sha256 *cs_sha256_new(void);
void cs_sha256_update(struct cs_sha256 *h, const void *p, size_t n);
void cs_sha256_final(struct cs_sha256 *h, unsigned char out[CS_SHA256_LEN]);

/* Fills buf with n bytes from the CSPRNG; aborts if it fails (no fallback). */
void cs_random_bytes(void *buf, size_t n);

/* Constant-time comparison of two n-byte buffers. */
bool cs_ct_equal(const void *a, const void *b, size_t n);

/* Lower-case hex of n bytes into out[2n+1]. */
void cs_hex_encode(const void *p, size_t n, char *out);
/* Decodes exactly 2*n hex digits of s into out[n]; CS_ERR_INVALID otherwise. */
enum cs_err cs_hex_decode(const char *s, size_t slen, unsigned char *out, size_t n) CS_MUSTCHECK;

/*
 * Base64: `url` selects the URL-safe alphabet without padding; otherwise
 * the standard alphabet with padding. The result is cs_malloc'd.
 */
char *cs_b64_encode(const void *p, size_t n, bool url);
/* Length of the encoding of n bytes, without NUL. */
size_t cs_b64_encoded_len(size_t n, bool url);
/* Encodes into out (cs_b64_encoded_len(n,url)+1 bytes). */
void cs_b64_encode_to(const void *p, size_t n, bool url, char *out);
/*
 * Decodes s[slen] (padding optional) into a cs_malloc'd buffer, *outlen set.
 * Refuses characters outside the alphabet and impossible lengths.
 */
enum cs_err cs_b64_decode(const char *s, size_t slen, bool url, unsigned char **out,
                          size_t *outlen) CS_MUSTCHECK;

/* AES-256-GCM seal: *out (cs_malloc'd) = 0x01 || nonce || ct || tag. */
void cs_aead_seal(const unsigned char key[32], const void *pt, size_t ptlen, const char *aad,
                  unsigned char **out, size_t *outlen);
/* Opens what cs_aead_seal made; CS_ERR_CRYPTO when the key, AAD or data is wrong. */
enum cs_err cs_aead_open(const unsigned char key[32], const unsigned char *in, size_t inlen,
                         const char *aad, unsigned char **pt, size_t *ptlen) CS_MUSTCHECK;

/* Derives a 32-byte sub-key for `purpose` from the master key (HMAC-SHA256). */
void cs_key_derive(const unsigned char master[32], const char *purpose, unsigned char out[32]);

/* UUID version 7 (time-ordered) as 36 chars + NUL. */
void cs_uuid_v7(char out[CS_UUID_STRLEN + 1]);
/* True when s is a canonical lower- or upper-case 8-4-4-4-12 UUID. */
bool cs_uuid_valid(const char *s);
enum cs_err cs_uuid_parse(const char *s, unsigned char out[16]) CS_MUSTCHECK;
void cs_uuid_format(const unsigned char in[16], char out[CS_UUID_STRLEN + 1]);

/*
 * Public keys from their parts, as JWKs (cs_idtoken) and COSE keys
 * (cs_webauthn) carry them; an OpenSSL EVP_PKEY the caller EVP_PKEY_free()s,
 * or NULL when the parts make no such key: a P-256 point (x, y: 32 bytes
 * each, checked to lie on the curve), or RSA with an odd n of 2048..8192
 * bits and an odd e > 1 of at most 8 bytes.
 */
struct evp_pkey_st;
struct evp_pkey_st *cs_pkey_p256(const unsigned char x[32], const unsigned char y[32]);
struct evp_pkey_st *cs_pkey_rsa(const unsigned char *n, size_t nlen, const unsigned char *e,
                                size_t elen);

#endif
